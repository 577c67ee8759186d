// Summarizes a server log written with --trace-gc --trace-gc-nvp (tail-probe.js --server-log F
// with TAIL_EXEC_ARGV="--trace-gc --trace-gc-nvp"): per isolate (thread), over the last
// `--seconds` of that isolate's lines, the scavenges and mark-compacts per second, their pause
// p50 / p90 / max, the bytes promoted per scavenge and the bytes allocated per second
// (V8's `allocated=` counter: bytes allocated since the previous GC).
//   node dist/bench/gc-summary.js F [--seconds 9] [--commits N]
// With --commits (the commits of the window): the bytes allocated per commit on each thread.
// Isolates are listed in the order they first logged: the main thread's comes first; the
// server's worker threads follow in their start order (log writer, then shards).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: { seconds: { type: 'string', default: '9' }, commits: { type: 'string' } },
});
const file = positionals[0];
if (!file) throw new Error('usage: gc-summary.js LOG [--seconds 9] [--commits N]');
const seconds = Number(opts.seconds);

interface Gc {
  t: number;
  kind: string;
  pause: number;
  allocated: number;
  promoted: number;
}
const byIsolate = new Map<string, Gc[]>();
const line = /^\[\d+:(0x[0-9a-f]+)\]\s+(\d+) ms: pause=([\d.]+) mutator=[\d.]+ gc=(\w+) .*?allocated=(\d+) promoted=(\d+)/;
for (const l of readFileSync(file, 'utf8').split('\n')) {
  const m = line.exec(l);
  if (!m) continue;
  let list = byIsolate.get(m[1]!);
  if (!list) byIsolate.set(m[1]!, (list = []));
  list.push({ t: Number(m[2]), kind: m[4]!, pause: Number(m[3]), allocated: Number(m[5]), promoted: Number(m[6]) });
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

const commits = opts.commits ? Number(opts.commits) : 0;
let i = 0;
for (const [isolate, all] of byIsolate) {
  const end = all[all.length - 1]!.t;
  const w = all.filter((g) => g.t > end - seconds * 1000);
  const s = w.filter((g) => g.kind === 's');
  const mc = w.filter((g) => g.kind !== 's');
  const pauses = s.map((g) => g.pause).sort((a, b) => a - b);
  const allocated = w.reduce((n, g) => n + g.allocated, 0);
  const promoted = s.reduce((n, g) => n + g.promoted, 0);
  const mcPause = mc.reduce((n, g) => Math.max(n, g.pause), 0);
  console.log(
    `${i === 0 ? 'main   ' : `worker${i}`} ${isolate}: scavenges ${(s.length / seconds).toFixed(1)}/s p50 ${pct(pauses, 0.5).toFixed(1)} p90 ${pct(pauses, 0.9).toFixed(1)} max ${(pauses[pauses.length - 1] ?? 0).toFixed(1)} ms, ` +
      `promoted ${(promoted / Math.max(1, s.length) / 1e6).toFixed(2)} MB/scavenge, mark-compact ${mc.length} (max ${mcPause.toFixed(1)} ms), ` +
      `GC ${((w.reduce((n, g) => n + g.pause, 0) / (seconds * 1000)) * 100).toFixed(1)} % of the time, allocated ${(allocated / seconds / 1e6).toFixed(1)} MB/s` +
      (commits ? `, ${((allocated / commits) / 1000).toFixed(1)} KB/commit` : ''),
  );
  i++;
}
