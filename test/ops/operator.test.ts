// Issue 15 findings 3 and 11 as an operator meets them: real server, real CLI processes.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, tempDir, type TestServer } from '../support/server.js';
import { runShell, type ShellHooks } from '../support/shell.js';

const execFileP = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'bin/txkv.js');

let t: TestServer;
let dir: string;

interface Run {
  stdout: string;
  stderr: string;
  code: number;
  ms: number;
}

async function txkv(args: string[], env: NodeJS.ProcessEnv = {}, timeout = 20_000): Promise<Run> {
  const started = Date.now();
  return execFileP(process.execPath, [BIN, ...args], { timeout, env: { ...process.env, ...env } }).then(
    (r) => ({ ...r, code: 0, ms: Date.now() - started }),
    (e: { stdout: string; stderr: string; code: number | null; killed?: boolean }) => ({ stdout: e.stdout, stderr: e.stderr, code: e.killed ? -1 : (e.code ?? -1), ms: Date.now() - started }),
  );
}

const shell = (lines: string[], hooks?: ShellHooks, endpoint = t.server.url) => runShell(endpoint, lines, hooks);

beforeAll(async () => {
  t = await startTestServer({ shards: 2 });
  dir = tempDir('txkv-operator');
});
afterAll(async () => {
  await t?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('finding 3: backup to a path that cannot be written', () => {
  it('names the path given, exits 1 at once, and leaves nothing behind', async () => {
    const cases = [
      [path.join(dir, 'no-such-dir', 'x.jsonl'), /does not exist/],
      [path.join(dir, 'a-file', 'x.jsonl'), /not a directory/],
    ] as const;
    fs.writeFileSync(path.join(dir, 'a-file'), 'not a directory');
    for (const [out, why] of cases) {
      const r = await txkv(['backup', '--out', out, '--endpoint', t.server.url], {}, 15_000);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`cannot write the backup to ${out}`);
      expect(r.stderr).toMatch(why);
      expect(r.stderr).not.toContain('.partial');
      expect(r.ms).toBeLessThan(10_000);
      expect(fs.existsSync(out)).toBe(false);
      expect(fs.existsSync(`${out}.partial`)).toBe(false);
    }
    // and with no server to talk to: still no file left behind
    const out = path.join(dir, 'ok.jsonl');
    const r = await txkv(['backup', '--out', out, '--endpoint', 'ws://127.0.0.1:9'], {}, 15_000);
    expect(r.code).toBe(1);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('ok.jsonl'))).toEqual([]);
  });
});

