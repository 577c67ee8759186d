// Issue 15 finding 5 (the HTTP API: documented, strict, conventional status codes, one
// representation of versions), 6 (HTTP traffic in the metrics) and 8 (metric names
// and types) against real servers; the curl examples of docs/http-api.md are run
// with curl.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/index.js';
import { ROUTES } from '../../src/gateway/http.js';
import { startTestServer, tempDir, text, type TestServer } from '../support/server.js';

const run = promisify(execFile);
const DOC = path.resolve(__dirname, '../../docs/http-api.md');
const k = (x: string | Uint8Array): string => Buffer.from(x).toString('base64url');

let t: TestServer;
let base: string;
beforeAll(async () => {
  t = await startTestServer({ shards: 3 });
  base = `http://127.0.0.1:${t.server.port}`;
});
afterAll(async () => {
  await t?.close();
});

async function call(p: string, init?: RequestInit): Promise<{ status: number; body: any; headers: Headers }> {
  const r = await fetch(base + p, init);
  const raw = await r.text();
  let body: unknown = raw;
  try {
    body = JSON.parse(raw);
  } catch {
    // not JSON
  }
  return { status: r.status, body, headers: r.headers };
}

interface Example {
  command: string;
  status: number;
  body: unknown;
  line: number;
}

/** The doc's ```sh blocks, each followed by "Status: N" and optionally a ```json block. */
function examples(md: string): Example[] {
  const lines = md.split('\n');
  const out: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```sh') continue;
    const line = i + 1;
    const cmd: string[] = [];
    for (i++; lines[i] !== '```'; i++) cmd.push(lines[i]!);
    let j = i + 1;
    while (lines[j] === '') j++;
    const m = /^Status: (\d{3})$/.exec(lines[j] ?? '');
    if (!m) throw new Error(`docs/http-api.md:${line}: an example without "Status: N" after it`);
    let body: unknown;
    j++;
    while (lines[j] === '') j++;
    if (lines[j] === '```json') {
      const json: string[] = [];
      for (j++; lines[j] !== '```'; j++) json.push(lines[j]!);
      body = JSON.parse(json.join('\n'));
      i = j;
    }
    out.push({ command: cmd.join('\n'), status: Number(m[1]), body, line });
  }
  return out;
}

/** Documented JSON against the real one: versions match any version, the rest exactly. */
function like(actual: unknown, documented: unknown, where: string): void {
  if (typeof documented === 'string' && /^\d{16}$/.test(documented)) {
    expect(actual, where).toMatch(/^\d+$/);
    return;
  }
  if (Array.isArray(documented)) {
    expect(Array.isArray(actual), where).toBe(true);
    expect((actual as unknown[]).length, where).toBe(documented.length);
    documented.forEach((d, i) => like((actual as unknown[])[i], d, `${where}[${i}]`));
    return;
  }
  if (documented !== null && typeof documented === 'object') {
    expect(Object.keys(actual as object).sort(), where).toEqual(Object.keys(documented).sort());
    for (const [key, d] of Object.entries(documented)) like((actual as Record<string, unknown>)[key], d, `${where}.${key}`);
    return;
  }
  expect(actual, where).toEqual(documented);
}

