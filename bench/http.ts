// bench/http: drives txkv's HTTP KV API (served by the same uWS server and port as the binary
// protocol) with autocannon's programmatic API and reports requests/s and latency percentiles
// per endpoint. autocannon speaks HTTP/1.1 only; the binary protocol is driven by cli.ts.
// Keys in paths and JSON are base64url (src/gateway/http.ts). POST /v1/txn carries an m90
// transaction: 9 reads and 1 write, committed atomically.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { createAdapter } from './adapters/index.js';
import { kvKey, makeValue } from './data.js';
import { Rng } from './rng.js';
import { preloadFlat } from './workloads/flat-keyspace.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

export interface HttpResult {
  scenario: string;
  connections: number;
  seconds: number;
  requestsPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  non2xx: number;
  /**
   * 409 answers (CONFLICT: a key the transaction read was written since its read version).
   * Contention, not a failure: the client retries, as FoundationDB's benchmarks count
   * conflicts and retries apart from errors. Only POST /v1/txn reads, so only txn has them.
   */
  conflicts: number;
  /** Non-2xx answers other than those conflicts: failures. */
  failed: number;
  /** Responses by HTTP status code. */
  statusCodes: Record<string, number>;
  errors: number;
  timeouts: number;
}

/** POST /v1/txn body: { reads: [{ key }], writes: [{ op: 'set', key, value }] }, 9 reads + 1 write. */
function txnBody(rng: Rng, rows: number): string {
  const reads = Array.from({ length: 9 }, () => ({ key: b64(kvKey(rng.int(rows))) }));
  const key = kvKey(rng.int(rows));
  return JSON.stringify({ reads, writes: [{ op: 'set', key: b64(key), value: b64(makeValue(rng, key)) }] });
}

type Scenario = { name: string; request: () => { method: 'GET' | 'PUT' | 'POST'; path: string; body?: string | Buffer; headers?: Record<string, string> } };

function scenarios(rows: number, seed: number): Scenario[] {
  const rng = new Rng(seed);
  const end = b64(new Uint8Array([0x6c])); // 'l': the end of the flat keyspace
  return [
    { name: 'get', request: () => ({ method: 'GET', path: `/v1/kv/${b64(kvKey(rng.int(rows)))}` }) },
    {
      name: 'put',
      request: () => {
        const key = kvKey(rng.int(rows));
        return { method: 'PUT', path: `/v1/kv/${b64(key)}`, body: Buffer.from(makeValue(rng, key)), headers: { 'content-type': 'application/octet-stream' } };
      },
    },
    { name: 'range100', request: () => ({ method: 'GET', path: `/v1/range?begin=${b64(kvKey(rng.int(Math.max(1, rows - 100))))}&end=${end}&limit=100` }) },
    { name: 'txn', request: () => ({ method: 'POST', path: '/v1/txn', body: txnBody(rng, rows), headers: { 'content-type': 'application/json' } }) },
  ];
}

