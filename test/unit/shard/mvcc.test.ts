import { describe, expect, it } from 'vitest';
import { VersionWindow } from '../../../src/shard/mvcc.js';

const v = (s: string): Uint8Array => new TextEncoder().encode(s);
const changes = (entries: [string, string | null][]): Map<string, Uint8Array | null> =>
  new Map(entries.map(([k, p]) => [k, p === null ? null : v(p)]));
// RocksDB's current value stands for "base": a read that sees it was not corrected
const BASE = v('base');
const show = (r: Uint8Array | null): string => (r ? Buffer.from(r).toString() : 'absent');

describe('VersionWindow', () => {
  // history of key "a": absent until 10, "one" from 10, "two" from 20, cleared at 30
  const w = new VersionWindow(5);
  w.record(10, changes([['a', null]]));
  w.record(20, changes([['a', 'one'], ['b', null]]));
  w.record(30, changes([['a', 'two']]));

  it.each([
    [5, 'absent'],
    [9, 'absent'],
    [10, 'one'],
    [19, 'one'],
    [20, 'two'],
    [29, 'two'],
    [30, 'base'],
    [99, 'base'],
  ])('a read of "a" at version %i sees %s', (readVersion, expected) => {
    expect(show(w.valueAt('a', readVersion, BASE))).toBe(expected);
  });

  it('keys never written in the window read the base value', () => {
    expect(show(w.valueAt('zzz', 1, BASE))).toBe('base');
  });

  it('changedAfter lists keys of a range written after the read version, sorted', () => {
    expect([...w.changedAfter(5, '', '\xff')]).toEqual(['a', 'b']);
    expect([...w.changedAfter(20, '', '\xff')]).toEqual(['a']);
    expect([...w.changedAfter(30, '', '\xff')]).toEqual([]);
    expect([...w.changedAfter(5, 'b', 'c')]).toEqual(['b']);
  });

  it('prune forgets old versions and raises the horizon', () => {
    const w3 = new VersionWindow(0);
    w3.record(10, changes([['a', 'x']]));
    w3.record(20, changes([['a', 'y']]));
    w3.prune(10);
    expect(w3.horizon).toBe(10);
    expect(w3.size).toBe(1);
    expect(show(w3.valueAt('a', 15, BASE))).toBe('y');
    w3.prune(25);
    expect(w3.size).toBe(0);
    expect(show(w3.valueAt('a', 25, BASE))).toBe('base');
  });

  it('refuses commits out of version order', () => {
    const w4 = new VersionWindow(0);
    w4.record(10, changes([['a', null]]));
    expect(() => w4.record(9, changes([['a', null]]))).toThrow(/version order/);
  });
  // a write under a live range clear: its before-image is the physical row, hidden from
  // reads at or after the clear; the window keeps that per write, and must keep it with
  // the right write when older writes of the key are forgotten
  it('a row hidden by a range clear stays hidden for reads between the clear and the next write, also after pruning', () => {
    const w5 = new VersionWindow(0);
    w5.record(10, changes([['a', 'r0']]));
    w5.record(20, changes([]), [['a', 'b']]);
    w5.record(30, changes([['a', 'r1']]));
    const at = (r: number): string => show(w5.valueAt('a', r, BASE));
    expect([at(5), at(15), at(25), at(35)]).toEqual(['r0', 'r1', 'absent', 'base']);
    w5.record(40, changes([['a', 'base']]));
    expect([at(5), at(15), at(25), at(35), at(45)]).toEqual(['r0', 'r1', 'absent', 'base', 'base']);
    // the tombstone (20) is due; writes up to 19 are forgotten, the rest stay (25 is below
    // the horizon for readers now, but the write at 30 still carries its hidden row)
    expect(w5.prune(30).map((t) => t.version)).toEqual([20]);
    expect([at(25), at(30), at(35), at(45)]).toEqual(['absent', 'base', 'base', 'base']);
    expect(w5.lastWrite('a')).toBe(40);
  });
});
