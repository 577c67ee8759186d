// VersionedMap (hash index + parent links, versioned-map.ts) against a plain model,
// with every operation mixed: set (versions up and down), upsert, delete, deleteRange, and
// the queries a conflict check and a historical read make (get, maxIn, above, floor,
// after). A stale parent link or maximum would make maxIn miss a newer write: a missed
// conflict. Also checks the tree's own invariants (parent links, maxima, order) after each step.
import { describe, expect, it } from 'vitest';
import { VersionedMap } from '../../../src/shard/versioned-map.js';
import { mulberry32 as rng } from '../../support/rng.js';

interface N {
  key: string;
  ver: number;
  max: number;
  l: N | null;
  r: N | null;
  p: N | null;
}

function checkTree(m: VersionedMap<unknown>): void {
  const root = (m as unknown as { root: N | null }).root;
  if (root) expect(root.p).toBeNull();
  let count = 0;
  const walk = (t: N | null, lo: string | null, hi: string | null): number => {
    if (!t) return 0;
    count++;
    if (lo !== null) expect(t.key > lo).toBe(true);
    if (hi !== null) expect(t.key < hi).toBe(true);
    if (t.l) expect(t.l.p).toBe(t);
    if (t.r) expect(t.r.p).toBe(t);
    const mx = Math.max(t.ver, walk(t.l, lo, t.key), walk(t.r, t.key, hi));
    expect(t.max).toBe(mx);
    return mx;
  };
  walk(root, null, null);
  expect(count).toBe(m.size);
}

describe('VersionedMap against a model (fuzz)', () => {
  it.each([1, 2, 3, 4, 5, 6])('seed %i: 3,000 mixed operations agree with the model', (seed) => {
    const r = rng(seed);
    const keys = Array.from({ length: 60 }, (_, i) => `k${String(i).padStart(2, '0')}`);
    const key = (): string => keys[Math.floor(r() * keys.length)]!;
    const m = new VersionedMap<string>();
    const model = new Map<string, number>();
    let ver = 1;
    for (let step = 0; step < 3000; step++) {
      const op = r();
      if (op < 0.35) {
        const k = key();
        ver += 1 + Math.floor(r() * 3);
        m.set(k, ver);
        model.set(k, ver);
      } else if (op < 0.45) {
        // an older version (RangeVersions.forget sets steps back to 0)
        const k = key();
        const v = Math.floor(r() * ver);
        m.set(k, v);
        model.set(k, v);
      } else if (op < 0.55) {
        const k = key();
        ver++;
        const had = model.has(k);
        const d = m.upsert(k, ver, (s) => `data:${s}`);
        model.set(k, ver);
        if (!had) expect(d).toBe(`data:${k}`);
      } else if (op < 0.68) {
        const k = key();
        expect(m.delete(k)).toBe(model.delete(k));
      } else if (op < 0.73) {
        let [b, e] = [key(), key()];
        if (b > e) [b, e] = [e, b];
        m.deleteRange(b, e);
        for (const k of [...model.keys()]) if (k >= b && k < e) model.delete(k);
      } else {
        let [b, e] = [key(), key() + (r() < 0.5 ? '\0' : '')];
        if (b > e) [b, e] = [e, b];
        let mx = 0;
        for (const [k, v] of model) if (k >= b && k < e && v > mx) mx = v;
        expect(m.maxIn(b, e)).toBe(mx);
        const v = Math.floor(r() * ver);
        const want = [...model].filter(([k, x]) => k >= b && k < e && x > v).sort(([a], [c]) => (a < c ? -1 : 1));
        expect([...m.above(v, b, e)]).toEqual(want);
        expect([...m.above(v, b, e, true)]).toEqual([...want].reverse());
        const k = key();
        const sorted = [...model.keys()].sort();
        const fl = sorted.filter((x) => x <= k).pop();
        expect(m.floor(k)?.key ?? null).toBe(fl ?? null);
        const af = sorted.find((x) => x > k);
        expect(m.after(k)?.key ?? null).toBe(af ?? null);
        expect(m.get(k)).toBe(model.get(k));
      }
      if (step % 50 === 0) checkTree(m as VersionedMap<unknown>);
    }
    checkTree(m as VersionedMap<unknown>);
    expect(m.size).toBe(model.size);
  });
});