async function runScenario(url: string, s: Scenario, connections: number, seconds: number): Promise<HttpResult> {
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    requests: [
      {
        setupRequest: (req) => {
          const r = s.request();
          return { ...req, method: r.method, path: r.path, ...(r.body !== undefined ? { body: r.body } : {}), headers: { ...(req.headers ?? {}), ...(r.headers ?? {}) } };
        },
      },
    ],
  });
  const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, v]) => [code, v.count ?? 0]));
  const conflicts = s.name === 'txn' ? (statusCodes['409'] ?? 0) : 0;
  return {
    scenario: s.name,
    connections,
    seconds,
    requestsPerSec: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p90Ms: result.latency.p90,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    non2xx: result.non2xx,
    conflicts,
    failed: result.non2xx - conflicts,
    statusCodes,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

/** Runs the named scenarios against an HTTP base URL whose flat keyspace of `rows` is loaded. */
export async function runHttpScenarios(o: { url: string; names: string[]; rows: number; seed: number; connections: number; seconds: number; progress?: boolean }): Promise<HttpResult[]> {
  const out: HttpResult[] = [];
  const wanted = new Set(o.names);
  for (const s of scenarios(o.rows, o.seed).filter((x) => wanted.has(x.name))) {
    if (o.progress !== false) process.stderr.write(`[http] ${s.name} ...\n`);
    out.push(await runScenario(o.url, s, o.connections, o.seconds));
  }
  return out;
}

export const OPTIONS = {
  help: { type: 'boolean', short: 'h', default: false },
  endpoint: { type: 'string' },
  scenarios: { type: 'string', default: 'get,put,range100,txn' },
  connections: { type: 'string', default: '100' },
  seconds: { type: 'string', default: '5' },
  rows: { type: 'string', default: '100000' },
  seed: { type: 'string', default: '1' },
  'no-load': { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
} as const;

export const USAGE = `usage: node dist/bench/http.js [options]

Drives txkv's HTTP API with autocannon, one scenario after another, and prints requests/s and
latency per scenario. Exits 1 when an answer failed: a non-2xx other than txn's 409 conflicts
(counted apart, as retries), or a socket error.

  --endpoint URL      a running server (ws://HOST:PORT); default: start a 2-shard server here
  --scenarios LIST    of get, put, range100, txn (default ${OPTIONS.scenarios.default})
  --connections N     concurrent HTTP connections (default ${OPTIONS.connections.default})
  --seconds S         seconds per scenario (default ${OPTIONS.seconds.default})
  --rows N            keyspace, rows, preloaded unless --no-load (default ${OPTIONS.rows.default})
  --seed N            PRNG seed of keys and values (default ${OPTIONS.seed.default})
  --no-load           do not preload the keyspace (it is already there)
  --json              print the results as JSON
  -h, --help          this text
`;

export async function runHttpBench(argv: string[]): Promise<number> {
  let a: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; strict: true; allowPositionals: false }>>['values'];
  try {
    ({ values: a } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    process.stderr.write(`http bench: ${(err as Error).message} (--help lists the flags)\n`);
    return 1;
  }
  if (a.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const rows = Number(a.rows);
  const seed = Number(a.seed);
  let wsUrl = a.endpoint;
  let stop = async (): Promise<void> => undefined;
  if (!wsUrl) {
    const { startServer } = await import('../src/index.js');
    const dataDir = mkdtempSync(join(tmpdir(), 'txkv-bench-http-'));
    const server = await startServer({ port: 0, host: '127.0.0.1', dataDir, shards: 2, logLevel: 'error' });
    wsUrl = server.url;
    stop = async () => {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    };
  }
  const httpUrl = wsUrl.replace(/^ws/, 'http');
  const results: HttpResult[] = [];
  try {
    if (!a['no-load']) {
      const adapter = await createAdapter({ system: 'txkv', endpoint: wsUrl });
      await adapter.open({ ordered: true });
      await adapter.load(preloadFlat({ rows, seed }));
      await adapter.close();
    }
    results.push(
      ...(await runHttpScenarios({ url: httpUrl, names: (a.scenarios ?? '').split(','), rows, seed, connections: Number(a.connections), seconds: Number(a.seconds) })),
    );
  } finally {
    await stop();
  }
  if (a.json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  else {
    process.stdout.write('scenario   req/s      p50 ms  p90 ms  p99 ms  max ms  conflicts  failed  errors  status codes\n');
    for (const r of results) {
      process.stdout.write(
        `${r.scenario.padEnd(10)} ${String(r.requestsPerSec).padStart(9)}  ${String(r.p50Ms).padStart(6)}  ${String(r.p90Ms).padStart(6)}  ${String(r.p99Ms).padStart(6)}  ${String(r.maxMs).padStart(6)}  ${String(r.conflicts).padStart(9)}  ${String(r.failed).padStart(6)}  ${String(r.errors).padStart(6)}  ${Object.entries(r.statusCodes).map(([c, n]) => `${c}:${n}`).join(' ')}\n`,
      );
    }
  }
  // a 409 of txn is a conflict (the client would retry), not a failure: it exited 1 on those
  return results.some((r) => r.failed > 0 || r.errors > 0) ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runHttpBench(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`http bench: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
