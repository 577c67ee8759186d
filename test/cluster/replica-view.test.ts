// What a cluster's nodes report while a replica applies the log a little after the leader
// acknowledged (1 etcd member, 2 nodes).
// Status: members[].logged of the leader (the log end every lag is measured against) is
// current on the leader itself; it came from the leader's own record in etcd, published
// every 0.5 s, so it lagged the commits it had just acknowledged.
// Change feeds (subscribe) on a replica: where a feed starts.
// - without fromVersion, "now" must be the cluster's read version (asked of the leader),
//   not the replica's last applied version: a feed started there replayed a commit the
//   client had seen acknowledged before it subscribed;
// - with a fromVersion the replica has not read yet (a read version from the leader), the
//   start waits for the log, as reads do, instead of failing FUTURE_VERSION at once.
// Forwarding: a replica's connection to the leader that dropped while idle (here: the
// replica paused past the connection's ping bound) is replaced at the next request; the
// request used to fail UNAVAILABLE "the connection to the leader ... dropped; try again"
// (seen by cluster.test.ts's final read version at load 6.7).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEAD_AFTER_MS } from '../../src/client/connection.js';
import { connect, type Database } from '../../src/index.js';
import { HAVE_ETCD, keepLogsOnFailure, sleep, TestCluster } from './harness.js';

describe.skipIf(!HAVE_ETCD)('status and change feeds while a replica follows the log (1 etcd member, 2 nodes)', () => {
  const c = new TestCluster();
  keepLogsOnFailure(() => c);
  let leaderDb: Database;
  let replicaDb: Database;

  beforeAll(async () => {
    await c.startEtcd(1);
    await c.startNodes(2);
    const l = await c.leader();
    leaderDb = await connect({ endpoints: [c.urls[l]!], connectionPoolSize: 1 });
    replicaDb = await connect({ endpoints: [c.urls[1 - l]!], connectionPoolSize: 1 });
    // the replica knows its leader (forwarding works)
    await replicaDb.transact(async (tx) => tx.set('feeds/ready', '1'));
  }, 60_000);

  afterAll(async () => {
    await leaderDb?.close();
    await replicaDb?.close();
    await c.stop();
  });

  it("the leader's status names its log end at once (members[].logged), and no member lags past it", { timeout: 30_000 }, async () => {
    const l = await c.leader();
    for (let i = 0; i < 5; i++) {
      const tx = leaderDb.createTransaction();
      tx.set(`st/${i}`, 'x');
      await tx.commit();
      const cv = Number(tx.getCommittedVersion());
      const s = (await c.status(l)) as unknown as { cluster: { members: { nodeId: string; logged?: number; applied: number; lagVersions: number | null }[] } };
      const me = s.cluster.members.find((m) => m.nodeId === `n${l}`)!;
      expect(me.logged, `round ${i}: the leader's logged vs the commit it acknowledged`).toBeGreaterThanOrEqual(cv);
      for (const m of s.cluster.members) expect(m.lagVersions).toBe(Math.max(0, me.logged! - m.applied));
    }
  });

  it("a fromVersion the replica has not read yet: the feed waits for the log (was FUTURE_VERSION)", { timeout: 30_000 }, async () => {
    // the idle leader's read version follows its clock, past anything in the log
    const rv = await leaderDb.createTransaction().getReadVersion();
    const feed = replicaDb.subscribe('fv/', 'fv0', { fromVersion: rv })[Symbol.asyncIterator]();
    const first = feed.next();
    await sleep(300);
    await leaderDb.transact(async (tx) => tx.set('fv/1', 'x'));
    const r = await first;
    expect(Buffer.from(r.value!.mutations[0]!.key).toString()).toBe('fv/1');
    await feed.return?.();
  });

  it("without fromVersion a feed starts at the cluster's now, not at the replica's last applied version", { timeout: 60_000 }, async () => {
    const stale: number[] = [];
    for (let i = 0; i < 15; i++) {
      // committed through the replica (forwarded): acknowledged before the subscribe is sent
      await replicaDb.transact(async (tx) => tx.set(`now/${i}/a`, 'before'));
      const feed = replicaDb.subscribe(`now/${i}/`, `now/${i}0`)[Symbol.asyncIterator]();
      const first = feed.next();
      await sleep(300);
      await leaderDb.transact(async (tx) => tx.set(`now/${i}/b`, 'after'));
      const r = await first;
      const key = Buffer.from(r.value!.mutations[0]!.key).toString();
      if (key !== `now/${i}/b`) stale.push(i);
      await feed.return?.();
    }
    expect(stale, 'rounds whose feed replayed the commit acknowledged before subscribing').toEqual([]);
  });

  // last: the pause ends replicaDb's connection too (the client's own ping bound)
  it('a replica paused past the ping bound of its connection to the leader forwards the next read version on a new connection, not an error', { timeout: 45_000 }, async () => {
    const r = 1 - (await c.leader());
    // the replica's connection to the leader is open
    await replicaDb.createTransaction().getReadVersion();
    c.kill(c.nodes[r]!, 'SIGSTOP');
    try {
      await sleep(DEAD_AFTER_MS + 1000);
    } finally {
      c.kill(c.nodes[r]!, 'SIGCONT');
    }
    for (const until = Date.now() + 15_000; ; ) {
      const s = await c.status(r);
      if (s?.cluster?.role === 'replica' && s.cluster.leader) break;
      if (Date.now() > until) throw new Error(`the replica does not follow a leader 15 s after the pause: ${JSON.stringify(s?.cluster)}`);
      await sleep(100);
    }
    // its pinger has run since the resume (an overdue interval fires at once) and given the connection up
    await sleep(500);
    const one = await connect({ endpoints: [c.urls[r]!], connectionPoolSize: 1 });
    try {
      // first try, no retry: the replica opens a new connection itself
      expect(await one.createTransaction().getReadVersion()).toBeGreaterThan(0n);
    } finally {
      await one.close();
    }
  });
});
