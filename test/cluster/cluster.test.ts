// The replicated cluster under faults (issue 11): 3 etcd members and 3 txkv nodes on
// loopback (harness.ts), writers recording every acknowledged commit and a bank
// workload whose total must never change, through a client that lists all 3 nodes.
// In order, on one cluster: kill -9 the leader (and restart it), SIGSTOP the leader
// past its lease (then SIGCONT), kill -9 the etcd Raft leader, stop a replica while
// the log is trimmed past it (it comes back by snapshot), pause a replica until the log
// is trimmed past it (it copies a snapshot in while running); then every node must hold
// every acknowledged commit, the same full scan at one read version, and the bank total.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, TxnError, type Database } from '../../src/index.js';
import { appliedVersion, HAVE_ETCD, keepLogsOnFailure, readVersion, scanAt, sleep, TestCluster, within } from './harness.js';

const ACCOUNTS = 8;
const START_BALANCE = 100;
const WRITERS = 4;
const execFileAsync = promisify(execFile);

interface Ack {
  key: string;
  started: number;
  at: number;
}

class Workload {
  readonly acked: Ack[] = [];
  readonly errors = new Map<string, number>();
  bankTransfers = 0;
  private stopped = false;
  private loops: Promise<void>[] = [];

  constructor(private readonly db: Database) {}

  start(): void {
    for (let w = 0; w < WRITERS; w++) this.loops.push(this.writer(w));
    for (let b = 0; b < 2; b++) this.loops.push(this.bank(b));
  }

