import { describe, expect, it } from 'vitest';
import { compareKeys, keyAfter, keyFromString, keyString, prefixEnd, toBytes } from '../../../src/keys/bytes.js';
import { RangeSet, selectorsToRange } from '../../../src/keys/ranges.js';

const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');

describe('keys', () => {
  it('compares as unsigned bytes, prefixes first', () => {
    const keys = [[0xff], [0x00], [0x80], [0x7f], [0xff, 0x00], []].map((a) => new Uint8Array(a));
    keys.sort(compareKeys);
    expect(keys.map(hex)).toEqual(['', '00', '7f', '80', 'ff', 'ff00']);
  });

  it('latin-1 key strings keep memcmp order and round-trip', () => {
    const a = new Uint8Array([0x61, 0xff]);
    const b = new Uint8Array([0x62]);
    expect(keyString(a) < keyString(b)).toBe(true);
    expect(hex(keyFromString(keyString(a)))).toBe('61ff');
    const big = new Uint8Array(10_000).map((_, i) => i & 0xff);
    expect(hex(keyFromString(keyString(big)))).toBe(hex(big));
  });

  it('keyAfter and prefixEnd', () => {
    expect(hex(keyAfter(toBytes('a')))).toBe('6100');
    expect(hex(prefixEnd(new Uint8Array([0x61, 0xff, 0xff])))).toBe('62');
    expect(hex(prefixEnd(new Uint8Array([0xff])))).toBe('');
  });

  it.each([
    [true, false, '61', '62'],
    [false, false, '6100', '62'],
    [true, true, '61', '6200'],
    [false, true, '6100', '6200'],
  ])('selectors begin inclusive=%s end inclusive=%s -> [%s, %s)', (bi, ei, b, e) => {
    const r = selectorsToRange({ key: toBytes('a'), inclusive: bi }, { key: toBytes('b'), inclusive: ei });
    expect([hex(r.begin), hex(r.end)]).toEqual([b, e]);
  });
});

describe('RangeSet', () => {
  const s = RangeSet.from([
    ['d', 'f'],
    ['a', 'b'],
    ['e', 'g'],
    ['x', 'x'], // empty: dropped
  ]);
  it('merges overlapping ranges', () => {
    expect([...s.entries()]).toEqual([
      ['a', 'b'],
      ['d', 'g'],
    ]);
  });
  it.each([
    ['a', true],
    ['b', false],
    ['c', false],
    ['d', true],
    ['f', true],
    ['g', false],
  ])('containsKey(%s) = %s', (k, expected) => expect(s.containsKey(k)).toBe(expected));
  it.each([
    ['b', 'd', false],
    ['b', 'd\0', true],
    ['0', 'a\0', true],
    ['g', 'z', false],
    ['c', 'c', false],
  ])('intersects [%s, %s) = %s', (b, e, expected) => expect(s.intersects(b, e)).toBe(expected));
});
