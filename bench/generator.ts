// Load generator core: N concurrent client loops for a fixed time against one adapter,
// transaction latency in an HDR histogram, counts of ops, conflicts, retries and errors by
// code, a progress line every second, and a final report. Runs in the CLI process
// (procs = 0) or in forked generator processes (worker.ts) whose histograms are merged here.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';
import { classifyError, type Adapter, type AdapterSpec, type BenchSession } from './adapter.js';
import { Rng } from './rng.js';
import { threadRunQueueWaitNs } from './proc-cpu.js';
import type { Workload } from './workloads/workload.js';

/** Latencies are recorded in microseconds, up to 60 s (longer ones are clamped). */
const MAX_LATENCY_US = 60_000_000;
/** A transaction that still conflicts after this many retries counts as an error. */
export const MAX_RETRIES = 100;
/** How long after the window the generator waits for in-flight transactions (then: HUNG). */
const HANG_GRACE_MS = 30_000;

export function newHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: MAX_LATENCY_US, numberOfSignificantValueDigits: 3 });
}

export interface LoadOptions {
  workload: Workload;
  /** Total client loops (split across processes). */
  clients: number;
  seconds: number;
  /** Seconds run before measuring starts (transactions completing then count nowhere). */
  warmupSeconds: number;
  rows: number;
  seed: number;
  verify: boolean;
  /** Generator processes: 0 = run inside this process. */
  procs: number;
  /** Progress line on stderr every second. */
  progress: boolean;
  /** Label of the progress line. */
  label: string;
  /** Target transactions per second over all clients (paced, open loop); undefined = unpaced. */
  ratePerSec?: number | undefined;
}

/** Counters of one generator process; merged across processes. Histograms travel encoded. */
export interface RawResult {
  measuredMs: number;
  txns: number;
  ops: number;
  conflicts: number;
  retries: number;
  /** Final failures by code (transaction given up). */
  errors: Record<string, number>;
  /** Retried failures by code (CONFLICT included). */
  retriedErrors: Record<string, number>;
  /** Outcomes by `op:outcome` (meta: `create:exists`, …). */
  outcomes: Record<string, number>;
  /** The first few error messages, to say what went wrong. */
  errorSamples: string[];
  hist: string;
  byOp: Record<string, { txns: number; hist: string }>;
  /**
   * The generator process's own state over the measured window: its event loop's delay
   * beyond the 5 ms sampling interval (p99 and max, ms) and its CPU (% of one core).
   * A transaction waiting for the generator's loop counts in its latency (client side).
   * Paced runs also split each transaction's wait before it starts (start minus intended
   * start): `behindP99Ms`, the wait for its client's previous transactions still in flight at
   * their own durations (the system's queueing as a client sees it, which a server-side
   * histogram never sees: the request is not sent yet), and `lateP99Ms`/`lateMaxMs`, the rest:
   * the generator's own lateness (its loop or CPU was busy), now or on an earlier transaction
   * of the client. A transaction's duration includes any delay of the generator's loop while
   * it was in flight; that cannot be told apart from the client's side.
   */
  generator?: GeneratorState;
}

export interface GeneratorState {
  loopLagP99Ms: number;
  loopLagMaxMs: number;
  cpuPct: number;
  lateP99Ms?: number;
  lateMaxMs?: number;
  behindP99Ms?: number;
  /** Share of the window the generator's thread was runnable but waiting for a CPU (%; Linux). */
  runQueueWaitPct?: number;
}

export interface OpStats {
  txns: number;
  txPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface BenchReport {
  system: string;
  workload: string;
  durability: string;
  clients: number;
  procs: number;
  rows: number;
  seconds: number;
  txPerSec: number;
  opsPerSec: number;
  opUnit: string;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  txns: number;
  ops: number;
  conflicts: number;
  retries: number;
  errors: Record<string, number>;
  retriedErrors: Record<string, number>;
  outcomes?: Record<string, number>;
  byOp?: Record<string, OpStats>;
  errorSamples?: string[];
  /** The generator processes over the window: the worst event-loop delay (ms), their CPU in total (% of one core), paced runs' schedule (RawResult.generator). */
  generator?: GeneratorState;
}

interface Live {
  txns: number;
  ops: number;
  conflicts: number;
  errors: number;
  hist: Histogram;
}

function bump(m: Record<string, number>, k: string, by = 1): void {
  m[k] = (m[k] ?? 0) + by;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<undefined>((res) => (t = setTimeout(() => res(undefined), ms)))]).finally(() => clearTimeout(t));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Runs `clients` client loops of `workload` in this process, clients numbered from
 * `clientOffset`. `onTick` receives live counters every second.
 */
