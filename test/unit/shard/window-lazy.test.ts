// The window's sorted map of written keys (mvcc.ts) is filled from the write log only when
// a range read needs it: changedAfter and survivors against a brute-force model, with the
// defaults and with small scan limits and chunks (scans, partial catch-ups, merges of both,
// catch-ups finished by recorded commits), through prunes and the log's compaction.
import { describe, expect, it } from 'vitest';
import { VersionWindow } from '../../../src/shard/mvcc.js';
import { mulberry32, randInt, seeds } from '../../support/rng.js';

const LAZY = [{}, { scanLimit: 0 }, { scanLimit: 3, catchUpChunk: 5 }, { scanLimit: 1, catchUpChunk: 1 }];

describe.each(seeds(3, 21).flatMap((seed) => LAZY.map((lazy) => [seed, lazy] as const)))('VersionWindow range lookups against a model (seed %i, %j)', (seed, lazy) => {
  it('changedAfter and survivors list exactly the keys whose newest write is newer, in order', () => {
    const rng = mulberry32(seed);
    const letters = 'abcdefgh';
    const key = (): string => letters[randInt(rng, letters.length)]! + (rng() < 0.5 ? '' : letters[randInt(rng, letters.length)]!);
    const w = new VersionWindow(0, lazy);
    const newest = new Map<string, number>();
    let version = 0;
    const expected = (after: number, b: string, e: string, reverse: boolean): string[] => {
      const ks = [...newest].filter(([k, v]) => k >= b && k < e && v > after).map(([k]) => k).sort();
      return reverse ? ks.reverse() : ks;
    };
    for (let step = 0; step < 4000; step++) {
      version += 1 + randInt(rng, 2);
      const changes = new Map<string, Uint8Array | null>();
      for (let i = 1 + randInt(rng, 3); i > 0; i--) changes.set(key(), null);
      w.record(version, changes, rng() < 0.02 ? [['b', 'c']] : []);
      for (const k of changes.keys()) newest.set(k, version);
      if (rng() < 0.3) {
        const a = key();
        const z = key();
        const [b, e] = a <= z ? [a, z + '\0'] : [z, a + '\0'];
        const span = version - w.horizon;
        const r = w.horizon + (rng() < 0.8 ? span - randInt(rng, Math.min(span, 10) + 1) : randInt(rng, span + 1));
        const reverse = rng() < 0.3;
        expect([...w.changedAfter(r, b, e, reverse)], `seed ${seed} step ${step}: changedAfter(${r}, ${b}, ${e}, ${reverse})`).toEqual(expected(r, b, e, reverse));
        const c = w.horizon + 1 + randInt(rng, version - w.horizon);
        expect(w.survivors(b, e, c), `seed ${seed} step ${step}: survivors(${b}, ${e}, ${c})`).toEqual(expected(c - 1, b, e, false));
      }
      if (rng() < 0.03) w.dropTombstones(w.prune(Math.max(w.horizon, version - randInt(rng, 200))));
    }
  });
});

describe('VersionWindow: the sorted map stays empty while no range read needs it', () => {
  it('point writes and point reads never fill it', () => {
    const w = new VersionWindow(0);
    for (let ver = 1; ver <= 1000; ver++) w.record(ver, new Map([[`k${ver % 300}`, null]]));
    expect(w.valueAt('k5', 1, new Uint8Array([1]))).toBe(null);
    expect(w.lastWrite('k5')).toBe(905);
    expect((w as unknown as { ordered: { size: number } }).ordered.size).toBe(0);
    // a range read with an old read version fills it
    expect([...w.changedAfter(998, 'k1', 'k2')]).toEqual(['k100']); // written at 1000 (k99 at 999 is outside)
    expect([...w.changedAfter(1, 'k10', 'k100')]).toEqual(['k10']);
    expect((w as unknown as { ordered: { size: number } }).ordered.size).toBe(300);
  });

  it('an old range read catches up a chunk; the writes after it finish the catch-up', () => {
    const w = new VersionWindow(0, { catchUpChunk: 10 });
    const ordered = (): number => (w as unknown as { ordered: { size: number } }).ordered.size;
    for (let ver = 1; ver <= 1000; ver++) w.record(ver, new Map([[`k${String(ver).padStart(4, '0')}`, null]]));
    expect([...w.changedAfter(0, 'k0005', 'k0008')]).toEqual(['k0005', 'k0006', 'k0007']); // scanned
    expect(ordered()).toBe(0);
    expect([...w.changedAfter(0, 'k0010', 'k0012')]).toEqual(['k0010', 'k0011']); // scans would cost more: a chunk caught up
    expect(ordered()).toBe(10);
    // each commit brings its write and 68 more entries in, until the map is up to date
    w.record(1001, new Map([['j1001', null]]));
    expect(ordered()).toBe(10 + 4 + 64);
    for (let ver = 1002; ver <= 1020; ver++) w.record(ver, new Map([[`j${ver}`, null]]));
    // the catch-up ended once the map reached the log's end (not the log arrays' capacity);
    // the few writes after that stay in the log for range reads to scan
    expect((w as unknown as { sync: { catchingUp: boolean } }).sync.catchingUp).toBe(false);
    expect(ordered()).toBeGreaterThanOrEqual(1000);
    expect(ordered()).toBeLessThan(1020);
  });
});
