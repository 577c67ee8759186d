// The lease keepalive's time budget (3 real etcd members, no txkv node): with one member
// stopped (SIGSTOP: its port accepts connections, nothing answers), a keepalive must
// still be answered about as fast as the healthy members answer. It used to ask the
// members one after another, starting with the stopped one, and waited out the whole
// call deadline (1 s) there first: a leader's lease margin is 0.5 s of a 2 s TTL, so one
// stalled etcd member could cost the cluster its leader while etcd kept its quorum.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdHosts, makeEtcdClient } from '../../src/cluster/etcd.js';
import { HAVE_ETCD, TestCluster } from './harness.js';

describe.skipIf(!HAVE_ETCD)('lease keepalive with one etcd member stopped (3 members)', () => {
  const c = new TestCluster();
  let stopped = -1;

  beforeAll(async () => {
    await c.startEtcd(3);
  }, 60_000);

  afterAll(async () => {
    if (stopped >= 0) c.kill(c.etcd[stopped]!, 'SIGCONT');
    await c.stop();
  });

  it('is answered by the healthy members within half the call deadline, every time', { timeout: 60_000 }, async () => {
    // stop a member that is not etcd's Raft leader (etcd keeps its quorum and its leader)
    stopped = (c.etcdLeader() + 1) % 3;
    // the stopped member first: the one a node asks first (and prefers after a success)
    const endpoints = [c.etcd[stopped]!.clientUrl, ...c.etcd.filter((_, i) => i !== stopped).map((m) => m.clientUrl)];
    const etcd = makeEtcdClient(endpoints);
    const hosts = new EtcdHosts(endpoints);
    try {
      const leaseId = await etcd.lease(10, { autoKeepAlive: false }).grant();
      expect(await hosts.keepalive(leaseId)).toBeGreaterThan(0);
      c.kill(c.etcd[stopped]!, 'SIGSTOP');
      const took: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t = performance.now();
        expect(await hosts.keepalive(leaseId)).toBeGreaterThan(0);
        took.push(Math.round(performance.now() - t));
      }
      console.log(`keepalive with member e${stopped} stopped: ${took.join(', ')} ms`);
      expect(Math.max(...took), `keepalive round trips ${took.join(', ')} ms`).toBeLessThan(500);
    } finally {
      c.kill(c.etcd[stopped]!, 'SIGCONT');
      hosts.close();
      etcd.close();
    }
  });
});
