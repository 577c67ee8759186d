// Messages between the coordinator (main thread) and a shard worker. Plain data
// only (structured clone); keys and values are compact Uint8Arrays (never views
// into a larger buffer, which structured clone would copy whole). Versions are
// JavaScript numbers inside the server: txkv versions are microsecond counts
// (~1.8e15 today), exact in a double until 2^53 (year ~2255); numbers keep the
// shard's hot paths free of BigInt arithmetic. The wire and the SDK use bigint.
import type { WireError } from '../errors.js';
import type { ShardCounters } from '../metrics/server-metrics.js';
import type { RangeLoadReport } from './range-load.js';

export const enum MutationKind {
  Set = 0,
  Clear = 1,
  ClearRange = 2,
  // 5..14: atomic operations, numbered as the wire's MutationType (keys/atomic.ts)
}

/** A mutation as a shard applies it: versionstamps already substituted, clipped to the shard. */
export interface ShardMutation {
  /** A MutationKind, or an atomic operation's wire type (5..14, see keys/atomic.ts). */
  kind: MutationKind | number;
  key: Uint8Array;
  /** Set: the value. ClearRange: the end key. Clear: unused (empty). Atomic: the operand. */
  param: Uint8Array;
}

/**
 * Many byte strings in one buffer: structured clone copies one buffer and one length
 * table instead of one typed array per key or value (measured: most of the cost of a
 * reply was cloning many small Buffers). lens[i] = -1 stands for null.
 */
export interface PackedBytes {
  data: Uint8Array;
  lens: Int32Array;
}

export function packBytes(list: readonly (Uint8Array | null | undefined)[]): PackedBytes {
  let size = 0;
  for (const b of list) if (b) size += b.length;
  const data = new Uint8Array(size);
  const lens = new Int32Array(list.length);
  let o = 0;
  for (let i = 0; i < list.length; i++) {
    const b = list[i];
    if (!b) {
      lens[i] = -1;
      continue;
    }
    data.set(b, o);
    o += b.length;
    lens[i] = b.length;
  }
  return { data, lens };
}

/** Views into the packed buffer (no copies). */
export function unpackBytes(p: PackedBytes): (Uint8Array | null)[] {
  const out: (Uint8Array | null)[] = new Array(p.lens.length);
  let o = 0;
  for (let i = 0; i < p.lens.length; i++) {
    const n = p.lens[i]!;
    if (n < 0) out[i] = null;
    else {
      out[i] = p.data.subarray(o, o + n);
      o += n;
    }
  }
  return out;
}

/** Mutations packed for the trip to a worker: kinds[i], and key/param alternating in `bytes`. */
export interface PackedMutations {
  kinds: Uint8Array;
  bytes: PackedBytes;
}

export function packMutations(ms: readonly ShardMutation[]): PackedMutations {
  const kinds = new Uint8Array(ms.length);
  const parts: Uint8Array[] = new Array(ms.length * 2);
  for (let i = 0; i < ms.length; i++) {
    kinds[i] = ms[i]!.kind;
    parts[2 * i] = ms[i]!.key;
    parts[2 * i + 1] = ms[i]!.param;
  }
  return { kinds, bytes: packBytes(parts) };
}

export function unpackMutations(p: PackedMutations): ShardMutation[] {
  const b = unpackBytes(p.bytes) as Uint8Array[];
  const out: ShardMutation[] = new Array(p.kinds.length);
  for (let i = 0; i < p.kinds.length; i++) out[i] = { kind: p.kinds[i] as MutationKind, key: b[2 * i]!, param: b[2 * i + 1]! };
  return out;
}

/** Point reads of one frame that fall on this shard, answered in one reply. */
export interface GetsRequest {
  t: 'gets';
  id: number;
  readVersions: number[];
  keys: PackedBytes;
  /** Bytes of values the reply may hold (after the first); keys past it are refused RESOURCE_CONSTRAINED. Default: no bound. */
  maxBytes?: number;
}

