// The resolver's conflict history stays within the MVCC window while a backup's snapshot
// pins the window open (gateway/snapshots.ts): the shards keep every change since the
// pin so that the backup reads at its version, but nothing commits from that version, so
// the main thread need not keep every key written meanwhile. It did (the resolver
// pruned at the pinned horizon): its memory grew with every key written during a backup,
// and a snapshot's budget counts the shards' commits, not keys. Real server, HTTP pin.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TxnError } from '../../src/index.js';
import { startTestServer, text, type TestServer } from '../support/server.js';

describe('the resolver while a snapshot pins the window', () => {
  let s: TestServer;
  const http = (): string => s.server.url.replace('ws://', 'http://');
  beforeAll(async () => {
    s = await startTestServer({ shards: 2, durability: 'buffered', mvccWindowMs: 200, distribution: { enabled: false } });
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it('holds only the writes of the window; the snapshot still reads its version; a commit from it is TOO_OLD', { timeout: 60_000 }, async () => {
    await s.db.transact(async (tx) => tx.set('pinned/a', 'before'));
    const snap = (await (await fetch(`${http()}/v1/snapshots`, { method: 'POST' })).json()) as { id: string; readVersion: string };
    const reader = s.db.createTransaction();
    reader.setReadVersion(BigInt(snap.readVersion));
    // 40 commits of 100 new keys each, over ~2 s (10 windows)
    for (let c = 0; c < 40; c++) {
      await s.db.transact(async (tx) => {
        for (let i = 0; i < 100; i++) tx.set(`w/${c}/${i}`, 'x');
        if (c === 0) tx.set('pinned/a', 'after');
      });
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 500)); // two horizon ticks past the last write
    const status = (await (await fetch(`${http()}/v1/status`)).json()) as { resolver: { keys: number } };
    expect(status.resolver.keys, 'keys in the conflict history').toBeLessThan(1000); // of 4,001 written
    // the pinned snapshot still reads its version
    expect(text(await reader.get('pinned/a'))).toBe('before');
    // ... but a read-write transaction at it cannot commit: its read version left the window
    reader.set('pinned/b', 'x');
    const err = await reader.commit().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(TxnError);
    expect((err as TxnError).code).toBe('TOO_OLD');
    await fetch(`${http()}/v1/snapshots/${snap.id}`, { method: 'DELETE' });
  });
});
