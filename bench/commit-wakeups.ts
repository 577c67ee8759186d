// Thread wake-ups and CPU per commit of a txkv build (issue 12, the w1 commit path): a
// server forked as bench/compare starts it (serve-txkv.ts, 4 shards, fsync), clients in
// this process committing one-key (or N-key) blind writes; per server thread, the CPU
// (/proc/<pid>/task/<tid>/stat) and the voluntary context switches (status:
// voluntary_ctxt_switches, i.e. how often the thread slept and was woken: epoll waits,
// fsync, futexes) over the measured commits, divided by the commits. Wake-ups per commit
// depend far less on the machine's load than throughput or CPU do.
//
//   node dist/bench/commit-wakeups.js [root=.] [shards=4] [commits=2000] [clients=1] [keysPerCommit=1] [warmup=200]
//   root: a txkv checkout with its own dist/ (an A/B of two builds: run it once for each)
//   warmup: commits before the measured ones. V8 optimizes the commit path over the first few
//   thousand commits (its compiler threads, "other" below, burn ~140 µs per commit meanwhile),
//   so 200 measures a cold server (as bench/compare's 1 s warm-up does), 6000 a warm one.
// Threads are named by their role where the server's /v1/status names them (main, shard-N,
// log-writer); "other" are V8's platform threads (compiler, GC), libuv's and RocksDB's.
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

interface ThreadSample {
  us: number;
  wakeups: number;
  comm: string;
}

function sample(pid: number): Map<string, ThreadSample> {
  const m = new Map<string, ThreadSample>();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      const status = readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
      const wakeups = Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
      const comm = readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
      // utime + stime in clock ticks (USER_HZ 100)
      m.set(t, { us: (Number(f[11]) + Number(f[12])) * 1e4, wakeups, comm });
    } catch {
      // the thread ended meanwhile
    }
  }
  return m;
}

async function main(): Promise<void> {
  const [rootArg = '.', shardsArg = '4', commitsArg = '2000', clientsArg = '1', keysArg = '1', warmArg = '200'] = process.argv.slice(2);
  const root = resolve(rootArg);
  const shards = Number(shardsArg);
  const n = Number(commitsArg);
  const clients = Number(clientsArg);
  const keysPerCommit = Number(keysArg);
  const child = fork(join(root, 'dist/bench/serve-txkv.js'), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const dataDir = mkdtempSync(join(tmpdir(), 'txkv-wakeups-'));
  child.send({ dataDir, shards });
  const { url } = await new Promise<{ url: string }>((r) => child.once('message', (m) => r(m as { url: string })));
  const { connect } = (await import(pathToFileURL(join(root, 'dist/src/index.js')).href)) as typeof import('../src/index.js');
  const db = await connect({ endpoints: [url] });
  let seq = 0;
  const value = new Uint8Array(50);
  const one = async (): Promise<void> => {
    const tx = db.createTransaction();
    for (let k = 0; k < keysPerCommit; k++) tx.set(`k${String((seq++ * 7919) % 100_000).padStart(15, '0')}`, value);
    await tx.commit();
  };
  for (let i = 0; i < Number(warmArg); i++) await one();
  // thread roles by id (builds without a log-writer row leave it unnamed)
  const roles = new Map<string, string>();
  try {
    const st = (await (await fetch(`${url.replace(/^ws/, 'http')}/v1/status`)).json()) as { threads?: { name: string; tid: number | null }[] };
    for (const t of st.threads ?? []) if (t.tid !== null) roles.set(String(t.tid), t.name);
  } catch {
    // an older build without per-thread status: tids only
  }
  const latencies: number[] = [];
  const a = sample(child.pid!);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let started = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (started < n) {
        started++;
        const t = performance.now();
        await one();
        latencies.push(performance.now() - t);
      }
    }),
  );
  const ms = performance.now() - t0;
  const cc = process.cpuUsage(c0);
  const b = sample(child.pid!);
  let us = 0;
  let wakeups = 0;
  const rows: string[] = [];
  let otherUs = 0;
  let otherWakeups = 0;
  for (const [t, x] of b) {
    const y = a.get(t) ?? { us: 0, wakeups: 0 };
    const tu = (x.us - y.us) / started;
    const tw = (x.wakeups - y.wakeups) / started;
    us += tu;
    wakeups += tw;
    const role = roles.get(t);
    if (role === undefined && roles.size > 0) {
      otherUs += tu;
      otherWakeups += tw;
    } else if (tu > 5 || tw > 0.05) rows.push(`${role ?? `${x.comm}/${t}`} ${tu.toFixed(0)} µs ${tw.toFixed(2)} w`);
  }
  if (roles.size > 0) rows.push(`other ${otherUs.toFixed(0)} µs ${otherWakeups.toFixed(2)} w`);
  latencies.sort((x, y) => x - y);
  const pct = (p: number): string => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!.toFixed(2);
  console.log(
    `${root}: ${shards} shards, ${clients} clients, ${keysPerCommit} keys/commit, ${warmArg} warm-up commits: ${((started / ms) * 1000).toFixed(0)} commits/s (p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms); per commit: server ${us.toFixed(0)} µs CPU, ${wakeups.toFixed(2)} wake-ups; client ${((cc.user + cc.system) / started).toFixed(0)} µs | ${rows.join(', ')}`,
  );
  await db.close();
  child.send('close');
  await new Promise((r) => child.once('exit', r));
  rmSync(dataDir, { recursive: true, force: true });
}

void main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
