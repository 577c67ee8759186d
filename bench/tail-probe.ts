// Where latency at half of peak goes: one txkv server (its own process, as in compare.js),
// w10 or m90 at full speed for the peak, then paced at half of it while /v1/metrics.json is
// read every second (server commit latency, main-thread event-loop lag, WAL write time,
// shard utilisation, distribution events). Session tool for issue 12's half-peak target.
//   node dist/bench/tail-probe.js --workload w10 [--distribution off] [--root DIR] [--seconds 8]
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { AdapterSpec } from './adapter.js';
import { createAdapter } from './adapters/index.js';
import { benchSplitPoints } from './data.js';
import { nodeFlags, startTxkv } from './peers.js';
import { processCpuMicros, runQueueWaitNs } from './proc-cpu.js';
import { readCommitBuckets, serverLatency, type CommitBuckets } from './server-latency.js';
import { runSuite } from './suite.js';
import { workloadByName } from './workloads/index.js';

const a = parseArgs({
  options: {
    workload: { type: 'string', default: 'w10' },
    distribution: { type: 'string', default: 'on' },
    root: { type: 'string' },
    seconds: { type: 'string', default: '8' },
    shards: { type: 'string', default: '2' },
    rate: { type: 'string' },
    procs: { type: 'string', default: '1' },
    /** The server's stdout and stderr to this file (with NODE_OPTIONS=--trace-gc: every thread's GC). */
    'server-log': { type: 'string' },
  },
}).values;

const rows = 100_000;
const shards = Number(a.shards);
const peer = a['server-log'] ? await startLogged(a['server-log']) : await (async () => {
  const started = await startTxkv(shards, benchSplitPoints(rows, shards), a.root, 'txkv', { enabled: a.distribution !== 'off' });
  if (!started.ok) throw new Error(started.reason);
  return started.peer;
})();

