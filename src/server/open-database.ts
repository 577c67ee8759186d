// Opens the one RocksDB database of a server: a column family per shard plus
// `default` for internal metadata. Main thread, at start-up; the only place that
// opens RocksDB (workers attach to this handle). The shard layout is fixed when the
// data directory is created and kept in txkv-layout.json beside the database, since
// RocksDB must be told every column family before it can open.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { RocksLevel } from '@nxtedition/rocksdb';
import { DEFAULT_CONFIG, type RocksDbConfig } from '../config/server-config.js';
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
/**
 * The layout file of `dataDir`, or null when the directory holds no database yet. A file
 * that does not parse, or whose count and split points do not fit together, throws a
 * StartupError naming it (a raw JSON error, or "start with shards = 0", which now means
 * automatic, would send the operator the wrong way).
 */
export function readLayout(dataDir: string, shown = dataDir): Layout | null {
  const file = path.join(dataDir, 'txkv-layout.json');
  if (!fs.existsSync(file)) return null;
  const named = path.join(shown, 'txkv-layout.json');
  const why = 'it records the shard layout the database was created with; restore it from a backup of this data directory';
  let layout: Layout;
  try {
    layout = JSON.parse(fs.readFileSync(file, 'utf8')) as Layout;
  } catch (err) {
    throw new StartupError(`${named} is damaged (${(err as Error).message}): ${why}`, { cause: err });
  }
  const n = (layout as Partial<Layout> | null)?.shards;
  const points = (layout as Partial<Layout> | null)?.splitPoints;
  if (!Number.isInteger(n) || n! < 1 || !Array.isArray(points) || points.length !== n! - 1 || !points.every((h) => typeof h === 'string' && /^(?:[0-9a-f]{2})*$/.test(h))) {
    throw new StartupError(`${named} is damaged (shards ${JSON.stringify(n)}, split points ${JSON.stringify(points)}: expected a count >= 1 and count - 1 hex split points): ${why}`);
  }
  return layout;
}

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
  /** RocksDB sizes (the server's `rocksdb` settings); default: DEFAULT_CONFIG.rocksdb. */
  rocksdb?: RocksDbConfig;
}

const MiB = 1024 * 1024;

/**
 * The options txkv opens RocksDB with, in the binding's names (@nxtedition/rocksdb
 * 12.2.12, binding.cc InitOptions and db_open; it passes nothing else through: no LZ4,
 * no block cache shared between column families, no write buffer manager). The
 * binding's own defaults are a ZSTD-compressed WAL, ZSTD with a 16 KB dictionary on every
 * level, an 8 MB block cache per column family, a 10-bit bloom filter and RocksDB's 64 MB
 * memtables (up to two per column family).
 *
 * Measured with `node dist/bench/raw/rocksdb-options.js ROWS WRITES 2 CONFIGS` (the binding
 * alone: 4 shard column families, 16-byte keys, 8-100-byte random values, WRITES keys
 * rewritten in 10-key batches, 10-key multi-gets, 1,000-row scans; CPU per key includes
 * RocksDB's background threads; "native" is RSS less the JS heap after the writes), on the
 * shared 2-core machine, load average 3-13. All together, 1,000,000 rows + 2,000,000
 * writes: write 12.1 -> 7.8-8.0 µs CPU per key, get 19.4 -> 10.2-10.8 µs per key, native
 * memory after the writes +141 -> +50 MB; 100,000 rows + 1,000,000 writes in
 * bench/README.md ("Storage: RocksDB options").
 */
