// bench/compare: txkv side by side with etcd 3.4, Redis 7 and PostgreSQL 15 in one run on one
// machine, with the same generator, plus the raw limits of txkv's own stack (RocksDB durable
// batched writes and point reads, uWS WebSocket echo). Starts and stops every system itself,
// writes bench/results/<date>.md (+ .svg chart, + .json raw reports). Main thread; the
// generator runs in forked processes so this process stays idle while measuring.

import { execFileSync, fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem, release } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { AdapterSpec } from './adapter.js';
import { createAdapter } from './adapters/index.js';
import { readCommitBuckets, serverLatency, type CommitBuckets } from './server-latency.js';
import { LoopbackCluster, HAVE_ETCD } from './cluster.js';
import { benchSplitPoints } from './data.js';
import { shardCount } from '../src/config/server-config.js';
import { measureFailover, type FailoverResult } from './failover.js';
import { startPeer, startTxkv } from './peers.js';
import { processCpuMicros, runQueueWaitNs } from './proc-cpu.js';
import type { RocksRawResult } from './raw/rocksdb.js';
import { runHttpScenarios, type HttpResult } from './http.js';
import { measureUwsEcho, type EchoResult } from './raw/uws-echo.js';
import { runSuite, type SuiteReport, type ThreadCpuReport } from './suite.js';
import { WORKLOAD_NAMES, workloadByName } from './workloads/index.js';

/**
 * A system under test: a peer, `txkv-cluster` (3 etcd members + 3 txkv nodes on loopback, the
 * client lists all three nodes), or `txkv@<rev>` (another txkv build, --txkv-root).
 */
type System = string;
const PEERS: AdapterSpec['system'][] = ['txkv', 'etcd', 'redis', 'postgres'];
const ALL_SYSTEMS: System[] = [...PEERS];
const CLUSTER = 'txkv-cluster';
/** txkv with gatewayThreads = N (--gateway-threads N[,N...]): systems txkv/gwN beside txkv. */
const GATEWAY_VARIANT = /^txkv\/gw(\d+)$/;

/** FoundationDB's published single-core figures and issue 4's txkv targets, per workload. */
const REFERENCE: Record<string, { fdb?: string; target?: number }> = {
  w1: { fdb: '917 writes/s (SATA SSD)' },
  w10: { fdb: '46,000 writes/s', target: 60_000 },
  r10: { fdb: '305,000 reads/s', target: 305_000 },
  m90: { fdb: '107,000 ops/s', target: 107_000 },
  range: { fdb: '3,600,000 keys/s' },
  meta: {},
};

interface CompareOptions {
  systems: System[];
  workloads: string[];
  seconds: number;
  warmup: number;
  rows: number;
  clients: number;
  procs: number;
  shards: number;
  seed: number;
  rawSeconds: number;
  raw: boolean;
  outDir: string;
  verify: boolean;
  /** txkv shard counts to sweep over `sweepWorkloads` after the main run (empty: none). */
  shardSweep: number[];
  sweepWorkloads: string[];
  /** Workloads that txkv runs again paced at half its measured peak (latency at half load). */
  halfPeak: string[];
  /** Measured seconds of each half-peak run (default: `seconds`); a p99 over 5 s is set by one or two stalls. */
  halfPeakSeconds: number;
  /** Seconds per HTTP API scenario against txkv (autocannon); 0 = skip. */
  httpSeconds: number;
  /** The command-line arguments of this run, for the results file. */
  argv: string[];
  /** Other txkv builds (repository roots with dist/) by system label `txkv@<rev>`. */
  txkvRoots: Record<string, string>;
  /** Writers of the failover measurement on txkv-cluster (0 = skip it). */
  failoverWriters: number;
  /**
   * txkv's layout of the bench keys: 'even' = split points that give each shard an equal part
   * (benchSplitPoints); 'one-prefix' = the server's default split points, under which every
   * bench key ('k' + 15 digits) starts on one worker (the automatic distribution spreads them).
   */
  txkvKeys: 'even' | 'one-prefix';
  /** txkv's distribution.enabled (automatic splits and moves). */
  txkvDistribution: boolean;
}

interface SweepRun {
  shards: number;
  reports: SuiteReport[];
  failures: { workload: string; message: string }[];
}

interface SystemRun {
  system: System;
  version?: string;
  skipped?: string;
  reports: SuiteReport[];
  /** Paced reruns at half the peak throughput (txkv only). */
  halfPeak?: SuiteReport[];
  /** The HTTP KV API under autocannon (txkv only). */
  http?: HttpResult[];
  httpError?: string;
  failures: { workload: string; message: string }[];
  /** CPU the system's server processes use when no client is connected (cores, over 2 s after start). */
  idleCores?: number;
  /** txkv-cluster: leader kill -9 under a steady write load. */
  failover?: FailoverResult;
  failoverError?: string;
}

interface RawLimits {
  rocksdb?: RocksRawResult;
  rocksdbError?: string;
  uws?: EchoResult[];
  uwsError?: string;
}

function log(line: string): void {
  process.stderr.write(`[compare] ${line}\n`);
}

