// A power cut can leave a torn record at the tail of the WAL (a write that was in
// flight, never fsync'd, never acknowledged). The database must still open and keep
// every commit that was acknowledged with fsync durability.
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/index.js';
import { freePort, spawnServer, killAllServers } from '../support/child-server.js';
import { tempDir, text } from '../support/server.js';
import { commitOnEveryShardThenKill, newestWal } from '../support/wal.js';
import { onEveryShard } from '../support/keys.js';
import { mulberry32 } from '../support/rng.js';

const dirs: string[] = [];
afterAll(() => {
  killAllServers();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe.each([
  ['random garbage appended', (wal: Buffer, rng: () => number) => Buffer.concat([wal, Buffer.from(Array.from({ length: 700 }, () => Math.floor(rng() * 256)))])],
  ['a torn copy of the last record appended', (wal: Buffer) => Buffer.concat([wal, wal.subarray(Math.max(0, wal.length - 300), wal.length - 120)])],
])('WAL tail: %s', (_name, damage) => {
  // two server starts (up to 60 s each in spawnServer) and 40 fsync'd commits: ~48 s per
  // test in a loaded full run, where one start once took more than the 30 s it was allowed
  it('opens and keeps every acknowledged commit', { timeout: 150_000 }, async () => {
    const dir = tempDir('txkv-wal');
    dirs.push(dir);
    const N = 40;
    await commitOnEveryShardThenKill(dir, 'wal', N);

    const wal = newestWal(dir);
    fs.writeFileSync(wal, damage(fs.readFileSync(wal), mulberry32(99)));

    const srv = await spawnServer(dir, await freePort());
    const db = await connect({ endpoints: [srv.url] });
    const r = db.createReadOnlyTransaction();
    for (let i = 0; i < N; i++) {
      const vals = await Promise.all(onEveryShard(`wal${i}`).map(async (k) => text(await r.get(k))));
      expect(vals, `commit ${i}`).toEqual([`v${i}`, `v${i}`, `v${i}`, `v${i}`]);
    }
    // and it takes new commits
    await db.transact(async (tx) => tx.set('after-wal-damage', 'ok'));
    await db.close();
    srv.proc.kill('SIGTERM');
    expect((await srv.exited).code).toBe(0);
  });
});