export async function runClients(
  adapter: Adapter,
  o: {
    workload: Workload;
    clients: number;
    clientOffset: number;
    seconds: number;
    warmupSeconds: number;
    rows: number;
    seed: number;
    verify: boolean;
    /** Transactions per second for these clients together (paced); undefined = as fast as they go. */
    ratePerSec?: number | undefined;
  },
  onTick?: (live: Live, elapsedMs: number) => void,
): Promise<RawResult> {
  const sessions: BenchSession[] = [];
  for (let i = 0; i < o.clients; i++) sessions.push(await adapter.session(o.clientOffset + i));

  const hist = newHistogram();
  const byOp = new Map<string, { txns: number; hist: Histogram }>();
  const raw: Omit<RawResult, 'hist' | 'byOp' | 'measuredMs'> = {
    txns: 0,
    ops: 0,
    conflicts: 0,
    retries: 0,
    errors: {},
    retriedErrors: {},
    outcomes: {},
    errorSamples: [],
  };
  let errorCount = 0;
  const live: Live = { txns: 0, ops: 0, conflicts: 0, errors: 0, hist };

  const startedAt = performance.now();
  const measureFrom = startedAt + o.warmupSeconds * 1000;
  const stopAt = measureFrom + o.seconds * 1000;
  const baseRng = new Rng(o.seed);

  // the generator's own event-loop delay and CPU over the measured window
  const LAG_RESOLUTION_MS = 5;
  const lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
  lag.enable();
  let cpuFrom = process.cpuUsage();
  let waitFrom = threadRunQueueWaitNs();
  const lagReset = setTimeout(() => {
    lag.reset();
    cpuFrom = process.cpuUsage();
    waitFrom = threadRunQueueWaitNs();
  }, Math.max(0, measureFrom - performance.now()));
  let generatorState: RawResult['generator'];
  // paced runs: how late each measured transaction started, split by cause (RawResult.generator)
  const lateHist = o.ratePerSec ? newHistogram() : null;
  const behindHist = o.ratePerSec ? newHistogram() : null;
  const captureState = (): void => {
    const c = process.cpuUsage(cpuFrom);
    generatorState = {
      loopLagP99Ms: Math.round(Math.max(0, lag.percentile(99) / 1e6 - LAG_RESOLUTION_MS) * 100) / 100,
      loopLagMaxMs: Math.round(Math.max(0, lag.max / 1e6 - LAG_RESOLUTION_MS) * 100) / 100,
      cpuPct: Math.round(((c.user + c.system) / 1000 / (stopAt - measureFrom)) * 1000) / 10,
    };
    const waitTo = threadRunQueueWaitNs();
    if (waitFrom !== null && waitTo !== null) generatorState.runQueueWaitPct = Math.round(((waitTo - waitFrom) / 1e6 / (stopAt - measureFrom)) * 1000) / 10;
    lag.disable();
  };
  const lagEnd = setTimeout(captureState, Math.max(0, stopAt - performance.now()));
  const ticker = onTick
    ? setInterval(() => {
        live.txns = raw.txns;
        live.ops = raw.ops;
        live.conflicts = raw.conflicts;
        live.errors = errorCount;
        onTick(live, performance.now() - measureFrom);
      }, 1000)
    : undefined;

  const loop = async (clientIndex: number): Promise<void> => {
    const clientId = o.clientOffset + clientIndex;
    const rng = baseRng.fork(clientId);
    const session = sessions[clientIndex] as BenchSession;
    const client = o.workload.client({ rows: o.rows, seed: o.seed, clientId, rng, verify: o.verify });
    // Paced runs: each client starts its k-th transaction at start + phase + k * interval and,
    // when late, at once. Latency counts from the intended start (no coordinated omission),
    // or from the actual start when a timer fired early: Node schedules a timer from the
    // loop's cached clock, so it can fire up to ~1 ms before the time asked for, and counting
    // from the intended start would then leave that part of the transaction out.
    const interval = o.ratePerSec ? (o.clients / o.ratePerSec) * 1000 : 0;
    let intended = startedAt + (interval > 0 ? rng.float() * interval : 0);
    // when this client would have been free to start had the generator never been late: each
    // transaction from the later of its intended start and this, for as long as it took
    let freeAt = 0;
    while (performance.now() < stopAt) {
      if (interval > 0) {
        const wait = intended - performance.now();
        if (wait > 0) await sleep(wait);
        if (intended >= stopAt) break;
      }
      const started = performance.now();
      const plan = client.next();
      const t0 = interval > 0 ? Math.min(intended, started) : performance.now();
      // why it started after its intended time: behind its client's previous transactions (their
      // durations), or the generator's own lateness (its loop or CPU busy, now or earlier)
      const behindMs = interval > 0 ? Math.max(0, freeAt - intended) : 0;
      const lateMs = interval > 0 ? Math.max(0, started - intended - behindMs) : 0;
      const thisIntended = intended;
      intended += interval;
      let ops = 0;
      let ok = false;
      let conflicts = 0;
      let retries = 0;
      for (let attempt = 0; ; attempt++) {
        try {
          plan.outcome = undefined;
          ops = await session.attempt(plan.shape, (tx) => plan.run(tx));
          ok = true;
          break;
        } catch (err) {
          const e = classifyError(err);
          const now = performance.now();
          const measuring = now >= measureFrom && now <= stopAt;
          if (e.retryable && attempt < MAX_RETRIES) {
            retries++;
            if (e.code === 'CONFLICT') conflicts++;
            if (measuring) bump(raw.retriedErrors, e.code);
            // Back off after the first retry (jittered, capped), so hot keys do not livelock.
            if (attempt > 0) await sleep(rng.float() * Math.min(2 ** attempt, 64));
            continue;
          }
          if (measuring) {
            bump(raw.errors, e.retryable ? 'RETRY_LIMIT' : e.code);
            errorCount++;
            if (raw.errorSamples.length < 5) raw.errorSamples.push(`${e.code}: ${e.message}`);
          }
          // Do not spin on a broken system.
          await sleep(10);
          break;
        }
      }
      const t1 = performance.now();
      freeAt = Math.max(thisIntended, freeAt) + (t1 - started);
      // A transaction counts where it completes: inside [measureFrom, stopAt] (whenever it
      // began), so long transactions straddling the warm-up are not lost, and the tail that
      // completes after the window (clients stop starting at stopAt) is not counted.
      if (t1 < measureFrom || t1 > stopAt) continue;
      raw.conflicts += conflicts;
      raw.retries += retries;
      if (!ok) continue;
      const us = Math.min(MAX_LATENCY_US, Math.max(1, Math.round((t1 - t0) * 1000)));
      hist.recordValue(us);
      lateHist?.recordValue(Math.min(MAX_LATENCY_US, Math.max(1, Math.round(lateMs * 1000))));
      behindHist?.recordValue(Math.min(MAX_LATENCY_US, Math.max(1, Math.round(behindMs * 1000))));
      raw.txns++;
      raw.ops += ops;
      if (plan.outcome !== undefined) bump(raw.outcomes, `${plan.op}:${plan.outcome}`);
      let h = byOp.get(plan.op);
      if (h === undefined) byOp.set(plan.op, (h = { txns: 0, hist: newHistogram() }));
      h.txns++;
      h.hist.recordValue(us);
    }
  };

  // Bounded: a system that never answers must not hang the run. Clients still waiting
  // HANG_GRACE_MS after the window are counted as HUNG and left behind.
  const done = sessions.map(() => false);
  let graceTimer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.all(sessions.map((_, i) => loop(i).finally(() => (done[i] = true)))),
      new Promise<void>((res) => {
        graceTimer = setTimeout(res, Math.max(0, stopAt - performance.now()) + HANG_GRACE_MS);
      }),
    ]);
  } finally {
    if (graceTimer) clearTimeout(graceTimer);
    if (ticker) clearInterval(ticker);
    clearTimeout(lagReset);
    clearTimeout(lagEnd);
    // the clients can all finish within the millisecond before the timer: take the state now
    if (generatorState === undefined && performance.now() >= stopAt) captureState();
    lag.disable();
    const hung = done.filter((d) => !d).length;
    if (hung > 0) {
      bump(raw.errors, 'HUNG', hung);
      raw.errorSamples.push(`HUNG: ${hung} client(s) still waiting for a transaction ${HANG_GRACE_MS / 1000} s after the run`);
    }
    await Promise.all(sessions.map((s, i) => (done[i] ? withTimeout(s.close(), 5000) : Promise.resolve()).catch(() => undefined)));
  }
  if (generatorState && lateHist && behindHist && lateHist.totalCount > 0) {
    generatorState.lateP99Ms = ms(lateHist.getValueAtPercentile(99));
    generatorState.lateMaxMs = ms(lateHist.maxValue);
    generatorState.behindP99Ms = ms(behindHist.getValueAtPercentile(99));
  }
  lateHist?.destroy();
  behindHist?.destroy();
  const measuredMs = o.seconds * 1000;
  const out: RawResult = {
    ...raw,
    measuredMs,
    hist: encodeIntoCompressedBase64(hist),
    byOp: Object.fromEntries([...byOp].map(([op, v]) => [op, { txns: v.txns, hist: encodeIntoCompressedBase64(v.hist) }])),
    ...(generatorState ? { generator: generatorState } : {}),
  };
  hist.destroy();
  for (const v of byOp.values()) v.hist.destroy();
  return out;
}

function mergeCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) bump(into, k, v);
}

/** Merges the results of several generator processes (same workload, same time window). */
export function mergeRaw(parts: RawResult[]): RawResult {
  const hist = newHistogram();
  const byOp = new Map<string, { txns: number; hist: Histogram }>();
  const out: RawResult = {
    measuredMs: 0,
    txns: 0,
    ops: 0,
    conflicts: 0,
    retries: 0,
    errors: {},
    retriedErrors: {},
    outcomes: {},
    errorSamples: [],
    hist: '',
    byOp: {},
  };
  for (const p of parts) {
    out.measuredMs = Math.max(out.measuredMs, p.measuredMs);
    out.txns += p.txns;
    out.ops += p.ops;
    out.conflicts += p.conflicts;
    out.retries += p.retries;
    mergeCounts(out.errors, p.errors);
    mergeCounts(out.retriedErrors, p.retriedErrors);
    mergeCounts(out.outcomes, p.outcomes);
    out.errorSamples.push(...p.errorSamples.slice(0, 5 - out.errorSamples.length));
    if (p.generator) {
      const g = (out.generator ??= { loopLagP99Ms: 0, loopLagMaxMs: 0, cpuPct: 0 });
      g.loopLagP99Ms = Math.max(g.loopLagP99Ms, p.generator.loopLagP99Ms);
      g.loopLagMaxMs = Math.max(g.loopLagMaxMs, p.generator.loopLagMaxMs);
      g.cpuPct = Math.round((g.cpuPct + p.generator.cpuPct) * 10) / 10;
      // the worst process's (each process's clients share its loop)
      for (const k of ['lateP99Ms', 'lateMaxMs', 'behindP99Ms', 'runQueueWaitPct'] as const) {
        const v = p.generator[k];
        if (v !== undefined) g[k] = Math.max(g[k] ?? 0, v);
      }
    }
    hist.add(decodeFromCompressedBase64(p.hist));
    for (const [op, v] of Object.entries(p.byOp)) {
      let h = byOp.get(op);
      if (h === undefined) byOp.set(op, (h = { txns: 0, hist: newHistogram() }));
      h.txns += v.txns;
      h.hist.add(decodeFromCompressedBase64(v.hist));
    }
  }
  out.hist = encodeIntoCompressedBase64(hist);
  out.byOp = Object.fromEntries([...byOp].map(([op, v]) => [op, { txns: v.txns, hist: encodeIntoCompressedBase64(v.hist) }]));
  return out;
}