export interface RangeRequest {
  t: 'range';
  id: number;
  readVersion: number;
  begin: Uint8Array;
  end: Uint8Array;
  limit: number;
  reverse: boolean;
  maxBytes: number;
}

/**
 * The census' slice (metrics/census.ts): the rows of [begin, end) a range read at
 * readVersion would return, counted on the shard without shipping them: at most `limit`
 * rows or (past the first) `maxBytes` key+value bytes, so one slice holds the shard
 * thread briefly. Reply: `count`.
 */
export interface CountRequest {
  t: 'count';
  id: number;
  readVersion: number;
  begin: Uint8Array;
  end: Uint8Array;
  limit: number;
  maxBytes: number;
}

/**
 * One-phase commit: the transaction writes only this shard. Its reads were resolved on
 * the main thread already (coordinator/resolver.ts): a shard checks no conflicts.
 */
export interface CommitRequest {
  t: 'commit';
  id: number;
  commitVersion: number;
  mutations: PackedMutations;
  sync: boolean;
}

/** Phase one of a cross-shard commit (resolved already): hold the writes until decided. Cannot be refused. */
export interface PrepareRequest {
  t: 'prepare';
  id: number;
  commitVersion: number;
  mutations: PackedMutations;
}

/** Phase two: commit (apply the prepared writes) or abort. */
export interface DecideRequest {
  t: 'decide';
  id: number;
  commitVersion: number;
  commit: boolean;
  /** fsync the batch that applies this commit (set when no durable decision record exists elsewhere). */
  sync: boolean;
  /** Durable decision record to write (default column) atomically with this shard's part. */
  decision?: { key: Uint8Array; value: Uint8Array };
}

/** Delete decision records whose every part is applied (no reply). */
export interface ForgetRequest {
  t: 'forget';
  id: number;
  keys: Uint8Array[];
}

/** Slide the MVCC window: versions <= horizon are no longer readable (no reply). */
export interface HorizonRequest {
  t: 'horizon';
  id: number;
  horizon: number;
}

export interface StatsRequest {
  t: 'stats';
  id: number;
}

/** Reads and writes per owned range since the previous LoadRequest, with load quantiles (shard/range-load.ts). */
export interface LoadRequest {
  t: 'load';
  id: number;
}

/** Register watches: each fires once the key's value differs from { present, value } (no reply of its own). */
export interface WatchRequest {
  t: 'watch';
  id: number;
  watches: { watchId: number; key: Uint8Array; present: boolean; value: Uint8Array }[];
}

/** Drop watches (canceled, or their connection closed); no reply. */
export interface UnwatchRequest {
  t: 'unwatch';
  id: number;
  watchIds: number[];
}

/**
 * Start reporting the changes of [begin, end) on this shard (as 'changes' events) and
 * reply with the changes of every commit after `fromVersion` that the window holds
 * (or TOO_OLD when fromVersion is below the window).
 */
export interface SubscribeShardRequest {
  t: 'subscribe';
  id: number;
  subId: number;
  begin: Uint8Array;
  end: Uint8Array;
  fromVersion: number;
}

export interface UnsubscribeShardRequest {
  t: 'unsubscribe';
  id: number;
  subId: number;
}

/**
 * The resulting changes of one commit on one shard, canonical: its cleared ranges
 * (ClearRange, key..param) first, then each point key it changed with its final value
 * (Set key=param, or Clear), point keys cleared inside those ranges left out.
 */
export interface ChangeRecord {
  version: number;
  mutations: PackedMutations;
}

/** Unsolicited messages from a shard (id 0), sent before the replies of the commits they describe. */
export type ShardEvent =
  | { id: 0; event: 'fired'; version: number; watchIds: number[] }
  | { id: 0; event: 'changes'; records: ChangeRecord[] };

/**
 * Data distribution (coordinator/distribution.ts). `served`: the key ranges, and the read
 * versions, this shard may answer reads for (a read outside is refused as routed by a
 * stale map; the router retries with the current one). No reply.
 */
export interface MapRequest {
  t: 'map';
  id: number;
  mapVersion: number;
  /** [begin, end|null, fromVersion, untilVersion] latin-1 key strings; untilVersion null = no end. */
  served: [string, string | null, number, number | null][];
}

