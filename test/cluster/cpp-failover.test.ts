// The C++ client (clients/cpp) against a real 3-node cluster, as 3FS's metadata service
// uses it: clients/cpp/test/cluster_workload.cc runs read-modify-write transactions on
// shared counters plus one "inode" key per attempt, with snapshot and range reads, through
// one Database given all three nodes, while this file kills -9 the leader and restarts it.
// Then every node is scanned at one read version:
//   - every commit the client was told COMMITTED is stored on every node;
//   - nothing of an attempt told anything but COMMITTED or MAYBE_COMMITTED is stored;
//   - each counter's stored inodes carry exactly the values 1..counter (serializable:
//     no increment lost or doubled, MAYBE_COMMITTED ones included);
// and the workload's own checks hold: no stale read after the failover (a read version or
// a counter below what was acknowledged before the transaction began, an acknowledged
// inode missing from a snapshot or range read), MAYBE_COMMITTED only at commit, codes the
// spec names, commits again after the kill.
//
// Needs the C++ build (clients/cpp/build/txkv_cluster_workload): scripts/test-cpp.sh runs
// this file once it has built it (CPP_FAILOVER_WORKLOAD); a vitest run without it skips.
// CPP_FAILOVER_SCENARIOS=all runs the longer exploration too (a replica killed, one
// endpoint down from the start, the leader stopped with SIGSTOP for 4 s).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/index.js';
import { appliedVersion, HAVE_ETCD, keepLogsOnFailure, readVersion, scanAt, sleep, TestCluster } from './harness.js';

const WORKLOAD = process.env.CPP_FAILOVER_WORKLOAD ?? '';
const HAVE_WORKLOAD = WORKLOAD !== '' && fs.existsSync(WORKLOAD);
const SCENARIOS = (process.env.CPP_FAILOVER_SCENARIOS ?? 'leader-kill').split(',');
const all = SCENARIOS.includes('all');
const TIMEOUT_MS = 10_000; // the client's transactionTimeoutMs (its default)

// [worker, attempt, counter, value, outcome, code, stage, version, startMs, endMs]
type Attempt = [number, number, number, number, 'committed' | 'maybe' | 'not', string, string, number, number, number];
interface Result {
  maxCallMs: number;
  violations: string[];
  codes: Record<string, number>;
  attempts: Attempt[];
}

class Workload {
  private readonly proc: ChildProcess;
  commits = 0;
  private out = '';
  readonly stderr: string[] = [];
  readonly done: Promise<Result>;

