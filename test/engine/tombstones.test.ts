// Range clears as range tombstones (issue 12 fault 2), against a model: random commits of
// sets, clears and clearRanges on one shard over real RocksDB, reads at random versions
// inside the window, the window sliding (tombstoned rows deleted by DeleteRange, keys
// written since put back), with and without the row cache, and a restart from the files left (recovery applies the
// tombstones still live, keeping keys written after them thanks to their marks).
import { afterEach, describe, expect, it } from 'vitest';
import { recover } from '../../src/coordinator/recovery.js';
import { Failpoints } from '../../src/failpoints/failpoints.js';
import { MutationKind, packBytes, packMutations, unpackBytes, type PackedBytes, type ShardMutation, type ShardReply } from '../../src/shard/interface.js';
import { Shard } from '../../src/shard/shard.js';
import { ShardStorage } from '../../src/shard/storage.js';
import { mulberry32, randInt, seeds } from '../support/rng.js';
import { openOneShardDb, type OneShardDb } from '../support/one-shard-db.js';

const b = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const t = (u: Uint8Array | null | undefined): string | null => (u ? Buffer.from(u).toString('latin1') : null);
const KEYS = ['a', 'b', 'ba', 'c', 'd', 'e', 'f', 'g'];

type Model = Map<string, string>;
const sorted = (m: Model): [string, string][] => [...m].sort((x, y) => (x[0] < y[0] ? -1 : 1));

// each seed with and without the shard's row cache (400 bytes: a few rows, so reads keep
// evicting and refilling it while commits and tombstone deletions change the rows); and
// with tombstone retirement (shard/retire.ts) one step per slice, so that reads, commits
// and the "crash" come at every point of a retirement
describe.each(
  seeds(4, 31).flatMap((seed) => [[seed, 0, undefined] as const, [seed, 400, undefined] as const, [seed, 0, 0] as const, [seed, 400, 0] as const]),
)('range tombstones against a model (seed %i, row cache %i bytes, retirement slices of %s ms)', (seed, rowCacheBytes, retireSliceMs) => {
  let fixture: OneShardDb | null = null;
  afterEach(async () => {
    await fixture?.close();
    fixture = null;
  });

  it('every read at every version in the window matches, before and after the window slides and a restart', { timeout: 60_000 }, async () => {
    const { db } = (fixture = await openOneShardDb('txkv-tomb'));
    let shard = new Shard(await ShardStorage.attach(db.handle, 0), 0, 0, new Failpoints({}), true, rowCacheBytes, retireSliceMs);
    const rng = mulberry32(seed);
    let id = 1;
    const snapshots = new Map<number, Model>();
    let model: Model = new Map();
    snapshots.set(0, new Map());
    let horizon = 0;
    const run = (reqs: Parameters<Shard['handleBatch']>[0]): ShardReply[] => {
      const replies: ShardReply[] = [];
      shard.handleBatch(reqs, replies);
      shard.applyReady(replies);
      return replies;
    };
    const check = (version: number): void => {
      const m = snapshots.get(version)!;
      const k = KEYS[randInt(rng, KEYS.length)]!;
      const r = run([{ t: 'gets', id: id++, readVersions: [version], keys: packBytes([b(k)]) }])[0] as { values: PackedBytes };
      expect(t(unpackBytes(r.values)[0]), `get ${k} at ${version}`).toBe(m.get(k) ?? null);
      const lo = KEYS[randInt(rng, KEYS.length)]!;
      const hi = lo + 'z';
      const reverse = rng() < 0.5;
      const limit = 1 + randInt(rng, 6);
      const rr = run([{ t: 'range', id: id++, readVersion: version, begin: b(lo), end: b(hi), limit, reverse, maxBytes: 1 << 20 }])[0] as { kvs: PackedBytes };
      const kvs = unpackBytes(rr.kvs);
      const got: string[] = [];
      for (let i = 0; i < kvs.length; i += 2) got.push(`${t(kvs[i])}=${t(kvs[i + 1])}`);
      let want = sorted(m).filter(([x]) => x >= lo && x < hi);
      if (reverse) want = want.reverse();
      expect(got, `range [${lo}, ${hi}) at ${version} reverse=${reverse} limit=${limit}`).toEqual(want.slice(0, limit).map(([x, y]) => `${x}=${y}`));
    };
    let version = 0;
    for (let step = 0; step < 150; step++) {
      version++;
      const ms: ShardMutation[] = [];
      const next = new Map(model);
      for (let i = 0, n = 1 + randInt(rng, 4); i < n; i++) {
        const r = rng();
        const k = KEYS[randInt(rng, KEYS.length)]!;
        if (r < 0.5) {
          const v = `v${version}.${i}`;
          ms.push({ kind: MutationKind.Set, key: b(k), param: b(v) });
          next.set(k, v);
        } else if (r < 0.7) {
          ms.push({ kind: MutationKind.Clear, key: b(k), param: new Uint8Array(0) });
          next.delete(k);
        } else {
          const k2 = KEYS[randInt(rng, KEYS.length)]!;
          const [lo, hi] = k < k2 ? [k, k2] : [k2, k + '\0'];
          ms.push({ kind: MutationKind.ClearRange, key: b(lo), param: b(hi) });
          for (const x of [...next.keys()]) if (x >= lo && x < hi) next.delete(x);
        }
      }
      const r = run([{ t: 'commit', id: id++, commitVersion: version, mutations: packMutations(ms), sync: false }]);
      expect(r[0]).toMatchObject({ ok: true });
      model = next;
      snapshots.set(version, new Map(model));
      for (let c = 0; c < 3; c++) check(horizon + randInt(rng, version - horizon + 1));
      if (rng() < 0.15) {
        // slide the window: tombstones at or below the horizon have their rows deleted
        horizon = Math.max(horizon, version - randInt(rng, 10));
        run([{ t: 'horizon', id: 0, horizon }]);
        check(horizon);
      }
    }
    expect(shard.window.tombstones + 1, 'some tombstones are live at the "crash"').toBeGreaterThan(0);
    // "crash": drop the shard without applying anything else; recovery finishes the tombstones
    const report = recover(db, 1);
    expect(report.appliedVersions[0]).toBe(version);
    shard = new Shard(await ShardStorage.attach(db.handle, 0), 0, version, new Failpoints({}), true, rowCacheBytes);
    const all = run([{ t: 'range', id: id++, readVersion: version, begin: b(''), end: b('\xff'), limit: 1000, reverse: false, maxBytes: 1 << 20 }])[0] as { kvs: PackedBytes };
    const kvs = unpackBytes(all.kvs);
    const got: string[] = [];
    for (let i = 0; i < kvs.length; i += 2) got.push(`${t(kvs[i])}=${t(kvs[i + 1])}`);
    expect(got).toEqual(sorted(model).map(([x, y]) => `${x}=${y}`));
    // nothing left behind in the metadata: no tombstone record, no mark
    expect(recover(db, 1).tombstonesApplied).toBe(0);
  });
});
