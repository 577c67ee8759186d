// kill -9 at random moments while cross-shard transactions commit: every
// acknowledged commit survives in full, no transaction is partly visible, and
// versions after a restart are above every version before. Bounded: a few cycles.
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, TxnError, type Database } from '../../src/index.js';
import { freePort, logEvent, spawnServer, killAllServers } from '../support/child-server.js';
import { tempDir, text } from '../support/server.js';
import { onEveryShard } from '../support/keys.js';
import { mulberry32, randInt, seeds } from '../support/rng.js';

const dirs: string[] = [];
afterAll(() => {
  killAllServers();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A transaction writes the same generation to one key on each of the 4 default shards. */
const keysOf = (writer: number): string[] => onEveryShard(`w${writer}`);

describe.each(seeds(1, 11))('kill -9 during cross-shard commits (seed %i)', (seed) => {
  it('keeps every acknowledged commit, atomically, with increasing versions', { timeout: 120_000 }, async () => {
    const rng = mulberry32(seed);
    const dir = tempDir('txkv-kill9');
    dirs.push(dir);
    const port = await freePort();
    const WRITERS = 6;
    // highest acknowledged generation per writer, and highest version seen
    const acked = new Array<number>(WRITERS).fill(0);
    let maxVersionBefore = 0n;
    for (let cycle = 0; cycle < 4; cycle++) {
      const srv = await spawnServer(dir, port);
      const db = await connect({ endpoints: [srv.url], transactionTimeoutMs: 5000 });
      // versions after a restart exceed every version before
      const rv = await db.createTransaction().getReadVersion();
      expect(rv > maxVersionBefore, `cycle ${cycle}: read version ${rv} <= ${maxVersionBefore}`).toBe(true);
      // every acknowledged generation is there, in full (all four shards agree)
      await checkState(db, acked, WRITERS, cycle);
      let stop = false;
      const writer = async (w: number): Promise<void> => {
        let gen = acked[w]!;
        while (!stop) {
          const tx = db.createTransaction();
          const next = gen + 1;
          for (const k of keysOf(w)) tx.set(k, String(next));
          try {
            await tx.commit();
            gen = next;
            acked[w] = next;
            if (tx.getCommittedVersion() > maxVersionBefore) maxVersionBefore = tx.getCommittedVersion();
          } catch (e) {
            if (!(e instanceof TxnError)) throw e;
            // MAYBE_COMMITTED (commit in flight) or NETWORK_ERROR: the server is gone
            return;
          }
        }
      };
      const running = Array.from({ length: WRITERS }, (_, w) => writer(w));
      await new Promise((r) => setTimeout(r, 150 + randInt(rng, 600)));
      srv.proc.kill('SIGKILL');
      await srv.exited;
      stop = true;
      await Promise.all(running);
      await db.close();
    }
    const srv = await spawnServer(dir, port);
    const recovered = logEvent(srv.logs, 'RecoveryDone');
    expect(recovered).toBeDefined();
    const db = await connect({ endpoints: [srv.url] });
    await checkState(db, acked, WRITERS, 99);
    const rv = await db.createTransaction().getReadVersion();
    expect(rv > maxVersionBefore).toBe(true);
    expect(acked.reduce((a, b) => a + b, 0), 'the writers made progress').toBeGreaterThan(10);
    await db.close();
    srv.proc.kill('SIGTERM');
    expect((await srv.exited).code).toBe(0);
  });
});

async function checkState(db: Database, acked: number[], writers: number, cycle: number): Promise<void> {
  const tx = db.createReadOnlyTransaction();
  for (let w = 0; w < writers; w++) {
    const vals = await Promise.all(keysOf(w).map(async (k) => text(await tx.get(k))));
    const gens = vals.map((v) => (v === null ? 0 : Number(v)));
    expect(new Set(gens).size, `cycle ${cycle} writer ${w}: partly visible transaction ${JSON.stringify(gens)}`).toBe(1);
    // the last unacknowledged commit may or may not have landed: at most one ahead
    expect(gens[0]! >= acked[w]! && gens[0]! <= acked[w]! + 1, `cycle ${cycle} writer ${w}: found ${gens[0]}, acknowledged ${acked[w]}`).toBe(true);
    acked[w] = gens[0]!;
  }
}
