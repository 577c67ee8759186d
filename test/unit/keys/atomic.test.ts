// FoundationDB's documented results for every atomic operation (fdb.options
// MutationType docs and fdbclient/Atomic.h behaviour): lengths shorter and longer than
// the existing value, carries, missing keys, empty values, the appendIfFits limit.
// Values are hex; null = the key is absent.
import { describe, expect, it } from 'vitest';
import { MAX_VALUE_BYTES } from '../../../src/keys/limits.js';
import { ATOMIC_OPS, applyAtomic, atomicTypeOf, isAtomicType, type AtomicOp } from '../../../src/keys/atomic.js';

const hx = (s: string | null): Uint8Array | null => (s === null ? null : new Uint8Array(Buffer.from(s, 'hex')));
const show = (b: Uint8Array | null): string | null => (b === null ? null : Buffer.from(b).toString('hex'));
const apply = (op: AtomicOp, existing: string | null, param: string): string | null => show(applyAtomic(atomicTypeOf(op)!, hx(existing), hx(param)!));

// [op, existing, param, expected, why]
const TABLE: [AtomicOp, string | null, string, string | null, string][] = [
  // add: little-endian, param's length wins
  ['add', '01000000', '01000000', '02000000', 'plain add'],
  ['add', 'ff000000', '01000000', '00010000', 'carry into the next byte'],
  ['add', 'ffffffff', '01000000', '00000000', 'carry out of the last byte is dropped (wraps)'],
  ['add', 'ffff', '0100000000', '0000010000', 'existing shorter: zero-extended, carry lands in the padding'],
  ['add', '0102030405', '0100', '0202', 'existing longer: cut to the param length'],
  ['add', null, '05000000', '05000000', 'missing key: param stored'],
  ['add', '', '0500', '0500', 'empty existing value: param stored'],
  ['add', '0102', '', '', 'empty param: empty value'],
  ['add', '0a000000', 'ffffffff', '09000000', 'adding -1 (two complement) subtracts'],
  // bitAnd (V2): missing -> param; present, even empty, is an operand
  ['bitAnd', 'f0f0', '3c3c', '3030', 'plain and'],
  ['bitAnd', 'ff', 'ffff', 'ff00', 'existing shorter: zero-extended'],
  ['bitAnd', 'ffffff', '0f', '0f', 'existing longer: cut'],
  ['bitAnd', null, 'abcd', 'abcd', 'missing key: param stored'],
  ['bitAnd', '', 'abcd', '0000', 'empty present value ANDs as zeros'],
  // bitOr / bitXor
  ['bitOr', 'f000', '0f0f', 'ff0f', 'plain or'],
  ['bitOr', '01', '0000', '0100', 'existing shorter: zero-extended'],
  ['bitOr', '0102', '10', '11', 'existing longer: cut'],
  ['bitOr', null, '0f', '0f', 'missing key: param stored'],
  ['bitXor', 'ff00', '0f0f', 'f00f', 'plain xor'],
  ['bitXor', 'ff', 'ff00ff', '0000ff', 'existing shorter: zero-extended'],
  ['bitXor', null, '0f', '0f', 'missing key: param stored'],
  // max / min: little-endian unsigned
  ['max', '0200', '0100', '0200', 'existing larger stays'],
  ['max', '0001', 'ff00', '0001', 'the high byte decides (little-endian)'],
  ['max', '01', '0000', '0100', 'existing shorter and larger: zero-extended to param length'],
  ['max', '0500', '0001', '0001', 'param larger'],
  ['max', '050001', '0600', '0600', 'existing longer: compared after cutting, so 0x0005 < 0x0006'],
  ['max', '070001', '0600', '0700', 'existing longer and larger after cutting: cut value kept'],
  ['max', null, '0300', '0300', 'missing key: param stored'],
  ['max', '', '0300', '0300', 'empty existing value: param stored'],
  ['min', '0200', '0100', '0100', 'param smaller'],
  ['min', '0001', 'ff00', 'ff00', 'the high byte decides (little-endian)'],
  ['min', '01', '0002', '0100', 'existing shorter and smaller: zero-extended'],
  ['min', '050001', '0600', '0500', 'existing longer: cut, then compared'],
  ['min', null, '0300', '0300', 'missing key: param stored (not zero)'],
  ['min', '', '0300', '0000', 'empty present value is zero'],
  // byteMax / byteMin: memcmp order, lengths unchanged
  ['byteMax', '6162', '61', '6162', 'a prefix is smaller'],
  ['byteMax', '61', '62', '62', 'larger byte wins'],
  ['byteMax', null, '61', '61', 'missing key: param stored'],
  ['byteMin', '6162', '61', '61', 'a prefix is smaller'],
  ['byteMin', '61', '6200', '61', 'existing smaller stays, its own length'],
  ['byteMin', null, '7a', '7a', 'missing key: param stored'],
  ['byteMin', '', '7a', '', 'empty value is the smallest'],
  // appendIfFits
  ['appendIfFits', '6162', '6364', '61626364', 'append'],
  ['appendIfFits', null, '6364', '6364', 'missing key: param stored'],
  ['appendIfFits', '6162', '', '6162', 'empty param: unchanged'],
  // compareAndClear
  ['compareAndClear', '6162', '6162', null, 'equal: cleared'],
  ['compareAndClear', '6162', '6163', '6162', 'different: unchanged'],
  ['compareAndClear', '6162', '61', '6162', 'prefix is not equal'],
  ['compareAndClear', null, '61', null, 'missing key stays missing'],
  ['compareAndClear', '', '', null, 'empty value equals empty param'],
];

describe('atomic operations (FoundationDB semantics)', () => {
  it.each(TABLE)('%s(%s, %s) = %s: %s', (op, existing, param, expected) => {
    expect(apply(op, existing, param)).toBe(expected);
  });

  it('appendIfFits keeps the existing value when the result would pass the value limit', () => {
    const existing = new Uint8Array(MAX_VALUE_BYTES - 2).fill(1);
    const fits = applyAtomic(atomicTypeOf('appendIfFits')!, existing, new Uint8Array([2, 3]))!;
    expect(fits.length).toBe(MAX_VALUE_BYTES);
    expect(fits[MAX_VALUE_BYTES - 1]).toBe(3);
    const over = applyAtomic(atomicTypeOf('appendIfFits')!, existing, new Uint8Array([2, 3, 4]))!;
    expect(over).toBe(existing);
  });

  it('every op has a wire type 5..14 and nothing else is atomic', () => {
    expect(ATOMIC_OPS.map((o) => atomicTypeOf(o))).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    expect([0, 1, 2, 3, 4, 15].some(isAtomicType)).toBe(false);
    expect(atomicTypeOf('increment')).toBeUndefined();
  });

  it('never aliases the param or the existing value it was given when it builds a new value', () => {
    const existing = hx('01000000')!;
    const param = hx('01000000')!;
    const out = applyAtomic(atomicTypeOf('add')!, existing, param)!;
    out[0] = 99;
    expect(show(existing)).toBe('01000000');
    expect(show(param)).toBe('01000000');
  });
});
