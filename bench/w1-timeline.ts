// Where a w1 commit's wall time goes, from the kernel's scheduler events (issue 12, w1):
// txkv and Redis (appendfsync always) started as bench/compare starts them, one client
// in this process driving the w1 workload through the same adapters as bench/compare,
// and `perf sched record -a` over part of the measured loop. Each commit is a chain of
// thread wake-ups, and a wake-up event (waker -> wakee) marks where one stage hands over
// to the next:
//   txkv:  client -> main (the request)   main -> shard (the commit)   shard -> log writer (the batch)
//          log writer -> kworker (the fdatasync's last block I/O is submitted)
//          log writer -> main (written: the direct reply)   main -> client (the reply)
//   Redis: client -> redis   redis -> kworker (fdatasync's I/O)   redis -> client
// The segment between two hand-overs is the receiving thread's wake-up latency plus its
// work up to its own hand-over; its p50 over the window's commits is printed per segment.
// No instrumented build: the server runs as shipped. Needs `perf` and root (or
// kernel.perf_event_paranoid <= -1); perf costs some CPU, so compare systems within a run.
//
//   npm run build && node dist/bench/w1-timeline.js [--systems txkv,redis] [--shards 2] [--warmup 4000] [--record-seconds 1] [--txkv-root DIR]
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { AdapterSpec } from './adapter.js';
import { createAdapter } from './adapters/index.js';
import { startRedis, startTxkv, type RunningPeer } from './peers.js';
import { Rng } from './rng.js';
import { w1 } from './workloads/w1.js';

interface Wake {
  t: number;
  from: string;
  to: string;
}

/** `perf sched timehist -w` lines with "awakened:": time (µs), waker tid, wakee tid (or 'kworker'). */
export function parseWakes(text: string): Wake[] {
  const out: Wake[] = [];
  const tid = (task: string): string => (task.startsWith('kworker') ? 'kworker' : (/\[(\d+)(?:\/\d+)?\]$/.exec(task)?.[1] ?? task));
  for (const line of text.split('\n')) {
    const m = /^\s*([\d.]+)\s+\[\d+\]\s+(\S+)\s+awakened: (\S+)/.exec(line);
    if (m) out.push({ t: Number(m[1]) * 1e6, from: tid(m[2]!), to: tid(m[3]!) });
  }
  return out;
}

/** A stage's hand-over: a wake-up of `to` (one of) by `from` (one of). */
interface Stage {
  name: string;
  from: ReadonlySet<string>;
  to: ReadonlySet<string>;
}

/**
 * Commits as chains of the stages' hand-overs in order (the first stage starts a chain; a
 * chain missing a stage is dropped: e.g. a batch of two commits); per segment the p50 and
 * mean in µs, and the whole cycle's.
 */
export function segments(wakes: readonly Wake[], stages: readonly Stage[]): { rows: { segment: string; p50: number; mean: number }[]; cycles: number; cycleP50: number } {
  const chains: number[][] = [];
  let cur: number[] | null = null;
  for (const w of wakes) {
    for (let i = 0; i < stages.length; i++) {
      const s = stages[i]!;
      if (!s.from.has(w.from) || !s.to.has(w.to)) continue;
      if (i === 0) {
        if (cur && cur.length === stages.length) chains.push([...cur, w.t]);
        cur = [w.t];
      } else if (cur && cur.length === i) cur.push(w.t);
      break;
    }
  }
  const p50 = (xs: number[]): number => xs.sort((a, b) => a - b)[xs.length >> 1] ?? NaN;
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const rows = stages.map((s, i) => {
    const xs = chains.map((c) => c[i + 1]! - c[i]!);
    return { segment: `${s.name} -> ${stages[(i + 1) % stages.length]!.name}`, p50: p50(xs), mean: mean(xs) };
  });
  return { rows, cycles: chains.length, cycleP50: p50(chains.map((c) => c[c.length - 1]! - c[0]!)) };
}

