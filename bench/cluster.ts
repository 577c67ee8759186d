// A replicated txkv cluster on loopback: 3 etcd members (Debian etcd-server) and 3
// `txkv serve --etcd ...` child processes, each on free ports with temp dirs. Shared by the
// cluster tests (test/cluster/harness.ts) and bench/compare.ts (system `txkv-cluster`).
// Every process is killed by its own PID on stop(), and when this process exits.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './peers.js';

export const ETCD_BIN = '/usr/bin/etcd';
export const HAVE_ETCD = fs.existsSync(ETCD_BIN);

/** The repository root above this file (bench/ in the sources, dist/bench/ when built). */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return dir;
}
const BIN = path.join(repoRoot(), 'bin/txkv.js');

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

export interface Proc {
  name: string;
  proc: ChildProcess | null;
  logs: string[];
  exited: Promise<unknown>;
}

export interface EtcdMember extends Proc {
  clientUrl: string;
  peerUrl: string;
  dir: string;
}

export interface TxkvNode extends Proc {
  port: number;
  url: string;
  dir: string;
  /** Address it listens on (default 127.0.0.1). */
  host?: string;
}

/**
 * A machine of a cluster laid out over network namespaces (test/cluster/netns.ts):
 * etcd member i and txkv node i run in namespace `ns`, on address `ip`.
 */
export interface Machine {
  ns: string;
  ip: string;
}

function track(proc: ChildProcess, logs: string[], name: string): Promise<unknown> {
  children.add(proc);
  const exited = new Promise((resolve) =>
    proc.once('exit', (code, signal) => {
      // in the log itself: a node that exited on its own is the first thing to look for in a failed run
      logs.push(`[harness] ${name} (pid ${proc.pid}) exited: code ${code}, signal ${signal}, at ${new Date().toISOString()}`);
      resolve({ code, signal });
    }),
  );
  void exited.then(() => children.delete(proc));
  let buf = '';
  const onData = (d: Buffer): void => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      logs.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    if (logs.length > 20_000) logs.splice(0, 10_000);
  };
  proc.stdout?.on('data', onData);
  proc.stderr?.on('data', onData);
  return exited;
}

export class LoopbackCluster {
  readonly etcd: EtcdMember[] = [];
  readonly nodes: TxkvNode[] = [];
  private readonly root = fs.mkdtempSync(path.join(os.tmpdir(), 'txkv-cluster-'));
  /** Set when a test on this cluster failed (test/cluster/harness.ts keepLogsOnFailure): stop() keeps every process's log. */
  failed = false;
  /** etcd's --election-timeout (ms) for members started from now on; docs/cluster.md recommends 1000. */
  etcdElectionTimeoutMs = 1000;

  /**
   * `env`: extra environment of the txkv nodes (TXKV_* settings); `shards`: per node;
   * `machines`: run etcd member i and node i in machines[i]'s network namespace (fixed
   * ports on its address) instead of on loopback.
   */
  constructor(
    private readonly env: Record<string, string> = {},
    private readonly shards = 2,
    private readonly machines: Machine[] | null = null,
  ) {}

  /** The command line that runs `argv` on machine i (in its namespace), or as it is. */
  private placed(i: number, argv: string[]): [string, string[]] {
    const m = this.machines?.[i];
    return m ? ['ip', ['netns', 'exec', m.ns, ...argv]] : [argv[0]!, argv.slice(1)];
  }

  get etcdEndpoints(): string[] {
    return this.etcd.map((m) => m.clientUrl);
  }

  get urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  /** PIDs of every live etcd member and txkv node (for CPU accounting). */
  pids(): number[] {
    return [...this.etcd, ...this.nodes].flatMap((p) => (p.proc && p.proc.exitCode === null && p.proc.signalCode === null && p.proc.pid ? [p.proc.pid] : []));
  }

  async startEtcd(n = 3): Promise<void> {
    for (let i = 0; i < n; i++) {
      const m = this.machines?.[i];
      const [host, c, p] = m ? [m.ip, 2379, 2380] : ['127.0.0.1', await freePort(), await freePort()];
      this.etcd.push({ name: `e${i}`, clientUrl: `http://${host}:${c}`, peerUrl: `http://${host}:${p}`, dir: path.join(this.root, `etcd${i}`), proc: null, logs: [], exited: Promise.resolve() });
    }
    for (let i = 0; i < n; i++) this.spawnEtcd(i);
    // healthy when a write goes through
    const until = Date.now() + 20_000;
    for (;;) {
      try {
        execFileSync('/usr/bin/etcdctl', ['--endpoints', this.etcdEndpoints.join(','), '--command-timeout=2s', 'put', 'txkv-test/ready', '1'], {
          env: { ...process.env, ETCDCTL_API: '3' },
          stdio: 'pipe',
        });
        return;
      } catch (err) {
        if (Date.now() > until) throw new Error(`etcd did not become healthy: ${(err as Error).message}\n${this.etcd.map((m) => m.logs.slice(-5).join('\n')).join('\n')}`);
        await sleep(200);
      }
    }
  }

