// The balancer's decision function (coordinator/balancer.ts decide()): pure, so it is
// checked on maps and measurements built here, and in a simulation of the whole loop
// (decide, apply, measure again) with the load of keys sharing one prefix.
import { describe, expect, it } from 'vitest';
import { decide, loadSkew, type BalancerAction, type RangeMeasure } from '../../../src/coordinator/balancer.js';
import { ShardMap, defaultSplitPoints } from '../../../src/coordinator/shard-map.js';
import { DEFAULT_CONFIG } from '../../../src/config/server-config.js';
import { RangeLoad, QUANTILES } from '../../../src/shard/range-load.js';
import { mulberry32 } from '../../support/rng.js';

const config = { ...DEFAULT_CONFIG.distribution };
const NOW = 1_000_000;
const idle = (): RangeMeasure => ({ opsPerSec: 0, quantiles: [], bytes: 0, middle: null, movedAt: null, changedAt: null });

/** A map of [begin, end, owner] ranges. */
const mapOf = (workers: number, ranges: [string, string | null, number][], version = 1): ShardMap =>
  new ShardMap(version, { workers, ranges: ranges.map(([begin, end, owner]) => ({ begin, end, owner })) });

/** Keys acct/0000 .. acct/9999, the load spread evenly over them. */
const ACCTS = Array.from({ length: 10_000 }, (_, i) => `acct/${String(i).padStart(4, '0')}`);

/** Measures of a map whose load (ops/s in total) is spread evenly over `keys`: each range's share and its exact load quantiles. */
function uniformMeasures(map: ShardMap, keys: readonly string[], total: number, extra: Partial<RangeMeasure>[] = []): RangeMeasure[] {
  return map.ranges.map((r, i) => {
    const inside = keys.filter((k) => k >= r.begin && (r.end === null || k < r.end));
    const quantiles: string[] = [];
    if (inside.length >= 32) {
      for (let j = 1; j < QUANTILES; j++) {
        const k = inside[Math.floor((j * inside.length) / QUANTILES)]!;
        if (k > r.begin && quantiles[quantiles.length - 1] !== k) quantiles.push(k);
      }
    }
    return { opsPerSec: (total * inside.length) / keys.length, quantiles, bytes: inside.length * 100, middle: null, movedAt: null, changedAt: null, ...extra[i] };
  });
}

/** Applies an action to a map as Distribution would (a move leaves no previous owner here). */
function apply(map: ShardMap, a: BalancerAction): ShardMap {
  if (a.kind === 'split') return a.keys.reduce((m, k) => m.withSplit(k), map);
  if (a.kind === 'merge') return map.withMerge(a.key);
  const i = map.rangeAt(a.begin);
  expect(map.ranges[i]!.owner).toBe(a.from);
  return map.withOwner(i, a.to, 0).withoutPrev(i);
}

const shares = (map: ShardMap, m: readonly RangeMeasure[]): number[] => {
  const w = new Array<number>(map.workers).fill(0);
  map.ranges.forEach((r, i) => (w[r.owner]! += m[i]!.opsPerSec ?? 0));
  const total = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / total);
};

