// `txkv backup`: a consistent snapshot of [BEGIN, END) at ONE version, of any size,
// while writes go on. The server pins a read version V (POST /v1/snapshots, see
// gateway/snapshots.ts): its MVCC window stops sliding past V, so reads at V stay
// possible for as long as the backup renews the pin's lease. The backup then reads the
// range page by page at V and writes JSON lines: a header {format, formatVersion,
// readVersion, snapshotId, begin, end}, one {k, v} line per row (base64), and a
// trailer {end, rows, bytes, sha256} (sha256 of the row lines, which restore checks).
//
// Resumable: the rows go to FILE.partial and are flushed as they come; if the backup
// stops (killed, network), `--resume` reads the partial file, re-attaches to the same
// snapshot (if the server still holds it: the lease is 30 s) and continues after the
// last row written. Progress (rows, rate, share of the counted keys) goes to stderr.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { TxnError } from '../errors.js';
import { compareKeys, keyAfter } from '../keys/bytes.js';
import { intFlag, parseFlags, stringFlag, UsageError, wantsHelp } from './args.js';
import { parseBytesArg } from './bytes-arg.js';
import { answerJson, httpRequest } from '../client/http-request.js';
import { caOf, CLIENT_FLAGS, CLIENT_USAGE, clientTarget, connectTo, httpBase, type ClientTarget } from './client-options.js';

export const BACKUP_FORMAT = 'txkv-backup';

export const USAGE = `usage: txkv backup --out FILE [--begin KEY] [--end KEY] [--page N] [--resume] [--no-progress] [client options]

Writes every row of [--begin, --end) (default: the whole user keyspace, "" to \\xff) as it
stood at ONE version: a consistent snapshot across all shards, of any size, while writes
go on. The server pins that version for the backup (its MVCC window stops sliding past it,
holding the history of writes made meanwhile, up to a memory budget), and the backup renews
the pin while it reads, page by page (--page rows per request, default 1000).

The file is JSON lines: a header {format, readVersion, begin, end, ...}, one {k, v} line per
row (base64), and a trailer {end: true, rows, bytes, sha256}; txkv restore checks the
trailer and the checksum before writing anything. Rows go to FILE.partial until the backup
is complete; a backup that stopped midway (killed, network) continues with --resume, at the
same version, if the server still holds its snapshot (30 s after the last renewal).
Progress goes to stderr (--no-progress: none).

${CLIENT_USAGE}`;

const b64 = (u: Uint8Array): string => Buffer.from(u.buffer, u.byteOffset, u.length).toString('base64');

