// The window's write log (mvcc.ts: typed arrays, before-images in a ByteRing, one key-table
// entry per key): what it holds stays bounded by the window under rewrites of a few hot
// keys, one-off keys and range clears, and a key's history across the window's edge reads
// right (the value before the oldest kept write, or TOO_OLD territory: below the horizon).
import { describe, expect, it } from 'vitest';
import { VersionWindow } from '../../../src/shard/mvcc.js';

const v = (s: string): Uint8Array => new TextEncoder().encode(s);
const show = (r: Uint8Array | null): string => (r ? Buffer.from(r).toString() : 'absent');

interface Internals {
  table: VersionWindow['table'];
  ordered: { size: number };
  logLinks: Int32Array;
  logHead: number;
  commits: number[];
  commitsHead: number;
}

/** Writes of a key still linked from its chain. */
function historyLength(i: Internals, key: string): number {
  const k = i.table.find(key);
  if (k < 0) return 0;
  let n = 0;
  for (let e = i.table.newest(k); e >= i.logHead; e = i.logLinks[e]!) n++;
  return n;
}

describe('VersionWindow memory and history at the edge', () => {
  it('200,000 commits over 10 hot keys and 1-shot keys with a sliding horizon hold only the window', () => {
    const w = new VersionWindow(0);
    const win = 1000; // versions kept
    for (let ver = 1; ver <= 200_000; ver++) {
      const c = new Map<string, Uint8Array | null>();
      c.set(`hot/${ver % 10}`, v(`p${ver}`));
      c.set(`once/${ver}`, null);
      w.record(ver, c, ver % 5000 === 0 ? [[`once/${ver - 100}`, `once/${ver - 50}`]] : []);
      if (ver % 100 === 0) {
        w.dropTombstones(w.prune(ver - win));
      }
      // a range read now and then keeps the sorted map of written keys filled
      if (ver % 1000 === 0) expect([...w.changedAfter(ver - win, 'hot/', 'hot0')].length).toBe(10);
    }
    const i = w as unknown as Internals;
    // keys: 10 hot + the one-shot keys of the last `win` versions (+ a batch of 100 not yet pruned)
    expect(w.held.keys).toBeLessThanOrEqual(10 + win + 100);
    // the window's own table frees the entries of keys it forgot
    expect(i.table.size).toBe(w.held.keys);
    // the sorted map (filled for the range clears' survivors) holds no key the window forgot
    expect(i.ordered.size).toBeLessThanOrEqual(w.held.keys);
    for (let k = 0; k < 10; k++) {
      const n = historyLength(i, `hot/${k}`);
      expect(n).toBeGreaterThan(0);
      expect(n).toBeLessThanOrEqual((win + 100) / 10 + 1);
    }
    const held = w.held;
    expect(held.writes).toBeLessThanOrEqual(2 * (win + 100));
    // the log doubles only when more than half of it is live
    expect(held.logSlots).toBeLessThanOrEqual(4 * 2 * (win + 100));
    // before-images of the hot keys (a few bytes each): one 1 MiB chunk, a spare at most
    expect(held.valueBytes).toBeLessThanOrEqual(3 * 2 ** 20);
    expect(i.commits.length - i.commitsHead).toBeLessThanOrEqual(win + 100);
    expect(w.tombstones).toBeLessThanOrEqual(1); // the clear at 200,000 is still in the window
  });

  it('range clears at ever higher keys (a queue) with one always live: the tombstone steps stay bounded', () => {
    // each forgotten clear used to leave its first boundary (a 0 step after a 0 step) while
    // any other clear was live: one per clear, forever, walked by every range read over them
    const w = new VersionWindow(0);
    const key = (i: number): string => `q/${String(i).padStart(8, '0')}`;
    for (let ver = 1; ver <= 20_000; ver++) {
      w.record(ver, new Map([[`${key(ver)}/x`, null]]), [[key(ver), `${key(ver)}\xff`]]);
      w.dropTombstones(w.prune(ver - 10));
    }
    expect(w.tombstones).toBe(10);
    const steps = w.tombstoneSteps('', '\u0100', false);
    expect(steps.filter(([, , c]) => c !== 0)).toHaveLength(10);
    expect(steps.length).toBeLessThanOrEqual(2 * 10 + 1);
    expect((w as unknown as { tombs: { size: number } }).tombs.size).toBeLessThanOrEqual(2 * 10);
  });

  it('history across the edge: a read at the horizon sees the value before the oldest kept write', () => {
    const w = new VersionWindow(0);
    // k written at 10, 20, ..., 100 (prev of the write at v is "at<v-10>")
    for (let ver = 10; ver <= 100; ver += 10) w.record(ver, new Map([['k', ver === 10 ? null : v(`at${ver - 10}`)]]));
    w.prune(45); // writes <= 45 forgotten; reads at >= 45 still right
    const base = v('at100');
    expect(show(w.valueAt('k', 45, base))).toBe('at40');
    expect(show(w.valueAt('k', 49, base))).toBe('at40');
    expect(show(w.valueAt('k', 50, base))).toBe('at50');
    expect(show(w.valueAt('k', 99, base))).toBe('at90');
    expect(show(w.valueAt('k', 100, base))).toBe('at100');
    expect(w.lastWrite('k')).toBe(100);
    w.prune(100);
    expect(w.lastWrite('k')).toBe(0);
    expect(show(w.valueAt('k', 100, base))).toBe('at100');
  });

  it('a key whose history emptied and is written again gets a fresh history; the old one is not revived', () => {
    const w = new VersionWindow(0);
    w.record(1, new Map([['k', null]]));
    w.record(2, new Map([['k', v('one')]]));
    w.prune(2);
    w.record(3, new Map([['k', v('two')]]));
    w.record(4, new Map([['j', null]]));
    w.prune(3);
    const i = w as unknown as Internals;
    expect(i.table.find('k')).toBe(-1);
    expect(w.held.keys).toBe(1);
    expect(i.table.size).toBe(1);
    expect(show(w.valueAt('j', 3, v('base')))).toBe('absent');
  });
});