export function rocksDbOptions(cfg: RocksDbConfig, shards: number): { db: Record<string, unknown>; shardColumn: Record<string, unknown>; metaColumn: Record<string, unknown> } {
  const shardColumn = {
    // Memtables. compaction 'level' is the binding's only way to size them (write buffer =
    // budget / 4, flushed two at a time, at most six; L0 compaction at 2 files; L1 = the
    // budget). With RocksDB's 64 MB default every overwrite of a hot key stayed in the skip
    // list: native memory grew to +141 MB for 1M rows + 2M writes (+246 MB for 100k rows +
    // 1M writes, and toward 4 x 128 MB under a soak: the ~1 GB RSS plateau), and gets and
    // scans stepped over the stale versions. 16 MB: +50-56 MB, get 19.4 -> 13-16 µs/key,
    // write 12.1 -> 7.2-7.6 µs/key (with the WAL change below). 8 MB flushed more often
    // for no gain. The default is now 32 MB (L1 = 32 MB per shard): at 1M rows on 2 shards
    // a shard's ~37 MB did not fit 16 MB of L1, so L1 -> L2 compactions (L2 is ZSTD) ran all
    // the time; under w10 RocksDB's compaction thread took 1.6 -> 0.7 µs per written key
    // (server 19.7 -> 18.5 µs/op); at 100k rows no difference (bench/README.md). Memtables
    // of all shards stay below shards x 1.5 x the budget (96 MB at 2 shards).
    compaction: 'level',
    memtableMemoryBudget: cfg.memtableBytes,
    // Compression. 'level' leaves L0 and L1 uncompressed and compresses L2 and below with
    // ZSTD (LZ4 is not selectable); `compression: false` drops the binding's 16 KB
    // dictionary there. Values are small, a dictionary trained per file costs compaction
    // CPU, and the bench's random values do not compress at all; at 1M rows every shard's
    // data (~35 MB) is still in L0-L1, so reads decompress nothing (disk 150 MB vs 84 MB
    // ZSTD everywhere: the price of uncompressed upper levels).
    compression: false,
    // Block cache: the binding makes one HyperClock cache per column family and cannot
    // share one, so the operator's budget is split over the shards. With the upper levels
    // uncompressed and the OS page cache holding the files, the cache size barely moved
    // get CPU at 1M rows (0 / 16 / 64 MB per shard: 11.2 / 10-16 / 16.5 µs/key, within
    // the noise); it bounds memory instead (64 MB per shard: +184 MB native after reads,
    // 16: +106, 0: +61). It pays once data is compressed (L2+) or the page cache is short.
    cacheSize: Math.min(0xffff_ffff, Math.floor(cfg.blockCacheBytes / Math.max(1, shards))),
    // Filters and index: 'point-lookup' = a ribbon filter (10 bits/key, ~30 % smaller than
    // the default bloom filter), a hash index inside data blocks beside the binary one,
    // and a whole-key bloom filter on memtables. Gets are txkv's hottest storage call
    // (r10, m90, before-images of writes): 1M rows, get 13.1 / 15.9 -> 10.2 / 10.8 µs/key
    // against the bloom-only default in the same runs, writes and scans unchanged within
    // noise. Without any filter gets cost 16.3 µs/key.
    optimize: 'point-lookup',
  };
  return {
    db: {
      // WAL compression costs CPU on every commit's write (on the log writer thread) and
      // buys little: small random values, and the fsync, not the bytes, sets a commit's
      // latency. 100k rows: write 13.3 -> 11.7 µs/key, preload 3.8 -> 2.9 µs/key.
      walCompression: cfg.walCompression,
    },
    shardColumn,
    // metadata (applied watermarks, decision records, tombstones, marks, the shard map):
    // written as much as a shard (a cross-shard commit's decision record holds its
    // mutations) but deleted soon after and read only at start-up: the shards' memtable
    // sizing up to 16 MB (what it had before the shards' default grew to 32 MB), a token cache
    metaColumn: { compaction: 'level', memtableMemoryBudget: Math.min(cfg.memtableBytes, 16 * MiB), compression: false, cacheSize: 1 * MiB },
  };
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
  const existing = readLayout(dataDir, shown);
  if (existing !== null) {
    layout = existing;
    const wantedHex = wanted.splitPoints.map((p) => Buffer.from(p).toString('hex'));
    if (layout.shards !== wanted.shards || (wanted.explicitSplitPoints && JSON.stringify(layout.splitPoints) !== JSON.stringify(wantedHex))) {
      throw new Error(
        `${dataDir} holds ${layout.shards} shards split at [${layout.splitPoints.join(', ')}], but the configuration asks for ` +
          `${wanted.shards} shards${wanted.explicitSplitPoints ? ` split at [${wantedHex.join(', ')}]` : ''}; a data directory keeps the shard count ` +
          `and split points it was created with (ranges move between its shards online, but shards are not added or removed): ` +
          `start without shards and splitPoints (the directory's are used), or use a new data directory`,
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
  const options = rocksDbOptions(opts.rocksdb ?? DEFAULT_CONFIG.rocksdb, layout.shards);
  const columns: Record<string, object> = { default: options.metaColumn };
  for (let i = 0; i < layout.shards; i++) columns[columnName(i)] = options.shardColumn;
  const rocksDir = path.join(dataDir, 'rocksdb');
  if (!created && !fs.existsSync(path.join(rocksDir, 'CURRENT')) && !opts.allowNewDatabase) {
    throw new StartupError(
      `data directory ${shown} has a layout file (created ${layout.createdAt}) but no database in ${path.join(shown, 'rocksdb')}: ` +
        'it was deleted or lost; restore it from a backup, or start with --new-database to create an empty one',
    );
  }
  const db = new RocksLevel(rocksDir);
  await db.open({ ...options.db, columns, createIfMissing: true });
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
