// The resolver's conflict history (coordinator/resolver.ts), pure: no server, no thread.
import { describe, expect, it } from 'vitest';
import { toBytes } from '../../../src/keys/bytes.js';
import { ConflictHistory, readRangesOf, type ReadRange } from '../../../src/coordinator/resolver.js';
import { mulberry32, randInt, seeds } from '../../support/rng.js';

const NONE = { keys: [], ranges: [] };
const pt = (k: string): ReadRange => [k, null];

function historyWith(version: number, keys: string[], ranges: [string, string][] = []): ConflictHistory {
  const h = new ConflictHistory(0);
  h.record(version, { keys, ranges });
  return h;
}

describe('ConflictHistory.check', () => {
  it.each([
    // reads, read version, written keys at version 10, expected
    [[pt('k')], 9, ['k'], 'CONFLICT'],
    [[pt('k')], 10, ['k'], null],
    [[['k', 'k\0']], 9, ['k'], 'CONFLICT'],
    [[['a', 'c']], 5, ['b'], 'CONFLICT'],
    [[['a', 'c']], 5, ['c'], null],
    [[['a', 'c']], 5, ['a'], 'CONFLICT'],
    [[pt('b'), pt('x')], 5, ['x'], 'CONFLICT'],
    [[['c', 'a']], 5, ['b'], null], // an empty (inverted) range reads nothing
    [[], 5, ['a'], null],
  ] as [ReadRange[], number, string[], string | null][])('reads %j at %i against writes %j at 10 -> %s', (reads, rv, keys, expected) => {
    expect(historyWith(10, keys).check(rv, reads)).toBe(expected);
  });

  it('cleared ranges conflict with point and range reads they cover, end exclusive', () => {
    const h = historyWith(10, [], [['m', 'p']]);
    expect(h.check(9, [pt('n')])).toBe('CONFLICT');
    expect(h.check(9, [['a', 'm\0']])).toBe('CONFLICT');
    expect(h.check(9, [['o', 'z']])).toBe('CONFLICT');
    expect(h.check(9, [pt('p')])).toBe(null);
    expect(h.check(9, [['p', 'q']])).toBe(null);
    expect(h.check(9, [['a', 'm']])).toBe(null);
    expect(h.check(10, [pt('n')])).toBe(null);
  });

  it('a read version below the horizon is TOO_OLD; a blind write (no reads) never is', () => {
    const h = historyWith(10, ['x']);
    h.prune(10);
    expect(h.check(9, [['a', 'b']])).toBe('TOO_OLD');
    expect(h.check(9, [])).toBe(null);
    expect(h.check(10, [pt('x')])).toBe(null);
    // a fresh history (a start, a new cluster leader) knows nothing before it
    expect(new ConflictHistory(100).check(99, [pt('x')])).toBe('TOO_OLD');
    expect(new ConflictHistory(100).check(100, [pt('x')])).toBe(null);
  });

  it('resolve records the writes of a commit that passes, not of one that conflicts', () => {
    const h = new ConflictHistory(0);
    expect(h.resolve(0, [], 5, { keys: ['a'], ranges: [] })).toBe(null);
    expect(h.resolve(1, [pt('a')], 6, { keys: ['b'], ranges: [['c', 'd']] })).toBe('CONFLICT');
    expect(h.check(5, [pt('b'), ['c', 'c\0']])).toBe(null); // the refused commit left nothing
    expect(h.resolve(5, [pt('a')], 7, { keys: ['b'], ranges: [] })).toBe(null);
    expect(h.check(6, [pt('b')])).toBe('CONFLICT');
    expect(() => h.record(7, NONE)).toThrow(/out of version order/);
  });

  it('prune forgets writes at or below the horizon and keeps newer writes of the same key', () => {
    const h = new ConflictHistory(0);
    h.record(10, { keys: ['a', 'b'], ranges: [['c', 'f']] });
    h.record(20, { keys: ['a'], ranges: [['d', 'e']] });
    expect(h.keys).toBe(2);
    expect(h.ranges).toBe(2);
    h.prune(15);
    expect(h.keys).toBe(1); // b forgotten; a's write at 20 stays
    expect(h.ranges).toBe(1);
    expect(h.check(15, [pt('a')])).toBe('CONFLICT');
    expect(h.check(15, [pt('b')])).toBe(null);
    expect(h.check(15, [pt('c')])).toBe(null);
    expect(h.check(15, [['d', 'd\0']])).toBe('CONFLICT');
    h.prune(12); // never back
    expect(h.horizon).toBe(15);
    h.prune(20);
    expect(h.keys).toBe(0);
    expect(h.ranges).toBe(0);
    expect(h.rangeBoundaries).toBe(0);
  });

  it('range clears at ever higher keys (a queue), one always live: the boundaries of cleared ranges stay bounded', () => {
    // each pruned clear used to leave one boundary behind while another clear was live
    const h = new ConflictHistory(0);
    const key = (i: number): string => `q/${String(i).padStart(8, '0')}`;
    for (let ver = 1; ver <= 20_000; ver++) {
      h.record(ver, { keys: [], ranges: [[key(ver), `${key(ver)}\xff`]] });
      h.prune(ver - 10);
    }
    expect(h.ranges).toBe(10);
    expect(h.rangeBoundaries).toBeLessThanOrEqual(2 * 10);
    // and random ranges, several per commit, overlapping
    const r = mulberry32(3);
    for (let ver = 20_001; ver <= 40_000; ver++) {
      const ranges: [string, string][] = [];
      for (let j = randInt(r, 3); j >= 0; j--) {
        const a = key(randInt(r, 100_000));
        const b = key(randInt(r, 100_000));
        ranges.push(a < b ? [a, b] : [b, a]);
      }
      h.record(ver, { keys: [], ranges });
      h.prune(ver - 10);
    }
    expect(h.rangeBoundaries).toBeLessThanOrEqual(2 * h.ranges);
  });

  it('a clear of a huge range is one entry: cost and memory do not depend on how many keys it covers', () => {
    const h = new ConflictHistory(0);
    const key = (i: number): string => `k${String(i).padStart(8, '0')}`;
    for (let i = 0; i < 1000; i++) h.record(i + 1, { keys: [key(i * 1000)], ranges: [] });
    // clear 1,000,000 keys' worth of keyspace: one range, at most two boundaries
    h.record(2000, { keys: [], ranges: [[key(0), key(1_000_000)]] });
    expect(h.ranges).toBe(1);
    expect(h.rangeBoundaries).toBeLessThanOrEqual(2);
    expect(h.check(1999, [pt(key(123_456))])).toBe('CONFLICT');
    expect(h.check(2000, [pt(key(123_456))])).toBe(null);
  });
});

