// Issue 12: a cross-shard commit is acknowledged once its decision is durable (the
// primary wrote its part and the decision record), not once every shard applied it. A
// read version taken after the acknowledgement covers the commit, so a read at it must
// wait, on a secondary still applying the commit, until that part is applied
// (Shard.mustWait). Here the secondary is held up by a large write of a lower commit
// (buffered durability: the shard thread writes itself, synchronously), so the decision
// and the read both reach it while its part is still queued there: the read must park
// until that part is written. Real RocksDB and shard workers under the coordinator.
import fs from 'node:fs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import type { WireMutation } from '../../src/coordinator/commit-plan.js';
import { toBytes } from '../../src/keys/bytes.js';
import { openDatabase } from '../../src/server/open-database.js';
import { tempDir } from '../support/server.js';

const set = (key: string, value: string): WireMutation => ({ type: 0, key: toBytes(key), param: toBytes(value), offset: 0 });
const str = (v: unknown): unknown => (v instanceof Uint8Array ? Buffer.from(v).toString() : v);

describe('a cross-shard commit acknowledged before its secondary applied it', () => {
  const dir = tempDir('txkv-early-ack');
  let c: Coordinator;
  let close: () => Promise<void>;
  beforeAll(async () => {
    // shard 0: "a…", 1: "b…", 2: "c…", 3: "d…"
    const { db, splitPoints } = await openDatabase(dir, { shards: 4, splitPoints: ['b', 'c', 'd'].map((k) => toBytes(k)), explicitSplitPoints: true });
    c = await Coordinator.start({ db, splitPoints, readonly: false, durable: false, mvccWindowMs: 5000, failpoints: {}, logger: pino({ level: 'silent' }), onFatal: () => {} });
    close = async () => {
      await c.close();
      await db.close();
    };
  }, 60_000);
  afterAll(async () => {
    await close?.();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is acknowledged first, and a read after the acknowledgement waits for the part there', { timeout: 60_000 }, async () => {
    for (let round = 0; round < 5; round++) {
      const value = String(round).repeat(880); // 10,000 sets of 11 + 880 bytes + 95 of overhead (keys/limits.ts mutationBytes): 9.86 MB
      const t0 = performance.now();
      // ~9 MB on shard 3 in one commit: its write keeps shard 3's thread busy for a while
      const big = c.commits.commit({ readVersion: 0, readConflicts: [], mutations: Array.from({ length: 10_000 }, (_, i) => set(`d/big/${String(i).padStart(5, '0')}`, value)) });
      const bigDone = big.then((r) => ({ ...r, ms: performance.now() - t0 }));
      // in the same turn, so versioned after it and sent to shard 3 in the same message: a
      // blind cross-shard write, primary shard 2, secondary shard 3 (prepared behind the big one)
      const cross = await c.commits.commit({ readVersion: 0, readConflicts: [], mutations: [set('c/x', `cross${round}`), set('d/x', `cross${round}`)] });
      const crossMs = performance.now() - t0;
      // a read version taken now covers the cross-shard commit; shard 3 is still writing the big one
      const rv = c.reads.readVersion();
      const got = await c.reads.getMany([rv, rv, rv], [toBytes('c/x'), toBytes('d/x'), toBytes('d/big/09999')]);
      const b = await bigDone;
      console.log(`round ${round}: cross-shard commit acknowledged after ${crossMs.toFixed(1)} ms; the big commit below it on its secondary after ${b.ms.toFixed(1)} ms`);
      expect(cross.commitVersion).toBeGreaterThan(b.commitVersion);
      expect(rv).toBeGreaterThanOrEqual(cross.commitVersion);
      // acknowledged before its secondary could apply it (that shard was writing the big commit)
      expect(crossMs).toBeLessThan(b.ms);
      // the read on the secondary saw it (and the big commit below it) all the same
      expect(got.map(str)).toEqual([`cross${round}`, `cross${round}`, value]);
    }
    // every part applied: the version finished
    await c.oracle.waitFor(c.oracle.lastAssignedVersion, 5000);
    expect(c.oracle.inflightCount).toBe(0);
  });
});
