// Gateway threads (gatewayThreads > 0, src/gateway/gateway-threads.ts): frames of
// connections past their Hello are decoded, served and encoded on the gateway threads;
// the main thread keeps the sockets, Hello, watches and the oracle. These tests show the
// work really runs there (per-thread counters and CPU in /v1/status) and that what the
// single-thread gateway guarantees still holds: counters, read-only tokens, watches,
// reads routed again after a range moved.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, TxnError } from '../../src/index.js';
import { startTestServer, text, type TestServer } from '../support/server.js';

interface ThreadRow {
  name: string;
  tid: number | null;
  cpuMs: number | null;
  frames?: number;
  requests?: number;
}

async function status(t: TestServer): Promise<{ threads: ThreadRow[]; transactions: { gets: number; ranges: number; committed: number }; admission: { bufferedBytes: number } }> {
  const res = await fetch(t.server.url.replace('ws://', 'http://') + '/v1/status');
  return (await res.json()) as never;
}

const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64url');

describe('gateway threads', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ gatewayThreads: 2, auth: { tokens: ['rw-secret'], readOnlyTokens: ['ro-secret'] } }, { token: 'rw-secret' });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
  });

  it('reads, ranges and commits run on the gateway threads, and their counters add up in /v1/status', { timeout: 60_000 }, async () => {
    // four connections: spread round-robin over both threads
    const db = await connect({ endpoints: [t.server.url], token: 'rw-secret', connectionPoolSize: 4 });
    try {
      const before = await status(t);
      await db.transact(async (tx) => {
        for (let i = 0; i < 50; i++) tx.set(`gt/${String(i).padStart(3, '0')}`, `v${i}`);
      });
      let gets = 0;
      let ranges = 0;
      await Promise.all(
        Array.from({ length: 8 }, async (_, c) => {
          for (let n = 0; n < 10; n++) {
            const vals = await db.transact(async (tx) => Promise.all([0, 1, 2, 3, 4].map((i) => tx.get(`gt/${String((c * 5 + i + n) % 50).padStart(3, '0')}`))));
            expect(vals.map(text)).toEqual([0, 1, 2, 3, 4].map((i) => `v${(c * 5 + i + n) % 50}`));
            gets += 5;
            const r = await db.transact(async (tx) => tx.getRange({ key: 'gt/010', inclusive: true }, { key: 'gt/020', inclusive: false }));
            expect(r.kvs.length).toBe(10);
            ranges++;
          }
        }),
      );
      const after = await status(t);
      const gw = after.threads.filter((x) => x.name.startsWith('gateway-'));
      expect(gw.map((x) => x.name)).toEqual(['gateway-0', 'gateway-1']);
      // both threads served requests (the connections are spread over them)
      for (const x of gw) {
        const was = before.threads.find((y) => y.name === x.name)!;
        expect(x.requests! - was.requests!, `${x.name} served requests`).toBeGreaterThan(0);
        expect(x.frames!).toBeGreaterThan(0);
      }
      // every gateway thread's counters reach the server's totals (reported on demand before /v1/status)
      expect(after.transactions.gets - before.transactions.gets).toBe(gets);
      expect(after.transactions.ranges - before.transactions.ranges).toBe(ranges);
      expect(after.transactions.committed - before.transactions.committed).toBe(1);
      // nothing stays held in the shared budget once every reply is sent
      expect(after.admission.bufferedBytes).toBe(0);
      // per-thread CPU: main, both gateway threads, every shard and the log writer (fsync durability; Linux)
      if (process.platform === 'linux') {
        expect(after.threads.map((x) => x.name)).toEqual(['main', 'gateway-0', 'gateway-1', 'shard-0', 'shard-1', 'shard-2', 'shard-3', 'log-writer']);
        for (const x of after.threads) expect(x.cpuMs, x.name).toBeGreaterThanOrEqual(0);
      }
    } finally {
      await db.close();
    }
  });

  it('a read-only token cannot commit writes through a gateway thread; watches (main thread) fire', { timeout: 60_000 }, async () => {
    const ro = await connect({ endpoints: [t.server.url], token: 'ro-secret', connectionPoolSize: 2 });
    try {
      await expect(ro.transact(async (tx) => tx.set('gt/ro', 'x'))).rejects.toSatisfy((e: unknown) => e instanceof TxnError && e.code === 'UNAUTHORIZED');
      expect(text(await ro.transact(async (tx) => tx.get('gt/001')))).toBe('v1');
      const w = ro.watch('gt/001');
      await new Promise((r) => setTimeout(r, 100));
      await t.db.transact(async (tx) => tx.set('gt/001', 'changed'));
      await expect(Promise.race([Promise.resolve(w).then(() => 'fired'), new Promise((r) => setTimeout(() => r('pending'), 10_000))])).resolves.toBe('fired');
    } finally {
      await ro.close();
    }
  });

  it('reads of a range moved to another worker are routed again with the new map (stale-map refusal)', { timeout: 60_000 }, async () => {
    const db = await connect({ endpoints: [t.server.url], token: 'rw-secret', connectionPoolSize: 2 });
    try {
      const admin = async (path: string): Promise<{ map: { ranges: { begin: string; owner: number }[] } }> => {
        const res = await fetch(t.server.url.replace('ws://', 'http://') + path, { method: 'POST', headers: { authorization: 'Bearer rw-secret' } });
        const body = (await res.json()) as never;
        expect(res.status, JSON.stringify(body)).toBe(200);
        return body;
      };
      const { map } = await admin(`/v1/shard/split?key=${b64('gt/030')}`);
      const i = map.ranges.findIndex((r) => Buffer.from(r.begin, 'hex').toString('latin1') === 'gt/030');
      const from = map.ranges[i]!.owner;
      const to = (from + 1) % 4;
      // warm the gateway threads' maps, then move the range under them
      expect(text(await db.transact(async (tx) => tx.get('gt/035')))).toBe('v35');
      await admin(`/v1/shard/move?begin=${b64('gt/030')}&to=${to}`);
      for (let k = 0; k < 20; k++) {
        const [v, r] = await db.transact(async (tx) => Promise.all([tx.get('gt/035'), tx.getRange({ key: 'gt/030', inclusive: true }, { key: 'gt/040', inclusive: false })]));
        expect(text(v)).toBe('v35');
        expect(r.kvs.map((kv) => text(kv.value))).toEqual(Array.from({ length: 10 }, (_, j) => `v${30 + j}`));
      }
    } finally {
      await db.close();
    }
  });
});
