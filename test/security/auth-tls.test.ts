// Authentication (tokens at the upgrade, in Hello, and on the HTTP API; read-only
// tokens), binding rules, secrets kept out of logs, and TLS (wss:// and https://)
// with a certificate made at test time.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { generate } from 'selfsigned';
import { connect, startServer, TxnError, type RunningServer } from '../../src/index.js';
import { tempDir, text } from '../support/server.js';

const RW = 'rw-secret-3f9a0c1b77';
const RO = 'ro-secret-8d2e55aa01';
const dirs: string[] = [];
const logLines: string[] = [];
const logger = pino(
  { level: 'debug' },
  new Writable({
    write(chunk, _enc, cb) {
      logLines.push(String(chunk));
      cb();
    },
  }),
);

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    expect(e).toBeInstanceOf(TxnError);
    return (e as TxnError).code;
  }
}

describe('auth tokens', () => {
  let srv: RunningServer;
  let base: string;
  beforeAll(async () => {
    const dataDir = tempDir('txkv-auth');
    dirs.push(dataDir);
    const tokenFile = path.join(dataDir, '..', `tokens-${path.basename(dataDir)}`);
    fs.writeFileSync(tokenFile, `# tokens\nro:${RO}\n`);
    dirs.push(tokenFile);
    srv = await startServer({ port: 0, host: '127.0.0.1', dataDir, shards: 2, auth: { tokens: [RW], tokenFile } }, { logger });
    base = `http://127.0.0.1:${srv.port}`;
  });
  afterAll(async () => {
    await srv?.close();
  });

  it('no token or a wrong token: UNAUTHORIZED', async () => {
    expect(await code(connect({ endpoints: [srv.url] }))).toBe('UNAUTHORIZED');
    expect(await code(connect({ endpoints: [srv.url], token: 'nope' }))).toBe('UNAUTHORIZED');
  });

  it('a read-write token reads and writes; a read-only token reads but cannot commit writes', async () => {
    const rw = await connect({ endpoints: [srv.url], token: RW });
    await rw.transact(async (tx) => tx.set('auth/k', 'v'));
    const ro = await connect({ endpoints: [srv.url], token: RO });
    expect(text(await ro.createReadOnlyTransaction().get('auth/k'))).toBe('v');
    const tx = ro.createTransaction();
    tx.set('auth/k', 'hijack');
    expect(await code(tx.commit())).toBe('UNAUTHORIZED');
    expect(text(await rw.createTransaction().get('auth/k'))).toBe('v');
    await rw.close();
    await ro.close();
  });

  it('the HTTP API wants Authorization: Bearer, and read-only tokens cannot write', async () => {
    const key = Buffer.from('auth/h').toString('base64url');
    expect((await fetch(`${base}/v1/kv/${key}`)).status).toBe(401);
    expect((await fetch(`${base}/v1/kv/${key}`, { method: 'PUT', body: 'x', headers: { authorization: `Bearer ${RO}` } })).status).toBe(403);
    expect((await fetch(`${base}/v1/kv/${key}`, { method: 'PUT', body: 'x', headers: { authorization: `Bearer ${RW}` } })).status).toBe(200);
    expect((await fetch(`${base}/v1/kv/${key}`, { headers: { authorization: `Bearer ${RO}` } })).status).toBe(200);
    const denied = (await (await fetch(`${base}/v1/kv/${key}`, { headers: { authorization: 'Bearer wrong' } })).json()) as { error: { code: string; message: string } };
    expect(denied.error.code).toBe('UNAUTHORIZED');
    expect(JSON.stringify(denied)).not.toContain('wrong'.repeat(2));
    // status is open unless auth.protectStatus
    expect((await fetch(`${base}/v1/status`)).status).toBe(200);
  });

  it('tokens never appear in logs', () => {
    const all = logLines.join('');
    expect(all.length).toBeGreaterThan(0);
    expect(all).not.toContain(RW);
    expect(all).not.toContain(RO);
  });
});

describe('binding', () => {
  it('refuses a non-loopback address without tokens unless insecure', async () => {
    const dataDir = tempDir('txkv-bind');
    dirs.push(dataDir);
    await expect(startServer({ port: 0, host: '0.0.0.0', dataDir }, { logger })).rejects.toThrow(/without auth tokens/);
  });
});

