// The paced (open-loop) generator's clock: latency counts from each transaction's intended
// start, or from its actual start when a timer fired early; and the wait before a start is
// split into the generator's own lateness and the wait behind the client's previous
// transaction. A stand-in system (a session whose attempts take a set time) so that what is
// measured is the generator itself; every system runs through the same code.
import { describe, expect, it } from 'vitest';
import { decodeFromCompressedBase64 } from 'hdr-histogram-js';
import type { Adapter, BenchSession } from '../../bench/adapter.js';
import { runClients } from '../../bench/generator.js';
import { runQueueWaitNs } from '../../bench/proc-cpu.js';
import type { Workload } from '../../bench/workloads/workload.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const workload = {
  name: 'fake',
  description: 'one no-op per transaction',
  opUnit: 'ops',
  defaultClients: 1,
  ordered: false,
  keyspace: 'flat',
  preload: () => [],
  client: () => ({ next: () => ({ op: 'fake', shape: { kind: 'wo' }, run: async () => 1 }) }),
} as unknown as Workload;

/** A system whose every attempt takes `ms` (timed here, from the call to the answer). */
function fakeSystem(ms: number): { adapter: Adapter; durations: number[] } {
  const durations: number[] = [];
  const session: BenchSession = {
    async attempt(_shape, fn) {
      const t = performance.now();
      if (ms > 0) await sleep(ms);
      const r = await fn({} as never);
      durations.push(performance.now() - t);
      return r;
    },
    async close() {},
  };
  const adapter = { system: 'fake', durability: '-', open: async () => {}, session: async () => session, load: async () => {}, close: async () => {} } as Adapter;
  return { adapter, durations };
}

const run = (adapter: Adapter, ratePerSec: number, seconds: number) =>
  runClients(adapter, { workload, clients: 1, clientOffset: 0, seconds, warmupSeconds: 0, rows: 1, seed: 1, verify: false, ratePerSec });

describe('paced generator', () => {
  it('never records a transaction as shorter than it took (a timer that fires early starts the clock)', async () => {
    const { adapter, durations } = fakeSystem(2);
    const raw = await run(adapter, 200, 1.5);
    const hist = decodeFromCompressedBase64(raw.hist);
    expect(hist.totalCount).toBeGreaterThan(100);
    const shortest = Math.min(...durations);
    // the histogram keeps 3 significant digits: allow its rounding
    expect(hist.minNonZeroValue / 1000).toBeGreaterThanOrEqual(shortest * 0.99);
    // Linux: how long the generator's thread waited for a CPU over the window, a share of it
    if (process.platform === 'linux') {
      expect(raw.generator?.runQueueWaitPct).toBeGreaterThanOrEqual(0);
      expect(raw.generator?.runQueueWaitPct).toBeLessThanOrEqual(100);
    }
  }, 20_000);

  it.runIf(process.platform === 'linux')("reads a process's run-queue wait from /proc: the main thread's within all threads'", () => {
    const w = runQueueWaitNs([process.pid]);
    expect(w.mainNs).toBeGreaterThan(0);
    expect(w.allNs).toBeGreaterThanOrEqual(w.mainNs);
    expect(runQueueWaitNs([2 ** 30])).toEqual({ mainNs: 0, allNs: 0 }); // no such process
  });

  it("splits a late start into the client's previous transaction and the generator's own delay", async () => {
    // 40 ms per attempt against one every 25 ms: every start waits behind the previous one
    const slow = fakeSystem(40);
    const behind = await run(slow.adapter, 40, 1.5);
    // (the schedule falls further behind with every transaction: ~0.5 s by the end; a loaded
    // machine can still make a start or two late by itself)
    expect(behind.generator?.behindP99Ms).toBeGreaterThan(100);
    expect(behind.generator?.lateP99Ms).toBeLessThan(behind.generator!.behindP99Ms! / 4);

    // instant attempts (none in flight when the loop blocks), but the generator's own loop
    // blocked 30 ms out of every 50: its starts are late by its own fault
    const fast = fakeSystem(0);
    const block = setInterval(() => {
      const end = performance.now() + 30;
      while (performance.now() < end);
    }, 50);
    let late;
    try {
      late = await run(fast.adapter, 100, 1.5);
    } finally {
      clearInterval(block);
    }
    expect(late.generator?.lateP99Ms).toBeGreaterThan(10);
    // (5 ms, or a quarter of the late p99 of the same run, as above: a loaded machine can
    // make an instant attempt's own start late too)
    expect(late.generator?.behindP99Ms).toBeLessThan(Math.max(5, late.generator!.lateP99Ms! / 4));
  }, 20_000);
});
