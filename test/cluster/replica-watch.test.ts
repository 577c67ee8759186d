// A watch armed on a cluster replica that has not applied the log as far as the value
// watched (1 etcd member, 2 nodes). The spec: a watch resolves once the key's value differs
// from the value the watching transaction saw, its own write if it wrote the key. A client
// arms the watch right after its commit is acknowledged; a replica applies the log a little
// later, so its shard compared the watched value with the older one it still had and the
// watch fired at once, with nothing changed (2 of 10 and 1 of 10 such watches on the two
// replicas of a 3-node cluster on loopback). Here the replica is held behind on purpose: a
// move's copy on a node following the log waits 2 s per chunk (failpoint
// cluster-move.replica-slow), and that node applies nothing past the move's switch until its
// copy is done.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Database } from '../../src/index.js';
import { appliedVersion, HAVE_ETCD, keepLogsOnFailure, sleep, TestCluster, within } from './harness.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64url');
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/txkv.js');
const run = promisify(execFile);

describe.skipIf(!HAVE_ETCD)('a watch on a replica behind the log (1 etcd member, 2 nodes)', () => {
  const c = new TestCluster({ TXKV_FAILPOINTS: 'cluster-move.replica-slow=2000' });
  keepLogsOnFailure(() => c);
  let leaderDb: Database;
  let replicaDb: Database;
  let l = 0;

  beforeAll(async () => {
    await c.startEtcd(1);
    await c.startNodes(2);
    l = await c.leader();
    leaderDb = await connect({ endpoints: [c.urls[l]!], connectionPoolSize: 1 });
    replicaDb = await connect({ endpoints: [c.urls[1 - l]!], connectionPoolSize: 1 });
    await replicaDb.transact(async (tx) => tx.set('rw/ready', '1'));
  }, 60_000);

  afterAll(async () => {
    await leaderDb?.close();
    await replicaDb?.close();
    await c.stop();
  });

  it('fires when the value changes, not at once because the replica had not applied the watching commit yet', { timeout: 60_000 }, async () => {
    const http = `http://127.0.0.1:${c.nodes[l]!.port}`;
    const post = async (p: string): Promise<{ map: { ranges: { begin: string; owner: number }[] } }> => {
      const r = await fetch(http + p, { method: 'POST' });
      expect(r.status, await r.clone().text()).toBe(200);
      return (await r.json()) as { map: { ranges: { begin: string; owner: number }[] } };
    };
    await leaderDb.transact(async (tx) => {
      for (let i = 0; i < 10; i++) tx.set(`mv/${i}`, 'x');
    });
    await post(`/v1/shard/split?key=${b64('mv/')}`);
    const map = await post(`/v1/shard/split?key=${b64('mv0')}`);
    const owner = map.map.ranges.find((r) => r.begin === Buffer.from('mv/').toString('hex'))!.owner;
    // the leader's move is done in well under a second; the replica's copy waits 2 s
    await post(`/v1/shard/move?begin=${b64('mv/')}&to=${1 - owner}`);

    const tx = replicaDb.createTransaction();
    tx.set('rw/k', 'mine');
    const w = tx.watch('rw/k');
    await tx.commit();
    const cv = Number(tx.getCommittedVersion());
    // the window this test is about: the replica has not applied the watching commit
    expect(await appliedVersion(c, 1 - l)).toBeLessThan(cv);
    let fired = false;
    void w.then(
      () => (fired = true),
      () => undefined,
    );
    // past the replica's hold-up (its copy, then its catch-up, 2 s each): nothing changed
    // the key, the watch must still wait
    for (const until = Date.now() + 20_000; (await appliedVersion(c, 1 - l)) < cv; await sleep(100)) {
      if (Date.now() > until) throw new Error(`the replica did not apply version ${cv} in 20 s`);
    }
    await sleep(500);
    expect(fired, 'the watch fired although the key still holds the value its transaction wrote').toBe(false);
    // and it does fire at the next change
    await leaderDb.transact(async (t) => t.set('rw/k', 'theirs'));
    await within(Promise.resolve(w), 10_000);
  });

  // the operator's side: docs/distribution.md "Operator routes and CLI" with a cluster's nodes
  it("txkv shard split/merge given every node's URL goes to the leader (the first, a replica, answered UNAVAILABLE)", { timeout: 60_000 }, async () => {
    const urls = [c.urls[1 - l]!, c.urls[l]!].join(',');
    const cli = (...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> =>
      run(process.execPath, [BIN, ...args, '--endpoint', urls], { timeout: 30_000 }).then(
        (r) => ({ ...r, code: 0 }),
        (e: { stdout: string; stderr: string; code: number }) => e,
      );
    const split = await cli('shard', 'split', 'cli/');
    expect(split.stderr).toBe('');
    expect(split.code).toBe(0);
    expect(split.stdout).toContain('[cli/, ');
    const merge = await cli('shard', 'merge', 'cli/');
    expect(merge.code, merge.stderr).toBe(0);
    expect(merge.stdout).not.toContain('[cli/, ');
  });
});
