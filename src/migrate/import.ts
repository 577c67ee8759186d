// Loading a txkv-kvdump (kvdump.ts) into txkv, and checking txkv against one. Used by
// `txkv import` (src/cli/import.ts); the procedure is integrations/3fs/migrate/README.md.
//
// load: the dump is checked end to end first (magic, lengths, ascending keys, count and
// SHA-256 against its trailer), so a truncated or corrupt dump writes nothing. Then its
// records go out in transactions of about batchBytes, `parallel` of them in flight. The
// writes are blind sets: no reads, no conflicts, and a batch that fails with a retryable
// error (or MAYBE_COMMITTED) is simply written again — setting the same keys twice is
// harmless. Not atomic as a whole: run it again after a failure.
//
// verify: reads [begin, end) of the dump's header back from txkv in key order and walks it
// beside the dump: count, SHA-256 of the rows read (same encoding as the dump's records),
// and the first differences (missing in txkv, extra in txkv, different value).
import { createHash } from 'node:crypto';
import type { Database } from '../client/database.js';
import { TxnError } from '../errors.js';
import { mutationBytes } from '../keys/limits.js';
import { DumpReader, updateRecordHash, type DumpHeader, type DumpRecord, type DumpTrailer } from './kvdump.js';

export interface Progress {
  phase: 'check' | 'load' | 'verify';
  rows: number;
  totalRows: number;
  bytes: number;
  elapsedMs: number;
}

export interface LoadOptions {
  /** Transactions in flight (default 8). */
  parallel?: number;
  /** Bytes of keys and values per transaction (default 500000; txkv's limit is 10 MB). */
  batchBytes?: number;
  /** Called about every progressMs (default 1000) and at the end of each phase. */
  onProgress?: (p: Progress) => void;
  progressMs?: number;
  /** Attempts per batch on retryable errors and MAYBE_COMMITTED (default 20). */
  maxAttempts?: number;
  /** checkDump's result for this file, when the caller already checked it. */
  checked?: { header: DumpHeader; trailer: DumpTrailer };
}

export interface LoadResult {
  header: DumpHeader;
  trailer: DumpTrailer;
  rows: number;
  bytes: number;
  transactions: number;
  retries: number;
  loadMs: number;
}

export interface Difference {
  kind: 'missing' | 'extra' | 'value';
  key: Uint8Array;
}

export interface VerifyResult {
  /** Rows of [begin, end) in txkv. */
  rows: number;
  sha256: string;
  /** Equal count and SHA-256, and no difference. */
  match: boolean;
  expected: DumpTrailer;
  /** The first `maxDifferences` differences, in key order. */
  differences: Difference[];
  differenceCount: number;
  verifyMs: number;
}

const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

function ticker(phase: Progress['phase'], totalRows: number, opts: LoadOptions): { tick(rows: number, bytes: number, force?: boolean): void } {
  const started = Date.now();
  let last = 0;
  const every = opts.progressMs ?? 1000;
  return {
    tick(rows, bytes, force = false) {
      const now = Date.now();
      if (!opts.onProgress || (!force && now - last < every)) return;
      last = now;
      opts.onProgress({ phase, rows, totalRows, bytes, elapsedMs: now - started });
    },
  };
}

/** Reads the whole dump once: DumpError when it is malformed, truncated or corrupt. */
export async function checkDump(path: string, opts: LoadOptions = {}): Promise<{ header: DumpHeader; trailer: DumpTrailer; bytes: number }> {
  const reader = new DumpReader(path);
  const t = ticker('check', 0, opts);
  let rows = 0;
  let bytes = 0;
  for await (const batch of reader.batches()) {
    rows += batch.length;
    for (const r of batch) bytes += r.key.length + r.value.length;
    t.tick(rows, bytes);
  }
  t.tick(rows, bytes, true);
  return { header: reader.header, trailer: reader.trailer, bytes };
}

