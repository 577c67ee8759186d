// The shard applies a commit's mutations straight from the packed bytes they arrive in
// (shard.ts applyMutations, BatchView): no object, view or key string per mutation. This
// checks what that path leaves against a plain model that applies each commit's mutations
// one by one in order: random group commits (several commits per batch, keys repeated within
// and across commits, sets, clears, range clears, atomic operations, long keys past the key
// table's inline bytes), sent through the shard wire codec as the coordinator sends them
// (each commit's bytes a view into one shared buffer), with and without the row cache. After
// every batch: point reads at every version of the window, a range read at the newest and an
// older version, and the change log (a subscription's history) replayed over the model.
// Real RocksDB, no threads.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RocksLevel } from '@nxtedition/rocksdb';
import { Failpoints } from '../../src/failpoints/failpoints.js';
import { applyAtomic, FIRST_ATOMIC_TYPE, LAST_ATOMIC_TYPE } from '../../src/keys/atomic.js';
import { MutationKind, packBytes, packMutations, unpackBytes, unpackMutations, type ChangeRecord, type PackedBytes, type ShardMutation, type ShardReply } from '../../src/shard/interface.js';
import { Shard } from '../../src/shard/shard.js';
import { ShardStorage } from '../../src/shard/storage.js';
import { decodeRequests, encodeRequests } from '../../src/shard/wire.js';
import { Rng } from '../../bench/rng.js';
import { openOneShardDb, type OneShardDb } from '../support/one-shard-db.js';

const b = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const t = (u: Uint8Array): string => Buffer.from(u).toString('latin1');

/** Short keys, and keys longer than the key table keeps inline (32 bytes). */
const KEYS = ['a', 'b', 'ba', 'bb', 'c', 'd', 'e', 'f', 'L'.repeat(40) + '1', 'L'.repeat(40) + '2', 'M'.repeat(70)];

type State = Map<string, string>;

function applyModel(state: State, ms: readonly ShardMutation[]): State {
  const next = new Map(state);
  for (const m of ms) {
    const k = t(m.key);
    if (m.kind === MutationKind.Set) next.set(k, t(m.param));
    else if (m.kind === MutationKind.Clear) next.delete(k);
    else if (m.kind === MutationKind.ClearRange) {
      const e = t(m.param);
      for (const key of [...next.keys()]) if (key >= k && key < e) next.delete(key);
    } else {
      const cur = next.get(k);
      const v = applyAtomic(m.kind, cur === undefined ? null : b(cur), m.param);
      if (v === null) next.delete(k);
      else next.set(k, t(v));
    }
  }
  return next;
}

function randomCommit(rng: Rng): ShardMutation[] {
  const n = 1 + rng.int(7);
  const out: ShardMutation[] = [];
  const key = (): Uint8Array => b(KEYS[rng.int(KEYS.length)]!);
  for (let i = 0; i < n; i++) {
    const r = rng.int(20);
    if (r < 9) out.push({ kind: MutationKind.Set, key: key(), param: b(`v${rng.int(1000)}`.repeat(1 + rng.int(30))) });
    else if (r < 12) out.push({ kind: MutationKind.Clear, key: key(), param: new Uint8Array(0) });
    else if (r < 14) {
      // sometimes empty or reversed (a no-op)
      out.push({ kind: MutationKind.ClearRange, key: key(), param: key() });
    } else {
      const kind = FIRST_ATOMIC_TYPE + rng.int(LAST_ATOMIC_TYPE - FIRST_ATOMIC_TYPE + 1);
      const param = new Uint8Array(1 + rng.int(4));
      for (let j = 0; j < param.length; j++) param[j] = rng.int(256);
      out.push({ kind, key: key(), param });
    }
  }
  return out;
}