function runRocksRaw(rows: number, seconds: number): Promise<RocksRawResult> {
  return new Promise((res, rej) => {
    const child = fork(fileURLToPath(new URL('./raw/rocksdb.js', import.meta.url)), [String(rows), String(seconds)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (m: RocksRawResult) => res(m));
    child.once('exit', (code) => rej(new Error(`raw RocksDB probe exited (${code}) without a result`)));
  });
}

async function measureRaw(o: CompareOptions): Promise<RawLimits> {
  const out: RawLimits = {};
  log('raw limits: RocksDB');
  try {
    out.rocksdb = await runRocksRaw(o.rows, o.rawSeconds);
  } catch (err) {
    out.rocksdbError = (err as Error).message;
  }
  log('raw limits: uWS echo');
  try {
    out.uws = [];
    for (const [connections, window] of [
      [1, 1],
      [4, 64],
      [16, 64],
    ] as const) {
      out.uws.push(await measureUwsEcho({ connections, window, seconds: o.rawSeconds }));
    }
  } catch (err) {
    out.uwsError = (err as Error).message;
  }
  return out;
}

interface LiveSystem {
  run: SystemRun;
  spec: AdapterSpec;
  stop: () => Promise<void>;
  loaded: Set<string>;
  /** The system's server processes, for CPU per operation. */
  pids?: () => number[];
  cluster?: LoopbackCluster;
}

/** The short commit id of a checkout, for the label `txkv@<rev>`. */
function revisionOf(root: string): string {
  try {
    return execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD']).toString().trim();
  } catch {
    return 'other';
  }
}

async function startCluster(shards: number, rows: number): Promise<LiveSystem | SystemRun> {
  if (!HAVE_ETCD) return { system: CLUSTER, skipped: 'etcd is not installed (scripts/install-peers.sh installs Debian etcd-server)', reports: [], failures: [] };
  // the nodes take the bench keyspace's split points from the environment, as an operator would
  const cluster = new LoopbackCluster({ TXKV_SPLIT_POINTS: benchSplitPoints(rows, shards).join(',') }, shards);
  try {
    await cluster.startEtcd();
    await cluster.startNodes();
    await cluster.leader();
  } catch (err) {
    await cluster.stop();
    return { system: CLUSTER, skipped: `the cluster did not start: ${(err as Error).message.split('\n')[0]}`, reports: [], failures: [] };
  }
  const etcdVersion = (execFileSync('/usr/bin/etcd', ['--version']).toString().split('\n')[0]?.trim() ?? 'etcd').replace('etcd Version: ', 'etcd ');
  return {
    run: { system: CLUSTER, version: `3 txkv nodes (${shards} shards each) on 3 ${etcdVersion} members, all on loopback`, reports: [], failures: [] },
    spec: { system: 'txkv', endpoint: cluster.urls[0]!, endpoints: cluster.urls, label: CLUSTER },
    stop: () => cluster.stop(),
    loaded: new Set(),
    pids: () => cluster.pids(),
    cluster,
  };
}

/** Samples the idle CPU of a started system into its run (background timers, heartbeats, census). */
async function withIdleCpu(x: LiveSystem | SystemRun): Promise<LiveSystem | SystemRun> {
  if (!('spec' in x) || !x.pids) return x;
  const c0 = processCpuMicros(x.pids());
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, 2000));
  x.run.idleCores = Math.round(((processCpuMicros(x.pids()) - c0) / ((performance.now() - t0) * 1000)) * 100) / 100;
  return x;
}

async function startSystem(system: System, shards: number, rows: number, txkvRoots: Record<string, string> = {}): Promise<LiveSystem | SystemRun> {
  return withIdleCpu(await startSystemOnly(system, shards, rows, txkvRoots));
}

/** txkv's key layout and distribution setting of this run (--txkv-keys, --txkv-distribution). */
let txkvLayout: { keys: CompareOptions['txkvKeys']; distribution: boolean } = { keys: 'even', distribution: true };

async function startSystemOnly(system: System, shards: number, rows: number, txkvRoots: Record<string, string>): Promise<LiveSystem | SystemRun> {
  log(`starting ${system}${system.startsWith('txkv') ? ` (${shards} shards)` : ''}`);
  if (system === CLUSTER) return startCluster(shards, rows);
  const gw = GATEWAY_VARIANT.exec(system);
  const started = system.startsWith('txkv@')
    ? await startTxkv(shards, benchSplitPoints(rows, shards), txkvRoots[system], system)
    : gw
      ? await startTxkv(shards, benchSplitPoints(rows, shards), undefined, system, undefined, Number(gw[1]))
      : await startPeer(system as AdapterSpec['system'], shards, rows, { onePrefix: txkvLayout.keys === 'one-prefix', distribution: txkvLayout.distribution });
  if (!started.ok) {
    log(`skipping ${system}: ${started.reason}`);
    return { system, skipped: started.reason, reports: [], failures: [] };
  }
  const peer = started.peer;
  return { run: { system, version: peer.version, reports: [], failures: [] }, spec: peer.spec, stop: () => peer.stop(), loaded: new Set(), ...(peer.pids ? { pids: peer.pids } : {}) };
}

/** The range map's size, the split/move/merge counts and each worker's share of reads and writes (the balancer's measurements), from /v1/status. */
async function distributionOf(endpoint: string): Promise<SuiteReport['txkvDistribution']> {
  try {
    const res = await fetch(endpoint.replace(/^ws/, 'http') + '/v1/status');
    const d = ((await res.json()) as { distribution?: { map: { ranges: unknown[] }; splits: number; moves: number; merges: number; balancer?: { workers: { share: number }[] } } }).distribution;
    if (!d) return undefined;
    return { ranges: d.map.ranges.length, splits: d.splits, moves: d.moves, merges: d.merges, workerShares: (d.balancer?.workers ?? []).map((w) => w.share) };
  } catch {
    return undefined;
  }
}

interface ThreadSample {
  at: number;
  generatorMs: number;
  processMs: number;
  threads: Map<string, number>;
}

/** The txkv server's CPU by thread so far (GET /v1/status `threads`, `processCpuMs`) and this process's (the generator). */
async function sampleThreads(endpoint: string): Promise<ThreadSample | null> {
  try {
    const { user, system } = process.cpuUsage();
    const at = performance.now();
    const res = await fetch(endpoint.replace(/^ws/, 'http') + '/v1/status');
    const st = (await res.json()) as { processCpuMs?: number; threads?: { name: string; cpuMs: number | null }[] };
    if (!st.threads || st.processCpuMs === undefined) return null;
    return { at, generatorMs: (user + system) / 1000, processMs: st.processCpuMs, threads: new Map(st.threads.filter((t) => t.cpuMs !== null).map((t) => [t.name, t.cpuMs!])) };
  } catch {
    return null;
  }
}

function threadCpu(a: ThreadSample, b: ThreadSample): ThreadCpuReport {
  const ms = b.at - a.at;
  const pct = (d: number): number => Math.round((d / ms) * 1000) / 10;
  return {
    threads: [...b.threads].map(([name, v]) => ({ name, pct: pct(v - (a.threads.get(name) ?? 0)) })),
    serverPct: pct(b.processMs - a.processMs),
    generatorPct: pct(b.generatorMs - a.generatorMs),
  };
}