  constructor(urls: string[], readonly prefix: string) {
    this.proc = spawn(WORKLOAD, ['--endpoints', urls.join(','), '--prefix', prefix, '--workers', '4', '--counters', '2', '--timeout-ms', String(TIMEOUT_MS), '--max-seconds', '100'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.proc.stderr!.on('data', (d: Buffer) => this.stderr.push(...d.toString().split('\n').filter(Boolean)));
    this.done = new Promise((resolve, reject) => {
      this.proc.stdout!.on('data', (d: Buffer) => {
        this.out += d.toString();
        let i;
        while ((i = this.out.indexOf('\n')) >= 0) {
          const line = this.out.slice(0, i);
          this.out = this.out.slice(i + 1);
          if (line.startsWith('progress ')) this.commits = Number(line.split(' ')[1]);
          else if (line.startsWith('result ')) resolve(JSON.parse(line.slice(7)) as Result);
        }
      });
      this.proc.once('exit', (code, signal) => reject(new Error(`the workload exited (code ${code}, signal ${signal}) without a result; stderr:\n${this.stderr.join('\n')}`)));
    });
    this.done.catch(() => {});
  }

  /** Waits until `n` more commits are acknowledged than now; the time that took. */
  async more(n: number, ms = 40_000): Promise<number> {
    const [from, t] = [this.commits, Date.now()];
    while (this.commits < from + n) {
      if (Date.now() - t > ms) throw new Error(`the workload acknowledged ${this.commits - from} of ${n} commits in ${ms} ms; stderr:\n${this.stderr.join('\n')}`);
      await sleep(20);
    }
    return Date.now() - t;
  }

  async stop(): Promise<Result> {
    this.proc.stdin!.end('stop\n');
    return this.done;
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

/** The outcome of one run, checked against every node's rows at one read version. */
async function check(c: TestCluster, w: Workload, r: Result, faultAt: number): Promise<Record<string, number>> {
  const attempts = r.attempts;
  const committed = attempts.filter((a) => a[4] === 'committed');
  const maxVersion = Math.max(...committed.map((a) => a[7]));
  // every node has applied the last acknowledged commit (a restarted one catches up)
  for (let i = 0; i < c.nodes.length; i++) {
    for (const until = Date.now() + 30_000; (await appliedVersion(c, i)) < maxVersion; await sleep(100)) {
      if (Date.now() > until) throw new Error(`node ${i} did not apply version ${maxVersion} in 30 s`);
    }
  }
  const db = await connect({ endpoints: c.urls });
  const rv = await readVersion(db);
  await db.close();
  const key = (a: Attempt): string => `${w.prefix}/i/${a[0]}/${String(a[1]).padStart(8, '0')}`;
  const problems: string[] = [];
  for (let i = 0; i < c.nodes.length; i++) {
    const rows = new Map((await scanAt(c.urls[i]!, rv)).filter((x) => x.startsWith(`${w.prefix}/`)).map((x) => [x.slice(0, x.indexOf('=')), x.slice(x.indexOf('=') + 1)]));
    for (const a of attempts) {
      const v = rows.get(key(a));
      if (a[4] === 'committed' && v !== `${a[2]}:${a[3]}`) problems.push(`node ${i}: acknowledged ${key(a)} (version ${a[7]}) is ${v ?? 'missing'}`);
      if (a[4] === 'not' && v !== undefined) problems.push(`node ${i}: ${key(a)} was refused (${a[6]} ${a[5]}) but is stored (${v})`);
    }
    // each counter: its stored inodes hold exactly 1..value, once each
    for (const k of [0, 1]) {
      const counter = Number(rows.get(`${w.prefix}/c/${k}`) ?? 0);
      const values = [...rows.entries()].filter(([kk, v]) => kk.startsWith(`${w.prefix}/i/`) && v.startsWith(`${k}:`)).map(([, v]) => Number(v.slice(2)));
      values.sort((x, y) => x - y);
      if (values.length !== counter || values.some((v, j) => v !== j + 1)) problems.push(`node ${i}: counter ${k} = ${counter}, inode values ${JSON.stringify(values.slice(0, 50))} (${values.length})`);
    }
  }
  expect(problems.slice(0, 20), `${problems.length} problems`).toEqual([]);
  expect(r.violations).toEqual([]);
  // the codes a failover may bring: retryable ones, MAYBE_COMMITTED (a commit in flight on a
  // connection that died), NETWORK_ERROR (a read whose second ask failed too) and TIMEOUT;
  // FAILED, PROTOCOL_ERROR, INVALID_ARGUMENT and the like would be a bug
  const expected = new Set(['CONFLICT', 'TOO_OLD', 'FUTURE_VERSION', 'THROTTLED', 'RESOURCE_CONSTRAINED', 'UNAVAILABLE', 'MAYBE_COMMITTED', 'NETWORK_ERROR', 'TIMEOUT']);
  expect(Object.keys(r.codes).filter((k) => !expected.has(k.slice(k.indexOf(':') + 1))), `codes ${JSON.stringify(r.codes)}; first messages:\n${w.stderr.join('\n')}`).toEqual([]);
  // no call outlived the client's transaction timeout by much (a stuck request would)
  expect(r.maxCallMs, 'the longest call (ms)').toBeLessThan(TIMEOUT_MS + 10_000);
  // after the fault, the client committed again without being restarted
  const after = committed.filter((a) => a[8] > faultAt);
  expect(after.length).toBeGreaterThan(10);
  // what it measured: the longest stretch with no commit acknowledged, around the fault;
  // the first acknowledgement of a transaction begun after the fault
  const acks = committed.map((a) => a[9]).filter((t) => t >= faultAt - 2000).sort((x, y) => x - y);
  let gap = 0;
  for (let j = 1; j < acks.length; j++) gap = Math.max(gap, acks[j]! - acks[j - 1]!);
  return {
    attempts: attempts.length,
    committed: committed.length,
    maybe: attempts.filter((a) => a[4] === 'maybe').length,
    refused: attempts.filter((a) => a[4] === 'not').length,
    firstAckAfterFaultMs: Math.min(...committed.filter((a) => a[9] > faultAt).map((a) => a[9])) - faultAt,
    longestAckGapMs: gap,
    maxCallMs: r.maxCallMs,
  };
}

describe.skipIf(!HAVE_ETCD || !HAVE_WORKLOAD)('the C++ client against a 3-node cluster (kill -9, restart)', () => {
  // made in beforeAll: a skipped file (every vitest run but test-cpp.sh's) makes no temp dir
  let c: TestCluster;
  keepLogsOnFailure(() => c);
  const workloads: Workload[] = [];
  const measured: Record<string, unknown> = {};

  beforeAll(async () => {
    c = new TestCluster();
    await c.startEtcd();
    await c.startNodes();
    await c.leader();
  }, 120_000);

  afterAll(async () => {
    for (const w of workloads) w.kill();
    await c?.stop();
    console.log(`cpp-failover: ${JSON.stringify(measured)}`);
  }, 60_000);

  const run = async (name: string, fault: (w: Workload) => Promise<number>): Promise<void> => {
    const w = new Workload(c.urls, `cpp-${name}`);
    workloads.push(w);
    await w.more(10);
    const faultAt = await fault(w);
    await w.more(10);
    const r = await w.stop();
    const m = await check(c, w, r, faultAt);
    measured[name] = { ...m, codes: r.codes, ...(all ? { messages: w.stderr } : {}) };
  };

  it('kill -9 of the leader mid-run, then its restart on the same port: every acknowledged commit on every node, nothing refused stored, no stale read', { timeout: 120_000 }, async () => {
    await run('leader-kill', async (w) => {
      const l = await c.leader();
      const t = Date.now();
      c.kill(c.nodes[l]!, 'SIGKILL');
      await c.nodes[l]!.exited;
      await w.more(10); // through the new leader, with one endpoint dead
      await c.startNode(l);
      return t;
    });
  });

  it.skipIf(!all)('kill -9 of a replica mid-run, then its restart', { timeout: 120_000 }, async () => {
    await run('replica-kill', async (w) => {
      const r = ((await c.leader()) + 1) % 3;
      const t = Date.now();
      c.kill(c.nodes[r]!, 'SIGKILL');
      await c.nodes[r]!.exited;
      await w.more(10);
      await c.startNode(r);
      return t;
    });
  });

  it.skipIf(!all)('one endpoint down from the start (a replica), started later', { timeout: 120_000 }, async () => {
    const r = ((await c.leader()) + 2) % 3;
    c.kill(c.nodes[r]!, 'SIGKILL');
    await c.nodes[r]!.exited;
    const t = Date.now();
    await run('one-down', async (w) => {
      await w.more(10);
      await c.startNode(r);
      return t;
    });
  });

  it.skipIf(!SCENARIOS.includes('replica-stop'))('a replica stopped (SIGSTOP) for 15 s, then continued', { timeout: 120_000 }, async () => {
    await run('replica-stop', async (w) => {
      const r = ((await c.leader()) + 1) % 3;
      const t = Date.now();
      c.kill(c.nodes[r]!, 'SIGSTOP');
      try {
        await sleep(15_000);
      } finally {
        c.kill(c.nodes[r]!, 'SIGCONT');
      }
      await w.more(10);
      return t;
    });
  });

  it.skipIf(!all)('the leader stopped (SIGSTOP) for 4 s, then continued', { timeout: 120_000 }, async () => {
    await run('leader-stop', async (w) => {
      const l = await c.leader();
      const t = Date.now();
      c.kill(c.nodes[l]!, 'SIGSTOP');
      try {
        await sleep(4000);
      } finally {
        c.kill(c.nodes[l]!, 'SIGCONT');
      }
      await w.more(10);
      return t;
    });
  });
});
