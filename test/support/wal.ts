// Shared steps of the WAL-damage fault tests: a server killed with -9 after acknowledged
// cross-shard commits, and the newest RocksDB WAL file it left.
import fs from 'node:fs';
import path from 'node:path';
import { connect } from '../../src/index.js';
import { freePort, spawnServer } from './child-server.js';
import { onEveryShard } from './keys.js';

/** Path of the newest `*.log` (WAL) file of the data directory's RocksDB; throws when there is none. */
export function newestWal(dir: string): string {
  const db = path.join(dir, 'rocksdb');
  const logs = fs.readdirSync(db).filter((f) => f.endsWith('.log'));
  logs.sort();
  if (logs.length === 0) throw new Error(`no WAL file in ${db}`);
  return path.join(db, logs[logs.length - 1]!);
}

/**
 * Starts a `txkv serve` child on `dir`, commits `n` transactions that each set
 * `<prefix><i>` on every shard to `v<i>` (all acknowledged), then kills it with SIGKILL.
 */
export async function commitOnEveryShardThenKill(dir: string, prefix: string, n: number): Promise<void> {
  const srv = await spawnServer(dir, await freePort());
  const db = await connect({ endpoints: [srv.url] });
  for (let i = 0; i < n; i++) {
    await db.transact(async (tx) => {
      for (const k of onEveryShard(`${prefix}${i}`)) tx.set(k, `v${i}`);
    });
  }
  await db.close();
  srv.proc.kill('SIGKILL');
  await srv.exited;
}
