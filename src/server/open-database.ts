// Opens the one RocksDB database of a server: a column family per shard plus
// `default` for internal metadata. Main thread, at start-up; the only place that
// opens RocksDB (workers attach to this handle). The shard layout is fixed when the
// data directory is created and kept in txkv-layout.json beside the database, since
// RocksDB must be told every column family before it can open.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { RocksLevel } from '@nxtedition/rocksdb';
import { columnName } from '../shard/interface.js';
import { checkDataDir, explainOpenError, PID_FILE, StartupError } from './startup-errors.js';

export interface Layout {
  format: 1;
  shards: number;
  /** Split points as hex strings (shard i starts at splitPoints[i-1]). */
  splitPoints: string[];
  createdAt: string;
  /**
   * The database's id, made when the directory was created (a random UUID; in a
   * cluster, the cluster's id from etcd). Directories made before ids existed get one
   * at their next start.
   */
  databaseId?: string;
}

export interface OpenedDatabase {
  db: RocksLevel;
  layout: Layout;
  created: boolean;
  /** The split points in force (the directory's own). */
  splitPoints: Uint8Array[];
  databaseId: string;
}

function writeFileDurably(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dfd = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}

/**
 * Opens (or creates) the database. An existing directory keeps its own split points
 * unless the configuration names split points explicitly (then they must match): the
 * defaults may change between txkv versions, the data on disk may not move.
 */
export async function openDatabase(
  dataDir: string,
  wanted: { shards: number; splitPoints: Uint8Array[]; explicitSplitPoints: boolean; databaseId?: string },
  opts: OpenOptions = {},
): Promise<OpenedDatabase> {
  const shown = opts.shown ?? dataDir;
  try {
    return await openOrCreate(dataDir, wanted, opts);
  } catch (err) {
    throw explainOpenError(err, dataDir, shown);
  }
}

export interface OpenOptions {
  /** The data directory as the operator wrote it (for messages); default: dataDir. */
  shown?: string;
  /**
   * Create an empty database where the layout file says one existed but the database
   * is gone (deleted or lost). Without it such a start is refused: silently starting
   * empty would hide the loss.
   */
  allowNewDatabase?: boolean;
}

async function openOrCreate(
  dataDir: string,
  wanted: { shards: number; splitPoints: Uint8Array[]; explicitSplitPoints: boolean; databaseId?: string },
  opts: OpenOptions,
): Promise<OpenedDatabase> {
  const shown = opts.shown ?? dataDir;
  checkDataDir(dataDir, shown);
  const layoutFile = path.join(dataDir, 'txkv-layout.json');
  let layout: Layout;
  let created = false;
  if (fs.existsSync(layoutFile)) {
    layout = JSON.parse(fs.readFileSync(layoutFile, 'utf8')) as Layout;
    const wantedHex = wanted.splitPoints.map((p) => Buffer.from(p).toString('hex'));
    if (layout.shards !== wanted.shards || (wanted.explicitSplitPoints && JSON.stringify(layout.splitPoints) !== JSON.stringify(wantedHex))) {
      throw new Error(
        `${dataDir} holds ${layout.shards} shards split at [${layout.splitPoints.join(', ')}], but the configuration asks for ` +
          `${wanted.shards} shards split at [${wantedHex.join(', ')}]; moving ranges between shards is not supported yet: ` +
          `start with the data directory's layout (shards = ${layout.shards}) or use a new data directory`,
      );
    }
  } else {
    layout = {
      format: 1,
      shards: wanted.shards,
      splitPoints: wanted.splitPoints.map((p) => Buffer.from(p).toString('hex')),
      createdAt: new Date().toISOString(),
      databaseId: wanted.databaseId ?? randomUUID(),
    };
    created = true;
  }
  if (wanted.databaseId !== undefined && layout.databaseId !== undefined && layout.databaseId !== wanted.databaseId) {
    throw new Error(
      `${dataDir} belongs to database ${layout.databaseId}, but this server is asked to serve database ${wanted.databaseId} ` +
        '(a cluster node needs a data directory of its own cluster, or a new empty one)',
    );
  }
  const stamp = !created && layout.databaseId === undefined;
  if (stamp) layout.databaseId = wanted.databaseId ?? randomUUID();
  const columns: Record<string, object> = { default: {} };
  for (let i = 0; i < layout.shards; i++) columns[columnName(i)] = {};
  const rocksDir = path.join(dataDir, 'rocksdb');
  if (!created && !fs.existsSync(path.join(rocksDir, 'CURRENT')) && !opts.allowNewDatabase) {
    throw new StartupError(
      `data directory ${shown} has a layout file (created ${layout.createdAt}) but no database in ${path.join(shown, 'rocksdb')}: ` +
        'it was deleted or lost; restore it from a backup, or start with --new-database to create an empty one',
    );
  }
  const db = new RocksLevel(rocksDir);
  await db.open({ columns, createIfMissing: true });
  try {
    if (created || stamp) writeFileDurably(layoutFile, JSON.stringify(layout, null, 2) + '\n');
    // names this process as the holder (read by a second server's message, and by the
    // data-directory watch that notices the directory being deleted)
    fs.writeFileSync(path.join(dataDir, PID_FILE), `${process.pid}\n`);
  } catch (err) {
    await db.close();
    throw err;
  }
  return { db, layout, created, databaseId: layout.databaseId!, splitPoints: layout.splitPoints.map((h) => new Uint8Array(Buffer.from(h, 'hex'))) };
}