describe('readRangesOf', () => {
  it('recognizes single-key ranges [k, k + 0x00) and keeps the rest as ranges', () => {
    const r = readRangesOf([
      { begin: toBytes('ab'), end: toBytes('ab\0') },
      { begin: toBytes('ab'), end: toBytes('ac') },
      { begin: toBytes('ab'), end: toBytes('ab\0\0') },
      { begin: toBytes(''), end: toBytes('\0') },
    ]);
    expect(r).toEqual([
      ['ab', null],
      ['ab', 'ac'],
      ['ab', 'ab\0\0'],
      ['', null],
    ]);
  });
});

// Randomized: the history against a brute-force model that keeps every commit (ranges and
// points, never pruned) and answers "did a commit in (readVersion, now) write what was read?".
// The ordered map's laziness (resolver.ts writtenIn): the defaults (small scans); scan
// limit 0 (catch-ups as soon as the scans cost more); small limits and chunks (partial
// catch-ups, scans after them, catch-ups finished by recorded commits).
const LAZY = [{}, { scanLimit: 0 }, { scanLimit: 3, catchUpChunk: 5 }, { scanLimit: 1, catchUpChunk: 1 }];
describe.each(seeds(3, 12).flatMap((seed) => LAZY.map((lazy) => [seed, lazy] as const)))('ConflictHistory against a brute-force model (seed %i, %j)', (seed, lazy) => {
  it('agrees on every check, through prunes', () => {
    const rng = mulberry32(seed);
    const letters = 'abcdefgh';
    const key = (): string => letters[randInt(rng, letters.length)]! + (rng() < 0.5 ? '' : letters[randInt(rng, letters.length)]!);
    const range = (): [string, string] => {
      const a = key();
      const b = key();
      return a <= b ? [a, b] : [b, a];
    };
    const log: { version: number; keys: string[]; ranges: [string, string][] }[] = [];
    const h = new ConflictHistory(0, lazy);
    let version = 0;
    let horizon = 0;
    const covers = (r: ReadRange, c: { keys: string[]; ranges: [string, string][] }): boolean => {
      const [b, e] = r;
      if (e === null) return c.keys.includes(b) || c.ranges.some(([cb, ce]) => cb <= b && b < ce);
      if (b >= e) return false;
      return c.keys.some((k) => b <= k && k < e) || c.ranges.some(([cb, ce]) => cb < ce && cb < e && b < ce);
    };
    for (let step = 0; step < 3000; step++) {
      version += 1 + randInt(rng, 3);
      // mostly recent read versions, some far behind (the ordered map's catch-up)
      const rv = Math.max(0, version - 1 - randInt(rng, rng() < 0.9 ? 40 : 400));
      const reads: ReadRange[] = [];
      for (let i = randInt(rng, 4); i > 0; i--) reads.push(rng() < 0.6 ? pt(key()) : range());
      const keys: string[] = [];
      for (let i = randInt(rng, 3); i > 0; i--) keys.push(key());
      const ranges: [string, string][] = rng() < 0.15 ? [range()] : [];
      const expected = reads.length === 0 ? null : rv < horizon ? 'TOO_OLD' : log.some((c) => c.version > rv && reads.some((r) => covers(r, c))) ? 'CONFLICT' : null;
      const got = h.resolve(rv, reads, version, { keys, ranges });
      expect(got, `seed ${seed} step ${step}: reads ${JSON.stringify(reads)} at ${rv}`).toBe(expected);
      if (got === null) log.push({ version, keys, ranges });
      if (rng() < 0.05) {
        horizon = Math.max(horizon, version - randInt(rng, 300));
        h.prune(horizon);
      }
    }
  });
});