describe('finding 11: smaller things', () => {
  it('a misspelt TXKV_* variable stops txkv serve and txkv config as a misspelt config key does', async () => {
    const r = await txkv(['config', '--print'], { TXKV_PROT: '7071' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('environment: TXKV_PROT: unknown variable; did you mean TXKV_PORT?');
    const d = tempDir('txkv-env');
    try {
      const s = await txkv(['serve', '--data-dir', d, '--port', '0'], { TXKV_LIMITS_MAX_CONECTIONS: '5' }, 20_000);
      expect(s.code).toBe(1);
      expect(s.stderr).toContain('TXKV_LIMITS_MAX_CONECTIONS: unknown variable; did you mean TXKV_LIMITS_MAX_CONNECTIONS?');
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
    // the variables txkv's own tools read are not settings and are accepted
    expect((await txkv(['config', '--print'], { TXKV_ENDPOINT: 'ws://x:1', TXKV_SEED: '3', TXKV_PORT: '7071' })).stdout).toContain('port = 7071');
  });

  it('get \\xZZ in the shell and on the command line is an error, not the literal text', async () => {
    await t.db.transact(async (tx) => tx.set('\\xZZ', 'literal'));
    const { out, code } = await shell(['get \\xZZ', 'get \\x4', 'set k\\q 1', 'get \\x6b\\\\']);
    expect(out).toContain('ERROR: KEY "\\\\xZZ": bad escape "\\\\xZZ" at offset 0');
    expect(out).toContain('bad escape "\\\\x4"');
    expect(out).toContain('bad escape "\\\\q"');
    expect(out).toContain("`k\\x5c': not found"); // \\ is a backslash
    expect(out).not.toContain('literal');
    expect(code).toBe(1);
    const r = await txkv(['get', '\\xZZ', '--endpoint', t.server.url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('bad escape');
  });

  it('one default page size (1,000) in the SDK, HTTP, txkv range and the shell; range --json says whether more rows exist', async () => {
    await t.db.transact(async (tx) => {
      for (let i = 0; i < 1001; i++) tx.set(`pg/${String(i).padStart(4, '0')}`, 'v');
    });
    const sdk = await t.db.createReadOnlyTransaction().getRange({ key: 'pg/', inclusive: true }, { key: 'pg0', inclusive: false });
    expect(sdk.kvs.length).toBe(1000);
    expect(sdk.hasMore).toBe(true);
    const b = (s: string): string => Buffer.from(s).toString('base64url');
    const http = (await (await fetch(`http://127.0.0.1:${t.server.port}/v1/range?begin=${b('pg/')}&end=${b('pg0')}`)).json()) as { kvs: unknown[]; hasMore: boolean };
    expect(http.kvs.length).toBe(1000);
    expect(http.hasMore).toBe(true);
    const cli = await txkv(['range', 'pg/', 'pg0', '--endpoint', t.server.url]);
    expect(cli.stdout.split('\n').filter((l) => l.startsWith('pg/'))).toHaveLength(1000);
    expect(cli.stdout).toContain('(more rows; 1000 shown');
    const j = JSON.parse((await txkv(['range', 'pg/', 'pg0', '--json', '--endpoint', t.server.url])).stdout) as { kvs: { key: string; value: string }[]; hasMore: boolean };
    expect(j.kvs).toHaveLength(1000);
    expect(j.hasMore).toBe(true);
    expect(Buffer.from(j.kvs[0]!.key, 'base64url').toString()).toBe('pg/0000');
    const last = JSON.parse((await txkv(['range', 'pg/1000', 'pg0', '--json', '--endpoint', t.server.url])).stdout) as { kvs: unknown[]; hasMore: boolean };
    expect(last).toEqual({ kvs: [{ key: b('pg/1000'), value: b('v') }], hasMore: false });
    const sh = await shell(['getrangekeys pg/ pg0']);
    expect(sh.out).toContain('limit 1000:');
    expect(sh.out).toContain('(more rows; 1000 shown)');
  });

  it("a shell transaction that outlives the MVCC window says transactions must finish within it", async () => {
    const short = await startTestServer({ shards: 1, mvccWindowMs: 300 });
    try {
      await short.db.transact(async (tx) => tx.set('old/a', '1'));
      const { out } = await shell(
        ['begin', 'get old/a', 'get old/a', 'set old/b 2', 'commit'],
        { at: 1, marker: "`old/a' is `1'", between: () => new Promise((r) => setTimeout(r, 1500)) },
        short.server.url,
      );
      expect(out).toContain('ERROR: TOO_OLD');
      expect(out).toContain("a transaction must finish within the server's MVCC window");
      expect(out).toContain('5 s by default');
      // the expired transaction is over: the next statements run on their own
      expect(out).toContain("committed: `old/b' set");
    } finally {
      await short.close();
    }
  });

  it('a start-up failure is printed once, and exits 1', async () => {
    const d = tempDir('txkv-twice');
    try {
      fs.writeFileSync(path.join(d, 'txkv-layout.json'), JSON.stringify({ format: 1, shards: 2, splitPoints: ['80'], createdAt: 'x' }));
      const r = await txkv(['serve', '--data-dir', d, '--shards', '4', '--port', '0', '--log-format', 'json'], {}, 20_000);
      expect(r.code).toBe(1);
      const all = r.stdout + r.stderr;
      expect(all.split('shards are not added or removed').length - 1, all).toBe(1);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it('an embedded server (startServer without a logger, as the conformance suite runs it) writes nothing to stdout', async () => {
    const d = tempDir('txkv-embedded');
    try {
      const script = `import { startServer } from ${JSON.stringify(path.join(ROOT, 'dist/src/index.js'))};
const s = await startServer({ port: 0, host: '127.0.0.1', dataDir: ${JSON.stringify(d)}, shards: 2 });
await s.close();
console.log('only this line');`;
      // a module file, not -e: run under npm test, node refused --input-type with -e (ERR_INPUT_TYPE_NOT_ALLOWED)
      const file = `${d}.mjs`;
      fs.writeFileSync(file, script);
      const r = await execFileP(process.execPath, [file], { timeout: 20_000 });
      expect(r.stdout).toBe('only this line\n');
    } finally {
      fs.rmSync(`${d}.mjs`, { force: true });
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it('no test registers a placeholder that counts as skipped where its feature is present', () => {
    const offenders: string[] = [];
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const f = path.join(d, e.name);
        if (e.isDirectory()) walk(f);
        else if (f.endsWith('.test.ts') && /\.skipIf\(\s*have\w*\s*\)/.test(fs.readFileSync(f, 'utf8'))) offenders.push(path.relative(ROOT, f));
      }
    };
    walk(path.join(ROOT, 'test'));
    expect(offenders).toEqual([]);
  });
});
