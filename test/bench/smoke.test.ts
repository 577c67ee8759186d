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
import { encodeIntoCompressedBase64 } from 'hdr-histogram-js';
import { bytesToHex, checkValue, compareBytes, kvIndex, kvKey, makeValue, prefixEnd } from '../../bench/data.js';
import { mergeRaw, newHistogram, summarize, type RawResult } from '../../bench/generator.js';
import { Rng } from '../../bench/rng.js';
import { runSuite, type SuiteReport } from '../../bench/suite.js';
import { WORKLOAD_NAMES, workloadByName } from '../../bench/workloads/index.js';
import { startServer } from '../../src/index.js';

describe('bench pieces', () => {
  it('keys sort in row order and values are tied to their key', () => {
    const rng = new Rng(5);
    for (let i = 0; i < 200; i++) {
      const a = rng.int(1e9);
      const b = rng.int(1e9);
      expect(Math.sign(compareBytes(kvKey(a), kvKey(b)))).toBe(Math.sign(a - b));
      expect(kvIndex(kvKey(a))).toBe(a);
    }
    const v = makeValue(rng, kvKey(1));
    expect(v.length).toBeGreaterThanOrEqual(8);
    expect(v.length).toBeLessThanOrEqual(100);
    expect(checkValue(kvKey(1), v)).toBe(true);
    expect(checkValue(kvKey(2), v)).toBe(false);
    const corrupt = v.slice();
    corrupt[v.length - 1] = ((corrupt[v.length - 1] as number) + 1) & 0xff;
    expect(checkValue(kvKey(1), corrupt)).toBe(false);
  });

  it('prefixEnd copies (a Buffer slice would alias and corrupt the prefix)', () => {
    const prefix = Buffer.from([0x44, 0x01, 0xff]);
    expect([...prefixEnd(prefix)]).toEqual([0x44, 0x02]);
    expect([...prefix]).toEqual([0x44, 0x01, 0xff]);
  });

  it('the PRNG replays from its seed', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    expect(Array.from({ length: 10 }, () => a.u32())).toEqual(Array.from({ length: 10 }, () => b.u32()));
    expect(new Rng(42).fork(1).u32()).not.toBe(new Rng(42).fork(2).u32());
  });

  it('merging generator processes adds counts and histograms', () => {
    const part = (latencyUs: number, n: number): RawResult => {
      const h = newHistogram();
      for (let i = 0; i < n; i++) h.recordValue(latencyUs);
      return {
        measuredMs: 1000, txns: n, ops: 10 * n, conflicts: 1, retries: 2, errors: { TIMEOUT: 1 }, retriedErrors: { CONFLICT: 1 },
        outcomes: {}, errorSamples: [], hist: encodeIntoCompressedBase64(h), byOp: {},
      };
    };
    const merged = mergeRaw([part(1000, 90), part(50_000, 10)]);
    expect(merged.txns).toBe(100);
    expect(merged.errors).toEqual({ TIMEOUT: 2 });
    const r = summarize(merged, { system: 's', durability: 'd', workload: workloadByName('w10'), clients: 2, procs: 2, rows: 1 });
    expect(r.txPerSec).toBe(100);
    expect(r.opsPerSec).toBe(1000);
    expect(r.p50Ms).toBeCloseTo(1, 1);
    expect(r.p99Ms).toBeCloseTo(50, 0);
  });
});

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
    server = await startServer({ port: 0, host: '127.0.0.1', dataDir, shards: 2, logLevel: 'error' });
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