// The ordered map (range checks) is filled from the log only when a range read needs it:
// recording writes costs a hash update, and w10's blind writes never walk the tree.
describe('ConflictHistory: the ordered map is brought up to date lazily', () => {
  const key = (i: number): string => `k${String(i).padStart(6, '0')}`;

  it('point writes and point reads never fill it', () => {
    const h = new ConflictHistory(0);
    for (let v = 1; v <= 1000; v++) h.record(v, { keys: [key(v % 300), key((v * 7) % 300)], ranges: [] });
    expect(h.check(999, [pt(key(1000 % 300))])).toBe('CONFLICT');
    expect(h.check(999, [pt(key(5))])).toBe(null);
    expect(h.keys).toBe(300);
    expect(h.orderedKeys).toBe(0);
  });

  it('range reads scan the newer log entries until the scans cost more than a catch-up; both see every write', () => {
    const h = new ConflictHistory(0, { scanLimit: 8 });
    for (let v = 1; v <= 100; v++) h.record(v, { keys: [key(v)], ranges: [] });
    // 5 entries newer than 95: scanned, the map stays empty
    expect(h.check(95, [[key(97), key(98)]])).toBe('CONFLICT');
    expect(h.check(95, [[key(0), key(96)]])).toBe(null);
    expect(h.orderedKeys).toBe(0);
    // 50 entries newer than 50: scanned once (55 of 100 missing entries scanned so far)...
    expect(h.check(50, [[key(10), key(20)]])).toBe(null);
    expect(h.orderedKeys).toBe(0);
    // ...and the next such check catches up, then answers from the map
    expect(h.check(50, [[key(60), key(61)]])).toBe('CONFLICT');
    expect(h.orderedKeys).toBe(100);
    // writes after the catch-up: scanned for fresh reads, merged for old ones
    for (let v = 101; v <= 120; v++) h.record(v, { keys: [key(v - 100)], ranges: [] });
    expect(h.check(118, [[key(19), key(20)]])).toBe('CONFLICT');
    expect(h.check(118, [[key(1), key(18)]])).toBe(null);
    expect(h.check(50, [[key(5), key(6)]])).toBe('CONFLICT'); // rewritten at 105, after the map caught up
    // prune: entries in the map and entries pruned before they reached it
    h.prune(110);
    expect(h.check(110, [[key(0), key(10)]])).toBe(null);
    expect(h.check(110, [[key(11), key(12)]])).toBe('CONFLICT');
    expect(h.keys).toBe(10);
  });

  it('a partial catch-up finishes as writes are recorded; through prunes and the log\'s compaction the map holds only the window\'s keys and misses no write', () => {
    const h = new ConflictHistory(0, { scanLimit: 8, catchUpChunk: 100 });
    for (let v = 1; v <= 6000; v++) h.record(v, { keys: [key(v % 2000)], ranges: [] });
    expect(h.check(3000, [[key(0), key(10)]])).toBe('CONFLICT'); // scanned
    expect(h.check(3000, [[key(2000), key(3000)]])).toBe(null); // scanned: 6,000 in all, as many as the map lacks
    expect(h.check(3000, [[key(5), key(6)]])).toBe('CONFLICT'); // 100 entries caught up, the rest scanned
    expect(h.orderedKeys).toBe(0); // the first 100 entries were all rewritten later
    // each commit from now on brings its writes and 68 more entries into the map, until it
    // is up to date (then writes stop entering it again)
    for (let v = 6001; v <= 6100; v++) h.record(v, { keys: [key((v % 2000) + 10_000)], ranges: [] });
    expect(h.orderedKeys).toBeGreaterThanOrEqual(2000);
    expect(h.orderedKeys).toBeLessThan(2100);
    h.prune(5500); // compacts the log (5,500 entries pruned)
    expect(h.keys).toBe(600);
    expect(h.orderedKeys).toBeLessThanOrEqual(600); // the pruned keys left it
    for (let v = 6101; v <= 6200; v++) h.record(v, { keys: [key(v + 20_000)], ranges: [] });
    // writes after the compaction, seen by a fresh read and an old one
    expect(h.check(6150, [[key(26_190), key(26_191)]])).toBe('CONFLICT');
    expect(h.check(5600, [[key(26_110), key(26_111)]])).toBe('CONFLICT');
    expect(h.check(5600, [[key(26_201), key(30_000)]])).toBe(null);
    expect(h.check(5600, [[key(100), key(101)]])).toBe(null); // last written at 4100, pruned
    expect(h.check(5600, [[key(0), key(1)]])).toBe('CONFLICT'); // written at 6000
  });
});

