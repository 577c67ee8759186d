// Issue 10 item 7: versions and the clock. The MVCC window is measured in versions
// (about 1,000,000 a second of elapsed time), not against the wall clock, and after a
// restart every new version is above every version handed out before, also when the
// wall clock went back. Real servers on one data directory; the wall clock each start
// sees is given through startServer's `clock` option (a restored data dir / a clock
// stepped back is exactly "the versions on disk are ahead of the clock").
import fs from 'node:fs';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, startServer, TxnError } from '../../src/index.js';
import { microClock } from '../../src/coordinator/timestamp-oracle.js';
import { tempDir } from '../support/server.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function run<T>(dataDir: string, clock: () => number, config: Record<string, unknown>, fn: (db: Awaited<ReturnType<typeof connect>>) => Promise<T>): Promise<T> {
  const server = await startServer({ port: 0, host: '127.0.0.1', dataDir, shards: 4, ...config }, { logger: pino({ level: 'warn' }), clock });
  const db = await connect({ endpoints: [server.url] });
  try {
    return await fn(db);
  } finally {
    await db.close();
    await server.close();
  }
}

describe('versions and the clock', () => {
  it('after a restart with the clock 60 s behind, a new commit is above every read version handed out before', { timeout: 60_000 }, async () => {
    const dataDir = tempDir('txkv-clock');
    dirs.push(dataDir);
    const ahead = (): number => microClock() + 60_000_000;
    // first life: the clock is 60 s ahead; read versions are handed out, nothing is committed
    const handedOut = await run(dataDir, ahead, {}, async (db) => {
      const vs: bigint[] = [];
      for (let i = 0; i < 20; i++) vs.push(await db.createTransaction().getReadVersion());
      return vs;
    });
    const highest = handedOut.reduce((a, b) => (a > b ? a : b));
    // second life: the clock is back to normal (stepped back by 60 s)
    await run(dataDir, microClock, {}, async (db) => {
      const tx = db.createTransaction();
      tx.set('k', 'v');
      await tx.commit();
      expect(tx.getCommittedVersion()).toBeGreaterThan(highest);
      expect(await db.createTransaction().getReadVersion()).toBeGreaterThan(highest);
    });
  });

  it('with versions on disk 60 s ahead of the clock, the MVCC window is still measured in versions: old read versions fail TOO_OLD', { timeout: 60_000 }, async () => {
    const dataDir = tempDir('txkv-window');
    dirs.push(dataDir);
    await run(dataDir, () => microClock() + 60_000_000, {}, async (db) => {
      await db.transact(async (tx) => tx.set('k', '0'));
    });
    await run(dataDir, microClock, { mvccWindowMs: 1000 }, async (db) => {
      const old = await db.createTransaction().getReadVersion();
      const until = Date.now() + 2500;
      let n = 0;
      while (Date.now() < until) await db.transact(async (tx) => tx.set(`k${n++ % 50}`, String(n)));
      const tx = db.createTransaction();
      tx.setReadVersion(old);
      const err = await tx.get('k').then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TxnError);
      expect((err as TxnError).code).toBe('TOO_OLD');
      // a version from well inside the window still reads
      const fresh = db.createTransaction();
      fresh.setReadVersion((await db.createTransaction().getReadVersion()) - 200_000n);
      expect(await fresh.get('k')).not.toBeNull();
    });
  });
});
