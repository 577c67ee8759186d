// A network partition (issue 11): three machines as Linux network namespaces joined by a
// bridge (netns.ts), each with one etcd member and one txkv node; the test's writers
// reach the nodes over the bridge. The txkv leader's machine is cut off (its bridge port
// taken down): its node keeps running and still reaches its own etcd member, which has
// lost its quorum. A probe inside that machine keeps asking the cut-off node for read
// versions and commits. The etcd Raft leader is moved onto the cut-off machine first:
// the worst case (etcd elects a new leader, which extends every lease, the cut-off txkv
// leader's too, by TTL + its election timeout). Checked:
// - another node takes over and the writers' commits resume (the time is printed), on
//   both other nodes, without waiting for etcd to expire the old leader's lease (the
//   other nodes depose it when its heartbeats stop: LeaderDeposed);
// - the cut-off node hands out no read version older than a commit acknowledged before
//   it was asked (a stale read), and none at all once its lease ran out; it steps down;
// - it acknowledges no commit asked after the cut (it cannot reach a majority);
// - after healing it follows the new leader, forwards the probe's commits, catches up;
// - every acknowledged commit (writers and probe) is on every node, and the three nodes
//   return the same full scan at one read version.
// Skipped with the reason printed when network namespaces cannot be made (not root).
// Bounded: about a minute; namespaces are removed even when the test fails.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdHosts } from '../../src/cluster/etcd.js';
import { connect, type Database } from '../../src/index.js';
import { HAVE_ETCD, keepLogsOnFailure, scanAt, sleep, TestCluster, within } from './harness.js';
import { NetnsLab } from './netns.js';

const NETNS = HAVE_ETCD ? NetnsLab.available() : 'no etcd';
if (NETNS !== null) console.warn(`test/cluster/partition.test.ts skipped: ${NETNS}`);

const PROBE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'partition-probe.mjs');
const LEASE_TTL_MS = 2000;
/** How long the leader's machine stays cut off (several lease TTLs: a new leader commits meanwhile). */
const CUT_MS = 8000;

interface Ack {
  w: number;
  key: string;
  v: bigint;
  started: number;
  at: number;
}

interface ProbeLine {
  op: 'ready' | 'grv' | 'commit' | 'status';
  t: number;
  t0?: number;
  ok?: boolean;
  v?: string;
  code?: string;
  key?: string;
  role?: string | null;
  leader?: string | null;
}


/** f, again after a retryable error (a loaded box: a read version may be refused while a lease renewal is late), and after MAYBE_COMMITTED when f is `idempotent`, for up to 15 s. */
async function retrying<T>(f: () => Promise<T>, idempotent = false): Promise<T> {
  const until = Date.now() + 15_000;
  for (;;) {
    try {
      return await f();
    } catch (err) {
      const again = (err as { retryable?: boolean }).retryable || (idempotent && (err as { code?: string }).code === 'MAYBE_COMMITTED');
      if (!again || Date.now() > until) throw err;
      await sleep(100);
    }
  }
}