describe('balancer decide()', () => {
  const four = new ShardMap(1, defaultSplitPoints(4));

  it('splits a hot range on a hot worker at its load quantiles, into parts of at most the split share', () => {
    const m = uniformMeasures(four, ACCTS, 5000);
    const hot = four.indexOf('acct/');
    const a = decide(four, m, config, NOW);
    expect(a?.kind).toBe('split');
    if (a?.kind !== 'split') return;
    expect(a.begin).toBe(four.ranges[hot]!.begin);
    // share 100 %, threshold min(25 %, 0.5 / 4): 8 parts of 12.5 %, cut at every second sixteenth
    const q = m[hot]!.quantiles;
    expect(a.keys).toEqual([q[1], q[3], q[5], q[7], q[9], q[11], q[13]]);
    expect(a.reason).toMatch(/load 100 %/);
  });

  it('leaves a balanced layout alone (a big share on a worker within the band is not split)', () => {
    const m = four.ranges.map(() => ({ ...idle(), opsPerSec: 1000, quantiles: ['x'] }));
    expect(decide(four, m, config, NOW)).toBeNull();
  });

  it('loadActions false (a skew that has not lasted): no load split or move, a size split still happens; loadSkew names the skew', () => {
    const m = uniformMeasures(four, ACCTS, 5000);
    expect(decide(four, m, config, NOW, { loadActions: false })).toBeNull();
    expect(decide(four, m, config, NOW, { loadActions: true })?.kind).toBe('split');
    const hot = four.indexOf('acct/');
    expect(loadSkew(four, m.map((x) => x.opsPerSec), config)).toBe(`hot:${four.ranges[hot]!.owner}`);
    const big = m.map((x, i) => (i === hot ? { ...x, bytes: config.splitBytes + 1, middle: 'acct/5000' } : x));
    expect(decide(four, big, config, NOW, { loadActions: false })).toMatchObject({ kind: 'split', cause: 'size' });
    // within the band, or too little load: no skew
    expect(loadSkew(four, [1000, 1000, 1000, 1000], config)).toBeNull();
    expect(loadSkew(four, [10, 0, 0, 0], config)).toBeNull();
    expect(loadSkew(four, [1100, 1100, 1100, 500], config)).toBe('cold:3');
  });

  it('does nothing with load below minOpsPerSec, or with one worker', () => {
    expect(decide(four, uniformMeasures(four, ACCTS, 40), config, NOW)).toBeNull();
    const one = new ShardMap(1, []);
    expect(decide(one, uniformMeasures(one, ACCTS, 5000), config, NOW)).toBeNull();
  });

  it('moves the range that best evens the hottest and the coldest worker', () => {
    // worker 0 has ranges of 40, 20, 10 % ; workers 1, 2 have 15 % each; worker 3 none
    const map = mapOf(4, [
      ['', 'b', 0],
      ['b', 'c', 0],
      ['c', 'd', 0],
      ['d', 'e', 1],
      ['e', null, 2],
    ]);
    const ops = [400, 200, 100, 150, 150];
    const m = ops.map((o) => ({ ...idle(), opsPerSec: o }));
    // split share: min(0.25, 0.5/4) = 12.5 %; the 40 % range has no quantiles, so it cannot be split: move
    const a = decide(map, m, config, NOW);
    // gap 700 - 0: the range closest to 350 is the 400 one (max(300, 400) < 700)
    expect(a).toMatchObject({ kind: 'move', begin: '', from: 0, to: 3 });
  });

  it('does not move a range moved within the cooldown, nor one whose previous owner still serves old reads', () => {
    const map = new ShardMap(1, {
      workers: 2,
      ranges: [
        { begin: '', end: 'm', owner: 0, prev: { owner: 1, until: 5 } },
        { begin: 'm', end: null, owner: 0 },
      ],
    });
    const m = [
      { ...idle(), opsPerSec: 500 },
      { ...idle(), opsPerSec: 500, movedAt: NOW - 1000 },
    ];
    expect(decide(map, m, config, NOW)).toBeNull();
    m[1]!.movedAt = NOW - config.cooldownMs - 1;
    // the 50 % range: max(500, 500) < 1000 - margin
    expect(decide(map, m, config, NOW)).toMatchObject({ kind: 'move', begin: 'm', to: 1 });
  });

  it('does not move when the move would not lower the pair maximum by the margin (no flapping)', () => {
    // 60/40 on two workers: outside the 20 % band (mean 50, high 60 -> 60.5 is out), one range each
    const map = mapOf(2, [
      ['', 'm', 0],
      ['m', null, 1],
    ]);
    const m = [
      { ...idle(), opsPerSec: 605 },
      { ...idle(), opsPerSec: 395 },
    ];
    expect(decide(map, m, config, NOW)).toBeNull();
  });

  it('splits by size at the census middle key', () => {
    const map = mapOf(2, [
      ['', 'm', 0],
      ['m', null, 1],
    ]);
    const m = [idle(), { ...idle(), bytes: config.splitBytes + 1, middle: 'q' }];
    expect(decide(map, m, config, NOW)).toMatchObject({ kind: 'split', begin: 'm', keys: ['q'] });
    // a middle outside the range is ignored
    m[1]!.middle = 'a';
    expect(decide(map, m, config, NOW)).toBeNull();
  });

  it('merges cold small neighbours on one worker once they are older than the cooldown', () => {
    const map = mapOf(2, [
      ['', 'b', 0],
      ['b', 'c', 0],
      ['c', 'd', 1],
      ['d', null, 0],
    ]);
    // 0.2 ops/s each: an idle server (below minOpsPerSec, whose 2 % is the bar)
    const m = [
      { ...idle(), opsPerSec: 0.2, changedAt: NOW - 1000 },
      { ...idle(), opsPerSec: 0.2 },
      { ...idle(), opsPerSec: 0.2 },
      { ...idle(), opsPerSec: 0.2 },
    ];
    // the first pair changed within the cooldown; the others have different owners: the
    // island 'd' (worker 0 has other ranges) moves next to 'c' to merge later, while 'c',
    // worker 1's only range, stays
    expect(decide(map, m, config, NOW)).toMatchObject({ kind: 'move', cause: 'cold', begin: 'd', from: 0, to: 1 });
    m[0]!.changedAt = NOW - config.cooldownMs;
    expect(decide(map, m, config, NOW)).toMatchObject({ kind: 'merge', key: 'b' });
    // too big together, or not measured, or too hot: no merge
    expect(decide(map, m.map((x) => ({ ...x, bytes: config.mergeBytes / 2 })), config, NOW)).toBeNull();
    expect(decide(map, m.map((x) => ({ ...x, bytes: null })), config, NOW)).toBeNull();
    expect(decide(map, m.map((x) => ({ ...x, opsPerSec: 10 })), config, NOW)).toBeNull();
  });

  it('moves by size when the load is within its band: the range that best evens the biggest and the smallest worker', () => {
    const MiB = 1024 * 1024;
    // worker 0 holds 3 ranges of 100 MiB, workers 1 and 2 one of 50 MiB each; the load is even
    const map = mapOf(3, [
      ['', 'b', 0],
      ['b', 'c', 0],
      ['c', 'd', 0],
      ['d', 'e', 1],
      ['e', null, 2],
    ]);
    const m = [100, 100, 100, 50, 50].map((b, i) => ({ ...idle(), bytes: b * MiB, opsPerSec: [240, 30, 30, 300, 300][i]! }));
    // bytes 300 / 50 / 50, mean 133: worker 0 out of the 25 % band; gap 250: a 100 MiB range
    // (the closest to 125) moves, but not the one with 240 ops/s (worker 1 would carry 540,
    // above the load band's 360): 'b' with 30
    expect(decide(map, m, config, NOW)).toMatchObject({ kind: 'move', cause: 'size', begin: 'b', from: 0, to: 1 });
    // not when it would take the receiver's load out of the band (each 100 MiB range now carries 200 ops/s)
    const hot = m.map((x, i) => ({ ...x, opsPerSec: [200, 200, 200, 300, 300][i]! }));
    // load 600 / 300 / 300 is outside the band itself: the load move comes first
    expect(decide(map, hot, config, NOW)).toMatchObject({ kind: 'move', cause: 'load' });
    // load within the band (worker 0 at 400 with 100 ops/s ranges, the others at 300 and 330) but a move would lift worker 1 to 500 > 412: none by size
    const tight = m.map((x, i) => ({ ...x, opsPerSec: [133, 133, 134, 300, 330][i]! }));
    expect(decide(map, tight, config, NOW)).toBeNull();
    // small data (gap below balanceMinBytes) is not moved
    expect(decide(map, m.map((x) => ({ ...x, bytes: x.bytes! / 10 })), config, NOW)).toBeNull();
    // nor while a range is not counted yet
    expect(decide(map, m.map((x, i) => ({ ...x, bytes: i === 4 ? null : x.bytes })), config, NOW)).toBeNull();
    // nor a range within the cooldown of its last move: another one goes
    const rested = m.map((x, i) => ({ ...x, movedAt: i === 1 ? NOW - 1000 : null }));
    expect(decide(map, rested, config, NOW)).toMatchObject({ kind: 'move', cause: 'size', begin: 'c' });
  });

  it('simulated by size: a big range on one idle worker is split at its middle and its parts spread until every worker is within the size band', () => {
    const MiB = 1024 * 1024;
    const cfg = { ...config, cooldownMs: 0 };
    // 1 GiB of rows in [k, l) on worker 2 of 4; the rest is empty; bytes are spread evenly over the keys
    let map = new ShardMap(1, { workers: 4, ranges: [{ begin: '', end: 'k', owner: 0 }, { begin: 'k', end: 'l', owner: 2 }, { begin: 'l', end: 'm', owner: 1 }, { begin: 'm', end: null, owner: 3 }] });
    const total = 1024 * MiB;
    // keys k000000 .. k999999: a range [b, e) holds total * (its share of them)
    const pos = (k: string | null, hi: number): number => (k === null || k >= 'l' ? hi : k < 'k' ? 0 : Math.min(hi, Number(`0.${k.slice(1).padEnd(6, '0')}`) * hi));
    const measure = (): RangeMeasure[] =>
      map.ranges.map((r) => {
        const bytes = pos(r.end, total) - pos(r.begin, total);
        const lo = pos(r.begin, 1e6);
        const hi = pos(r.end, 1e6);
        const mid = Math.floor((lo + hi) / 2);
        return { ...idle(), bytes, middle: hi - lo > 1 ? `k${String(mid).padStart(6, '0')}` : null };
      });
    const kinds = { split: 0, move: 0, merge: 0 };
    for (let step = 0; step < 100; step++) {
      const a = decide(map, measure(), cfg, NOW + step);
      if (!a) break;
      kinds[a.kind]++;
      // by size, or the empty ranges brought together and merged (cold)
      expect(a.kind === 'merge' || a.cause === 'size' || a.cause === 'cold', JSON.stringify(a)).toBe(true);
      map = apply(map, a);
    }
    const m = measure();
    const perWorker = [0, 0, 0, 0];
    map.ranges.forEach((r, i) => (perWorker[r.owner]! += m[i]!.bytes!));
    for (const b of perWorker) expect(Math.abs(b - total / 4)).toBeLessThanOrEqual((total / 4) * config.sizeBand);
    // 128 MiB ranges: 8 parts, spread over the four workers in a few moves; settled (the loop ended)
    expect(kinds.split).toBe(7);
    expect(kinds.move).toBeGreaterThanOrEqual(3);
    expect(kinds.move).toBeLessThanOrEqual(10);
    expect(kinds.merge).toBeLessThanOrEqual(2);
    expect(decide(map, m, cfg, NOW + 1000)).toBeNull();
  });

  it('simulated: keys on one prefix on 4 workers spread within the band in a few actions, then stay put under noisy measurements', () => {
    let map = four;
    const rng = mulberry32(7);
    const moved = new Map<string, number>();
    const actions: BalancerAction[] = [];
    let now = NOW;
    for (let step = 0; step < 100; step++) {
      now += 1000;
      const m = uniformMeasures(map, ACCTS, 5000).map((x, i) => ({ ...x, movedAt: moved.get(map.ranges[i]!.begin) ?? null }));
      const a = decide(map, m, config, now);
      if (!a) break;
      actions.push(a);
      if (a.kind === 'move') moved.set(a.begin, now);
      map = apply(map, a);
    }
    const counts = { split: 0, move: 0, merge: 0 };
    for (const a of actions) counts[a.kind]++;
    // at most the two empty ranges past the prefix, brought together on one worker and merged
    expect(counts.merge).toBeLessThanOrEqual(1);
    expect(counts.split).toBeLessThanOrEqual(2);
    expect(counts.move).toBeLessThanOrEqual(8);
    const final = uniformMeasures(map, ACCTS, 5000);
    for (const s of shares(map, final)) expect(s).toBeLessThanOrEqual((1 + config.loadBand) / 4 + 0.01);
    // measurements jittered by +-5 % for a minute: no move (moves need a margin and moved ranges rest)
    for (let step = 0; step < 60; step++) {
      now += 1000;
      const m = final.map((x, i) => ({ ...x, opsPerSec: x.opsPerSec! * (0.95 + 0.1 * rng()), movedAt: moved.get(map.ranges[i]!.begin) ?? null }));
      const a = decide(map, m, config, now);
      if (a) {
        expect(a.kind).toBe('move');
        moved.set((a as { begin: string }).begin, now);
        map = apply(map, a);
        actions.push(a);
      }
    }
    expect(actions.length - counts.split - counts.move).toBeLessThanOrEqual(2);
  });
});

