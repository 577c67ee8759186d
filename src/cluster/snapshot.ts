// Seeding a node whose log position was trimmed away: a consistent logical snapshot
// read from the leader over the ordinary client protocol (every range page at one read
// version, so the copy is the database as of that version), written straight into this
// node's shard columns before its shard workers start. The node then follows the log
// from that version. Main thread, start-up only.
import type { RocksLevel } from '@nxtedition/rocksdb';
import type { Logger } from 'pino';
import { Connection } from '../client/connection.js';
import type { ShardMap } from '../coordinator/shard-map.js';
import { appliedKey, columnName, encodeVersion } from '../shard/interface.js';
import { CLUSTER_APPLIED_KEY } from './cluster-node.js';

const PAGE_ROWS = 1000;

/** Copies the whole user keyspace from `url` at one read version; returns that version. */
export async function seedFromSnapshot(db: RocksLevel, map: ShardMap, url: string, token: string | undefined, logger: Logger, databaseId: string): Promise<number> {
  const started = performance.now();
  const conn = await Connection.open(url, token, 5000);
  try {
    // a leader advertising a wrong URL would have this node copy another database's rows
    if (conn.databaseId !== databaseId) {
      throw new Error(`the leader's advertised URL ${url} serves database ${conn.databaseId || '(none named)'}, not this cluster's ${databaseId}; fix the leader's --advertise (cluster.advertiseUrl)`);
    }
    // empty every shard column first: what was there is older than the trimmed log
    for (let i = 0; i < map.count; i++) {
      const column = db.columns[columnName(i)]!;
      const it = db.iterator({ column, keyEncoding: 'buffer', valueEncoding: 'buffer', values: false });
      try {
        for (;;) {
          const rows = it._nextvSync(1000).rows;
          if (rows.length === 0) break;
          const b = db.batch();
          for (let j = 0; j < rows.length; j += 2) b._del(rows[j]!, { column });
          b._writeSync({ sync: false });
          void b.close();
        }
      } finally {
        void it.close();
      }
    }
    const g = await conn.request({ type: 'grv' }, false);
    if (g.type !== 'grv') throw new Error(`snapshot: unexpected reply ${g.type}`);
    const readVersion = g.readVersion;
    let begin: Uint8Array = new Uint8Array(0);
    let inclusive = true;
    let rows = 0;
    for (;;) {
      const r = await conn.request(
        { type: 'range', readVersion, beginKey: begin, beginInclusive: inclusive, endKey: new Uint8Array([0xff]), endInclusive: false, limit: PAGE_ROWS, reverse: false },
        false,
      );
      if (r.type !== 'range') throw new Error(`snapshot: unexpected reply ${r.type}`);
      const b = db.batch();
      for (let j = 0; j < r.kvs.length; j += 2) {
        const column = db.columns[columnName(map.shardOfKey(r.kvs[j]!))]!;
        b._put(r.kvs[j]!, r.kvs[j + 1]!, { column });
      }
      b._writeSync({ sync: false });
      void b.close();
      rows += r.kvs.length / 2;
      if (!r.hasMore || r.kvs.length === 0) break;
      begin = r.kvs[r.kvs.length - 2]!;
      inclusive = false;
    }
    const v = Number(readVersion);
    const b = db.batch();
    for (let i = 0; i < map.count; i++) b._put(appliedKey(i), encodeVersion(v));
    b._put(CLUSTER_APPLIED_KEY, encodeVersion(v));
    b._writeSync({ sync: true });
    void b.close();
    logger.info({ event: 'SnapshotSeeded', from: url, version: v, rows, ms: Math.round(performance.now() - started) }, `copied ${rows} rows from ${url} at version ${v}`);
    return v;
  } finally {
    conn.close();
  }
}
