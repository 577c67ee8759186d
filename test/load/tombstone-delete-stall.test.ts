// KNOWN BUG, not fixed (reported 2026-11-29 by the review): when the MVCC window passes a
// commit with many range clears, the shard deletes all of its tombstones' rows in one
// synchronous step, one RocksDB write per DeleteRange (the binding has no batch-level
// range delete, storage.ts writeOps), and every read and commit of that shard waits
// meanwhile: after a commit of 20,000 clearRange + set pairs, a point read stalled ~4 s
// (load 8). The tombstones of one commit share a version and RangeVersions.forget cannot
// forget part of them, so the deletion cannot simply be split. Runs on demand only (it
// fails today): TXKV_REPRO=1 npx vitest run test/load/tombstone-delete-stall.test.ts
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';

describe.skipIf(!process.env.TXKV_REPRO)('reads while the tombstones of 20,000 range clears are deleted', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ shards: 1, durability: 'buffered', distribution: { enabled: false } });
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it('a point read on the shard is answered within 1 s throughout', { timeout: 90_000 }, async () => {
    const k = (i: number): string => `dir/${String(i).padStart(6, '0')}`;
    const tx = s.db.createTransaction();
    for (let i = 0; i < 20_000; i++) {
      tx.clearRange(k(i), `${k(i)}/\xff`);
      tx.set(`${k(i)}/new`, String(i));
    }
    await tx.commit();
    let worst = 0;
    const end = Date.now() + 10_000; // past the 5 s window and the deletion
    while (Date.now() < end) {
      const t0 = Date.now();
      await s.db.createReadOnlyTransaction().get('other');
      worst = Math.max(worst, Date.now() - t0);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(worst, 'longest point read, ms').toBeLessThan(1000);
  });
});
