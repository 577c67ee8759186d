// What a leader does when etcd refuses or does not answer an append (a reviewer's findings):
// - a commit larger than etcd's --max-request-bytes is refused by etcd before anything is
//   proposed: the commit fails TRANSACTION_TOO_LARGE (definite) and the leader keeps leading
//   (it used to answer MAYBE_COMMITTED and step down, so one oversized commit cost a failover);
// - an append whose answer was lost may still reach etcd later; its compare holds as long as
//   the leader key of its term exists. So after such an append the node must never lead
//   under that term again (it used to re-lead under the same key at the next tick).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Database } from '../../src/index.js';
import { HAVE_ETCD, TestCluster, sleep } from './harness.js';

type Cl = { role: string; term: string | null };

describe.skipIf(!HAVE_ETCD)('append outcomes (1 etcd member with --max-request-bytes 2 MiB, 1 node)', () => {
  // a 4 s lease: a 1.5 s stop of etcd fails an append (1 s deadline) but not the lease
  const c = new TestCluster({ TXKV_CLUSTER_LEASE_TTL_MS: '4000' });
  let db: Database;
  const cl = async (): Promise<Cl> => ((await c.status(0))?.cluster ?? { role: 'none', term: null }) as Cl;
  const code = (p: Promise<unknown>): Promise<string | null> =>
    p.then(
      () => null,
      (e: { code?: string }) => e.code ?? String(e),
    );

  beforeAll(async () => {
    await c.startEtcd(1);
    await c.startNodes(1);
    await c.leader();
    db = await connect({ endpoints: c.urls, connectionPoolSize: 1 });
    await db.transact(async (tx) => tx.set('a/before', '1'));
  }, 60_000);

  afterAll(async () => {
    await db?.close();
    await c.stop();
  });

  it('a commit over etcd’s request limit fails TRANSACTION_TOO_LARGE; the leader keeps its term', { timeout: 60_000 }, async () => {
    const before = await cl();
    expect(before.role).toBe('leader');
    const tx = db.createTransaction();
    for (let i = 0; i < 30; i++) tx.set(`a/big/${i}`, 'x'.repeat(100_000)); // 3 MB > 2 MiB
    expect(await code(tx.commit())).toBe('TRANSACTION_TOO_LARGE');
    await sleep(500);
    const after = await cl();
    expect(after).toMatchObject({ role: 'leader', term: before.term });
    await db.transact(async (t) => t.set('a/small', '1'));
    expect(await db.transact(async (t) => t.get('a/big/0'))).toBeNull();
  });

  it('after an append with an unknown outcome the node leads again only under a new term', { timeout: 60_000 }, async () => {
    await c.leader();
    const before = await cl();
    c.kill(c.etcd[0]!, 'SIGSTOP');
    let outcome: string | null;
    try {
      const tx = db.createTransaction();
      tx.set('a/during', '1');
      const p = code(tx.commit());
      await sleep(1500);
      c.kill(c.etcd[0]!, 'SIGCONT');
      outcome = await p;
    } finally {
      c.kill(c.etcd[0]!, 'SIGCONT');
    }
    expect(outcome).toBe('MAYBE_COMMITTED');
    const end = Date.now() + 20_000;
    let after = await cl();
    while (after.role !== 'leader') {
      if (Date.now() > end) throw new Error('no leader again');
      await sleep(100);
      after = await cl();
    }
    expect(after.term).not.toBe(before.term);
    await db.transact(async (t) => t.set('a/after', '1'));
  });
});
