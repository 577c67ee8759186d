// Operator mistakes in cluster mode that used to be accepted silently (a reviewer's
// findings): each is refused with a clear reason instead of splitting or misrouting data.
// - cluster settings without --etcd (a single server that ignored --node-id);
// - an advertise URL no other node can reach (0.0.0.0);
// - two live processes with one --node-id (they overwrote each other's log position);
// - a leader whose advertised URL is a server of another database (replicas forwarded
//   commits there: acknowledged, and written into the wrong database).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, startServer, type Database } from '../../src/index.js';
import { startTestServer, tempDir, type TestServer } from '../support/server.js';
import { freePort } from '../support/child-server.js';
import { HAVE_ETCD, TestCluster, sleep } from './harness.js';

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
  let other: TestServer;

  beforeAll(async () => {
    await c.startEtcd(1);
    // a single server of another database, and a leader that (wrongly) advertises its URL
    other = await startTestServer();
    c.nodes.push({ name: 'n0', port: await freePort(), url: other.server.url, dir: tempDir('txkv-misconfig'), proc: null, logs: [], exited: Promise.resolve() });
    await c.startNode(0);
    await c.leader();
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
});