/** Move source: from now on, report the state after each applied batch of the keys in [begin, end) (end null = keyspace end) as feed replies; moveId 0 stops. No reply. */
export interface FeedRequest {
  t: 'feed';
  id: number;
  moveId: number;
  begin: Uint8Array;
  end: Uint8Array | null;
}

/** Move source: rows of [begin, end) as applied now, at most `limit` (reply: feed with chunk = true). */
export interface ChunkRequest {
  t: 'chunk';
  id: number;
  moveId: number;
  begin: Uint8Array;
  end: Uint8Array | null;
  limit: number;
  maxBytes: number;
}

/**
 * Move target: apply a source's changes of a range it is receiving (Set, Clear and
 * ClearRange, in order), physically and without fsync (the move's marker makes them
 * durable). Reply ok.
 */
export interface IngestRequest {
  t: 'ingest';
  id: number;
  ops: PackedMutations;
}

/**
 * Move target at the switch: a barrier at switchVersion holds every later commit of this
 * shard until a 'decide' releases it (with the move's marker as its decision record), and
 * change feeds of [begin, end) from versions < switchVersion are refused TOO_OLD from now
 * on (the changes before the switch stayed with the old owner). Conflicts need nothing
 * here: the coordinator's resolver keeps one history for the whole keyspace.
 */
export interface MoveInRequest {
  t: 'moveIn';
  id: number;
  begin: Uint8Array;
  end: Uint8Array | null;
  switchVersion: number;
}

/**
 * Delete every row of [begin, end) from this shard's column (a moved-away range, or
 * leftovers before receiving one). Reply ok, or busy when range tombstones of the window
 * still cover part of it (their deletion, due later, would hit rows received meanwhile).
 */
export interface DropRangeRequest {
  t: 'dropRange';
  id: number;
  begin: Uint8Array;
  end: Uint8Array | null;
}

/**
 * Cluster mode, a replica whose log position was trimmed away (cluster/snapshot.ts):
 * 'begin' (only with nothing queued or being written) deletes every row of the shard
 * and restarts its window at `version` (reads below it fail TOO_OLD; the coordinator
 * holds reads above it until the node's position reaches it); the copied rows then
 * arrive as 'ingest'; 'end' writes the shard's watermark `version` (synced). Reply ok,
 * or busy (begin: a write is still in progress; ask again).
 */
export interface ReseedRequest {
  t: 'reseed';
  id: number;
  phase: 'begin' | 'end';
  version: number;
}

export type ShardRequest =
  | ReseedRequest
  | WatchRequest
  | UnwatchRequest
  | SubscribeShardRequest
  | UnsubscribeShardRequest
  | MapRequest
  | FeedRequest
  | ChunkRequest
  | IngestRequest
  | MoveInRequest
  | DropRangeRequest
  | GetsRequest
  | RangeRequest
  | CountRequest
  | CommitRequest
  | PrepareRequest
  | DecideRequest
  | ForgetRequest
  | HorizonRequest
  | StatsRequest
  | LoadRequest;

/** A shard's counters; the shape is declared once, in metrics (which every folder may use). */
export type ShardStats = ShardCounters;

export type ShardReply =
  /** staleMap: the shard does not serve what was asked (routed by an older map): retry with the current one. */
  | { id: number; error: WireError; staleMap?: number }
  /** A move source's changes: id 0 = a feed after an applied batch; else the reply to a ChunkRequest (next: where the next chunk begins, null = done). */
  | { id: number; feed: { moveId: number; ops: PackedMutations }; next?: Uint8Array | null }
  /** Reply to GetsRequest: per key a value (null = absent) or an error. */
  | { id: number; values: PackedBytes; errors: (WireError | null)[] | null }
  /** Reply to RangeRequest: keys and values alternating [k0, v0, k1, v1, ...]. */
  | { id: number; kvs: PackedBytes; more: boolean }
  /**
   * Reply to CountRequest: rows and key+value bytes counted; next = the first key not
   * counted (null: the range ended); cpuMs = the shard thread's CPU time for the slice
   * (null where the platform does not say).
   */
  | { id: number; count: { keys: number; bytes: number; next: Uint8Array | null; cpuMs: number | null } }
  | { id: number; ok: true; busy?: boolean }
  | { id: number; stats: ShardStats }
  /** Reply to LoadRequest: mapVersion = the map the shard's ranges come from. */
  | { id: number; load: { mapVersion: number; ranges: RangeLoadReport[] } }
  /** Reply to SubscribeShardRequest: the window's changes after fromVersion, in version order. */
  | { id: number; history: ChangeRecord[] }
  | ShardEvent;

