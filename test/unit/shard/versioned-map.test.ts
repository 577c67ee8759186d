// The sorted max-version structures of the MVCC window, checked against brute force.
import { describe, expect, it } from 'vitest';
import { RangeVersions, VersionedMap } from '../../../src/shard/versioned-map.js';
import { mulberry32, randInt } from '../../support/rng.js';

const ALPHA = 'abcdefgh';
function randKey(rng: () => number): string {
  const n = 1 + randInt(rng, 3);
  let s = '';
  for (let i = 0; i < n; i++) s += ALPHA[randInt(rng, ALPHA.length)]!;
  return s;
}
function randRange(rng: () => number): [string, string] {
  const a = randKey(rng);
  const b = randKey(rng);
  return a < b ? [a, b] : [b, a + '\0'];
}

describe('VersionedMap', () => {
  it('answers get, maxIn, above, floor, after like a plain map (randomized)', () => {
    const rng = mulberry32(1);
    const m = new VersionedMap();
    const model = new Map<string, number>();
    let ver = 0;
    for (let step = 0; step < 3000; step++) {
      const op = randInt(rng, 10);
      if (op < 5) {
        const k = randKey(rng);
        m.set(k, ++ver);
        model.set(k, ver);
      } else if (op < 7) {
        const k = randKey(rng);
        expect(m.delete(k)).toBe(model.delete(k));
      } else if (op < 8) {
        const [b, e] = randRange(rng);
        m.deleteRange(b, e);
        for (const k of [...model.keys()]) if (k >= b && k < e) model.delete(k);
      } else {
        const [b, e] = randRange(rng);
        const inRange = [...model].filter(([k]) => k >= b && k < e).sort((x, y) => (x[0] < y[0] ? -1 : 1));
        expect(m.maxIn(b, e)).toBe(Math.max(0, ...inRange.map(([, v]) => v)));
        const v = randInt(rng, ver + 1);
        const above = inRange.filter(([, x]) => x > v);
        expect([...m.above(v, b, e)]).toEqual(above);
        expect([...m.above(v, b, e, true)]).toEqual([...above].reverse());
        const k = randKey(rng);
        const fl = [...model.keys()].filter((x) => x <= k).sort().pop();
        expect(m.floor(k)?.key).toBe(fl);
        const af = [...model.keys()].filter((x) => x > k).sort()[0];
        expect(m.after(k)?.key).toBe(af);
        expect(m.get(k)).toBe(model.get(k));
      }
      expect(m.size).toBe(model.size);
    }
  });
  // versions set out of order and keys removed one by one (the window's prune), many
  // times over the same few keys: a node found by hash and updated or unlinked must leave
  // every subtree max and parent link right, or maxIn and above go wrong
  it('keeps subtree maxima right when versions go down and keys come and go (randomized)', () => {
    for (const seed of [3, 4, 5]) {
      const rng = mulberry32(seed);
      const m = new VersionedMap();
      const model = new Map<string, number>();
      for (let step = 0; step < 4000; step++) {
        const op = randInt(rng, 12);
        const k = randKey(rng);
        if (op < 4) {
          const v = 1 + randInt(rng, 50);
          m.set(k, v);
          model.set(k, v);
        } else if (op < 6) {
          // increasing, as the window records (the fast path up the parents)
          const v = 50 + step;
          m.setKnown(k, v, model.has(k));
          model.set(k, v);
        } else if (op < 9) {
          if (model.has(k)) m.deletePresent(k);
          model.delete(k);
        } else if (op < 10) {
          const [b, e] = randRange(rng);
          m.deleteRange(b, e);
          for (const x of [...model.keys()]) if (x >= b && x < e) model.delete(x);
        } else {
          const [b, e] = randRange(rng);
          const inRange = [...model].filter(([x]) => x >= b && x < e).sort((x, y) => (x[0] < y[0] ? -1 : 1));
          expect(m.maxIn(b, e)).toBe(Math.max(0, ...inRange.map(([, v]) => v)));
          const v = randInt(rng, 60);
          expect([...m.above(v, b, e)]).toEqual(inRange.filter(([, x]) => x > v));
          expect(m.maxIn('', '\u0100')).toBe(Math.max(0, ...model.values()));
        }
        expect(m.size).toBe(model.size);
        expect(m.get(k)).toBe(model.get(k));
      }
    }
  });
});

describe('VersionedMap data', () => {
  it('upsert attaches data to a new key and returns it for the key while present', () => {
    const m = new VersionedMap<{ n: number }>();
    let made = 0;
    const make = (): { n: number } => ({ n: ++made });
    const a = m.upsert('a', 1, make);
    expect(m.upsert('a', 2, make)).toBe(a);
    expect(m.get('a')).toBe(2);
    expect(m.data('a')).toBe(a);
    expect(m.maxIn('a', 'b')).toBe(2);
    m.deletePresent('a');
    expect(m.data('a')).toBeUndefined();
    expect(m.upsert('a', 3, make)).not.toBe(a);
    expect(made).toBe(2);
    m.set('b', 4);
    expect(m.data('b')).toBeUndefined();
  });
});

describe('RangeVersions', () => {
  it('is the step function of the newest range write covering each key (randomized)', () => {
    const rng = mulberry32(2);
    const r = new RangeVersions();
    let writes: { b: string; e: string; v: number }[] = [];
    let ver = 0;
    const truth = (k: string): number => Math.max(0, ...writes.filter((w) => w.b <= k && k < w.e).map((w) => w.v));
    for (let step = 0; step < 1500; step++) {
      const op = randInt(rng, 10);
      if (op < 5) {
        const [b, e] = randRange(rng);
        r.assign(b, e, ++ver);
        writes.push({ b, e, v: ver });
      } else if (op < 6 && writes.length > 0) {
        // forget the oldest write (tombstones are dropped in version order)
        const w = writes[0]!;
        r.forget(w.b, w.e, w.v);
        writes = writes.slice(1);
      } else {
        const k = randKey(rng);
        // a forgotten older write may still be "under" a newer one: truth is the newest live
        expect(r.valueAt(k)).toBe(truth(k));
        const [b, e] = randRange(rng);
        let m = 0;
        for (const w of writes) if (w.b < e && b < w.e) m = Math.max(m, w.v);
        expect(r.maxOverlap(b, e)).toBe(m);
        const steps = r.steps(b, e);
        if (steps.length > 0) {
          expect(steps[0]![0]).toBe(b);
          expect(steps[steps.length - 1]![1]).toBe(e);
        }
        for (const [sb, , sv] of steps) expect(sv).toBe(truth(sb));
      }
    }
  });
});