async function runOne(live: LiveSystem, name: string, o: CompareOptions, ratePerSec?: number): Promise<SuiteReport | undefined> {
  const workload = workloadByName(name);
  const load = !live.loaded.has(workload.keyspace);
  // server CPU over the measured window: sampled by timers from the start of the load
  // (after the preload); the generator forks and connects within the warm-up
  let cpu0: number | undefined;
  let cpu1: number | undefined;
  let wait0: { at: number; mainNs: number; allNs: number } | undefined;
  let wait1: { at: number; mainNs: number; allNs: number } | undefined;
  const timers: NodeJS.Timeout[] = [];
  const pids = live.pids;
  // txkv: CPU by thread over the same window, from /v1/status (main, gateway threads, shards)
  const endpoint = live.spec.system === 'txkv' && !live.cluster ? live.spec.endpoint : null;
  let threads0: Promise<ThreadSample | null> | undefined;
  let threads1: Promise<ThreadSample | null> | undefined;
  const httpBase = endpoint ? endpoint.replace(/^ws/, 'http') : null;
  let commits0: Promise<CommitBuckets | null> | undefined;
  let commits1: Promise<CommitBuckets | null> | undefined;
  const onLoadStart = pids
    ? (): void => {
        timers.push(
          setTimeout(() => {
            cpu0 = processCpuMicros(pids());
            wait0 = { at: performance.now(), ...runQueueWaitNs(pids()) };
            if (endpoint) threads0 = sampleThreads(endpoint);
            if (httpBase) commits0 = readCommitBuckets(httpBase);
          }, o.warmup * 1000),
        );
        timers.push(
          setTimeout(() => {
            cpu1 = processCpuMicros(pids());
            wait1 = { at: performance.now(), ...runQueueWaitNs(pids()) };
            if (endpoint) threads1 = sampleThreads(endpoint);
            if (httpBase) commits1 = readCommitBuckets(httpBase);
          }, (o.warmup + o.seconds) * 1000),
        );
      }
    : undefined;
  try {
    const report = await runSuite(await createAdapter(live.spec), live.spec, {
      workload,
      clients: workload.defaultClients === 1 ? 1 : o.clients,
      seconds: o.seconds,
      warmupSeconds: o.warmup,
      rows: o.rows,
      seed: ratePerSec ? o.seed + 1 : o.seed,
      verify: o.verify,
      procs: o.procs,
      progress: true,
      load,
      ratePerSec,
      ...(onLoadStart ? { onLoadStart } : {}),
    });
    live.loaded.add(workload.keyspace);
    if (live.spec.system === 'txkv' && !live.cluster) report.txkvDistribution = await distributionOf(live.spec.endpoint);
    if (cpu0 !== undefined && cpu1 !== undefined && report.ops > 0) report.serverCpuUsPerOp = Math.round(((cpu1 - cpu0) / report.ops) * 10) / 10;
    if (wait0 && wait1 && wait1.allNs > 0) {
      const windowNs = (wait1.at - wait0.at) * 1e6;
      report.serverRunQueue = { mainPct: Math.round(((wait1.mainNs - wait0.mainNs) / windowNs) * 1000) / 10, allThreads: Math.round(((wait1.allNs - wait0.allNs) / windowNs) * 100) / 100 };
    }
    const [t0, t1] = await Promise.all([threads0, threads1]);
    if (t0 && t1) report.threadCpu = threadCpu(t0, t1);
    const [c0, c1] = await Promise.all([commits0, commits1]);
    if (httpBase && c0 && c1) report.serverLatency = await serverLatency(httpBase, c0, c1);
    return report;
  } catch (err) {
    const message = (err as Error).message.split('\n')[0] ?? String(err);
    log(`${live.run.system} ${name}${ratePerSec ? ' (paced)' : ''} failed: ${message}`);
    if (!ratePerSec) live.run.failures.push({ workload: name, message });
    return undefined;
  } finally {
    for (const t of timers) clearTimeout(t);
  }
}

/**
 * Every system is started first and stays up (idle when not measured); then each workload
 * runs on each system in turn, so that the systems compared on one workload are measured
 * minutes apart at most, under the same background load of the shared machine.
 */
async function runInterleaved(o: CompareOptions): Promise<SystemRun[]> {
  const all: (LiveSystem | SystemRun)[] = [];
  try {
    for (const system of o.systems) all.push(await startSystem(system, o.shards, o.rows, o.txkvRoots));
    const live = all.filter((x): x is LiveSystem => 'spec' in x);
    for (const name of o.workloads) {
      for (const l of live) {
        const report = await runOne(l, name, o);
        if (report) l.run.reports.push(report);
      }
    }
    const cl = live.find((l) => l.cluster);
    if (cl?.cluster && o.failoverWriters > 0) {
      log(`${CLUSTER}: failover (kill -9 the leader under ${o.failoverWriters} writers)`);
      try {
        cl.run.failover = await measureFailover(cl.cluster, { writers: o.failoverWriters, beforeMs: 3000, afterMs: 3000 });
        log(`${CLUSTER}: failover ${cl.run.failover.failoverMs} ms, ${cl.run.failover.acked} acknowledged, lost ${JSON.stringify(cl.run.failover.lostByNode)}`);
      } catch (err) {
        cl.run.failoverError = (err as Error).message;
        log(`${CLUSTER}: failover failed: ${cl.run.failoverError}`);
      }
    }
    const txkv = live.find((l) => l.run.system === 'txkv');
    // every txkv build of the run (txkv and txkv@<rev>, not the cluster), one after the other
    // per workload, so an A/B of two builds compares their half-peak latency under one load
    const builds = live.filter((l) => l.run.system === 'txkv' || l.run.system.startsWith('txkv@'));
    for (const name of o.halfPeak) {
      for (const b of builds) {
        const peak = b.run.reports.find((r) => r.workload === name);
        if (!peak || peak.txPerSec <= 0) continue;
        const report = await runOne(b, name, { ...o, seconds: o.halfPeakSeconds }, Math.max(1, Math.round(peak.txPerSec / 2)));
        if (report) (b.run.halfPeak ??= []).push(report);
      }
    }
    if (txkv && o.httpSeconds > 0 && txkv.loaded.has('flat') && txkv.spec.system === 'txkv') {
      log('txkv HTTP API (autocannon)');
      try {
        txkv.run.http = await runHttpScenarios({
          url: txkv.spec.endpoint.replace(/^ws/, 'http'),
          names: ['get', 'put', 'range100', 'txn'],
          rows: o.rows,
          seed: o.seed,
          connections: o.clients,
          seconds: o.httpSeconds,
        });
      } catch (err) {
        txkv.run.httpError = (err as Error).message;
      }
    }
  } finally {
    for (const x of all) {
      if ('spec' in x) await x.stop().catch((err: unknown) => log(`stopping ${x.run.system} failed: ${(err as Error).message}`));
    }
  }
  return all.map((x) => ('spec' in x ? x.run : x));
}

