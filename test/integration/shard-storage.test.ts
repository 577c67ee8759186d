// The shard state machine over a real RocksDB (no threads): MVCC reads at older
// versions, range reads merged with the version window, clearRange before-images,
// group commit.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RocksLevel } from '@nxtedition/rocksdb';
import { Failpoints } from '../../src/failpoints/failpoints.js';
import { MutationKind, packBytes, packMutations, unpackBytes, type PackedBytes, type ShardMutation, type ShardReply } from '../../src/shard/interface.js';
import { Shard } from '../../src/shard/shard.js';
import { ShardStorage } from '../../src/shard/storage.js';
import { toBytes } from '../../src/keys/bytes.js';
import { openOneShardDb, type OneShardDb } from '../support/one-shard-db.js';

const set = (k: string, v: string): ShardMutation => ({ kind: MutationKind.Set, key: toBytes(k), param: toBytes(v) });
const clear = (k: string): ShardMutation => ({ kind: MutationKind.Clear, key: toBytes(k), param: new Uint8Array(0) });
const clearRange = (b: string, e: string): ShardMutation => ({ kind: MutationKind.ClearRange, key: toBytes(b), param: toBytes(e) });
const t = (u: Uint8Array | null | undefined): string | null => (u ? Buffer.from(u).toString() : null);

