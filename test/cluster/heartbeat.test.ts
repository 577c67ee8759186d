// The leader's heartbeat in etcd (txkv/leader's mod revision, bumped every TTL/4) and the
// replicas that depose a leader whose beats stopped, on a real cluster (3 etcd members,
// 3 txkv nodes on loopback):
// - cluster.leaseTtlMs is a per-node setting. A leader with a longer TTL beats less often
//   and serves read versions longer after each beat: replicas must wait the leader's TTL,
//   not their own, before deleting its key, or they depose a healthy leader that still
//   hands out read versions (stale reads once the next leader commits);
// - the heartbeat's etcd writes do not pile up in etcd's history while the cluster is
//   idle (the leader compacts etcd also when there is no log to trim), and the replicas'
//   election checks are reads, not Raft writes.
// Bounded: about a minute.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeEtcdClient } from '../../src/cluster/etcd.js';
import { connect, type Database } from '../../src/index.js';
import { HAVE_ETCD, keepLogsOnFailure, sleep, TestCluster, within } from './harness.js';

describe.skipIf(!HAVE_ETCD)('leader heartbeat', () => {
  // every node starts with a 10 s lease TTL; the replicas are then restarted with 2 s
  const c = new TestCluster({ TXKV_CLUSTER_LEASE_TTL_MS: '10000' });
  keepLogsOnFailure(() => c);
  let L = -1;
  const etcdctl = (...args: string[]): string =>
    execFileSync('/usr/bin/etcdctl', ['--endpoints', c.etcdEndpoints.join(','), '--command-timeout=3s', ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: 'pipe',
    }).toString();
  const revision = (): number => (JSON.parse(etcdctl('endpoint', 'status', '-w', 'json')) as { Status: { header: { revision: number } } }[])[0]!.Status.header.revision;

  beforeAll(async () => {
    await c.startEtcd(3);
    await c.startNodes(3);
    L = await c.leader();
    // the replicas again, with a TTL of 2 s (a graceful stop gives their node keys back)
    for (let i = 0; i < 3; i++) {
      if (i === L) continue;
      c.kill(c.nodes[i]!, 'SIGTERM');
      await c.nodes[i]!.exited;
      await c.startNode(i, 40_000, { TXKV_CLUSTER_LEASE_TTL_MS: '2000' });
    }
  }, 90_000);

  afterAll(async () => {
    await c.stop();
  });

  it('a healthy leader with a longer lease TTL than its replicas is not deposed, and no read version through it misses a commit acknowledged through them', { timeout: 60_000 }, async () => {
    expect(await c.leader()).toBe(L);
    const replicas = c.urls.filter((_, i) => i !== L);
    const fresh: Database = await connect({ endpoints: replicas, connectionPoolSize: 1 });
    const old: Database = await connect({ endpoints: [c.urls[L]!], connectionPoolSize: 1 });
    const from = c.nodes.map((n) => n.logs.length);
    const stale: string[] = [];
    try {
      // 8 s: the leader beats every 2.5 s; a replica counting its own 2 s TTL deposed it within a few beats
      const until = Date.now() + 8000;
      for (let i = 0; Date.now() < until; i++) {
        const v = String(i).padStart(6, '0');
        // acknowledged through a replica (forwarded to whichever node leads by then) ...
        await within(fresh.transact(async (tx) => tx.set('hb/x', v)), 10_000);
        // ... then a read through the long-TTL node must see it
        const got = await within(
          old.transact(async (tx) => {
            const r = await tx.get('hb/x');
            return r === null ? null : Buffer.from(r).toString();
          }),
          10_000,
        );
        if (got === null || got < v) stale.push(`read ${got} after ${v} was acknowledged`);
      }
    } finally {
      await fresh.close();
      await old.close();
    }
    const deposed = c.nodes.flatMap((n, i) => n.logs.slice(from[i]).filter((x) => x.includes('"event":"LeaderDeposed"')));
    expect(stale, 'stale reads through the long-TTL leader').toEqual([]);
    expect(deposed, 'a healthy leader was deposed').toEqual([]);
    expect(await c.leader()).toBe(L);
  });

  it('an idle cluster\'s etcd history is compacted (heartbeats, grant renewals and positions do not pile up), and a heartbeat is one etcd write', { timeout: 60_000 }, async () => {
    // idle from here (no commits, nothing to trim): etcd still takes the heartbeats etc.
    await sleep(1000);
    const etcd = makeEtcdClient(c.etcdEndpoints);
    let beats = 0;
    const watch = await etcd.watch().key('txkv/leader').create();
    watch.on('put', () => beats++);
    // Raft proposals (etcd's own counter; a txn whose compare fails is one too, and makes no revision)
    const proposals = async (): Promise<number> => Number(/^etcd_server_proposals_committed_total (\S+)$/m.exec(await (await fetch(`${c.etcd[0]!.clientUrl}/metrics`)).text())![1]);
    const r0 = revision();
    const p0 = await proposals();
    const t0 = Date.now();
    await sleep(9000);
    const ms = Date.now() - t0;
    const perSecond = ((revision() - r0) * 1000) / ms;
    const proposalsPerSecond = (((await proposals()) - p0) * 1000) / ms;
    await watch.cancel();
    etcd.close();
    // the leader (10 s TTL) beats every 2.5 s: ~4 beats; each used to reach etcd once per member (3 writes)
    const expected = ms / 2500;
    console.log(`idle cluster: ${perSecond.toFixed(1)} etcd revisions per second, ${proposalsPerSecond.toFixed(1)} Raft proposals per second; ${beats} heartbeat writes in ${ms} ms (${expected.toFixed(1)} beats)`);
    expect.soft(beats, "heartbeat writes").toBeLessThanOrEqual(Math.ceil(expected) + 2);
    // the replicas' election checks are reads: ~8 proposals/s are left (3 positions every
    // 0.5 s, a compaction a second, beats and grant renewals); when each check was a
    // create-if-absent txn that failed, the two replicas added 20/s (28 measured)
    expect.soft(proposalsPerSecond, 'Raft proposals per second of an idle cluster').toBeLessThan(15);
    // revision r0 (9 s ago) must be compacted away by now (compaction lags 5 s)
    let err = '';
    try {
      etcdctl('get', 'txkv/leader', `--rev=${r0}`);
    } catch (e) {
      err = String((e as { stderr?: Buffer }).stderr ?? e);
    }
    expect(err).toMatch(/compacted/);
  });
});
