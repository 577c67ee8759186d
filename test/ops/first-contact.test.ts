// Issue 15 finding 10: what a first-time operator meets. Real CLI processes.
import { execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, killAllServers, logEvent, spawnServer } from '../support/child-server.js';
import { tempDir } from '../support/server.js';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'bin/txkv.js');

afterAll(() => killAllServers());

describe('finding 10: first contact', () => {
  it('txkv serve prints the dashboard, HTTP API and metrics URLs, and they answer', async () => {
    const d = tempDir('txkv-first');
    const port = await freePort();
    const child = await spawnServer(d, port);
    try {
      const started = logEvent(child.logs, 'ServerStarted')!;
      const web = `http://127.0.0.1:${port}`;
      expect(started.msg).toBe(`txkv serving on ws://127.0.0.1:${port}; dashboard ${web}/, HTTP API ${web}/v1/, metrics ${web}/metrics`);
      expect(started).toMatchObject({ dashboardUrl: `${web}/`, metricsUrl: `${web}/metrics`, statusUrl: `${web}/v1/status` });
      for (const u of [`${web}/`, `${web}/metrics`, `${web}/v1/status`, `${web}/v1/openapi.json`]) expect((await fetch(u)).status, u).toBe(200);
    } finally {
      child.proc.kill('SIGKILL');
      await child.exited;
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it('npm start: the shell npm runs the script in execs the server, so the SIGTERM npm forwards stops it', { timeout: 30_000 }, async () => {
    // npm start runs `sh -c "<script>"` and, on SIGTERM, signals that shell. Without `exec`
    // the shell died and left the server running, orphaned, holding the port and the data
    // directory. Run the script's own text the way npm does, with the build replaced by `true`.
    const script = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
    expect(script).toContain('npm run build && ');
    const d = tempDir('txkv-npm-start');
    const port = await freePort();
    const sh = spawn('sh', ['-c', `${script.replace('npm run build && ', 'true && ')} --port ${port} --data-dir ${d}/data --log-format json`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    sh.stdout.on('data', (b: Buffer) => (out += b.toString()));
    sh.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const shExited = new Promise<void>((resolve) => sh.once('exit', () => resolve()));
    try {
      for (const t0 = Date.now(); !out.includes('"ServerStarted"'); ) {
        if (Date.now() - t0 > 20_000) throw new Error(`no ServerStarted within 20 s:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      sh.kill('SIGTERM');
      await shExited;
      // the port is free again once the server has stopped (an orphan would keep it)
      let free = false;
      for (const t0 = Date.now(); !free && Date.now() - t0 < 10_000; ) {
        free = await fetch(`http://127.0.0.1:${port}/v1/status`).then(
          () => false,
          () => true,
        );
        if (!free) await new Promise((r) => setTimeout(r, 100));
      }
      expect(free, `a server still answers on port ${port} after SIGTERM to npm start's shell:\n${out}`).toBe(true);
    } finally {
      // an orphan (the bug) is found by its port and stopped, so the suite leaves nothing behind
      spawnSync('sh', ['-c', `kill $(ss -ltnpH 'sport = :${port}' | grep -o 'pid=[0-9]*' | cut -d= -f2) 2>/dev/null`]);
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it('Ctrl-C of npm start: the SIGINT the terminal sends and the one npm forwards are one graceful stop (exit 0), not "second signal: exit now"', { timeout: 30_000 }, async () => {
    // Ctrl-C signals the terminal's whole foreground process group, npm and the server
    // alike, and npm forwards the SIGINT it got to the server as well: two SIGINTs within
    // milliseconds (seen with `setsid npm start` + `kill -INT -PGID`: "second SIGINT:
    // exiting now", exit 130, every time). The server sees the same here.
    const d = tempDir('txkv-ctrl-c');
    const port = await freePort();
    const child = await spawnServer(d, port);
    try {
      // the second once the first was handled (two sent at once merge into one pending signal)
      child.proc.kill('SIGINT');
      for (const t0 = Date.now(); !logEvent(child.logs, 'ShutdownRequested') && Date.now() - t0 < 10_000; ) await new Promise((r) => setTimeout(r, 2));
      child.proc.kill('SIGINT');
      const { code } = await child.exited;
      const logs = child.logs.join('\n');
      expect(logs).not.toContain('exiting now');
      expect(code, logs).toBe(0);
      expect(logEvent(child.logs, 'ServerStopped'), logs).toBeDefined();
    } finally {
      child.proc.kill('SIGKILL');
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it('txkv --version prints the package version', async () => {
    const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    for (const flag of ['--version', '-V', 'version']) {
      const r = await run(process.execPath, [BIN, flag], { timeout: 10_000 });
      expect(r.stdout).toBe(`txkv ${version}\n`);
    }
    expect((await run(process.execPath, [BIN, '--help'], { timeout: 10_000 })).stdout).toContain('txkv --version');
  });

  it('txkv before a build says to run npm run build', async () => {
    // a checkout without dist/: the same bin script, a package.json, nothing built
    const d = tempDir('txkv-unbuilt');
    try {
      fs.mkdirSync(path.join(d, 'bin'));
      fs.copyFileSync(BIN, path.join(d, 'bin/txkv.js'));
      fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(d, 'package.json'));
      const r = await run(process.execPath, [path.join(d, 'bin/txkv.js'), 'get', 'x'], { timeout: 10_000 }).catch((e: { code: number; stderr: string }) => e);
      expect((r as { code: number }).code).toBe(1);
      expect((r as { stderr: string }).stderr).toContain('txkv is not built yet: run `npm run build`');
      expect((r as { stderr: string }).stderr).not.toContain('Cannot find module');
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it('npm test from a clone outside the workspace: the missing conformance suite is a clear error at once; TXKV_CONFORMANCE points at it or skips it, saying so', { timeout: 60_000 }, async () => {
    const script = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { test: string } }).scripts.test;
    // the check comes first (before the minutes of vitest) and the suite runs through the script
    expect(script.startsWith('bash scripts/conformance.sh --check && ')).toBe(true);
    expect(script).toContain('&& bash scripts/conformance.sh &&');
    expect(script).not.toContain('../shared/conformance');
    // a clone with no ../shared next to it
    const d = tempDir('txkv-clone');
    const env = { ...process.env };
    delete env.TXKV_CONFORMANCE;
    const conformance = (args: string[], extra: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> =>
      run('bash', [path.join(d, 'repo/scripts/conformance.sh'), ...args], { env: { ...env, ...extra }, timeout: 30_000 }).then(
        (r) => ({ ...r, code: 0 }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
    try {
      fs.mkdirSync(path.join(d, 'repo/scripts'), { recursive: true });
      fs.copyFileSync(path.join(ROOT, 'scripts/conformance.sh'), path.join(d, 'repo/scripts/conformance.sh'));
      for (const args of [['--check'], []]) {
        const r = await conformance(args);
        expect(r.code, args.join(' ')).toBe(1);
        expect(r.stderr).toContain(`no conformance suite at ${path.join(d, 'repo')}/../shared/conformance`);
        expect(r.stderr).toContain('TXKV_CONFORMANCE=/path/to/shared/conformance npm test');
        expect(r.stderr).toContain('TXKV_CONFORMANCE=skip npm test');
      }
      const skipped = await conformance([], { TXKV_CONFORMANCE: 'skip' });
      expect(skipped.code).toBe(0);
      expect(skipped.stderr).toContain('conformance: SKIPPED (TXKV_CONFORMANCE=skip)');
      // pointed at a suite elsewhere: it runs there, with TXKV_ROOT = the clone
      const suite = path.join(d, 'elsewhere/conformance');
      fs.mkdirSync(suite, { recursive: true });
      fs.writeFileSync(
        path.join(suite, 'root.test.mjs'),
        `import test from 'node:test';\nimport assert from 'node:assert';\ntest('root', () => assert.equal(process.env.TXKV_ROOT, ${JSON.stringify(path.join(d, 'repo'))}));\n`,
      );
      const ran = await conformance([], { TXKV_CONFORMANCE: suite });
      expect(ran.code, ran.stdout + ran.stderr).toBe(0);
      expect(ran.stdout).toMatch(/# pass 1/);
      expect(await conformance([], { TXKV_CONFORMANCE: path.join(d, 'nowhere') })).toMatchObject({ code: 1, stderr: expect.stringContaining('TXKV_CONFORMANCE=' + path.join(d, 'nowhere')) });
      // inside this workspace the suite is found (never skipped)
      const here = await run('bash', [path.join(ROOT, 'scripts/conformance.sh'), '--check'], { env, timeout: 30_000 });
      expect(here.stderr).toMatch(/^conformance: suite at \//);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it('the README says how to use the SDK from another project, and that txkv is one node unless run as a cluster', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain('npm install /path/to/txkv');
    expect(readme).toContain('npm pack');
    expect(readme).toMatch(/\*\*One node\.\*\* `npm start` and `txkv serve` run a single server/);
    expect(readme).toContain('http://127.0.0.1:7070/metrics');
  });
});
