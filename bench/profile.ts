// bench/profile: CPU per operation and V8 CPU profiles of txkv (and Redis, for the same
// figure) under the compare workloads. Each system is started as bench/compare starts it
// (txkv: a forked server, 4 shards, fsync, benchSplitPoints), the flat keyspace is
// preloaded, then each workload runs with its clients in THIS process (procs 0), so that
//   client CPU = this process (process.cpuUsage), server CPU = the server's process, all
//   threads (/proc/<pid>/stat, and /proc/<pid>/task/*/stat per thread),
// both measured over the measured window only (after the warm-up). CPU per operation holds
// up on a busy machine where throughput does not.
//
// Profiles: run under `node --cpu-prof --cpu-prof-dir=DIR` and pass `--prof DIR`: the
// forked server inherits the flags (fork keeps execArgv) and so do its worker threads
// (shards, log writer), so every thread writes DIR/CPU.*.<pid>.<tid>.*.cpuprofile when it
// ends. The measured windows (monotonic µs, the clock of the profiles' timestamps) go to
// DIR/windows.json; `node dist/bench/cpuprofile-summary.js DIR` prints self time per
// function group per thread per workload. Profiling costs CPU: take CPU per operation from a
// run without it.
//
//   npm run build && node dist/bench/profile.js --systems txkv,redis --workloads w1,w10,r10,m90 --seconds 5
//   node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/profile.js --systems txkv --prof /tmp/prof
//   node dist/bench/cpuprofile-summary.js /tmp/prof
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { AdapterSpec } from './adapter.js';
import { createAdapter } from './adapters/index.js';
import { startPeer } from './peers.js';
import { runSuite } from './suite.js';
import { workloadByName } from './workloads/index.js';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on Linux). */
const CLK_TCK = 100;

