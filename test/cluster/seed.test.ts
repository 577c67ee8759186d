// Copying a snapshot into a node (cluster/snapshot.ts) takes longer than the MVCC
// window: the leader pins the copy's version (as `txkv backup` does), so the copy stays
// consistent at one version however long it runs while writes go on. Here the window is
// 100 ms (the smallest allowed) and the copy takes seconds: without the pin every page
// after the first 100 ms would fail TOO_OLD.
// One etcd member, two nodes: n1 is stopped, ROWS rows are loaded through the leader n0
// and the log is trimmed past n1, then n1 restarts and copies them in while a writer
// keeps changing a few keys; afterwards both nodes return the same full scan.
// SEED_ROWS=N (default 40000) makes a larger copy for measuring (docs/cluster.md). The
// default keeps the copy above 3 windows on a quiet machine: 10,000 rows copied in 269 ms
// once the read path got faster (row cache, GetManyRequest), and the test then proved nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Database } from '../../src/index.js';
import { HAVE_ETCD, keepLogsOnFailure, sleep, TestCluster } from './harness.js';

const ROWS = Number(process.env.SEED_ROWS ?? 40_000);
const VALUE = 'v'.repeat(100);

/** A full scan, a fresh read version per page (the window is 100 ms): consistent once writes have stopped. */
async function scan(url: string): Promise<{ rows: number; digest: string[] }> {
  const one = await connect({ endpoints: [url], connectionPoolSize: 1 });
  try {
    const digest: string[] = [];
    let rows = 0;
    let begin = { key: '' as string | Uint8Array, inclusive: true };
    for (;;) {
      // a page that outlives the 100 ms window on a loaded box is read again (nothing changes now)
      let page: Awaited<ReturnType<ReturnType<Database['createTransaction']>['snapshotGetRange']>> | null = null;
      for (let attempt = 0; page === null; attempt++) {
        try {
          page = await one.createTransaction().snapshotGetRange(begin, { key: '\xff', inclusive: false }, { limit: 1000 });
        } catch (err) {
          if ((err as { code?: string }).code !== 'TOO_OLD' || attempt > 50) throw err;
        }
      }
      for (const kv of page.kvs) {
        rows++;
        if (!Buffer.from(kv.key).toString().startsWith('row/')) digest.push(`${Buffer.from(kv.key).toString()}=${Buffer.from(kv.value).toString()}`);
        else if (Buffer.from(kv.value).toString() !== VALUE) digest.push(`bad ${Buffer.from(kv.key).toString()}`);
      }
      if (!page.hasMore || page.kvs.length === 0) break;
      begin = { key: page.kvs[page.kvs.length - 1]!.key, inclusive: false };
    }
    return { rows, digest };
  } finally {
    await one.close();
  }
}

describe.skipIf(!HAVE_ETCD)('snapshot copy beyond the MVCC window (1 etcd member, 2 nodes, 100 ms window)', () => {
  const c = new TestCluster({ TXKV_MVCC_WINDOW_MS: '100', TXKV_CLUSTER_LOG_RETENTION_MS: '500' });
  keepLogsOnFailure(() => c);
  let db: Database;

  beforeAll(async () => {
    await c.startEtcd(1);
    await c.startNodes(2);
    await c.leader();
    c.kill(c.nodes[1]!, 'SIGKILL');
    await c.nodes[1]!.exited;
    await c.leader(30_000, 1);
    db = await connect({ endpoints: [c.urls[0]!], connectionPoolSize: 2 });
  }, 90_000);

  afterAll(async () => {
    await db?.close();
    await c.stop();
  });

  it(`a node copies ${ROWS} rows in, at one pinned version, while writes go on`, { timeout: 600_000 }, async () => {
    const t0 = Date.now();
    for (let i = 0; i < ROWS; i += 1000) {
      const tx = db.createTransaction();
      for (let j = i; j < Math.min(ROWS, i + 1000); j++) tx.set(`row/${String(j).padStart(9, '0')}`, VALUE);
      await tx.commit();
    }
    const loadMs = Date.now() - t0;
    const loaded = Number(await db.createTransaction().getReadVersion());
    // a writer changes a few keys from now on (the log is trimmed only below newer entries) and all along the copy
    let stop = false;
    let writes = 0;
    const writer = (async () => {
      while (!stop) {
        await db.transact(async (tx) => tx.set(`hot/${writes % 10}`, String(writes)));
        writes++;
        await sleep(5);
      }
    })();
    await c.trimmedPast(loaded, 30_000);
    const from = c.nodes[1]!.logs.length;
    try {
      await c.startNode(1, 600_000);
    } finally {
      stop = true;
      await writer;
    }
    const line = c.nodes[1]!.logs.slice(from).find((x) => x.includes('"event":"SnapshotSeeded"'));
    expect(line, 'n1 copied a snapshot').toBeDefined();
    const seeded = JSON.parse(line!) as { rows: number; bytes: number; ms: number; rowsPerSec: number };
    expect(seeded.rows).toBeGreaterThanOrEqual(ROWS);
    console.log(
      `seed test: loaded ${ROWS} rows in ${loadMs} ms; copied ${seeded.rows} rows (${seeded.bytes} bytes) in ${seeded.ms} ms = ${seeded.rowsPerSec} rows/s, ${Math.round(seeded.bytes / 1024 / Math.max(seeded.ms / 1000, 0.001))} KiB/s; ${writes} writes during the copy`,
    );
    // the copy outlived the window many times over
    expect(seeded.ms).toBeGreaterThan(300);
    // writes stopped: both nodes hold the same rows (the copy plus the log after it)
    const [a, b] = [await scan(c.urls[0]!), await scan(c.urls[1]!)];
    expect(a.rows).toBe(ROWS + 10);
    expect(b).toEqual(a);
  });
});
