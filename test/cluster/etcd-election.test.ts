// The txkv leader keeps its term through an election of etcd's own Raft leader, at the
// default 2 s lease TTL (3 etcd members, 2 txkv nodes). While etcd elects (its election
// timeout to twice it after its leader stops, plus a vote) no member renews a lease or
// takes a write. The txkv leader stepped down once its serving deadline passed (1.5 s
// after the last answered keepalive or beat), or when an append's 1.5 s deadline passed
// (MAYBE_COMMITTED), and a replica whose first read after the election showed the leader
// key's old heartbeat deposed it: a failover, commits failing, every txkv node healthy.
// Now past the deadline the leader hands out no read version but keeps its term until etcd
// answers (or stays silent 4 s more), and a replica gives it half a TTL after etcd's Raft
// term changes. And the leader key is on no lease: etcd 3.4.23's old leader, resumed after
// a pause longer than a lease's TTL, revokes that lease (etcd issue 15247).
// etcd here runs with --election-timeout 1500 (an election takes 1.5-3 s), so that every
// run of the old code lost its term: with 1000 it lost it in about half the runs.
// About 15 s.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Database } from '../../src/index.js';
import { HAVE_ETCD, keepLogsOnFailure, scanAt, sleep, TestCluster } from './harness.js';

const LEADER_EVENTS = /"event":"(SteppedDown|BecameLeader|LeaderDeposed|TakeoverFailed)"/;

describe.skipIf(!HAVE_ETCD)('etcd elects a new Raft leader (3 members with a 1.5 s election timeout, 2 nodes, default lease TTL)', () => {
  const c = new TestCluster();
  keepLogsOnFailure(() => c);
  let db: Database;

  beforeAll(async () => {
    c.etcdElectionTimeoutMs = 1500;
    await c.startEtcd(3);
    await c.startNodes(2);
    await c.leader();
    db = await connect({ endpoints: c.urls, connectionPoolSize: 2 });
  }, 60_000);

  afterAll(async () => {
    for (const m of c.etcd) c.kill(m, 'SIGCONT');
    await db?.close();
    await c.stop();
  });

  const healthy = async (): Promise<void> => {
    for (const until = Date.now() + 20_000; ; ) {
      try {
        execFileSync('/usr/bin/etcdctl', ['--endpoints', c.etcdEndpoints.join(','), '--command-timeout=2s', 'endpoint', 'health'], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: 'pipe' });
        return;
      } catch (err) {
        if (Date.now() > until) throw new Error(`etcd not healthy within 20 s: ${(err as Error).message}`);
        await sleep(200);
      }
    }
  };

  it('pausing the etcd leader costs the txkv leader neither its term nor a commit', { timeout: 90_000 }, async () => {
    type Cl = { term: string | null; role: string; leaseWaits?: number; longestLeaseWaitMs?: number };
    const L = await c.leader();
    const cl = async (): Promise<Cl> => (await c.status(L))!.cluster as unknown as Cl;
    const before = await cl();
    const from = c.nodes.map((n) => n.logs.length);
    const acked: string[] = [];
    const failed: string[] = [];
    const ackTimes: number[] = [];
    let stop = false;
    // a light load: two writers through both nodes (the replica forwards), one commit at a time
    const writers = [0, 1].map(async (w) => {
      for (let i = 0; !stop; i++) {
        const key = `elect/${w}/${i}`;
        try {
          await db.transact(async (tx) => tx.set(key, 'x'));
          acked.push(key);
          ackTimes.push(performance.now());
        } catch (e) {
          failed.push(`${key}: ${(e as { code?: string }).code ?? ''} ${(e as Error).message}`);
        }
        await sleep(20);
      }
    });
    let el = -1;
    try {
      await sleep(500);
      await healthy();
      el = c.etcdLeader();
      const ackedBefore = acked.length;
      c.kill(c.etcd[el]!, 'SIGSTOP');
      // longer than etcd's election (1.5-3 s here) and than the lease TTL (2 s)
      await sleep(3500);
      c.kill(c.etcd[el]!, 'SIGCONT');
      // commits go on (etcd had its new leader within the pause)
      for (const until = Date.now() + 15_000; acked.length <= ackedBefore + 2; ) {
        if (Date.now() > until) throw new Error(`no commit acknowledged within 15 s after pausing e${el}: ${failed.slice(-3).join('; ')}`);
        await sleep(100);
      }
    } finally {
      stop = true;
      for (const m of c.etcd) c.kill(m, 'SIGCONT');
      await Promise.all(writers);
    }
    const after = await cl();
    const events = c.nodes.flatMap((n, i) => n.logs.slice(from[i]).filter((x) => LEADER_EVENTS.test(x)).map((x) => `n${i} ${x.slice(0, 300)}`));
    let gap = 0;
    for (let i = 1; i < ackTimes.length; i++) gap = Math.max(gap, ackTimes[i]! - ackTimes[i - 1]!);
    console.log(
      `paused the etcd leader e${el}: ${acked.length} commits, ${failed.length} failed, longest gap between acks ${Math.round(gap)} ms; ` +
        `leader n${L} waited for etcd past its serving deadline ${after.leaseWaits ?? '?'} times (longest ${after.longestLeaseWaitMs ?? '?'} ms)\n${events.join('\n')}`,
    );
    expect(events, 'leader changes while etcd elected').toEqual([]);
    expect(failed, 'commits that failed').toEqual([]);
    expect(after.term, 'the leader keeps its term').toBe(before.term);
    expect(after.role).toBe('leader');
    // the path this is about was taken: the election outlasted the leader's serving deadline
    expect(after.leaseWaits ?? 0, 'times the leader waited for etcd past its serving deadline').toBeGreaterThan(before.leaseWaits ?? 0);
    // every acknowledged commit is there, on both nodes
    const rv = await db.transact((tx) => tx.getReadVersion());
    for (const url of c.urls) {
      const rows = new Set(await scanAt(url, rv));
      expect(acked.filter((k) => !rows.has(`${k}=x`)), `acknowledged commits missing on ${url}`).toEqual([]);
    }
  });
});
