// Operator mistakes in cluster mode that used to be accepted silently (a reviewer's
// findings): each is refused with a clear reason instead of splitting or misrouting data.
// - cluster settings without --etcd (a single server that ignored --node-id);
// - an advertise URL no other node can reach (0.0.0.0);
// - two live processes with one --node-id (they overwrote each other's log position);
// - a leader whose advertised URL is a server of another database (replicas forwarded
//   commits there: acknowledged, and written into the wrong database);
// - an --advertise that names another node of the same cluster: refused at start when
//   that node answers there; when it only answers later (it started after the leader),
//   forwards to the leader fail UNAVAILABLE naming the clash instead of looping.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, startServer, type Database } from '../../src/index.js';
import { startTestServer, tempDir, type TestServer } from '../support/server.js';
import { freePort } from '../support/child-server.js';
import { HAVE_ETCD, keepLogsOnFailure, sleep, TestCluster } from './harness.js';

const errorOf = (f: () => Promise<unknown>): Promise<{ code?: string; message: string }> =>
  f().then(
    async (r) => {
      // it started after all (the defect): stop it again
      if (r && typeof (r as { close?: unknown }).close === 'function') await (r as { close(): Promise<void> }).close();
      return { code: 'none', message: 'it worked' };
    },
    (e: { code?: string; message: string }) => e,
  );

describe('cluster settings checked before anything starts', () => {
  it('--node-id or --advertise without --etcd, a bad node id, an unreachable advertise URL: INVALID_ARGUMENT', async () => {
    const dataDir = tempDir();
    const cases: [Parameters<typeof startServer>[0], RegExp][] = [
      [{ cluster: { nodeId: 'n1' } }, /cluster\.nodeId \(--node-id\) only apply in cluster mode/],
      [{ cluster: { advertiseUrl: 'ws://127.0.0.1:1' } }, /cluster\.advertiseUrl \(--advertise\) only apply/],
      [{ cluster: { etcdEndpoints: ['http://127.0.0.1:1'], nodeId: 'a/b' } }, /cluster\.nodeId must be/],
      [{ cluster: { etcdEndpoints: ['http://127.0.0.1:1'], nodeId: 'n1', advertiseUrl: 'http://127.0.0.1:7070' } }, /must be a URL like ws:\/\/HOST:PORT/],
      [{ cluster: { etcdEndpoints: ['http://127.0.0.1:1'], nodeId: 'n1', advertiseUrl: 'ws://0.0.0.0:7070' } }, /names no host the other nodes can reach/],
      [{ host: '0.0.0.0', insecure: true, cluster: { etcdEndpoints: ['http://127.0.0.1:1'], nodeId: 'n1' } }, /needs cluster\.advertiseUrl/],
    ];
    for (const [cfg, why] of cases) {
      const e = await errorOf(() => startServer({ port: 0, dataDir, ...cfg }));
      expect(e.code, JSON.stringify(cfg)).toBe('INVALID_ARGUMENT');
      expect(e.message, JSON.stringify(cfg)).toMatch(why);
    }
  });
});

