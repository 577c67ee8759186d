// Runs one workload against one system end to end: open, preload (optional), load, report.
// Shared by cli.ts, compare.ts and the smoke test. Main thread of the calling process.

import type { Adapter, AdapterSpec } from './adapter.js';
import type { ServerLatency } from './server-latency.js';
import { runLoad, summarize, type BenchReport } from './generator.js';
import { checkMetaNamespace, type MetaCheck } from './workloads/meta.js';
import type { Workload } from './workloads/workload.js';

export interface SuiteOptions {
  workload: Workload;
  clients?: number;
  seconds: number;
  warmupSeconds: number;
  rows: number;
  seed: number;
  verify: boolean;
  procs: number;
  progress: boolean;
  /** Preload the workload's keyspace first. */
  load: boolean;
  /** Target transactions per second (paced); undefined = as fast as the clients go. */
  ratePerSec?: number | undefined;
  /** Called after the preload, just before the clients start (warm-up, then the measured window). */
  onLoadStart?: () => void | Promise<void>;
  /** Called when the clients stopped (compare.ts: per-thread CPU samples around the load). */
  onLoadEnd?: () => Promise<void>;
}

/** CPU by thread of the server during the load (warm-up included), in % of one core; generator: this process. */
export interface ThreadCpuReport {
  threads: { name: string; pct: number }[];
  /** All of the server process's threads (RocksDB's and libuv's included). */
  serverPct: number;
  generatorPct: number;
}

export type SuiteReport = BenchReport & {
  loadSeconds?: number;
  metaCheck?: MetaCheck;
  targetTxPerSec?: number;
  /** CPU of the system's server processes over the measured window per operation (µs; compare.ts). */
  serverCpuUsPerOp?: number;
  /** txkv: the range map and each worker's share of reads and writes at the end of the workload (/v1/status, compare.ts). */
  txkvDistribution?: { ranges: number; splits: number; moves: number; merges: number; workerShares: number[] };
  /** Which setting of the system this run measured (compare.ts --gateway-threads). */
  variant?: string;
  threadCpu?: ThreadCpuReport;
  /** txkv: the server's own commit latency and main-thread event-loop lag over the measured window (compare.ts, bench/server-latency.ts). */
  serverLatency?: ServerLatency;
  /** The server's threads runnable but waiting for a CPU over the window: its main thread (% of the window) and all its threads together (threads waiting, on average). */
  serverRunQueue?: { mainPct: number; allThreads: number };
};

function logLine(progress: boolean, line: string): void {
  if (progress) process.stderr.write(line + '\n');
}

export async function runSuite(adapter: Adapter, spec: AdapterSpec | undefined, o: SuiteOptions): Promise<SuiteReport> {
  const clients = o.clients ?? o.workload.defaultClients;
  await adapter.open({ ordered: o.workload.ordered, ...(o.workload.rangeGroupBytes !== undefined ? { rangeGroupBytes: o.workload.rangeGroupBytes } : {}) });
  try {
    let loadSeconds: number | undefined;
    if (o.load) {
      const t0 = performance.now();
      let last = t0;
      await adapter.load(o.workload.preload({ rows: o.rows, seed: o.seed }), (rows) => {
        const now = performance.now();
        if (now - last >= 1000) {
          last = now;
          logLine(o.progress, `[${adapter.system} preload ${o.workload.keyspace}] ${rows.toLocaleString('en-US')} rows`);
        }
      });
      loadSeconds = Math.round((performance.now() - t0) / 10) / 100;
      logLine(o.progress, `[${adapter.system} preload ${o.workload.keyspace}] done in ${loadSeconds} s`);
    }
    await o.onLoadStart?.();
    const raw = await runLoad(
      {
        workload: o.workload,
        clients,
        seconds: o.seconds,
        warmupSeconds: o.warmupSeconds,
        rows: o.rows,
        seed: o.seed,
        verify: o.verify,
        procs: o.procs,
        progress: o.progress,
        label: `${adapter.system} ${o.workload.name}`,
        ratePerSec: o.ratePerSec,
      },
      { adapter, ...(spec ? { spec } : {}) },
    );
    await o.onLoadEnd?.();
    const report: SuiteReport = summarize(raw, {
      system: adapter.system,
      durability: adapter.durability,
      workload: o.workload,
      clients,
      procs: o.procs,
      rows: o.rows,
    });
    if (loadSeconds !== undefined) report.loadSeconds = loadSeconds;
    if (o.ratePerSec) report.targetTxPerSec = o.ratePerSec;
    if (o.workload.name === 'meta' && o.verify) {
      const session = await adapter.session(1_000_000);
      try {
        report.metaCheck = await checkMetaNamespace(session);
      } finally {
        await session.close();
      }
      if (report.metaCheck.problems.length > 0) report.errors.INVARIANT = report.metaCheck.problems.length;
    }
    return report;
  } finally {
    await adapter.close();
  }
}