/** One system alone (the txkv shard sweep). */
async function runSystem(system: System, o: CompareOptions, workloads: string[], shards: number): Promise<SystemRun> {
  const x = await startSystem(system, shards, o.rows, o.txkvRoots);
  if (!('spec' in x)) return x;
  try {
    for (const name of workloads) {
      const report = await runOne(x, name, o);
      if (report) x.run.reports.push(report);
    }
  } finally {
    await x.stop().catch((err: unknown) => log(`stopping ${system} failed: ${(err as Error).message}`));
  }
  return x.run;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const fmtMs = (n: number): string => (n < 10 ? n.toFixed(2) : n.toFixed(1));
const fmtRatio = (r: number): string => (r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(2) : r.toFixed(3));

function errorsText(r: SuiteReport): string {
  const e = Object.entries(r.errors);
  return e.length === 0 ? '0' : e.map(([k, v]) => `${k} ${v}`).join(', ');
}

export function renderMarkdown(date: string, o: CompareOptions, runs: SystemRun[], raw: RawLimits, svgName: string, sweep: SweepRun[] = []): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const lines: string[] = [];
  lines.push(`# txkv benchmark comparison, ${date}`);
  lines.push('');
  lines.push(`Machine: ${cpus().length} cores (${cpu}), ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}, Node ${process.version}. ` +
    'Shared and noisy: compare systems by their ratios within this run, not across runs.');
  lines.push('');
  lines.push(`Run: ${o.rows.toLocaleString('en-US')}-row keyspace (16-byte keys, 8-100-byte values), ${o.clients} clients (w1: 1), ` +
    `${o.seconds} s measured after ${o.warmup} s warm-up per workload, ${o.procs} generator process(es) (${o.procs === 0 ? 'in the compare process' : 'forked'}), ` +
    `txkv with ${o.shards} shard(s)${o.txkvKeys === 'one-prefix' ? ' and the default split points (every key starts on one worker)' : ''}, automatic distribution ${o.txkvDistribution ? 'on' : 'off'}, seed ${o.seed}. Every system on loopback with a temp data dir, every commit durable; ` +
    'all systems up for the whole run, each workload run on each system in turn. ' +
    `Reproduce: \`bash scripts/install-peers.sh && npm run build && node dist/bench/compare.js${o.argv.length ? ' ' + o.argv.join(' ') : ''}\` (see bench/README.md).`);
  lines.push('');
  lines.push('Server CPU µs/op: user + system CPU of the system\'s server processes (/proc, every thread; for txkv-cluster its 3 nodes and 3 etcd members) ' +
    'over the measured window, divided by the operations counted; the generator is not included, a system\'s idle CPU (below) is. PostgreSQL: not tracked (one process per connection).');
  lines.push('');
  lines.push('| system | version | idle server CPU (cores) |');
  lines.push('|---|---|---:|');
  for (const r of runs) lines.push(`| ${r.system} | ${r.skipped ? `**skipped**: ${r.skipped}` : (r.version ?? '')} | ${r.idleCores ?? '-'} |`);
  lines.push('');
  lines.push(`![throughput relative to the best system, per workload](${svgName})`);
  lines.push('');

  for (const name of o.workloads) {
    const ref = REFERENCE[name] ?? {};
    const w = workloadByName(name);
    lines.push(`## ${name}: ${w.description}`);
    lines.push('');
    const rows = runs.flatMap((r) => r.reports.filter((x) => x.workload === name));
    const txkv = rows.find((x) => x.system === 'txkv');
    // server CPU: user + system time of the system's processes (/proc) over the measured window, idle share included
    lines.push(`| system | durability | throughput (${w.opUnit}/s) | tx/s | p50 ms | p99 ms | server CPU µs/op | conflicts | errors | ratio to txkv |`);
    lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      const ratio = txkv && txkv.opsPerSec > 0 ? fmtRatio(r.opsPerSec / txkv.opsPerSec) : 'n/a';
      const cpu = r.serverCpuUsPerOp !== undefined ? String(r.serverCpuUsPerOp) : '-';
      lines.push(`| ${r.system} | ${r.durability} | ${fmt(r.opsPerSec)} | ${fmt(r.txPerSec)} | ${fmtMs(r.p50Ms)} | ${fmtMs(r.p99Ms)} | ${cpu} | ${r.conflicts} | ${errorsText(r)} | ${ratio} |`);
    }
    for (const r of runs) {
      const f = r.failures.find((x) => x.workload === name);
      if (f) lines.push(`| ${r.system} | | **failed**: ${f.message.replace(/\|/g, '\\|')} | | | | | | | |`);
      else if (r.skipped) lines.push(`| ${r.system} | | skipped (not installed or did not start) | | | | | | | |`);
    }
    const withCpu = rows.filter((r) => r.threadCpu);
    if (withCpu.length > 0) {
      lines.push('');
      lines.push('CPU by thread over the measured window, % of one core (/proc via /v1/status; "server" is the whole process, RocksDB and libuv threads included; "generator" is the load generator\'s process):');
      lines.push('');
      for (const r of withCpu) {
        const c = r.threadCpu!;
        lines.push(`- ${r.system}: ${c.threads.map((t) => `${t.name} ${t.pct}`).join(', ')}; server ${c.serverPct}; generator ${c.generatorPct}`);
      }
    }
    lines.push('');
    const sqlEtcd = rows.filter((x) => x.system === 'etcd' || x.system === 'postgres');
    const best = sqlEtcd.reduce<SuiteReport | undefined>((a, b) => (a && a.opsPerSec >= b.opsPerSec ? a : b), undefined);
    const notes: string[] = [];
    if (txkv && best && best.opsPerSec > 0) {
      const asked = ref.target ? ' (issue 4 asks for >= 1.5x)' : '';
      notes.push(`txkv / best of etcd and PostgreSQL (${best.system}) = **${fmtRatio(txkv.opsPerSec / best.opsPerSec)}x**${asked}.`);
    }
    if (txkv && ref.target) notes.push(`Issue 4 target for txkv: ${fmt(ref.target)} ${w.opUnit}/s; measured ${fmt(txkv.opsPerSec)} (${fmtRatio(txkv.opsPerSec / ref.target)} of target).`);
    if (ref.fdb) notes.push(`FoundationDB published (1 core, other hardware): ${ref.fdb}.`);
    for (const n of notes) lines.push(`- ${n}`);
    if (notes.length > 0) lines.push('');
    if (name === 'meta') {
      lines.push('Per operation (ops/s, p50 / p99 ms):');
      lines.push('');
      const ops = ['stat', 'create', 'readdir', 'rename', 'remove'];
      lines.push(`| system | ${ops.join(' | ')} |`);
      lines.push(`|---|${ops.map(() => '---:').join('|')}|`);
      for (const r of rows) {
        lines.push(`| ${r.system} | ${ops.map((op) => { const s = r.byOp?.[op]; return s ? `${fmt(s.txPerSec)} (${fmtMs(s.p50Ms)} / ${fmtMs(s.p99Ms)})` : '-'; }).join(' | ')} |`);
      }
      lines.push('');
      for (const r of rows) {
        if (r.outcomes) lines.push(`- ${r.system} outcomes: ${Object.entries(r.outcomes).sort().map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}`);
        if (r.metaCheck) lines.push(`- ${r.system} namespace check after the run: ${r.metaCheck.dirs} dirs, ${r.metaCheck.files} files, ${r.metaCheck.entries} entries, ${r.metaCheck.problems.length} problems${r.metaCheck.problems.length ? ': ' + r.metaCheck.problems.slice(0, 3).join('; ') : ''}`);
      }
      lines.push('');
    }
    const samples = rows.filter((r) => r.errorSamples && r.errorSamples.length > 0);
    for (const r of samples) lines.push(`- ${r.system} first errors: ${(r.errorSamples ?? []).map((s) => '`' + s.replace(/`/g, "'").slice(0, 200) + '`').join('; ')}`);
    if (samples.length > 0) lines.push('');
  }

  const fo = runs.find((r) => r.failover || r.failoverError);
  if (fo) {
    lines.push(`## ${CLUSTER}: failover (same run)`);
    lines.push('');
    if (fo.failoverError) lines.push(`Failed: ${fo.failoverError}`);
    else if (fo.failover) {
      const f = fo.failover;
      const lost = Object.values(f.lostByNode).reduce((a, b) => a + b, 0);
      lines.push(`${f.writers} writers, each committing one new key per transaction (a client listing all 3 nodes, every commit bounded at 3 s and retried ` +
        'on the same key until acknowledged); after a steady 3 s the leader is killed with SIGKILL; the load runs on, then the killed node ' +
        'is restarted and each node is read on its own.');
      lines.push('');
      lines.push('| killed | new leader | commits/s before | failover ms (kill -> first ack of a commit started after it) | longest gap without an ack, ms | new leader\'s own lastFailoverMs | acknowledged | lost (per node) | keys found never acknowledged | writer errors (retried) |');
      lines.push('|---|---|---:|---:|---:|---:|---:|---|---:|---|');
      lines.push(`| ${f.killedNode} | ${f.newLeader} | ${fmt(f.commitsPerSecBefore)} | **${fmt(f.failoverMs)}** | ${fmt(f.ackGapMs)} | ${f.reportedFailoverMs ?? '-'} | ${fmt(f.acked)} | ` +
        `**${lost}** (${Object.entries(f.lostByNode).map(([n, v]) => `${n} ${v}`).join(', ')}) | ${f.unackedFound} | ${Object.entries(f.errors).map(([k, v]) => `${k} ${v}`).join(', ') || '0'} |`);
    }
    lines.push('');
  }

  const halfPeak = runs.flatMap((r) => (r.halfPeak ?? []).map((h) => ({ ...h, server: r.system })));
  if (halfPeak.length > 0) {
    lines.push('## txkv latency at half of its peak (same run)');
    lines.push('');
    lines.push('The clients paced to half the throughput measured above (open loop; latency counts from each');
    lines.push("transaction's intended start, so queueing in the generator counts too). Issue 12 asks for a");
    lines.push('p99 commit latency under 5 ms at half of peak. "client" columns: the generator\'s latency;');
    lines.push('"server": the gateway\'s commit histogram over the same window (request in to reply out, /metrics');
    lines.push('txkv_commit_latency_seconds, interpolated inside its buckets; "<= 5 ms" is exact, 5 ms is a bound),');
    lines.push('and the main thread\'s event-loop lag (largest per-second p99 / max, monitorEventLoopDelay at 10 ms');
    lines.push('resolution, which it includes: an idle loop shows ~10 ms).');
    lines.push('');
    lines.push('"generator": the load generator processes\' own event-loop delay over the window (p99 / max beyond');
    lines.push('its 5 ms sampling interval) and their CPU: a transaction waiting for the generator counts on the client side.');
    lines.push('"started late": how late transactions started through the generator\'s own fault (after their intended');
    lines.push('start and after their client\'s previous transaction ended: its loop or CPU was busy), p99 / max; "behind');
    lines.push('previous": p99 of the wait for the same client\'s previous transaction, still in flight at the intended');
    lines.push('start. That wait is the system\'s (counted from the intended start, as it must be), and the server\'s');
    lines.push('histogram cannot see it: the request is not sent yet.');
    lines.push('"waiting for a CPU": time runnable but not running (/proc .../schedstat, the run queue) over the window:');
    lines.push('the server\'s main thread (% of the window) / all its threads (threads waiting, on average), and the');
    lines.push('generator\'s thread (%). On these 2 shared cores a request can wait there with no thread busy on it.');
    lines.push('');
    lines.push('| server | workload | target tx/s | achieved tx/s | client p50 ms | p95 ms | p99 ms | max ms | server p50 ms | server p99 ms | server <= 5 ms | main loop lag p99 / max ms | generator lag p99 / max ms, CPU % | started late p99 / max ms | behind previous p99 ms | waiting for a CPU: server main % / all threads, generator % |');
    lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of halfPeak) {
      const sl = r.serverLatency;
      const srv = sl
        ? `${sl.p50Ms === null ? '-' : fmtMs(sl.p50Ms)} | ${sl.p99Ms === null ? '-' : fmtMs(sl.p99Ms)} | ${sl.within5Ms === null ? '-' : `${(sl.within5Ms * 100).toFixed(2)} %`} | ${sl.loopLagP99Ms === null ? '-' : `${sl.loopLagP99Ms} / ${sl.loopLagMaxMs}`}`
        : '- | - | - | -';
      const gen = r.generator;
      const g = gen ? `${gen.loopLagP99Ms} / ${gen.loopLagMaxMs}, ${gen.cpuPct}` : '-';
      const sched = gen?.lateP99Ms !== undefined ? `${fmtMs(gen.lateP99Ms)} / ${fmtMs(gen.lateMaxMs ?? 0)} | ${fmtMs(gen.behindP99Ms ?? 0)}` : '- | -';
      const rq = `${r.serverRunQueue ? `${r.serverRunQueue.mainPct} / ${r.serverRunQueue.allThreads}` : '-'}, ${gen?.runQueueWaitPct ?? '-'}`;
      lines.push(`| ${r.server} | ${r.workload} | ${fmt(r.targetTxPerSec ?? 0)} | ${fmt(r.txPerSec)} | ${fmtMs(r.p50Ms)} | ${fmtMs(r.p95Ms)} | ${fmtMs(r.p99Ms)} | ${fmtMs(r.maxMs)} | ${srv} | ${g} | ${sched} | ${rq} |`);
    }
    lines.push('');
  }
  const httpRun = runs.find((r) => r.http || r.httpError);
  if (httpRun) {
    lines.push('## txkv HTTP KV API under autocannon (same run)');
    lines.push('');
    if (httpRun.httpError) lines.push(`Failed: ${httpRun.httpError}`);
    else {
      lines.push(`autocannon, ${o.clients} connections, ${o.httpSeconds} s per scenario, keys of the preloaded keyspace: \`get\` = GET /v1/kv/:key, ` +
        '`put` = PUT /v1/kv/:key (one durable transaction), `range100` = GET /v1/range with limit 100, `txn` = POST /v1/txn with 9 reads + 1 write (409 = conflict, not retried).');
      lines.push('');
      lines.push('| scenario | requests/s | p50 ms | p90 ms | p99 ms | max ms | status codes | errors |');
      lines.push('|---|---:|---:|---:|---:|---:|---|---:|');
      for (const h of httpRun.http ?? []) {
        lines.push(`| ${h.scenario} | ${fmt(h.requestsPerSec)} | ${h.p50Ms} | ${h.p90Ms} | ${h.p99Ms} | ${h.maxMs} | ${Object.entries(h.statusCodes).map(([c, n]) => `${c}: ${fmt(n)}`).join(', ')} | ${h.errors + h.timeouts} |`);
      }
    }
    lines.push('');
  }
  const distRows: string[] = [];
  const distRow = (label: string, r: SuiteReport): void => {
    const d = r.txkvDistribution;
    if (d) distRows.push(`| ${label} | ${r.workload} | ${d.ranges} | ${d.splits} | ${d.moves} | ${d.merges} | ${d.workerShares.map((x) => `${Math.round(x * 100)} %`).join(' / ')} |`);
  };
  for (const run of runs) for (const r of run.reports) distRow(run.system, r);
  for (const s of sweep) for (const r of s.reports) distRow(`txkv, ${s.shards} shard(s)`, r);
  if (distRows.length > 0) {
    lines.push('## txkv data distribution after each workload (same run)');
    lines.push('');
    lines.push(`Keys: ${o.txkvKeys === 'one-prefix' ? 'the default split points (every bench key starts on one worker)' : 'split points that give each shard an equal part'}; ` +
      `automatic distribution ${o.txkvDistribution ? 'on' : 'off'}. Ranges in the map, splits/moves/merges since the server started, and each worker's share of the reads and writes ` +
      'of the last seconds (/v1/status distribution.balancer.workers).');
    lines.push('');
    lines.push('| server | workload | ranges | splits | moves | merges | worker shares |');
    lines.push('|---|---|---:|---:|---:|---:|---|');
    lines.push(...distRows);
    lines.push('');
  }
  if (sweep.length > 0) {
    lines.push('## txkv by shard count (same run)');
    lines.push('');
    lines.push(`Each shard count on a fresh server, same generator and options as above. Throughput (p99 ms).`);
    lines.push('');
    lines.push(`| shards | ${o.sweepWorkloads.map((w) => `${w} ${workloadByName(w).opUnit}/s`).join(' | ')} |`);
    lines.push(`|---:|${o.sweepWorkloads.map(() => '---:').join('|')}|`);
    for (const s of sweep) {
      lines.push(`| ${s.shards} | ${o.sweepWorkloads.map((w) => {
        const r = s.reports.find((x) => x.workload === w);
        const f = s.failures.find((x) => x.workload === w);
        return r ? `${fmt(r.opsPerSec)} (${fmtMs(r.p99Ms)})${Object.keys(r.errors).length ? ' errors: ' + errorsText(r) : ''}` : f ? `failed: ${f.message.replace(/\|/g, '\\|')}` : '-';
      }).join(' | ')} |`);
    }
    lines.push('');
  }
  lines.push('## Raw limits of the stack (same run)');
  lines.push('');
  if (raw.rocksdb) {
    const r = raw.rocksdb;
    lines.push(`RocksDB (@nxtedition/rocksdb, temp dir, ${fmt(r.rows)} rows preloaded), one thread, \`batch().write({ sync: true })\`:`);
    lines.push('');
    lines.push('| keys per batch | batches/s (fsyncs) | keys/s | mean ms |');
    lines.push('|---:|---:|---:|---:|');
    for (const s of r.syncWrites) lines.push(`| ${s.keysPerBatch} | ${fmt(s.batchesPerSec)} | ${fmt(s.keysPerSec)} | ${s.meanMs.toFixed(3)} |`);
    lines.push('');
    lines.push(`Point reads, getMany of 10 random keys: synchronous API ${fmt(r.pointReadsSyncPerSec)} reads/s; ` +
      `async API ${r.pointReadsAsync.map((a) => `${fmt(a.readsPerSec)} reads/s with ${a.inFlight} in flight`).join(', ')}.`);
  } else {
    lines.push(`${raw.rocksdbError ? 'RocksDB probe failed: ' + raw.rocksdbError : 'RocksDB probe not run (--no-raw).'}`);
  }
  lines.push('');
  if (raw.uws && raw.uws.length > 0) {
    lines.push('WebSocket echo over loopback, uWS server (own process) and `ws` client (one Node process), 64-byte binary messages:');
    lines.push('');
    lines.push('| connections | in flight per connection | round trips/s |');
    lines.push('|---:|---:|---:|');
    for (const e of raw.uws) lines.push(`| ${e.connections} | ${e.window} | ${fmt(e.roundTripsPerSec)} |`);
  } else {
    lines.push(`${raw.uwsError ? 'uWS echo probe failed: ' + raw.uwsError : 'uWS echo probe not run (--no-raw).'}`);
  }
  lines.push('');
  return lines.join('\n');
}