/** The server as startTxkv starts it, its output to `file`. */
async function startLogged(file: string): Promise<{ spec: AdapterSpec; stop(): Promise<void>; mark?(): void; pids(): number[] }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'txkv-probe-'));
  const fd = openSync(file, 'w');
  const child = fork(fileURLToPath(new URL('./serve-txkv.js', import.meta.url)), [], { stdio: ['ignore', fd, fd, 'ipc'], execArgv: [...(await nodeFlags(a.root)), ...(process.env.TAIL_EXEC_ARGV ? process.env.TAIL_EXEC_ARGV.split(' ').filter((x) => x !== '') : [])] });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', (m: { url: string }) => resolve(m.url));
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
    child.send({ dataDir, shards, splitPoints: benchSplitPoints(rows, shards), ...(a.root ? { root: a.root } : {}), distribution: { enabled: a.distribution !== 'off' } });
  });
  return {
    spec: { system: 'txkv', endpoint: url },
    pids: () => (child.pid && child.exitCode === null ? [child.pid] : []),
    /** The paced window begins (serve-txkv.ts starts its heap sampling, TAIL_HEAP_PROFILE). */
    mark() {
      child.send('heap-start');
    },
    async stop() {
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.send('close');
      });
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
const endpoint = (peer.spec as { endpoint: string }).endpoint;
const http = endpoint.replace(/^ws/, 'http');
const workload = workloadByName(a.workload!);
const common = { workload, clients: 100, warmupSeconds: 1, rows, seed: 1, verify: false, procs: Number(a.procs), progress: false };
try {
  let rate = a.rate ? Number(a.rate) : 0;
  const peak = await runSuite(await createAdapter(peer.spec), peer.spec, { ...common, seconds: 5, load: true });
  if (!rate) rate = Math.round(peak.txPerSec / 2);
  console.log(`${new Date().toISOString()} peak ${Math.round(peak.txPerSec)} tx/s p50 ${peak.p50Ms} p99 ${peak.p99Ms}; pacing at ${rate}`);
  const status0 = (await (await fetch(http + '/v1/status')).json()) as { distribution?: { splits: number; moves: number; merges: number } };
  const t0 = Date.now();
  if ('mark' in peer && typeof peer.mark === 'function') (peer.mark as () => void)();
  // TAIL_DURING: a command run 3 s into the paced window (e.g. perf sched record -a -- sleep 4)
  const during = process.env.TAIL_DURING;
  const duringTimer = during ? setTimeout(() => spawn(during, { shell: true, stdio: 'inherit' }), 3000) : null;
  // the measured window as compare.js takes it (after the warm-up second): the server's commit
  // histogram, its CPU and its threads' run-queue wait over the window
  const pids = (): number[] => ('pids' in peer && typeof peer.pids === 'function' ? (peer.pids as () => number[])() : []);
  interface Sample {
    buckets: Promise<CommitBuckets | null>;
    cpu: number;
    wait: number;
    at: number;
  }
  const w: { start?: Sample; end?: Sample } = {};
  const timers: NodeJS.Timeout[] = [];
  const onLoadStart = (): void => {
    const sample = (): Sample => ({ buckets: readCommitBuckets(http), cpu: processCpuMicros(pids()), wait: runQueueWaitNs(pids()).allNs, at: performance.now() });
    timers.push(setTimeout(() => (w.start = sample()), common.warmupSeconds * 1000));
    timers.push(setTimeout(() => (w.end = sample()), (common.warmupSeconds + Number(a.seconds)) * 1000));
  };
  const half = await runSuite(await createAdapter(peer.spec), peer.spec, { ...common, seconds: Number(a.seconds), load: false, ratePerSec: rate, onLoadStart });
  for (const t of timers) clearTimeout(t);
  if (duringTimer) clearTimeout(duringTimer);
  if (w.start && w.end) {
    const [x, y] = [w.start, w.end];
    const [b0, b1] = await Promise.all([x.buckets, y.buckets]);
    const lat = b0 && b1 ? await serverLatency(http, b0, b1) : null;
    const wallMs = y.at - x.at;
    const cpuPct = pids().length ? Math.round(((y.cpu - x.cpu) / 1000 / wallMs) * 1000) / 10 : null;
    const perCommit = lat && lat.commits > 0 ? Math.round((y.cpu - x.cpu) / lat.commits) : null;
    const waitPct = Math.round(((y.wait - x.wait) / 1e6 / wallMs) * 1000) / 10;
    console.log(
      `window: server p50 ${lat?.p50Ms} p99 ${lat?.p99Ms} ms, <= 5 ms ${lat?.within5Ms === null || !lat ? '?' : (lat.within5Ms * 100).toFixed(1)} %, ${lat?.commits} commits; server CPU ${cpuPct ?? '?'} % of a core (${perCommit ?? '?'} us/commit), run-queue wait ${pids().length ? waitPct : '?'} % (all threads)`,
    );
  }
  const series = (await (await fetch(http + '/v1/metrics.json')).json()) as { points: Record<string, unknown>[] };
  const status1 = (await (await fetch(http + '/v1/status')).json()) as { distribution?: { splits: number; moves: number; merges: number } };
  console.log(`half: ${Math.round(half.txPerSec * Number(a.seconds))} commits in ${a.seconds} s, ${Math.round(half.txPerSec)} tx/s p50 ${half.p50Ms} p95 ${half.p95Ms} p99 ${half.p99Ms} max ${half.maxMs}`);
  console.log(`distribution before ${JSON.stringify(status0.distribution && { s: status0.distribution.splits, m: status0.distribution.moves, g: status0.distribution.merges })} after ${JSON.stringify(status1.distribution && { s: status1.distribution.splits, m: status1.distribution.moves, g: status1.distribution.merges })}`);
  const hist = (status1 as { distribution?: { history?: { kind: string; reason: string; detail?: string; at: string; ms: number }[] } }).distribution?.history ?? [];
  for (const e of hist) console.log(`  ${e.at} ${e.kind} ${e.ms} ms ${e.reason}: ${e.detail ?? ''}`);
  for (const p of series.points) {
    if ((p.t as number) < t0) continue;
    const c = p.commitLatencyMs as { p50: number; p99: number };
    console.log(
      `  commits/s ${p.committedPerSec} srv p50 ${c.p50} p99 ${c.p99} | loop p99 ${p.eventLoopLagP99Ms} max ${p.eventLoopLagMaxMs} | wal ${p.walWriteMs} ms ${p.walWritesPerSec}/s fsync ${p.fsyncsPerSec}/s | shard util ${JSON.stringify(p.shardUtilization)} cpu ${p.cpuPercent}% rss ${Math.round((p.rssBytes as number) / 1e6)} MB main heap ${Math.round((p.heapUsedBytes as number) / 1e6)} MB`,
    );
  }
} finally {
  await peer.stop();
}
