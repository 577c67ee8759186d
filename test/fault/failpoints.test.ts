// Crash the server at each named step of a cross-shard commit (failpoints.ts) and
// check, after a restart without failpoints, that the transaction is visible on all
// of its shards or on none, and on all when the decision was durable.
import fs from 'node:fs';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { connect, TxnError } from '../../src/index.js';
import { FAILPOINT_NAMES } from '../../src/failpoints/failpoints.js';
import { ShardMap, defaultSplitPoints } from '../../src/coordinator/shard-map.js';
import { toBytes } from '../../src/keys/bytes.js';
import { freePort, logEvent, spawnServer, killAllServers } from '../support/child-server.js';
import { startLoggedServer, tempDir, text } from '../support/server.js';
import { onEveryShard } from '../support/keys.js';

const dirs: string[] = [];
afterAll(() => {
  killAllServers();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const KEYS = onEveryShard('fp');

/**
 * Each failpoint, how it is armed, and whether the commit must survive the crash
 * (undefined: either way, all or nothing). `blind`: the commit reads nothing; otherwise
 * it carries a read conflict, which the resolver on the main thread checks before any
 * shard hears of the commit (coordinator/resolver.ts). Either way the prepares are posted
 * without replies and the primary's decision goes with its prepare (commit-coordinator.ts),
 * so a shard crashing after its prepare may die before or after the decision is durable.
 * `mayAck`: the crash may come after the decision is durable, and the coordinator
 * acknowledges a cross-shard commit then (before its secondaries apply), so the client
 * may have heard "committed" before the server died (it must then survive the crash).
 */
const CASES: { name: (typeof FAILPOINT_NAMES)[number]; arg: string; decided: boolean | undefined; blind: boolean; mayAck?: boolean }[] = [
  { name: 'shard.after-prepare', arg: '2', decided: undefined, blind: false, mayAck: true },
  { name: 'coordinator.after-decision', arg: '1', decided: true, blind: false },
  { name: 'shard.after-apply', arg: '0', decided: true, blind: false }, // the primary applied: record durable, others not yet
  { name: 'shard.after-apply', arg: '3', decided: true, blind: false, mayAck: true }, // a secondary applied
  // shard 2 may crash before or after the primary's decision is durable (and acknowledged:
  // on a loaded machine shard 2 may handle its prepare after the primary's fsync)
  { name: 'shard.after-prepare', arg: '2', decided: undefined, blind: true, mayAck: true },
  { name: 'coordinator.after-decision', arg: '1', decided: true, blind: true },
  { name: 'shard.after-apply', arg: '0', decided: true, blind: true },
  { name: 'shard.after-apply', arg: '3', decided: true, blind: true, mayAck: true },
];

describe('failpoints in two-phase commit', () => {
  it('the test keys span all four shards, and every failpoint has a case', () => {
    const map = new ShardMap(1, defaultSplitPoints(4));
    expect(new Set(KEYS.map((k) => map.shardOfKey(toBytes(k)))).size).toBe(4);
    // move failpoints are covered by test/fault/move-failpoints.test.ts, the cluster's by test/cluster/distribution.test.ts,
    // shard.retire-mid-run by test/fault/retire-kill9.test.ts
    for (const name of FAILPOINT_NAMES.filter((n) => !/^(cluster-)?move\./.test(n) && n !== 'shard.retire-mid-run')) expect(CASES.some((c) => c.name === name), `no test for failpoint ${name}`).toBe(true);
  });

  it.each(CASES)('crash at $name=$arg (blind: $blind): all or nothing (decided: $decided)', { timeout: 120_000 }, async ({ name, arg, decided, blind, mayAck }) => {
    const dir = tempDir('txkv-fp');
    dirs.push(dir);
    const port = await freePort();
    // a committed baseline, then the crashing commit, on one server with the failpoint armed:
    // the baseline is one single-shard commit per key, which passes none of the failpoints
    // (they are on the cross-shard path), so the first cross-shard commit is the crashing one
    const srv = await spawnServer(dir, port, { failpoints: `${name}=${arg}` });
    let db = await connect({ endpoints: [srv.url] });
    for (const k of KEYS) {
      await db.transact(async (tx) => {
        tx.set(k, 'before');
      });
    }
    const tx = db.createTransaction();
    if (!blind) tx.addReadConflictKey(KEYS[0]!);
    for (const k of KEYS) tx.set(k, 'after');
    const err = await tx.commit().then(
      () => null,
      (e: unknown) => e,
    );
    if (err !== null || !mayAck) {
      expect(err, 'the commit must not be acknowledged: the server died before its decision was durable').toBeInstanceOf(TxnError);
      expect((err as TxnError).code).toBe('MAYBE_COMMITTED');
    }
    const exit = await srv.exited;
    expect(exit.signal).toBe('SIGKILL');
    expect(srv.logs.join('\n')).toContain(`failpoint ${name} fired`);
    await db.close();

    // recovery in this process (startServer, as `txkv serve` runs it)
    const back = await startLoggedServer({ dataDir: dir });
    onTestFinished(() => back.server.close()); // also when an assertion below fails (close() is idempotent)
    db = await connect({ endpoints: [back.server.url] });
    const r = db.createReadOnlyTransaction();
    const vals = await Promise.all(KEYS.map(async (k) => text(await r.get(k))));
    const outcome = decided ?? (vals[0] === 'after');
    expect(vals).toEqual(KEYS.map(() => (outcome ? 'after' : 'before')));
    // an acknowledged commit survives the crash
    if (err === null) expect(outcome, 'acknowledged, then lost in the crash').toBe(true);
    const rec = logEvent(back.logs, 'RecoveryDone')!;
    if (name === 'coordinator.after-decision') expect(rec.inDoubtRolledForward).toBe(3); // three secondaries replayed
    if (decided === false) expect(rec.decisionRecords).toBe(0);
    await db.close();
    await back.server.close();
  });
});
