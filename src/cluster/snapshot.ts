// Re-seeding a node whose log position was trimmed away (a new node, one that was down,
// or a running replica that was paused or cut off longer than the log's retention).
// Main thread; the node is running (its gateway answers; reads wait or fail TOO_OLD).
//
// A consistent logical snapshot of a live node (the leader) at one version V:
//  1. the leader pins V (POST /v1/snapshots, gateway/snapshots.ts, as `txkv backup`
//     does): its MVCC window stops sliding past V, so a copy may take longer than the
//     window (bounded by the pin's memory budget, renewed while copying);
//  2. every local shard restarts its window at V and deletes its rows (shard 'reseed'
//     begin), and the durable tombstone records and marks of the old rows go;
//  3. the rows at V are read page by page over the client protocol and written into the
//     shards that own them ('ingest'), the next page read while one is written;
//  4. each shard writes its watermark V; the caller then follows the log from V.
// A crash part-way leaves the node's durable position (cluster/applied) below the trim
// point, so the next start copies again.
import type { RocksLevel } from '@nxtedition/rocksdb';
import type { Logger } from 'pino';
import { TxnError } from '../errors.js';
import { Connection } from '../client/connection.js';
import { answerJson, httpRequest } from '../client/http-request.js';
import type { Coordinator } from '../coordinator/coordinator.js';
import type { ShardMapJson } from '../coordinator/shard-map.js';
import { MARK_RANGE, TOMBSTONE_RANGE } from '../shard/apply.js';
import { MutationKind, packMutations, type ShardMutation } from '../shard/interface.js';

const PAGE_ROWS = 1000;
/** Bound of one page read or one shard write (a paused source must not hold the copy forever). */
const STEP_MS = 30_000;
/** How often the pin's lease (30 s, gateway/snapshots.ts) is renewed. */
const RENEW_MS = 5000;

