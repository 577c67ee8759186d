// The shard's row cache (src/shard/row-cache.ts) over real RocksDB, no threads: reads
// served from it follow commits in version order, a row read while the log writer
// still writes it is never cached stale, and writes by range (tombstoned rows deleted,
// a move's ingest, a dropped range) empty it.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RocksLevel } from '@nxtedition/rocksdb';
import { Failpoints } from '../../src/failpoints/failpoints.js';
import { MutationKind, packBytes, packMutations, unpackBytes, type PackedBytes, type ShardMutation, type ShardReply } from '../../src/shard/interface.js';
import { ROW_OVERHEAD, RowCache, ValueSlab } from '../../src/shard/row-cache.js';
import { Shard } from '../../src/shard/shard.js';
import { ShardStorage } from '../../src/shard/storage.js';
import { openOneShardDb, type OneShardDb } from '../support/one-shard-db.js';

const b = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const t = (u: Uint8Array | null | undefined): string | null => (u ? Buffer.from(u).toString('latin1') : null);
const set = (k: string, v: string): ShardMutation => ({ kind: MutationKind.Set, key: b(k), param: b(v) });
const clear = (k: string): ShardMutation => ({ kind: MutationKind.Clear, key: b(k), param: new Uint8Array(0) });
const clearRange = (x: string, y: string): ShardMutation => ({ kind: MutationKind.ClearRange, key: b(x), param: b(y) });

