// `txkv watch`, `txkv subscribe` and the shell's `watch`, against a live server.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Shell } from '../../src/cli/shell.js';
import { startTestServer, type TestServer } from '../support/server.js';

const BIN = path.resolve(__dirname, '../../bin/txkv.js');
let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t.close();
});

/** Runs the CLI; `whenRunning` is called once it printed nothing yet but had time to start. */
function run(args: string[], whenRunning: () => Promise<void>): Promise<{ out: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args, '--endpoint', t.server.url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`txkv ${args.join(' ')} did not finish:\n${out}`));
    }, 30_000);
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ out, code });
    });
    setTimeout(() => void whenRunning(), 2500);
  });
}

describe('watch and subscribe from the command line', () => {
  it('txkv watch KEY prints the new value once it changes', { timeout: 40_000 }, async () => {
    await t.db.transact(async (tx) => tx.set('cli/w', 'before'));
    const r = await run(['watch', 'cli/w'], () => t.db.transact(async (tx) => tx.set('cli/w', 'after')));
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe('after');
  });

  it('txkv subscribe BEGIN END --count 2 prints JSON lines in version order', { timeout: 40_000 }, async () => {
    const r = await run(['subscribe', 'cli/s/', 'cli/s0', '--count', '2'], async () => {
      await t.db.transact(async (tx) => tx.set('cli/s/1', 'one'));
      await t.db.transact(async (tx) => tx.clearRange('cli/s/', 'cli/t'));
    });
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n').map((l) => JSON.parse(l) as { version: string; mutations: unknown[] });
    expect(lines.map((l) => l.mutations)).toEqual([[{ type: 'set', key: 'cli/s/1', value: 'one' }], [{ type: 'clearRange', key: 'cli/s/', end: 'cli/s0' }]]);
    expect(BigInt(lines[0]!.version) < BigInt(lines[1]!.version)).toBe(true);
  });

  it('the shell’s watch waits for a change and reports the new value, or no change in time', { timeout: 40_000 }, async () => {
    let out = '';
    const sh = new Shell({ db: t.db, endpoint: t.server.url, token: undefined, hex: false, write: (s) => (out += s) });
    await t.db.transact(async (tx) => tx.set('cli/sh', 'x'));
    const pending = sh.run('watch cli/sh 20');
    await new Promise((r) => setTimeout(r, 300));
    await t.db.transact(async (tx) => tx.set('cli/sh', 'y'));
    await pending;
    expect(out).toContain("`cli/sh' changed: now `y'");
    out = '';
    await sh.run('watch cli/sh 0.3');
    expect(out).toContain('no change within 0.3 s');
  });
});
