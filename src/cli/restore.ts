// `txkv restore`: writes back the rows of a `txkv backup` file, in transactions of
// bounded size. Not atomic as a whole: a restore that fails midway leaves the rows
// written so far; run it again (it only sets keys, so it is idempotent).
import crypto from 'node:crypto';
import fs from 'node:fs';
import readline from 'node:readline';
import type { Transaction } from '../client/transaction.js';
import { intFlag, parseFlags, stringFlag, UsageError, wantsHelp } from './args.js';
import { BACKUP_FORMAT } from './backup.js';
import { CLIENT_FLAGS, CLIENT_USAGE, clientTarget, connectTo } from './client-options.js';
import { mutationBytes } from '../keys/limits.js';

export const USAGE = `usage: txkv restore --in FILE [--clear] [--batch-bytes N] [client options]

Writes the rows of a txkv backup file back. --clear first clears the backup's key range
[begin, end) (in its own transaction), so the range ends up exactly as backed up; without
it, keys in the range that are not in the backup are left alone. Rows are written in
transactions of about --batch-bytes (default 1000000) each: the restore is not atomic as a
whole, and running it again is safe. The whole file is verified first (every row, key
order, the trailer's row count and SHA-256): a truncated or damaged backup is refused
before anything is written.

${CLIENT_USAGE}`;

interface Header {
  format: string;
  formatVersion: number;
  readVersion: string;
  begin: string;
  end: string;
}

const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

async function* lines(file: string): AsyncGenerator<[Record<string, unknown>, string, number]> {
  let input: fs.ReadStream;
  try {
    input = fs.createReadStream(file);
    await new Promise<void>((resolve, reject) => input.once('open', () => resolve()).once('error', reject));
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  const rl = readline.createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  for await (const line of rl) {
    n++;
    if (!line.trim()) continue;
    try {
      yield [JSON.parse(line) as Record<string, unknown>, line, n];
    } catch {
      throw new Error(`${file}:${n}: not a JSON line: the file is damaged; refusing to restore it`);
    }
  }
}

async function* rows(file: string): AsyncGenerator<Record<string, unknown>> {
  for await (const [r] of lines(file)) yield r;
}

function compare(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/**
 * Verifies the whole file before anything is written: the header, every row (JSON with
 * base64 k and v), keys strictly increasing inside the backup's [begin, end), the
 * trailer's row count and, for format 2, the SHA-256 of the row lines.
 */
async function check(file: string): Promise<{ header: Header; count: number }> {
  let header: Header | null = null;
  let count = 0;
  let trailer: { rows: number; sha256?: string } | null = null;
  const hash = crypto.createHash('sha256');
  let prev: Uint8Array | null = null;
  let begin: Uint8Array = new Uint8Array(0);
  let end: Uint8Array = new Uint8Array([0xff]);
  for await (const [r, line, n] of lines(file)) {
    if (header === null) {
      if (r.format !== BACKUP_FORMAT) throw new Error(`${file} is not a txkv backup (no "${BACKUP_FORMAT}" header)`);
      header = r as unknown as Header;
      begin = unb64(header.begin);
      end = unb64(header.end);
    } else if (r.end === true) trailer = r as unknown as { rows: number; sha256?: string };
    else if (trailer !== null) throw new Error(`${file}: rows after the trailer`);
    else if (typeof r.k === 'string' && typeof r.v === 'string') {
      const k = unb64(r.k);
      if ((prev !== null && compare(k, prev) <= 0) || compare(k, begin) < 0 || compare(k, end) >= 0) {
        throw new Error(`${file}:${n}: key out of order or outside the backup's range: the file is damaged; refusing to restore it`);
      }
      prev = k;
      hash.update(line + '\n');
      count++;
    } else throw new Error(`${file}:${n}: a row without k and v`);
  }
  if (header === null) throw new Error(`${file} is empty`);
  if (trailer === null) throw new Error(`${file} has no trailer: the backup is truncated; refusing to restore it`);
  if (trailer.rows !== count) throw new Error(`${file}: trailer says ${trailer.rows} rows, found ${count}: the file is damaged; refusing to restore it`);
  if (trailer.sha256 !== undefined && trailer.sha256 !== hash.digest('hex')) {
    throw new Error(`${file}: the rows do not match the trailer's SHA-256: the file is damaged; refusing to restore it`);
  }
  return { header, count };
}

export async function restore(argv: string[]): Promise<number> {
  const p = parseFlags(argv, { ...CLIENT_FLAGS, in: { type: 'string', short: 'i' }, clear: { type: 'boolean' }, 'batch-bytes': { type: 'string' } }, USAGE);
  if (wantsHelp(p, USAGE)) return 0;
  const file = stringFlag(p, 'in');
  if (!file || p.positionals.length > 0) throw new UsageError('txkv restore needs --in FILE (and no other arguments)', USAGE);
  const batchBytes = intFlag(p, 'batch-bytes', USAGE) ?? 1_000_000;
  const { header, count } = await check(file);
  const t = clientTarget(p);
  const db = await connectTo(t, 60_000);
  const started = Date.now();
  try {
    if (p.flags.clear) {
      await db.transact(async (tx) => tx.clearRange(unb64(header.begin), unb64(header.end)));
    }
    let batch: [Uint8Array, Uint8Array][] = [];
    let size = 0;
    let written = 0;
    let transactions = 0;
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const b = batch;
      await db.transact(async (tx: Transaction) => {
        for (const [k, v] of b) tx.set(k, v);
      });
      written += b.length;
      transactions++;
      batch = [];
      size = 0;
    };
    let first = true;
    for await (const r of rows(file)) {
      if (first) {
        first = false;
        continue;
      }
      if (r.end === true) break;
      const k = unb64(r.k as string);
      const v = unb64(r.v as string);
      batch.push([k, v]);
      size += mutationBytes(k.length, v.length);
      if (size >= batchBytes) await flush();
    }
    await flush();
    process.stdout.write(`restored ${written} of ${count} rows (backup read version ${header.readVersion}) in ${transactions} transactions, ${Date.now() - started} ms\n`);
    return 0;
  } finally {
    await db.close();
  }
}
