// A pinned snapshot (txkv backup) holds the shards' MVCC window open, so the window keeps
// every write made since (gateway/snapshots.ts). The budget that bounds it counts bytes:
// it counted commits (2,000,000), so inserts of ten new keys per commit could hold ~6 GB
// and, past 2^24 keys, break a shard's window (V8's Map holds no more). Real server, real
// shards, HTTP pin; the budget set low by limits.maxSnapshotHistoryBytes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';

const BUDGET = 4 * 1024 * 1024;

describe('the history budget of pinned snapshots', () => {
  let s: TestServer;
  const http = (): string => s.server.url.replace('ws://', 'http://');
  const windowBytes = async (): Promise<number> => {
    const text = await (await fetch(`${http()}/metrics`)).text();
    let sum = 0;
    for (const m of text.matchAll(/^txkv_shard_window_bytes\{[^}]*\} (\d+)/gm)) sum += Number(m[1]);
    return sum;
  };
  beforeAll(async () => {
    s = await startTestServer({
      shards: 2,
      durability: 'buffered',
      mvccWindowMs: 200,
      distribution: { enabled: false },
      limits: { maxSnapshotHistoryBytes: BUDGET },
    });
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it('drops the snapshot once the shards hold more bytes than the budget; its renewal says why; the window slides again', { timeout: 60_000 }, async () => {
    const snap = (await (await fetch(`${http()}/v1/snapshots`, { method: 'POST' })).json()) as { id: string; maxHistoryBytes: number };
    expect(snap.maxHistoryBytes).toBe(BUDGET);
    // ~260 bytes of bookkeeping per new key (no before-image: the keys are new): 40,000
    // keys in 100 commits go past 4 MiB while the pin holds them
    for (let c = 0; c < 100; c++) {
      await s.db.transact(async (tx) => {
        for (let i = 0; i < 400; i++) tx.set(`insert/${c}/${i}`, 'v');
      });
    }
    // the budget is checked once a second: wait for the drop
    let renewal: Response | null = null;
    for (let i = 0; i < 50; i++) {
      renewal = await fetch(`${http()}/v1/snapshots/${snap.id}/renew`, { method: 'POST' });
      if (renewal.status !== 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(renewal!.status).toBe(410);
    const { error } = (await renewal!.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('GONE');
    const held = /held (\d+) bytes of history for it, over limits\.maxSnapshotHistoryBytes \(4194304\)/.exec(error.message);
    expect(held, error.message).not.toBe(null);
    expect(Number(held![1])).toBeGreaterThan(BUDGET);
    // unpinned: the window slides back to its 200 ms and gives the room back
    let after = Number(held![1]);
    for (let i = 0; i < 50 && after > BUDGET / 4; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await windowBytes();
    }
    expect(after).toBeLessThan(BUDGET / 4);
  });

  it('a snapshot within the budget stays', { timeout: 30_000 }, async () => {
    const snap = (await (await fetch(`${http()}/v1/snapshots`, { method: 'POST' })).json()) as { id: string };
    await s.db.transact(async (tx) => {
      for (let i = 0; i < 100; i++) tx.set(`small/${i}`, 'x');
    });
    await new Promise((r) => setTimeout(r, 1500)); // past one budget check
    expect((await fetch(`${http()}/v1/snapshots/${snap.id}/renew`, { method: 'POST' })).status).toBe(200);
    await fetch(`${http()}/v1/snapshots/${snap.id}`, { method: 'DELETE' });
  });
});
