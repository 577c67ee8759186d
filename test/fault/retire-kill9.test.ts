// Crash in the middle of a tombstone retirement (shard/retire.ts): the failpoint
// shard.retire-mid-run kills the server (SIGKILL) after the first run of tombstones had its
// records rewritten and its rows deleted (DeleteRanges joined across gaps with few rows),
// before the keys written since and the rows in those gaps were put back. After a restart
// (recovery finishes each record from the record alone): the cleared rows are gone, every
// key written at or after the clears is there with its value, and so is every row that
// lay between two cleared ranges; nothing is left to recover a second time.
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/index.js';
import { ShardMap, defaultSplitPoints } from '../../src/coordinator/shard-map.js';
import { toBytes } from '../../src/keys/bytes.js';
import { freePort, logEvent, spawnServer, killAllServers } from '../support/child-server.js';
import { tempDir } from '../support/server.js';

const dirs: string[] = [];
afterAll(() => {
  killAllServers();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const N = 600;
const k = (i: number): string => `dir/${String(i).padStart(6, '0')}`;

describe('kill -9 in the middle of a tombstone retirement', () => {
  it('after a restart: cleared rows gone, keys written since and rows between the ranges kept', { timeout: 120_000 }, async () => {
    const shard = new ShardMap(1, defaultSplitPoints(4)).shardOfKey(toBytes(k(0)));
    expect(new ShardMap(1, defaultSplitPoints(4)).shardOfKey(toBytes(`${k(N)}/\xff`))).toBe(shard);
    const dir = tempDir('txkv-retire-kill9');
    dirs.push(dir);
    const port = await freePort();
    let srv = await spawnServer(dir, port, { failpoints: `shard.retire-mid-run=${shard}` });
    let db = await connect({ endpoints: [srv.url] });
    const want = new Map<string, string>();
    await db.transact(async (tx) => {
      for (let i = 0; i < N; i++) {
        tx.set(`${k(i)}/old`, 'x');
        // rows between two cleared ranges: one in every 10th gap, and 20 (too many to join over) in gap 20
        if (i % 10 === 5) {
          tx.set(`${k(i)}x`, `gap${i}`);
          want.set(`${k(i)}x`, `gap${i}`);
        }
        if (i === 20) {
          for (let j = 0; j < 20; j++) {
            tx.set(`${k(i)}y${j}`, `many${j}`);
            want.set(`${k(i)}y${j}`, `many${j}`);
          }
        }
      }
    });
    await db.transact(async (tx) => {
      for (let i = 0; i < N; i++) {
        tx.clearRange(k(i), `${k(i)}/\xff`);
        tx.set(`${k(i)}/new`, String(i));
        want.set(`${k(i)}/new`, String(i));
      }
    });
    // written after the clears, under them: kept too
    await db.transact(async (tx) => {
      for (let i = 0; i < N; i += 7) {
        tx.set(`${k(i)}/later`, `l${i}`);
        want.set(`${k(i)}/later`, `l${i}`);
      }
    });
    // the window (5 s) passes the clears: the first run's deletion kills the server
    const exit = await srv.exited;
    expect(exit.signal).toBe('SIGKILL');
    expect(srv.logs.join('\n')).toContain('failpoint shard.retire-mid-run fired');
    await db.close();

    srv = await spawnServer(dir, port);
    db = await connect({ endpoints: [srv.url] });
    const rec = logEvent(srv.logs, 'RecoveryDone')!;
    expect(rec.tombstonesApplied, JSON.stringify(rec)).toBeGreaterThan(0);
    const got = new Map<string, string>();
    const r = db.createReadOnlyTransaction();
    for (let from = 'dir/'; ; ) {
      const page = await r.getRange({ key: from, inclusive: true }, { key: 'dir0', inclusive: false }, { limit: 1000 });
      for (const kv of page.kvs) got.set(Buffer.from(kv.key).toString('latin1'), Buffer.from(kv.value).toString('latin1'));
      if (!page.hasMore || page.kvs.length === 0) break;
      from = `${Buffer.from(page.kvs[page.kvs.length - 1]!.key).toString('latin1')}\0`;
    }
    expect([...got].sort()).toEqual([...want].sort());
    await db.close();
    srv.proc.kill('SIGTERM');
    expect((await srv.exited).code).toBe(0);
    // nothing left for a second recovery: no tombstone record
    srv = await spawnServer(dir, port);
    expect(logEvent(srv.logs, 'RecoveryDone')!.tombstonesApplied).toBe(0);
    srv.proc.kill('SIGTERM');
    expect((await srv.exited).code).toBe(0);
  });
});