  private note(err: unknown): void {
    const code = (err as { code?: string }).code ?? String(err);
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  private async writer(w: number): Promise<void> {
    for (let seq = 0; !this.stopped; seq++) {
      const key = `w/${w}/${String(seq).padStart(7, '0')}`;
      // the same key until acknowledged: a set is idempotent, so retrying after
      // MAYBE_COMMITTED is safe
      while (!this.stopped) {
        const started = Date.now();
        try {
          const tx = this.db.createTransaction();
          tx.set(key, `v${seq}`);
          // bounded: a connection to a paused node does not answer until it resumes
          await within(tx.commit(), 3000);
          this.acked.push({ key, started, at: Date.now() });
          break;
        } catch (err) {
          this.note(err);
          await sleep(20);
        }
      }
    }
  }

  private async bank(b: number): Promise<void> {
    let n = b;
    while (!this.stopped) {
      const from = n % ACCOUNTS;
      const to = (n * 7 + 3) % ACCOUNTS;
      n++;
      if (from === to) continue;
      try {
        await within(this.db.transact(async (tx) => {
          const a = Number(Buffer.from((await tx.get(`acct/${from}`))!).toString());
          const c = Number(Buffer.from((await tx.get(`acct/${to}`))!).toString());
          const amount = 1 + (n % 5);
          tx.set(`acct/${from}`, String(a - amount));
          tx.set(`acct/${to}`, String(c + amount));
        }), 5000);
        this.bankTransfers++;
      } catch (err) {
        this.note(err);
        await sleep(20);
      }
    }
  }

  /** Resolves once every writer and the bank have had commits acknowledged. */
  async running(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (new Set(this.acked.map((a) => a.key.slice(0, a.key.lastIndexOf('/')))).size < WRITERS || this.bankTransfers < 2) {
      if (Date.now() > until) throw new Error(`the workload did not get going in ${ms} ms: ${this.acked.length} writes, ${this.bankTransfers} transfers`);
      await sleep(20);
    }
  }

  /** ms from `t` to the first acknowledgement of a commit attempt started after `t`. */
  async resumedAfter(t: number, ms = 20_000): Promise<number> {
    const until = Date.now() + ms;
    for (;;) {
      const first = this.acked.find((a) => a.started > t);
      if (first) return first.at - t;
      if (Date.now() > until) throw new Error(`no commit acknowledged within ${ms} ms after the fault`);
      await sleep(20);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}


async function bankTotal(db: Database): Promise<number> {
  return db.transact(async (tx) => {
    let sum = 0;
    for (let i = 0; i < ACCOUNTS; i++) sum += Number(Buffer.from((await tx.snapshotGet(`acct/${i}`))!).toString());
    return sum;
  });
}


describe.skipIf(!HAVE_ETCD)('replicated cluster on etcd (3 etcd members, 3 nodes)', () => {
  const c = new TestCluster({ TXKV_CLUSTER_LOG_RETENTION_MS: '8000' });
  let db: Database;
  let work: Workload;
  const measured: Record<string, number> = {};
  keepLogsOnFailure(() => c);

  beforeAll(async () => {
    await c.startEtcd();
    await c.startNodes();
    await c.leader();
    db = await connect({ endpoints: c.urls, connectionPoolSize: 3 });
    await db.transact(async (tx) => {
      for (let i = 0; i < ACCOUNTS; i++) tx.set(`acct/${i}`, String(START_BALANCE));
    });
    work = new Workload(db);
    work.start();
    // the faults below hit a running workload: writers and transfers acknowledged
    await work.running(30_000);
  }, 120_000);

  afterAll(async () => {
    await work?.stop();
    await db?.close();
    await c.stop();
    console.log(`cluster test: ${JSON.stringify(measured)}; acknowledged ${work?.acked.length} writes, ${work?.bankTransfers} transfers; errors ${JSON.stringify(Object.fromEntries(work?.errors ?? []))}`);
  }, 60_000);

  it('HTTP API writes through a replica are forwarded to the leader (PUT, DELETE, POST /v1/txn)', { timeout: 30_000 }, async () => {
    const l = await c.leader();
    const r = (l + 1) % c.nodes.length;
    const base = `http://127.0.0.1:${c.nodes[r]!.port}/v1`;
    const b64 = (s: string): string => Buffer.from(s).toString('base64url');
    const call = async (method: string, path: string, body?: string): Promise<{ status: number; json: Record<string, unknown> }> => {
      const res = await fetch(base + path, { method, body, signal: AbortSignal.timeout(10_000) });
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    };
    const put = await call('PUT', `/kv/${b64('http/put')}`, 'one');
    expect(put, JSON.stringify(put.json)).toMatchObject({ status: 200 });
    const txn = await call('POST', '/txn', JSON.stringify({ reads: [{ key: b64('http/put') }], writes: [{ op: 'set', key: b64('http/txn'), value: b64('two') }] }));
    expect(txn, JSON.stringify(txn.json)).toMatchObject({ status: 200 });
    expect(Number(txn.json.commitVersion)).toBeGreaterThan(Number(put.json.commitVersion));
    const del = await call('DELETE', `/kv/${b64('http/put')}`);
    expect(del, JSON.stringify(del.json)).toMatchObject({ status: 200 });
    // read back through the replica (its read version covers the forwarded commits) and through the leader's SDK path
    const got = await call('GET', `/kv/${b64('http/txn')}`);
    expect(got.json.value).toBe(b64('two'));
    expect((await call('GET', `/kv/${b64('http/put')}`)).status).toBe(404);
    const viaLeader = await connect({ endpoints: [c.urls[l]!], connectionPoolSize: 1 });
    try {
      expect(await viaLeader.transact(async (tx) => Buffer.from((await tx.get('http/txn'))!).toString())).toBe('two');
    } finally {
      await viaLeader.close();
    }
  });

  it('kill -9 of the leader: commits resume, the node rejoins', { timeout: 90_000 }, async () => {
    const l = await c.leader();
    const before = work.acked.length;
    // a read version handed out by the old leader, through a node that survives
    const side = await connect({ endpoints: c.urls.filter((_, i) => i !== l), connectionPoolSize: 1 });
    const oldRv = await readVersion(side);
    const t = Date.now();
    c.kill(c.nodes[l]!, 'SIGKILL');
    measured.leaderKillResumeMs = await work.resumedAfter(t);
    expect(measured.leaderKillResumeMs).toBeLessThan(10_000);
    const next = await c.leader(15_000, l);
    expect(next).not.toBe(l);
    // the new leader's conflict history begins at its takeover: a commit that read at the
    // old leader's version cannot be checked against it, so it is refused TOO_OLD (retryable)
    let refusal: TxnError | null = null;
    for (let i = 0; i < 50; i++) {
      const tx = side.createTransaction();
      tx.setReadVersion(oldRv);
      tx.addReadConflictKey('takeover/k');
      tx.set('takeover/k', 'x');
      refusal = await tx.commit().then(
        () => null,
        (e: unknown) => e as TxnError,
      );
      if (refusal?.code !== 'UNAVAILABLE' && refusal?.code !== 'NETWORK_ERROR') break;
      await sleep(200);
    }
    await side.close();
    expect(refusal?.code).toBe('TOO_OLD');
    expect(refusal?.message).toMatch(/conflict history, which begins at version/);
    await sleep(1000);
    await c.startNode(l);
    expect(work.acked.length).toBeGreaterThan(before);
  });

  // (the lease-deadline and fencing guards themselves are tested one by one, deterministically, in guards.test.ts)
  it('SIGSTOP of the leader past its lease: a new leader takes over; a read through the old node, asked during the pause, sees a commit made during the pause', { timeout: 90_000 }, async () => {
    const l = await c.leader();
    const old = await connect({ endpoints: [c.urls[l]!], connectionPoolSize: 1 });
    const others = c.urls.filter((_, i) => i !== l);
    const fresh = await connect({ endpoints: others, connectionPoolSize: 2 });
    try {
      const t = Date.now();
      c.kill(c.nodes[l]!, 'SIGSTOP');
      measured.pausedLeaderResumeMs = await work.resumedAfter(t);
      const next = await c.leader(15_000, l);
      expect(next).not.toBe(l);
      // acknowledged by the new leader while the old one is paused
      const stamp = `after-pause-${t}`;
      await fresh.transact(async (tx) => tx.set('pause/x', stamp));
      // a transaction through the old node, asked while it is paused: its read version
      // must cover the write above, so the old node must not answer from its own oracle
      const read = old.transact(async (tx) => {
        const v = await tx.get('pause/x');
        return v === null ? null : Buffer.from(v).toString();
      });
      // and a read at a read version the new leader handed out, sent to the old node while
      // it is paused (as a client with every node among its endpoints does: the C++ client's
      // cluster workload, test/cluster/cpp-failover.test.ts, caught it): on resume the old
      // node, still leader in its own eyes for a moment, must not answer it from its own
      // data, which lacks the new leader's commits
      const rvNew = await readVersion(fresh);
      const readAt = old.transact(async (tx) => {
        tx.setReadVersion(rvNew);
        const v = await tx.snapshotGet('pause/x');
        return v === null ? null : Buffer.from(v).toString();
      });
      await sleep(Math.max(0, 3000 - (Date.now() - t)));
      const from = c.nodes[l]!.logs.length;
      c.kill(c.nodes[l]!, 'SIGCONT');
      const outcome = read.then(
        (v) => ({ v }),
        (e: unknown) => ({ e: e as TxnError }),
      );
      // it stops leading and follows the new leader. Or, when the pause caught its balancer
      // switching a moved range (the switch's append in flight or queued: 2 of 10 pauses in
      // the middle of operator moves, /tmp experiment in the cluster3 report), it exits 70
      // on resume: it cannot roll the switch back in place (docs/distribution.md, "The switch
      // append fails on a live leader"). Its supervisor restarts it, and the restart undoes
      // the move locally and replays the log; here the test is the supervisor. (Once this
      // exit failed this test and the next two, with no logs kept.) Any other exit fails.
      let restarted = false;
      const until = Date.now() + 10_000;
      for (;;) {
        const p = c.nodes[l]!.proc!;
        if (!restarted && (p.exitCode !== null || p.signalCode !== null)) {
          const fatal = c.nodes[l]!.logs.slice(from).find((x) => x.includes('"event":"ClusterApplyFailed"')) ?? '(no ClusterApplyFailed line)';
          expect({ code: p.exitCode, fatal }, `the old leader exited:\n${c.nodes[l]!.logs.slice(from).slice(-20).join('\n')}`).toMatchObject({ code: 70, fatal: expect.stringMatching(/the switch did not reach the log/) });
          restarted = true;
          measured.pausedLeaderRestarted = 1;
          await c.startNode(l);
          continue;
        }
        const s = await c.status(l);
        if (s?.cluster?.role === 'replica') break;
        if (Date.now() > until + (restarted ? 30_000 : 0)) throw new Error(`old leader did not become a replica: ${JSON.stringify(s?.cluster)}`);
        await sleep(100);
      }
      const got = await within(outcome, 30_000);
      const gotAt = await within(
        readAt.then(
          (v) => ({ v }),
          (e: unknown) => ({ e: e as TxnError }),
        ),
        30_000,
      );
      // the stamp, never the value before it; or an error that says nothing of the value (the
      // node restarted under it; or, on a loaded machine, the read version passed the MVCC
      // window, TOO_OLD, before the old node had caught up)
      if ('v' in gotAt) expect(gotAt.v, `a read at the new leader's read version ${rvNew}, through the old leader`).toBe(stamp);
      else expect(restarted || gotAt.e.retryable, `the read at ${rvNew} through the old node: ${gotAt.e.code} ${gotAt.e.message}`).toBe(true);
      if (restarted) {
        // the read went to a node that then exited: it may fail (its connection closed:
        // NETWORK_ERROR; or a retryable error), never see old data
        if ('v' in got) expect(got.v).toBe(stamp);
        else expect(got.e.retryable || got.e.code === 'NETWORK_ERROR', `the read through the old node: ${got.e.code} ${got.e.message}`).toBe(true);
      } else {
        expect('v' in got ? got.v : `${got.e.code} ${got.e.message}`).toBe(stamp);
        expect(c.nodes[l]!.logs.some((x) => x.includes('"event":"SteppedDown"'))).toBe(true);
      }
    } finally {
      c.kill(c.nodes[l]!, 'SIGCONT');
      await old.close();
      await fresh.close();
    }
  });

  it('kill -9 of the etcd Raft leader: commits continue after etcd elects another', { timeout: 90_000 }, async () => {
    const e = c.etcdLeader();
    const t = Date.now();
    c.kill(c.etcd[e]!, 'SIGKILL');
    measured.etcdLeaderKillResumeMs = await work.resumedAfter(t);
    expect(measured.etcdLeaderKillResumeMs).toBeLessThan(10_000);
    await sleep(1000);
    c.spawnEtcd(e, 'existing');
    // the member rejoins before the next fault (polled, not slept: 2 s were often more than it needs)
    const until = Date.now() + 30_000;
    for (;;) {
      const ok = await execFileAsync('/usr/bin/etcdctl', ['--endpoints', c.etcd[e]!.clientUrl, '--command-timeout=1s', 'endpoint', 'health'], { env: { ...process.env, ETCDCTL_API: '3' } }).then(
        () => true,
        () => false,
      );
      if (ok) break;
      if (Date.now() > until) throw new Error(`etcd member ${e} did not rejoin in 30 s:\n${c.etcd[e]!.logs.slice(-10).join('\n')}`);
      await sleep(100);
    }
  });

  it('a replica stopped while the log was trimmed past it comes back by snapshot', { timeout: 120_000 }, async () => {
    const l = await c.leader();
    const r = (l + 1) % c.nodes.length;
    const applied = await appliedVersion(c, r);
    c.kill(c.nodes[r]!, 'SIGKILL');
    await c.nodes[r]!.exited;
    await c.trimmedPast(applied, 60_000);
    const from = c.nodes[r]!.logs.length;
    await c.startNode(r);
    expect(c.nodes[r]!.logs.slice(from).some((x) => x.includes('"event":"SnapshotSeeded"'))).toBe(true);
  });

  it('a running replica paused (SIGSTOP) until the log was trimmed past it copies a snapshot in place, without exiting, and catches up', { timeout: 120_000 }, async () => {
    const l = await c.leader();
    const r = (l + 2) % c.nodes.length;
    const from = c.nodes[r]!.logs.length;
    c.kill(c.nodes[r]!, 'SIGSTOP');
    try {
      // the paused node's position is below every read version the leader hands out from
      // now on (its status' applied version may lag the position it follows the log from)
      const rvDb = await connect({ endpoints: [c.urls[l]!], connectionPoolSize: 1 });
      const applied = Number(await readVersion(rvDb));
      await rvDb.close();
      await c.trimmedPast(applied, 60_000);
    } finally {
      c.kill(c.nodes[r]!, 'SIGCONT');
    }
    const t = Date.now();
    const until = Date.now() + 30_000;
    for (;;) {
      const logs = c.nodes[r]!.logs.slice(from);
      const s = await c.status(r);
      if (logs.some((x) => x.includes('"event":"SnapshotSeeded"')) && s?.cluster?.role === 'replica') break;
      if (c.nodes[r]!.proc!.exitCode !== null) throw new Error(`${c.nodes[r]!.name} exited:\n${logs.slice(-20).join('\n')}`);
      if (Date.now() > until) throw new Error(`${c.nodes[r]!.name} did not copy a snapshot in 30 s: ${JSON.stringify(s?.cluster)}\n${logs.slice(-20).join('\n')}`);
      await sleep(100);
    }
    measured.reseedInPlaceMs = Date.now() - t;
    expect(c.nodes[r]!.proc!.exitCode).toBeNull();
    expect(c.nodes[r]!.proc!.signalCode).toBeNull();
    // it serves reads at the cluster's versions again, and they equal the leader's
    const rvDb = await connect({ endpoints: [c.urls[await c.leader()]!] });
    const rv = await readVersion(rvDb);
    await rvDb.close();
    const [mine, leaders] = [await scanAt(c.urls[r]!, rv), await scanAt(c.urls[await c.leader()]!, rv)];
    expect(mine.length).toBeGreaterThan(100);
    expect(mine).toEqual(leaders);
  });

  it('every node holds every acknowledged commit, the same scan at one read version, and the bank total', { timeout: 120_000 }, async () => {
    await sleep(1000);
    await work.stop();
    const acked = new Set(work.acked.map((a) => a.key));
    measured.acknowledgedWrites = acked.size;
    measured.bankTransfers = work.bankTransfers;
    expect(acked.size).toBeGreaterThan(100);
    const rvDb = await connect({ endpoints: c.urls });
    const rv = await readVersion(rvDb);
    await rvDb.close();
    const scans: string[][] = [];
    const missing: Record<string, string[]> = {};
    for (let i = 0; i < c.nodes.length; i++) {
      const one = await connect({ endpoints: [c.urls[i]!], connectionPoolSize: 1 });
      try {
        expect(await bankTotal(one)).toBe(ACCOUNTS * START_BALANCE);
      } finally {
        await one.close();
      }
      const rows = await scanAt(c.urls[i]!, rv);
      const keys = new Set(rows.map((x) => x.slice(0, x.indexOf('='))));
      const lost = [...acked].filter((k) => !keys.has(k));
      if (lost.length > 0) missing[`node ${i}`] = lost;
      scans.push(rows);
    }
    // every node named (the balancer runs here too: a range it moved shows as one block of keys)
    const maps = await Promise.all(c.nodes.map(async (n) => (await (await fetch(`http://127.0.0.1:${n.port}/v1/shard/map`)).json()) as { map: unknown; history: { kind: string; reason: string; outcome: string }[] }));
    expect(missing, `acknowledged commits missing; maps: ${JSON.stringify(maps.map((m) => m.map))}`).toEqual({});
    const leaderHistory = maps[await c.leader()]!.history;
    measured.balancerMoves = leaderHistory.filter((e) => e.kind === 'move' && e.outcome === 'done').length;
    measured.balancerSplits = leaderHistory.filter((e) => e.kind === 'split').length;
    expect(scans[1]).toEqual(scans[0]);
    expect(scans[2]).toEqual(scans[0]);
    // one database id on every node; status and metrics name the roles
    const statuses = await Promise.all(c.nodes.map((_, i) => c.status(i)));
    expect(new Set(statuses.map((s) => s!.databaseId)).size).toBe(1);
    expect(statuses.filter((s) => s!.cluster!.role === 'leader')).toHaveLength(1);
    const l = await c.leader();
    const metrics = await (await fetch(`http://127.0.0.1:${c.nodes[l]!.port}/metrics`)).text();
    expect(metrics).toMatch(/^txkv_cluster_role\{role="leader"\} 1$/m);
    expect(metrics).toMatch(/^txkv_cluster_log_appends_total \d+/m);
  });
});
