// GET /v1/status, GET /metrics, GET /v1/metrics.json and the SlowTransaction log line
// against a live server; the SDK connecting from a 3FS-style config file; the
// server's start-up and shutdown log lines from `txkv serve`.
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, connectFromConfigFile, startServer, TxnError, type Database, type RunningServer } from '../../src/index.js';
import { freePort, logEvent, spawnServer, killAllServers } from '../support/child-server.js';
import { tempDir, text } from '../support/server.js';

let server: RunningServer;
let db: Database;
let dir: string;
const logs: Record<string, unknown>[] = [];
let base: string;

beforeAll(async () => {
  dir = tempDir('txkv-obs');
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  // every commit counts as slow: the SlowTransaction line must appear
  server = await startServer({ port: 0, dataDir: path.join(dir, 'data'), shards: 3, splitPoints: ['m', 't'], slowTransactionMs: 0.001 }, { logger: pino({ level: 'info' }, sink) });
  db = await connect({ endpoints: [server.url] });
  base = server.url.replace(/^ws/, 'http');
});
afterAll(async () => {
  await db.close();
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function work(): Promise<void> {
  for (let i = 0; i < 20; i++) {
    await db.transact(async (tx) => {
      await tx.get(`obs/${i % 3}`);
      await tx.getRange({ key: 'obs/', inclusive: true }, { key: 'obs0', inclusive: false }, { limit: 5 });
      tx.set(`obs/${i}`, `value-${i}`);
      tx.set(`zz/${i}`, 'cross-shard'); // another shard: two-phase
    });
  }
  // one conflict: read, let another transaction overwrite, then commit
  const tx = db.createTransaction();
  await tx.get('obs/0');
  await db.transact(async (t2) => t2.set('obs/0', 'overwritten'));
  tx.set('obs/conflicted', '1');
  await expect(tx.commit()).rejects.toMatchObject({ code: 'CONFLICT' });
}

function metric(body: string, name: string): number {
  const m = body.match(new RegExp(`^${name.replace(/[{}"=.+]/g, (c) => `\\${c}`)} (\\S+)$`, 'm'));
  if (!m) throw new Error(`metric ${name} not found`);
  return Number(m[1]);
}

afterAll(() => killAllServers());

describe('status, metrics, logs', () => {
  it('GET /v1/status reports versions, shards with ranges and load, conflicts, recovery', async () => {
    await work();
    await new Promise((r) => setTimeout(r, 1200)); // one sampler tick
    const s = (await (await fetch(`${base}/v1/status`)).json()) as Record<string, any>;
    expect(s.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(s.uptimeSec).toBeGreaterThanOrEqual(0);
    expect(s.durability).toBe('fsync');
    expect(s.mvccWindowMs).toBe(5000);
    expect(BigInt(s.latestCommittedVersion)).toBeGreaterThan(BigInt(s.oldestReadableVersion)); // versions are decimal strings
    expect(s.connections).toBeGreaterThanOrEqual(1);
    expect(s.inflightCommits).toBe(0);
    expect(s.transactions.committed).toBeGreaterThanOrEqual(21);
    expect(s.transactions.conflicts).toBe(1);
    expect(s.transactions.transactionsStarted).toBeGreaterThanOrEqual(21);
    expect(s.commits.twoPhase).toBeGreaterThanOrEqual(20);
    expect(s.errorsByCode.CONFLICT).toBe(1);
    expect(s.recent.conflictRate).toBeGreaterThan(0);
    expect(s.recent.commitLatencyMs.p99).toBeGreaterThan(0);
    expect(s.shards).toHaveLength(3);
    expect(s.shards[0]).toMatchObject({ shardId: 0, begin: '', beginKey: '', end: '6d', endKey: 'm' });
    expect(s.shards[2].end).toBeNull();
    expect(s.shards[1].begin).toBe(s.shards[0].end);
    for (const sh of s.shards) {
      for (const k of ['queueDepth', 'queued', 'commits', 'reads', 'fsyncs', 'busyMs']) expect(typeof sh[k], k).toBe('number');
      expect(sh.estimatedKeys === null || typeof sh.estimatedKeys === 'number').toBe(true); // counted by the census, null before its first pass
    }
    expect(s.shards.reduce((n: number, sh: { commits: number }) => n + sh.commits, 0)).toBeGreaterThan(20);
    expect(typeof s.storage.metadataMemtableBytes).toBe('number');
    expect(s.storage.disk.usedBytes).toBeGreaterThan(0);
    expect(s.recovery).toMatchObject({ partsReplayed: 0 });
  });

  it('GET /metrics is Prometheus text with real numbers', async () => {
    const r = await fetch(`${base}/metrics`);
    expect(r.headers.get('content-type')).toContain('text/plain');
    const body = await r.text();
    expect(metric(body, 'txkv_transactions_committed_total')).toBeGreaterThanOrEqual(21);
    expect(metric(body, 'txkv_transactions_conflicted_total')).toBe(1);
    expect(metric(body, 'txkv_transactions_started_total{protocol="binary"}')).toBeGreaterThanOrEqual(21); // write-only transactions take no read version
    expect(metric(body, 'txkv_errors_total{code="CONFLICT",protocol="binary"}')).toBe(1);
    expect(metric(body, 'txkv_commit_latency_seconds_count{protocol="binary"}')).toBeGreaterThanOrEqual(22);
    expect(metric(body, 'txkv_commit_latency_seconds_bucket{protocol="binary",le="+Inf"}')).toBe(metric(body, 'txkv_commit_latency_seconds_count{protocol="binary"}'));
    expect(metric(body, 'txkv_read_latency_seconds_count{kind="get",protocol="binary"}')).toBeGreaterThanOrEqual(21);
    expect(metric(body, 'txkv_read_latency_seconds_count{kind="range",protocol="binary"}')).toBeGreaterThanOrEqual(20);
    expect(metric(body, 'txkv_payload_bytes_received_total{protocol="binary"}')).toBeGreaterThan(0);
    expect(metric(body, 'txkv_payload_bytes_sent_total{protocol="binary"}')).toBeGreaterThan(0);
    expect(metric(body, 'txkv_connections')).toBeGreaterThanOrEqual(1);
    expect(metric(body, 'txkv_commit_attempts_total{path="two_phase"}')).toBeGreaterThanOrEqual(20);
    expect(metric(body, 'txkv_shard_queue_depth{shard="0"}')).toBe(0);
    const fsyncs = [0, 1, 2].map((i) => metric(body, `txkv_shard_fsyncs_total{shard="${i}"}`));
    expect(fsyncs.reduce((a, b) => a + b)).toBeGreaterThan(0);
    expect(metric(body, 'txkv_shard_busy_seconds_total{shard="2"}')).toBeGreaterThanOrEqual(0);
    expect(metric(body, 'txkv_rocksdb_metadata_memtable_bytes')).toBeGreaterThan(0);
    expect(metric(body, 'txkv_rocksdb_metadata_compaction_pending')).toBe(0);
    expect(body).toMatch(/^# TYPE txkv_commit_latency_seconds histogram$/m);
    expect(body).toMatch(/^txkv_process_resident_memory_bytes \d+/m);
  });

  it('GET /v1/metrics.json has one point per second with rates and percentiles', async () => {
    const m = (await (await fetch(`${base}/v1/metrics.json`)).json()) as { points: Record<string, any>[]; totals: Record<string, number>; errorsByCode: Record<string, number> };
    expect(m.points.length).toBeGreaterThanOrEqual(1);
    const busy = m.points.filter((p) => p.committedPerSec > 0);
    expect(busy.length).toBeGreaterThanOrEqual(1);
    expect(busy[0]!.commitLatencyMs.p50).toBeGreaterThan(0);
    expect(busy[0]!.shardUtilization).toHaveLength(3);
    expect(m.totals.committed).toBeGreaterThanOrEqual(21);
    expect(m.errorsByCode.CONFLICT).toBe(1);
  });

  it('logs a SlowTransaction line for commits over slowTransactionMs (at most 10 a second), no per-request lines', async () => {
    // 22 commits so far, faster than 10 a second: some lines were left out; one more commit
    // in a fresh second logs how many
    await new Promise((r) => setTimeout(r, 1100));
    await db.transact(async (tx) => tx.set('obs/last', '1'));
    const slow = logs.filter((l) => l.event === 'SlowTransaction');
    expect(slow.length).toBeGreaterThanOrEqual(10);
    const suppressed = slow.reduce((n, l) => n + ((l.suppressed as number | undefined) ?? 0), 0);
    expect(slow.length + suppressed).toBe(23);
    expect(slow[0]).toMatchObject({ level: 40, outcome: 'COMMITTED', mutations: 2 });
    expect(typeof slow[0]!.commitMs).toBe('number');
    const events = new Set(logs.map((l) => l.event));
    expect([...events].sort()).toEqual(['AuthDisabled', 'ConnectionLimit', 'RecoveryDone', 'ServerStarted', 'SlowTransaction', 'UwsLoaded'].filter((e) => events.has(e)).sort());
  });

  it('the SDK connects from a 3FS [kv_engine.custom_kv] config file', async () => {
    const file = path.join(dir, 'meta.toml');
    fs.writeFileSync(
      file,
      `[server]\nother = 1\n\n[kv_engine]\nkv_engine_type = "custom"\n\n[kv_engine.custom_kv]\ncluster_endpoints = ["${server.url}"]\n` +
        'transaction_timeout_ms = 5000\nmax_retry_count = 3\nconnection_pool_size = 1\nauth_token = ""\nconnect_timeout_ms = 2000\n',
    );
    const db2 = await connectFromConfigFile(file);
    try {
      await db2.transact(async (tx) => tx.set('obs/from-config', 'yes'));
      expect(text(await db.createReadOnlyTransaction().get('obs/from-config'))).toBe('yes');
    } finally {
      await db2.close();
    }
    fs.writeFileSync(file, '[kv_engine]\nkv_engine_type = "custom"\n[kv_engine.custom_kv]\ncluster_endpoints = ["ws://x:1"]\nmax_retries = 3\n');
    await expect(connectFromConfigFile(file)).rejects.toThrow(/kv_engine\.custom_kv\.max_retries/);
    await expect(connectFromConfigFile(file)).rejects.toBeInstanceOf(TxnError);
  });

  it('configs/custom_kv_example.toml parses', async () => {
    const { readClientConfigFile } = await import('../../src/client/config-file.js');
    const o = readClientConfigFile(path.resolve(__dirname, '../../configs/custom_kv_example.toml'));
    expect(o.endpoints.length).toBeGreaterThan(0);
    expect(o.maxRetryCount).toBeGreaterThanOrEqual(0);
    expect(o.caFile).toBe('/etc/txkv/ca.pem'); // ca_file: the same key as the C++ adapter's
  });
});

describe('txkv serve logs', () => {
  it('one JSON line each for recovery, start-up and shutdown', async () => {
    const d = tempDir('txkv-logs');
    const child = await spawnServer(d, await freePort());
    try {
      const started = logEvent(child.logs, 'ServerStarted');
      expect(started).toMatchObject({ level: 30, name: 'txkv', durability: 'fsync', shards: 4 });
      expect(logEvent(child.logs, 'RecoveryDone')).toMatchObject({ created: true });
      child.proc.kill('SIGTERM');
      expect(await child.exited).toEqual({ code: 0, signal: null });
      expect(logEvent(child.logs, 'ServerStopped')).toBeTruthy();
      expect(logEvent(child.logs, 'ShutdownRequested')).toMatchObject({ signal: 'SIGTERM' });
    } finally {
      child.proc.kill('SIGKILL');
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});