function tidsOf(pid: number): string[] {
  return execFileSync('ls', [`/proc/${pid}/task`], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

async function threadRoles(peer: RunningPeer): Promise<Map<string, string>> {
  const roles = new Map<string, string>();
  if (peer.spec.system !== 'txkv') return roles;
  const http = peer.spec.endpoint.replace(/^ws/, 'http');
  const st = (await (await fetch(`${http}/v1/status`)).json()) as { threads?: { name: string; tid: number | null }[] };
  for (const t of st.threads ?? []) if (t.tid !== null) roles.set(String(t.tid), t.name);
  return roles;
}

async function measure(peer: RunningPeer, warmup: number, recordSeconds: number): Promise<void> {
  const adapter = await createAdapter(peer.spec as AdapterSpec);
  await adapter.open({ ordered: false });
  const session = await adapter.session(0);
  const client = w1.client({ clientId: 0, rng: new Rng(1), verify: false, rows: 100_000, seed: 1 });
  let commits = 0;
  let stop = false;
  const loop = async (): Promise<void> => {
    while (!stop) {
      const plan = client.next();
      await session.attempt(plan.shape, (tx) => plan.run(tx));
      commits++;
    }
  };
  const running = loop();
  while (commits < warmup) await new Promise((r) => setTimeout(r, 50));
  const pid = peer.pids?.()[0];
  if (pid === undefined) throw new Error(`${peer.version}: no server pid`);
  const roles = await threadRoles(peer);
  const dir = mkdtempSync(join(tmpdir(), 'txkv-w1-timeline-'));
  const data = join(dir, 'sched.data');
  const before = commits;
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const p = spawn('perf', ['sched', 'record', '-a', '-o', data, '--', 'sleep', String(recordSeconds)], { stdio: 'ignore' });
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`perf sched record exited ${code}`))));
  });
  const rate = ((commits - before) / (performance.now() - t0)) * 1000;
  stop = true;
  await running;
  await session.close();
  await adapter.close();
  const text = execFileSync('perf', ['sched', 'timehist', '-w', '-i', data], { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024, stdio: ['ignore', 'pipe', 'ignore'] });
  rmSync(dir, { recursive: true, force: true });
  const wakes = parseWakes(text);
  const me = new Set([String(process.pid)]);
  const set = (...xs: string[]): Set<string> => new Set(xs);
  let stages: Stage[];
  if (peer.spec.system === 'txkv') {
    const byRole = (pred: (name: string) => boolean): Set<string> => new Set([...roles].filter(([, n]) => pred(n)).map(([t]) => t));
    const main = byRole((n) => n === 'main');
    const shards = byRole((n) => n.startsWith('shard'));
    const log = byRole((n) => n === 'log-writer');
    if (main.size === 0 || shards.size === 0 || log.size === 0) throw new Error(`txkv: thread roles not found in /v1/status (${[...roles.values()].join(', ')})`);
    stages = [
      { name: 'client sends', from: me, to: main },
      { name: 'main posts', from: main, to: shards },
      { name: 'shard posts', from: shards, to: log },
      { name: 'log fsync I/O', from: log, to: set('kworker') },
      { name: 'log replies', from: log, to: main },
      { name: 'main replies', from: main, to: me },
    ];
  } else {
    const server = new Set(tidsOf(pid));
    stages = [
      { name: 'client sends', from: me, to: server },
      { name: 'server fsync I/O', from: server, to: set('kworker') },
      { name: 'server replies', from: server, to: me },
    ];
  }
  const r = segments(wakes, stages);
  console.log(`\n${peer.version}: ${rate.toFixed(0)} commits/s while recorded, ${r.cycles} whole chains; cycle p50 ${r.cycleP50.toFixed(0)} µs`);
  console.log('| segment (wake-up -> next wake-up) | p50 µs | mean µs |\n|---|---:|---:|');
  for (const row of r.rows) console.log(`| ${row.segment} | ${row.p50.toFixed(0)} | ${row.mean.toFixed(0)} |`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      systems: { type: 'string', default: 'txkv,redis' },
      shards: { type: 'string', default: '2' },
      warmup: { type: 'string', default: '4000' },
      'record-seconds': { type: 'string', default: '1' },
      'txkv-root': { type: 'string' },
    },
  });
  for (const system of values.systems!.split(',')) {
    const started =
      system === 'redis'
        ? await startRedis()
        : system === 'txkv@'
          ? await startTxkv(Number(values.shards), undefined, values['txkv-root'], 'txkv@')
          : await startTxkv(Number(values.shards));
    if (!started.ok) {
      console.log(`${system}: not started (${started.reason})`);
      continue;
    }
    try {
      await measure(started.peer, Number(values.warmup), Number(values['record-seconds']));
    } finally {
      await started.peer.stop();
    }
  }
}

// run as a script (tests import parseWakes and segments)
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
