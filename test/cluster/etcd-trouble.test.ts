// A cluster (3 etcd members, 3 txkv nodes with a 10 s lease TTL) when etcd restarts or
// is slow.
//
// 1. A replica's etcd watch on the log after etcd ended it. The watch wakes a replica as soon as etcd takes a log entry; without it the replica
// reads the log every 200 ms (about 100 ms late on average). etcd ends a watch when the
// member it is on goes away, and the etcd3 client re-creates it at one past the last
// revision it saw: on an idle cluster that revision is compacted within ~6 s (the leader
// compacts every second to a revision 5-6 s old), etcd cancels the new watch, and the
// client drops it for good. Here: an idle cluster, then a rolling restart of etcd (kill -9
// and restart of each member in turn, as an upgrade does): afterwards every replica must
// apply commits at watch latency again, and hold exactly the leader's rows.
// 2. etcd's writes slower than 1 s (every fdatasync of every member delayed 700 ms with
// strace's fault injection: a put takes 1.5 s, 3-4 s on a loaded machine): the leader's beats, grant renewals and
// appends waited a fixed 1 s for an answer, so its first append ended MAYBE_COMMITTED and
// it stepped down (beats alone: after TTL - margin), and no campaign or takeover went
// through (each write also 1 s): 13-24 s without a leader. Now each waits as long as its
// answer can be of use (TTL - margin), and the leader keeps serving.
// 3. A replica's watch on a paused etcd member (SIGSTOP): its connection stays open and
// nothing comes; before, the replica followed the log by its 200 ms poll until the member
// resumed. Now a watch that has not reported an entry 1.5 s after the replica's own read
// found it is moved to another member.
// 4. A paused etcd member first in the leader's member order (the one its appends go to):
// each append waited for its deadline there (the horizon: 7.5 s with this lease; 1.5 s at
// the default 2 s) before another member was asked, and every commit of the cluster waited
// with it. Now the append also goes to the next member after a short delay (EtcdLog.send).
// 5. The etcd leader paused: appends the followers passed on to it stayed unanswered until
// their deadline, after etcd's election too; now they are asked again.
// Bounded: about 80 s.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Database } from '../../src/index.js';
import { HAVE_ETCD, keepLogsOnFailure, readVersion, scanAt, sleep, TestCluster } from './harness.js';

type WatchStatus = { member: string | null; connected: boolean; restarts: number; canceled: number; silent: number; reported: number };

const HAVE_STRACE = fs.existsSync('/usr/bin/strace');

