import { constants, PerformanceObserver } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { IdTable } from '../../../src/client/id-table.js';
import { mulberry32, randInt, seeds } from '../../support/rng.js';

describe('IdTable (a connection pending requests)', () => {
  it('answers as a Map does under random adds, lookups and deletes (sequential, wrapping and colliding ids)', () => {
    for (const seed of seeds(20)) {
      const rnd = mulberry32(seed);
      const t = new IdTable<number>();
      const m = new Map<number, number>();
      // sequential ids as Connection hands them out, from near the wrap (2^32-2 -> 1) in half the seeds
      let next = seed % 2 === 0 ? 0xfffffffe - 300 : 1;
      const live: number[] = [];
      for (let step = 0; step < 5000; step++) {
        const r = rnd();
        if (r < 0.45) {
          // ids 64, 128, 256 ... apart land on the same home slot
          const id = rnd() < 0.1 && live.length > 0 ? ((live[randInt(rnd, live.length)]! + 64 * (1 + randInt(rnd, 8))) % 0xfffffffe) + 1 : next;
          if (id === next) next = next >= 0xfffffffe ? 1 : next + 1;
          t.set(id, step);
          if (!m.has(id)) live.push(id);
          m.set(id, step);
        } else if (r < 0.85 && live.length > 0) {
          // mostly the oldest (replies come roughly in order), sometimes any
          const at = rnd() < 0.7 ? 0 : randInt(rnd, live.length);
          const id = live.splice(at, 1)[0]!;
          expect(t.delete(id)).toBe(true);
          m.delete(id);
        } else {
          const id = rnd() < 0.5 && live.length > 0 ? live[randInt(rnd, live.length)]! : randInt(rnd, 0xfffffffe) + 1;
          expect(t.get(id)).toBe(m.get(id));
          if (!m.has(id)) expect(t.delete(id)).toBe(false);
        }
        expect(t.size).toBe(m.size);
      }
      for (const [id, v] of m) expect(t.get(id)).toBe(v);
      expect(t.values().sort((a, b) => a - b)).toEqual([...m.values()].sort((a, b) => a - b));
      t.clear();
      expect(t.size).toBe(0);
      for (const id of m.keys()) expect(t.get(id)).toBeUndefined();
    }
  });

  it('churned after a mark-compact, keeps no garbage alive (a Map\'s rehashed tables did: one mark-compact after another)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const t = new IdTable<{ payload: number[] }>();
    let id = 1;
    const live: number[] = [];
    // 300 requests in flight, each holding ~1 KB, the oldest answered first
    const churn = (n: number): void => {
      for (let i = 0; i < n; i++) {
        const k = id++;
        t.set(k, { payload: new Array<number>(120).fill(k) });
        live.push(k);
        if (live.length > 300) t.delete(live.shift()!);
      }
    };
    churn(50_000);
    gc(); // the table's arrays (and the 300 requests) are now in the old generation
    let majors = 0;
    const obs = new PerformanceObserver((l) => {
      for (const e of l.getEntries()) if (((e as PerformanceEntry & { detail?: { kind?: number } }).detail)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++;
    });
    obs.observe({ entryTypes: ['gc'] });
    churn(1_000_000); // ~1 GB allocated, all of it short-lived
    await new Promise((r) => setTimeout(r, 50)); // gc entries arrive after the turn
    obs.disconnect();
    // a Map in its place: 9 mark-compacts here (16, with 381 MB promoted, in a bare node 20 process)
    expect(majors).toBeLessThanOrEqual(2);
  });
});
