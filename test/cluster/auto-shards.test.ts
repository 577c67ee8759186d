// Cluster mode with shards = 0 (automatic, the new default): every node opens the
// cluster's layout (the first node's count), whatever its own cores say; writes on the
// leader are read on the replica, and a commit that read at a version from before a new
// leader took over is never committed blindly.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, TxnError } from '../../src/index.js';
import { AUTO_SHARDS_MAX } from '../../src/config/server-config.js';
import { HAVE_ETCD, keepLogsOnFailure, TestCluster } from './harness.js';

describe.skipIf(!HAVE_ETCD)('cluster with shards = 0', () => {
  const c = new TestCluster({}, 0);
  keepLogsOnFailure(() => c);
  beforeAll(async () => {
    await c.startEtcd(1);
    await c.startNodes(2);
    await c.leader();
  }, 120_000);
  afterAll(async () => {
    await c.stop();
  }, 60_000);

  it('both nodes open the same automatic count; a write on the leader is read on the replica', { timeout: 90_000 }, async () => {
    const want = Math.min(AUTO_SHARDS_MAX, os.availableParallelism());
    for (const nd of c.nodes) {
      const layout = JSON.parse(fs.readFileSync(path.join(nd.dir, 'txkv-layout.json'), 'utf8')) as { shards: number };
      expect(layout.shards).toBe(want);
    }
    const leader = await c.leader();
    const replica = 1 - leader;
    const db = await connect({ endpoints: [c.urls[leader]!] });
    const rdb = await connect({ endpoints: [c.urls[replica]!] });
    try {
      await db.transact(async (tx) => {
        tx.set('auto/a', '1');
        tx.set('zzz/auto', '2');
      });
      const t = rdb.createTransaction();
      expect(Buffer.from((await t.get('auto/a'))!).toString()).toBe('1');
      expect(Buffer.from((await t.get('zzz/auto'))!).toString()).toBe('2');
      // a read-write transaction through the replica (forwarded to the leader's resolver)
      const w = rdb.createTransaction();
      await w.get('auto/a');
      await db.transact(async (tx) => tx.set('auto/a', '3'));
      w.set('auto/b', 'stale');
      await expect(w.commit()).rejects.toSatisfy((e: unknown) => e instanceof TxnError && e.code === 'CONFLICT');
    } finally {
      await db.close();
      await rdb.close();
    }
  });
});
