import { describe, expect, it } from 'vitest';
import { RangeSet } from '../../../src/keys/ranges.js';
import { checkConflicts, pendingConflicts } from '../../../src/shard/conflicts.js';
import { VersionWindow } from '../../../src/shard/mvcc.js';

function windowWith(version: number, keys: string[], ranges: [string, string][] = []): VersionWindow {
  const w = new VersionWindow(0);
  w.record(version, new Map(keys.map((k) => [k, null])), ranges);
  return w;
}

describe('checkConflicts', () => {
  it.each([
    // reads, read version, written keys at version 10, expected
    [[['k', 'k\0']], 9, ['k'], 'CONFLICT'],
    [[['k', 'k\0']], 10, ['k'], null],
    [[['a', 'c']], 5, ['b'], 'CONFLICT'],
    [[['a', 'c']], 5, ['c'], null],
    [[['a', 'c']], 5, ['a'], 'CONFLICT'],
    [[], 5, ['a'], null],
  ] as [[string, string][], number, string[], string | null][])('reads %j at %i against writes %j -> %s', (reads, rv, keys, expected) => {
    expect(checkConflicts(rv, RangeSet.from(reads), windowWith(10, keys), [])).toBe(expected);
  });

  it('a read version below the horizon is TOO_OLD', () => {
    const w = windowWith(10, ['x']);
    w.prune(10);
    expect(checkConflicts(9, RangeSet.from([['a', 'b']]), w, [])).toBe('TOO_OLD');
  });

  it('prepared (queued) writes conflict, points and ranges alike', () => {
    const w = new VersionWindow(0);
    const reads = RangeSet.from([['m', 'n']]);
    expect(checkConflicts(1, reads, w, [{ keys: ['m1'], ranges: [] }])).toBe('CONFLICT');
    expect(checkConflicts(1, reads, w, [{ keys: [], ranges: [['a', 'm\0']] }])).toBe('CONFLICT');
    expect(checkConflicts(1, reads, w, [{ keys: ['n'], ranges: [['n', 'z']] }])).toBe(null);
    expect(pendingConflicts(reads, { keys: [], ranges: [] })).toBe(false);
  });
});