  spawnEtcd(i: number, state: 'new' | 'existing' = 'new'): void {
    const m = this.etcd[i]!;
    const initial = this.etcd.map((x) => `${x.name}=${x.peerUrl}`).join(',');
    const args = [
      '--name', m.name,
      '--data-dir', m.dir,
      '--listen-client-urls', m.clientUrl,
      '--advertise-client-urls', m.clientUrl,
      '--listen-peer-urls', m.peerUrl,
      '--initial-advertise-peer-urls', m.peerUrl,
      '--initial-cluster', initial,
      '--initial-cluster-state', state,
      '--initial-cluster-token', path.basename(this.root),
      '--heartbeat-interval', '100',
      '--election-timeout', String(this.etcdElectionTimeoutMs),
      // a member cut off from the others campaigns with ever higher terms; without
      // pre-vote its return deposes the healthy etcd leader (and costs txkv its leader)
      '--pre-vote',
      '--snapshot-count', '2000',
      '--quota-backend-bytes', String(512 * 1024 * 1024),
      '--max-request-bytes', String(2 * 1024 * 1024),
      '--logger', 'zap',
      '--log-level', 'warn',
    ];
    const [cmd, argv] = this.placed(i, [ETCD_BIN, ...args]);
    const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    m.proc = proc;
    m.exited = track(proc, m.logs, m.name);
  }

  /**
   * The etcd member that is Raft leader now, asking for up to `ms`. On a loaded box one
   * member's status can take longer than etcdctl's command timeout; etcdctl then exits 1
   * and prints the statuses it got, which name the leader unless the leader was the slow one
   * (a full-suite run failed cluster.test.ts on one 2 s try).
   */
  etcdLeader(ms = 15_000): number {
    const until = Date.now() + ms;
    for (;;) {
      let out = '';
      let failure: unknown = null;
      try {
        out = execFileSync('/usr/bin/etcdctl', ['--endpoints', this.etcdEndpoints.join(','), '--command-timeout=3s', 'endpoint', 'status', '-w', 'json'], {
          env: { ...process.env, ETCDCTL_API: '3' },
          stdio: ['ignore', 'pipe', 'ignore'],
        }).toString();
      } catch (err) {
        failure = err;
        out = String((err as { stdout?: Buffer }).stdout ?? '');
      }
      const i = this.leaderIn(out);
      if (i >= 0) return i;
      if (Date.now() > until) throw failure ?? new Error(`no etcd member named a leader that answered within ${ms} ms: ${out}`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200); // callers are synchronous
    }
  }

  /** Index of the leader in `etcdctl endpoint status -w json` output, if a status names it and it answered; else -1. */
  private leaderIn(out: string): number {
    let st: { Endpoint: string; Status: { header: { member_id: number }; leader: number } }[];
    try {
      st = JSON.parse(out) as typeof st;
    } catch {
      return -1;
    }
    if (!Array.isArray(st)) return -1;
    const leaderId = st.find((s) => s.Status.leader)?.Status.leader;
    const ep = st.find((s) => s.Status.header.member_id === leaderId)?.Endpoint;
    return ep === undefined ? -1 : this.etcd.findIndex((m) => m.clientUrl === ep);
  }