describe('Shard over RocksDB', () => {
  let fixture: OneShardDb;
  let dir: string;
  let db: RocksLevel;
  let shard: Shard;
  let id = 1;
  const commit = (version: number, mutations: ShardMutation[]): ShardReply[] => {
    const replies: ShardReply[] = [];
    shard.handleBatch([{ t: 'commit', id: id++, commitVersion: version, mutations: packMutations(mutations), sync: true }], replies);
    shard.applyReady(replies);
    return replies;
  };
  const get = (k: string, rv: number): string | null => {
    const replies: ShardReply[] = [];
    shard.handleBatch([{ t: 'gets', id: id++, readVersions: [rv], keys: packBytes([toBytes(k)]) }], replies);
    const r = replies[0] as { values: PackedBytes; errors: { code: string }[] | null };
    if (r.errors?.[0]) throw new Error(r.errors[0].code);
    return t(unpackBytes(r.values)[0]);
  };
  const range = (b: string, e: string, rv: number, limit = 100, reverse = false): { rows: string[]; more: boolean } => {
    const replies: ShardReply[] = [];
    shard.handleBatch([{ t: 'range', id: id++, readVersion: rv, begin: toBytes(b), end: toBytes(e), limit, reverse, maxBytes: 1 << 20 }], replies);
    const r = replies[0] as { kvs: PackedBytes; more: boolean };
    const kvs = unpackBytes(r.kvs);
    const rows: string[] = [];
    for (let i = 0; i < kvs.length; i += 2) rows.push(`${t(kvs[i])}=${t(kvs[i + 1])}`);
    return { rows, more: r.more };
  };

  beforeAll(async () => {
    ({ dir, db } = fixture = await openOneShardDb('txkv-shard'));
    shard = new Shard(await ShardStorage.attach(db.handle, 0), 0, 0, new Failpoints({}));
  });
  afterAll(async () => {
    await fixture.close();
  });

  it('reads at older versions see the state of that version, for points and ranges', () => {
    commit(10, [set('a', 'a10'), set('b', 'b10'), set('c', 'c10')]);
    commit(20, [set('a', 'a20'), clear('b'), set('d', 'd20')]);
    commit(30, [clearRange('a', 'c'), set('e', 'e30')]);
    expect([get('a', 10), get('b', 10), get('d', 10)]).toEqual(['a10', 'b10', null]);
    expect([get('a', 20), get('b', 20), get('d', 20)]).toEqual(['a20', null, 'd20']);
    expect([get('a', 30), get('c', 30), get('e', 30)]).toEqual([null, 'c10', 'e30']);
    expect(range('a', 'z', 10).rows).toEqual(['a=a10', 'b=b10', 'c=c10']);
    expect(range('a', 'z', 20).rows).toEqual(['a=a20', 'c=c10', 'd=d20']);
    expect(range('a', 'z', 30).rows).toEqual(['c=c10', 'd=d20', 'e=e30']);
    expect(range('a', 'z', 10, 100, true).rows).toEqual(['c=c10', 'b=b10', 'a=a10']);
  });

  it('limits and reverse hold with the window merged in', () => {
    expect(range('a', 'z', 10, 2)).toEqual({ rows: ['a=a10', 'b=b10'], more: true });
    expect(range('a', 'z', 10, 3)).toEqual({ rows: ['a=a10', 'b=b10', 'c=c10'], more: false });
    expect(range('a', 'z', 20, 2, true)).toEqual({ rows: ['d=d20', 'c=c10'], more: true });
  });

  it('group commit: every commit ready at a flush shares one write and one fsync', () => {
    const before = shard.counters.fsyncs;
    const replies: ShardReply[] = [];
    for (let i = 0; i < 50; i++) {
      shard.handleBatch([{ t: 'commit', id: id++, commitVersion: 100 + i, mutations: packMutations([set(`g${i}`, 'v')]), sync: true }], replies);
    }
    shard.applyReady(replies);
    expect(replies.filter((r) => 'ok' in r)).toHaveLength(50);
    expect(shard.counters.fsyncs - before).toBe(1);
    expect(get('g49', 200)).toBe('v');
  });

  it('two commits of one batch writing one key keep each other\'s before-images', () => {
    const replies: ShardReply[] = [];
    shard.handleBatch(
      [
        { t: 'commit', id: id++, commitVersion: 300, mutations: packMutations([set('same', 'one')]), sync: true },
        { t: 'commit', id: id++, commitVersion: 301, mutations: packMutations([set('same', 'two')]), sync: true },
      ],
      replies,
    );
    shard.applyReady(replies);
    expect([get('same', 299), get('same', 300), get('same', 301)]).toEqual([null, 'one', 'two']);
  });

  it('a prepared commit waits for its decision and holds back later commits (version order)', () => {
    const replies: ShardReply[] = [];
    shard.handleBatch([{ t: 'prepare', id: 900, commitVersion: 400, mutations: packMutations([set('p', 'prepared')]) }], replies);
    shard.handleBatch([{ t: 'commit', id: 901, commitVersion: 401, mutations: packMutations([set('p', 'later')]), sync: true }], replies);
    shard.applyReady(replies);
    expect(replies.map((r) => r.id)).toEqual([900]); // the prepare ack only; 401 waits
    shard.handleBatch([{ t: 'decide', id: 902, commitVersion: 400, commit: true, sync: true }], replies);
    shard.applyReady(replies);
    expect(replies.map((r) => r.id)).toEqual([900, 902, 901]);
    expect([get('p', 400), get('p', 401)]).toEqual(['prepared', 'later']);
    expect(fs.existsSync(path.join(dir, 'rocksdb'))).toBe(true);
  });

  it('range clears are tombstones: hidden at and after their version, old rows readable before, rewritten keys kept', () => {
    commit(1000, [set('t/a', 'a1'), set('t/b', 'b1'), set('t/c', 'c1'), set('t/d', 'd1')]);
    commit(1001, [clearRange('t/a', 't/d')]);
    commit(1002, [set('t/b', 'b2')]);
    expect(range('t/', 't0', 1000).rows).toEqual(['t/a=a1', 't/b=b1', 't/c=c1', 't/d=d1']);
    expect(range('t/', 't0', 1001).rows).toEqual(['t/d=d1']);
    expect(range('t/', 't0', 1002).rows).toEqual(['t/b=b2', 't/d=d1']);
    expect(range('t/', 't0', 1002, 100, true).rows).toEqual(['t/d=d1', 't/b=b2']);
    expect(range('t/', 't0', 1001, 100, true).rows).toEqual(['t/d=d1']);
    expect([get('t/a', 1000), get('t/a', 1001), get('t/b', 1001), get('t/b', 1002)]).toEqual(['a1', null, null, 'b2']);
    // (conflicts with the cleared span are the resolver's: test/unit/coordinator/resolver.test.ts)
    expect(commit(1004, [set('x', '1')])[0]).toMatchObject({ ok: true });
    // the window slides past the clear: its rows go (DeleteRange), the rewritten key stays
    const replies: ShardReply[] = [];
    shard.handleBatch([{ t: 'horizon', id: 0, horizon: 1002 }], replies);
    shard.applyReady(replies);
    // in slices between requests (shard/retire.ts): the rest of them
    while (shard.retiring) shard.applyReady(replies);
    expect(shard.window.tombstones).toBe(0);
    expect(range('t/', 't0', 1004).rows).toEqual(['t/b=b2', 't/d=d1']);
    expect(get('t/a', 1004)).toBe(null);
  });
});