/** Opens `tmp` for writing (append when resuming); an unwritable path is an error naming `out`. */
export function openOutput(out: string, tmp: string, append = false): number {
  try {
    return fs.openSync(tmp, append ? 'a' : 'w');
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

interface Header {
  format: string;
  formatVersion: number;
  readVersion: string;
  snapshotId: string;
  begin: string;
  end: string;
  createdAt: string;
}

/** What a partial file holds: its header, rows, the hash state and the last key; a torn last line is cut off. */
function readPartial(tmp: string): { header: Header; rows: number; bytes: number; hash: crypto.Hash; lastKey: Uint8Array | null } {
  const text = fs.readFileSync(tmp, 'utf8');
  const complete = text.endsWith('\n') ? text : text.slice(0, text.lastIndexOf('\n') + 1);
  if (complete.length !== text.length) fs.truncateSync(tmp, Buffer.byteLength(complete));
  const lines = complete.split('\n').filter((l) => l.length > 0);
  if (lines.length === 0) throw new Error(`${tmp} is empty: nothing to resume; start the backup again without --resume`);
  const header = JSON.parse(lines[0]!) as Header;
  if (header.format !== BACKUP_FORMAT || header.formatVersion !== 2) throw new Error(`${tmp} is not a resumable txkv backup`);
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  let lastKey: Uint8Array | null = null;
  for (let i = 1; i < lines.length; i++) {
    const row = JSON.parse(lines[i]!) as { k: string; v: string };
    hash.update(lines[i]! + '\n');
    const k = Buffer.from(row.k, 'base64');
    bytes += k.length + Buffer.from(row.v, 'base64').length;
    lastKey = new Uint8Array(k);
  }
  return { header, rows: lines.length - 1, bytes, hash, lastKey };
}

async function api(t: ClientTarget, method: string, p: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const url = `${httpBase(t.endpoint)}${p}`;
  let r;
  try {
    r = await httpRequest(url, { method, token: t.token, ca: caOf(t) });
  } catch (err) {
    throw new TxnError('NETWORK_ERROR', (err as Error).message);
  }
  return { status: r.status, body: answerJson(r) };
}

const errorText = (body: Record<string, unknown>): string => {
  const e = body.error as { code: string; message: string } | undefined;
  return e ? `${e.code}: ${e.message}` : JSON.stringify(body);
};

/** Counted keys of the shards (status), for the progress bar's total; null when unknown. */
async function keysOnServer(t: ClientTarget): Promise<number | null> {
  try {
    const s = (await api(t, 'GET', '/v1/status')).body as { shards?: { estimatedKeys: number | null }[] };
    const counts = (s.shards ?? []).map((x) => x.estimatedKeys);
    return counts.length > 0 && counts.every((n) => typeof n === 'number') ? counts.reduce((a, b) => a! + b!, 0) : null;
  } catch {
    return null;
  }
}

class Progress {
  private last = 0;
  private readonly started = Date.now();
  constructor(
    private readonly on: boolean,
    private readonly total: number | null,
    private readonly tty = process.stderr.isTTY === true,
  ) {}

  update(rows: number, force = false): void {
    if (!this.on) return;
    const now = Date.now();
    if (!force && now - this.last < (this.tty ? 200 : 2000)) return;
    this.last = now;
    const sec = Math.max((now - this.started) / 1000, 0.001);
    const rate = Math.round(rows / sec);
    let bar = '';
    if (this.total !== null && this.total > 0) {
      const f = Math.min(1, rows / this.total);
      const n = Math.round(f * 30);
      const eta = rate > 0 && f < 1 ? ` ETA ${Math.ceil((this.total - rows) / rate)} s` : '';
      bar = `[${'#'.repeat(n)}${'.'.repeat(30 - n)}] ${(f * 100).toFixed(1)}% `;
      bar += `${rows.toLocaleString('en-US')} of ~${this.total.toLocaleString('en-US')} rows, ${rate.toLocaleString('en-US')} rows/s${eta}`;
    } else bar = `${rows.toLocaleString('en-US')} rows, ${rate.toLocaleString('en-US')} rows/s`;
    process.stderr.write(this.tty ? `\r${bar}\x1b[K` : `backup: ${bar}\n`);
  }

  done(rows: number): void {
    this.update(rows, true);
    if (this.on && this.tty) process.stderr.write('\n');
  }
}

export async function backup(argv: string[]): Promise<number> {
  const p = parseFlags(
    argv,
    { ...CLIENT_FLAGS, out: { type: 'string', short: 'o' }, begin: { type: 'string' }, end: { type: 'string' }, page: { type: 'string' }, resume: { type: 'boolean' }, 'no-progress': { type: 'boolean' } },
    USAGE,
  );
  if (wantsHelp(p, USAGE)) return 0;
  const out = stringFlag(p, 'out');
  if (!out || p.positionals.length > 0) throw new UsageError('txkv backup needs --out FILE (and no other arguments)', USAGE);
  const t = clientTarget(p);
  const page = intFlag(p, 'page', USAGE) ?? 1000;
  const tmp = `${out}.partial`;
  const resume = p.flags.resume === true;
  if (resume && !fs.existsSync(tmp)) throw new Error(`--resume: ${tmp} does not exist (nothing to resume)`);
  if (resume && (stringFlag(p, 'begin') !== undefined || stringFlag(p, 'end') !== undefined)) throw new UsageError('--resume takes the range from the partial file; leave out --begin and --end', USAGE);

  let begin: Uint8Array;
  let end: Uint8Array;
  let header: Header;
  let rows = 0;
  let bytes = 0;
  let hash = crypto.createHash('sha256');
  let cursor: Uint8Array;
  let fd: number;
  if (resume) {
    const part = readPartial(tmp);
    header = part.header;
    begin = new Uint8Array(Buffer.from(header.begin, 'base64'));
    end = new Uint8Array(Buffer.from(header.end, 'base64'));
    rows = part.rows;
    bytes = part.bytes;
    hash = part.hash;
    cursor = part.lastKey === null ? begin : keyAfter(part.lastKey);
    // the server must still hold the snapshot: else the rows would mix two versions
    const r = await api(t, 'POST', `/v1/snapshots/${encodeURIComponent(header.snapshotId)}/renew`);
    if (r.status !== 200) {
      throw new Error(
        `cannot resume ${out}: the server no longer holds its snapshot at version ${header.readVersion} (${errorText(r.body)}); start the backup again without --resume`,
      );
    }
    fd = openOutput(out, tmp, true);
  } else {
    begin = parseBytesArg(stringFlag(p, 'begin') ?? '', t.hex, 'begin');
    end = stringFlag(p, 'end') !== undefined ? parseBytesArg(stringFlag(p, 'end')!, t.hex, 'end') : new Uint8Array([0xff]);
    // an inverted range read nothing and wrote a valid, empty backup: surely a typo
    if (compareKeys(begin, end) > 0) throw new UsageError(`--begin ${stringFlag(p, 'begin')} is after --end ${stringFlag(p, 'end') ?? '\\xff'}: the range [begin, end) is inverted`, USAGE);
    cursor = begin;
    // the output is opened before anything else: a path that cannot be written fails at
    // once, naming the path the user gave, and nothing is left behind
    fd = openOutput(out, tmp);
    let snap: { status: number; body: Record<string, unknown> };
    try {
      snap = await api(t, 'POST', '/v1/snapshots');
      if (snap.status !== 200) throw new Error(`the server refused a snapshot: ${errorText(snap.body)}`);
    } catch (err) {
      fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
      throw err;
    }
    header = {
      format: BACKUP_FORMAT,
      formatVersion: 2,
      readVersion: String(snap.body.readVersion),
      snapshotId: String(snap.body.id),
      begin: b64(begin),
      end: b64(end),
      createdAt: new Date().toISOString(),
    };
    fs.writeSync(fd, JSON.stringify(header) + '\n');
  }
  const readVersion = BigInt(header.readVersion);
  let db: Awaited<ReturnType<typeof connectTo>>;
  try {
    db = await connectTo(t, 3_600_000);
  } catch (err) {
    fs.closeSync(fd);
    if (!resume) fs.rmSync(tmp, { force: true });
    throw err;
  }
  const progress = new Progress(p.flags['no-progress'] !== true, await keysOnServer(t));
  const started = Date.now();
  // the lease is renewed while the backup reads; a failed renewal stops it with the reason
  let renewError: Error | null = null;
  const renew = setInterval(() => {
    api(t, 'POST', `/v1/snapshots/${encodeURIComponent(header.snapshotId)}/renew`).then(
      (r) => {
        if (r.status !== 200) renewError = new Error(`the server dropped the backup's snapshot at version ${header.readVersion}: ${errorText(r.body)}`);
      },
      () => {}, // a blip: the next renewal (or read) tells
    );
  }, 5000);
  try {
    for (;;) {
      if (renewError) throw renewError;
      // a fresh transaction per page at the pinned version: no client-side transaction lives long
      const tx = db.createReadOnlyTransaction();
      tx.setReadVersion(readVersion);
      const r = await tx.snapshotGetRange({ key: cursor, inclusive: true }, { key: end, inclusive: false }, { limit: page });
      let chunk = '';
      for (const { key, value } of r.kvs) {
        const line = `{"k":"${b64(key)}","v":"${b64(value)}"}\n`;
        chunk += line;
        hash.update(line);
        bytes += key.length + value.length;
      }
      rows += r.kvs.length;
      if (chunk) fs.writeSync(fd, chunk);
      progress.update(rows);
      if (!r.hasMore || r.kvs.length === 0) break;
      cursor = keyAfter(r.kvs[r.kvs.length - 1]!.key);
    }
    fs.writeSync(fd, JSON.stringify({ end: true, rows, bytes, sha256: hash.digest('hex') }) + '\n');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, out);
    progress.done(rows);
    await api(t, 'DELETE', `/v1/snapshots/${encodeURIComponent(header.snapshotId)}`).catch(() => {});
    process.stdout.write(`backed up ${rows} rows (${bytes} bytes of keys and values) at read version ${readVersion} to ${out} in ${Date.now() - started} ms\n`);
    return 0;
  } catch (err) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
    // rows written so far stay in the partial file: --resume continues while the snapshot lasts
    if (rows === 0 && !resume) fs.rmSync(tmp, { force: true });
    const e = err as Error;
    if (err instanceof TxnError && err.code === 'TOO_OLD') {
      throw new Error(`the backup's snapshot at version ${readVersion} is no longer readable (TOO_OLD: ${e.message}); start the backup again`);
    }
    throw new Error(`${e.message}${rows > 0 ? ` (${rows} rows are in ${tmp}: txkv backup --out ${out} --resume continues while the server holds the snapshot)` : ''}`);
  } finally {
    clearInterval(renew);
    await db.close();
  }
}