  /** Makes etcd member i the Raft leader (etcdctl move-leader), waiting up to `ms` for it. */
  async moveEtcdLeader(i: number, ms = 10_000): Promise<void> {
    const env = { ...process.env, ETCDCTL_API: '3' };
    const until = Date.now() + ms;
    for (;;) {
      const cur = this.etcdLeader();
      if (cur === i) return;
      try {
        // the member's hex id: `member list` prints "<id>, started, <name>, ..."
        const list = execFileSync('/usr/bin/etcdctl', ['--endpoints', this.etcdEndpoints.join(','), '--command-timeout=2s', 'member', 'list'], { env, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
        const id = list.split('\n').find((l) => l.split(', ')[2] === this.etcd[i]!.name)?.split(',')[0]?.trim();
        if (!id) throw new Error(`etcd member ${this.etcd[i]!.name} is not in the member list:\n${list}`);
        execFileSync('/usr/bin/etcdctl', ['--endpoints', this.etcd[cur]!.clientUrl, '--command-timeout=5s', 'move-leader', id], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (err) {
        if (Date.now() > until) throw new Error(`could not make ${this.etcd[i]!.name} the etcd leader in ${ms} ms: ${(err as Error).message}`);
      }
      if (Date.now() > until) throw new Error(`could not make ${this.etcd[i]!.name} the etcd leader in ${ms} ms`);
      await sleep(200);
    }
  }

  async startNodes(n = 3): Promise<void> {
    for (let i = 0; i < n; i++) {
      const m = this.machines?.[i];
      const [host, port] = m ? [m.ip, 7070] : ['127.0.0.1', await freePort()];
      this.nodes.push({ name: `n${i}`, port, host, url: `ws://${host}:${port}`, dir: path.join(this.root, `node${i}`), proc: null, logs: [], exited: Promise.resolve() });
    }
    await Promise.all(this.nodes.map((_, i) => this.startNode(i)));
  }

  /** Starts (or restarts) node i; resolves once it follows the log. */
  async startNode(i: number, joinMs = 40_000, env: Record<string, string> = {}): Promise<void> {
    const nd = this.nodes[i]!;
    const args = [BIN, 'serve', '--port', String(nd.port), '--data-dir', nd.dir, '--shards', String(this.shards), '--etcd', this.etcdEndpoints.join(','), '--node-id', nd.name, '--advertise', nd.url, '--log-level', 'info', '--log-format', 'json'];
    // an address of a network namespace is not loopback: no tokens in tests, so --insecure
    if (nd.host && nd.host !== '127.0.0.1') args.push('--host', nd.host, '--insecure');
    // env: added to the cluster's for this start (e.g. TXKV_FAILPOINTS for one node)
    const [cmd, argv] = this.placed(i, [process.execPath, ...args]);
    const proc = spawn(cmd, argv, { env: { ...process.env, ...this.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    nd.proc = proc;
    const from = nd.logs.length;
    nd.exited = track(proc, nd.logs, nd.name);
    const until = Date.now() + joinMs;
    while (!nd.logs.slice(from).some((l) => l.includes('"event":"ClusterJoined"'))) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${nd.name} exited before joining:\n${nd.logs.slice(from).join('\n')}`);
      if (Date.now() > until) throw new Error(`${nd.name} did not join in ${joinMs} ms:\n${nd.logs.slice(from).join('\n')}`);
      await sleep(50);
    }
  }

  kill(p: Proc, signal: NodeJS.Signals = 'SIGKILL'): void {
    if (p.proc && p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill(signal);
  }

  async status(i: number): Promise<ClusterStatus | null> {
    try {
      const nd = this.nodes[i]!;
      const r = await fetch(`http://${nd.host ?? '127.0.0.1'}:${nd.port}/v1/status`, { signal: AbortSignal.timeout(1000) });
      return (await r.json()) as ClusterStatus;
    } catch {
      return null;
    }
  }

  /**
   * Index of the node whose status says leader (and which the others name), waiting up to `ms`
   * (30 s: once, on a loaded machine, no leader was visible for 15 s after an etcd member restart; cause not found).
   */
  /** Waits up to `ms` until the leader's log is trimmed past version `v` (a node below it must then copy a snapshot). */
  async trimmedPast(v: number, ms: number): Promise<void> {
    const until = Date.now() + ms;
    for (;;) {
      const s = await this.status(await this.leader());
      if ((s?.cluster?.log.trimmedThrough ?? 0) > v) return;
      if (Date.now() > until) throw new Error(`the log was not trimmed past ${v} in ${ms} ms: ${JSON.stringify(s?.cluster?.log)}`);
      await sleep(100);
    }
  }

  async leader(ms = 30_000, not: number | null = null): Promise<number> {
    const until = Date.now() + ms;
    for (;;) {
      for (let i = 0; i < this.nodes.length; i++) {
        if (i === not) continue;
        const s = await this.status(i);
        if (s?.cluster?.role === 'leader') return i;
      }
      if (Date.now() > until) throw new Error(`no leader within ${ms} ms`);
      await sleep(100);
    }
  }

  /** Writes every process's log to `dir` (for a failed run). */
  dumpLogs(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
    for (const p of [...this.nodes, ...this.etcd]) fs.writeFileSync(path.join(dir, `${p.name}.log`), p.logs.join('\n') + '\n');
  }

  /**
   * Kills every process. Their logs are written to $CLUSTER_TEST_LOGS when set, and after a
   * failed test (`failed`) to a directory under the temp dir, named on stderr with the tail
   * of each txkv node's log (a CI run keeps only its output).
   */
  async stop(): Promise<void> {
    if (process.env.CLUSTER_TEST_LOGS) this.dumpLogs(process.env.CLUSTER_TEST_LOGS);
    else if (this.failed) {
      const dir = path.join(os.tmpdir(), 'txkv-cluster-logs', path.basename(this.root));
      this.dumpLogs(dir);
      const tails = this.nodes.map((n) => `--- ${n.name}, last 30 of ${n.logs.length} lines:\n${n.logs.slice(-30).join('\n')}`);
      const exits = [...this.nodes, ...this.etcd].flatMap((p) => p.logs.filter((l) => l.startsWith('[harness]')));
      console.error(`a cluster test failed: every process's log is in ${dir}\nprocess exits:\n${exits.join('\n') || '(none)'}\n${tails.join('\n')}`);
    }
    for (const p of [...this.nodes, ...this.etcd]) this.kill(p, 'SIGCONT');
    for (const p of [...this.nodes, ...this.etcd]) this.kill(p, 'SIGKILL');
    await Promise.all([...this.nodes, ...this.etcd].map((p) => p.exited));
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

export interface ClusterStatus {
  databaseId: string;
  latestCommittedVersion: number;
  cluster: {
    nodeId: string;
    role: 'leader' | 'replica' | 'candidate';
    leader: string | null;
    appliedVersion: number;
    lastFailoverMs: number | null;
    log: { trimmedThrough: number; appends: number; fenced: number };
    members: { nodeId: string; applied: number }[];
  } | null;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