const ms = (us: number): number => Math.round(us) / 1000;

export function summarize(
  raw: RawResult,
  o: { system: string; durability: string; workload: Workload; clients: number; procs: number; rows: number },
): BenchReport {
  const hist = decodeFromCompressedBase64(raw.hist);
  const seconds = raw.measuredMs / 1000;
  const report: BenchReport = {
    system: o.system,
    workload: o.workload.name,
    durability: o.durability,
    clients: o.clients,
    procs: o.procs,
    rows: o.rows,
    seconds: Math.round(seconds * 100) / 100,
    txPerSec: Math.round(raw.txns / seconds),
    opsPerSec: Math.round(raw.ops / seconds),
    opUnit: o.workload.opUnit,
    p50Ms: ms(hist.getValueAtPercentile(50)),
    p95Ms: ms(hist.getValueAtPercentile(95)),
    p99Ms: ms(hist.getValueAtPercentile(99)),
    maxMs: ms(hist.maxValue),
    txns: raw.txns,
    ops: raw.ops,
    conflicts: raw.conflicts,
    retries: raw.retries,
    errors: raw.errors,
    retriedErrors: raw.retriedErrors,
  };
  if (Object.keys(raw.outcomes).length > 0) report.outcomes = raw.outcomes;
  if (raw.generator) report.generator = raw.generator;
  if (Object.keys(raw.byOp).length > 1) {
    report.byOp = {};
    for (const [op, v] of Object.entries(raw.byOp)) {
      const h = decodeFromCompressedBase64(v.hist);
      report.byOp[op] = {
        txns: v.txns,
        txPerSec: Math.round(v.txns / seconds),
        p50Ms: ms(h.getValueAtPercentile(50)),
        p99Ms: ms(h.getValueAtPercentile(99)),
        maxMs: ms(h.maxValue),
      };
    }
  }
  if (raw.errorSamples.length > 0) report.errorSamples = raw.errorSamples;
  return report;
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function progressLine(label: string, elapsedMs: number, txns: number, ops: number, conflicts: number, errors: number, hist: Histogram): string {
  const s = Math.max(0.001, elapsedMs / 1000);
  const phase = elapsedMs < 0 ? 'warmup' : `${s.toFixed(0)}s`;
  return (
    `[${label}] ${phase}  ${fmtInt(ops / s)} ops/s  ${fmtInt(txns / s)} tx/s  ` +
    `p50 ${ms(hist.getValueAtPercentile(50)).toFixed(2)} ms  p99 ${ms(hist.getValueAtPercentile(99)).toFixed(2)} ms  ` +
    `conflicts ${conflicts}  errors ${errors}`
  );
}

function writeProgress(line: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${line}`);
  else process.stderr.write(line + '\n');
}

/** Message protocol between generator.ts and worker.ts (over the fork IPC channel). */
export type WorkerRequest = {
  type: 'run';
  spec: AdapterSpec;
  workload: string;
  clients: number;
  clientOffset: number;
  seconds: number;
  warmupSeconds: number;
  rows: number;
  seed: number;
  verify: boolean;
  ratePerSec?: number | undefined;
};
export type WorkerMessage =
  | { type: 'tick'; txns: number; ops: number; conflicts: number; errors: number; hist: string; elapsedMs: number }
  | { type: 'done'; raw: RawResult }
  | { type: 'failed'; message: string };

/**
 * Runs a workload against one system and returns the merged raw result. With procs = 0 the
 * clients run in this process on `adapter`; otherwise `procs` forked worker processes each
 * open their own adapter from `spec` and run a share of the clients.
 */
export async function runLoad(o: LoadOptions, target: { adapter?: Adapter; spec?: AdapterSpec }): Promise<RawResult> {
  if (o.procs <= 0) {
    if (!target.adapter) throw new Error('runLoad: in-process run needs an adapter');
    return runClients(
      target.adapter,
      { ...o, clientOffset: 0 },
      o.progress ? (live, t) => writeProgress(progressLine(o.label, t, live.txns, live.ops, live.conflicts, live.errors, live.hist)) : undefined,
    ).finally(() => {
      if (o.progress && process.stderr.isTTY) process.stderr.write('\n');
    });
  }
  if (!target.spec) throw new Error('runLoad: forked run needs an adapter spec');
  const spec = target.spec;
  const workerPath = fileURLToPath(new URL('./worker.js', import.meta.url));
  const procs = Math.min(o.procs, o.clients);
  const ticks: ({ txns: number; ops: number; conflicts: number; errors: number; hist: string; elapsedMs: number } | undefined)[] = [];
  let offset = 0;
  const runs: Promise<RawResult>[] = [];
  for (let p = 0; p < procs; p++) {
    const clients = Math.floor(o.clients / procs) + (p < o.clients % procs ? 1 : 0);
    const req: WorkerRequest = {
      type: 'run',
      spec,
      workload: o.workload.name,
      clients,
      clientOffset: offset,
      seconds: o.seconds,
      warmupSeconds: o.warmupSeconds,
      rows: o.rows,
      seed: o.seed,
      verify: o.verify,
      ratePerSec: o.ratePerSec ? (o.ratePerSec * clients) / o.clients : undefined,
    };
    offset += clients;
    runs.push(
      new Promise<RawResult>((resolve, reject) => {
        const child = fork(workerPath, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        let settled = false;
        child.on('message', (m: WorkerMessage) => {
          if (m.type === 'tick') ticks[p] = m;
          else if (m.type === 'done') {
            settled = true;
            resolve(m.raw);
            child.disconnect();
          } else if (m.type === 'failed') {
            settled = true;
            reject(new Error(`generator process ${p}: ${m.message}`));
            child.kill();
          }
        });
        child.on('exit', (code, signal) => {
          if (!settled) reject(new Error(`generator process ${p} exited (${code ?? signal}) before reporting`));
        });
        child.send(req);
      }),
    );
  }
  const ticker = o.progress
    ? setInterval(() => {
        const got = ticks.filter((t) => t !== undefined);
        if (got.length === 0) return;
        const h = newHistogram();
        let txns = 0;
        let ops = 0;
        let conflicts = 0;
        let errors = 0;
        let elapsedMs = 0;
        for (const t of got) {
          txns += t.txns;
          ops += t.ops;
          conflicts += t.conflicts;
          errors += t.errors;
          elapsedMs = Math.max(elapsedMs, t.elapsedMs);
          h.add(decodeFromCompressedBase64(t.hist));
        }
        writeProgress(progressLine(o.label, elapsedMs, txns, ops, conflicts, errors, h));
        h.destroy();
      }, 1000)
    : undefined;
  try {
    return mergeRaw(await Promise.all(runs));
  } finally {
    if (ticker) clearInterval(ticker);
    if (o.progress && process.stderr.isTTY) process.stderr.write('\n');
  }
}

/** Human-readable table of reports (one row each). */
export function formatTable(reports: BenchReport[]): string {
  const head = ['system', 'workload', 'clients', 'tx/s', 'ops/s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'conflicts', 'retries', 'errors'];
  const rows = reports.map((r) => [
    r.system,
    r.workload,
    String(r.clients),
    fmtInt(r.txPerSec),
    `${fmtInt(r.opsPerSec)} ${r.opUnit}`,
    r.p50Ms.toFixed(2),
    r.p95Ms.toFixed(2),
    r.p99Ms.toFixed(2),
    r.maxMs.toFixed(2),
    String(r.conflicts),
    String(r.retries),
    Object.entries(r.errors)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ') || '0',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  const out = [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
  for (const r of reports) {
    if (r.byOp) {
      out.push('', `${r.system} ${r.workload} by operation:`);
      for (const [op, s] of Object.entries(r.byOp)) {
        out.push(`  ${op.padEnd(8)} ${fmtInt(s.txPerSec).padStart(9)} ops/s  p50 ${s.p50Ms.toFixed(2)} ms  p99 ${s.p99Ms.toFixed(2)} ms  max ${s.maxMs.toFixed(2)} ms`);
      }
    }
    if (r.outcomes) out.push(`  outcomes: ${Object.entries(r.outcomes).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    if (r.errorSamples) out.push(`  first errors: ${r.errorSamples.join(' | ')}`);
  }
  return out.join('\n');
}
