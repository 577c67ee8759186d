// Summarizes the V8 CPU profiles (.cpuprofile) of a bench/profile.ts run: per workload
// (the measured windows of DIR/windows.json), per thread, the self time of each function
// group (a source file of txkv, an npm package, a node: module, a native function, GC),
// in µs per operation and in % of the thread's busy time, busiest groups first.
//
//   node dist/bench/cpuprofile-summary.js DIR [--top 12] [--functions 8] [--workload r10] [--brief]
//
// Threads are named by role: `client` (the bench/profile.ts process), `server main`, and the
// server's worker threads by the code they run (`shard`, `log writer`, `gateway`, ...).
// Caveat: V8 samples wall time while JS is not idle; on a loaded machine a thread that is
// runnable but descheduled still counts. Use the kernel's CPU per operation (bench/profile.ts)
// for totals and these profiles for where the time goes.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}
interface Window {
  system: string;
  workload: string;
  ops: number;
  windowUs: [number, number];
}

/** The group a function's self time counts under. */
export function groupOf(cf: CallFrame): string {
  const url = cf.url;
  if (url === '') return cf.functionName.startsWith('(') ? cf.functionName : `native ${cf.functionName || '(anonymous)'}`;
  if (url.startsWith('node:')) return url;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  const dist = url.lastIndexOf('/dist/');
  if (dist >= 0) return url.slice(dist + '/dist/'.length).replace(/\.js$/, '');
  return url;
}

function roleOf(p: CpuProfile, file: string, clientPid: number): string {
  const m = /\.(\d+)\.(\d+)\.\d+\.cpuprofile$/.exec(file);
  const pid = Number(m?.[1]);
  const tid = Number(m?.[2]);
  if (pid === clientPid) return tid === 0 ? 'client' : `client worker ${tid}`;
  if (tid === 0) return 'server main';
  const urls = new Set(p.nodes.map((n) => n.callFrame.url));
  const has = (s: string): boolean => [...urls].some((u) => u.includes(s));
  if (has('/shard/worker.js')) return `shard (tid ${tid})`;
  if (has('/shard/log-writer.js')) return `log writer (tid ${tid})`;
  if (has('/gateway/')) return `gateway (tid ${tid})`;
  return `worker (tid ${tid})`;
}

interface ThreadSummary {
  role: string;
  busyUs: number;
  totalUs: number;
  groups: Map<string, number>;
  functions: Map<string, number>;
}

function summarize(p: CpuProfile, role: string, from: number, to: number): ThreadSummary {
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const out: ThreadSummary = { role, busyUs: 0, totalUs: 0, groups: new Map(), functions: new Map() };
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (t < from || t > to) continue;
    const node = byId.get(p.samples[i]!);
    if (!node) continue;
    out.totalUs += dt;
    const cf = node.callFrame;
    if (cf.functionName === '(idle)') continue;
    out.busyUs += dt;
    const g = groupOf(cf);
    out.groups.set(g, (out.groups.get(g) ?? 0) + dt);
    const fn = `${cf.functionName || '(anonymous)'} ${g}:${cf.lineNumber + 1}`;
    out.functions.set(fn, (out.functions.get(fn) ?? 0) + dt);
  }
  return out;
}

const top = (m: Map<string, number>, n: number): [string, number][] => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);

export function report(dir: string, o: { top: number; functions: number; workload?: string | undefined; brief?: boolean }): string {
  const w = JSON.parse(readFileSync(join(dir, 'windows.json'), 'utf8')) as { pid: number; rows: Window[] };
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  const profiles = files.map((f) => {
    const p = JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile;
    return { p, role: roleOf(p, f, w.pid) };
  });
  const lines: string[] = [];
  for (const win of w.rows) {
    if (o.workload && win.workload !== o.workload) continue;
    const [from, to] = win.windowUs;
    const ops = Math.max(1, win.ops);
    lines.push(`## ${win.system} ${win.workload}: ${ops.toLocaleString('en-US')} ops in ${((to - from) / 1e6).toFixed(1)} s`);
    const threads = profiles
      .filter((x) => x.p.startTime <= to && x.p.endTime >= from)
      .map((x) => summarize(x.p, x.role, from, to))
      .filter((s) => s.busyUs > 0)
      .sort((a, b) => b.busyUs - a.busyUs);
    const total = threads.reduce((s, x) => s + x.busyUs, 0);
    lines.push(`sampled busy time, all threads: ${(total / ops).toFixed(1)} µs/op`);
    if (o.brief) {
      // one line per thread: its sampled µs/op and its busiest groups
      lines.push('');
      lines.push('| thread | busy µs/op | where (µs/op) |');
      lines.push('|---|---:|---|');
      for (const s of threads) {
        lines.push(`| ${s.role} | ${(s.busyUs / ops).toFixed(1)} | ${top(s.groups, o.top).map(([g, us]) => `${g} ${(us / ops).toFixed(1)}`).join(', ')} |`);
      }
      lines.push('');
      continue;
    }
    for (const s of threads) {
      lines.push('');
      lines.push(`### ${s.role}: busy ${((100 * s.busyUs) / Math.max(1, s.totalUs)).toFixed(0)} % of the window, ${(s.busyUs / ops).toFixed(2)} µs/op`);
      lines.push('| group | µs/op | % of thread |');
      lines.push('|---|---:|---:|');
      for (const [g, us] of top(s.groups, o.top)) lines.push(`| ${g} | ${(us / ops).toFixed(2)} | ${((100 * us) / s.busyUs).toFixed(1)} |`);
      if (o.functions > 0) {
        lines.push('');
        lines.push(`top functions: ${top(s.functions, o.functions).map(([f, us]) => `${f} ${(us / ops).toFixed(2)}`).join('; ')}`);
      }
    }
    lines.push('');
  }
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values: a, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '12' }, functions: { type: 'string', default: '8' }, workload: { type: 'string' }, brief: { type: 'boolean', default: false } },
  });
  const dir = positionals[0];
  if (!dir) {
    console.error('usage: node dist/bench/cpuprofile-summary.js DIR [--top N] [--functions N] [--workload NAME] [--brief]');
    process.exit(2);
  }
  console.log(report(dir, { top: Number(a.top), functions: Number(a.functions), workload: a.workload, brief: a.brief ?? false }));
}