export interface SeedResult {
  version: number;
  rows: number;
  bytes: number;
  ms: number;
  from: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TxnError('UNAVAILABLE', `${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The HTTP base of a node's advertised ws:// (wss://) URL (same port). */
function httpBase(url: string): string {
  return url.replace(/^ws/, 'http').replace(/\/+$/, '');
}

/** node:http, not fetch: fetch refuses some ports a leader may be advertised on (client/http-request.ts). */
async function api(url: string, method: string, path: string, token: string | undefined): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await httpRequest(httpBase(url) + path, { method, token, timeoutMs: 5000 });
  return { status: res.status, body: answerJson(res) };
}

/**
 * Copies the database at one pinned version of the node at `url` into this node's
 * shards (see the top of this file). The caller has stopped applying the log and
 * waited for every apply in flight. `onPinned(V)` is called once V is known (the node
 * publishes it, which holds the log's trimming above V while the copy runs).
 */
export async function seedFromSnapshot(
  db: RocksLevel,
  c: Coordinator,
  url: string,
  token: string | undefined,
  logger: Logger,
  databaseId: string,
  onPinned: (version: number) => void,
): Promise<SeedResult> {
  const started = performance.now();
  const conn = await Connection.open(url, token, 5000);
  // a leader advertising a wrong URL would have this node copy another database's rows
  if (conn.databaseId !== databaseId) {
    conn.close();
    throw new Error(`the leader's advertised URL ${url} serves database ${conn.databaseId || '(none named)'}, not this cluster's ${databaseId}; fix the leader's --advertise (cluster.advertiseUrl)`);
  }
  // the leader's range map, read before the pin and again after the copy: the same version
  // both times means it is the map at V (ranges move between workers: every node's map
  // must be the leader's, docs/distribution.md; a change after V comes again from the log)
  const mapBefore = await api(url, 'GET', '/v1/shard/map', token).catch((err: Error) => {
    conn.close();
    throw err;
  });
  if (mapBefore.status !== 200) conn.close();
  if (mapBefore.status !== 200) throw new Error(`${url} did not give its range map: ${JSON.stringify(mapBefore.body)}`);
  const leaderMap = mapBefore.body.map as ShardMapJson;
  const snap = await api(url, 'POST', '/v1/snapshots', token).catch((err: Error) => {
    conn.close();
    throw err;
  });
  if (snap.status !== 200) conn.close();
  if (snap.status !== 200) throw new Error(`${url} refused a snapshot: ${JSON.stringify(snap.body)}`);
  const id = String(snap.body.id);
  const version = Number(snap.body.readVersion);
  onPinned(version);
  let renewError: Error | null = null;
  const renew = setInterval(() => {
    api(url, 'POST', `/v1/snapshots/${encodeURIComponent(id)}/renew`, token).then(
      (r) => {
        if (r.status !== 200) renewError = new Error(`${url} dropped the snapshot at version ${version}: ${JSON.stringify(r.body)}`);
      },
      () => {}, // a blip: the next renewal (or page) tells
    );
  }, RENEW_MS);
  renew.unref();
  try {
    // 1. every shard: window restarts at V, rows deleted
    await Promise.all(
      c.shards.map(async (s) => {
        for (let i = 0; ; i++) {
          const r = await s.request({ t: 'reseed', phase: 'begin', version });
          if ('error' in r) throw new Error(`shard ${s.shardId}: ${r.error.message}`);
          if (!('busy' in r && r.busy)) return;
          if (i > 2000) throw new Error(`shard ${s.shardId} stayed busy for 10 s`);
          await sleep(5);
        }
      }),
    );
    // the old rows' tombstone records and marks would make recovery delete copied rows
    for (const range of [TOMBSTONE_RANGE, MARK_RANGE]) deleteMeta(db, range.begin, range.end);
    // 2. the rows at V, page by page, into the shards that own them (by the leader's map, adopted here)
    c.distribution.adopt(leaderMap, version);
    const map = c.shardMap;
    const page = (begin: Uint8Array, inclusive: boolean): Promise<{ kvs: Uint8Array[]; hasMore: boolean }> =>
      within(
        conn.request(
          { type: 'range', readVersion: BigInt(version), beginKey: begin, beginInclusive: inclusive, endKey: new Uint8Array([0xff]), endInclusive: false, limit: PAGE_ROWS, reverse: false },
          false,
        ),
        STEP_MS,
        `reading the snapshot from ${url}`,
      ).then((r) => {
        if (r.type === 'error') throw new TxnError(r.code as never, `reading the snapshot from ${url}: ${r.message}`);
        if (r.type !== 'range') throw new Error(`snapshot: unexpected reply ${r.type}`);
        return { kvs: r.kvs, hasMore: r.hasMore };
      });
    let rows = 0;
    let bytes = 0;
    type Page = { kvs: Uint8Array[]; hasMore: boolean };
    let next: Promise<Page> | null = page(new Uint8Array(0), true);
    while (next) {
      const r: Page = await next;
      if (renewError) throw renewError;
      next = r.hasMore && r.kvs.length > 0 ? page(r.kvs[r.kvs.length - 2]!, false) : null;
      next?.catch(() => {}); // awaited on the next turn of the loop (or abandoned with the copy)
      const byShard = new Map<number, ShardMutation[]>();
      for (let j = 0; j < r.kvs.length; j += 2) {
        const key = r.kvs[j]!;
        const value = r.kvs[j + 1]!;
        const shard = map.shardOfKey(key);
        let list = byShard.get(shard);
        if (!list) byShard.set(shard, (list = []));
        list.push({ kind: MutationKind.Set, key, param: value });
        bytes += key.length + value.length;
      }
      rows += r.kvs.length / 2;
      const writes = [...byShard].map(([shard, ms]) => c.shards[shard]!.request({ t: 'ingest', ops: packMutations(ms) }));
      for (const w of await within(Promise.all(writes), STEP_MS, 'writing copied rows')) if ('error' in w) throw new Error(`ingest: ${w.error.message}`);
    }
    const mapAfter = await api(url, 'GET', '/v1/shard/map', token);
    if (mapAfter.status !== 200 || (mapAfter.body.map as ShardMapJson).version !== leaderMap.version) {
      // the caller copies again (the balancer may split or move a range at any time)
      throw Object.assign(new Error(`${url}'s range map changed while the snapshot was copied; copying again`), { mapChanged: true });
    }
    // 3. watermarks at V (synced: the rows are in the same WAL before them)
    for (const s of c.shards) {
      const r = await s.request({ t: 'reseed', phase: 'end', version });
      if ('error' in r) throw new Error(`shard ${s.shardId}: ${r.error.message}`);
    }
    const ms = Math.round(performance.now() - started);
    logger.info({ event: 'SnapshotSeeded', from: url, version, rows, bytes, ms, rowsPerSec: Math.round(rows / Math.max(ms / 1000, 0.001)) }, `copied ${rows} rows from ${url} at version ${version} in ${ms} ms`);
    return { version, rows, bytes, ms, from: url };
  } finally {
    clearInterval(renew);
    conn.close();
    await api(url, 'DELETE', `/v1/snapshots/${encodeURIComponent(id)}`, token).catch(() => {});
  }
}

/** Deletes every row of [begin, end) in the default column. */
function deleteMeta(db: RocksLevel, begin: Uint8Array, end: Uint8Array): void {
  const it = db.iterator({ gte: begin, lt: end, keyEncoding: 'buffer', valueEncoding: 'buffer', values: false });
  try {
    for (;;) {
      const rows = it._nextvSync(1000).rows;
      if (rows.length === 0) break;
      const b = db.batch();
      try {
        for (let j = 0; j < rows.length; j += 2) b._del(rows[j]!);
        b._writeSync({ sync: false });
      } finally {
        void b.close();
      }
    }
  } finally {
    void it.close();
  }
}
