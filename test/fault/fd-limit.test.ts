// A connection flood under a low descriptor limit (issue 17 item 3): with
// `prlimit --nofile=256` on the server, 300 WebSocket connections. Before the fix the
// server accepted until descriptors ran out, then spun a core retrying accept on
// EMFILE, and the next RocksDB file could not be opened, which killed the server.
// Expected: a connection limit derived from the descriptor limit (with a reserve for
// RocksDB and the process), connections beyond it refused at once, no busy loop, and
// storage that goes on working.
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/index.js';
import { freePort, killAllServers, logEvent, spawnServer } from '../support/child-server.js';
import { tempDir } from '../support/server.js';

const dirs: string[] = [];
const sockets: WebSocket[] = [];
afterAll(() => {
  for (const s of sockets) s.terminate();
  killAllServers();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const hasPrlimit = spawnSync('prlimit', ['--version'], { stdio: 'ignore' }).status === 0;

/** CPU seconds (user + system) the process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

function openFds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Opens a WebSocket; resolves 'open' or the refusal (HTTP status or error code). */
function tryOpen(url: string): Promise<{ ws: WebSocket; outcome: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve({ ws, outcome: 'open' }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ ws, outcome: `http ${res.statusCode}` });
      res.resume();
    });
    ws.once('error', (e: Error & { code?: string }) => resolve({ ws, outcome: e.code ?? e.message }));
  });
}

describe('connection flood under a 256-descriptor limit', () => {
  it('refuses connections beyond the derived limit, does not spin, and keeps storage working', { timeout: 120_000 }, async (ctx) => {
    if (!hasPrlimit) {
      console.warn('skipped: prlimit (util-linux) is not installed');
      ctx.skip();
    }
    const dir = tempDir('txkv-fds');
    dirs.push(dir);
    const srv = await spawnServer(dir, await freePort(), { wrap: ['prlimit', '--nofile=256:256', '--'] });
    const pid = srv.proc.pid!;
    // the client used for the storage check connects before the flood
    const db = await connect({ endpoints: [srv.url], transactionTimeoutMs: 5000 });
    await db.transact(async (tx) => tx.set('k', 'v0'));
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const r = await tryOpen(srv.url);
      sockets.push(r.ws);
      outcomes.set(r.outcome, (outcomes.get(r.outcome) ?? 0) + 1);
    }
    const summary = JSON.stringify([...outcomes]);
    // at most the limit were admitted (the SDK connection counts), the rest refused with 503
    expect(outcomes.get('http 503') ?? 0, summary).toBeGreaterThan(0);
    // refused connections do not keep their descriptors
    await new Promise((r) => setTimeout(r, 500));
    expect(openFds(pid), summary).toBeLessThan(256 - 32);
    // no busy loop: the server idles with the flood connected
    const c0 = cpuSeconds(pid);
    await new Promise((r) => setTimeout(r, 3000));
    const cpu = (cpuSeconds(pid) - c0) / 3;
    expect(cpu, `server used ${(cpu * 100).toFixed(0)} % of a core while idle`).toBeLessThan(0.3);
    // storage is not starved: enough writes for RocksDB to switch memtables and WAL files
    // (a new file each), with the flood still connected
    const big = Buffer.alloc(90_000, 0xa5);
    for (let i = 0; i < 120; i++) {
      await db.transact(async (tx) => {
        for (let j = 0; j < 8; j++) tx.set(`big/${i}/${j}`, big);
      });
    }
    await db.transact(async (tx) => tx.set('k', 'v1'));
    expect(srv.proc.exitCode, srv.logs.slice(-20).join('\n')).toBeNull();
    const limit = logEvent(srv.logs, 'ConnectionLimit');
    expect(limit, srv.logs.join('\n')).toBeDefined();
    const max = Number(limit!.maxConnections);
    expect(max).toBeGreaterThan(16);
    expect(max).toBeLessThan(256 - 64);
    expect(outcomes.get('open') ?? 0, summary).toBeLessThanOrEqual(max - 1);
    await db.close();
    srv.proc.kill('SIGTERM');
    await srv.exited;
  });
});
