// Smoke test of the benchmark suite: every workload runs briefly against an in-process txkv
// server (small keyspace, few clients) and its results must be correct: reads return what
// the preload (or a later write) stored, ranges are complete and ordered, the meta namespace
// stays consistent, and no error other than a retried CONFLICT happens. Not a speed test.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterSpec } from '../../bench/adapter.js';
import { createAdapter } from '../../bench/adapters/index.js';
import { bytesToHex } from '../../bench/data.js';
import { runSuite, type SuiteReport } from '../../bench/suite.js';
import { WORKLOAD_NAMES, workloadByName } from '../../bench/workloads/index.js';
import { startServer } from '../../src/index.js';

const ROWS = 1000;
const CLIENTS = 4;
const SECONDS = 1.5;
const SEED = Number(process.env.TXKV_SEED ?? 1);

type RunningServer = Awaited<ReturnType<typeof startServer>>;

describe(`bench smoke against txkv (seed ${SEED})`, () => {
  let server: RunningServer;
  let dataDir: string;
  let spec: AdapterSpec;
  const loaded = new Set<string>();

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'txkv-bench-smoke-'));
    server = await startServer({ port: 0, host: '127.0.0.1', dataDir, shards: 2, logLevel: 'warn' });
    spec = { system: 'txkv', endpoint: server.url };
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  async function run(name: string): Promise<SuiteReport> {
    const workload = workloadByName(name);
    const load = !loaded.has(workload.keyspace);
    loaded.add(workload.keyspace);
    const report = await runSuite(await createAdapter(spec), spec, {
      workload,
      clients: workload.defaultClients === 1 ? 1 : name === 'meta' ? 16 : CLIENTS, // meta: enough clients to collide in the hot directory
      seconds: SECONDS,
      warmupSeconds: 0,
      rows: ROWS,
      seed: SEED,
      verify: true,
      procs: 0,
      progress: false,
      load,
    });
    // Correctness, whatever the speed: something committed, nothing failed, only conflicts retried.
    expect(report.errorSamples ?? [], `${name}: first errors`).toEqual([]);
    expect(report.errors, `${name}: errors by code`).toEqual({});
    expect(Object.keys(report.retriedErrors).filter((c) => c !== 'CONFLICT'), `${name}: retried codes`).toEqual([]);
    expect(report.txns, `${name}: committed transactions`).toBeGreaterThan(0);
    expect(report.ops).toBeGreaterThanOrEqual(report.txns);
    return report;
  }

  it('reads after the preload return exactly the preloaded values', async () => {
    const workload = workloadByName('r10');
    const adapter = await createAdapter(spec);
    await adapter.open({ ordered: false });
    try {
      await adapter.load(workload.preload({ rows: ROWS, seed: SEED }));
      loaded.add(workload.keyspace);
      const session = await adapter.session(0);
      let checked = 0;
      for (const kv of workload.preload({ rows: ROWS, seed: SEED })) {
        if (checked % 37 === 0) {
          const got = await session.attempt({ kind: 'ro', oneShot: true }, (tx) => tx.get(kv.key));
          expect(got && bytesToHex(got), `row ${checked}`).toBe(bytesToHex(kv.value));
        }
        checked++;
      }
      expect(checked).toBe(ROWS);
      await session.close();
    } finally {
      await adapter.close();
    }
  }, 30_000);

  for (const name of WORKLOAD_NAMES.filter((n) => n !== 'meta')) {
    it(`${name} runs and every read checks out`, async () => {
      await run(name);
    }, 30_000);
  }

  it('meta keeps the namespace consistent and runs every operation', async () => {
    const report = await run('meta');
    expect(report.metaCheck, 'namespace check ran').toBeDefined();
    expect(report.metaCheck?.problems).toEqual([]);
    expect(report.metaCheck?.files).toBeGreaterThan(0);
    expect(Object.keys(report.byOp ?? {}).sort()).toEqual(['create', 'readdir', 'remove', 'rename', 'stat']);
  }, 60_000);
});
