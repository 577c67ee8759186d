// Issue 15 finding 7 (storage numbers per shard, disk usage and free space) and the
// status part of finding 12 (process, WAL latency, write stalls), on a real server.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';

let t: TestServer;
let base: string;
beforeAll(async () => {
  t = await startTestServer({ shards: 3, splitPoints: ['h', 'p'] });
  base = `http://127.0.0.1:${t.server.port}`;
});
afterAll(async () => {
  await t?.close();
});

async function status(): Promise<any> {
  return (await fetch(`${base}/v1/status`)).json();
}

function metric(body: string, name: string): number {
  const m = body.match(new RegExp(`^${name.replace(/[{}"=.+]/g, (c) => `\\${c}`)} (\\S+)$`, 'm'));
  if (!m) throw new Error(`metric ${name} not found`);
  return Number(m[1]);
}

describe('finding 7: storage numbers', () => {
  it('keys and bytes per shard are counted per shard (column family), not the database-wide figure', async () => {
    const want = [30, 200, 5];
    const prefixes = ['a/', 'k/', 'x/'];
    const value = 'v'.repeat(100);
    const bytes = [0, 0, 0];
    for (let s = 0; s < 3; s++) {
      await t.db.transact(async (tx) => {
        for (let i = 0; i < want[s]!; i++) {
          const key = `${prefixes[s]}${String(i).padStart(4, '0')}`;
          tx.set(key, value);
          bytes[s]! += key.length + value.length;
        }
      });
    }
    // the census counts in the background: wait for a pass that saw the writes
    let st: any;
    const deadline = Date.now() + 20_000;
    for (;;) {
      st = await status();
      if (st.shards.map((sh: any) => sh.estimatedKeys).join() === want.join()) break;
      if (Date.now() > deadline) throw new Error(`census never counted ${want.join()}: ${JSON.stringify(st.shards.map((sh: any) => sh.estimatedKeys))}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(st.shards.map((sh: any) => sh.estimatedBytes)).toEqual(bytes);
    for (const sh of st.shards) expect(sh.countedAt).toMatch(/^\d{4}-/);
    const body = await (await fetch(`${base}/metrics`)).text();
    expect([0, 1, 2].map((i) => metric(body, `txkv_shard_keys{shard="${i}"}`))).toEqual(want);
    expect(body).not.toMatch(/^txkv_rocksdb_live_sst_bytes /m); // was the default column family's, 0 with data on disk
  });

  it('disk usage of the data directory and free space of its file system', async () => {
    // ~2 MB of values: on disk in the WAL (memtables are not flushed yet)
    const { randomBytes } = await import('node:crypto');
    const big = (): Uint8Array => new Uint8Array(randomBytes(50_000)); // incompressible (the WAL may be compressed)
    for (let i = 0; i < 4; i++) {
      await t.db.transact(async (tx) => {
        for (let j = 0; j < 10; j++) tx.set(`big/${i}/${j}`, big());
      });
    }
    await new Promise((r) => setTimeout(r, 2100)); // the disk figures are cached for 2 s
    const d = (await status()).storage.disk;
    expect(d.usedBytes).toBeGreaterThan(2_000_000);
    expect(d.walBytes).toBeGreaterThan(2_000_000);
    expect(d.usedBytes).toBe(d.sstBytes + d.walBytes + d.otherBytes);
    const fsStat = fs.statfsSync(t.dataDir);
    expect(d.fsTotalBytes).toBe(fsStat.blocks * fsStat.bsize);
    expect(d.fsAvailableBytes).toBeGreaterThan(0);
    expect(Math.abs(d.fsAvailableBytes - fsStat.bavail * fsStat.bsize)).toBeLessThan(512 * 1024 * 1024);
    const body = await (await fetch(`${base}/metrics`)).text();
    expect(metric(body, 'txkv_storage_used_bytes')).toBeGreaterThan(2_000_000);
    expect(metric(body, 'txkv_storage_filesystem_available_bytes')).toBeGreaterThan(0);
  });
});

describe('finding 12: what an operator needs in status', () => {
  it('process CPU and memory, event-loop lag, WAL write latency, compactions and write stalls', async () => {
    for (let i = 0; i < 20; i++) await t.db.transact(async (tx) => tx.set(`w/${i}`, 'x'));
    await new Promise((r) => setTimeout(r, 1200));
    const st = await status();
    expect(st.process.rssBytes).toBeGreaterThan(10_000_000);
    expect(st.process.heapUsedBytes).toBeGreaterThan(0);
    expect(st.process.cpuPercent).toBeGreaterThanOrEqual(0);
    expect(st.process.eventLoopLagP99Ms).toBeGreaterThan(0);
    expect(st.process.walWriteMs).toBeGreaterThan(0);
    for (const sh of st.shards) expect(sh.walWriteMsAvg === null || sh.walWriteMsAvg > 0).toBe(true);
    expect(st.shards.some((sh: any) => sh.walWriteMsAvg > 0)).toBe(true);
    expect(st.storage.writeStopped).toBe(false);
    expect(typeof st.storage.runningCompactions).toBe('number');
    expect(st.cluster).toBeNull();
    const body = await (await fetch(`${base}/metrics`)).text();
    expect(metric(body, 'txkv_rocksdb_write_stopped')).toBe(0);
    const walWrites = [0, 1, 2].map((i) => metric(body, `txkv_shard_wal_writes_total{shard="${i}"}`)).reduce((a, b) => a + b);
    expect(walWrites).toBeGreaterThanOrEqual(20);
    expect([0, 1, 2].map((i) => metric(body, `txkv_shard_wal_write_seconds_total{shard="${i}"}`)).reduce((a, b) => a + b)).toBeGreaterThan(0);
  });
});