// The point index (a hash table over the log's key bytes) is brought up to date only by a
// check: w10's blind writes cost a copy of the key each, no hash table work.
describe('ConflictHistory: the point index is brought up to date lazily', () => {
  const key = (i: number): string => `k${String(i).padStart(6, '0')}`;

  it('blind writes fill neither index; the first point check brings the point index up to date, a prune empties it', () => {
    const h = new ConflictHistory(0);
    const bytes = (s: string): Uint8Array => toBytes(s);
    for (let v = 1; v <= 10_000; v++) h.record(v, { keys: [bytes(key(v % 3000)), bytes(key((v * 7) % 3000))], ranges: [] });
    expect(h.indexedKeys).toBe(0);
    expect(h.orderedKeys).toBe(0);
    expect(h.loggedWrites).toBe(20_000);
    expect(h.check(9_999, [pt(key(10_000 % 3000))])).toBe('CONFLICT');
    expect(h.indexedKeys).toBe(3000);
    expect(h.check(9_000, [pt(key(1))])).toBe('CONFLICT'); // written at 9,001
    expect(h.check(9_001, [pt(key(1))])).toBe(null); // and before at 8,143 (8,143 x 7 % 3000 = 1)
  });

  it('a prune of writes never indexed does no lookups, and the index forgets what it held', () => {
    const h = new ConflictHistory(0);
    for (let v = 1; v <= 5000; v++) h.record(v, { keys: [key(v % 1000)], ranges: [] });
    h.prune(4000);
    expect(h.indexedKeys).toBe(0);
    expect(h.loggedWrites).toBe(1000);
    expect(h.keys).toBe(1000);
    h.prune(4500);
    expect(h.indexedKeys).toBe(500);
    expect(h.check(4600, [pt(key(700))])).toBe('CONFLICT'); // written at 4,700
    expect(h.check(4700, [pt(key(700))])).toBe(null);
    expect(h.check(4600, [pt(key(550))])).toBe(null); // last written at 4,550
    h.prune(5000);
    expect(h.indexedKeys).toBe(0);
  });
});