const COLORS: Record<string, string> = { txkv: '#2b6cb0', etcd: '#38a169', redis: '#c53030', postgres: '#805ad5', [CLUSTER]: '#4fd1c5' };

/** Grouped bar chart: per workload, each system's throughput relative to the best system. */
export function renderSvg(date: string, workloads: string[], runs: SystemRun[]): string {
  const systems = runs.filter((r) => !r.skipped).map((r) => r.system);
  const barW = 22;
  const gap = 28;
  const groupW = systems.length * barW + gap;
  const left = 60;
  const top = 50;
  const h = 260;
  const width = left + workloads.length * groupW + 150;
  const height = top + h + 70;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  out.push(`<text x="${left}" y="20" font-size="14" font-weight="bold">Throughput relative to the best system per workload (${date}, same machine, same run)</text>`);
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    const y = top + h - t * h;
    out.push(`<line x1="${left}" x2="${left + workloads.length * groupW}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${y + 4}" text-anchor="end">${t.toFixed(2)}</text>`);
  }
  workloads.forEach((name, wi) => {
    const rows = runs.flatMap((r) => r.reports.filter((x) => x.workload === name));
    const best = Math.max(1, ...rows.map((r) => r.opsPerSec));
    const x0 = left + wi * groupW + gap / 2;
    systems.forEach((system, si) => {
      const r = rows.find((x) => x.system === system);
      const x = x0 + si * barW;
      if (!r) {
        out.push(`<text x="${x + barW / 2}" y="${top + h - 4}" text-anchor="middle" fill="#999">–</text>`);
        return;
      }
      const bh = Math.max(1, (r.opsPerSec / best) * h);
      out.push(`<rect x="${x}" y="${top + h - bh}" width="${barW - 3}" height="${bh}" fill="${COLORS[system] ?? '#666'}"><title>${system} ${name}: ${fmt(r.opsPerSec)} ${r.opUnit}/s, p99 ${fmtMs(r.p99Ms)} ms</title></rect>`);
      const v = r.opsPerSec;
      const label = v >= 1e6 ? `${(v / 1e6).toFixed(1)}M` : v >= 1e4 ? `${Math.round(v / 1e3)}k` : v >= 1e3 ? `${(v / 1e3).toFixed(1)}k` : String(v);
      out.push(`<text x="${x + (barW - 3) / 2}" y="${top + h - bh - 3}" text-anchor="middle" font-size="9">${label}</text>`);
    });
    out.push(`<text x="${x0 + (systems.length * barW) / 2}" y="${top + h + 16}" text-anchor="middle" font-weight="bold">${name}</text>`);
    const unit = workloadByName(name).opUnit;
    out.push(`<text x="${x0 + (systems.length * barW) / 2}" y="${top + h + 30}" text-anchor="middle" fill="#555">${unit}/s</text>`);
  });
  systems.forEach((system, si) => {
    const y = top + 10 + si * 18;
    const x = left + workloads.length * groupW + 20;
    out.push(`<rect x="${x}" y="${y - 9}" width="12" height="12" fill="${COLORS[system] ?? '#666'}"/>`);
    out.push(`<text x="${x + 18}" y="${y + 1}">${system}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** compare's flags (parseArgs); USAGE lists every one with its unit and default (a test checks). */
export const OPTIONS = {
  help: { type: 'boolean', short: 'h', default: false },
  systems: { type: 'string', default: ALL_SYSTEMS.join(',') },
  workloads: { type: 'string', default: WORKLOAD_NAMES.join(',') },
  seconds: { type: 'string', default: '10' },
  warmup: { type: 'string', default: '5' },
  rows: { type: 'string', default: '100000' },
  clients: { type: 'string', default: '100' },
  procs: { type: 'string', default: '1' },
  // the server's automatic count on this machine (one per core), as `txkv serve` would pick
  shards: { type: 'string', default: String(shardCount(0, null, 0, availableParallelism())) },
  seed: { type: 'string', default: '1' },
  'raw-seconds': { type: 'string', default: '2' },
  'no-raw': { type: 'boolean', default: false },
  'shard-sweep': { type: 'string', default: '' },
  'sweep-workloads': { type: 'string', default: 'w10,r10,m90' },
  'half-peak': { type: 'string', default: 'w10,m90' },
  'half-peak-seconds': { type: 'string' },
  'http-seconds': { type: 'string', default: '5' },
  verify: { type: 'boolean', default: false },
  out: { type: 'string' },
  date: { type: 'string' },
  'txkv-root': { type: 'string' },
  'gateway-threads': { type: 'string', default: '' },
  'failover-writers': { type: 'string', default: '50' },
  'txkv-keys': { type: 'string', default: 'even' },
  'txkv-distribution': { type: 'string', default: 'on' },
} as const;

const d = (name: keyof typeof OPTIONS): string => String((OPTIONS[name] as { default?: unknown }).default);

export const USAGE = `usage: node dist/bench/compare.js [options]

Runs the workloads on txkv and its peers one system after another on this machine (each system
started and stopped here), then writes <out>/<date>.md, .svg and .json. Numbers are counts,
times are seconds. See bench/README.md.

  --systems LIST           systems, in order (default ${d('systems')}); also txkv-cluster
                           (3 etcd members + 3 txkv nodes on loopback) and txkv@ (another
                           build, see --txkv-root)
  --workloads LIST         workloads (default ${d('workloads')})
  --seconds S              measured seconds per workload (default ${d('seconds')})
  --warmup S               warm-up seconds per workload, not counted (default ${d('warmup')})
  --rows N                 preloaded keyspace, rows (default ${d('rows')})
  --clients N              concurrent clients per workload (default ${d('clients')}; w1 always 1);
                           also the HTTP scenarios' connections
  --procs N                generator processes per system (default ${d('procs')}; 0: in this process)
  --shards N               txkv's shard count (default ${d('shards')}: the server's automatic
                           count on this machine, one per core)
  --seed N                 PRNG seed of the generator (default ${d('seed')})
  --verify                 check every value read against its key's checksum (default off)
  --half-peak LIST         workloads txkv runs again paced at half its measured peak
                           (default ${d('half-peak')}; '' to skip)
  --half-peak-seconds S    measured seconds of each half-peak run (default: --seconds)
  --http-seconds S         seconds per HTTP API scenario against txkv (default ${d('http-seconds')}; 0 to skip)
  --shard-sweep LIST       txkv shard counts to sweep after the main run, e.g. 1,2,4 (default
                           none)
  --sweep-workloads LIST   workloads of the shard sweep (default ${d('sweep-workloads')})
  --raw-seconds S          seconds per raw probe: RocksDB batched writes and reads, uWS echo
                           (default ${d('raw-seconds')})
  --no-raw                 skip the raw probes
  --failover-writers N     txkv-cluster: writers while the leader is killed
                           (default ${d('failover-writers')}; 0 to skip)
  --gateway-threads LIST   adds a system txkv/gwN (gatewayThreads = N) per N, e.g. 2,4
                           (default none)
  --txkv-root DIRS         other txkv checkouts (each with its dist/), comma-separated, run as
                           txkv@<rev>; each txkv@ in --systems places the next one
  --txkv-keys even|one-prefix
                           txkv's split points: even = one equal part of the bench keys per
                           shard; one-prefix = the server's defaults (default ${d('txkv-keys')})
  --txkv-distribution on|off
                           txkv's automatic splits and moves (default ${d('txkv-distribution')})
  --out DIR                where the results go (default bench/results/)
  --date NAME              the results files' name (default today's date, UTC)
  -h, --help               this text
`;

export async function runCompare(argv: string[]): Promise<number> {
  let a: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; strict: true; allowPositionals: false }>>['values'];
  try {
    ({ values: a } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    // a mistyped flag: one line, not a stack trace
    process.stderr.write(`compare: ${(err as Error).message} (--help lists the flags)\n`);
    return 1;
  }
  if (a.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const systems = (a.systems ?? '').split(',').map((s) => s.trim());
  const txkvRoots: Record<string, string> = {};
  for (const dir of (a['txkv-root'] ?? '').split(',').filter((x) => x.trim() !== '')) {
    // each `txkv@` in --systems places the next other build, in order; the rest run right after txkv
    const root = resolve(dir.trim());
    const label = `txkv@${revisionOf(root)}`;
    txkvRoots[label] = root;
    const at = systems.indexOf('txkv@');
    if (at >= 0) systems[at] = label;
    else systems.splice(systems.indexOf('txkv') + 1, 0, label);
  }
  // each N of --gateway-threads adds a txkv server with gatewayThreads = N right after txkv (0 = txkv itself)
  const gwAt = systems.indexOf('txkv') + 1;
  const gws = (a['gateway-threads'] ?? '').split(',').filter((x) => x.trim() !== '' && Number(x) > 0).map((x) => `txkv/gw${Number(x)}`);
  systems.splice(gwAt > 0 ? gwAt : systems.length, 0, ...gws);
  for (const s of systems) {
    if (GATEWAY_VARIANT.test(s)) continue;
    if (s.startsWith('txkv@') ? !txkvRoots[s] : !ALL_SYSTEMS.includes(s) && s !== CLUSTER) throw new Error(`unknown system '${s}' (${[...ALL_SYSTEMS, CLUSTER, 'txkv@ with --txkv-root DIR[,DIR...]'].join(', ')})`);
  }
  const workloads = (a.workloads ?? '').split(',').map((s) => s.trim());
  for (const w of workloads) workloadByName(w);
  if (a['txkv-keys'] !== 'even' && a['txkv-keys'] !== 'one-prefix') throw new Error(`--txkv-keys must be even or one-prefix, got '${a['txkv-keys']}'`);
  if (a['txkv-distribution'] !== 'on' && a['txkv-distribution'] !== 'off') throw new Error(`--txkv-distribution must be on or off, got '${a['txkv-distribution']}'`);
  const o: CompareOptions = {
    systems,
    workloads,
    seconds: Number(a.seconds),
    warmup: Number(a.warmup),
    rows: Number(a.rows),
    clients: Number(a.clients),
    procs: Number(a.procs),
    shards: Number(a.shards),
    seed: Number(a.seed),
    rawSeconds: Number(a['raw-seconds']),
    raw: !a['no-raw'],
    verify: a.verify ?? false,
    shardSweep: (a['shard-sweep'] ?? '').split(',').filter((x) => x.trim() !== '').map(Number),
    sweepWorkloads: (a['sweep-workloads'] ?? '').split(',').map((x) => x.trim()),
    httpSeconds: Number(a['http-seconds']),
    argv: argv.filter((x, i) => x !== '--out' && argv[i - 1] !== '--out'),
    txkvKeys: a['txkv-keys'] as CompareOptions['txkvKeys'],
    txkvDistribution: a['txkv-distribution'] === 'on',
    txkvRoots,
    failoverWriters: Number(a['failover-writers']),
    halfPeak: (a['half-peak'] ?? '').split(',').filter((x) => x.trim() !== '').map((x) => x.trim()),
    halfPeakSeconds: Number(a['half-peak-seconds'] ?? a.seconds),
    outDir: a.out ?? fileURLToPath(new URL('../../bench/results/', import.meta.url)),
  };
  txkvLayout = { keys: o.txkvKeys, distribution: o.txkvDistribution };
  const date = a.date ?? new Date().toISOString().slice(0, 10);
  const raw = o.raw ? await measureRaw(o) : {};
  const runs = await runInterleaved(o);
  const sweep: SweepRun[] = [];
  for (const shards of o.shardSweep) {
    const r = await runSystem('txkv', o, o.sweepWorkloads, shards);
    sweep.push({ shards, reports: r.reports, failures: r.skipped ? [{ workload: '*', message: r.skipped }] : r.failures });
  }
  mkdirSync(o.outDir, { recursive: true });
  const svgName = `${date}.svg`;
  writeFileSync(join(o.outDir, `${date}.md`), renderMarkdown(date, o, runs, raw, svgName, sweep));
  writeFileSync(join(o.outDir, svgName), renderSvg(date, workloads, runs));
  writeFileSync(join(o.outDir, `${date}.json`), JSON.stringify({ date, options: o, runs, sweep, raw }, null, 2) + '\n');
  log(`wrote ${join(o.outDir, `${date}.md`)}, ${svgName}, ${date}.json`);
  return runs.some((r) => r.failures.length > 0) || sweep.some((r) => r.failures.length > 0) ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runCompare(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`compare: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
