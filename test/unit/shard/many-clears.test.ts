// Commits with many range clears, pure parts: netEffect (which point writes a later clear
// of the same commit drops) and RowCache.clearRanges (the cached rows of many tombstones
// in one pass), each against a brute-force model, with enough clears to take the paths
// built for them (apply.ts SMALL_CLEARS).
import { describe, expect, it } from 'vitest';
import { compareKeys, keyString, toBytes } from '../../../src/keys/bytes.js';
import { netEffect } from '../../../src/shard/apply.js';
import { MutationKind, type ShardMutation } from '../../../src/shard/interface.js';
import { RowCache } from '../../../src/shard/row-cache.js';
import { mulberry32, randInt, seeds } from '../../support/rng.js';

const ALPHA = ['\x00', 'a', 'b', 'm', '\xff'];

describe.each(seeds(3, 21))('many range clears in one commit (seed %i)', (seed) => {
  it('netEffect keeps exactly the point writes no later clear covers, in order', () => {
    const r = mulberry32(seed);
    const key = (): Uint8Array => {
      let s = '';
      for (let i = 1 + randInt(r, 3); i > 0; i--) s += ALPHA[randInt(r, ALPHA.length)]!;
      return Buffer.from(s, 'latin1');
    };
    for (let round = 0; round < 40; round++) {
      const ms: ShardMutation[] = [];
      for (let i = randInt(r, 200); i >= 0; i--) {
        if (r() < 0.4) {
          const [a, b] = [key(), key()];
          ms.push({ kind: MutationKind.ClearRange, key: a, param: r() < 0.1 ? a : b });
        } else ms.push({ kind: r() < 0.8 ? MutationKind.Set : MutationKind.Clear, key: key(), param: toBytes(`v${i}`) });
      }
      const covers = (m: ShardMutation, k: Uint8Array): boolean => m.kind === MutationKind.ClearRange && compareKeys(m.key, k) <= 0 && compareKeys(k, m.param) < 0;
      const want = ms.filter((m, i) => m.kind !== MutationKind.ClearRange && !ms.slice(i + 1).some((l) => covers(l, m.key)));
      const got = netEffect(ms, compareKeys);
      expect(got.points).toEqual(want);
      expect(got.ranges).toEqual(ms.filter((m) => m.kind === MutationKind.ClearRange && compareKeys(m.key, m.param) < 0).map((m) => [m.key, m.param]));
    }
  });

  it('netEffect with disjoint clears (binary search) and with every clear first: the same points as the model', () => {
    const r = mulberry32(seed);
    const name = (i: number): Uint8Array => Buffer.from(`k${String(i).padStart(4, '0')}`, 'latin1');
    for (let round = 0; round < 40; round++) {
      // disjoint ranges [name(a), name(b)) over distinct bounds, in random order, adjacent ones too
      const bounds = [...new Set(Array.from({ length: 2 * (20 + randInt(r, 60)) }, () => randInt(r, 400)))].sort((x, y) => x - y);
      const ranges: ShardMutation[] = [];
      for (let j = 0; j + 1 < bounds.length; j += r() < 0.2 ? 1 : 2) ranges.push({ kind: MutationKind.ClearRange, key: name(bounds[j]!), param: name(bounds[j + 1]!) });
      for (let j = ranges.length - 1; j > 0; j--) {
        const t = randInt(r, j + 1);
        [ranges[j], ranges[t]] = [ranges[t]!, ranges[j]!];
      }
      const points = (n: number): ShardMutation[] => Array.from({ length: n }, (_, i) => ({ kind: r() < 0.8 ? MutationKind.Set : MutationKind.Clear, key: name(randInt(r, 420)), param: toBytes(`v${i}`) }));
      const interleaved: ShardMutation[] = [];
      const ps = points(ranges.length * 2);
      for (let i = 0, j = 0; i < ranges.length || j < ps.length; ) {
        if (j >= ps.length || (i < ranges.length && r() < 0.35)) interleaved.push(ranges[i++]!);
        else interleaved.push(ps[j++]!);
      }
      for (const ms of [interleaved, [...ranges, ...points(50)]]) {
        const covers = (m: ShardMutation, k: Uint8Array): boolean => m.kind === MutationKind.ClearRange && compareKeys(m.key, k) <= 0 && compareKeys(k, m.param) < 0;
        const want = ms.filter((m, i) => m.kind !== MutationKind.ClearRange && !ms.slice(i + 1).some((l) => covers(l, m.key)));
        const got = netEffect(ms, compareKeys);
        expect(got.points).toEqual(want);
        expect(got.ranges).toEqual(ms.filter((m) => m.kind === MutationKind.ClearRange).map((m) => [m.key, m.param]));
      }
    }
  });

  it('RowCache.clearRanges forgets exactly the rows in the ranges, bytes exact', () => {
    const r = mulberry32(seed);
    const cache = new RowCache(1 << 30);
    const model = new Map<string, Uint8Array | null>();
    for (let i = 0; i < 2000; i++) {
      const k = keyString(toBytes(`k${String(randInt(r, 5000)).padStart(4, '0')}`));
      const v = r() < 0.2 ? null : toBytes('x'.repeat(randInt(r, 20)));
      cache.fill(k, v);
      model.set(k, v);
    }
    const ranges: { begin: string; end: string }[] = [];
    for (let i = 0; i < 50; i++) {
      const a = `k${String(randInt(r, 5000)).padStart(4, '0')}`;
      const b = `k${String(randInt(r, 5000)).padStart(4, '0')}`;
      ranges.push(a < b ? { begin: a, end: b } : { begin: b, end: a });
    }
    cache.clearRanges(ranges);
    for (const k of [...model.keys()]) if (ranges.some((x) => k >= x.begin && k < x.end)) model.delete(k);
    expect(cache.size).toBe(model.size);
    for (const [k, v] of model) expect(cache.get(k)).toEqual(v);
    // bytes as a cache holding only the surviving rows counts them
    const fresh = new RowCache(1 << 30);
    for (const [k, v] of model) fresh.fill(k, v);
    expect(cache.heldBytes).toBe(fresh.heldBytes);
  });
});