describe.skipIf(!HAVE_ETCD)('cluster misconfigurations (1 etcd member)', () => {
  const c = new TestCluster();
  keepLogsOnFailure(() => c);
  let other: TestServer;

  // the port the leader n0 (wrongly) advertises: nothing listens there while n0 starts
  // (its own check of the URL cannot tell), then other servers take it
  let wrongPort = 0;

  beforeAll(async () => {
    await c.startEtcd(1);
    wrongPort = await freePort();
    c.nodes.push({ name: 'n0', port: await freePort(), url: `ws://127.0.0.1:${wrongPort}`, dir: tempDir('txkv-misconfig'), proc: null, logs: [], exited: Promise.resolve() });
    await c.startNode(0);
    await c.leader();
    expect(c.nodes[0]!.logs.some((l) => l.includes('"event":"AdvertiseUnverified"'))).toBe(true);
    // a single server of another database at the URL the leader advertises
    other = await startTestServer({ port: wrongPort });
  }, 60_000);

  afterAll(async () => {
    await other?.close();
    await c.stop();
  });

  it('a second live process with the same --node-id exits non-zero naming the clash', { timeout: 60_000 }, async () => {
    const port = await freePort();
    c.nodes.push({ name: 'n0', port, url: `ws://127.0.0.1:${port}`, dir: tempDir('txkv-misconfig'), proc: null, logs: [], exited: Promise.resolve() });
    const err = await c.startNode(1).then(
      () => null,
      (e: Error) => e.message,
    );
    expect(err).toMatch(/node id n0 is in use by a live node/);
    expect(await c.nodes[1]!.exited).toMatchObject({ code: 1 });
    c.nodes.pop();
    // the first one still leads
    expect((await c.status(0))?.cluster?.role).toBe('leader');
  });

  it("a replica does not forward to a leader URL that serves another database's data", { timeout: 60_000 }, async () => {
    const port = await freePort();
    c.nodes.push({ name: 'n1', port, url: `ws://127.0.0.1:${port}`, dir: tempDir('txkv-misconfig'), proc: null, logs: [], exited: Promise.resolve() });
    await c.startNode(c.nodes.length - 1);
    let db: Database | null = null;
    try {
      db = await connect({ endpoints: [`ws://127.0.0.1:${port}`], connectionPoolSize: 1, transactionTimeoutMs: 3000 });
      // wait until the replica knows its leader (then the forward is attempted)
      for (let i = 0; (await c.status(c.nodes.length - 1))?.cluster?.leader !== 'n0'; i++) {
        if (i > 100) throw new Error('the replica never saw the leader');
        await sleep(100);
      }
      const tx = db.createTransaction();
      tx.set('misrouted', 'x');
      const e = await errorOf(() => tx.commit());
      expect(e.code).toBe('UNAVAILABLE');
      expect(e.message).toMatch(/serves database/);
      // nothing reached the other database
      expect(await other.db.transact(async (t) => t.get('misrouted'))).toBeNull();
    } finally {
      await db?.close();
    }
  });

  it("--advertise naming another node's address: refused at start when that node answers there", { timeout: 60_000 }, async () => {
    const replica = c.nodes[c.nodes.length - 1]!;
    c.nodes.push({ name: 'n9', port: await freePort(), url: replica.url, dir: tempDir('txkv-misconfig'), proc: null, logs: [], exited: Promise.resolve() });
    const err = await c.startNode(c.nodes.length - 1).then(
      () => null,
      (e: Error) => e.message,
    );
    expect(err).toMatch(new RegExp(`--advertise ${replica.url} \\(cluster.advertiseUrl\\) of node n9 reaches node ${replica.name} of this cluster, not this node`));
    expect(await c.nodes[c.nodes.length - 1]!.exited).toMatchObject({ code: 1 });
    c.nodes.pop();
  });

  it('a leader URL where another node of the cluster answers: forwards fail UNAVAILABLE naming both, no loop', { timeout: 60_000 }, async () => {
    // the node n2 now listens where the leader n0 says it is (n2's own --advertise is right)
    await other.close();
    c.nodes.push({ name: 'n2', port: wrongPort, url: `ws://127.0.0.1:${wrongPort}`, dir: tempDir('txkv-misconfig'), proc: null, logs: [], exited: Promise.resolve() });
    const n2 = c.nodes.length - 1;
    await c.startNode(n2);
    for (let i = 0; (await c.status(n2))?.cluster?.leader !== 'n0'; i++) {
      if (i > 100) throw new Error('n2 never saw the leader');
      await sleep(100);
    }
    // through n2 (forwards to itself) and through the replica n1 (forwards to n2)
    for (const url of [c.nodes[n2]!.url, c.nodes[n2 - 1]!.url]) {
      const db = await connect({ endpoints: [url], connectionPoolSize: 1, transactionTimeoutMs: 3000 });
      try {
        const t0 = Date.now();
        const tx = db.createTransaction();
        tx.set('looped', 'x');
        const e = await errorOf(() => tx.commit());
        expect(e.code, url).toBe('UNAVAILABLE');
        expect(e.message, url).toMatch(new RegExp(`the leader n0 advertises ws://127.0.0.1:${wrongPort}, but node n2 of this cluster answers there`));
        expect(Date.now() - t0, url).toBeLessThan(2000);
      } finally {
        await db.close();
      }
    }
    expect(c.nodes[n2]!.logs.some((l) => l.includes('"event":"LeaderUrlWrongNode"'))).toBe(true);
  });
});
