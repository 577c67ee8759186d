// `txkv backup`: a consistent snapshot of [BEGIN, END) at ONE read version, paged
// with snapshot range reads at that version, written as JSON lines (header, one line
// per row, trailer with the row count). It must finish inside the server's MVCC
// window (5 s by default): past it the server answers TOO_OLD and the backup fails
// rather than mixing versions.
import fs from 'node:fs';
import path from 'node:path';
import { TxnError } from '../errors.js';
import { keyAfter } from '../keys/bytes.js';
import { intFlag, parseFlags, stringFlag, UsageError, wantsHelp } from './args.js';
import { parseBytesArg } from './bytes-arg.js';
import { CLIENT_FLAGS, CLIENT_USAGE, clientTarget, connectTo } from './client-options.js';

export const BACKUP_FORMAT = 'txkv-backup';

export const USAGE = `usage: txkv backup --out FILE [--begin KEY] [--end KEY] [--page N] [client options]

Writes every row of [--begin, --end) (default: the whole user keyspace, "" to \\xff) as it
stood at one read version: a consistent snapshot across all shards. The file is JSON lines:
a header {format, readVersion, begin, end}, one {k, v} line per row (base64), and a trailer
{end: true, rows}; txkv restore reads it back.

The snapshot is read page by page (--page rows per request, default 1000) at that one read
version, so the whole backup must finish within the server's MVCC window (mvccWindowMs,
5 s by default). A backup that takes longer fails with TOO_OLD and leaves no file: back up
smaller key ranges (--begin/--end) one after the other, or run the server with a longer
window for the duration. Each range is then consistent on its own.

${CLIENT_USAGE}`;

const b64 = (u: Uint8Array): string => Buffer.from(u.buffer, u.byteOffset, u.length).toString('base64');

/** Opens `${out}.partial` for writing; an unwritable path is an error naming `out`. */
export function openOutput(out: string, tmp: string): number {
  try {
    return fs.openSync(tmp, 'w');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const dir = path.dirname(path.resolve(out));
    const why =
      e.code === 'ENOENT'
        ? `the directory ${dir} does not exist`
        : e.code === 'EACCES' || e.code === 'EPERM'
          ? `permission denied in ${dir}`
          : e.code === 'ENOTDIR'
              ? `a part of ${dir} is not a directory`
              : e.code === 'EROFS'
                ? `${dir} is on a read-only file system`
                : (e.message ?? String(err));
    throw new Error(`cannot write the backup to ${out}: ${why}`);
  }
}

export async function backup(argv: string[]): Promise<number> {
  const p = parseFlags(argv, { ...CLIENT_FLAGS, out: { type: 'string', short: 'o' }, begin: { type: 'string' }, end: { type: 'string' }, page: { type: 'string' } }, USAGE);
  if (wantsHelp(p, USAGE)) return 0;
  const out = stringFlag(p, 'out');
  if (!out || p.positionals.length > 0) throw new UsageError('txkv backup needs --out FILE (and no other arguments)', USAGE);
  const t = clientTarget(p);
  const begin = parseBytesArg(stringFlag(p, 'begin') ?? '', t.hex, 'begin');
  const end = stringFlag(p, 'end') !== undefined ? parseBytesArg(stringFlag(p, 'end')!, t.hex, 'end') : new Uint8Array([0xff]);
  const page = intFlag(p, 'page', USAGE) ?? 1000;
  const tmp = `${out}.partial`;
  // the output is opened before connecting: a path that cannot be written fails at once,
  // naming the path the user gave, and nothing is left behind
  const fd = openOutput(out, tmp);
  let db: Awaited<ReturnType<typeof connectTo>>;
  try {
    // the server's MVCC window is the bound, not the client's own transaction timeout
    db = await connectTo(t, 3_600_000);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  const started = Date.now();
  try {
    const tx = db.createReadOnlyTransaction();
    const readVersion = await tx.getReadVersion();
    fs.writeSync(fd, JSON.stringify({ format: BACKUP_FORMAT, formatVersion: 1, readVersion: String(readVersion), begin: b64(begin), end: b64(end), createdAt: new Date().toISOString() }) + '\n');
    let rows = 0;
    let bytes = 0;
    let cursor = begin;
    for (;;) {
      const r = await tx.snapshotGetRange({ key: cursor, inclusive: true }, { key: end, inclusive: false }, { limit: page });
      let chunk = '';
      for (const { key, value } of r.kvs) {
        chunk += `{"k":"${b64(key)}","v":"${b64(value)}"}\n`;
        bytes += key.length + value.length;
      }
      rows += r.kvs.length;
      if (chunk) fs.writeSync(fd, chunk);
      if (!r.hasMore || r.kvs.length === 0) break;
      cursor = keyAfter(r.kvs[r.kvs.length - 1]!.key);
    }
    fs.writeSync(fd, JSON.stringify({ end: true, rows, bytes }) + '\n');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, out);
    process.stdout.write(`backed up ${rows} rows (${bytes} bytes of keys and values) at read version ${readVersion} to ${out} in ${Date.now() - started} ms\n`);
    return 0;
  } catch (err) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
    fs.rmSync(tmp, { force: true });
    if (err instanceof TxnError && err.code === 'TOO_OLD') {
      throw new Error(
        `the backup took longer than the server's MVCC window (${Date.now() - started} ms so far) and its read version expired (TOO_OLD); ` +
          'back up smaller ranges with --begin/--end, or raise mvccWindowMs on the server for the duration',
      );
    }
    throw err;
  } finally {
    await db.close();
  }
}