describe('shard row cache', () => {
  let fixture: OneShardDb;
  let db: RocksLevel;
  let id = 1;
  beforeEach(async () => {
    ({ db } = fixture = await openOneShardDb('txkv-rowcache'));
  });
  afterEach(() => fixture.close());

  const open = async (cacheBytes: number): Promise<Shard> => new Shard(await ShardStorage.attach(db.handle, 0), 0, 0, new Failpoints({}), true, cacheBytes);
  const commitReq = (version: number, mutations: ShardMutation[]) =>
    ({ t: 'commit', id: id++, commitVersion: version, mutations: packMutations(mutations), sync: false }) as const;
  const commit = (s: Shard, version: number, mutations: ShardMutation[]): void => {
    const replies: ShardReply[] = [];
    s.handleBatch([commitReq(version, mutations)], replies);
    s.applyReady(replies);
    expect(replies.at(-1)).toMatchObject({ ok: true });
  };
  const gets = (s: Shard, keys: string[], rv: number): (string | null)[] => {
    const replies: ShardReply[] = [];
    s.handleBatch([{ t: 'gets', id: id++, readVersions: keys.map(() => rv), keys: packBytes(keys.map(b)) }], replies);
    const r = replies[0] as { values: PackedBytes; errors: ({ code: string } | null)[] | null };
    expect(r.errors?.find((e) => e)).toBeUndefined();
    return unpackBytes(r.values).map(t);
  };

  it('reads served from the cache follow commits, at every version in the window', async () => {
    const s = await open(1 << 20);
    commit(s, 10, [set('a', 'a10'), set('b', 'b10')]);
    expect(gets(s, ['a', 'b', 'c'], 10)).toEqual(['a10', 'b10', null]);
    const hits = s.rows.hits;
    expect(gets(s, ['a', 'b', 'c'], 10)).toEqual(['a10', 'b10', null]);
    expect(s.rows.hits - hits).toBe(3); // absent rows are cached too
    commit(s, 20, [set('a', 'a20'), clear('b'), set('c', 'c20')]);
    expect(gets(s, ['a', 'b', 'c'], 10)).toEqual(['a10', 'b10', null]);
    expect(gets(s, ['a', 'b', 'c'], 20)).toEqual(['a20', null, 'c20']);
    // the window slides past both commits: only the cached rows can answer now
    s.handleBatch([{ t: 'horizon', id: 0, horizon: 20 }], []);
    expect(gets(s, ['a', 'b', 'c'], 25)).toEqual(['a20', null, 'c20']);
    expect(s.rows.misses).toBeGreaterThan(0);
  });

  it('a row read from RocksDB while the batch writing it is at the log writer is not cached', async () => {
    // room for about two rows: reading other keys evicts the one being written
    const s = await open(2 * (96 + 8));
    commit(s, 10, [set('k', 'old')]);
    const replies: ShardReply[] = [];
    s.handleBatch([commitReq(20, [set('k', 'new')])], replies);
    const batch = s.beginApply()!; // the log writer has the batch; RocksDB still holds 'old'
    gets(s, ['x1', 'x2', 'x3'], 10); // evict k
    expect(s.rows.get('k')).toBeUndefined();
    expect(gets(s, ['k'], 10)).toEqual(['old']); // from RocksDB; the window agrees
    expect(s.rows.get('k')).toBeUndefined(); // not cached: RocksDB is about to change
    (s as unknown as { storage: ShardStorage }).storage.write(batch.ops, false);
    s.endApply(batch, replies);
    s.handleBatch([{ t: 'horizon', id: 0, horizon: 20 }], []);
    expect(gets(s, ['k'], 20)).toEqual(['new']);
    expect(gets(s, ['k'], 20)).toEqual(['new']);
  });

  it('a watch registered while a batch writing its key is at the log writer compares with the value that batch leaves (it waits for the write)', async () => {
    const s = await open(1 << 20);
    commit(s, 10, [set('w', 'old'), set('u', 'same')]);
    const replies: ShardReply[] = [];
    s.handleBatch([commitReq(20, [set('w', 'new')])], replies);
    const batch = s.beginApply()!; // the log writer has the batch; RocksDB still holds 'old'
    const watch = (watchId: number, key: string, value: string) => ({ watchId, key: b(key), present: true, value: b(value) });
    // 1 expects what the batch replaces (fires), 2 what it writes, 3 a key it does not write; 4 is canceled
    s.handleBatch([{ t: 'watch', id: 0, watches: [watch(1, 'w', 'old'), watch(2, 'w', 'new'), watch(3, 'u', 'same'), watch(4, 'w', 'new')] }], replies);
    s.handleBatch([{ t: 'unwatch', id: 0, watchIds: [4] }], replies);
    expect(replies.filter((r) => 'event' in r)).toEqual([]); // nothing decided while the batch is being written
    (s as unknown as { storage: ShardStorage }).storage.write(batch.ops, false);
    s.endApply(batch, replies);
    expect(replies.filter((r) => 'event' in r)).toEqual([{ id: 0, event: 'fired', version: 20, watchIds: [1] }]);
    // 2 and 3 stay armed and fire on the next change of their keys; 4 was canceled before it was registered
    replies.length = 0;
    s.handleBatch([commitReq(30, [set('w', 'newer'), set('u', 'other')])], replies);
    s.applyReady(replies);
    expect(replies.filter((r) => 'event' in r)).toEqual([{ id: 0, event: 'fired', version: 30, watchIds: [2, 3] }]);
  });

  it('a batch at the log writer updates cached rows at once; reads below it still see the old value', async () => {
    const s = await open(1 << 20);
    commit(s, 10, [set('k', 'old')]);
    expect(gets(s, ['k'], 10)).toEqual(['old']);
    const replies: ShardReply[] = [];
    s.handleBatch([commitReq(20, [set('k', 'new')])], replies);
    const batch = s.beginApply()!;
    expect(t(s.rows.get('k'))).toBe('new');
    expect(gets(s, ['k'], 15)).toEqual(['old']);
    (s as unknown as { storage: ShardStorage }).storage.write(batch.ops, false);
    s.endApply(batch, replies);
    expect(gets(s, ['k'], 20)).toEqual(['new']);
  });

  it('tombstoned rows deleted by DeleteRange leave the cache (rows outside the range stay)', async () => {
    const s = await open(1 << 20);
    commit(s, 10, [set('r1', 'v'), set('r2', 'v'), set('s1', 'v')]);
    expect(gets(s, ['r1', 'r2', 's1'], 10)).toEqual(['v', 'v', 'v']);
    commit(s, 20, [clearRange('r0', 'r9')]);
    expect(gets(s, ['r1'], 10)).toEqual(['v']);
    expect(gets(s, ['r1'], 20)).toEqual([null]);
    // the window slides past the clear: its rows are deleted with the next write, the tombstone dropped
    s.handleBatch([{ t: 'horizon', id: 0, horizon: 25 }], []);
    commit(s, 30, [set('z', 'z')]);
    // in slices between requests (shard/retire.ts): the rest of them
    while (s.retiring) s.applyReady([]);
    expect(s.window.hasTombstones).toBe(false);
    expect(s.rows.get('r1')).toBeUndefined();
    expect(t(s.rows.get('s1'))).toBe('v');
    expect(gets(s, ['r1', 'r2', 's1'], 30)).toEqual([null, null, 'v']);
  });

  it("a move's ingest and a dropped range update the cached rows of their keys and range only", async () => {
    const s = await open(1 << 20);
    commit(s, 10, [set('m1', 'v'), set('m5', 'v'), set('o1', 'v')]);
    expect(gets(s, ['m1', 'm2', 'm5', 'o1'], 10)).toEqual(['v', null, 'v', 'v']);
    // in order: m2 set, m1 cleared, [m4, m6) cleared (m5 goes), m5 set again
    s.handleBatch([{ t: 'ingest', id: id++, ops: packMutations([set('m2', 'in'), clear('m1'), clearRange('m4', 'm6'), set('m3', 'x')]) }], []);
    expect(t(s.rows.get('m2'))).toBe('in');
    expect(s.rows.get('m1')).toBeNull();
    expect(s.rows.get('m5')).toBeUndefined();
    expect(gets(s, ['m1', 'm2', 'm3', 'm5'], 10)).toEqual([null, 'in', 'x', null]);
    s.handleBatch([{ t: 'dropRange', id: id++, begin: b('m'), end: b('n') }], []);
    expect(gets(s, ['m1', 'm2', 'm3', 'o1'], 10)).toEqual([null, null, null, 'v']);
    expect(t(s.rows.get('o1'))).toBe('v'); // outside the dropped range: still cached
  });

  it('a batch whose own fills evict rows it writes keeps the byte count exact and the rows right', async () => {
    // ~12 rows fit; each batch writes 30 keys, half cached, so its misses' fills evict
    // rows it read as hits (BatchView -> RowCache.replace puts them back with the new value)
    const s = await open(12 * (3 + 8 + 96));
    const model = new Map<string, string>();
    for (let v = 1; v <= 40; v++) {
      const ms: ShardMutation[] = [];
      for (let j = 0; j < 30; j++) {
        const k = `k${String((v * 7 + j * 13) % 60).padStart(2, '0')}`;
        const value = `v${String(v).padStart(3, '0')}-${j % 10}xxx`.slice(0, 8);
        ms.push(set(k, value));
        model.set(k, value);
      }
      commit(s, v * 10, ms);
      let bytes = 0;
      // a value takes a slot of the next power of two, at least 16 bytes
      for (const [k, r] of s.rows.entries()) bytes += k.length + (r ? Math.max(16, 2 ** Math.ceil(Math.log2(r.length))) : 0) + ROW_OVERHEAD;
      expect(s.rows.heldBytes).toBe(bytes);
      expect(s.rows.heldBytes).toBeLessThanOrEqual(12 * (3 + 8 + 96));
      for (const [k, r] of s.rows.entries()) expect(t(r)).toBe(model.get(k));
    }
    const keys = [...model.keys()];
    expect(gets(s, keys, 400)).toEqual(keys.map((k) => model.get(k)));
  });

  it("a write's new value is cached, so the next write of the key finds its before-image there; the counts say so", async () => {
    const s = await open(1 << 20);
    commit(s, 10, [set('w1', 'a'), set('w2', 'b')]);
    expect(s.stats()).toMatchObject({ rowCacheImageHits: 0, rowCacheImageMisses: 2, rowCacheRows: 2 });
    commit(s, 20, [set('w1', 'c'), set('w3', 'd')]);
    expect(s.stats()).toMatchObject({ rowCacheImageHits: 1, rowCacheImageMisses: 3, rowCacheRows: 3 });
    expect(gets(s, ['w1', 'w2', 'w3', 'w4'], 20)).toEqual(['c', 'b', 'd', null]);
    expect(gets(s, ['w1'], 10)).toEqual(['a']);
    expect(s.stats()).toMatchObject({ rowCacheHits: 4, rowCacheMisses: 1, rowCacheRows: 4 });
    expect(s.stats().rowCacheBytes).toBe(3 * ('w1'.length + 16 + ROW_OVERHEAD) + 'w4'.length + ROW_OVERHEAD);
  });

  it('the slab keeps values of every size exactly, in slots at most 15 bytes larger up to 256 bytes', () => {
    const slab = new ValueSlab();
    const refs: [number, Uint8Array][] = [];
    for (const n of [...Array.from({ length: 1100 }, (_, i) => i), 4095, 4096, 4097, 16_383, 16_384, 16_385, 100_000]) {
      const v = new Uint8Array(n);
      for (let i = 0; i < n; i++) v[i] = (i * 31 + n) & 255;
      const r = slab.put(v);
      expect(slab.slotBytes(r)).toBeGreaterThanOrEqual(n);
      if (n <= 256) expect(slab.slotBytes(r) - Math.max(n, 16)).toBeLessThan(16);
      else expect(slab.slotBytes(r)).toBeLessThan(2 * n);
      refs.push([r, v]);
    }
    const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
    for (const [r, v] of refs) expect(same(slab.view(r), v), `${v.length} bytes`).toBe(true);
    // freed slots are reused by values of the same class, and the rest stay intact
    for (let i = 0; i < refs.length; i += 2) slab.free(refs[i]![0]);
    slab.recycle();
    const again = refs.filter((_, i) => i % 2 === 0).map(([, v]) => [slab.put(v.map((x) => x ^ 255)), v.map((x) => x ^ 255)] as const);
    for (let i = 1; i < refs.length; i += 2) expect(same(slab.view(refs[i]![0]), refs[i]![1])).toBe(true);
    for (const [r, v] of again) expect(same(slab.view(r), v)).toBe(true);
  });

  it('evicting costs about what filling costs (no walk over the rows evicted before)', () => {
    // 100,000 distinct rows through a cache of ~10,000: a fresh Map iterator per eviction
    // walks over every row deleted since V8 last rebuilt the table (quadratic: ~100 µs a
    // fill at 1,000,000 rows). Timed against the same fills with room for all of them.
    const keys = Array.from({ length: 100_000 }, (_, i) => `k${String(i).padStart(15, '0')}`);
    const v = new Uint8Array(60);
    const time = (budget: number): number => {
      const c = new RowCache(budget);
      const t = performance.now();
      for (const k of keys) c.fill(k, v);
      return performance.now() - t;
    };
    time(1e12); // warm up
    const roomy = time(1e12);
    const evicting = time(10_000 * (16 + 60 + 96));
    expect(evicting, `evicting ${evicting.toFixed(0)} ms, roomy ${roomy.toFixed(0)} ms`).toBeLessThan(10 * roomy + 100);
  });

  it('holds at most its budget and evicts the oldest rows first', () => {
    const c = new RowCache(1000);
    for (let i = 0; i < 100; i++) c.fill(`key${i}`, new Uint8Array(50));
    expect(c.heldBytes).toBeLessThanOrEqual(1000);
    expect(c.size).toBeGreaterThan(0);
    expect(c.get('key0')).toBeUndefined();
    expect(c.get('key99')).toBeDefined();
    // a cached value viewing a larger buffer is copied, so the buffer is not kept alive
    const big = new Uint8Array(1 << 16).fill(1);
    c.fill('view', big.subarray(10, 20));
    expect(c.get('view')!.buffer).not.toBe(big.buffer);
    big.fill(2);
    expect(c.get('view')).toEqual(new Uint8Array(10).fill(1));
    new RowCache(0).fill('x', new Uint8Array(1));
  });

  it('a replaced or evicted row keeps its bytes until recycle(); then its slot is reused, so memory follows what is cached', () => {
    const c = new RowCache(8 << 20);
    const val = (n: number, f: number): Uint8Array => new Uint8Array(n).fill(f);
    c.fill('a', val(50, 1));
    const before = c.get('a')!;
    // replaced, and many rows of the same size class filled after it: the old bytes stay
    c.replace('a', val(50, 2));
    for (let i = 0; i < 1000; i++) c.fill(`x${i}`, val(60, 3));
    expect(before).toEqual(val(50, 1));
    expect(t(c.get('a'))).toBe(t(val(50, 2)));
    c.recycle();
    // 10,000 rewrites of the same 1,001 rows (and big values), recycled between rounds:
    // the slab holds what one round needs, not what was written
    const reserved = c.reservedBytes;
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 1000; i++) c.replace(`x${i}`, val(i % 7 === 0 ? 20_000 : 60, round));
      c.recycle();
    }
    for (let i = 0; i < 1000; i += 111) expect(c.get(`x${i}`)).toEqual(val(i % 7 === 0 ? 20_000 : 60, 9));
    expect(c.heldBytes).toBeLessThanOrEqual(8 << 20);
    // the 60-byte rows' slots were reused: the slab grew by the big values only
    expect(c.reservedBytes - reserved).toBeLessThanOrEqual(143 * 20_000 + 256 * 1024);
    // evicting to a small budget frees slots the next fills reuse
    const small = new RowCache(100 * (4 + 64 + ROW_OVERHEAD));
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 1000; i++) small.fill(`k${i}`, val(60, i));
      small.recycle();
    }
    expect(small.heldBytes).toBeLessThanOrEqual(100 * (4 + 64 + ROW_OVERHEAD));
    // 1,000 fills between recycles: at most ~1,100 slots of 64 bytes made, one chunk
    expect(small.reservedBytes).toBeLessThanOrEqual(256 * 1024);
  });
});