describe('shard apply from packed bytes', () => {
  let fixture: OneShardDb;
  let db: RocksLevel;
  beforeEach(async () => {
    ({ db } = fixture = await openOneShardDb('txkv-packed-apply'));
  });
  afterEach(async () => {
    await fixture.close();
  });

  for (const cacheBytes of [1 << 20, 0]) {
    it(`random group commits leave the rows, the window and the change log a one-by-one apply does (row cache ${cacheBytes > 0 ? 'on' : 'off'})`, async () => {
      const s = new Shard(await ShardStorage.attach(db.handle, 0), 0, 0, new Failpoints({}), true, cacheBytes);
      const rng = new Rng(cacheBytes > 0 ? 7 : 8);
      let id = 1;
      let version = 0;
      let horizon = 0;
      /** The model's state after each version committed so far. */
      const states: { version: number; state: State }[] = [{ version: 0, state: new Map() }];
      const stateAt = (v: number): State => {
        let s0 = states[0]!.state;
        for (const x of states) if (x.version <= v) s0 = x.state;
        return s0;
      };
      const request = (req: unknown): ShardReply[] => {
        const replies: ShardReply[] = [];
        s.handleBatch([req as never], replies);
        return replies;
      };
      const gets = (rv: number): (string | null)[] => {
        const r = request({ t: 'gets', id: id++, readVersions: KEYS.map(() => rv), keys: packBytes(KEYS.map(b)) })[0] as { values: PackedBytes };
        return unpackBytes(r.values).map((u) => (u ? t(u) : null));
      };
      const range = (rv: number): [string, string][] => {
        const r = request({ t: 'range', id: id++, readVersion: rv, begin: b(''), end: b('\xff'), limit: 1000, reverse: false, maxBytes: 1 << 20 })[0] as { kvs: PackedBytes };
        const parts = unpackBytes(r.kvs);
        const out: [string, string][] = [];
        for (let i = 0; i < parts.length; i += 2) out.push([t(parts[i]!), t(parts[i + 1]!)]);
        return out;
      };
      const sorted = (st: State): [string, string][] => [...st.entries()].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));

      for (let batch = 0; batch < 60; batch++) {
        const commits = 1 + rng.int(6);
        const reqs: Parameters<typeof encodeRequests>[0][number][] = [];
        for (let c = 0; c < commits; c++) {
          const ms = randomCommit(rng);
          version += 1 + rng.int(3);
          states.push({ version, state: applyModel(states.at(-1)!.state, ms) });
          // half as lists (the coordinator's), half as packed mutations; one buffer for all of them
          reqs.push({ t: 'commit', id: id++, commitVersion: version, mutations: c % 2 === 0 ? ms : packMutations(ms), sync: false });
        }
        const replies: ShardReply[] = [];
        s.handleBatch(decodeRequests(encodeRequests(reqs)), replies);
        s.applyReady(replies);
        expect(replies.filter((r) => 'ok' in r && r.ok).length).toBe(commits);

        const oldest = Math.max(horizon, version - 30);
        for (let v = oldest; v <= version; v++) {
          const want = stateAt(v);
          expect(gets(v), `gets at ${v} (batch ${batch})`).toEqual(KEYS.map((k) => want.get(k) ?? null));
        }
        expect(range(version), `range at ${version}`).toEqual(sorted(stateAt(version)));
        expect(range(oldest), `range at ${oldest}`).toEqual(sorted(stateAt(oldest)));
        if (batch % 10 === 9) {
          // the change log: replaying the history after `oldest` over its state gives every later state
          const h = request({ t: 'subscribe', id: id++, subId: batch, begin: b(''), end: b('\xff'), fromVersion: oldest })[0] as { history: ChangeRecord[] };
          request({ t: 'unsubscribe', id: 0, subId: batch });
          expect(h.history.length).toBeGreaterThan(5);
          let st = stateAt(oldest);
          for (const rec of h.history) {
            st = applyModel(st, unpackMutations(rec.mutations));
            expect(sorted(st), `history at ${rec.version}`).toEqual(sorted(stateAt(rec.version)));
          }
          expect(sorted(st)).toEqual(sorted(stateAt(version)));
          // the window slides; reads below it are TOO_OLD, above it unchanged
          horizon = version - 10;
          request({ t: 'horizon', id: 0, horizon });
        }
      }
    });
  }
});