/** What a worker receives at start-up (piscina workerData + the first task). */
export interface ShardInit {
  shardId: number;
  dbHandle: bigint;
  /** Version the shard's window starts at (recovered from disk). */
  appliedVersion: number;
  failpoints: Record<string, string>;
  /** Bytes of the shard's row cache (shard/row-cache.ts); absent or 0 = none. */
  rowCacheBytes?: number;
}

/** Key of a shard's applied-version watermark in the default column (internal metadata only). */
export function appliedKey(shardId: number): Uint8Array {
  return new TextEncoder().encode(`applied/${shardId}`);
}

/** Versions on disk: 8 bytes big-endian, so they also sort by version. */
export function encodeVersion(v: number): Uint8Array {
  const out = new Uint8Array(8);
  writeVersion(out, 0, v);
  return out;
}

/**
 * Writes version `v` (an integer in [0, 2^53)) as 8 big-endian bytes at `out[at]`. Plain
 * arithmetic: a DataView over `out.buffer` makes V8 give a small on-heap typed array a
 * buffer of its own, and BigInt(v) a heap object, on every commit (main thread: the
 * versionstamp, the decision key and record; ~0.5 µs per written key under w10 in a profile).
 */
export function writeVersion(out: Uint8Array, at: number, v: number): void {
  const hi = Math.floor(v / 0x1_0000_0000);
  const lo = v - hi * 0x1_0000_0000;
  out[at] = hi >>> 24;
  out[at + 1] = hi >>> 16;
  out[at + 2] = hi >>> 8;
  out[at + 3] = hi;
  out[at + 4] = lo >>> 24;
  out[at + 5] = lo >>> 16;
  out[at + 6] = lo >>> 8;
  out[at + 7] = lo;
}

export function decodeVersion(b: Uint8Array): number {
  if (b.length !== 8) throw new Error(`a stored version must be 8 bytes, got ${b.length}`);
  return Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0));
}

/** Column family name of a shard; the one place it is derived. */
export function columnName(shardId: number): string {
  return `s${shardId}`;
}

/**
 * Gateway threads (gateway/gateway-worker.ts) send point and range reads on ports of
 * their own; their request ids are negative, -(seq * GATEWAY_ID_SPAN + thread), so a
 * reply (also that of a read parked until a commit lands) finds its port by its id.
 */
export const GATEWAY_ID_SPAN = 64;

/** A port of gateway thread `thread`, handed to a shard worker on the coordinator's port. */
export interface GatewayPortMessage {
  gatewayPort: import('node:worker_threads').MessagePort;
  thread: number;
}

// ---------------------------------------------------------------- shard <-> log writer (log-writer.ts)

/**
 * Memory a shard and the log writer share (one SharedArrayBuffer per shard, LOG_SHARED_BYTES):
 * Int32 [LOG_DONE] = id of the shard's last written batch (stored after the write, before
 * any reply leaves); Int32 [LOG_WAKE] = the id of a batch whose end must wake the shard
 * (0: none; the log writer takes it with compareExchange); Float64 at byte 8 = that
 * batch's WAL latency in ms (written before LOG_DONE).
 */
export const LOG_SHARED_BYTES = 16;
export const LOG_DONE = 0;
export const LOG_WAKE = 1;

/** The coordinator's replies of one run of direct batches: [shardId, n, id1..idn, shardId, n, ...]. */
export type LogReplies = Float64Array;
