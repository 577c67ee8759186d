// Runs `txkv serve` as a child process (the built CLI), for tests that kill it.
import fs from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

const BIN = path.resolve(__dirname, '../../bin/txkv.js');

export interface ChildServer {
  proc: ChildProcess;
  port: number;
  url: string;
  /** Resolves with the exit code or signal once the process has ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  logs: string[];
}

// every server spawned here is killed when the tests end, also when an assertion
// failed before the test's own cleanup ran
const children = new Set<ChildProcess>();
process.once('exit', () => killAllServers());

/** SIGKILL every server spawned by this module that is still running (call from afterAll). */
export function killAllServers(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
}

/** A port free on 127.0.0.1, outside the ephemeral range (bench/peers.ts freePort says why). */
export { freePort } from '../../bench/peers.js';

/**
 * How long a child may take to log ServerStarted. 60 s: in a full run on the 2-core box (load
 * 20-27, every fault test fsyncing) torn-wal.test.ts's two tests took 97 s, two starts and 40
 * fsync'd commits each, and one start once passed the 30 s this was (the child had printed
 * nothing: it logged nothing before RocksDB's open and the shard threads were done; now
 * ServerStarting comes first). Starts took 4-7 s each alone at load 15.
 */
const START_MS = 60_000;

/**
 * A stuck child's state from /proc: its CPU time (little: it was starved or blocked; much:
 * it was busy), and each thread's state and kernel wait channel (e.g. a RocksDB thread in
 * an fsync, or the main thread waiting on a futex).
 */
export function childState(pid: number | undefined): string {
  if (pid === undefined) return 'no pid';
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const tick = 100; // USER_HZ on Linux
    const cpu = `state ${f[0]}, CPU ${((Number(f[11]) + Number(f[12])) * (1000 / tick)).toFixed(0)} ms user+system`;
    const threads = fs.readdirSync(`/proc/${pid}/task`).map((tid) => {
      const read = (n: string): string => {
        try {
          return fs.readFileSync(`/proc/${pid}/task/${tid}/${n}`, 'utf8').trim();
        } catch {
          return '?';
        }
      };
      const t = read('stat');
      const name = t.slice(t.indexOf('(') + 1, t.lastIndexOf(')'));
      return `${name}:${t.slice(t.lastIndexOf(')') + 2, t.lastIndexOf(')') + 3)}/${read('wchan') || '-'}`;
    });
    return `${cpu}; threads ${threads.join(' ')}`;
  } catch (err) {
    return `no /proc state (${(err as Error).message})`;
  }
}

export async function spawnServer(
  dataDir: string,
  port: number,
  {
    failpoints,
    durability,
    wrap = [],
    env: extraEnv = {},
    direct = false,
  }: {
    failpoints?: string;
    durability?: string;
    /** A command the server runs under (e.g. strace with fault injection). */
    wrap?: string[];
    env?: NodeJS.ProcessEnv;
    /** Run bin/txkv.js as the program (its first line picks node and node's options) instead of `node bin/txkv.js`. */
    direct?: boolean;
  } = {},
): Promise<ChildServer> {
  const env: NodeJS.ProcessEnv = { ...process.env, TXKV_FAILPOINTS: failpoints ?? '', ...extraEnv };
  const args = [BIN, 'serve', '--port', String(port), '--data-dir', dataDir, '--shards', '4', '--log-level', 'info'];
  if (durability) args.push('--durability', durability);
  const node = direct ? [] : [process.execPath];
  const cmd = [...wrap, ...node, ...args];
  const proc = spawn(cmd[0]!, cmd.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  const logs: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const started = new Promise<void>((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        logs.push(line);
        if (line.includes('"event":"ServerStarted"')) resolve();
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
    exited.then(({ code, signal }) => reject(new Error(`server exited (${code ?? signal}) before starting:\n${logs.join('\n')}`)));
    setTimeout(() => {
      // what the child was doing, then kill it (it used to run on until the file's afterAll):
      // the report of the one such failure said no more than "did not start in 30 s"
      const why = childState(proc.pid);
      proc.kill('SIGKILL');
      reject(new Error(`server did not start in ${START_MS / 1000} s (load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; ${why}):\n${logs.join('\n') || '(it printed nothing)'}`));
    }, START_MS).unref();
  });
  await started;
  return { proc, port, url: `ws://127.0.0.1:${port}`, exited, logs };
}

/** The JSON log line of an event, parsed. */
export function logEvent(logs: string[], event: string): Record<string, unknown> | undefined {
  const line = logs.find((l) => l.includes(`"event":"${event}"`));
  return line ? (JSON.parse(line) as Record<string, unknown>) : undefined;
}

/** Resident memory of process `pid` in MiB (VmRSS of /proc/PID/status). */
export function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}
