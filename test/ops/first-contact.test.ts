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

  it('the README says how to use the SDK from another project, and that txkv is one node unless run as a cluster', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain('npm install /path/to/txkv');
    expect(readme).toContain('npm pack');
    expect(readme).toMatch(/\*\*One node\.\*\* `npm start` and `txkv serve` run a single server/);
    expect(readme).toContain('http://127.0.0.1:7070/metrics');
  });
});
