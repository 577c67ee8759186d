// Smoke test of bench/compare's `txkv-cluster` system: the bench's own cluster (3 etcd
// members + 3 nodes, bench/cluster.ts) runs w10 and m90 briefly with every read verified
// through a client listing all three nodes, then the failover measurement kills the leader
// and must find every acknowledged commit on every node. Correctness only, not speed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdapter } from '../../bench/adapters/index.js';
import type { AdapterSpec } from '../../bench/adapter.js';
import { HAVE_ETCD, LoopbackCluster } from '../../bench/cluster.js';
import { benchSplitPoints } from '../../bench/data.js';
import { measureFailover } from '../../bench/failover.js';
import { runSuite } from '../../bench/suite.js';
import { workloadByName } from '../../bench/workloads/index.js';

const ROWS = 1000;

describe.skipIf(!HAVE_ETCD)('bench txkv-cluster smoke (3 etcd + 3 nodes)', () => {
  const c = new LoopbackCluster({ TXKV_SPLIT_POINTS: benchSplitPoints(ROWS, 2).join(',') }, 2);
  let spec: AdapterSpec;

  beforeAll(async () => {
    await c.startEtcd();
    await c.startNodes();
    await c.leader();
    spec = { system: 'txkv', endpoint: c.urls[0]!, endpoints: c.urls, label: 'txkv-cluster' };
  }, 90_000);

  afterAll(async () => {
    await c.stop();
  }, 30_000);

  it('w10 and m90 run through all three endpoints and every read checks out', async () => {
    let load = true;
    for (const name of ['w10', 'm90']) {
      const report = await runSuite(await createAdapter(spec), spec, {
        workload: workloadByName(name),
        clients: 4,
        seconds: 1.5,
        warmupSeconds: 0,
        rows: ROWS,
        seed: 1,
        verify: true,
        procs: 0,
        progress: false,
        load,
      });
      load = false;
      expect(report.system).toBe('txkv-cluster');
      expect(report.durability).toMatch(/etcd/);
      expect(report.errorSamples ?? [], `${name}: first errors`).toEqual([]);
      expect(report.errors, `${name}: errors by code`).toEqual({});
      expect(report.txns, `${name}: committed transactions`).toBeGreaterThan(0);
    }
  }, 60_000);

  it('the failover measurement kills the leader, commits resume, and no node misses an acknowledged commit', async () => {
    const r = await measureFailover(c, { writers: 4, beforeMs: 1000, afterMs: 1000 });
    expect(r.acked).toBeGreaterThan(0);
    expect(r.killedNode).not.toBe(r.newLeader);
    expect(r.failoverMs).toBeGreaterThan(0);
    expect(Object.keys(r.lostByNode).sort()).toEqual(['n0', 'n1', 'n2']);
    expect(Object.values(r.lostByNode)).toEqual([0, 0, 0]);
  }, 90_000);
});
