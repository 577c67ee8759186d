// The resolver (coordinator/resolver.ts): conflict checks on the main thread, so a commit
// with reads on several shards and writes on one is a one-phase commit on its write
// shard, and no shard it only read hears of it. Real server, four shards (split at b, c,
// d: "a…" on shard 0, "b…" on 1, "c…" on 2, "d…" on 3), the balancer off so keys stay put.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TxnError } from '../../src/index.js';
import { startTestServer, text, type TestServer } from '../support/server.js';

interface Counters {
  committed: number;
  conflicts: number;
  tooOld: number;
  onePhase: number;
  twoPhase: number;
}
interface ShardRow {
  shardId: number;
  commits: number;
}

const sel = (key: string | Uint8Array, inclusive = true): { key: string | Uint8Array; inclusive: boolean } => ({ key, inclusive });

async function errorOf(p: Promise<unknown>): Promise<TxnError | null> {
  try {
    await p;
    return null;
  } catch (e) {
    if (!(e instanceof TxnError)) throw e;
    return e;
  }
}

describe('resolver: conflicts of reads on several shards, resolved on the main thread', () => {
  let s: TestServer;
  const status = async (): Promise<{ commits: Counters; shards: ShardRow[] }> =>
    (await (await fetch(`${s.server.url.replace(/^ws/, 'http')}/v1/status`)).json()) as { commits: Counters; shards: ShardRow[] };
  /** Commits applied per shard id (one status row per key range). */
  const shardCommits = async (): Promise<number[]> => {
    const out: number[] = [];
    for (const r of (await status()).shards) out[r.shardId] ??= r.commits;
    return out;
  };

  beforeAll(async () => {
    s = await startTestServer({ splitPoints: ['b', 'c', 'd'], durability: 'fsync', distribution: { enabled: false } });
    await s.db.transact(async (tx) => {
      for (const k of ['a/x', 'b/y', 'c/z', 'd/w']) tx.set(k, '0');
    });
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it('reads on two shards, a write on one: a one-phase commit on the write shard; the read shard hears nothing', { timeout: 30_000 }, async () => {
    const c0 = (await status()).commits;
    const sh0 = await shardCommits();
    const tx = s.db.createTransaction();
    expect(text(await tx.get('a/x'))).toBe('0');
    expect(text(await tx.get('b/y'))).toBe('0');
    tx.set('a/out', '1');
    await tx.commit();
    const c1 = (await status()).commits;
    const sh1 = await shardCommits();
    expect(c1.onePhase - c0.onePhase).toBe(1);
    expect(c1.twoPhase - c0.twoPhase).toBe(0);
    expect(sh1[0]! - sh0[0]!).toBe(1);
    expect(sh1[1]! - sh0[1]!).toBe(0); // shard 1 was only read: no prepare, no commit part
    expect(text(await s.db.createTransaction().get('a/out'))).toBe('1');
  });

  it('a write on the read-only shard B between the read and the commit of a transaction writing A aborts it', { timeout: 30_000 }, async () => {
    const tx = s.db.createTransaction();
    await tx.get('a/x');
    await tx.get('b/y');
    await s.db.transact(async (o) => o.set('b/y', 'changed'));
    tx.set('a/out', 'lost');
    expect((await errorOf(tx.commit()))?.code).toBe('CONFLICT');
    expect(text(await s.db.createTransaction().get('a/out'))).not.toBe('lost');
  });

  it('a write on the write shard A to a key the transaction read aborts it too; writes to other keys do not', { timeout: 30_000 }, async () => {
    const tx = s.db.createTransaction();
    await tx.get('a/x');
    await tx.get('b/y');
    await s.db.transact(async (o) => {
      o.set('a/other', '1');
      o.set('b/other', '1');
    });
    tx.set('a/out', 'kept');
    await tx.commit(); // no key it read was written
    const t2 = s.db.createTransaction();
    await t2.get('a/x');
    await t2.get('b/y');
    await s.db.transact(async (o) => o.set('a/x', 'changed'));
    t2.set('a/out', 'lost');
    expect((await errorOf(t2.commit()))?.code).toBe('CONFLICT');
    expect(text(await s.db.createTransaction().get('a/out'))).toBe('kept');
  });

  it('range reads across shards, cleared ranges and explicit read-conflict ranges conflict', { timeout: 30_000 }, async () => {
    // a range read spanning shards 1 and 2, then an insert into it on shard 2
    const t1 = s.db.createTransaction();
    await t1.getRange(sel('b/'), sel('c0', false));
    await s.db.transact(async (o) => o.set('c/new', '1'));
    t1.set('d/out', '1');
    expect((await errorOf(t1.commit()))?.code).toBe('CONFLICT');
    // a clearRange over a read key of another shard
    const t2 = s.db.createTransaction();
    await t2.get('c/z');
    await s.db.transact(async (o) => o.clearRange('c/', 'c/zz'));
    t2.set('a/out2', '1');
    expect((await errorOf(t2.commit()))?.code).toBe('CONFLICT');
    // an explicit read-conflict range (nothing read through the client) on shard 3
    const t3 = s.db.createTransaction();
    await t3.getReadVersion();
    t3.addReadConflictRange('d/', 'd0');
    await s.db.transact(async (o) => o.set('d/w', '2'));
    t3.set('a/out3', '1');
    expect((await errorOf(t3.commit()))?.code).toBe('CONFLICT');
    // the same, with no write in between: commits
    const t4 = s.db.createTransaction();
    await t4.getReadVersion();
    t4.addReadConflictRange('d/', 'd0');
    t4.addReadConflictKey('b/y');
    t4.set('a/out4', '1');
    await t4.commit();
  });

  it('versionstamped keys conflict with reads of their final key; atomic operations are writes, not reads', { timeout: 30_000 }, async () => {
    // the read covers the final key (its stamp's second byte is > 1 for any version >= 2^48)
    // but not the template (ten zero bytes): the resolver must record the stamped key
    const t1 = s.db.createTransaction();
    await t1.getRange({ key: new Uint8Array([...Buffer.from('c/log/'), 0, 1]), inclusive: true }, sel('c/log0', false));
    await s.db.transact(async (o) => o.setVersionstampedKey(new Uint8Array([...Buffer.from('c/log/'), ...new Uint8Array(10)]), 6, 'v'));
    t1.set('a/seen', '1');
    expect((await errorOf(t1.commit()))?.code).toBe('CONFLICT');
    // two concurrent atomic adds to one key read nothing: both commit
    const x = s.db.createTransaction();
    const y = s.db.createTransaction();
    await Promise.all([x.getReadVersion(), y.getReadVersion()]);
    x.add('b/ctr', new Uint8Array([1]));
    y.add('b/ctr', new Uint8Array([1]));
    await x.commit();
    await y.commit();
    expect(Array.from((await s.db.createTransaction().get('b/ctr'))!)).toEqual([2]);
    // but a read of that key conflicts with an add committed after it
    const z = s.db.createTransaction();
    await z.get('b/ctr');
    await s.db.transact(async (o) => o.add('b/ctr', new Uint8Array([1])));
    z.set('a/z', '1');
    expect((await errorOf(z.commit()))?.code).toBe('CONFLICT');
  });

  it('cross-shard writes with reads: one decision, all or nothing, and their writes conflict later readers', { timeout: 30_000 }, async () => {
    const t1 = s.db.createTransaction();
    await t1.get('d/w');
    t1.set('a/pair', '1');
    t1.set('c/pair', '1');
    await t1.commit();
    const r = s.db.createTransaction();
    expect([text(await r.get('a/pair')), text(await r.get('c/pair'))]).toEqual(['1', '1']);
    const t2 = s.db.createTransaction();
    await t2.get('c/pair');
    const t3 = s.db.createTransaction();
    await t3.get('d/w');
    t3.set('a/pair', '2');
    t3.set('c/pair', '2');
    await t3.commit();
    t2.set('b/out', '1');
    expect((await errorOf(t2.commit()))?.code).toBe('CONFLICT');
  });
});
