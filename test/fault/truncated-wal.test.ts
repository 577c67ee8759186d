// Power loss drops what was written but not fsync'd. In a cross-shard commit only the
// primary's batch (its part + the decision record) is fsync'd; the secondaries' parts
// rely on recovery replaying the record. kill -9 keeps the page cache, so here the
// loss is made by hand: after kill -9 the newest WAL is cut at random offsets (each
// cut on a fresh copy of the data directory) and the server restarted on it. Whatever
// prefix of the WAL survives, every cross-shard transaction must be visible on all of
// its shards or on none, and (they ran one after another) the surviving ones must be
// a prefix of the sequence.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killAllServers } from '../support/child-server.js';
import { startTestServer, tempDir, text } from '../support/server.js';
import { commitOnEveryShardThenKill, newestWal } from '../support/wal.js';
import { onEveryShard } from '../support/keys.js';
import { mulberry32, seeds, randInt } from '../support/rng.js';

const dirs: string[] = [];
afterAll(() => {
  killAllServers();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/**
 * Offsets in a RocksDB WAL just after each complete logical record (one write batch
 * each): cutting there is a clean power cut between two writes. Format: 32 KiB blocks
 * of records [crc32c:4][length:2 LE][type:1] payload (recyclable types 5-8 and 11 carry
 * a 4-byte log number more; type 9 announces WAL compression); a block tail shorter than
 * a header is padding.
 */
function recordEnds(wal: Buffer): number[] {
  const BLOCK = 32768;
  const ends: number[] = [];
  let o = 0;
  while (o < wal.length) {
    const left = BLOCK - (o % BLOCK);
    if (left < 7) {
      o += left;
      continue;
    }
    if (o + 7 > wal.length) break;
    const len = wal.readUInt16LE(o + 4);
    const type = wal[o + 6]!;
    if (type === 0 && len === 0) break; // zeroed (preallocated) space: the end of the log
    const header = (type >= 5 && type <= 8) || type === 11 ? 11 : 7;
    o += header + len;
    if (o > wal.length) break;
    if (type === 1 || type === 4 || type === 5 || type === 8) ends.push(o); // FULL or LAST
  }
  return ends;
}

describe.each(seeds(1, 4242))('newest WAL truncated at random offsets after kill -9 (seed %i)', (seed) => {
  it('no partial cross-shard transaction appears', { timeout: 180_000 }, async () => {
    const rng = mulberry32(seed);
    const dir = tempDir('txkv-walcut');
    dirs.push(dir);
    const N = 60;
    await commitOnEveryShardThenKill(dir, 'cut', N);

    const walName = path.relative(dir, newestWal(dir));
    const size = fs.statSync(path.join(dir, walName)).size;
    // clean cuts between the last writes (between a primary's fsync'd batch and the
    // secondaries' batches of the same commit, among others), and torn ones at random offsets
    const ends = recordEnds(fs.readFileSync(path.join(dir, walName)));
    expect(ends.length).toBeGreaterThan(N);
    const cuts = [...ends.slice(-7, -1), ...Array.from({ length: 2 }, () => randInt(rng, size))];
    for (const cut of cuts) {
      const copy = tempDir('txkv-walcut-copy');
      dirs.push(copy);
      fs.cpSync(dir, copy, { recursive: true });
      fs.truncateSync(path.join(copy, walName), cut);
      // recovery runs in this process (startServer, as `txkv serve` runs it): the same
      // RocksDB open, recovery and shard threads, without a child's Node start and module
      // loading (~0.6 s of CPU per cut)
      const t2 = await startTestServer({ dataDir: copy });
      try {
        // every read of a cut at one read version, all at once, inside transact: read one
        // after another they took over the 5 s MVCC window on a loaded machine (TOO_OLD,
        // 15:37 at load 14), and transact retries a TOO_OLD read version
        const vals = await t2.db.transact((tx) => Promise.all(Array.from({ length: N }, (_, i) => Promise.all(onEveryShard(`cut${i}`).map(async (k) => text(await tx.get(k)))))));
        const seen: boolean[] = [];
        for (let i = 0; i < N; i++) {
          const present = vals[i]!.filter((v) => v !== null);
          expect(present.length === 0 || present.length === 4, `cut at ${cut} of ${size}: transaction ${i} partly visible: ${JSON.stringify(vals[i])}`).toBe(true);
          for (const v of present) expect(v).toBe(`v${i}`);
          seen.push(present.length === 4);
        }
        const survivors = seen.lastIndexOf(true) + 1;
        console.log(`truncated-wal: cut at ${cut} of ${size} bytes: ${survivors} of ${N} transactions survive`);
        expect(seen.slice(0, survivors).every(Boolean), `cut at ${cut}: the surviving transactions are not a prefix`).toBe(true);
      } finally {
        await t2.close();
        fs.rmSync(copy, { recursive: true, force: true });
      }
    }
  });
});