/** Loads a dump into txkv (see the file comment). */
export async function loadDump(db: Database, path: string, opts: LoadOptions = {}): Promise<LoadResult> {
  const parallel = Math.max(1, opts.parallel ?? 8);
  const batchBytes = Math.max(1, opts.batchBytes ?? 500_000);
  const maxAttempts = Math.max(1, opts.maxAttempts ?? 20);
  const { header, trailer } = opts.checked ?? (await checkDump(path, opts));

  const started = Date.now();
  const t = ticker('load', trailer.count, opts);
  let rows = 0;
  let bytes = 0;
  let transactions = 0;
  let retries = 0;
  let failure: unknown = null;
  const inflight = new Set<Promise<void>>();

  const write = async (batch: DumpRecord[], size: number): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      const tx = db.createTransaction();
      try {
        for (const r of batch) tx.set(r.key, r.value);
        await tx.commit();
        break;
      } catch (err) {
        const again = err instanceof TxnError && (err.retryable || err.code === 'MAYBE_COMMITTED') && attempt < maxAttempts;
        if (!again) throw err;
        retries++;
        await new Promise((r) => setTimeout(r, Math.min(1000, 10 * 2 ** attempt) * (0.5 + Math.random() / 2)));
      }
    }
    rows += batch.length;
    bytes += size;
    transactions++;
    t.tick(rows, bytes);
  };
  const submit = async (batch: DumpRecord[], size: number): Promise<void> => {
    while (inflight.size >= parallel) await Promise.race(inflight);
    if (failure) throw failure;
    const p: Promise<void> = write(batch, size).then(
      () => {
        inflight.delete(p);
      },
      (err: unknown) => {
        inflight.delete(p);
        failure ??= err;
      },
    );
    inflight.add(p);
  };

  const reader = new DumpReader(path);
  let batch: DumpRecord[] = [];
  let size = 0;
  for await (const chunk of reader.batches()) {
    for (const r of chunk) {
      batch.push(r);
      size += mutationBytes(r.key.length, r.value.length);
      if (size >= batchBytes) {
        await submit(batch, size);
        batch = [];
        size = 0;
      }
    }
  }
  if (batch.length) await submit(batch, size);
  await Promise.all(inflight);
  if (failure) throw failure;
  t.tick(rows, bytes, true);
  return { header, trailer, rows, bytes, transactions, retries, loadMs: Date.now() - started };
}

/**
 * Compares txkv's [begin, end) (from the dump's header) with the dump, row by row.
 * Each page is read in a read-only transaction of its own (the source is quiescent during
 * a migration), the next page requested while the current one is compared.
 */
export async function verifyDump(
  db: Database,
  path: string,
  opts: LoadOptions & { pageRows?: number; maxDifferences?: number } = {},
): Promise<VerifyResult> {
  const started = Date.now();
  const header = DumpReader.readHeader(path);
  const begin = b64(header.begin);
  const end = b64(header.end);
  const pageRows = opts.pageRows ?? 10_000;
  const maxDiffs = opts.maxDifferences ?? 20;
  const hash = createHash('sha256');
  const differences: Difference[] = [];
  let differenceCount = 0;
  const differ = (kind: Difference['kind'], key: Uint8Array): void => {
    differenceCount++;
    if (differences.length < maxDiffs) differences.push({ kind, key: new Uint8Array(key) });
  };

  const readPage = async (from: Uint8Array, inclusive: boolean) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await db.createReadOnlyTransaction().snapshotGetRange({ key: from, inclusive }, { key: end, inclusive: false }, { limit: pageRows });
      } catch (err) {
        if (!(err instanceof TxnError && err.retryable) || attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, Math.min(1000, 10 * 2 ** attempt)));
      }
    }
  };

  // txkv rows as a stream of pages.
  let next = readPage(begin, true);
  let page: { key: Uint8Array; value: Uint8Array }[] = [];
  let pageAt = 0;
  let more = true;
  let rows = 0;
  const t = ticker('verify', 0, opts);
  const peek = async (): Promise<{ key: Uint8Array; value: Uint8Array } | null> => {
    while (pageAt >= page.length) {
      if (!more) return null;
      const r = await next;
      page = r.kvs;
      pageAt = 0;
      more = r.hasMore && r.kvs.length > 0;
      if (more) next = readPage(r.kvs[r.kvs.length - 1]!.key, false);
    }
    return page[pageAt]!;
  };
  const take = (): void => {
    const row = page[pageAt++]!;
    updateRecordHash(hash, row.key, row.value);
    rows++;
  };

  const reader = new DumpReader(path);
  for await (const chunk of reader.batches()) {
    for (const want of chunk) {
      for (;;) {
        const have = await peek();
        const c = have ? Buffer.compare(have.key, want.key) : 1;
        if (c < 0) {
          differ('extra', have!.key);
          take();
          continue;
        }
        if (c > 0) differ('missing', want.key);
        else {
          if (Buffer.compare(have!.value, want.value) !== 0) differ('value', want.key);
          take();
        }
        break;
      }
    }
    t.tick(rows, 0);
  }
  for (let have = await peek(); have; have = await peek()) {
    differ('extra', have.key);
    take();
  }
  const sha256 = hash.digest('hex');
  const expected = reader.trailer;
  t.tick(rows, 0, true);
  return {
    rows,
    sha256,
    expected,
    match: differenceCount === 0 && rows === expected.count && sha256 === expected.sha256,
    differences,
    differenceCount,
    verifyMs: Date.now() - started,
  };
}