/** utime + stime of a process or thread, µs; undefined once it is gone. */
function procCpuMicros(statPath: string): number | undefined {
  try {
    const s = readFileSync(statPath, 'utf8');
    // the command name (field 2) may hold spaces: count fields after its closing parenthesis
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Per thread of `pid`: name and CPU µs. */
function threadCpu(pid: number): Map<number, { comm: string; us: number }> {
  const out = new Map<number, { comm: string; us: number }>();
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const us = procCpuMicros(`/proc/${pid}/task/${tid}/stat`);
    let comm = '?';
    try {
      comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
    } catch {
      // the thread ended
    }
    if (us !== undefined) out.set(Number(tid), { comm, us });
  }
  return out;
}

function monoMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export interface ProfileRow {
  system: string;
  workload: string;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  ops: number;
  clientCpuUsPerOp: number;
  serverCpuUsPerOp: number;
  cpuUsPerOp: number;
  /** Server threads by name: CPU µs per operation (busiest first). */
  serverThreads: { comm: string; usPerOp: number }[];
  loadAvg1: number;
  /** Measured window, monotonic µs (the clock of .cpuprofile timestamps). */
  windowUs: [number, number];
}

interface Snap {
  mono: number;
  client: number;
  server: number;
  threads: Map<number, { comm: string; us: number }>;
}

function snap(pid: number | undefined): Snap {
  const c = process.cpuUsage();
  return {
    mono: monoMicros(),
    client: c.user + c.system,
    server: pid !== undefined ? (procCpuMicros(`/proc/${pid}/stat`) ?? 0) : 0,
    threads: pid !== undefined ? threadCpu(pid) : new Map(),
  };
}

export async function profile(o: {
  systems: AdapterSpec['system'][];
  workloads: string[];
  seconds: number;
  warmup: number;
  rows: number;
  clients: number;
  shards: number;
  seed: number;
}): Promise<ProfileRow[]> {
  const rows: ProfileRow[] = [];
  for (const system of o.systems) {
    const started = await startPeer(system, o.shards, o.rows);
    if (!started.ok) throw new Error(`${system} did not start: ${started.reason}`);
    const peer = started.peer;
    try {
      // the keyspace is loaded before any window opens (a preload is not the workload's cost)
      const first = workloadByName(o.workloads[0]!);
      const loader = await createAdapter(peer.spec);
      await loader.open({ ordered: first.ordered });
      try {
        await loader.load(first.preload({ rows: o.rows, seed: o.seed }));
      } finally {
        await loader.close();
      }
      for (const name of o.workloads) {
        const workload = workloadByName(name);
        let begin: Snap | undefined;
        // the measured window starts after the warm-up; the clients run in this process,
        // so the timer fires within a turn of it
        // the server's main process (txkv: the forked server, all its threads; Redis: redis-server)
        const pid = peer.pids?.()[0];
        const timer = setTimeout(() => (begin = snap(pid)), o.warmup * 1000);
        const warmupStart = snap(pid);
        const report = await runSuite(await createAdapter(peer.spec), peer.spec, {
          workload,
          clients: workload.defaultClients === 1 ? 1 : o.clients,
          seconds: o.seconds,
          warmupSeconds: o.warmup,
          rows: o.rows,
          seed: o.seed,
          verify: false,
          procs: 0,
          progress: false,
          load: false,
        });
        const end = snap(pid);
        clearTimeout(timer);
        const b = begin ?? warmupStart;
        const ops = Math.max(1, report.ops);
        const serverThreads = [...end.threads]
          .map(([tid, t]) => ({ comm: `${t.comm}/${tid}`, usPerOp: (t.us - (b.threads.get(tid)?.us ?? 0)) / ops }))
          .filter((t) => t.usPerOp > 0.05)
          .sort((x, y) => y.usPerOp - x.usPerOp);
        const row: ProfileRow = {
          system,
          workload: name,
          opsPerSec: Math.round(report.opsPerSec),
          p50Ms: report.p50Ms,
          p99Ms: report.p99Ms,
          ops: report.ops,
          clientCpuUsPerOp: (end.client - b.client) / ops,
          serverCpuUsPerOp: (end.server - b.server) / ops,
          cpuUsPerOp: (end.client - b.client + end.server - b.server) / ops,
          serverThreads,
          loadAvg1: loadavg()[0] ?? 0,
          windowUs: [b.mono, end.mono],
        };
        rows.push(row);
        process.stderr.write(`[profile] ${formatRow(row)}\n`);
      }
    } finally {
      await peer.stop();
    }
  }
  return rows;
}

const f1 = (n: number): string => n.toFixed(1);

export function formatRow(r: ProfileRow): string {
  return `${r.system} ${r.workload}: ${r.opsPerSec.toLocaleString('en-US')} ops/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, ` +
    `CPU ${f1(r.cpuUsPerOp)} µs/op (client ${f1(r.clientCpuUsPerOp)}, server ${f1(r.serverCpuUsPerOp)}: ` +
    `${r.serverThreads.map((t) => `${t.comm} ${f1(t.usPerOp)}`).join(', ')}), load ${r.loadAvg1.toFixed(2)}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values: a } = parseArgs({
    options: {
      systems: { type: 'string', default: 'txkv,redis' },
      workloads: { type: 'string', default: 'w1,w10,r10,m90' },
      seconds: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      rows: { type: 'string', default: '100000' },
      clients: { type: 'string', default: '100' },
      shards: { type: 'string', default: '4' },
      seed: { type: 'string', default: '1' },
      prof: { type: 'string' },
    },
    strict: true,
  });
  const rows = await profile({
    systems: (a.systems ?? '').split(',') as AdapterSpec['system'][],
    workloads: (a.workloads ?? '').split(','),
    seconds: Number(a.seconds),
    warmup: Number(a.warmup),
    rows: Number(a.rows),
    clients: Number(a.clients),
    shards: Number(a.shards),
    seed: Number(a.seed),
  });
  if (a.prof) writeFileSync(join(a.prof, 'windows.json'), JSON.stringify({ pid: process.pid, rows }, null, 2) + '\n');
  console.log('| system | workload | ops/s | p50 ms | p99 ms | CPU µs/op (client + server) | client | server | load avg |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.system} | ${r.workload} | ${r.opsPerSec.toLocaleString('en-US')} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${f1(r.cpuUsPerOp)} | ${f1(r.clientCpuUsPerOp)} | ${f1(r.serverCpuUsPerOp)} | ${r.loadAvg1.toFixed(2)} |`);
  }
  process.exit(0);
}
