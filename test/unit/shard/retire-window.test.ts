// The window's side of tombstone retirement in slices (shard/retire.ts): tombstones handed
// out once, forgotten one by one while still listed, the writes kept for them forgotten in
// steps; and the resolver forgetting many expired clears over several prunes. Pure.
import { describe, expect, it } from 'vitest';
import { CLEARS_PER_PRUNE, ConflictHistory } from '../../../src/coordinator/resolver.js';
import { VersionWindow } from '../../../src/shard/mvcc.js';
import { timed } from '../../support/cpu.js';

const v = (s: string): Uint8Array => new TextEncoder().encode(s);
const show = (r: Uint8Array | null): string => (r ? Buffer.from(r).toString() : 'absent');
const BASE = v('base');

describe('VersionWindow, tombstones retired in steps', () => {
  it('prune hands each due tombstone out once, also while earlier ones are still listed', () => {
    const w = new VersionWindow(0);
    w.record(10, new Map(), [['a', 'b'], ['b', 'c'], ['x', 'y']]);
    expect(w.prune(10).map((t) => t.begin)).toEqual(['a', 'b', 'x']);
    w.record(20, new Map(), [['c', 'd']]);
    expect(w.prune(15)).toEqual([]);
    expect(w.prune(20).map((t) => [t.begin, t.version])).toEqual([['c', 20]]);
    expect(w.tombstones).toBe(4);
  });

  it('adjacent tombstones of one commit: rows hidden until every one is forgotten; writes forgotten in steps; reads right throughout', () => {
    const w = new VersionWindow(0);
    // "k" existed before the clears (base row), "b1" is written after them, at 20
    w.record(10, new Map(), [['a', 'b'], ['b', 'c']]);
    w.record(20, new Map([['b1', null]]));
    for (let i = 0; i < 10; i++) w.record(30 + i, new Map([[`z${i}`, null]]));
    const due = w.prune(39);
    expect(due).toHaveLength(2);
    // the rows are deleted now (the shard does it); the window still hides what was under them
    expect(show(w.valueAt('b0', 39, BASE))).toBe('absent');
    expect(show(w.valueAt('b1', 39, BASE))).toBe('base');
    w.forgetTombstone(due[0]!);
    expect(w.covered('a0')).toBe(false);
    // forgetting one forgets the equal steps of its neighbour: only call it once all rows are gone
    expect(w.covered('b0')).toBe(false);
    w.forgetTombstone(due[1]!);
    expect(w.tombstones).toBe(2);
    expect(() => w.forgetWritesBefore(3, 1)).toThrow();
    const held = w.held.writes;
    expect(held).toBe(11);
    let steps = 0;
    while (!w.forgetWritesBefore(2, 3)) steps++;
    expect(steps).toBeGreaterThanOrEqual(3);
    expect(w.held.writes).toBe(0);
    w.retireOldest(due);
    expect(w.tombstones).toBe(0);
    expect(w.hasTombstones).toBe(false);
    expect(show(w.valueAt('b1', 39, BASE))).toBe('base');
  });

  it('a forgotten tombstone still listed hides nothing from a read that an older-than-newest search reaches', () => {
    const w = new VersionWindow(0);
    w.record(10, new Map(), [['a', 'c']]);
    w.record(20, new Map([['b', null]])); // b written after the clear at 10
    const due = w.prune(25);
    w.forgetTombstone(due[0]!);
    // a newer tombstone over b, after the read: the search for older ones must skip the forgotten one
    w.record(30, new Map(), [['a', 'c']]);
    while (!w.forgetWritesBefore(1, 100));
    expect(show(w.valueAt('b', 25, BASE))).toBe('base');
    expect(show(w.valueAt('b', 30, BASE))).toBe('absent');
  });
});

describe('VersionWindow, writes under many tombstones of one commit', () => {
  it('20,000 writes, each under one of 20,000 live tombstones, record in < 300 ms of CPU or 10x the same under one tombstone; reads right', () => {
    const n = 20_000;
    const k = (i: number): string => `d/${String(i).padStart(6, '0')}`;
    const w = new VersionWindow(0);
    const ranges: [string, string][] = [];
    for (let i = 0; i < n; i++) ranges.push([k(i), `${k(i)}/\xff`]);
    w.record(10, new Map(), ranges);
    w.record(15, new Map(), [['d/000005', 'd/000006']]);
    const writes = new Map<string, Uint8Array | null>();
    for (let i = 0; i < n; i++) writes.set(`${k(i)}/x`, v('old'));
    // each write looks for the oldest tombstone after the key's last write that covers it:
    // a walk of every tombstone took ~2 s here
    const t = timed(() => w.record(20, writes));
    // against the same writes recorded under one tombstone, just after on the same thread (a
    // loaded CI machine inflates thread CPU time too, both alike); the walk is ~100x
    const ref = new VersionWindow(0);
    ref.record(10, new Map(), [['d/', 'd0']]);
    const r = timed(() => ref.record(20, writes));
    const cost = (x: { cpuMs: number | null; wallMs: number }): number => x.cpuMs ?? x.wallMs;
    console.log(`record of ${n} writes under ${n} tombstones: ${cost(t).toFixed(1)} ms; under one: ${cost(r).toFixed(1)} ms`);
    expect(cost(t), `record: ${cost(t).toFixed(1)} ms under ${n} tombstones, ${cost(r).toFixed(1)} ms under one`).toBeLessThan(Math.max(300, 10 * cost(r)));
    // the row before the write was hidden from 10 on (from 10, not 15, for d/000005/x)
    expect(show(w.valueAt(`${k(7)}/x`, 5, BASE))).toBe('old');
    expect(show(w.valueAt(`${k(7)}/x`, 12, BASE))).toBe('absent');
    expect(show(w.valueAt(`${k(5)}/x`, 12, BASE))).toBe('absent');
    expect(show(w.valueAt(`${k(5)}/x`, 20, BASE))).toBe('base');
  });
});

describe('ConflictHistory.prune with many expired clears', () => {
  it('forgets them over several prunes; none of them conflicts meanwhile', () => {
    const h = new ConflictHistory(0);
    const n = 3 * CLEARS_PER_PRUNE + 10;
    const ranges: [string, string][] = [];
    for (let i = 0; i < n; i++) ranges.push([`d/${String(i).padStart(6, '0')}`, `d/${String(i).padStart(6, '0')}/\xff`]);
    h.record(10, { keys: [], ranges });
    h.record(20, { keys: ['x'], ranges: [['e', 'f']] });
    h.prune(15);
    // the first prune after the commit: those recorded since the previous prune, and CLEARS_PER_PRUNE more
    expect(h.ranges).toBe(1);
    const h2 = new ConflictHistory(0);
    h2.record(10, { keys: [], ranges });
    h2.prune(5);
    h2.record(20, { keys: ['x'], ranges: [['e', 'f']] });
    h2.prune(15);
    expect(h2.ranges).toBe(n + 1 - (CLEARS_PER_PRUNE + 1));
    expect(h2.check(15, [['d/', 'd0']])).toBe(null);
    expect(h2.check(15, [['e', 'f']])).toBe('CONFLICT');
    let prunes = 1;
    while (h2.ranges > 1) {
      const horizon = 15 + prunes++;
      h2.prune(horizon);
      expect(h2.check(horizon, [['d/', 'd0']])).toBe(null);
    }
    expect(prunes).toBe(4);
    expect(h2.check(19, [['e', 'f']])).toBe('CONFLICT');
  });
});
