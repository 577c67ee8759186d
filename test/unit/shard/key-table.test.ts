// The shard's key table (src/shard/key-table.ts): open addressing over typed arrays, shared by
// the row cache and the window. Checked against a Map model under random interning and
// releasing (deletion shifts later entries of a probe run back; a wrong shift loses keys),
// with short keys (kept in the record) and long ones (arrays of their own), by string and
// by bytes, and its byte order against keys/bytes.ts compareKeys.
import { describe, expect, it } from 'vitest';
import { compareKeys, keyFromString, keyString } from '../../../src/keys/bytes.js';
import { hashBytes, hashString, KeyTable, NOT_CACHED } from '../../../src/shard/key-table.js';
import { mulberry32, randInt, seeds } from '../../support/rng.js';

/** 12 keys whose home slots crowd around the end of the slots (30, 31, 0, 1 of 32; the same of 8 and 16): runs wrap around. */
const CROWD: string[] = [];
for (let i = 0; CROWD.length < 12; i++) if ([30, 31, 0, 1].includes(hashString(`k${i}`) & 31)) CROWD.push(`k${i}`);

const randomKey = (r: () => number, tiny = false): string => {
  if (tiny) return CROWD[randInt(r, CROWD.length)]!;
  // few distinct bytes and lengths around the inline limit (32), so probe runs and prefixes collide
  const n = r() < 0.2 ? 25 + randInt(r, 20) : randInt(r, 6);
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode([0, 1, 97, 98, 255][randInt(r, 5)]!);
  return s;
};

describe.each(seeds(4, 7))('KeyTable against a Map (seed %i)', (seed) => {
  it.each([false, true])('finds every key held, by string and by bytes, through 20,000 random interns and releases (12 keys crowding the end of the slots: %s)', (tiny) => {
    const r = mulberry32(seed);
    // small at first: probe runs wrap around the end of the slots while it is small
    const t = new KeyTable(4);
    const model = new Map<string, number>();
    const used = new Set<number>();
    for (let step = 0; step < 20_000; step++) {
      const k = randomKey(r, tiny);
      if (r() < 0.6) {
        const e = r() < 0.5 ? t.intern(k) : t.internBytes(keyFromString(k));
        const had = model.get(k);
        if (had !== undefined) expect(e).toBe(had);
        else {
          expect(used.has(e), `entry ${e} given to two keys`).toBe(false);
          used.add(e);
          model.set(k, e);
          // a user holds it (as the window would)
          t.setNewest(e, 0);
        }
      } else {
        const e = model.get(k);
        if (e === undefined) {
          expect(t.find(k)).toBe(-1);
          continue;
        }
        t.setNewest(e, -1);
        t.release(e);
        model.delete(k);
        used.delete(e);
      }
      if (step % 997 === 0 || (tiny && step % 7 === 0)) {
        expect(t.size).toBe(model.size);
        const wrong: string[] = [];
        for (const [key, e] of model) {
          if (t.find(key) !== e || t.findBytes(keyFromString(key)) !== e || t.keyString(e) !== key || keyString(t.keyBytes(e)) !== key) wrong.push(JSON.stringify(key));
        }
        expect(wrong, `step ${step}`).toEqual([]);
      }
    }
  });

  it('compareKey and inRange order keys as compareKeys does', () => {
    const r = mulberry32(seed);
    const t = new KeyTable();
    for (let i = 0; i < 2000; i++) {
      const a = randomKey(r);
      const b = randomKey(r);
      const e = t.intern(a);
      expect(Math.sign(t.compareKey(e, b))).toBe(Math.sign(compareKeys(keyFromString(a), keyFromString(b))));
      const c = randomKey(r);
      expect(t.inRange(e, b, c)).toBe(a >= b && a < c);
    }
  });
});

describe('KeyTable', () => {
  it('hashes a latin-1 string as its bytes', () => {
    for (const s of ['', 'a', 'key/000001', '\x00\xff'.repeat(40)]) expect(hashString(s)).toBe(hashBytes(keyFromString(s)));
  });

  it('frees an entry only when neither user holds it, and reuses freed entries', () => {
    const t = new KeyTable();
    const e = t.intern('k');
    t.setRow(e, 5);
    t.setNewest(e, 3);
    t.release(e);
    expect(t.find('k')).toBe(e);
    t.setRow(e, NOT_CACHED);
    t.release(e);
    expect(t.find('k')).toBe(e);
    t.setFlag(e, 2);
    t.setNewest(e, -1);
    t.release(e);
    expect(t.find('k')).toBe(e);
    t.clearFlag(e, 2);
    t.release(e);
    expect(t.find('k')).toBe(-1);
    expect(t.size).toBe(0);
    expect(t.intern('other')).toBe(e);
  });

  it('grows past its first capacity and keeps 100,000 keys findable, a copy of each key made', () => {
    const t = new KeyTable();
    const buf = new Uint8Array(64);
    for (let i = 0; i < 100_000; i++) {
      const k = keyFromString(`key/${i}`);
      buf.set(k);
      t.setNewest(t.internBytes(buf.subarray(0, k.length)), 0);
    }
    buf.fill(0);
    expect(t.size).toBe(100_000);
    for (let i = 0; i < 100_000; i += 1234) expect(t.keyString(t.find(`key/${i}`))).toBe(`key/${i}`);
  });
});
