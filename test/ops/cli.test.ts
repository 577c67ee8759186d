// The txkv CLI's client subcommands against a live server, as child processes.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startServer, type RunningServer } from '../../src/index.js';
import { startTestServer, tempDir, text, type TestServer } from '../support/server.js';

const run = promisify(execFile);
const BIN = path.resolve(__dirname, '../../bin/txkv.js');
const SUBCOMMANDS = ['serve', 'config', 'shell', 'status', 'get', 'set', 'clear', 'range', 'backup', 'restore', 'bench', 'shard'];

let t: TestServer;
let dir: string;

async function txkv(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  return run(process.execPath, [BIN, ...args, ...(args[0] === 'bench' ? [] : ['--endpoint', t.server.url])], { timeout: 20_000 }).then(
    (r) => ({ ...r, code: 0 }),
    (e: { stdout: string; stderr: string; code: number }) => ({ stdout: e.stdout, stderr: e.stderr, code: e.code }),
  );
}

beforeAll(async () => {
  // the balancer off: the status test counts one row per range of the initial 3-shard layout
  t = await startTestServer({ shards: 3, distribution: { enabled: false } });
  dir = tempDir('txkv-cli');
});
afterAll(async () => {
  await t.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

// 90 s a test: each CLI call is a Node process that loads the CLI (~0.5 s of CPU), and
// 'set, get, range and clear' makes 13 in a row; at load 15 (15:44, 2 cores) they took over
// the 30 s default (each call ~2-3 s)
describe('txkv CLI', { timeout: 90_000 }, () => {
  it.each(SUBCOMMANDS)('txkv %s --help prints its usage', async (cmd) => {
    const r = await run(process.execPath, [BIN, cmd, '--help'], { timeout: 20_000 });
    expect(r.stdout).toContain(`txkv ${cmd}`);
    expect(r.stdout).toMatch(/usage/);
  });

  it('set, get, range and clear with text, \\xNN escapes and --hex', async () => {
    expect((await txkv('set', 'cli/a', 'one')).stdout).toMatch(/^committed at version \d+/);
    expect((await txkv('set', 'cli/\\x00\\xff', 'bin\\x01')).code).toBe(0);
    expect((await txkv('set', '--hex', Buffer.from('cli/h').toString('hex'), 'cafe')).code).toBe(0);
    expect([...(await t.db.createReadOnlyTransaction().get('cli/h'))!]).toEqual([0xca, 0xfe]);
    expect((await txkv('get', 'cli/a')).stdout).toBe('one\n');
    expect((await txkv('get', 'cli/\\x00\\xff')).stdout).toBe('bin\\x01\n');
    expect((await txkv('get', '--hex', Buffer.from('cli/a').toString('hex'))).stdout).toBe(Buffer.from('one').toString('hex') + '\n');
    const missing = await txkv('get', 'cli/missing');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('not found');
    const r = await txkv('range', 'cli/', 'cli0');
    expect(r.stdout).toBe('cli/\\x00\\xff = bin\\x01\ncli/a = one\ncli/h = \\xca\\xfe\n(3 rows)\n');
    expect((await txkv('range', 'cli/', 'cli0', '--limit', '1')).stdout).toContain('more rows');
    expect((await txkv('clear', 'cli/a')).code).toBe(0);
    expect(await t.db.createReadOnlyTransaction().get('cli/a')).toBeNull();
    expect((await txkv('clear', '--range', 'cli/', 'cli0')).code).toBe(0);
    expect((await t.db.createReadOnlyTransaction().getRange({ key: 'cli/', inclusive: true }, { key: 'cli0', inclusive: false })).kvs).toHaveLength(0);
  });

  it('range returns --limit rows even when the server cuts its pages at ~1 MB', async () => {
    // 20 rows of 90 KB: the server's pages hold about 11 of them
    await t.db.transact(async (tx) => {
      for (let i = 0; i < 20; i++) tx.set(`clibig/${String(i).padStart(2, '0')}`, new Uint8Array(90_000).fill(i));
    });
    const all = await txkv('range', 'clibig/', 'clibig0', '--keys-only');
    expect(all.stdout.split('\n').filter((l) => l.startsWith('clibig/'))).toHaveLength(20);
    expect(all.stdout).toContain('(20 rows)');
    const some = await txkv('range', 'clibig/', 'clibig0', '--keys-only', '--limit', '15');
    expect(some.stdout).toContain('(more rows; 15 shown, raise --limit)');
    const back = await txkv('range', 'clibig/', 'clibig0', '--keys-only', '--limit', '15', '--reverse');
    const keys = back.stdout.split('\n').filter((l) => l.startsWith('clibig/'));
    expect(keys).toHaveLength(15);
    expect(keys[0]).toBe('clibig/19');
    expect(keys[14]).toBe('clibig/05');
    const json = JSON.parse((await txkv('range', 'clibig/', 'clibig0', '--json', '--keys-only')).stdout) as { kvs: unknown[]; hasMore: boolean };
    expect(json.kvs).toHaveLength(20);
    expect(json.hasMore).toBe(false);
    await t.db.transact(async (tx) => tx.clearRange('clibig/', 'clibig0'));
  });

  it('bad usage exits 2 with the usage', async () => {
    const r = await txkv('set', 'only-key');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('usage: txkv set');
    expect((await txkv('get', 'k', '--bogus')).code).toBe(2);
    // an unknown command and no command are usage errors too (they exited 1, as a failed request does)
    for (const args of [['bogus'], []]) {
      const u = await run(process.execPath, [BIN, ...args], { timeout: 20_000 }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      );
      expect(u.code, args.join(' ')).toBe(2);
      expect(u.stderr).toContain('usage: txkv');
    }
    // an inverted backup range is refused, and no file is written
    const file = path.join(dir, 'inverted.jsonl');
    const inv = await txkv('backup', '--out', file, '--begin', 'b', '--end', 'a', '--no-progress');
    expect(inv.code).toBe(2);
    expect(inv.stderr).toContain('--begin b is after --end a');
    expect(fs.existsSync(file)).toBe(false);
  });

  it('backup writes one consistent snapshot; restore brings it back', async () => {
    const rows = 2500; // several pages of 1000, on several shards
    await t.db.transact(async (tx) => {
      for (let i = 0; i < rows; i++) tx.set(`bk/${String(i).padStart(5, '0')}`, `v${i}`);
      tx.set(new Uint8Array([0x62, 0x6b, 0x2f, 0xf0, 0x00]), new Uint8Array([0, 1, 2]));
    });
    const file = path.join(dir, 'backup.jsonl');
    const b = await txkv('backup', '--out', file, '--begin', 'bk/', '--end', 'bk0');
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toContain(`backed up ${rows + 1} rows`);
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    expect(JSON.parse(lines[0]!).format).toBe('txkv-backup');
    expect(JSON.parse(lines[lines.length - 1]!)).toMatchObject({ end: true, rows: rows + 1 });

    // change the range after the backup, then restore with --clear: back to the snapshot
    await t.db.transact(async (tx) => {
      tx.clearRange('bk/00000', 'bk/01000');
      tx.set('bk/zzz-added-later', 'x');
    });
    const r = await txkv('restore', '--in', file, '--clear');
    expect(r.code, r.stderr).toBe(0);
    const got = await t.db.createReadOnlyTransaction().getRange({ key: 'bk/', inclusive: true }, { key: 'bk0', inclusive: false }, { limit: 10_000 });
    expect(got.kvs).toHaveLength(rows + 1);
    expect(text(got.kvs[7]!.value)).toBe('v7');
    expect([...got.kvs[rows]!.value]).toEqual([0, 1, 2]);

    // a truncated file is refused before anything is written
    fs.writeFileSync(path.join(dir, 'cut.jsonl'), lines.slice(0, 10).join('\n') + '\n');
    const cut = await txkv('restore', '--in', path.join(dir, 'cut.jsonl'));
    expect(cut.code).toBe(1);
    expect(cut.stderr).toContain('truncated');
  });

  it('status prints versions, shards and rates; --json is /v1/status', async () => {
    const r = await txkv('status');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/latest committed version \d+/);
    expect(r.stdout).toMatch(/shards:\n/);
    expect(r.stdout.split('\n').filter((l) => /^ {2}\d+ {2,}\[/.test(l))).toHaveLength(3);
    const j = JSON.parse((await txkv('status', '--json')).stdout) as { shards: unknown[]; durability: string };
    expect(j.shards).toHaveLength(3);
    expect(j.durability).toBe('fsync');
  });

  it('status, shard map and backup reach a server on a port that fetch refuses ("bad port": 6000, 6665, 10080, ...)', { timeout: 60_000 }, async () => {
    // undici's fetch refuses the WHATWG bad ports before connecting; the server listens on
    // them, so the CLI's HTTP calls must too. The first of these ports that is free.
    // start-up warns that browsers (the dashboard) cannot reach such a port
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }));
    let bad: RunningServer | null = null;
    const badDir = tempDir('txkv-bad-port');
    for (const port of [6000, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080, 4190, 6566]) {
      bad = await startServer({ port, host: '127.0.0.1', dataDir: badDir, shards: 1 }, { logger }).catch(() => null);
      if (bad) break;
    }
    if (!bad) throw new Error('none of the bad ports tried was free');
    try {
      const warning = lines.map((l) => JSON.parse(l) as { event?: string; port?: number; msg: string }).find((l) => l.event === 'PortBlockedByBrowsers');
      expect(warning).toMatchObject({ port: bad.port, msg: expect.stringContaining('the dashboard and the browser SDK cannot reach this server') });
      const endpoint = bad.url;
      expect(Number(new URL(endpoint).port)).toBeGreaterThan(0);
      const st = await run(process.execPath, [BIN, 'status', '--endpoint', endpoint], { timeout: 20_000 }).catch((e: { stdout: string; stderr: string }) => e);
      expect((st as { stderr: string }).stderr).toBe('');
      expect(st.stdout).toMatch(/latest committed version \d+/);
      const map = await run(process.execPath, [BIN, 'shard', 'map', '--json', '--endpoint', endpoint], { timeout: 20_000 }).catch((e: { stdout: string; stderr: string }) => e);
      expect((map as { stderr: string }).stderr).toBe('');
      expect(JSON.parse(map.stdout)).toHaveProperty('map');
      const file = path.join(dir, 'bad-port.backup');
      const b = await run(process.execPath, [BIN, 'backup', '--out', file, '--no-progress', '--endpoint', endpoint], { timeout: 20_000 }).catch((e: { stdout: string; stderr: string }) => e);
      expect((b as { stderr: string }).stderr).toBe('');
      expect(fs.readFileSync(file, 'utf8').split('\n')[0]).toContain('snapshotId');
    } finally {
      await bad.close();
      fs.rmSync(badDir, { recursive: true, force: true });
    }
  });

  it('a client command against no server fails with NETWORK_ERROR', async () => {
    const r = await run(process.execPath, [BIN, 'get', 'k', '--endpoint', 'ws://127.0.0.1:9'], { timeout: 20_000 }).catch((e: { code: number; stderr: string }) => e);
    expect((r as { code: number }).code).toBe(1);
    expect((r as { stderr: string }).stderr).toContain('NETWORK_ERROR');
  });

  it('--endpoint takes a cluster\'s nodes comma-separated and uses one that answers', async () => {
    // before: "endpoint "ws://a,ws://b" is not a ws:// or wss:// URL; write it as ws://a,ws://b"
    // and only one node could be named (a repeated --endpoint kept the last)
    const down = 'ws://127.0.0.1:9';
    for (const [args, env] of [
      [['--endpoint', `${down},${t.server.url}`], {}],
      [[], { TXKV_ENDPOINT: `${down}, ${t.server.url}` }],
    ] as const) {
      const r = await run(process.execPath, [BIN, 'set', 'cli/multi', 'v', ...args], { timeout: 20_000, env: { ...process.env, ...env } });
      expect(r.stdout).toMatch(/^committed at version \d+/);
    }
    expect(text(await t.db.createReadOnlyTransaction().get('cli/multi'))).toBe('v');
    // status too (it failed 'cannot reach http://127.0.0.1:9/v1/status' while the first node was down)
    const st = await run(process.execPath, [BIN, 'status', '--endpoint', `${down},${t.server.url}`], { timeout: 20_000 });
    expect(st.stdout).toContain(`at ${t.server.url}:`);
    expect(st.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9\/v1\/status.*; asking ws:/);
    // only a node that does not answer is passed over; an error answer is the answer
    const bad = await run(process.execPath, [BIN, 'status', '--endpoint', `${t.server.url}/x,${t.server.url}`], { timeout: 20_000 }).catch((e: { code: number; stderr: string }) => e);
    expect(bad).toMatchObject({ code: 1, stderr: expect.stringMatching(/\/x\/v1\/status: 404/) });
  });

  it('a reader that closes the pipe early (txkv range | head) ends the CLI quietly, not with an unhandled EPIPE', async () => {
    await t.db.transact(async (tx) => {
      for (let i = 0; i < 3000; i++) tx.set(`pipe/${String(i).padStart(5, '0')}`, 'v'.repeat(100));
    });
    // as `| head -1`: read the first chunk, then close the read end
    const child = spawn(process.execPath, [BIN, 'range', 'pipe/', 'pipe0', '--limit', '3000', '--endpoint', t.server.url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(stderr).not.toContain('EPIPE');
    expect(code).toBe(0);
  });
});
