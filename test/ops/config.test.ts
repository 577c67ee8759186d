// Config loading: defaults < file < environment < flags; bad files fail naming the key.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, configFromEnv, envName, loadConfig, readConfigFile, settingPaths } from '../../src/config/load-config.js';
import { DEFAULT_CONFIG } from '../../src/config/server-config.js';
import { tempDir } from '../support/server.js';
import { startServer } from '../../src/index.js';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'bin/txkv.js');

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tempDirFor(tag: string): string {
  const dir = tempDir(tag);
  dirs.push(dir);
  return dir;
}

function toml(text: string): string {
  const dir = tempDir('txkv-cfg');
  dirs.push(dir);
  const file = path.join(dir, 'c.toml');
  fs.writeFileSync(file, text);
  return file;
}

describe('config files', () => {
  it('configs/default.toml lists every setting with its default', () => {
    const text = fs.readFileSync(path.join(ROOT, 'configs/default.toml'), 'utf8');
    for (const [p] of settingPaths()) {
      const key = p.split('.').pop()!;
      expect(text, p).toMatch(new RegExp(`^${key} = `, 'm'));
      expect(text, `${p} env`).toContain(envName(p));
    }
    expect(loadConfig({ file: path.join(ROOT, 'configs/default.toml') }).config).toEqual(DEFAULT_CONFIG);
  });

  it.each(['dev.toml', 'bench.toml', 'durable.toml'])('configs/%s loads', (name) => {
    const { config } = loadConfig({ file: path.join(ROOT, 'configs', name) });
    if (name === 'bench.toml') expect(config.durability).toBe('buffered');
    if (name === 'durable.toml') expect(config.durability).toBe('fsync');
  });

  it.each([
    ['port = "7070"\n', 'port', 'expected a number, got the string "7070"'],
    ['prot = 1\n', 'prot', 'unknown setting'],
    ['data_dir = "x"\n', 'data_dir', 'did you mean dataDir?'],
    ['durability = "sometimes"\n', 'durability', 'expected one of "fsync", "buffered"'],
    ['shards = -1\n', 'shards', 'at least 0'],
    ['[limits]\nmaxConnections = 1.5\n', 'limits.maxConnections', 'expected'],
    ['[auth]\ntoken = "x"\n', 'auth.token', 'unknown setting'],
    ['auth = 3\n', 'auth', 'expected a table'],
    ['port = \n', '', 'not valid TOML'],
  ])('%j fails naming the file and the key', (text, key, expected) => {
    const file = toml(text);
    let err: unknown;
    try {
      readConfigFile(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.source).toBe(file);
    expect(e.key).toBe(key);
    expect(e.message).toContain(file);
    expect(e.message).toContain(expected);
  });

  it('precedence: defaults < file < environment < flags', () => {
    const file = toml('port = 1111\nhost = "127.0.0.2"\nshards = 2\n[limits]\nmaxConnections = 5\n');
    const env = { TXKV_PORT: '2222', TXKV_SHARDS: '3', TXKV_LIMITS_MAX_INFLIGHT_PER_CONNECTION: '7', TXKV_AUTH_TOKENS: 'a, b', TXKV_READONLY: 'true' };
    const { config } = loadConfig({ file, env, flags: { port: 3333 } });
    expect(config.port).toBe(3333); // flag
    expect(config.shards).toBe(3); // env over file
    expect(config.host).toBe('127.0.0.2'); // file over default
    expect(config.limits).toEqual({ ...DEFAULT_CONFIG.limits, maxConnections: 5, maxInflightPerConnection: 7 }); // tables merged key by key
    expect(config.auth.tokens).toEqual(['a', 'b']);
    expect(config.readonly).toBe(true);
    expect(config.mvccWindowMs).toBe(DEFAULT_CONFIG.mvccWindowMs);
    expect(loadConfig({ env: { TXKV_CONFIG: file } }).config.port).toBe(1111);
  });

  it('bad environment values name the variable', () => {
    expect(() => configFromEnv({ TXKV_PORT: 'abc' })).toThrow(/environment: TXKV_PORT: expected a number/);
    expect(() => configFromEnv({ TXKV_DURABILITY: 'maybe' })).toThrow(/TXKV_DURABILITY: expected one of/);
    expect(() => configFromEnv({ TXKV_INSECURE: 'perhaps' })).toThrow(/TXKV_INSECURE: expected boolean/);
  });

  it('txkv config --print shows the effective config and masks tokens', async () => {
    const file = toml('port = 1234\n[auth]\ntokens = ["file-secret"]\n');
    const { stdout } = await run(process.execPath, [BIN, 'config', '--print', '--config', file, '--shards', '3'], {
      env: { ...process.env, TXKV_DATA_DIR: '/srv/txkv', TXKV_AUTH_READ_ONLY_TOKENS: 'env-secret' },
    });
    expect(stdout).toMatch(/^port = 1234$/m);
    expect(stdout).toMatch(/^shards = 3$/m);
    expect(stdout).toMatch(/^dataDir = "\/srv\/txkv"$/m);
    expect(stdout).toContain('<redacted>');
    expect(stdout).not.toContain('file-secret');
    expect(stdout).not.toContain('env-secret');
    const json = await run(process.execPath, [BIN, 'config', '--print', '--json', '--config', file]);
    expect(JSON.parse(json.stdout).auth.tokens).toEqual(['<redacted>']);
  });

  it('txkv serve with a bad config file exits at start-up naming the key', async () => {
    const file = toml('port = 7070\n[limits]\nmaxConnection = 10\n');
    const r = await run(process.execPath, [BIN, 'serve', '--config', file], { timeout: 20_000 }).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(r).not.toBeNull();
    expect(r!.code).toBe(1);
    expect(r!.stderr).toContain(file);
    expect(r!.stderr).toContain('limits.maxConnection');
    expect(r!.stderr).toContain('expected one of maxConnections');
  });
  it('idleTimeoutSec past 960 (uWebSockets.js aborts the process there) exits 1 naming the key, file or environment', async () => {
    const fail = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      run(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', path.join(tempDirFor('txkv-idle'), 'd'), ...args], { timeout: 20_000, env: { ...process.env, ...env } }).then(
        () => null,
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
    const file = toml('idleTimeoutSec = 961\n');
    const r = await fail(['--config', file]);
    expect(r).not.toBeNull();
    expect(r!.code, r!.stderr).toBe(1);
    expect(r!.stderr).toContain(`${file}: idleTimeoutSec: expected at most 960`);
    const e = await fail([], { TXKV_IDLE_TIMEOUT_SEC: '2000' });
    expect(e!.code, e!.stderr).toBe(1);
    expect(e!.stderr).toContain('TXKV_IDLE_TIMEOUT_SEC');
    expect(e!.stderr + e!.stdout).not.toContain('terminate called');
  });

  it('maxFrameBytes past 1 GiB (twice it wrapped uWebSockets.js\'s 32-bit payload limit to 0: every connection closed 1006) exits 1 naming it', async () => {
    const fail = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      run(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', path.join(tempDirFor('txkv-frame'), 'd'), ...args], { timeout: 20_000, env: { ...process.env, ...env } }).then(
        () => null,
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
    const e = await fail([], { TXKV_MAX_FRAME_BYTES: String(2 * 1024 * 1024 * 1024) });
    expect(e, 'the server started').not.toBeNull();
    expect(e!.code, e!.stderr).toBe(1);
    expect(e!.stderr).toContain('TXKV_MAX_FRAME_BYTES: expected at most 1073741824');
    const file = toml('maxFrameBytes = 4294967296\n');
    const r = await fail(['--config', file]);
    expect(r!.code, r!.stderr).toBe(1);
    expect(r!.stderr).toContain(`${file}: maxFrameBytes: expected at most 1073741824`);
    // startServer() (no config file) says the same
    await expect(startServer({ port: 0, dataDir: path.join(tempDirFor('txkv-frame'), 'd'), maxFrameBytes: 2 ** 31 })).rejects.toThrow(/maxFrameBytes must be an integer 1024\.\.1073741824 \(1 GiB\), got 2147483648/);
  });

  it('split points out of order, or the empty key, exit 1 naming splitPoints and leave no data directory behind', async () => {
    for (const [points, reason] of [
      ['["b", "a"]', 'splitPoints must be strictly increasing (as bytes): splitPoints[1] "a" is not after splitPoints[0] "b"'],
      ['["a", "a"]', 'splitPoints[1] "a" is not after splitPoints[0] "a"'],
      ['[""]', 'splitPoints[0] is the empty key'],
      // bytes order, not string order: \xff sorts after every printable key
      ['["\\\\xff", "z"]', 'splitPoints[1] "z" is not after splitPoints[0]'],
    ] as const) {
      const dataDir = path.join(tempDirFor('txkv-split'), 'd');
      const r = await run(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', dataDir, '--config', toml(`splitPoints = ${points}\n`)], { timeout: 20_000 }).then(
        () => null,
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
      expect(r, points).not.toBeNull();
      expect(r!.code, r!.stdout + r!.stderr).toBe(1);
      expect(r!.stdout + r!.stderr, points).toContain(reason);
      // the directory used to be created with the bad layout, refusing every later start
      expect(fs.existsSync(dataDir), `${points}: ${dataDir} was created`).toBe(false);
    }
  });
});