describe('docs/http-api.md', () => {
  it('every curl example gives the documented status and body, run in order against a fresh server', { timeout: 90_000 }, async () => {
    const d = tempDir('txkv-http-docs');
    const server: RunningServer = await startServer({ port: 0, host: '127.0.0.1', dataDir: d, shards: 2 }, { logger: pino({ level: 'warn' }) });
    try {
      const url = `http://127.0.0.1:${server.port}`;
      const list = examples(fs.readFileSync(DOC, 'utf8'));
      expect(list.length).toBeGreaterThanOrEqual(15);
      for (const ex of list) {
        const where = `docs/http-api.md:${ex.line}: ${ex.command}`;
        expect(ex.command, where).toContain('http://127.0.0.1:7070');
        // every example is run as written, against this server's port; -w adds the status
        const cmd = ex.command.replaceAll('http://127.0.0.1:7070', url);
        const withStatus = cmd.includes('-w ') ? cmd : `${cmd} -w '\\n%{http_code}'`;
        const r = await run('bash', ['-c', withStatus], { timeout: 10_000 });
        const out = r.stdout.split('\n');
        const status = Number(out.pop());
        expect(status, where).toBe(ex.status);
        if (ex.body !== undefined) like(JSON.parse(out.join('\n')), ex.body, where);
      }
    } finally {
      await server.close();
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it('documents every route, and GET /v1/openapi.json describes the same routes', async () => {
    const doc = fs.readFileSync(DOC, 'utf8');
    const r = await call('/v1/openapi.json');
    expect(r.status).toBe(200);
    expect(r.body.openapi).toMatch(/^3\./);
    for (const route of ROUTES) {
      const openapiPath = route.path.replace(/:(\w+)/g, '{$1}');
      expect(doc, `${route.method} ${route.path}`).toContain(`### ${route.method} ${openapiPath}`.replace('### GET /v1/openapi.json', '### GET /v1/openapi.json'));
      expect(r.body.paths[openapiPath]?.[route.method.toLowerCase()], `${route.method} ${openapiPath} in openapi.json`).toBeTruthy();
    }
    for (const p of ['/v1/status', '/metrics', '/v1/metrics.json']) expect(r.body.paths[p]?.get, p).toBeTruthy();
  });
});

describe('finding 5: strict and conventional', () => {
  it('a key that is not canonical base64url is refused naming it, and nothing is written', async () => {
    for (const bad of ['a', 'Z3JlZXRpbmc=', 'ab%2Fcd', 'not*base64', 'Zh']) {
      const r = await call(`/v1/kv/${bad}`, { method: 'PUT', body: 'x' });
      expect(r.status, bad).toBe(400);
      expect(r.body.error.code).toBe('INVALID_ARGUMENT');
      expect(r.body.error.message).toContain('not canonical base64url');
      expect(r.body.error.message).toContain(JSON.stringify(decodeURIComponent(bad)));
    }
    expect(await t.db.createReadOnlyTransaction().get(new Uint8Array(0))).toBeNull(); // PUT /v1/kv/a wrote the empty key before
    // a canonical key is echoed as text, so a word taken for base64url shows at once
    const put = await call('/v1/kv/greeting', { method: 'PUT', body: 'x' });
    expect(put.status).toBe(200);
    expect(put.body.keyText).toBe('\\x82\\xb7\\x9e\\xb6)\\xe0');
    expect(typeof put.body.commitVersion).toBe('string');
  });

  it('unknown paths are 404, unknown methods 405 with Allow', async () => {
    const nf = await call('/v1/nothing');
    expect(nf.status).toBe(404);
    expect(nf.body.error.code).toBe('NOT_FOUND');
    const na = await call(`/v1/kv/${k('x')}`, { method: 'POST' });
    expect(na.status).toBe(405);
    expect(na.body.error.code).toBe('METHOD_NOT_ALLOWED');
    expect(na.headers.get('allow')).toBe('GET, PUT, DELETE');
    expect((await call('/v1/txn')).status).toBe(405);
    expect((await call('/v1/status', { method: 'DELETE' })).status).toBe(405);
  });

  it('unknown query parameters and JSON fields are refused naming them', async () => {
    const q = await call(`/v1/range?begin=${k('a')}&lmit=3`);
    expect(q.status).toBe(400);
    expect(q.body.error.message).toContain('"lmit"');
    expect((await call(`/v1/kv/${k('a')}?x=1`)).status).toBe(400);
    expect((await call(`/v1/range?begin=${k('a')}&begin=${k('b')}`)).status).toBe(400);
    expect((await call(`/v1/range?reverse=yes`)).status).toBe(400);
    const cases: [unknown, string][] = [
      [{ writes: [], extra: 1 }, '"extra"'],
      [{ reads: [{ key: k('a'), limit: 3 }] }, '"limit"'],
      [{ writes: [{ op: 'set', key: k('a'), value: k('b'), ttl: 3 }] }, '"ttl"'],
      [{ writes: [{ op: 'clear', key: k('a'), value: k('b') }] }, '"value"'],
      [{ readVersion: 123 }, 'readVersion'],
    ];
    for (const [body, named] of cases) {
      const r = await call('/v1/txn', { method: 'POST', body: JSON.stringify(body) });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.message, JSON.stringify(body)).toContain(named);
    }
  });

  it('KEY_TOO_LARGE and VALUE_TOO_LARGE are both 413', async () => {
    const bigKey = k(new Uint8Array(10_001).fill(0x61));
    for (const [p, init] of [
      [`/v1/kv/${bigKey}`, undefined],
      [`/v1/kv/${bigKey}`, { method: 'PUT', body: 'x' }],
      ['/v1/txn', { method: 'POST', body: JSON.stringify({ writes: [{ op: 'set', key: bigKey, value: k('x') }] }) }],
    ] as [string, RequestInit | undefined][]) {
      const r = await call(p, init);
      expect(r.status, `${init?.method ?? 'GET'} ${p.slice(0, 20)}`).toBe(413);
      expect(r.body.error.code).toBe('KEY_TOO_LARGE');
    }
    const v = await call(`/v1/kv/${k('big')}`, { method: 'PUT', body: new Uint8Array(100_001) });
    expect(v.status).toBe(413);
    expect(v.body.error.code).toBe('VALUE_TOO_LARGE');
  });

  it('GET /v1/range without end reads to the end of the keyspace', async () => {
    // keys above every other test's keys (PUT /v1/kv/greeting wrote \x82...)
    const hi = (s: string): Uint8Array => new Uint8Array([0xf0, ...Buffer.from(s)]);
    await t.db.transact(async (tx) => {
      tx.set(hi('zz/1'), 'a');
      tx.set(hi('zz/2'), 'b');
    });
    const r = await call(`/v1/range?begin=${k(hi('zz/'))}`);
    expect(r.status).toBe(200);
    expect(r.body.kvs.map((x: { key: string }) => x.key)).toEqual([k(hi('zz/1')), k(hi('zz/2'))]);
    expect(r.body.hasMore).toBe(false);
  });

  it('versions are decimal strings in /v1/txn and /v1/status', async () => {
    const tx = await call('/v1/txn', { method: 'POST', body: JSON.stringify({ reads: [{ key: k('zz/1') }], writes: [{ op: 'set', key: k('zz/3'), value: k('c') }] }) });
    expect(tx.body.readVersion).toMatch(/^\d+$/);
    expect(tx.body.commitVersion).toMatch(/^\d+$/);
    const st = (await call('/v1/status')).body;
    expect(st.latestCommittedVersion).toMatch(/^\d+$/);
    expect(st.oldestReadableVersion).toMatch(/^\d+$/);
    expect(st.recovery.lastCommittedVersion).toMatch(/^\d+$/);
    for (const sh of st.shards) expect(sh.appliedVersion).toMatch(/^\d+$/);
    expect(BigInt(st.latestCommittedVersion)).toBeGreaterThanOrEqual(BigInt(tx.body.commitVersion));
  });

  it('a read-only token may read and gets 403 for a write; a wrong token 401', async () => {
    const d = tempDir('txkv-http-auth');
    const server = await startServer({ port: 0, host: '127.0.0.1', dataDir: d, shards: 1, auth: { tokens: ['rw'], readOnlyTokens: ['ro'] } }, { logger: pino({ level: 'warn' }) });
    try {
      const u = `http://127.0.0.1:${server.port}`;
      const as = (token: string, p: string, init: RequestInit = {}): Promise<Response> => fetch(u + p, { ...init, headers: { authorization: `Bearer ${token}` } });
      expect((await as('rw', `/v1/kv/${k('a')}`, { method: 'PUT', body: '1' })).status).toBe(200);
      expect((await as('ro', `/v1/kv/${k('a')}`)).status).toBe(200);
      for (const [p, init] of [
        [`/v1/kv/${k('a')}`, { method: 'PUT', body: '2' }],
        [`/v1/kv/${k('a')}`, { method: 'DELETE' }],
        ['/v1/txn', { method: 'POST', body: JSON.stringify({ writes: [{ op: 'clear', key: k('a') }] }) }],
      ] as [string, RequestInit][]) {
        const r = await as('ro', p, init);
        expect(r.status, `${init.method} ${p}`).toBe(403);
        expect(((await r.json()) as { error: { code: string; message: string } }).error.message).toContain('read-only');
      }
      expect((await as('ro', '/v1/txn', { method: 'POST', body: JSON.stringify({ reads: [{ key: k('a') }] }) })).status).toBe(200);
      // the 401 says which: no header, a header not of the form "Bearer <token>", an unknown token
      // (all were "missing or wrong token"); the header's text is never echoed
      const denied = async (headers: Record<string, string>): Promise<string> => {
        const r = await fetch(`${u}/v1/kv/${k('a')}`, { headers });
        expect(r.status).toBe(401);
        const e = ((await r.json()) as { error: { code: string; message: string } }).error;
        expect(e.code).toBe('UNAUTHORIZED');
        return e.message;
      };
      expect(await denied({ authorization: 'Bearer nope' })).toBe('wrong token (Authorization: Bearer <token>): the server has no such token');
      expect(await denied({})).toBe('no token: this server needs an Authorization: Bearer <token> header');
      for (const authorization of ['Basic cnc6', 'rw', 'Bearer rw extra', 'Bearer']) {
        const m = await denied({ authorization });
        expect(m).toMatch(/^the Authorization header is not of the form "Bearer <token>"/);
        expect(m).not.toContain('rw');
      }
      expect((await fetch(`${u}/v1/openapi.json`)).status).toBe(200);
    } finally {
      await server.close();
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});

function metric(body: string, name: string): number {
  const m = body.match(new RegExp(`^${name.replace(/[{}"=.+/:]/g, (c) => `\\${c}`)} (\\S+)$`, 'm'));
  if (!m) throw new Error(`metric ${name} not found`);
  return Number(m[1]);
}

describe('finding 6: HTTP traffic in the same metrics, with a protocol label', () => {
  it('counts HTTP reads, commits and errors in /metrics, /v1/status and /v1/metrics.json', async () => {
    const d = tempDir('txkv-http-metrics');
    const server = await startServer({ port: 0, host: '127.0.0.1', dataDir: d, shards: 2 }, { logger: pino({ level: 'warn' }) });
    try {
      const u = `http://127.0.0.1:${server.port}`;
      for (let i = 0; i < 5; i++) await fetch(`${u}/v1/kv/${k(`m/${i}`)}`, { method: 'PUT', body: 'v' });
      for (let i = 0; i < 200; i++) await fetch(`${u}/v1/kv/${k(`m/${i % 5}`)}`);
      await fetch(`${u}/v1/range?begin=${k('m/')}&end=${k('m0')}`);
      await fetch(`${u}/v1/kv/a`); // 400
      await fetch(`${u}/v1/nowhere`); // 404
      const txn = async (body: unknown): Promise<Response> => fetch(`${u}/v1/txn`, { method: 'POST', body: JSON.stringify(body) });
      const first = (await (await txn({ reads: [{ key: k('m/0') }] })).json()) as { readVersion: string };
      await fetch(`${u}/v1/kv/${k('m/0')}`, { method: 'PUT', body: 'changed' });
      expect((await txn({ readVersion: first.readVersion, reads: [{ key: k('m/0') }], writes: [{ op: 'set', key: k('m/x'), value: k('1') }] })).status).toBe(409);
      await new Promise((r) => setTimeout(r, 1200)); // a sampler tick
      const body = await (await fetch(`${u}/metrics`)).text();
      expect(metric(body, 'txkv_read_latency_seconds_count{kind="get",protocol="http"}')).toBe(200 + 1 + 1);
      expect(metric(body, 'txkv_read_latency_seconds_count{kind="range",protocol="http"}')).toBe(1);
      expect(metric(body, 'txkv_read_latency_seconds_count{kind="get",protocol="binary"}')).toBe(0);
      expect(metric(body, 'txkv_commit_latency_seconds_count{protocol="http"}')).toBe(7);
      expect(metric(body, 'txkv_transactions_committed_total')).toBe(6);
      expect(metric(body, 'txkv_transactions_conflicted_total')).toBe(1);
      expect(metric(body, 'txkv_errors_total{code="CONFLICT",protocol="http"}')).toBe(1);
      expect(metric(body, 'txkv_errors_total{code="INVALID_ARGUMENT",protocol="http"}')).toBe(1);
      expect(metric(body, 'txkv_errors_total{code="NOT_FOUND",protocol="http"}')).toBe(1);
      expect(metric(body, 'txkv_http_requests_total{method="GET",route="/v1/kv/:key",status="200"}')).toBe(200);
      expect(metric(body, 'txkv_payload_bytes_sent_total{protocol="http"}')).toBeGreaterThan(200);
      expect(metric(body, 'txkv_transactions_started_total{protocol="http"}')).toBe(5 + 1 + 2);
      const st = (await (await fetch(`${u}/v1/status`)).json()) as any;
      expect(st.protocols.http.gets).toBe(202);
      expect(st.protocols.http.requests).toBeGreaterThanOrEqual(211);
      expect(st.errorsByCode.NOT_FOUND).toBe(1);
      expect(st.transactions.gets).toBe(202);
      const series = (await (await fetch(`${u}/v1/metrics.json`)).json()) as { points: { readsPerSec: number; httpRequestsPerSec: number }[] };
      expect(series.points.some((p) => p.readsPerSec > 0)).toBe(true);
      expect(series.points.some((p) => p.httpRequestsPerSec > 0)).toBe(true);
    } finally {
      await server.close();
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('finding 8: metric names and meanings per Prometheus conventions', () => {
  it('every metric: txkv_ snake_case; counters and only counters end in _total; ratios end in _ratio; the known ones have their type', async () => {
    // some traffic, so labelled series exist
    await t.db.transact(async (tx) => tx.set('n/1', '1'));
    const body = await (await fetch(`${base}/metrics`)).text();
    const types = new Map<string, string>();
    for (const m of body.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1]!, m[2]!);
    expect(types.size).toBeGreaterThan(40);
    const bad: string[] = [];
    for (const [name, type] of types) {
      if (!/^txkv_[a-z][a-z0-9_]*$/.test(name)) bad.push(`${name}: not txkv_ snake_case`);
      if (type === 'counter' && !name.endsWith('_total')) bad.push(`${name}: a counter without _total`);
      if (type !== 'counter' && name.endsWith('_total')) bad.push(`${name}: a ${type} named _total`);
      if (/utilization|rate$|fraction/.test(name) && !name.endsWith('_ratio')) bad.push(`${name}: a ratio without _ratio`);
      if (!new RegExp(`^# HELP ${name} \\S`, 'm').test(body)) bad.push(`${name}: no help`);
    }
    expect(bad).toEqual([]);
    const expected: Record<string, string> = {
      txkv_transactions_started_total: 'counter',
      txkv_transactions_committed_total: 'counter',
      txkv_transactions_conflicted_total: 'counter',
      txkv_transactions_too_old_total: 'counter',
      txkv_transactions_aborted_total: 'counter',
      txkv_commit_attempts_total: 'counter',
      txkv_errors_total: 'counter',
      txkv_http_requests_total: 'counter',
      txkv_payload_bytes_received_total: 'counter',
      txkv_payload_bytes_sent_total: 'counter',
      txkv_commit_latency_seconds: 'histogram',
      txkv_read_latency_seconds: 'histogram',
      txkv_connections: 'gauge',
      txkv_inflight_requests: 'gauge',
      txkv_shard_utilization_ratio: 'gauge',
      txkv_shard_busy_seconds_total: 'counter',
      txkv_nodejs_active_handles: 'gauge',
      txkv_process_cpu_seconds_total: 'counter',
      txkv_nodejs_eventloop_lag_seconds: 'gauge',
      txkv_distribution_moves_in_progress: 'gauge',
      txkv_distribution_moves_total: 'counter',
      txkv_distribution_splits_total: 'counter',
      txkv_distribution_merges_total: 'counter',
      txkv_distribution_rows_moved_total: 'counter',
      txkv_distribution_bytes_moved_total: 'counter',
    };
    for (const [name, type] of Object.entries(expected)) expect(types.get(name), name).toBe(type);
    // gone: the misleading names
    for (const old of ['txkv_commits_total', 'txkv_shard_utilization', 'txkv_nodejs_active_handles_total']) expect(types.has(old), old).toBe(false);
    expect(body).toMatch(/^# HELP txkv_transactions_conflicted_total Commits refused with CONFLICT:/m);
  });

  it('conflicted counts CONFLICT only, too_old TOO_OLD only, and started counts write-only transactions too', async () => {
    const d = tempDir('txkv-meanings');
    const server = await startServer({ port: 0, host: '127.0.0.1', dataDir: d, shards: 2, mvccWindowMs: 200 }, { logger: pino({ level: 'warn' }) });
    const { connect } = await import('../../src/index.js');
    const db = await connect({ endpoints: [server.url] });
    try {
      for (let i = 0; i < 10; i++) await db.transact(async (tx) => tx.set(`w/${i}`, 'x')); // write-only: no read version
      const old = db.createTransaction();
      await old.get('w/1');
      await new Promise((r) => setTimeout(r, 700));
      old.set('w/2', 'late');
      await expect(old.commit()).rejects.toMatchObject({ code: 'TOO_OLD' });
      const body = await (await fetch(`${server.url.replace(/^ws/, 'http')}/metrics`)).text();
      expect(metric(body, 'txkv_transactions_too_old_total')).toBe(1);
      expect(metric(body, 'txkv_transactions_conflicted_total')).toBe(0);
      expect(metric(body, 'txkv_transactions_committed_total')).toBe(10);
      // started >= committed: 10 write-only transactions and the one that read
      expect(metric(body, 'txkv_transactions_started_total{protocol="binary"}')).toBe(11);
      expect(text(await db.createReadOnlyTransaction().get('w/2'))).toBe('x');
    } finally {
      await db.close();
      await server.close();
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});
