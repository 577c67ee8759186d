// The census (metrics/census.ts) counts each shard's rows on the shard itself in small
// slices, so that no slice holds the shard thread (and so every commit and read of the
// shard) for long: issue 12's p99 at half of peak, where 1,000-row pages read and shipped
// to the main thread took 5-10 ms of shard time each. The test holds the slicing (how many
// slices a pass takes for big and small rows) and the exact counts (range clears
// included); the shard reports each slice's thread CPU time, which is not asserted here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SLICE_BYTES, SLICE_ROWS } from '../../src/metrics/census.js';
import { startTestServer, type TestServer } from '../support/server.js';

let t: TestServer;
let base: string;
beforeAll(async () => {
  t = await startTestServer({ shards: 2, splitPoints: ['m'], distribution: { enabled: false, censusIntervalMs: 100 } });
  base = `http://127.0.0.1:${t.server.port}`;
});
afterAll(async () => {
  await t?.close();
});

interface StatusShard {
  shardId: number;
  estimatedKeys: number | null;
  estimatedBytes: number | null;
  censusSlices: number;
  censusCpuMs: number;
  censusCpuMaxMs: number;
  censusSlowSlices: number;
}

async function shards(): Promise<StatusShard[]> {
  const st = (await (await fetch(`${base}/v1/status`)).json()) as { shards: StatusShard[] };
  return st.shards;
}

/** Waits for a census pass that counted `keys` rows and `bytes` bytes on shards 0 and 1. */
async function counted(keys: number[], bytes: number[]): Promise<StatusShard[]> {
  const deadline = Date.now() + 40_000;
  for (;;) {
    const s = await shards();
    if (s.map((x) => x.estimatedKeys).join() === keys.join() && s.map((x) => x.estimatedBytes).join() === bytes.join()) return s;
    if (Date.now() > deadline) throw new Error(`census never counted ${keys.join()} / ${bytes.join()}: ${JSON.stringify(s.map((x) => [x.estimatedKeys, x.estimatedBytes]))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('census slices', () => {
  it('counts every row exactly, in slices of at most SLICE_ROWS rows or SLICE_BYTES bytes', async () => {
    // shard 0: big values (a 1,000-row page of them is 16 MB); shard 1: many small rows
    const big = 'v'.repeat(16_000);
    const bigRows = 1100;
    const smallRows = 3000;
    const bytes = [0, 0];
    for (let i = 0; i < bigRows; i += 100) {
      await t.db.transact(async (tx) => {
        for (let j = i; j < i + 100; j++) {
          const key = `a/${String(j).padStart(5, '0')}`;
          tx.set(key, big);
          bytes[0]! += key.length + big.length;
        }
      });
    }
    await t.db.transact(async (tx) => {
      for (let j = 0; j < smallRows; j++) {
        const key = `x/${String(j).padStart(5, '0')}`;
        tx.set(key, 'small');
        bytes[1]! += key.length + 5;
      }
    });
    const s = await counted([bigRows, smallRows], bytes);
    const rowsPerSlice = Math.floor(SLICE_BYTES / (8 + big.length)) + 1;
    // slices, not pages: the big shard needs many more than its 2 former pages
    expect(s[0]!.censusSlices).toBeGreaterThanOrEqual(Math.ceil(bigRows / rowsPerSlice));
    expect(s[1]!.censusSlices).toBeGreaterThanOrEqual(Math.ceil(smallRows / SLICE_ROWS));
    // The slices' CPU time is reported (censusCpuMs, censusCpuMaxMs, censusSlowSlices in
    // /v1/status) but not asserted: on a shared VM a thread's CPU time includes what the
    // hypervisor stole, and a CI run at 08:59 on 2026-11-30 measured a mean of 3 ms for
    // 5-row slices that take 0.3-0.8 ms here. The slice counts above are what fails when
    // slicing breaks (1,000-row pages: 2 for the big shard, not 220).
    for (const x of s) expect(x.censusSlices, JSON.stringify(x)).toBeGreaterThan(0);
  }, 60_000);

  it('a range clear shows in the next pass (the slice counts what a range read would return)', async () => {
    await t.db.transact(async (tx) => {
      tx.clearRange('a/00000', 'a/00600');
    });
    const before = await shards();
    const bigBytes = 500 * (7 + 16_000);
    const smallBytes = before[1]!.estimatedBytes!;
    await counted([500, 3000], [bigBytes, smallBytes]);
  }, 60_000);
});
