// A frozen server (kill -STOP; its TCP connections stay up) and client deadlines
// (issue 17 item 4). Before the fix the deadline was checked only when a call started:
// get, getRange, getReadVersion, commit and transact() stayed pending for as long as
// the TCP connection lived. Expected: every pending call fails at the transaction's
// deadline (TIMEOUT; a commit in flight MAYBE_COMMITTED), and without a deadline the
// client's pings notice the dead peer.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, TxnError, type Database } from '../../src/index.js';
import { DEAD_AFTER_MS, PING_INTERVAL_MS } from '../../src/client/connection.js';
import { freePort, killAllServers, spawnServer, type ChildServer } from '../support/child-server.js';
import { startTestServer, tempDir } from '../support/server.js';

const dirs: string[] = [];
const frozen: ChildServer[] = [];
afterAll(() => {
  for (const s of frozen) s.proc.kill('SIGCONT');
  killAllServers();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** How a promise settled and when (ms after `t0`). */
async function outcome(p: Promise<unknown>, t0: number): Promise<{ code: string; ms: number }> {
  try {
    await p;
    return { code: 'OK', ms: Date.now() - t0 };
  } catch (e) {
    return { code: e instanceof TxnError ? e.code : String(e), ms: Date.now() - t0 };
  }
}

async function startFrozenable(): Promise<{ srv: ChildServer; db: Database; dbNoTimeout: Database }> {
  const dir = tempDir('txkv-stop');
  dirs.push(dir);
  const srv = await spawnServer(dir, await freePort());
  frozen.push(srv);
  const db = await connect({ endpoints: [srv.url], transactionTimeoutMs: 2000, maxRetryCount: 1000 });
  const dbNoTimeout = await connect({ endpoints: [srv.url], transactionTimeoutMs: 0 });
  await db.transact(async (tx) => tx.set('k', 'v'));
  return { srv, db, dbNoTimeout };
}

describe('frozen server (SIGSTOP)', () => {
  it('every pending call fails at the transaction deadline: TIMEOUT, a commit MAYBE_COMMITTED', { timeout: 30_000 }, async () => {
    const { srv, db, dbNoTimeout } = await startFrozenable();
    const t0 = Date.now();
    const reader = db.createTransaction();
    await reader.getReadVersion();
    const writer = db.createTransaction();
    await writer.getReadVersion();
    writer.set('k', 'w');
    const fresh = db.createTransaction(); // asks for its read version only after the freeze
    srv.proc.kill('SIGSTOP');
    const calls = {
      get: outcome(reader.get('k'), t0),
      getRange: outcome(reader.getRange({ key: 'a', inclusive: true }, { key: 'z', inclusive: true }), t0),
      getReadVersion: outcome(fresh.getReadVersion(), t0),
      commit: outcome(writer.commit(), t0),
      transact: outcome(
        db.transact(async (tx) => {
          await tx.get('k');
          tx.set('t', 'x');
        }),
        Date.now(),
      ),
      // a blind write needs no read version: its commit is in flight at the deadline
      transactBlind: outcome(db.transact(async (tx) => tx.set('t', 'x')), Date.now()),
    };
    const r = Object.fromEntries(await Promise.all(Object.entries(calls).map(async ([k, p]) => [k, await p] as const)));
    const all = JSON.stringify(r);
    expect(r.get!.code, all).toBe('TIMEOUT');
    expect(r.getRange!.code, all).toBe('TIMEOUT');
    expect(r.getReadVersion!.code, all).toBe('TIMEOUT');
    expect(r.commit!.code, all).toBe('MAYBE_COMMITTED');
    expect(r.transact!.code, all).toBe('TIMEOUT');
    expect(r.transactBlind!.code, all).toBe('MAYBE_COMMITTED');
    // at the deadline (2 s after the transactions began), not at the ping bound (DEAD_AFTER_MS,
    // 10 s) or never; 3 s of slack for a loaded CI machine's late timers (was 1.5 s)
    for (const k of Object.keys(calls)) expect(r[k]!.ms, all).toBeLessThan(5000);
    srv.proc.kill('SIGCONT');
    await db.close();
    await dbNoTimeout.close();
  });

  it('without a deadline, the pings notice the frozen server: NETWORK_ERROR, a commit MAYBE_COMMITTED', { timeout: 60_000 }, async () => {
    const { srv, db, dbNoTimeout } = await startFrozenable();
    const reader = dbNoTimeout.createTransaction();
    await reader.getReadVersion();
    const writer = dbNoTimeout.createTransaction();
    await writer.getReadVersion();
    writer.set('k', 'w2');
    srv.proc.kill('SIGSTOP');
    const t0 = Date.now();
    const [get, commit] = await Promise.all([outcome(reader.get('k'), t0), outcome(writer.commit(), t0)]);
    const all = JSON.stringify({ get, commit });
    expect(get.code, all).toBe('NETWORK_ERROR');
    expect(commit.code, all).toBe('MAYBE_COMMITTED');
    expect(get.ms, all).toBeLessThan(DEAD_AFTER_MS + 2 * PING_INTERVAL_MS + 1000);
    srv.proc.kill('SIGCONT');
    await db.close();
    await dbNoTimeout.close();
  });

  it('a stopped client (kill -STOP past the ping bound) does not give up a live server once it runs again', { timeout: 60_000 }, async () => {
    // the client in a child process (dist/, as npm test builds it), stopped without burning CPU;
    // before the fix its first tick after SIGCONT counted the stop as the server's silence
    const t = await startTestServer();
    const connection = path.resolve('dist/src/client/connection.js');
    const script = `import { Connection } from ${JSON.stringify(connection)};
      const c = await Connection.open(process.argv[1], undefined, 5000);
      process.stdout.write('ready\\n');
      process.stdin.once('data', () => { process.stdout.write('alive ' + c.alive + '\\n'); process.exit(0); });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, t.server.url], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const said = (what: string): Promise<void> =>
      new Promise((resolve, reject) => {
        const check = (): void => void (out.includes(what) && resolve());
        child.stdout.on('data', check);
        child.once('exit', (code) => setImmediate(() => (check(), reject(new Error(`client exited ${code} before saying ${what}: ${out}`)))));
        check();
      });
    try {
      await said('ready');
      child.kill('SIGSTOP');
      await new Promise((r) => setTimeout(r, DEAD_AFTER_MS + 1500));
      child.kill('SIGCONT');
      // its late tick, then a ping answered on the next one
      await new Promise((r) => setTimeout(r, PING_INTERVAL_MS + 1000));
      child.stdin.write('?\n');
      await said('alive ');
      expect(out).toContain('alive true');
    } finally {
      child.kill('SIGKILL');
      await t.close();
    }
  });
});