describe.skipIf(!HAVE_ETCD)('etcd restarted or slow (3 members, 3 nodes, 10 s lease TTL)', () => {
  // a 10 s lease: the txkv leader keeps its term through etcd's elections during the restart
  const c = new TestCluster({ TXKV_CLUSTER_LEASE_TTL_MS: '10000' });
  keepLogsOnFailure(() => c);
  const etcdctl = (endpoints: string[], ...args: string[]): string =>
    execFileSync('/usr/bin/etcdctl', ['--endpoints', endpoints.join(','), '--command-timeout=10s', ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: 'pipe',
    }).toString();
  const revision = (): number =>
    (JSON.parse(etcdctl(c.etcdEndpoints, 'endpoint', 'status', '-w', 'json')) as { Status: { header: { revision: number } } }[])[0]!.Status.header.revision;
  const compacted = (rev: number): boolean => {
    try {
      etcdctl(c.etcdEndpoints, 'get', 'txkv/leader', `--rev=${rev}`);
      return false;
    } catch (e) {
      return /compacted/.test(String((e as { stderr?: Buffer }).stderr ?? e));
    }
  };
  let L = -1;
  let db: Database;
  const straces: ChildProcess[] = [];

  beforeAll(async () => {
    await c.startEtcd(3);
    await c.startNodes(3);
    L = await c.leader();
    db = await connect({ endpoints: [c.urls[L]!], connectionPoolSize: 1 });
  }, 90_000);

  afterAll(async () => {
    for (const s of straces) s.kill('SIGKILL');
    await db?.close();
    await c.stop();
  });

  /**
   * For each of `n` commits through the leader: ms from its acknowledgement until every
   * replica's status reports it applied. Status only: a read at the commit's version
   * would itself make the replica read the log.
   */
  const replicationMs = async (replicas: number[], n: number, tag: string): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const tx = db.createTransaction();
      tx.set(`lw/${tag}/${String(i).padStart(3, '0')}`, `${tag}${i}`);
      await tx.commit();
      const cv = Number(tx.getCommittedVersion());
      const t0 = performance.now();
      for (const r of replicas) {
        while (((await c.status(r))?.cluster?.appliedVersion ?? 0) < cv) {
          if (performance.now() - t0 > 5000) throw new Error(`replica n${r} did not apply version ${cv} within 5 s`);
          await sleep(1);
        }
      }
      out.push(Math.round(performance.now() - t0));
      // not in step with the 200 ms poll
      await sleep(13 + ((i * 37) % 50));
    }
    return out;
  };
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

  it('after an idle spell and a rolling restart of etcd, every replica applies commits at watch latency again and misses no entry', { timeout: 90_000 }, async () => {
    const replicas = [0, 1, 2].filter((i) => i !== L);
    const before = await replicationMs(replicas, 15, 'a');
    // idle until etcd's history no longer holds the revision of the last log write
    const rev = revision();
    const until = Date.now() + 20_000;
    while (!compacted(rev)) {
      if (Date.now() > until) throw new Error(`revision ${rev} not compacted within 20 s`);
      await sleep(500);
    }
    const from = c.nodes.map((n) => n.logs.length);
    for (let e = 0; e < 3; e++) {
      c.kill(c.etcd[e]!, 'SIGKILL');
      await c.etcd[e]!.exited;
      await sleep(300);
      c.spawnEtcd(e, 'existing');
      const up = Date.now() + 20_000;
      for (;;) {
        try {
          etcdctl([c.etcd[e]!.clientUrl], 'endpoint', 'health');
          break;
        } catch (err) {
          if (Date.now() > up) throw new Error(`etcd member e${e} did not come back in 20 s: ${(err as Error).message}`);
          await sleep(100);
        }
      }
    }
    expect(await c.leader()).toBe(L);
    // the watches are re-created within a second or so of the last restart
    await sleep(1500);
    const watchesNow = (): Promise<(WatchStatus | null)[]> => Promise.all(replicas.map(async (r) => ((await c.status(r))?.cluster as { logWatch?: WatchStatus } | null)?.logWatch ?? null));
    const reported0 = (await watchesNow()).map((w) => w?.reported ?? 0);
    const after = await replicationMs(replicas, 20, 'b');
    const watches = await watchesNow();
    const events = c.nodes.flatMap((n, i) => n.logs.slice(from[i]).filter((x) => /"event":"LogWatch(Lost|Restored)"/.test(x)).map((x) => `n${i} ${x.slice(0, 200)}`));
    console.log(`replication ms before: ${before.join(', ')} (median ${median(before)}); after the etcd restart: ${after.join(', ')} (median ${median(after)})`);
    console.log(`watches: ${JSON.stringify(watches)}\n${events.join('\n')}`);
    // watch latency is a few ms (median 10-23 ms at load 3.5-8, before and after); the
    // 200 ms poll gives the later of two uniform 0-200 ms waits (median 188 ms measured
    // without the re-created watch, 34 ms before the restart): under 60 ms with a chance of
    // 0.09 each, a median of 20 such samples under 60 ms about once in a million. At load
    // 20 the watch's own latency reached a median of 90-100 ms (before the restart too), so
    // the bound is relative to the same cluster's before the restart, and since what it
    // stands for is counted below (each replica's watch reported the 20 commits' log
    // entries: a lost watch reports none, the poll finds them), a generous 2x, 100 ms at
    // least (was 1.5x, 60 ms: 84 ms against 61 before came within 7 ms of it at load 16);
    // then 3x, 150 ms at least: at load 12 a median of 249 ms after against 94 before, every
    // watch reporting (a quiet machine's 10-23 ms against a lost watch's ~188 still fails it)
    const bound = Math.max(150, 3 * median(before));
    for (const w of watches) expect(w, 'a replica\'s log watch').toMatchObject({ connected: true });
    watches.forEach((w, i) => expect((w?.reported ?? 0) - reported0[i]!, `log entries replica n${replicas[i]}'s watch reported of 20 commits`).toBeGreaterThanOrEqual(10));
    expect(median(after), `replication ms after the restart: ${after.join(', ')} (before: ${before.join(', ')})`).toBeLessThan(bound);
    // no entry missed: each replica holds exactly the leader's rows
    // (at load 10 the leader's first read version after the restart was refused once: its grant renewal still waited on a member)
    const rv = await readVersion(db);
    const want = await scanAt(c.urls[L]!, rv);
    expect(want.filter((r) => r.startsWith('lw/')).length).toBe(35);
    for (const r of replicas) expect(await scanAt(c.urls[r]!, rv), `rows of replica n${r}`).toEqual(want);
  });

  it('a replica\'s log watch on a paused etcd member (SIGSTOP: its connection stays open, it sends nothing) moves to another member once the replica reads entries the watch did not report', { timeout: 90_000 }, async () => {
    L = await c.leader();
    await db.close();
    db = await connect({ endpoints: [c.urls[L]!], connectionPoolSize: 1 });
    const watchOf = async (r: number): Promise<WatchStatus | null> => ((await c.status(r))?.cluster as { logWatch?: WatchStatus } | null)?.logWatch ?? null;
    const memberIndex = (url: string | null): number => c.etcd.findIndex((e) => e.clientUrl === url);
    // the member most replicas watch on (usually every node's: each picks the member that
    // answered it first lately); each of those replicas is a candidate to move
    let M = -1;
    let on: number[] = [];
    for (const until = Date.now() + 20_000; M < 0; ) {
      const ws = await Promise.all([0, 1, 2].map(async (r) => (r === L ? null : await watchOf(r))));
      const by = new Map<number, number[]>();
      ws.forEach((w, r) => {
        const m = w?.connected ? memberIndex(w.member) : -1;
        if (m >= 0) by.set(m, [...(by.get(m) ?? []), r]);
      });
      const best = [...by.entries()].sort((a, b) => b[1].length - a[1].length)[0];
      if (best) [M, on] = best;
      else if (Date.now() > until) throw new Error('no replica with a connected log watch within 20 s');
      else await sleep(100);
    }
    const before = await replicationMs(on, 10, 'c');
    const t0 = Date.now();
    c.kill(c.etcd[M]!, 'SIGSTOP');
    let R = -1;
    let movedMs = -1;
    let after: number[] = [];
    let reportedDuring = -1;
    const trail: string[] = [];
    try {
      // commits go on (the other two members are a majority); the replicas' reads find them
      // on another member, their watches on the paused one report none. The leader's own
      // etcd calls may go to the paused member first: its first append then waits up to its
      // deadline (TTL - margin, 8.5 s here), and the leader may even step down. So: 30 s,
      // commits through whichever node leads, and any replica that watched the paused
      // member and still follows the log
      for (let i = 0; ; i++) {
        const tx = db.createTransaction();
        tx.set(`pausedw/${i}`, 'x');
        const ok = await tx.commit().then(
          () => true,
          (e: unknown) => (trail.push(`commit ${i} via n${L}: ${(e as { code?: string }).code ?? String(e)}`), false),
        );
        if (!ok) {
          const now = await c.leader(5000).catch(() => L);
          if (now !== L) {
            trail.push(`leader n${L} -> n${now} at ${Date.now() - t0} ms`);
            L = now;
            await db.close();
            db = await connect({ endpoints: [c.urls[L]!], connectionPoolSize: 1 });
          }
        }
        for (const r of on) {
          if (r === L) continue;
          const w = await watchOf(r);
          if (w?.connected && memberIndex(w.member) !== M) {
            R = r;
            break;
          }
        }
        if (R >= 0) {
          movedMs = Date.now() - t0;
          break;
        }
        if (Date.now() - t0 > 30_000) {
          const ws = await Promise.all(on.map(async (r) => `n${r}: ${JSON.stringify(await watchOf(r))}`));
          throw new Error(`no log watch left the paused member e${M} within 30 s (leader n${L}): ${ws.join('; ')}\n${trail.join('\n')}`);
        }
        await sleep(50);
      }
      const reported0 = (await watchOf(R))?.reported ?? 0;
      after = await replicationMs([R], 15, 'd');
      reportedDuring = ((await watchOf(R))?.reported ?? 0) - reported0;
    } finally {
      c.kill(c.etcd[M]!, 'SIGCONT');
    }
    // by the lines' own time: the harness drops the oldest half of a long log (an index taken before may be stale)
    const lost = c.nodes[R]!.logs.filter((x) => x.includes('"event":"LogWatchLost"') && (JSON.parse(x) as { time: number }).time >= t0);
    console.log(
      `paused etcd member e${M}: replica n${R}'s watch left it ${movedMs} ms after the pause; replication ms before: ${before.join(', ')} (median ${median(before)}), during the pause: ${after.join(', ')} (median ${median(after)})\n${trail.join('\n')}\n${lost.join('\n')}`,
    );
    expect(lost.some((x) => x.includes('silent')), 'a LogWatchLost event naming the silent watch').toBe(true);
    // the moved watch reports the commits' log entries (counted: a loaded machine stretches
    // the latency below, 84 ms against 61 before at load 16, bound 91)
    expect(reportedDuring, 'log entries the moved watch reported of 15 commits').toBeGreaterThanOrEqual(8);
    // watch latency (a few ms), not the 200 ms poll's (median ~100-190 ms)
    expect(median(after), `replication ms during the pause: ${after.join(', ')} (before: ${before.join(', ')})`).toBeLessThan(Math.max(100, 2 * median(before)));
  });

  it('commits do not wait on a paused etcd member first in the leader\'s order: the append goes to another member after a short delay (hedged)', { timeout: 90_000 }, async () => {
    L = await c.leader();
    await db.close();
    db = await connect({ endpoints: [c.urls[L]!], connectionPoolSize: 1 });
    type Cl = { term: string; etcd: { order: string[] }; log: { hedged: number } };
    const cl = async (): Promise<Cl> => (await c.status(L))!.cluster as unknown as Cl;
    const memberIndex = (url: string | undefined): number => c.etcd.findIndex((e) => e.clientUrl === url);
    const before = await cl();
    const commitMs: number[] = [];
    const failed: string[] = [];
    const paused: string[] = [];
    // the first member in order may change between the status read and the pause (a beat
    // or keepalive answered first by another): then nothing was hedged, and a round repeats
    for (let round = 0; round < 3 && ((await cl()).log.hedged ?? 0) === (before.log.hedged ?? 0); round++) {
      // etcd's recent write latency (the hedge delay is twice it) as it is now, not as an
      // earlier test left it: each write moves it a fifth of the way
      for (let i = 0; i < 20; i++) await db.transact(async (tx) => tx.set(`hedge/warm/${round}`, String(i)));
      let el = c.etcdLeader();
      let head = memberIndex((await cl()).etcd.order[0]);
      // an etcd follower: pausing the etcd leader costs an etcd election, whatever txkv does
      for (let k = 0; head === el && k < 10; k++) {
        await c.moveEtcdLeader([0, 1, 2].find((i) => i !== head)!);
        el = c.etcdLeader();
        await db.transact(async (tx) => tx.set(`hedge/warm/${round}`, '2'));
        head = memberIndex((await cl()).etcd.order[0]);
      }
      expect(head, 'the leader\'s first etcd member').not.toBe(el);
      paused.push(`e${head}`);
      c.kill(c.etcd[head]!, 'SIGSTOP');
      try {
        for (let i = 0; i < 10; i++) {
          const t = performance.now();
          try {
            await db.transact(async (tx) => tx.set(`hedge/${round}/${i}`, String(i)));
            commitMs.push(Math.round(performance.now() - t));
          } catch (e) {
            failed.push(`commit ${round}/${i}: ${(e as { code?: string }).code ?? String(e)}`);
          }
        }
      } finally {
        c.kill(c.etcd[head]!, 'SIGCONT');
      }
    }
    const after = await cl();
    console.log(`paused ${paused.join(', ')} (first in the leader's order, an etcd follower): commits ${commitMs.join(', ')} ms; failed ${failed.length}; hedged appends ${before.log.hedged} -> ${after.log.hedged}`);
    expect(failed, 'commits that failed').toEqual([]);
    expect(after.term, 'the leader keeps its term').toBe(before.term);
    expect(after.log.hedged - before.log.hedged, 'appends sent to another member').toBeGreaterThanOrEqual(1);
    // without the hedge the first commit of each pause took the whole append deadline (the
    // horizon, 7.5 s here) and then some; the hedge delay is at most half of it (twice etcd's
    // recent write latency, 200 ms at least: a loaded CI may make it a second or two)
    expect(Math.max(...commitMs), `commit ms during the pauses: ${commitMs.join(', ')}`).toBeLessThan(6000);
  });

  it('commits go on after etcd\'s election when the etcd leader is paused: appends stuck on members that passed them to it are asked again', { timeout: 90_000 }, async () => {
    L = await c.leader();
    await db.close();
    db = await connect({ endpoints: [c.urls[L]!], connectionPoolSize: 1 });
    type Cl = { term: string; log: { hedged: number } };
    const cl = async (): Promise<Cl> => (await c.status(L))!.cluster as unknown as Cl;
    for (let i = 0; i < 20; i++) await db.transact(async (tx) => tx.set('hedge/elect/warm', String(i)));
    const before = await cl();
    const el = c.etcdLeader();
    const commitMs: number[] = [];
    const failed: string[] = [];
    c.kill(c.etcd[el]!, 'SIGSTOP');
    try {
      for (let i = 0; i < 5; i++) {
        const t = performance.now();
        try {
          await db.transact(async (tx) => tx.set(`hedge/elect/${i}`, String(i)));
          commitMs.push(Math.round(performance.now() - t));
        } catch (e) {
          failed.push(`commit ${i}: ${(e as { code?: string }).code ?? String(e)}`);
        }
      }
    } finally {
      c.kill(c.etcd[el]!, 'SIGCONT');
    }
    const after = await cl();
    console.log(`paused the etcd leader e${el}: commits ${commitMs.join(', ')} ms; failed ${failed.length}; hedged appends ${before.log.hedged} -> ${after.log.hedged}`);
    expect(failed, 'commits that failed').toEqual([]);
    expect(after.term, 'the leader keeps its term').toBe(before.term);
    // an append a follower passed on to the paused etcd leader is never answered before its
    // deadline (the horizon, 7.5 s here), even after etcd elected another leader (1-2 s with
    // its 1 s election timeout): without asking again the first commit took all of it (the
    // whole pause, at most). Asked again after a second: the election plus about a second
    expect(Math.max(...commitMs), `commit ms with the etcd leader paused: ${commitMs.join(', ')}`).toBeLessThan(6000);
  });

  it.skipIf(!HAVE_STRACE)('etcd writes taking 1.5 s or more (fdatasync delayed 700 ms on every member): the leader keeps its term, commits succeed, read versions are served', { timeout: 90_000 }, async () => {
    // every member healthy first: the member paused by the test before may still be catching
    // up, and a slowdown on top of that is not what this measures (once at load 6.7 the leader
    // stepped down here right after that test had failed)
    for (const until = Date.now() + 20_000; ; ) {
      try {
        etcdctl(c.etcdEndpoints, 'endpoint', 'health');
        break;
      } catch (err) {
        if (Date.now() > until) throw new Error(`etcd not healthy within 20 s: ${(err as Error).message}`);
        await sleep(200);
      }
    }
    L = await c.leader();
    await db.close();
    db = await connect({ endpoints: [c.urls[L]!], connectionPoolSize: 1 });
    await db.transact(async (tx) => tx.set('slow/0', '0'));
    const from = c.nodes.map((n) => n.logs.length);
    // (strace stops the member at each of its system calls, not only fdatasync: seccomp-bpf
    // filtering is not available to an attached strace; the delay is the fdatasync's)
    for (const m of c.etcd) {
      straces.push(spawn('/usr/bin/strace', ['-f', '-qq', '-p', String(m.proc!.pid), '-e', 'trace=fdatasync', '-e', 'inject=fdatasync:delay_enter=700000', '-o', '/dev/null'], { stdio: 'ignore' }));
    }
    const putMs: number[] = [];
    const commitMs: number[] = [];
    const failed: string[] = [];
    let grvOk = 0;
    let grvFailed = 0;
    try {
      // the injection is in place once a put is slow
      for (let i = 0; ; i++) {
        const t = performance.now();
        etcdctl(c.etcdEndpoints, 'put', 'txkv-test/slow', String(i));
        const ms = performance.now() - t;
        if (ms > 500) {
          putMs.push(Math.round(ms));
          break;
        }
        if (i > 50) throw new Error('etcd puts did not slow down under strace');
        await sleep(100);
      }
      const t0 = performance.now();
      // a writer (one commit at a time) and a reader of read versions, for 7 s
      const writer = (async () => {
        for (let i = 1; performance.now() - t0 < 7000; i++) {
          const t = performance.now();
          try {
            await db.transact(async (tx) => tx.set(`slow/${i}`, String(i)));
            commitMs.push(Math.round(performance.now() - t));
          } catch (e) {
            failed.push(`commit ${i}: ${(e as { code?: string }).code ?? String(e)}`);
          }
        }
      })();
      const reader = (async () => {
        while (performance.now() - t0 < 7000) {
          try {
            await db.createTransaction().getReadVersion();
            grvOk++;
          } catch {
            grvFailed++;
          }
          await sleep(100);
        }
      })();
      await Promise.all([writer, reader]);
      const t = performance.now();
      etcdctl(c.etcdEndpoints, 'put', 'txkv-test/slow', 'end');
      putMs.push(Math.round(performance.now() - t));
    } finally {
      for (const s of straces) s.kill('SIGINT');
    }
    const events = c.nodes.flatMap((n, i) => n.logs.slice(from[i]).filter((x) => /"event":"(SteppedDown|BecameLeader|LeaderDeposed|TakeoverFailed)"/.test(x)).map((x) => `n${i} ${x.slice(0, 300)}`));
    console.log(`slow etcd: puts ${putMs.join(', ')} ms; commits ${commitMs.join(', ')} ms; failed ${failed.length}; read versions ${grvOk} served, ${grvFailed} refused\n${events.join('\n')}`);
    expect(events, 'leader changes while etcd was slow').toEqual([]);
    expect(failed, 'commits that failed').toEqual([]);
    expect(commitMs.length).toBeGreaterThanOrEqual(1);
    // the grant runs 1 s ahead until the leader has seen a slow write: a few refusals at first
    expect(grvOk, `read versions served (${grvFailed} refused)`).toBeGreaterThanOrEqual(4 * grvFailed);
    await db.transact(async (tx) => tx.set('slow/after', '1'));
  });
});
