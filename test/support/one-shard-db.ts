// One shard's RocksDB database in a temp dir, with no server, threads or coordinator: what the
// engine tests drive Shard and ShardStorage on (ShardStorage.attach(db.handle, 0)).
import fs from 'node:fs';
import type { RocksLevel } from '@nxtedition/rocksdb';
import { openDatabase } from '../../src/server/open-database.js';
import { tempDir } from './server.js';

export interface OneShardDb {
  readonly dir: string;
  readonly db: RocksLevel;
  /** Closes the database and removes its directory (again: nothing). */
  close(): Promise<void>;
}

/** A fresh one-shard database (no split points) under a new temp dir named after `prefix`. */
export async function openOneShardDb(prefix: string): Promise<OneShardDb> {
  const dir = tempDir(prefix);
  const { db } = await openDatabase(dir, { shards: 1, splitPoints: [], explicitSplitPoints: false });
  let closed = false;
  return {
    dir,
    db,
    close: async () => {
      if (closed) return;
      closed = true;
      try {
        await db.close();
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
