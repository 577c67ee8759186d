// The leak of issue 17 item 1, counted instead of measured: abstract-level registers
// every write batch and iterator with its database and only their public close()
// unregisters them; one left registered keeps its keys and values alive until the
// database closes. After writes (buffered, group, with a range delete) and range
// scans through the shard storage paths, no batch or iterator may stay registered.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RocksLevel } from '@nxtedition/rocksdb';
import { openDatabase } from '../../src/server/open-database.js';
import { GroupWriter, ShardStorage, WriteOps, writeShardOps } from '../../src/shard/storage.js';
import { toBytes } from '../../src/keys/bytes.js';
import { tempDir } from '../support/server.js';

/** The database's set of open resources (abstract-level keeps it under a private symbol). */
function resources(db: object): Set<unknown> {
  const sym = Object.getOwnPropertySymbols(db).find((s) => s.description === 'resources');
  if (!sym) throw new Error('abstract-level no longer keeps a resources set: update this test');
  return (db as Record<symbol, Set<unknown>>)[sym]!;
}
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('storage releases every batch and iterator', () => {
  let dir: string;
  let db: RocksLevel;
  beforeAll(async () => {
    dir = tempDir('txkv-resources');
    ({ db } = await openDatabase(dir, { shards: 2, splitPoints: [toBytes('m')], explicitSplitPoints: true }));
  });
  afterAll(async () => {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('shard writes, group writes and range scans leave nothing registered', async () => {
    const storage = await ShardStorage.attach(db.handle, 0);
    const group = await GroupWriter.attach(db.handle);
    const storageDb = (storage as unknown as { db: RocksLevel }).db;
    const groupDb = (group as unknown as { db: RocksLevel }).db;
    const value = new Uint8Array(1000).fill(0xab);
    for (let i = 0; i < 200; i++) {
      const ops = new WriteOps();
      ops.put(toBytes(`a/${i}`), value);
      ops.putMeta(toBytes(`\xff/meta/${i}`), value);
      if (i % 50 === 0) ops.deleteRange(toBytes('a/0'), toBytes('a/1'));
      ops.del(toBytes(`a/${i - 1}`));
      storage.write(ops, false);
      group.write([{ column: group.column(1), ops: ops.pack() }], i % 10 === 0);
      writeShardOps(db, 1, ops, false);
      const scan = storage.scan(toBytes('a/'), toBytes('a0'), i % 2 === 1);
      scan.next(5);
      scan.close();
    }
    await tick();
    await tick();
    expect(resources(storageDb).size, 'batches/iterators left registered on the shard thread handle').toBe(0);
    expect(resources(groupDb).size, 'batches left registered on the log writer handle').toBe(0);
    expect(resources(db).size, 'batches left registered on the main handle').toBe(0);
  });
});
