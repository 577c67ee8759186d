// Starts and stops the systems compared by bench/compare.ts, each on loopback on a free port
// with a temporary data dir: txkv (a forked server process), etcd 3.4, Redis 7 (AOF,
// appendfsync always) and PostgreSQL 15 (initdb + pg_ctl, as the `postgres` user when run
// as root, since initdb refuses root). A peer that is not installed is reported, not started.

import { execFile, fork, spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { accessSync, chownSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { SERVER_NODE_FLAGS } from '../src/server/node-flags.js';
import type { AdapterSpec } from './adapter.js';
import { benchSplitPoints } from './data.js';

const execFileP = promisify(execFile);

export const PG_BIN = '/usr/lib/postgresql/15/bin';

export interface RunningPeer {
  system: AdapterSpec['system'];
  spec: AdapterSpec;
  /** Version string for the report. */
  version: string;
  /** PIDs of the system's server processes (CPU per operation); absent where not tracked (PostgreSQL's backends). */
  pids?: () => number[];
  stop(): Promise<void>;
}

export type PeerStart = { ok: true; peer: RunningPeer } | { ok: false; reason: string };

export function which(cmd: string): string | undefined {
  if (cmd.includes('/')) return canExec(cmd) ? cmd : undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, cmd);
    if (canExec(p)) return p;
  }
  return undefined;
}

function canExec(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * A TCP port free on 127.0.0.1 now, for a server started a moment later: one probed at random
 * in [20000, 32768), below Linux's ephemeral range (ip_local_port_range 32768-60999). A port
 * from `listen(0)` is ephemeral: between the probe and the server's bind, any outgoing
 * connection (an etcd client, a WebSocket client of another test) may take it as its local
 * port, and a node restarted on its port after a kill -9 may find it taken the same way (the
 * CI run of 20362ce failed test/cluster/auto-shards.test.ts on '127.0.0.1:39409 is already
 * in use'). Outside that range only another listener can collide, and the probe skips those.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = 20_000 + randomInt(12_768);
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
    if (attempt >= 100) throw new Error('no free TCP port in [20000, 32768) on 127.0.0.1 after 100 tries');
  }
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = new Socket();
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
    sock.connect(port, '127.0.0.1');
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not become ready within ${timeoutMs} ms`);
}

function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `txkv-bench-${name}-`));
}

/** Stops a spawned server: SIGTERM, then SIGKILL after `graceMs`. */
function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** SERVER_NODE_FLAGS of the build at `root` (this build's when absent; none for a build older than them). */
export async function nodeFlags(root?: string): Promise<readonly string[]> {
  if (!root) return SERVER_NODE_FLAGS;
  try {
    const m = (await import(pathToFileURL(join(root, 'dist/src/server/node-flags.js')).href)) as { SERVER_NODE_FLAGS?: readonly string[] };
    return m.SERVER_NODE_FLAGS ?? [];
  } catch {
    return [];
  }
}

function collectOutput(child: ChildProcess): () => string {
  let out = '';
  const add = (b: Buffer): void => {
    out = (out + b.toString()).slice(-4000);
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  return () => out;
}

/**
 * `root`: another txkv build's repository root to run (compare.js --txkv-root); `label` names it in the report;
 * `distribution`: the server's [distribution] settings (compare.js --txkv-distribution);
 * `gatewayThreads`: the server's gatewayThreads setting (compare.js --gateway-threads).
 */
export async function startTxkv(shards: number, splitPoints?: string[], root?: string, label = 'txkv', distribution?: { enabled: boolean }, gatewayThreads = 0): Promise<PeerStart> {
  const dataDir = tempDir('txkv');
  // started as `txkv serve` starts (bin/txkv.js's node options), each build with its own
  // options (a before/after run then measures them too)
  const child = fork(fileURLToPath(new URL('./serve-txkv.js', import.meta.url)), [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv: [...process.execArgv, ...(await nodeFlags(root))] });
  const output = collectOutput(child);
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.once('message', (m: { url: string }) => resolve(m.url));
      child.once('exit', (code) => reject(new Error(`txkv server exited (${code}): ${output()}`)));
      child.send({ dataDir, shards, splitPoints, ...(root ? { root } : {}), ...(distribution ? { distribution } : {}), ...(gatewayThreads ? { gatewayThreads } : {}) });
    });
    return {
      ok: true,
      peer: {
        system: 'txkv',
        spec: { system: 'txkv', endpoint: url, ...(label !== 'txkv' ? { label } : {}) },
        version: `${label}${root ? ` (${root})` : ''} (${shards} shard${shards === 1 ? '' : 's'}${gatewayThreads > 0 ? `, ${gatewayThreads} gateway thread${gatewayThreads === 1 ? '' : 's'}` : ''})`,
        pids: () => (child.pid && child.exitCode === null ? [child.pid] : []),
        async stop() {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            child.send('close');
          });
          rmSync(dataDir, { recursive: true, force: true });
        },
      },
    };
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
    return { ok: false, reason: (err as Error).message };
  }
}

export async function startEtcd(): Promise<PeerStart> {
  const bin = which('etcd');
  if (!bin) return { ok: false, reason: 'etcd is not installed (scripts/install-peers.sh installs Debian etcd-server)' };
  const version = (await execFileP(bin, ['--version'])).stdout.split('\n')[0]?.trim() ?? 'etcd';
  const dataDir = tempDir('etcd');
  const port = await freePort();
  const peerPort = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const child = spawn(
    bin,
    [
      '--name', 'bench', '--data-dir', dataDir,
      '--listen-client-urls', url, '--advertise-client-urls', url,
      '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `bench=${peerUrl}`,
      '--logger', 'zap', '--log-level', 'error',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output = collectOutput(child);
  const stop = async (): Promise<void> => {
    await stopChild(child);
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await waitFor('etcd', async () => {
      if (child.exitCode !== null) throw new Error(`etcd exited: ${output()}`);
      return tcpOpen(port);
    });
    return { ok: true, peer: { system: 'etcd', spec: { system: 'etcd', url }, version, pids: () => (child.pid ? [child.pid] : []), stop } };
  } catch (err) {
    await stop();
    return { ok: false, reason: `${(err as Error).message}: ${output()}` };
  }
}

export async function startRedis(): Promise<PeerStart> {
  const bin = which('redis-server');
  if (!bin) return { ok: false, reason: 'redis-server is not installed (scripts/install-peers.sh installs Debian redis-server)' };
  const version = (await execFileP(bin, ['--version'])).stdout.trim().split(' ').slice(0, 3).join(' ');
  const dataDir = tempDir('redis');
  const port = await freePort();
  const child = spawn(
    bin,
    [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dataDir,
      '--appendonly', 'yes', '--appendfsync', 'always', '--save', '',
      '--protected-mode', 'no', '--daemonize', 'no', '--maxclients', '1000',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output = collectOutput(child);
  const stop = async (): Promise<void> => {
    await stopChild(child);
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await waitFor('redis', async () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited: ${output()}`);
      return tcpOpen(port);
    });
    return { ok: true, peer: { system: 'redis', spec: { system: 'redis', host: '127.0.0.1', port }, version, pids: () => (child.pid ? [child.pid] : []), stop } };
  } catch (err) {
    await stop();
    return { ok: false, reason: `${(err as Error).message}: ${output()}` };
  }
}

