// The lease keepalive's time budget (3 real etcd members, no txkv node): with one member
// stopped (SIGSTOP: its port accepts connections, nothing answers), a keepalive must
// still be answered about as fast as the healthy members answer. It used to ask the
// members one after another, starting with the stopped one, and waited out the whole
// call deadline (1 s) there first: a leader's lease margin is 0.5 s of a 2 s TTL, so one
// stalled etcd member could cost the cluster its leader while etcd kept its quorum.
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdHosts, makeEtcdClient } from '../../src/cluster/etcd.js';
import { HAVE_ETCD, keepLogsOnFailure, TestCluster } from './harness.js';

describe.skipIf(!HAVE_ETCD)('lease keepalive with one etcd member stopped (3 members)', () => {
  const c = new TestCluster();
  keepLogsOnFailure(() => c);
  let stopped = -1;

  beforeAll(async () => {
    await c.startEtcd(3);
  }, 60_000);

  afterAll(async () => {
    if (stopped >= 0) c.kill(c.etcd[stopped]!, 'SIGCONT');
    await c.stop();
  });

  it('is answered by the healthy members before the stopped member\'s call deadline (1 s), every time', { timeout: 60_000 }, async () => {
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
      // the fault waited out the stopped member's call deadline (1000 ms) before asking another;
      // a round trip of the healthy members took up to 723 ms at load 17
      expect(Math.max(...took), `keepalive round trips ${took.join(', ')} ms`).toBeLessThan(950);
    } finally {
      c.kill(c.etcd[stopped]!, 'SIGCONT');
      hosts.close();
      etcd.close();
    }
  });

  // A node's etcd calls (campaign, takeover log read, grant) go to one member at a time.
  // The order used to be "the member that answered last, moved on by one after a call
  // failed everywhere" (as calls do during an etcd election), so it could start at a
  // cut-off member, and a call whose own deadline is its whole budget (the takeover's log
  // read: 2 s and 2 s) failed without trying another: a takeover failed and the failover
  // took 8.4 s in test/cluster/partition.test.ts.
  it('a call goes first to a member that answered lately, and to a second member even when the first used up its budget', { timeout: 60_000 }, async () => {
    stopped = (c.etcdLeader() + 1) % 3;
    const endpoints = [c.etcd[stopped]!.clientUrl, ...c.etcd.filter((_, i) => i !== stopped).map((m) => m.clientUrl)];
    const etcd = makeEtcdClient(endpoints);
    const hosts = new EtcdHosts(endpoints);
    const read = (deadlineMs: number) => (e: Etcd3) => e.kv.range({ key: Buffer.from('txkv-test/ready') }, { deadline: Date.now() + deadlineMs });
    try {
      const leaseId = await etcd.lease(10, { autoKeepAlive: false }).grant();
      c.kill(c.etcd[stopped]!, 'SIGSTOP');
      // no member has answered these hosts yet: the stopped one (listed first) is asked
      // first; its attempt's deadline (1.5 s) is past the budget (1 s), and the call still
      // goes on to the next member
      let t = performance.now();
      await hosts.run(read(1500), 1000);
      const second = Math.round(performance.now() - t);
      expect(second, 'a call whose first attempt used up the budget').toBeGreaterThanOrEqual(1400);
      // after a keepalive round (every TTL/4 on a node), the healthy members come first,
      // also after calls that failed on every member (0, 1, 2 of them: the old order moved
      // on by one member per such call, through every member)
      await hosts.keepalive(leaseId);
      const took: number[] = [];
      // the member each call asked first (index into endpoints: 0 is the stopped one)
      const first: number[] = [];
      const asked = (e: Etcd3, attempt: number): void => {
        if (attempt === 0) first.push([0, 1, 2].findIndex((i) => hosts.client(i) === e));
      };
      for (let i = 0; i < 3; i++) {
        t = performance.now();
        await hosts.run((e, attempt) => (asked(e, attempt), read(2000)(e)), 2000);
        took.push(Math.round(performance.now() - t));
        await hosts.run(() => Promise.reject(new Error('no etcd leader')), 0).catch(() => {});
      }
      console.log(`etcd calls with member e${stopped} stopped: ${second} ms (first attempt there), then ${took.join(', ')} ms, asked first: ${first.join(', ')}`);
      // the order itself (a loaded box's round trips are not what this tests), and a bound
      // below the stopped member's deadline (2000 ms) that its first attempt would take
      expect(first, 'the member each call after a keepalive round asked first (0: the stopped one)').not.toContain(0);
      expect(Math.max(...took), `calls after a keepalive round: ${took.join(', ')} ms`).toBeLessThan(1500);
    } finally {
      c.kill(c.etcd[stopped]!, 'SIGCONT');
      hosts.close();
      etcd.close();
    }
  });

  // EtcdHosts.first (the leader's heartbeat): it used to send the put to every member at
  // once, and each member passed it to etcd's leader as a write of its own (3 revisions
  // and 3 fsyncs per beat, 6 writes a second on an idle cluster). Now the member first in
  // order(), the others only when it has not answered within 200 ms: one write, and a
  // stopped member still costs only the hedge delay.
  it('a heartbeat (EtcdHosts.first) is one etcd write, and is answered within the hedge delay with the member it goes to first stopped', { timeout: 60_000 }, async () => {
    stopped = (c.etcdLeader() + 1) % 3;
    const endpoints = [c.etcd[stopped]!.clientUrl, ...c.etcd.filter((_, i) => i !== stopped).map((m) => m.clientUrl)];
    const put = (e: Etcd3) => e.kv.put({ key: Buffer.from('txkv-test/beat'), value: Buffer.from('x') });
    const hosts = new EtcdHosts(endpoints);
    try {
      const before = Number((await hosts.run((e) => e.kv.range({ key: Buffer.from('txkv-test/beat') }))).header.revision);
      for (let i = 0; i < 5; i++) await hosts.first(put);
      // the writes of members asked late land after the first answer
      await new Promise((r) => setTimeout(r, 500));
      const after = Number((await hosts.run((e) => e.kv.range({ key: Buffer.from('txkv-test/beat') }))).header.revision);
      // 5 when every beat was answered within the hedge delay (a loaded box may miss it now and then); 15 before
      expect(after - before, 'revisions 5 beats wrote').toBeLessThanOrEqual(7);
      // a fresh client asks the listed-first member first: stop it. Its connections to every
      // member are opened first, as a leader's are (its keepalives go to every member each
      // TTL/4): else the first put after the hedge also paid two connection set-ups, 523 ms
      // once at load 17 (round trips 723, 59, 9 ms). Through client(i): the order stays as listed.
      const fresh = new EtcdHosts(endpoints);
      await Promise.all(endpoints.map((_, i) => fresh.client(i).kv.range({ key: Buffer.from('txkv-test/ready') })));
      c.kill(c.etcd[stopped]!, 'SIGSTOP');
      const took: number[] = [];
      // per put, the members asked in order (index into endpoints: 0 is the stopped one)
      const asked: number[][] = [];
      try {
        for (let i = 0; i < 3; i++) {
          const t = performance.now();
          const mine: number[] = [];
          asked.push(mine);
          await fresh.first((e) => (mine.push([0, 1, 2].findIndex((j) => fresh.client(j) === e)), put(e)));
          took.push(Math.round(performance.now() - t));
        }
      } finally {
        fresh.close();
      }
      console.log(`heartbeat puts with member e${stopped} stopped: ${took.join(', ')} ms; members asked: ${JSON.stringify(asked)}`);
      // the first waits out the hedge delay (200 ms), below the stopped member's deadline
      // (1000 ms) the fault waited; a put itself took up to 723 ms at load 17
      expect(Math.max(...took), `heartbeat round trips ${took.join(', ')} ms`).toBeLessThan(950);
      // after an answer the answering member comes first: the next puts ask it alone (the
      // order, not the round trip, which a loaded box stretches: was < 150 ms)
      expect(asked[0]![0], 'the first put asks the listed-first (stopped) member first').toBe(0);
      for (const a of asked.slice(1)) expect(a[0], `the members a later put asked: ${JSON.stringify(asked)}`).not.toBe(0);
    } finally {
      c.kill(c.etcd[stopped]!, 'SIGCONT');
      hosts.close();
    }
  });

  // last in this file: it kills a member for good
  it('the member that answered last killed (kill -9): the next call goes on to another member at once', { timeout: 60_000 }, async () => {
    const victim = (c.etcdLeader() + 1) % 3;
    const endpoints = [c.etcd[victim]!.clientUrl, ...c.etcd.filter((_, i) => i !== victim).map((m) => m.clientUrl)];
    const hosts = new EtcdHosts(endpoints);
    // serializable: answered by the member itself, without a Raft round trip to etcd's leader,
    // whose latency on a loaded box is not what this measures (one call took 593 ms at load 17)
    const read = (e: Etcd3) => e.kv.range({ key: Buffer.from('txkv-test/ready'), serializable: true });
    try {
      // connections to the other members open, as a node's are (keepalives to every member); through client(i): the order is untouched
      await Promise.all(endpoints.slice(1).map((_, i) => hosts.client(i + 1).kv.range({ key: Buffer.from('txkv-test/ready'), serializable: true })));
      await hosts.run(read); // answered by the victim (listed first, nobody answered before)
      c.kill(c.etcd[victim]!, 'SIGKILL');
      await c.etcd[victim]!.exited;
      const took: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        await hosts.run(read);
        took.push(Math.round(performance.now() - t));
      }
      console.log(`etcd calls after the member that answered last (e${victim}) was killed: ${took.join(', ')} ms`);
      expect(Math.max(...took), `calls ${took.join(', ')} ms`).toBeLessThan(500);
    } finally {
      hosts.close();
    }
  });
});
