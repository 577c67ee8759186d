// Raw limits of the storage layer: @nxtedition/rocksdb on a temp dir, no txkv code.
// Durable (sync) batched writes on one thread (what one shard worker can commit), and point
// reads (getMany of 10 random keys, the shape of an r10 transaction). Runs in its own process
// (compare.ts forks it), so a blocking fsync does not stall anything else.

import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kvKey, makeValue } from '../data.js';
import { Rng } from '../rng.js';

interface RocksBatch {
  put(key: Uint8Array, value: Uint8Array): RocksBatch;
  write(options?: { sync?: boolean }): Promise<void>;
}
interface RocksDb {
  open(options: { columns: Record<string, object> }): Promise<void>;
  batch(): RocksBatch;
  getMany(keys: Uint8Array[]): Promise<(Buffer | undefined)[]>;
  _getManySync(keys: Uint8Array[], options?: object): (Buffer | undefined)[];
  close(): Promise<void>;
}

export interface RocksRawResult {
  rows: number;
  /** Synchronous (fsync) batch writes, one thread, by keys per batch. */
  syncWrites: { keysPerBatch: number; batchesPerSec: number; keysPerSec: number; meanMs: number }[];
  /** getMany of 10 random keys from the main thread, synchronous API (no thread pool hop). */
  pointReadsSyncPerSec: number;
  /** getMany of 10 random keys through the async API (libuv thread pool), by calls in flight. */
  pointReadsAsync: { inFlight: number; readsPerSec: number }[];
}

async function timed(seconds: number, step: () => Promise<number>): Promise<{ ops: number; calls: number; ms: number }> {
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  let ops = 0;
  let calls = 0;
  while (performance.now() < until) {
    ops += await step();
    calls++;
  }
  return { ops, calls, ms: performance.now() - t0 };
}

export async function measureRocksDb(o: { rows: number; seconds: number }): Promise<RocksRawResult> {
  const require = createRequire(import.meta.url);
  const { RocksLevel } = require('@nxtedition/rocksdb') as { RocksLevel: new (dir: string) => RocksDb };
  const dir = mkdtempSync(join(tmpdir(), 'txkv-bench-rocksdb-'));
  const db = new RocksLevel(dir);
  await db.open({ columns: { default: {} } });
  const rng = new Rng(7);
  try {
    // Preload (not synced, large batches).
    for (let i = 0; i < o.rows; i += 1000) {
      const b = db.batch();
      for (let j = i; j < Math.min(o.rows, i + 1000); j++) {
        const k = kvKey(j);
        b.put(k, makeValue(rng, k));
      }
      await b.write({ sync: false });
    }
    const syncWrites: RocksRawResult['syncWrites'] = [];
    for (const keysPerBatch of [1, 10, 100, 1000]) {
      const r = await timed(o.seconds, async () => {
        const b = db.batch();
        for (let j = 0; j < keysPerBatch; j++) {
          const k = kvKey(rng.int(o.rows));
          b.put(k, makeValue(rng, k));
        }
        await b.write({ sync: true });
        return keysPerBatch;
      });
      syncWrites.push({
        keysPerBatch,
        batchesPerSec: Math.round((r.calls / r.ms) * 1000),
        keysPerSec: Math.round((r.ops / r.ms) * 1000),
        meanMs: Math.round((r.ms / r.calls) * 1000) / 1000,
      });
    }
    const keys10 = (): Uint8Array[] => Array.from({ length: 10 }, () => kvKey(rng.int(o.rows)));
    const rs = await timed(o.seconds, async () => db._getManySync(keys10(), {}).length);
    const pointReadsSyncPerSec = Math.round((rs.ops / rs.ms) * 1000);
    const pointReadsAsync: RocksRawResult['pointReadsAsync'] = [];
    for (const inFlight of [1, 8, 64]) {
      let asyncOps = 0;
      const t0 = performance.now();
      const until = t0 + o.seconds * 1000;
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (performance.now() < until) asyncOps += (await db.getMany(keys10())).length;
        }),
      );
      pointReadsAsync.push({ inFlight, readsPerSec: Math.round((asyncOps / (performance.now() - t0)) * 1000) });
    }
    return { rows: o.rows, syncWrites, pointReadsSyncPerSec, pointReadsAsync };
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const rows = Number(process.argv[2] ?? 100_000);
  const seconds = Number(process.argv[3] ?? 2);
  measureRocksDb({ rows, seconds }).then(
    (r) => {
      if (process.send) process.send(r);
      else process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
