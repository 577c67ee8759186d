// etcd lost its data under a cluster whose nodes still have theirs (one etcd member, one
// or two nodes). A restarting node must neither hang nor start a fresh, empty database
// beside its data, nor follow a log that ends before its own data:
// - etcd restored from an older snapshot: the node's applied position is past the
//   read-version grant in etcd -> refused, "ahead of the cluster's log";
// - etcd wiped (no cluster record): refused, "holds no txkv cluster record", and the
//   record is NOT created;
// - etcd wiped and a new cluster made in it by a node with an empty directory: the old
//   node is refused naming both database ids;
// - the data is intact: the directory still opens as a single server with every commit
//   (the recovery path docs/cluster.md describes when no copy of etcd survives).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, startServer, type Database } from '../../src/index.js';
import { tempDir } from '../support/server.js';
import { freePort } from '../support/child-server.js';
import { HAVE_ETCD, keepLogsOnFailure, sleep, TestCluster } from './harness.js';

describe.skipIf(!HAVE_ETCD)('a restart after etcd lost its data (1 etcd member)', () => {
  const c = new TestCluster();
  keepLogsOnFailure(() => c);
  const etcdctl = (...args: string[]): string =>
    execFileSync('/usr/bin/etcdctl', ['--endpoints', c.etcdEndpoints.join(','), '--command-timeout=3s', ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['ignore', 'pipe', 'pipe'],
    }).toString();
  const snap = path.join(tempDir('txkv-etcd-snap'), 'snap.db');
  let firstId = '';

  /** Restarts etcd member 0 on `fill` (an empty data directory, or one restored from `snap`). */
  const replaceEtcd = async (fill: 'empty' | 'snapshot'): Promise<void> => {
    const m = c.etcd[0]!;
    c.kill(m);
    await m.exited;
    fs.rmSync(m.dir, { recursive: true, force: true });
    if (fill === 'snapshot') {
      execFileSync('/usr/bin/etcdctl', ['snapshot', 'restore', snap, '--name', m.name, '--data-dir', m.dir, '--initial-cluster', `${m.name}=${m.peerUrl}`, '--initial-advertise-peer-urls', m.peerUrl], {
        env: { ...process.env, ETCDCTL_API: '3' },
        stdio: 'pipe',
      });
    }
    c.spawnEtcd(0);
    const until = Date.now() + 20_000;
    for (;;) {
      try {
        etcdctl('put', 'txkv-test/ready', '1');
        return;
      } catch (err) {
        if (Date.now() > until) throw err;
        await sleep(200);
      }
    }
  };

  /** Starts node i, which must exit 1 within 30 s; returns its log. */
  const refusedStart = async (i: number): Promise<string> => {
    const t = Date.now();
    const err = await c.startNode(i, 30_000).then(
      () => null,
      (e: Error) => e.message,
    );
    expect(err, 'the node started').not.toBeNull();
    expect(await c.nodes[i]!.exited).toMatchObject({ code: 1 });
    expect(Date.now() - t).toBeLessThan(30_000);
    return err!;
  };

  beforeAll(async () => {
    await c.startEtcd(1);
    await c.startNodes(1);
    await c.leader();
    const db = await connect({ endpoints: c.urls, connectionPoolSize: 1 });
    try {
      for (let i = 0; i < 10; i++) await db.transact(async (tx) => tx.set(`k/${i}`, `v${i}`));
      etcdctl('snapshot', 'save', snap);
      // past the read-version grant of the snapshot (the clock + 1 s when it was written)
      await sleep(2500);
      for (let i = 10; i < 20; i++) await db.transact(async (tx) => tx.set(`k/${i}`, `v${i}`));
    } finally {
      await db.close();
    }
    const s = await c.status(0);
    firstId = s!.databaseId;
    // the node's durable position (synced every 0.5 s) covers the last commits
    const want = s!.latestCommittedVersion;
    for (let i = 0; ((await c.status(0))?.cluster?.members.find((m) => m.nodeId === 'n0')?.applied ?? 0) < want; i++) {
      if (i > 100) throw new Error('the position was never published');
      await sleep(100);
    }
    c.kill(c.nodes[0]!);
    await c.nodes[0]!.exited;
  }, 90_000);

  afterAll(async () => {
    await c.stop();
  });

  it('etcd restored from an older snapshot: the node refuses, its data is ahead of the log', { timeout: 60_000 }, async () => {
    await replaceEtcd('snapshot');
    expect(etcdctl('get', 'txkv/database', '--print-value-only')).toContain(firstId);
    const err = await refusedStart(0);
    expect(err).toMatch(/data is ahead of the cluster's log in etcd/);
    expect(err).toMatch(/applied every commit through version \d+, but etcd's read-version grant \(txkv\/grant\) is \d+/);
  });

  it('etcd wiped: the node refuses, names the missing record and what to do, creates nothing', { timeout: 60_000 }, async () => {
    await replaceEtcd('empty');
    const err = await refusedStart(0);
    expect(err).toMatch(/holds no txkv cluster record \(key txkv\/database\)/);
    expect(err).toContain(firstId);
    expect(err).toMatch(/etcdctl snapshot restore/);
    // no fresh database was made in the empty etcd
    expect(etcdctl('get', '--prefix', 'txkv/', '--keys-only').trim()).toBe('');
  });

  it('etcd wiped, then a new cluster made by an empty node: the old node refuses naming both ids', { timeout: 60_000 }, async () => {
    const port = await freePort();
    c.nodes.push({ name: 'n1', port, url: `ws://127.0.0.1:${port}`, dir: tempDir('txkv-etcd-lost'), proc: null, logs: [], exited: Promise.resolve() });
    await c.startNode(1);
    const newId = (await c.status(1))!.databaseId;
    expect(newId).not.toBe(firstId);
    const err = await refusedStart(0);
    expect(err).toContain(`holds database ${firstId}`);
    expect(err).toContain(`is database ${newId}`);
    c.kill(c.nodes[1]!);
    await c.nodes[1]!.exited;
  });

  it("the refused node's data is intact: its directory opens as a single server with every commit", { timeout: 60_000 }, async () => {
    const server = await startServer({ port: 0, host: '127.0.0.1', dataDir: c.nodes[0]!.dir, shards: 2 });
    let db: Database | null = null;
    try {
      db = await connect({ endpoints: [server.url], connectionPoolSize: 1 });
      const tx = db.createReadOnlyTransaction();
      for (let i = 0; i < 20; i++) expect(Buffer.from((await tx.get(`k/${i}`)) ?? '').toString(), `k/${i}`).toBe(`v${i}`);
    } finally {
      await db?.close();
      await server.close();
    }
  });
});
