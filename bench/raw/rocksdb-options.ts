// RocksDB column and database options for txkv's workload, measured one at a time on the
// binding alone (no txkv code): 100,000 rows of 16-byte keys and 8-100-byte values in one
// column family, then buffered 10-key write batches, 10-key multi-gets (r10's shape),
// 1,000-row scans, and the size on disk. Each configuration runs in a fresh directory.
//   npm run build && node dist/bench/raw/rocksdb-options.js [rows] [seconds per phase]

import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RocksLevel } from '@nxtedition/rocksdb';
import { kvKey, makeValue } from '../data.js';
import { Rng } from '../rng.js';

export const CONFIGS: { name: string; db: Record<string, unknown>; column: Record<string, unknown> }[] = [
  { name: 'binding defaults (ZSTD WAL, ZSTD+dict, 8 MB cache)', db: {}, column: {} },
  { name: 'walCompression: false', db: { walCompression: false }, column: {} },
  { name: 'compression: false', db: {}, column: { compression: false } },
  { name: "optimize: 'point-lookup' (hash index, ribbon filter, memtable bloom)", db: {}, column: { optimize: 'point-lookup' } },
  { name: 'cacheSize: 64 MB', db: {}, column: { cacheSize: 64 << 20 } },
  {
    name: 'chosen: no WAL compression, point-lookup, 32 MB cache',
    db: { walCompression: false },
    column: { optimize: 'point-lookup', cacheSize: 32 << 20 },
  },
];

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return n;
}

function rate(seconds: number, step: () => number): number {
  const t0 = performance.now();
  let ops = 0;
  while (performance.now() - t0 < seconds * 1000) ops += step();
  return ops / ((performance.now() - t0) / 1000);
}

async function measure(cfg: (typeof CONFIGS)[number], rows: number, seconds: number): Promise<Record<string, number | string>> {
  const dir = mkdtempSync(join(tmpdir(), 'txkv-rocks-opts-'));
  const db = new RocksLevel(dir);
  await db.open({ ...cfg.db, createIfMissing: true, columns: { default: {}, s0: cfg.column } } as never);
  const column = db.columns.s0!;
  const rng = new Rng(7);
  try {
    for (let i = 0; i < rows; i += 1000) {
      const b = db.batch();
      for (let j = i; j < Math.min(rows, i + 1000); j++) {
        const k = kvKey(j);
        b._put(k, makeValue(rng, k), { column });
      }
      b._writeSync({ sync: false });
      void b.close();
    }
    const writes = rate(seconds, () => {
      const b = db.batch();
      for (let j = 0; j < 10; j++) {
        const k = kvKey(rng.int(rows));
        b._put(k, makeValue(rng, k), { column });
      }
      b._writeSync({ sync: false });
      void b.close();
      return 10;
    });
    const reads = rate(seconds, () => {
      const keys: Uint8Array[] = [];
      for (let j = 0; j < 10; j++) keys.push(kvKey(rng.int(rows)));
      db._getManySync(keys, { column });
      return 10;
    });
    const scans = rate(seconds, () => {
      const start = rng.int(Math.max(1, rows - 1000));
      const it = db.iterator({ column, gte: kvKey(start), lt: kvKey(rows), keyEncoding: 'buffer', valueEncoding: 'buffer' });
      const n = it._nextvSync(1000).rows.length / 2;
      void it.close();
      return n;
    });
    return {
      config: cfg.name,
      'writes keys/s': Math.round(writes),
      'multi-get keys/s': Math.round(reads),
      'scan rows/s': Math.round(scans),
      'disk MB': +(dirBytes(dir) / 1e6).toFixed(1),
    };
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows = Number(process.argv[2] ?? 100_000);
const seconds = Number(process.argv[3] ?? 2);
const out: Record<string, number | string>[] = [];
for (const cfg of CONFIGS) out.push(await measure(cfg, rows, seconds));
console.table(out);
