// The cluster tests' harness: 3 etcd members and 3 `txkv serve --etcd ...` nodes on loopback.
// The code lives in bench/cluster.ts, shared with bench/compare.ts (system `txkv-cluster`);
// the helpers below are the cluster test files' own.
import { afterEach } from 'vitest';
import { connect, type Database } from '../../src/index.js';
export { ETCD_BIN, HAVE_ETCD, LoopbackCluster as TestCluster, sleep } from '../../bench/cluster.js';
export type { ClusterStatus, EtcdMember, Machine, Proc, TxkvNode } from '../../bench/cluster.js';


/** p, or a rejection (code CLIENT_TIMEOUT) after ms; p may still finish later. */
export function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(Object.assign(new Error('client timeout'), { code: 'CLIENT_TIMEOUT' })), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

/**
 * A read version from `db` through the SDK's retry loop (transact): a retryable refusal (an
 * election running, a leader whose read-version grant is not renewed yet after etcd
 * trouble, a forward connection that dropped) is retried as any application's would be.
 * For tests that check data at a read version, not the availability of that moment.
 */
export function readVersion(db: Database): Promise<bigint> {
  return db.transact((tx) => tx.getReadVersion());
}

/**
 * The applied version node `i` reports, asking until it answers: status() is null when a
 * node takes over its 1 s timeout, as on a loaded machine (a full run at load 20 failed
 * cluster.test.ts on `(await c.status(r))!` with "Cannot read properties of null").
 */
export async function appliedVersion(c: { status(i: number): Promise<{ cluster: { appliedVersion: number } | null } | null> }, i: number, ms = 20_000): Promise<number> {
  const until = Date.now() + ms;
  for (;;) {
    const v = (await c.status(i))?.cluster?.appliedVersion;
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`node ${i} reported no applied version within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every row (key=value) the node at `url` returns for a full scan at read version `rv`. */
export async function scanAt(url: string, rv: bigint): Promise<string[]> {
  const one = await connect({ endpoints: [url], connectionPoolSize: 1 });
  try {
    const rows: string[] = [];
    const tx = one.createTransaction();
    tx.setReadVersion(rv);
    let begin = { key: '' as string | Uint8Array, inclusive: true };
    for (;;) {
      const page = await tx.snapshotGetRange(begin, { key: '\xff', inclusive: false }, { limit: 1000 });
      for (const kv of page.kvs) rows.push(`${Buffer.from(kv.key).toString()}=${Buffer.from(kv.value).toString()}`);
      if (!page.hasMore || page.kvs.length === 0) break;
      begin = { key: page.kvs[page.kvs.length - 1]!.key, inclusive: false };
    }
    return rows;
  } finally {
    await one.close();
  }
}

/**
 * Marks `cluster()` failed when a test of the calling describe block fails, so its stop()
 * keeps every process's log (a node that exits mid-file otherwise leaves only the next
 * tests' failures behind). Call in the describe body.
 */
export function keepLogsOnFailure(cluster: () => { failed: boolean } | undefined): void {
  afterEach((ctx) => {
    const c = cluster();
    if (c && ctx.task.result?.state === 'fail') c.failed = true;
  });
}