describe.skipIf(NETNS !== null)('a network partition of the txkv leader (3 machines as network namespaces)', () => {
  let lab: NetnsLab | null = null;
  let c: TestCluster | null = null;
  let probe: ChildProcess | null = null;
  const probeLines: ProbeLine[] = [];
  const dbs: Database[] = [];
  keepLogsOnFailure(() => c ?? undefined);

  beforeAll(async () => {
    lab = new NetnsLab(3);
    c = new TestCluster({}, 2, lab.machines);
    await c.startEtcd(3);
    await c.startNodes(3);
    await c.leader();
  }, 90_000);

  afterAll(async () => {
    probe?.kill('SIGKILL');
    await Promise.all(dbs.map((d) => d.close().catch(() => {})));
    // the processes first (they run in the namespaces), then the namespaces
    try {
      await c?.stop();
    } finally {
      lab?.destroy();
    }
  }, 30_000);

  it('the cut-off leader stops serving, another takes over, nothing acknowledged is lost, it rejoins', { timeout: 120_000 }, async () => {
    const cl = c!;
    const L = await cl.leader();
    const others = [0, 1, 2].filter((i) => i !== L);
    // writers through the other two nodes and through all three (that client must move off the cut-off node)
    const acked: Ack[] = [];
    const errors = new Map<string, number>();
    let stopped = false;
    const writer = async (w: number, db: Database): Promise<void> => {
      for (let seq = 0; !stopped; seq++) {
        const key = `w/${w}/${String(seq).padStart(6, '0')}`;
        // the same key until acknowledged: retrying a set after MAYBE_COMMITTED is safe
        while (!stopped) {
          const started = Date.now();
          try {
            const tx = db.createTransaction();
            tx.set(key, `v${seq}`);
            await within(tx.commit(), 4000);
            acked.push({ w, key, v: tx.getCommittedVersion(), started, at: Date.now() });
            break;
          } catch (err) {
            const code = (err as { code?: string }).code ?? String(err);
            errors.set(code, (errors.get(code) ?? 0) + 1);
            await sleep(20);
          }
        }
      }
    };
    for (const urls of [[cl.urls[others[0]!]!], [cl.urls[others[1]!]!], cl.urls]) dbs.push(await connect({ endpoints: urls, connectionPoolSize: 1, transactionTimeoutMs: 10_000 }));
    const loops = dbs.map((d, w) => writer(w, d));

    // the probe on the leader's machine
    const m = lab!.machines[L]!;
    probe = spawn('ip', ['netns', 'exec', m.ns, process.execPath, PROBE, cl.urls[L]!, 'p/'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    probe.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        probeLines.push(JSON.parse(buf.slice(0, i)) as ProbeLine);
        buf = buf.slice(i + 1);
      }
    });
    const probeErr: string[] = [];
    probe.stderr!.on('data', (d: Buffer) => probeErr.push(d.toString()));
    const waitFor = async (what: string, f: () => boolean | Promise<boolean>, ms: number): Promise<void> => {
      const until = Date.now() + ms;
      while (!(await f())) {
        if (Date.now() > until) throw new Error(`timed out (${ms} ms) waiting for ${what}; probe stderr: ${probeErr.join('')}`);
        await sleep(50);
      }
    };
    await waitFor('the probe to commit through the leader', () => probeLines.some((l) => l.op === 'commit' && l.ok), 20_000);
    await waitFor('the writers', () => acked.length > 20, 20_000);
    // the etcd leader on the txkv leader's machine: cut off together (before the nodes'
    // heartbeats, this kept the old leader's key 4.4-5 s after the cut; failovers of
    // 4.5-8.4 s, against 1.9 s with the etcd leader elsewhere)
    await cl.moveEtcdLeader(L);
    const moved = acked.length;
    await waitFor('the writers after the etcd leader moved', () => acked.length > moved + 10, 20_000);

    // ---- cut the leader's machine off
    const cut = Date.now();
    lab!.partition(L);
    let newLeader = -1;
    await waitFor(
      'a new leader among the other nodes',
      async () => {
        for (const i of others) if ((await cl.status(i))?.cluster?.role === 'leader') newLeader = i;
        return newLeader >= 0;
      },
      30_000,
    );
    await waitFor('a commit started after the cut to be acknowledged', () => acked.some((a) => a.started > cut), 30_000);
    const resumedMs = acked.find((a) => a.started > cut)!.at - cut;
    // etcd's election (1-2 s with a 1 s election timeout; the heartbeats stopped for a TTL
    // meanwhile), a keepalive round, a takeover: 2.2 s alone, 3.2-3.3 s during the whole
    // test/cluster run (load 5-22). Without the heartbeats etcd keeps the old leader's key
    // until its new Raft leader's extension (election timeout + TTL) runs out: 4.6-8.4 s
    // measured, so this bound catches most such runs; the LeaderDeposed check below
    // catches every one. (Before the nodes sent each etcd call to one member at a time,
    // calls to the cut-off etcd member timed out during the takeover and it took 7.9 s and
    // 10.2 s in 2 of 4 runs.)
    expect(resumedMs, 'failover time after the cut').toBeLessThan(2 * LEASE_TTL_MS + 1000);
    // the writer on the node that took over and the one on the other node: neither waits
    // for a request forwarded to the cut-off leader to time out (the new leader used to
    // keep its forward connection, and its clients waited out the forward's 5 s bound)
    for (const w of [0, 1]) {
      await waitFor(`writer ${w} (through n${others[w]}) after the cut`, () => acked.some((a) => a.w === w && a.started > cut), 30_000);
      const ms = acked.find((a) => a.w === w && a.started > cut)!.at - cut;
      expect(ms, `failover time after the cut for the writer through n${others[w]}`).toBeLessThan(2 * LEASE_TTL_MS + 1500);
    }
    // the old leader's key was deleted by a node that saw its heartbeats stop, not expired
    // by etcd (whose new Raft leader extended the old leader's lease)
    const deposed = others.flatMap((i) => cl.nodes[i]!.logs).filter((l) => l.includes('"event":"LeaderDeposed"') && l.includes(`"leader":"n${L}"`));
    expect(deposed.length, 'a LeaderDeposed event for the cut-off leader').toBeGreaterThan(0);
    const remaining = cut + CUT_MS - Date.now();
    if (remaining > 0) await sleep(remaining);
    const healed = Date.now();
    lab!.heal(L);
    const perWriter = [0, 1].map((w) => `n${others[w]} ${acked.find((a) => a.w === w && a.started > cut)!.at - cut} ms`).join(', ');
    console.log(`partition of the leader n${L} (with the etcd leader): n${newLeader} took over; writers' commits resumed ${resumedMs} ms after the cut (through ${perWriter}; lease TTL ${LEASE_TTL_MS} ms)`);

    // ---- during the cut, as seen inside the cut-off machine
    const during = probeLines.filter((l) => l.t > cut && l.t < healed);
    const grvs = during.filter((l) => l.op === 'grv');
    expect(grvs.length, 'the probe asked for read versions during the cut').toBeGreaterThan(10);
    // no read version at all once the lease ran out (a loaded box: one more TTL of slack)
    const lateGrv = grvs.filter((l) => l.ok && l.t > cut + 2 * LEASE_TTL_MS);
    expect(lateGrv, 'read versions handed out by the cut-off node after its lease').toEqual([]);
    // no stale read version: every read version it gave is at or above every commit the
    // writers had seen acknowledged before the request was made
    for (const g of probeLines.filter((l) => l.op === 'grv' && l.ok)) {
      const before = acked.filter((a) => a.at < g.t0!);
      const newest = before.reduce((x, a) => (a.v > x ? a.v : x), 0n);
      expect(BigInt(g.v!) >= newest, `read version ${g.v} (asked at ${g.t0}) is below commit ${newest} acknowledged before it`).toBe(true);
    }
    // it commits nothing asked after the cut while cut off
    const cutCommits = during.filter((l) => l.op === 'commit' && l.t0! > cut + 500);
    expect(cutCommits.length).toBeGreaterThan(0);
    expect(cutCommits.filter((l) => l.ok), 'commits acknowledged by the cut-off node').toEqual([]);
    // it stopped leading
    expect(during.some((l) => l.op === 'status' && l.role !== null && l.role !== 'leader'), 'the cut-off node stepped down').toBe(true);

    // ---- healed: it follows the new leader and forwards the probe's commits
    await waitFor(
      'the healed node to follow the new leader',
      async () => {
        const s = await cl.status(L);
        return s?.cluster?.role === 'replica' && s.cluster.leader === `n${newLeader}`;
      },
      30_000,
    );
    await waitFor('a probe commit through the healed node', () => probeLines.some((l) => l.op === 'commit' && l.ok && l.t0! > healed), 30_000);
    await sleep(500);
    stopped = true;
    await Promise.all(loops);
    probe.kill('SIGKILL');

    // ---- every acknowledged commit on every node, the same scan everywhere
    const keys = new Map<string, string>();
    for (const a of acked) keys.set(a.key, `v${Number(a.key.slice(a.key.lastIndexOf('/') + 1))}`);
    for (const l of probeLines) if (l.op === 'commit' && l.ok) keys.set(l.key!, `p${Number(l.key!.slice(2))}`);
    const rvDb = await connect({ endpoints: [cl.urls[newLeader]!], connectionPoolSize: 1 });
    const rv = await retrying(() => rvDb.createTransaction().getReadVersion());
    await rvDb.close();
    const scans: string[][] = [];
    for (let i = 0; i < 3; i++) {
      const rows = await retrying(() => scanAt(cl.urls[i]!, rv));
      const have = new Map(rows.map((r) => [r.slice(0, r.indexOf('=')), r.slice(r.indexOf('=') + 1)]));
      const missing = [...keys].filter(([k, v]) => have.get(k) !== v).map(([k]) => k);
      expect(missing, `n${i} misses acknowledged commits`).toEqual([]);
      scans.push(rows);
    }
    expect(scans[1]).toEqual(scans[0]);
    expect(scans[2]).toEqual(scans[0]);
    console.log(
      `partition: ${keys.size} acknowledged commits checked on 3 nodes; ${grvs.length} read-version requests and ${during.filter((l) => l.op === 'commit').length} commits asked of the cut-off node; writer errors ${JSON.stringify(Object.fromEntries(errors))}`,
    );
  });

  // A member cut off from its peers keeps its client connections and answers nothing new: a
  // watch on it stays open and silent. The watch carries etcd's require-leader metadata
  // (src/cluster/etcd.ts), so the member ends it once it has had no Raft leader for 3
  // election timeouts, and the watch moves to another member. Without it the replica
  // followed the log by its 200 ms poll for as long as the cut lasted.
  it('a replica\'s log watch on an etcd member cut off from its peers (its client port still open) moves to another member; the replica applies commits at watch latency again', { timeout: 90_000 }, async () => {
    const cl = c!;
    const L = await cl.leader();
    const db = await connect({ endpoints: [cl.urls[L]!], connectionPoolSize: 1 });
    dbs.push(db);
    type Watch = { member: string | null; connected: boolean; reported: number };
    const watchOf = async (r: number): Promise<Watch | null> => ((await cl.status(r))?.cluster as { logWatch?: Watch } | null)?.logWatch ?? null;
    const memberIndex = (url: string | null): number => cl.etcd.findIndex((e) => e.clientUrl === url);
    // a replica and the member its watch is on; one on another machine than the leader's if
    // there is one (cutting the leader's own member disturbs more than the watch)
    let R = -1;
    let M = -1;
    const until = Date.now() + 20_000;
    while (R < 0) {
      const picks: [number, number][] = [];
      for (const r of [0, 1, 2].filter((i) => i !== L)) {
        const w = await watchOf(r);
        if (w?.connected && memberIndex(w.member) >= 0) picks.push([r, memberIndex(w.member)]);
      }
      const pick = picks.find(([, m]) => m !== L) ?? picks[0];
      if (pick) [R, M] = pick;
      else if (Date.now() > until) throw new Error('no replica with a connected log watch within 20 s');
      else await sleep(100);
    }
    // not etcd's Raft leader: cutting it stalls every etcd write for its election (~2-3 s
    // here), longer than the 2 s TTL, and the txkv leader was deposed mid-test (its commit
    // MAYBE_COMMITTED; run 3 of 5 at load 5.3, 2026-11-30). This test is about the watch
    if (cl.etcdLeader() === M) await cl.moveEtcdLeader([0, 1, 2].find((e) => e !== M && e !== L) ?? (M + 1) % 3);
    // ms from a commit's acknowledgement until replica R reports it applied (status only:
    // a read would itself make R read the log)
    const replicationMs = async (n: number, tag: string): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        // MAYBE_COMMITTED too: a set of its own key may be applied twice (a leader whose
        // own etcd member is the one cut may lose an append's answer)
        const cv = await retrying(async () => {
          const tx = db.createTransaction();
          tx.set(`cutw/${tag}/${i}`, 'x');
          await tx.commit();
          return Number(tx.getCommittedVersion());
        }, true);
        const t0 = performance.now();
        while (((await cl.status(R))?.cluster?.appliedVersion ?? 0) < cv) {
          if (performance.now() - t0 > 5000) throw new Error(`replica n${R} did not apply version ${cv} within 5 s`);
          await sleep(1);
        }
        out.push(Math.round(performance.now() - t0));
        await sleep(13 + ((i * 37) % 50)); // not in step with the 200 ms poll
      }
      return out;
    };
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const before = await replicationMs(15, 'a');
    const cut = Date.now();
    lab!.cutPort(M, 2380);
    let moved: Watch | null = null;
    try {
      // the member loses its Raft leader after an election timeout (1 s here) and ends
      // require-leader watches after 3 more; then the watch is re-created elsewhere
      const by = Date.now() + 15_000;
      for (;;) {
        const w = await watchOf(R);
        if (w?.connected && memberIndex(w.member) !== M) {
          moved = w;
          break;
        }
        if (Date.now() > by) throw new Error(`replica n${R}'s log watch is still on e${M} (cut off from its peers) 15 s after the cut: ${JSON.stringify(w)}`);
        await sleep(100);
      }
      const movedMs = Date.now() - cut;
      const reported0 = (await watchOf(R))?.reported ?? 0;
      const after = await replicationMs(15, 'b');
      const reportedDuring = ((await watchOf(R))?.reported ?? 0) - reported0;
      // by the lines' own time: the harness drops the oldest half of a long log (an index taken before may be stale)
      const lost = cl.nodes[R]!.logs.filter((x) => x.includes('"event":"LogWatchLost"') && (JSON.parse(x) as { time: number }).time >= cut);
      const events = cl.nodes[R]!.logs.filter((x) => /"event":"LogWatch/.test(x) && (JSON.parse(x) as { time: number }).time >= cut - 10_000);
      console.log(
        `watch on a cut-off etcd member: replica n${R}'s watch left e${M} ${movedMs} ms after the cut at ${cut} (now on ${moved?.member}); replication ms before: ${before.join(', ')} (median ${median(before)}), during the cut: ${after.join(', ')} (median ${median(after)})\n${events.join('\n')}`,
      );
      // which of the two moves it first depends on whether the log grows meanwhile (a read
      // finding an entry the watch never reports: "silent", ~1.5 s after that read; a map
      // change of the leader's is enough) or not (etcd's "no leader", 3.4-4.6 s after the cut)
      expect(lost.some((x) => /no leader|silent/.test(x)), 'a LogWatchLost event naming etcd\'s "no leader" or the silent watch').toBe(true);
      // the require-leader metadata itself: a new watch on the cut-off member is refused
      // (without it the member, serving watches from its own store, accepts it)
      const hosts = new EtcdHosts([cl.etcd[M]!.clientUrl]);
      try {
        const why = await new Promise<string>((resolve) => {
          const w = hosts.client(0).watch().prefix('txkv/log/').watcher();
          const t = setTimeout(() => resolve('no answer within 5 s'), 5000);
          w.on('connected', () => (clearTimeout(t), resolve('connected')));
          w.on('disconnected', (e: Error) => (clearTimeout(t), resolve(e.message)));
          w.on('error', (e: Error) => (clearTimeout(t), resolve(e.message)));
        });
        expect(why, 'a watch with the require-leader metadata on the cut-off member').toMatch(/no leader/);
      } finally {
        hosts.close();
      }
      // the moved watch reports the commits' log entries (counted, not timed: see below)
      expect(reportedDuring, 'log entries the moved watch reported of 15 commits').toBeGreaterThanOrEqual(8);
      // watch latency is a few ms; the 200 ms poll alone gives a median near 100-190 ms
      // (etcd-trouble.test.ts): bound relative to the same cluster's before the cut
      expect(median(after), `replication ms during the cut: ${after.join(', ')} (before: ${before.join(', ')})`).toBeLessThan(Math.max(100, 2 * median(before)));
    } finally {
      lab!.healPort(M, 2380);
    }
  });
});