describe('TLS', () => {
  let srv: RunningServer;
  let caFile: string;
  beforeAll(async () => {
    const dataDir = tempDir('txkv-tls');
    dirs.push(dataDir);
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
      keySize: 2048,
      algorithm: 'sha256',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }],
    });
    const cert = path.join(dataDir, 'cert.pem');
    const key = path.join(dataDir, 'key.pem');
    fs.writeFileSync(cert, pems.cert);
    fs.writeFileSync(key, pems.private);
    caFile = cert;
    srv = await startServer({ port: 0, host: '127.0.0.1', dataDir: path.join(dataDir, 'db'), shards: 2, tls: { cert, key } }, { logger });
  });
  afterAll(async () => {
    await srv?.close();
  });

  it('serves wss:// and https:// with the configured certificate', async () => {
    expect(srv.url.startsWith('wss://')).toBe(true);
    const db = await connect({ endpoints: [srv.url], caFile });
    await db.transact(async (tx) => tx.set('tls/k', 'secure'));
    expect(text(await db.createTransaction().get('tls/k'))).toBe('secure');
    await db.close();
    const status = await new Promise<number>((resolve, reject) =>
      https
        .get(`https://127.0.0.1:${srv.port}/v1/status`, { ca: fs.readFileSync(caFile) }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on('error', reject),
    );
    expect(status).toBe(200);
  });

  it('the CLI trusts a private CA with --ca-file: set, get, status and shard map over wss:// and https://; without it they fail saying why', { timeout: 60_000 }, async () => {
    const BIN = path.resolve(__dirname, '../../bin/txkv.js');
    const txkv = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
      new Promise((resolve) =>
        execFile(process.execPath, [BIN, ...args, '--endpoint', srv.url], { timeout: 20_000, env: { ...process.env, NODE_EXTRA_CA_CERTS: '' } }, (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        ),
      );
    expect(await txkv('set', 'tls/cli', 'yes', '--ca-file', caFile)).toMatchObject({ code: 0, stdout: expect.stringMatching(/^committed at version \d+/) });
    expect(await txkv('get', 'tls/cli', '--ca-file', caFile)).toMatchObject({ code: 0, stdout: 'yes\n' });
    expect(await txkv('status', '--ca-file', caFile)).toMatchObject({ code: 0, stdout: expect.stringMatching(/latest committed version \d+/) });
    expect(await txkv('shard', 'map', '--ca-file', caFile)).toMatchObject({ code: 0 });
    const untrusted = await txkv('status');
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/self[- ]signed certificate/);
    const missing = await txkv('status', '--ca-file', path.join(path.dirname(caFile), 'missing.pem'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/--ca-file .*missing\.pem cannot be read: ENOENT/);
  });

  it('a client that does not trust the certificate cannot connect', async () => {
    expect(await code(connect({ endpoints: [srv.url] }))).toBe('NETWORK_ERROR');
  });
});

describe('TLS settings that cannot work stop start-up naming the file and the problem', () => {
  it('a missing file, a file that is not PEM, a key of another certificate, a cert without a key', { timeout: 60_000 }, async () => {
    const dir = tempDir('txkv-tls-bad');
    dirs.push(dir);
    const pem = async () => generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048, algorithm: 'sha256' });
    const [a, b] = [await pem(), await pem()];
    const file = (name: string, body: string): string => {
      fs.writeFileSync(path.join(dir, name), body);
      return path.join(dir, name);
    };
    const cert = file('a.pem', a.cert);
    const otherKey = file('b.key', b.private);
    const notPem = file('junk.pem', 'not a certificate\n');
    const start = (tls: { cert?: string; key?: string }, db: string) => startServer({ port: 0, host: '127.0.0.1', dataDir: path.join(dir, db), shards: 1, tls }, { logger });
    // uWS said only "App construction failed" for each of these, and a cert without a key served plain ws://
    await expect(start({ cert: path.join(dir, 'missing.pem'), key: otherKey }, 'd1')).rejects.toThrow(/tls\.cert .*missing\.pem cannot be read: ENOENT/);
    await expect(start({ cert: notPem, key: otherKey }, 'd2')).rejects.toThrow(/tls\.cert .*junk\.pem is not a PEM certificate/);
    await expect(start({ cert, key: notPem }, 'd3')).rejects.toThrow(/tls\.key .*junk\.pem is not an unencrypted PEM private key/);
    await expect(start({ cert, key: otherKey }, 'd4')).rejects.toThrow(/tls\.key .*b\.key is not the private key of the certificate/);
    await expect(start({ cert }, 'd5')).rejects.toThrow(/tls\.cert and tls\.key go together: only tls\.cert is set/);
  });
});

afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