/** Runs a PostgreSQL tool as the `postgres` user when we are root (initdb refuses root). */
async function pgTool(tool: string, args: string[]): Promise<string> {
  const bin = join(PG_BIN, tool);
  const asRoot = process.getuid?.() === 0;
  const { stdout, stderr } = asRoot ? await execFileP('runuser', ['-u', 'postgres', '--', bin, ...args]) : await execFileP(bin, args);
  return stdout + stderr;
}

export async function startPostgres(): Promise<PeerStart> {
  if (!canExec(join(PG_BIN, 'initdb'))) return { ok: false, reason: `PostgreSQL 15 is not installed (${PG_BIN}/initdb missing; scripts/install-peers.sh installs Debian postgresql)` };
  const root = tempDir('postgres');
  const dataDir = join(root, 'data');
  if (process.getuid?.() === 0) {
    const pw = (await execFileP('id', ['-u', 'postgres']).catch(() => ({ stdout: '' }))).stdout.trim();
    const gid = (await execFileP('id', ['-g', 'postgres']).catch(() => ({ stdout: '' }))).stdout.trim();
    if (!pw) return { ok: false, reason: 'running as root and there is no postgres user to run initdb as' };
    chownSync(root, Number(pw), Number(gid));
  }
  const port = await freePort();
  const user = 'bench';
  let started = false;
  const stop = async (): Promise<void> => {
    if (started) await pgTool('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', 'stop']).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await pgTool('initdb', ['-D', dataDir, '-A', 'trust', '-U', user, '-E', 'UTF8', '--no-instructions']);
    const opts = [
      `-p ${port}`, `-k ${root}`, '-c listen_addresses=127.0.0.1', '-c max_connections=300',
      '-c shared_buffers=256MB', '-c synchronous_commit=on', '-c fsync=on',
      "-c default_transaction_isolation=serializable", '-c max_pred_locks_per_transaction=256',
    ].join(' ');
    await pgTool('pg_ctl', ['-D', dataDir, '-l', join(root, 'log'), '-o', opts, '-w', '-t', '60', 'start']);
    started = true;
    const version = (await pgTool('postgres', ['--version'])).trim();
    return { ok: true, peer: { system: 'postgres', spec: { system: 'postgres', host: '127.0.0.1', port, user, database: 'postgres' }, version, stop } };
  } catch (err) {
    await stop();
    return { ok: false, reason: `PostgreSQL did not start: ${(err as Error).message}` };
  }
}

/**
 * `rows`: the flat keyspace's size, so txkv's shards split it evenly (benchSplitPoints);
 * `txkv.onePrefix`: use the server's default split points instead (every bench key shares
 * the prefix 'k000…' and starts on one worker); `txkv.distribution`: automatic distribution on or off.
 */
export function startPeer(system: AdapterSpec['system'], shards: number, rows?: number, txkv: { onePrefix?: boolean; distribution?: boolean } = {}): Promise<PeerStart> {
  switch (system) {
    case 'txkv':
      return startTxkv(
        shards,
        rows !== undefined && !txkv.onePrefix ? benchSplitPoints(rows, shards) : undefined,
        undefined,
        'txkv',
        txkv.distribution === undefined ? undefined : { enabled: txkv.distribution },
      );
    case 'etcd':
      return startEtcd();
    case 'redis':
      return startRedis();
    case 'postgres':
      return startPostgres();
  }
}