describe('RangeLoad (a shard counting its ranges)', () => {
  it('counts reads and writes per owned range, keeps counts across a map change for unchanged ranges, and reports load quantiles', () => {
    const l = new RangeLoad();
    l.setRanges([
      ['a', 'm'],
      ['x', null],
    ], 0);
    const rng = mulberry32(3);
    for (let i = 0; i < 4000; i++) l.read(`b${String(Math.floor(rng() * 1000)).padStart(4, '0')}`);
    for (let i = 0; i < 10; i++) l.write('y');
    l.read('p'); // not owned: not counted
    l.setRanges([
      ['a', 'm'],
      ['x', 'z'],
    ], 500);
    l.write('y');
    const [ab, xz] = l.report(1000);
    expect(ab).toMatchObject({ begin: 'a', end: 'm', reads: 4000, writes: 0, ms: 1000 });
    expect(xz).toMatchObject({ begin: 'x', end: 'z', reads: 0, writes: 1, ms: 500 });
    // the newest 256 samples of b0000..b0999: the quantiles cut them in sixteenths (the
    // median within 4 standard deviations, ~31 keys, of 500)
    expect(ab!.quantiles.length).toBe(15);
    const median = Number(ab!.quantiles[7]!.slice(1));
    expect(median).toBeGreaterThan(375);
    expect(median).toBeLessThan(625);
    expect(xz!.quantiles).toEqual([]);
    // counts restart after a report
    expect(l.report(2000)[0]).toMatchObject({ reads: 0, writes: 0, ms: 1000 });
  });
});