// Randomized, with many keys of random bytes (any byte, lengths 0-40, shared prefixes): the
// point index's probes, deletions (backward shifts), growth and shrinking, and the log's
// compaction, against a model of every write ever recorded.
describe.each(seeds(2, 8))('ConflictHistory point index against a model (seed %i)', (seed) => {
  it('agrees on every point and range check, with checks now dense, now sparse, through prunes and compactions', () => {
    const rng = mulberry32(seed);
    const pool: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const prefix = rng() < 0.5 ? 'common/prefix/' : '';
      let s = prefix;
      for (let n = randInt(rng, 27); n > 0; n--) s += String.fromCharCode(randInt(rng, 256));
      pool.push(s);
    }
    pool.push('');
    const pick = (): string => pool[randInt(rng, pool.length)]!;
    const writes: { version: number; key: string }[] = [];
    const h = new ConflictHistory(0);
    let version = 0;
    let horizon = 0;
    for (let step = 0; step < 20_000; step++) {
      version++;
      const keys: (string | Uint8Array)[] = [];
      for (let i = randInt(rng, 6); i > 0; i--) {
        const k = pick();
        keys.push(rng() < 0.5 ? k : Uint8Array.from(k, (c) => c.charCodeAt(0)));
        writes.push({ version, key: k });
      }
      h.record(version, { keys, ranges: [] });
      // checks come in bursts: long stretches without any (the index lags far behind)
      const dense = Math.floor(step / 2000) % 2 === 0;
      if (rng() < (dense ? 0.5 : 0.002)) {
        const rv = Math.max(horizon, version - randInt(rng, 3000));
        const k = pick();
        const expected = writes.some((w) => w.version > rv && w.key === k) ? 'CONFLICT' : null;
        expect(h.check(rv, [pt(k)]), `seed ${seed} step ${step}: ${JSON.stringify(k)} at ${rv}`).toBe(expected);
        if (rng() < 0.2) {
          const a = pick();
          const b = pick();
          const [lo, hi] = a <= b ? [a, b] : [b, a];
          const exp = writes.some((w) => w.version > rv && lo <= w.key && w.key < hi) ? 'CONFLICT' : null;
          expect(h.check(rv, [[lo, hi]]), `seed ${seed} step ${step}: range at ${rv}`).toBe(exp);
        }
      }
      if (rng() < 0.01) {
        horizon = Math.max(horizon, version - 500 - randInt(rng, 3000));
        h.prune(horizon);
        while (writes.length > 0 && writes[0]!.version <= horizon) writes.shift();
        if (rng() < 0.3) expect(h.keys).toBe(new Set(writes.map((w) => w.key)).size);
      }
    }
  });
});
