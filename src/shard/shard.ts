// hot path: the state machine of one shard. Worker thread (shard/worker.ts feeds it);
// it never touches the network or another shard's column.
//
// Requests arrive in batches. Reads are answered at once. Commits arrive resolved (the
// coordinator's resolver checked their reads: coordinator/resolver.ts) and are queued in
// version order; `beginApply()` then turns the
// longest decided prefix of the queue into ONE write (group commit: one fsync for
// every commit that was ready at that moment) and records each commit in the MVCC
// window (before-images of point writes, range tombstones of range clears); the
// worker writes it (or has the log writer write it) and calls `endApply()`.
import { TxnError, toWireError, type WireError } from '../errors.js';
import { compareKeys, keyFromString, keyString } from '../keys/bytes.js';
import type { Failpoints } from '../failpoints/failpoints.js';
import {
  MutationKind,
  appliedKey,
  encodeVersion,
  packBytes,
  packMutations,
  unpackBytes,
  unpackMutations,
  type ChunkRequest,
  type CommitRequest,
  type CountRequest,
  type MapRequest,
  type PackedMutations,
  type DecideRequest,
  type GetsRequest,
  type PrepareRequest,
  type RangeRequest,
  type ShardMutation,
  type ShardReply,
  type ShardRequest,
  type ShardStats,
  type UnwatchRequest,
  type WatchRequest,
} from './interface.js';
import { VersionWindow, type Tombstone } from './mvcc.js';
import { ShardLive, type CommitWrites } from './live.js';
import { encodeTombstone, markKey, packedNetEffect, pointValueOf, tombstoneKey } from './apply.js';
import { RETIRE_SLICE_MS, TombstoneRetirement } from './retire.js';
import { WriteOps, type ShardStorage } from './storage.js';
import { freeBuffers } from './free-buffers.js';
import { RangeLoad } from './range-load.js';
import { RowCache } from './row-cache.js';
import { FLAG_WRITING, KeyTable } from './key-table.js';
import { RangeSet } from '../keys/ranges.js';
import { threadCpuMs } from './thread-cpu.js';

/** A census slice above this much CPU (ms) counts as slow (counters.censusSlowSlices): it alone held the shard's commits past issue 12's 5 ms p99 target. */
const CENSUS_SLOW_SLICE_MS = 5;

interface Queued {
  commitVersion: number;
  /** 'prepared': waiting for the coordinator's decision; 'ready': applied by the next beginApply(). */
  state: 'prepared' | 'ready';
  /**
   * The commit's writes as they arrived (views into the coordinator's message), applied
   * from these bytes when its batch is built (beginApply), never unpacked into an object
   * per mutation. A prepared part can wait
   * here for tens of ms (the primary's fsync, then its decision), past a young-generation
   * scavenge or two: three views and two small objects per write then survived into the
   * old generation, ~2/3 of what a shard promoted under w10; the packed form is a handful
   * of objects per commit.
   */
  packed: PackedMutations;
  sync: boolean;
  /** Whether this is part of a cross-shard commit (for the shard.after-apply failpoint). */
  twoPhase: boolean;
  /** A one-phase commit request or a decided cross-shard part (not a move barrier): its reply is a plain ok once written (the log writer may send it, ApplyBatch.direct). */
  plainReply: boolean;
  decision?: { key: Uint8Array; value: Uint8Array };
  /** Request to answer once applied. */
  replyId: number;
}

/** One group commit between beginApply and endApply. */
export interface ApplyBatch {
  replyIds: number[];
  /** Tombstones whose rows this write deletes (dropped from the window once it is done). */
  tombstones: Tombstone[];
  ops: WriteOps;
  /** fsync the WAL (some commit asked for it and the server is durable). */
  sync: boolean;
  twoPhase: boolean;
  /** Move source: what this batch changed in the moving range (sent once the write is done). */
  feed?: { moveId: number; ops: PackedMutations };
  /**
   * Only commits whose reply is a plain ok once written (one-phase commits, and decided
   * parts of cross-shard commits: the primary's, which carries the decision record, and
   * the others'), no move barrier, no move feed, no watch or change-feed events: nothing
   * has to reach the coordinator before the commits' replies, so the log writer may send
   * them itself once the batch is durable (one thread hop less per commit) and this shard
   * learns of the write when it next looks (endApply with repliedByLog). A cross-shard
   * commit is acknowledged to its client once its primary's part is durable, so that
   * acknowledgement then no longer waits for the primary's thread to run again after the
   * write (a GC pause there, or a wait for a core, held every commit of the batch).
   */
  direct: boolean;
}

/** [begin, end|null, fromVersion, untilVersion|null]: reads of [begin, end) at versions in [from, until). */
type Served = [string, string | null, number, number | null];

/** A read routed by a map that no longer holds (the router retries with the current map). */
class StaleMap extends Error {}

/** Above every key (keys are at most 10,000 bytes): the end of a range open to the end of the keyspace. */
const MAX_KEY = '\xff'.repeat(10_002);

/** Point reads of the first RocksDB multi-get of a budgeted reply, before value sizes are known. */
const GETS_CHUNK = 16;

export class Shard {
  window: VersionWindow;
  /** Watches and change feeds (live.ts). */
  readonly live = new ShardLive();
  /** Reads and writes per owned range, and sampled keys (the balancer's measurements). */
  readonly load = new RangeLoad();
  /**
   * Commits and move barriers not yet applied, in increasing commitVersion (queueing checks
   * the order). A decide finds its commit here by binary search rather than through a
   * Map by version: such a Map, one add and one delete per commit, is rehashed every few
   * hundred commits and V8 links each old table to its successor, so once one table is in
   * the old generation every scavenge keeps the later tables and the batches they held
   * alive and promotes them (src/client/id-table.ts tells the whole story).
   */
  private readonly queue: Queued[] = [];
  private readonly forgets: Uint8Array[] = [];
  /** The slots of the batch being built, by key-table entry (BatchView). */
  private readonly slotIndex = new SlotIndex();
  /** The batch being built (one, kept from batch to batch; made with the first batch: the window may be replaced before, reseed). */
  private batchView: BatchView | null = null;
  /** Tombstones no reader needs any more: their rows are deleted, a slice per turn (retire.ts). */
  private readonly retirement: TombstoneRetirement;
  /** Reads waiting for commits at or below their version that this shard still applies (mustWait); watch requests waiting for the write to end. */
  private parked: (GetsRequest | RangeRequest | CountRequest | ChunkRequest | WatchRequest | UnwatchRequest)[] = [];
  /**
   * The batch being written (at the log writer), between beginApply and endApply: the table
   * entries of the keys whose rows it writes, each flagged FLAG_WRITING while the row cache
   * is on (a point read's miss then does not fill the cache: RocksDB may still hold the old
   * row). Not the batch's BatchView: held for the whole write (an fsync, tens of ms under
   * load), its key strings, Map and value views outlived young-generation scavenges and were
   * promoted. Watches wait for the write to end instead of asking the view for the batch's values.
   */
  private writing: { entries: number[] } | null = null;
  /** Lowest commit version of the batch being written (Infinity: none). */
  private writingFrom = Infinity;
  private appliedVersion: number;
  private readonly watermarkKey: Uint8Array;
  /** Rows as RocksDB holds them, for point reads and before-images (row-cache.ts). */
  readonly rows: RowCache;
  /** The keys of the row cache and the window: one entry per key, found once per written key (key-table.ts). */
  private readonly keys = new KeyTable();
  /** walWrites/walMs: batches written to the WAL (with fsync under fsync durability) and the time those writes took, queueing at the log writer included. */
  readonly counters = { reads: 0, commits: 0, fsyncs: 0, batches: 0, busyMs: 0, walWrites: 0, walMs: 0, directBatches: 0, logWakes: 0, censusSlices: 0, censusCpuMs: 0, censusCpuMaxMs: 0, censusSlowSlices: 0 };

  /** One batch's WAL write (and fsync) finished after `ms`. */
  walWritten(ms: number): void {
    this.counters.walWrites++;
    this.counters.walMs += ms;
  }
  // data distribution (coordinator/distribution.ts)
  /** What this shard may answer reads for ('map'); null = everything (no map received yet). */
  private served: Served[] | null = null;
  private mapVersion = 0;
  /** Ranges received by a move: reads of them at versions below the switch conflict here. */
  private incoming: { begin: string; end: string; switchVersion: number }[] = [];
  /** Move source: the range whose changes each applied batch reports. */
  private feed: { moveId: number; begin: string; end: string } | null = null;
  /** Batches begun and ended; a chunk waits until every batch begun before the feed has ended. */
  private begun = 0;
  private ended = 0;
  private feedFrom = 0;

  constructor(
    private readonly storage: ShardStorage,
    readonly shardId: number,
    appliedVersion: number,
    private readonly failpoints: Failpoints,
    private readonly durable = true,
    /** Bytes of this shard's row cache (row-cache.ts); 0 = none. */
    rowCacheBytes = 0,
    /** Wall time of one slice of tombstone retirement (retire.ts; tests pass 0: one step per slice). */
    retireSliceMs = RETIRE_SLICE_MS,
  ) {
    this.rows = new RowCache(rowCacheBytes, this.keys);
    this.retirement = new TombstoneRetirement(storage, this.rows, shardId, retireSliceMs, failpoints);
    this.appliedVersion = appliedVersion;
    this.window = new VersionWindow(appliedVersion, {}, this.keys);
    this.watermarkKey = appliedKey(shardId);
  }

  /**
   * Whether a read at `v` must wait: a commit at or below v is still queued or being
   * written here. Commits are acknowledged without waiting for lower versions (the
   * coordinator hands out read versions up to the newest acknowledged one), so a read
   * waits here, on the shards it reads, for exactly the commits it must see.
   */
  private mustWait(v: number): boolean {
    return this.writingFrom <= v || (this.queue.length > 0 && this.queue[0]!.commitVersion <= v);
  }

  /** Re-handles the parked reads (those still waiting park again, in order). */
  private wakeParked(replies: ShardReply[]): void {
    if (this.parked.length === 0) return;
    const reads = this.parked;
    this.parked = [];
    for (const r of reads) this.handle(r, replies);
  }

  /** Handles one request; its reply goes to `replies` now, or once its batch is written (commits, endApply), or never (forget, horizon). */
  handle(req: ShardRequest, replies: ShardReply[]): void {
    try {
      switch (req.t) {
        case 'map':
          this.setMap(req);
          return;
        case 'feed':
          this.feed = req.moveId === 0 ? null : { moveId: req.moveId, begin: keyString(req.begin), end: req.end ? keyString(req.end) : MAX_KEY };
          this.feedFrom = this.begun;
          return;
        case 'chunk':
          // a batch begun before the feed is still being written (its changes are neither
          // readable yet nor in the feed): answered once it ended (endApply wakes it), not
          // refused as busy for the coordinator to ask again after a sleep
          if (this.ended < this.feedFrom) {
            this.parked.push(req);
            return;
          }
          replies.push(this.chunk(req));
          return;
        case 'ingest':
          this.ingest(req.ops);
          replies.push({ id: req.id, ok: true });
          return;
        case 'moveIn':
          this.moveIn(req.id, keyString(req.begin), req.end ? keyString(req.end) : MAX_KEY, req.switchVersion);
          return;
        case 'dropRange':
          replies.push(this.dropRange(req.id, req.begin, req.end));
          return;
        case 'reseed':
          replies.push(this.reseed(req.id, req.phase, req.version));
          return;
        case 'gets':
          if (this.mustWait(maxOf(req.readVersions))) {
            this.parked.push(req);
            return;
          }
          replies.push(this.gets(req.id, unpackBytes(req.keys) as Uint8Array[], req.readVersions, req.maxBytes ?? Infinity));
          return;
        case 'range':
          if (this.mustWait(req.readVersion)) {
            this.parked.push(req);
            return;
          }
          replies.push(this.range(req));
          return;
        case 'count':
          if (this.mustWait(req.readVersion)) {
            this.parked.push(req);
            return;
          }
          replies.push(this.count(req));
          return;
        case 'commit':
          this.enqueue(req, 'ready', replies);
          return;
        case 'prepare':
          this.enqueue(req, 'prepared', replies);
          return;
        case 'decide':
          this.decide(req, replies);
          return;
        case 'forget':
          this.forgets.push(...req.keys);
          return;
        case 'horizon':
          // tombstones no reader can need any more: their rows go, a slice before each write
          this.retirement.add(this.window.prune(req.horizon));
          this.live.prune(req.horizon);
          if (this.incoming.length > 0) this.incoming = this.incoming.filter((r) => r.switchVersion > req.horizon);
          return;
        case 'stats':
          replies.push({ id: req.id, stats: this.stats() });
          return;
        case 'load':
          replies.push({ id: req.id, load: { mapVersion: this.mapVersion, ranges: this.load.report() } });
          return;
        case 'watch':
          // compared with the newest value once the batch being written is in RocksDB
          // (unwatches wait too, behind the watches they cancel)
          if (this.writing !== null) {
            this.parked.push(req);
            return;
          }
          this.live.watch(req.watches, (keys) => keys.map((k) => this.latest(k)), this.window.newestVersion, replies);
          return;
        case 'unwatch':
          if (this.writing !== null) {
            this.parked.push(req);
            return;
          }
          this.live.unwatch(req.watchIds);
          return;
        case 'subscribe':
          // a feed has a start version, not a read version: say so, and where it may start
          if (req.fromVersion < this.window.horizon) {
            throw new TxnError('TOO_OLD', `the feed's start version (fromVersion) ${req.fromVersion} is older than the changes this server keeps: its MVCC window begins at version ${this.window.horizon}; subscribe from there on, or without a start version (from now)`);
          }
          // a range received by a move has no history here before its switch
          for (const r of this.incoming) {
            if (req.fromVersion < r.switchVersion && keyString(req.begin) < r.end && keyString(req.end) > r.begin) {
              // not the window's horizon (the version may well be inside it): say what is missing
              throw new TxnError('TOO_OLD', `fromVersion ${req.fromVersion} is older than version ${r.switchVersion}, at which part of the range moved to this shard worker; its changes before that are not kept here (read the range again and subscribe from a later version)`);
            }
          }
          this.live.subscribe(req.subId, req.begin, req.end);
          replies.push({ id: req.id, history: this.live.history(req.fromVersion, req.begin, req.end) });
          return;
        case 'unsubscribe':
          this.live.unsubscribe(req.subId);
          return;
      }
    } catch (err) {
      if (err instanceof StaleMap) replies.push({ id: req.id, error: { code: 'UNAVAILABLE', message: err.message }, staleMap: this.mapVersion });
      else replies.push({ id: req.id, error: toWireError(err) });
    }
  }

  /** The key's value after every commit applied so far (called while no batch is being written: RocksDB holds them all). */
  private latest(key: Uint8Array): Uint8Array | null {
    const s = keyString(key);
    return this.window.valueAt(s, Infinity, (this.storage.getMany([key])[0] as Uint8Array | undefined) ?? null);
  }

  private setMap(req: MapRequest): void {
    if (req.mapVersion < this.mapVersion) return;
    this.mapVersion = req.mapVersion;
    this.served = req.served;
    // load is counted for the ranges this shard owns (not those it serves old reads of)
    this.load.setRanges(req.served.filter((s) => s[3] === null).map((s) => [s[0], s[1]] as const));
  }

  /** Whether this shard serves reads of [begin, end) (end null: the single key `begin`) at `rv`. */
  private serves(begin: string, end: string | null, rv: number): boolean {
    const served = this.served;
    if (served === null) return true;
    let pos = begin;
    for (const [b, e, from, until] of served) {
      if (rv < from || (until !== null && rv >= until)) continue;
      if (b <= pos && (e === null || e > pos)) {
        if (e === null || end === null || e >= end) return true;
        pos = e;
      }
    }
    return false;
  }

  private checkServed(begin: string, end: string | null, rv: number): void {
    if (!this.serves(begin, end, rv)) {
      throw new StaleMap(`shard ${this.shardId} does not serve ${JSON.stringify(begin)} at version ${rv} in map version ${this.mapVersion} (routed by a stale map)`);
    }
  }

  /**
   * Move source: up to `limit` rows of [begin, end) as the newest version sees them
   * (range tombstones applied); `next` = where the following chunk begins (null = done).
   * Called once every batch begun before the feed has been written (handle parks it until then).
   */
  private chunk(req: ChunkRequest): ShardReply {
    const sets: ShardMutation[] = [];
    let bytes = 0;
    let next: Uint8Array | null = null;
    const end = req.end ?? keyFromString(MAX_KEY);
    const rows = this.baseRows(req.begin, end, Number.MAX_SAFE_INTEGER, false, false, Math.min(req.limit + 1, 1000), req.maxBytes);
    try {
      for (const r of rows) {
        if (sets.length >= req.limit || bytes >= req.maxBytes) {
          next = r.key.slice();
          break;
        }
        sets.push({ kind: MutationKind.Set, key: r.key, param: r.value });
        bytes += r.key.length + r.value.length;
      }
    } finally {
      rows.return(undefined);
    }
    return { id: req.id, feed: { moveId: req.moveId, ops: packMutations(sets) }, next };
  }

  /** Move target: a source's changes of the range it receives, written as they are (no window, no fsync). */
  private ingest(packed: PackedMutations): void {
    const ms = unpackMutations(packed);
    if (ms.length === 0) return;
    const ops = new WriteOps();
    for (const m of ms) {
      if (m.kind === MutationKind.Set) ops.put(m.key, m.param);
      else if (m.kind === MutationKind.Clear) ops.del(m.key);
      else if (m.kind === MutationKind.ClearRange) ops.deleteRange(m.key, m.param);
    }
    this.storage.write(ops, false);
    // the cached rows follow the write, in its order
    if (this.rows.enabled) {
      for (const m of ms) {
        if (m.kind === MutationKind.Set) this.rows.wrote(keyString(m.key), m.param);
        else if (m.kind === MutationKind.Clear) this.rows.wrote(keyString(m.key), null);
        else if (m.kind === MutationKind.ClearRange) this.rows.clearRange(keyString(m.key), keyString(m.param));
      }
    }
  }

  /** Deletes the rows of a range this shard no longer serves (or is about to receive); busy while tombstones cover it. */
  private dropRange(id: number, begin: Uint8Array, end: Uint8Array | null): ShardReply {
    const b = keyString(begin);
    const e = end ? keyString(end) : MAX_KEY;
    if (this.window.hasTombstones && this.window.tombstoneSteps(b, e, false).some(([, , c]) => c !== 0)) return { id, ok: true, busy: true };
    const ops = new WriteOps();
    ops.deleteRange(begin, end ?? keyFromString(MAX_KEY));
    this.storage.write(ops, false);
    this.rows.clearRange(b, e);
    return { id, ok: true };
  }

  /** Cluster re-seed (interface.ts ReseedRequest): wipe and restart the window at `version`, or end with the watermark. */
  private reseed(id: number, phase: 'begin' | 'end', version: number): ShardReply {
    if (phase === 'end') {
      this.appliedVersion = version;
      const ops = new WriteOps();
      ops.putMeta(this.watermarkKey, encodeVersion(version));
      this.storage.write(ops, true);
      return { id, ok: true };
    }
    if (this.queue.length > 0 || this.begun !== this.ended) return { id, ok: true, busy: true };
    // what the window held (before-images, tombstones not yet applied) describes rows that
    // are deleted now; the durable tombstone records and marks go too (the caller deletes them)
    this.window.detach();
    this.window = new VersionWindow(version, {}, this.keys);
    this.batchView = null;
    this.retirement.reset();
    this.incoming = [];
    const ops = new WriteOps();
    ops.deleteRange(EMPTY, keyFromString(MAX_KEY));
    this.storage.write(ops, false);
    this.rows.clear();
    // no read is parked: reads park only behind queued or written commits
    return { id, ok: true };
  }

  /**
   * Move target at the switch: hold later commits behind a barrier, and remember the
   * switch (the range's changes before it are not in this shard's window: subscribe).
   * Conflicts need nothing here: the resolver's history is keyspace-wide.
   */
  private moveIn(id: number, begin: string, end: string, switchVersion: number): void {
    const last = this.queue[this.queue.length - 1];
    if ((last && last.commitVersion >= switchVersion) || switchVersion <= this.appliedVersion) {
      throw new Error(`shard ${this.shardId}: move barrier ${switchVersion} arrived out of version order`);
    }
    this.incoming.push({ begin, end, switchVersion });
    // released by a decide (commit) whose decision record is the move's marker
    const q: Queued = { commitVersion: switchVersion, state: 'prepared', packed: NO_MUTATIONS, sync: true, twoPhase: false, plainReply: false, replyId: id };
    this.queue.push(q);
  }

  /** Handles a batch of requests in arrival order. */
  handleBatch(batch: ShardRequest[], replies: ShardReply[]): void {
    // the cache's freed slots are reused only while no batch's before-images view them
    // (reads copy their rows into the reply before they return)
    if (this.writing === null) this.rows.recycle();
    for (const req of batch) this.handle(req, replies);
  }

  private tooOld(readVersion: number): WireError {
    return { code: 'TOO_OLD', message: `read version ${readVersion} is older than the MVCC window (oldest readable ${this.window.horizon})` };
  }

  private checkReadable(readVersion: number): void {
    if (readVersion < this.window.horizon) throw TxnError.fromWire(this.tooOld(readVersion));
  }

  /** Many point reads in one reply: cached rows, the rest in one RocksDB multi-get. */
  private gets(id: number, keys: Uint8Array[], versions: number[], maxBytes: number): ShardReply {
    const ks: string[] = new Array(keys.length);
    for (let i = 0; i < keys.length; i++) ks[i] = keyString(keys[i]!);
    if (this.served !== null) {
      for (let i = 0; i < keys.length; i++) {
        this.checkServed(ks[i]!, null, versions[i]!);
        this.load.read(ks[i]!);
      }
    }
    // read in small chunks and stop once the reply holds maxBytes of values (after at
    // least one): the reply's memory is bounded, the rest is refused (retryable)
    const values: (Uint8Array | null)[] = new Array(keys.length).fill(null);
    let errors: (WireError | null)[] | null = null;
    let bytes = 0;
    let chunk: (Uint8Array | null)[] = [];
    let chunkStart = 0;
    let chunkEnd = 0;
    const w = this.window;
    // each key's table entry (-1: not in the table), found with its cached row (physicalRows)
    const ents = new Int32Array(keys.length);
    for (let i = 0; i < keys.length; i++) {
      if (i === chunkEnd) {
        // as many keys as the budget left probably holds, judged by the values so far
        // (all of them when values are small, the common case: one multi-get)
        const left = maxBytes - bytes;
        const n = i === 0 ? (maxBytes === Infinity ? keys.length : GETS_CHUNK) : bytes === 0 ? i : Math.max(GETS_CHUNK, Math.ceil(left / (bytes / i)));
        chunkStart = i;
        chunkEnd = Math.min(keys.length, i + n);
        chunk = this.physicalRows(keys, ks, chunkStart, chunkEnd, ents);
      }
      if (bytes >= maxBytes && i > 0) {
        errors ??= new Array(keys.length).fill(null);
        const refusal: WireError = { code: 'RESOURCE_CONSTRAINED', message: `reply memory budget reached: ${bytes} bytes of values in this reply; limit ${maxBytes}` };
        for (let j = i; j < keys.length; j++) errors[j] = refusal;
        break;
      }
      values[i] = chunk[i - chunkStart]!;
      const rv = versions[i]!;
      if (rv < w.horizon) {
        errors ??= new Array(keys.length).fill(null);
        errors[i] = this.tooOld(rv);
        values[i] = null;
        continue;
      }
      if (rv < w.newestVersion || w.hasTombstones) values[i] = w.valueAtEntry(ents[i]!, ks[i]!, rv, values[i]);
      bytes += values[i]?.length ?? 0;
    }
    this.counters.reads += keys.length;
    return { id, values: packBytes(values), errors };
  }

  /**
   * The rows of keys[start, end) as RocksDB holds them (null: none): from the row cache,
   * the misses in one multi-get. A miss fills the cache unless the batch at the log
   * writer writes that key (RocksDB may still hold its old row). Each key's table entry
   * goes to ents[i] (-1: none; an entry stays that key's until the cache's next recycle()).
   */
  private physicalRows(keys: Uint8Array[], ks: string[], start: number, end: number, ents: Int32Array): (Uint8Array | null)[] {
    const c = this.rows;
    const t = this.keys;
    const out: (Uint8Array | null)[] = new Array(end - start);
    if (!c.enabled) {
      for (let i = start; i < end; i++) ents[i] = t.find(ks[i]!);
      const got = this.storage.getMany(start === 0 && end === keys.length ? keys : keys.slice(start, end));
      for (let i = 0; i < out.length; i++) out[i] = got[i] ?? null;
      return out;
    }
    let missed: number[] | null = null;
    for (let i = start; i < end; i++) {
      const e = t.find(ks[i]!);
      ents[i] = e;
      const v = e < 0 ? undefined : c.getEntry(e);
      if (v === undefined) (missed ??= []).push(i);
      else out[i - start] = v;
    }
    c.hits += end - start - (missed?.length ?? 0);
    if (missed === null) return out;
    c.misses += missed.length;
    const got = this.storage.getMany(missed.map((i) => keys[i]!));
    const writing = this.writing;
    for (let j = 0; j < missed.length; j++) {
      const i = missed[j]!;
      const v = got[j] ?? null;
      out[i - start] = v;
      const e = ents[i]!;
      if (writing === null || e < 0 || !this.keys.hasFlag(e, FLAG_WRITING)) {
        if (e >= 0) c.fillEntry(e, v);
        else c.fill(ks[i]!, v);
      }
    }
    return out;
  }

  /**
   * Range read at a version: RocksDB rows (latest state) merged with the window's
   * corrections: keys changed after the read version take their value at that version,
   * and rows under a range tombstone the read must see are left out (without reading
   * them: a tombstoned span costs only its rows written since). Stops at `limit` rows or
   * `maxBytes`; `more` says whether rows remain in this shard's part of the range.
   */
  private range(req: RangeRequest): ShardReply {
    const r = this.rangeRows(req);
    const kvs = packBytes(r.out);
    // the page is copied: its RocksDB rows (each a buffer of its own, from the binding) go now, not at a collection
    freeBuffers(r.read);
    return { id: req.id, kvs, more: r.more };
  }

  /**
   * The census' slice: what range() would return, counted here instead of shipped (no
   * copy to the main thread, no load counted). Its CPU time is measured (counters
   * censusCpuMs, censusCpuMaxMs, censusSlowSlices) because a slice holds every commit and read of the shard.
   */
  private count(req: CountRequest): ShardReply {
    const cpu0 = threadCpuMs();
    this.checkReadable(req.readVersion);
    if (this.served !== null) this.checkServed(keyString(req.begin), keyString(req.end), req.readVersion);
    const r = this.rangeRows({ t: 'range', id: req.id, readVersion: req.readVersion, begin: req.begin, end: req.end, limit: req.limit, reverse: false, maxBytes: req.maxBytes }, false);
    let bytes = 0;
    for (let i = 0; i < r.out.length; i++) bytes += r.out[i]!.length;
    let next: Uint8Array | null = null;
    if (r.more) {
      const last = r.out[r.out.length - 2]!;
      next = new Uint8Array(last.length + 1);
      next.set(last);
    }
    const cpu1 = threadCpuMs();
    const cpuMs = cpu0 === null || cpu1 === null ? null : cpu1 - cpu0;
    this.counters.censusSlices++;
    if (cpuMs !== null) {
      this.counters.censusCpuMs += cpuMs;
      if (cpuMs > this.counters.censusCpuMaxMs) this.counters.censusCpuMaxMs = cpuMs;
      if (cpuMs > CENSUS_SLOW_SLICE_MS) this.counters.censusSlowSlices++;
    }
    return { id: req.id, count: { keys: r.out.length / 2, bytes, next, cpuMs } };
  }

  /**
   * range()'s rows, flat [k0, v0, ...]; more = rows remain past them; `read` = the values
   * among them read from RocksDB (copies of their own; the others are the window's).
   * `counted`: a client's read (the shard's read counter and load).
   */
  private rangeRows(req: RangeRequest, counted = true): { out: Uint8Array[]; more: boolean; read: Uint8Array[] } {
    this.checkReadable(req.readVersion);
    if (this.served !== null && counted) {
      const b = keyString(req.begin);
      this.checkServed(b, keyString(req.end), req.readVersion);
      this.load.read(b);
    }
    if (counted) this.counters.reads++;
    const { readVersion, limit, reverse } = req;
    const w = this.window;
    const historical = readVersion < w.newestVersion;
    // keys changed after the read version, with their values at it, lazily in key order
    const changed = historical ? w.changedAfter(readVersion, keyString(req.begin), keyString(req.end), reverse) : null;
    const nextOverlay = (): { key: string; value: Uint8Array } | null => {
      if (!changed) return null;
      for (;;) {
        const r = changed.next();
        if (r.done) return null;
        const value = w.valueAt(r.value, readVersion, undefined);
        if (value !== null) return { key: r.value, value };
      }
    };
    const chunkSize = Math.min(Math.max(limit + 1, 16), 1000);
    const base = this.baseRows(req.begin, req.end, readVersion, reverse, historical, chunkSize, req.maxBytes);
    const out: Uint8Array[] = [];
    const read: Uint8Array[] = [];
    let rows = 0;
    let bytes = 0;
    try {
      let ov = nextOverlay();
      let row = base.next();
      for (;;) {
        const br = row.done ? null : row.value;
        if (!br && !ov) break;
        if (rows >= limit || (rows > 0 && bytes >= req.maxBytes)) return { out, more: true, read };
        let takeOverlay: boolean;
        if (!br) takeOverlay = true;
        else if (!ov) takeOverlay = false;
        else {
          const bk = br.keyS ?? keyString(br.key);
          takeOverlay = reverse ? ov.key > bk : ov.key < bk;
        }
        if (takeOverlay) {
          const k = keyFromString(ov!.key);
          out.push(k, ov!.value);
          bytes += k.length + ov!.value.length;
          ov = nextOverlay();
        } else {
          out.push(br!.key, br!.value);
          read.push(br!.value);
          bytes += br!.key.length + br!.value.length;
          row = base.next();
        }
        rows++;
      }
      return { out, more: false, read };
    } finally {
      base.return(undefined);
    }
  }

  /**
   * Rows of [begin, end) as RocksDB holds them that a read at readVersion sees unchanged:
   * rows of keys written after the read version are skipped (the overlay has them), and
   * so are rows a live tombstone hides from the read. RocksDB is read in chunks of up to
   * `chunkSize` rows and about `maxBytes` bytes (the caller's page: scanRows).
   */
  private *baseRows(
    begin: Uint8Array,
    end: Uint8Array,
    readVersion: number,
    reverse: boolean,
    historical: boolean,
    chunkSize: number,
    maxBytes: number,
  ): Generator<{ key: Uint8Array; keyS: string | null; value: Uint8Array }> {
    const w = this.window;
    if (!w.hasTombstones) {
      yield* this.scanRows(begin, end, readVersion, reverse, historical, false, chunkSize, maxBytes);
      return;
    }
    for (const [sb, se, c] of w.tombstoneSteps(keyString(begin), keyString(end), reverse)) {
      const b = keyFromString(sb);
      const e = keyFromString(se);
      if (c === 0) yield* this.scanRows(b, e, readVersion, reverse, historical, false, chunkSize, maxBytes);
      else if (c <= readVersion) {
        // hidden from this read: only keys written at c or later (and not after the read) remain
        const keys = w.survivors(sb, se, c).filter((k) => w.lastWrite(k) <= readVersion);
        if (reverse) keys.reverse();
        if (keys.length === 0) continue;
        const values = this.storage.getMany(keys.map(keyFromString));
        for (let i = 0; i < keys.length; i++) {
          const v = values[i];
          if (v) yield { key: keyFromString(keys[i]!), keyS: keys[i]!, value: v };
        }
      } else yield* this.scanRows(b, e, readVersion, reverse, historical, true, chunkSize, maxBytes);
    }
  }

  private *scanRows(
    begin: Uint8Array,
    end: Uint8Array,
    readVersion: number,
    reverse: boolean,
    historical: boolean,
    checkTombstones: boolean,
    chunkSize: number,
    maxBytes: number,
  ): Generator<{ key: Uint8Array; keyS: string | null; value: Uint8Array }> {
    const w = this.window;
    // Each row RocksDB returns is a copy. A chunk holds about the caller's page in bytes;
    // after a chunk cut by bytes the caller most likely only looks one row ahead (is there
    // more?), so the next chunk asks for 1 row, then 2, 4, ... (rows skipped as hidden
    // from the read make the caller ask again). Before, a page of 1 MB read up to
    // 1,000 rows, all copied, and a 'has more' probe (maxBytes 1) 16.
    const scan = this.storage.scan(begin, end, reverse, maxBytes);
    let want = chunkSize;
    try {
      for (;;) {
        const chunk = scan.next(want);
        if (chunk.length === 0) return;
        want = !scan.finished && chunk.length < 2 * want ? 1 : Math.min(2 * want, chunkSize);
        for (let i = 0; i < chunk.length; i += 2) {
          const key = chunk[i]!;
          const value = chunk[i + 1]!;
          if (!historical && !checkTombstones) {
            yield { key, keyS: null, value };
            continue;
          }
          const ks = keyString(key);
          if (historical && w.lastWrite(ks) > readVersion) continue;
          // a tombstone newer than the read covers this span; an older one may still hide the row
          if (checkTombstones && w.valueAt(ks, readVersion, value) === null) continue;
          yield { key, keyS: ks, value };
        }
        if (scan.finished) return;
      }
    } finally {
      scan.close();
    }
  }

  /**
   * Queues a commit's writes in version order. Its reads were resolved on the main thread
   * (coordinator/resolver.ts): nothing is checked here, and a prepare cannot be refused.
   */
  private enqueue(req: CommitRequest | PrepareRequest, state: 'prepared' | 'ready', replies: ShardReply[]): void {
    const q: Queued = {
      commitVersion: req.commitVersion,
      state,
      packed: req.mutations,
      sync: req.t === 'commit' ? req.sync : false,
      twoPhase: req.t === 'prepare',
      plainReply: true,
      replyId: req.id,
    };
    const last = this.queue[this.queue.length - 1];
    if ((last && last.commitVersion >= q.commitVersion) || q.commitVersion <= this.appliedVersion) {
      throw new Error(`shard ${this.shardId}: commit ${q.commitVersion} arrived out of version order`);
    }
    this.queue.push(q);
    if (state === 'prepared') {
      // id 0: a blind write's prepare, posted without a reply (it cannot be refused)
      if (req.id !== 0) replies.push({ id: req.id, ok: true });
      this.failpoints.hitShard('shard.after-prepare', this.shardId);
    }
  }

  /** Index in `queue` of the commit (or move barrier) at `version`, -1 if none. */
  private queuedAt(version: number): number {
    const queue = this.queue;
    let lo = 0;
    let hi = queue.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = queue[mid]!.commitVersion;
      if (v === version) return mid;
      if (v < version) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  private decide(req: DecideRequest, replies: ShardReply[]): void {
    const at = this.queuedAt(req.commitVersion);
    const q = at < 0 ? undefined : this.queue[at]!;
    if (!q || q.state !== 'prepared') {
      throw new Error(`shard ${this.shardId}: decision for ${req.commitVersion}, which is not prepared here`);
    }
    if (!req.commit) {
      this.queue.splice(at, 1);
      replies.push({ id: req.id, ok: true });
      this.wakeParked(replies);
      return;
    }
    q.state = 'ready';
    q.sync = req.sync;
    q.decision = req.decision;
    q.replyId = req.id;
  }

  /**
   * Takes every decided commit at the head of the queue and turns it into one write
   * (group commit), recording each commit in the MVCC window at once: later conflict
   * checks and reads at older versions see it from now on, while reads at newer versions
   * cannot happen before the write is acknowledged (the oracle passes a version only once
   * its shards replied). A slice of the retirement of tombstones the window no longer
   * needs (retire.ts) runs first, in writes of its own. Pair with endApply() once the write is done
   * (durable when `sync`). Null when there is nothing to write.
   */
  beginApply(): ApplyBatch | null {
    // no batch is being built or written: nobody holds a view of the cache's rows
    if (this.writing === null) this.rows.recycle();
    let n = 0;
    while (n < this.queue.length && this.queue[n]!.state === 'ready') n++;
    if (this.retirement.pending) this.retirement.slice(this.window);
    if (n === 0 && this.forgets.length === 0) return null;
    const started = performance.now();
    const commits = this.queue.splice(0, n);
    if (commits.length > 0) this.writingFrom = commits[0]!.commitVersion;
    const tombstones: Tombstone[] = [];
    // the balancer's write counts (range-load.ts) are taken here: a write counts once applied
    const view = (this.batchView ??= new BatchView(this.storage, this.rows, this.window, this.slotIndex));
    view.begin(commits, this.load);
    // room for every key and value of the batch at first (growing by copies made ~700 B of garbage per commit)
    const ops = new WriteOps(view.packedBytes + 256);
    let sync = false;
    let twoPhase = false;
    let plainReplies = true;
    const feed = this.feed;
    const fed: { clears: [string, string][]; keys: string[] }[] = [];
    let base = 0;
    for (const c of commits) {
      const { ranges, byteRanges } = this.applyMutations(c.commitVersion, c.packed, base, ops, view);
      base += c.packed.kinds.length;
      this.live.commit(c.commitVersion, byteRanges, view);
      if (feed) fed.push(feedPart(feed, view.recordedKeys(), ranges));
      if (c.decision) ops.putMeta(c.decision.key, c.decision.value);
      sync ||= c.sync || c.decision !== undefined;
      twoPhase ||= c.twoPhase;
      plainReplies &&= c.plainReply;
      view.record(c.commitVersion, ranges);
    }
    this.live.seal();
    for (const k of this.forgets.splice(0)) ops.delMeta(k);
    // the cached rows take the batch's values now (see row-cache.ts for why not after the write)
    view.updateCache(this.rows);
    view.letGo();
    this.writing = { entries: this.rows.enabled ? view.flagWritten() : [] };
    if (commits.length > 0) {
      this.appliedVersion = commits[commits.length - 1]!.commitVersion;
      ops.putMeta(this.watermarkKey, encodeVersion(this.appliedVersion));
    }
    this.counters.busyMs += performance.now() - started;
    this.begun++;
    const batch: ApplyBatch = { replyIds: commits.map((c) => c.replyId), ops, sync: sync && this.durable, twoPhase, tombstones, direct: false };
    if (feed && fed.some((f) => f.clears.length > 0 || f.keys.length > 0)) {
      // per commit, in order: its clears, then the batch's final value of each key it wrote
      // (the target ends in the batch's final state)
      const ms: ShardMutation[] = [];
      for (const f of fed) {
        for (const [b, e] of f.clears) ms.push({ kind: MutationKind.ClearRange, key: keyFromString(b), param: keyFromString(e) });
        for (const k of f.keys) {
          const v = view.get(k);
          ms.push(v === null ? { kind: MutationKind.Clear, key: keyFromString(k), param: EMPTY } : { kind: MutationKind.Set, key: keyFromString(k), param: v });
        }
      }
      batch.feed = { moveId: feed.moveId, ops: packMutations(ms) };
    }
    view.release();
    // a crash armed between a cross-shard part's apply and its reply needs the reply to come from here (endApply)
    batch.direct = plainReplies && batch.feed === undefined && !this.live.hasEvents && !(twoPhase && this.failpoints.armedFor('shard.after-apply', this.shardId));
    return batch;
  }

  /**
   * Applies one commit's mutations to `ops`, read in place from the packed bytes they
   * arrived in (no object, view or key string per mutation: each key was found in the key
   * table once, by BatchView, whose slot `mutationSlot(base + i)` is the i-th mutation's):
   * range clears become tombstones (a durable record in the batch, a window entry), never
   * a walk over their rows; point writes read the current value through `view` (RocksDB as
   * of the last write, under the window's tombstones, overridden by what this batch
   * already wrote) and update it. Notes each point-written key's row before the commit in
   * `view` (view.record puts them in the window), and returns the cleared ranges.
   */
  private applyMutations(
    version: number,
    packed: PackedMutations,
    base: number,
    ops: WriteOps,
    view: BatchView,
  ): { ranges: [string, string][]; byteRanges: [Uint8Array, Uint8Array][] } {
    const effect = packedNetEffect(packed, compareKeys);
    const kinds = packed.kinds;
    const data = packed.bytes.data;
    const lens = packed.bytes.lens;
    const count = kinds.length;
    // where each mutation's key starts in `data` (its param follows it)
    const keyAt = view.keyAtScratch(count);
    for (let i = 0, o = 0; i < count; i++) {
      keyAt[i] = o;
      o += lens[2 * i]! + lens[2 * i + 1]!;
    }
    const points = effect.points;
    const pointCount = points === null ? count : points.length;
    // physical before-images: the window accounts for the tombstones that hid them
    view.beginCommit();
    for (let j = 0; j < pointCount; j++) view.noteBefore(view.mutationSlot(base + (points === null ? j : points[j]!)));
    const ranges: [string, string][] = [];
    let cleared: RangeSet | null = null;
    /** The commit's version as a mark's value: one copy for all its marks (never written to). */
    let marked: Uint8Array | null = null;
    for (let i = 0; i < effect.ranges.length; i++) {
      const [b, e] = effect.ranges[i]!;
      const range: [string, string] = [keyString(b), keyString(e)];
      ranges.push(range);
      view.clearRange(range[0], range[1]);
      ops.putMeta(tombstoneKey(this.shardId, version, i), encodeTombstone({ begin: b, end: e, survivors: null }));
    }
    const tombstoned = this.window.hasTombstones || ranges.length > 0;
    for (let j = 0; j < pointCount; j++) {
      const i = points === null ? j : points[j]!;
      const slot = view.mutationSlot(base + i);
      const kind = kinds[i]!;
      const ka = keyAt[i]!;
      const kl = lens[2 * i]!;
      const pa = ka + kl;
      const pl = lens[2 * i + 1]!;
      // an atomic operation is a set (or clear) of what it makes of the value at this version
      const value = kind === MutationKind.Set ? data.subarray(pa, pa + pl) : kind === MutationKind.Clear ? null : view.atomic(slot, kind, data.subarray(pa, pa + pl));
      view.setSlot(slot, value);
      if (value !== null) {
        ops.putAt(data, ka, kl, value);
        // a key written under a live tombstone must survive its DeleteRange, also after a crash
        // (the commit's own clears by binary search: a scan of them per write was O(writes x clears))
        if (tombstoned) {
          const s = view.slotKeyString(slot);
          if (this.window.covered(s) || (ranges.length > 0 && (cleared ??= RangeSet.from(ranges)).containsKey(s))) {
            ops.putMeta(markKey(this.shardId, data.subarray(ka, ka + kl)), (marked ??= encodeVersion(version)));
          }
        }
      } else ops.delAt(data, ka, kl);
    }
    return { ranges, byteRanges: effect.ranges };
  }

  /**
   * The write of `batch` is done: answer its commits (unless `repliedByLog`: the log
   * writer sent their replies to the coordinator itself, batch.direct).
   */
  endApply(batch: ApplyBatch, replies: ShardReply[], repliedByLog = false): void {
    if (this.writing !== null) for (const e of this.writing.entries) this.keys.clearFlag(e, FLAG_WRITING);
    this.writing = null;
    this.live.drainEvents(replies);
    if (batch.sync) this.counters.fsyncs++;
    this.counters.batches++;
    this.ended++;
    // a move's source reports the batch's changes of the moving range now that they are in
    // RocksDB, before the replies: the coordinator forwards them to the target ahead of
    // anything those replies cause
    if (batch.feed) replies.push({ id: 0, feed: batch.feed });
    if (batch.tombstones.length > 0) this.window.dropTombstones(batch.tombstones);
    if (!repliedByLog) for (const id of batch.replyIds) replies.push({ id, ok: true });
    else if (batch.replyIds.length > 0) this.counters.directBatches++;
    this.counters.commits += batch.replyIds.length;
    this.writingFrom = Infinity;
    this.wakeParked(replies);
    if (batch.twoPhase) this.failpoints.hitShard('shard.after-apply', this.shardId);
  }

  /**
   * Whether the shard has work that waits for the batch being written to end: commits
   * queued behind it, reads parked behind it, decision records to forget or tombstoned
   * rows to delete (worker.ts asks the log writer to wake it at the end of the write).
   */
  get waitsForWrite(): boolean {
    return this.queue.length > 0 || this.parked.length > 0 || this.forgets.length > 0 || this.retirement.pending;
  }

  /** Whether tombstones wait to be retired (worker.ts then runs another turn: beginApply does a slice). */
  get retiring(): boolean {
    return this.retirement.pending;
  }

  /** beginApply, the write on this thread, endApply (buffered durability, tests). */
  applyReady(replies: ShardReply[]): void {
    const b = this.beginApply();
    if (!b) return;
    this.storage.write(b.ops, b.sync);
    this.endApply(b, replies);
  }

  stats(): ShardStats {
    const est = this.storage.estimate();
    return {
      shardId: this.shardId,
      appliedVersion: this.appliedVersion,
      windowCommits: this.window.size,
      windowKeys: this.window.held.keys,
      windowBytes: this.window.heldBytes,
      queued: this.queue.length,
      estimatedKeys: est.keys,
      estimatedBytes: est.bytes,
      ...this.counters,
      rowCacheRows: this.rows.size,
      rowCacheBytes: this.rows.heldBytes,
      rowCacheHits: this.rows.hits,
      rowCacheMisses: this.rows.misses,
      rowCacheImageHits: this.rows.imageHits,
      rowCacheImageMisses: this.rows.imageMisses,
      tombstones: this.window.tombstones,
      tombstonesRetiring: this.retirement.size,
      ...this.retirement.counters,
    };
  }
}

/**
 * Which slot of the batch being built a key-table entry has: typed arrays indexed by entry,
 * stamped with the batch's number, kept by the shard from batch to batch (a Map by key
 * string per batch was a key string, a Map entry and its rehashes per written key).
 */
class SlotIndex {
  private stamps = new Int32Array(1024);
  private slots = new Int32Array(1024);
  private batch = 0;

  /** A new batch: every entry's slot is forgotten. */
  begin(): void {
    if (++this.batch === 0x7fff_ffff) {
      this.stamps.fill(0);
      this.batch = 1;
    }
  }

  /** Slot of entry e in this batch, -1: none. */
  get(e: number): number {
    return e < this.stamps.length && this.stamps[e] === this.batch ? this.slots[e]! : -1;
  }

  set(e: number, slot: number): void {
    if (e >= this.stamps.length) {
      let n = this.stamps.length;
      while (n <= e) n *= 2;
      const stamps = new Int32Array(n);
      stamps.set(this.stamps);
      const slots = new Int32Array(n);
      slots.set(this.slots);
      this.stamps = stamps;
      this.slots = slots;
    }
    this.stamps[e] = this.batch;
    this.slots[e] = slot;
  }
}

/**
 * One write batch being built: each key's current value as RocksDB holds it (one
 * multi-get for the batch's point writes) seen through the window's tombstones, and
 * overridden by what the batch wrote so far. Each key the batch writes gets a slot (a
 * small index) found once, by its bytes in the request's buffer (key table, SlotIndex);
 * the slot knows the key's table entry, so the row cache and the window are each reached
 * without a lookup of their own, and where its bytes are (no key view or string is made).
 * Each mutation of the batch's commits has its key's slot (mutationSlot; -1: a range clear).
 */
class BatchView implements CommitWrites {
  // The arrays are kept from batch to batch and only counted (slots, muts, befores,
  // pendings): made anew, each batch grew its own a few times by copies (~190 B per
  // written key of garbage). Their references to rows and request buffers are dropped once
  // the batch is built (release).
  /** Per mutation of the batch, in order over its commits: its key's slot (-1: a range clear). */
  private readonly mutSlots: number[] = [];
  private muts = 0;
  /** Per slot: its table entry, where its key's bytes are (the first mutation's request buffer), its row when the batch began. */
  private readonly entries: number[] = [];
  private readonly keyData: (Uint8Array | null)[] = [];
  private readonly keyAt: number[] = [];
  private readonly current: (Uint8Array | null)[] = [];
  /** Per slot: the row the batch put (or deleted) so far (undefined: none yet). */
  private readonly written: (Uint8Array | null | undefined)[] = [];
  /** Per slot: the value the batch gave the key so far, as reads see it (undefined: none; a later range clear makes it null). */
  private readonly pending: (Uint8Array | null | undefined)[] = [];
  private slots = 0;
  /**
   * The slots whose `pending` is set, so a range clear looks only at keys the batch wrote
   * so far: a walk over every slot made a commit of 20,000 clearRange + set pairs quadratic
   * (its clears come before its sets: 20,000 x 20,000 slots, ~0.5 s of its shard thread).
   */
  private readonly pendingSlots: number[] = [];
  private pendings = 0;
  /** Ranges cleared by the batch so far (each commit's tombstones are recorded after it). */
  private clearedNow: [string, string][] = [];
  /** The commit being applied: its point-written slots and their rows before it (noteBefore). */
  private commitNo = 0;
  private readonly seenIn: number[] = [];
  private readonly beforeSlots: number[] = [];
  private readonly beforeRows: (Uint8Array | null)[] = [];
  private befores = 0;
  private readonly table: KeyTable;
  private keyAtOf: Int32Array = new Int32Array(64);
  /** The slot atomic() reads the current value of (currentOfSlot: one function for the batch, no closure per write). */
  private atomicSlot = -1;
  private readonly currentOfSlot = (): Uint8Array | null => this.getSlot(this.atomicSlot);
  /** Bytes of the commits' packed mutations (WriteOps' first buffer holds about this). */
  packedBytes = 0;

  constructor(
    private readonly storage: ShardStorage,
    private readonly rows: RowCache,
    private readonly window: VersionWindow,
    private readonly index: SlotIndex,
  ) {
    this.table = window.table;
  }

  /** Starts a batch of `commits`: every key they point-write gets a slot, with its row before the batch. */
  begin(commits: readonly Queued[], load: RangeLoad): void {
    const { rows, index, table } = this;
    this.muts = 0;
    this.slots = 0;
    this.pendings = 0;
    this.befores = 0;
    if (this.clearedNow.length > 0) this.clearedNow = [];
    this.packedBytes = 0;
    index.begin();
    // before-images: cached rows, the rest in one multi-get (no batch is being written
    // now, so RocksDB holds the newest rows and they may fill the cache)
    let missed: number[] | null = null;
    let missedKeys: Uint8Array[] | null = null;
    for (const c of commits) {
      const kinds = c.packed.kinds;
      const data = c.packed.bytes.data;
      const lens = c.packed.bytes.lens;
      this.packedBytes += data.length;
      for (let i = 0, o = 0; i < kinds.length; i++) {
        const kl = lens[2 * i]!;
        const at = o;
        o += kl + lens[2 * i + 1]!;
        if (kinds[i] === MutationKind.ClearRange) {
          load.write(keyString(data.subarray(at, at + kl)));
          this.mutSlots[this.muts++] = -1;
          continue;
        }
        const e = table.internAt(data, at, kl);
        load.writeEntry(table, e);
        let slot = index.get(e);
        if (slot < 0) {
          slot = this.slots++;
          index.set(e, slot);
          this.entries[slot] = e;
          this.keyData[slot] = data;
          this.keyAt[slot] = at;
          this.written[slot] = undefined;
          this.pending[slot] = undefined;
          this.seenIn[slot] = 0;
          const v = rows.getEntry(e);
          if (v === undefined) {
            (missed ??= []).push(slot);
            (missedKeys ??= []).push(data.subarray(at, at + kl));
            this.current[slot] = null;
          } else this.current[slot] = v;
        }
        this.mutSlots[this.muts++] = slot;
      }
    }
    const n = missed?.length ?? 0;
    rows.imageHits += this.slots - n;
    rows.imageMisses += n;
    if (missed !== null) {
      const vs = this.storage.getMany(missedKeys!);
      for (let i = 0; i < n; i++) {
        const slot = missed[i]!;
        const v = vs[i] ?? null;
        this.current[slot] = v;
        rows.fillEntry(this.entries[slot]!, v);
      }
    }
  }

  /** The batch is built: the references to its rows and request buffers go (the arrays stay). */
  release(): void {
    for (let slot = 0; slot < this.slots; slot++) {
      this.keyData[slot] = null;
      this.current[slot] = null;
      this.written[slot] = undefined;
      this.pending[slot] = undefined;
    }
    for (let i = 0; i < this.befores; i++) this.beforeRows[i] = null;
  }

  /** The slot of the key of the batch's n-th mutation (over its commits, in order). */
  mutationSlot(n: number): number {
    return this.mutSlots[n]!;
  }

  /** A scratch array of at least n numbers (the key offsets of the commit being applied). */
  keyAtScratch(n: number): Int32Array {
    if (this.keyAtOf.length < n) this.keyAtOf = new Int32Array(Math.max(n, 2 * this.keyAtOf.length));
    return this.keyAtOf;
  }

  /** The slot's key as a key string (made on each call: only where tombstones or feeds need one). */
  slotKeyString(slot: number): string {
    return this.table.keyString(this.entries[slot]!);
  }

  /** Flags (FLAG_WRITING) the table entries of the keys whose rows this batch writes, and returns them (Shard.writing). */
  flagWritten(): number[] {
    const t = this.window.table;
    const out: number[] = [];
    for (let slot = 0; slot < this.slots; slot++) {
      if (this.written[slot] === undefined) continue;
      t.setFlag(this.entries[slot]!, FLAG_WRITING);
      out.push(this.entries[slot]!);
    }
    return out;
  }

  /** The cached rows of keys this batch writes take its values. */
  updateCache(rows: RowCache): void {
    if (!rows.enabled) return;
    // every written key's row was read from the cache or filled into it by the constructor
    for (let slot = 0; slot < this.slots; slot++) {
      const v = this.written[slot];
      if (v !== undefined) rows.replaceEntry(this.entries[slot]!, v);
    }
  }

  /**
   * The batch is built: its entries are handed back to the table (freed unless the cache
   * or the window holds them: with no row cache, keys a later clear of their commit dropped).
   */
  letGo(): void {
    if (this.rows.enabled) return;
    const t = this.window.table;
    for (let slot = 0; slot < this.slots; slot++) t.release(this.entries[slot]!);
  }

  /** The next commit's point writes are noted (noteBefore), then recorded (record). */
  beginCommit(): void {
    this.commitNo++;
    this.befores = 0;
  }

  /** The commit being applied point-writes the slot's key: its row before the commit (as RocksDB will hold it before the commit's ops) is noted once. */
  noteBefore(slot: number): void {
    if (this.seenIn[slot] === this.commitNo) return;
    this.seenIn[slot] = this.commitNo;
    const w = this.written[slot];
    this.beforeSlots[this.befores] = slot;
    this.beforeRows[this.befores++] = w !== undefined ? w : this.current[slot]!;
  }

  /** The keys the commit being applied point-writes. */
  recordedKeys(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.befores; i++) out.push(this.slotKeyString(this.beforeSlots[i]!));
    return out;
  }

  /** Records the commit being applied in the window: its noted before-images and its cleared ranges. */
  record(version: number, ranges: readonly (readonly [string, string])[]): void {
    const w = this.window;
    w.beginRecord(version);
    const slots = this.beforeSlots;
    for (let i = 0; i < this.befores; i++) w.recordWrite(version, this.entries[slots[i]!]!, this.beforeRows[i]!);
    w.endRecord(version, this.befores, ranges);
  }

  // CommitWrites (live.ts): the commit being applied's distinct point-written keys, each
  // with its value after it (the commit's clears came before its points: pending is final)
  get writeCount(): number {
    return this.befores;
  }

  writeValue(i: number): Uint8Array | null {
    return this.pending[this.beforeSlots[i]!]!;
  }

  writeKeyData(i: number): Uint8Array {
    return this.keyData[this.beforeSlots[i]!]!;
  }

  writeKeyAt(i: number): number {
    return this.keyAt[this.beforeSlots[i]!]!;
  }

  writeKeyLength(i: number): number {
    return this.table.keyLength(this.entries[this.beforeSlots[i]!]!);
  }

  writeKeyString(i: number): string {
    return this.slotKeyString(this.beforeSlots[i]!);
  }

  writeKeyInRange(i: number, begin: string, end: string): boolean {
    return this.table.inRange(this.entries[this.beforeSlots[i]!]!, begin, end);
  }

  /** The key's value now, as a read at the newest version would see it. */
  get(s: string): Uint8Array | null {
    const e = this.table.find(s);
    const slot = e < 0 ? -1 : this.index.get(e);
    if (slot < 0) {
      for (const [b, end] of this.clearedNow) if (s >= b && s < end) return null;
      // the newest state: hidden under a tombstone newer than the key's last write
      return this.window.valueAt(s, Infinity, null);
    }
    return this.getSlot(slot);
  }

  /** get() of the slot's key. */
  getSlot(slot: number): Uint8Array | null {
    const p = this.pending[slot];
    if (p !== undefined) return p;
    const e = this.entries[slot]!;
    for (const [b, end] of this.clearedNow) if (this.table.inRange(e, b, end)) return null;
    // the key string is read only under tombstones (valueAtEntry's hiddenAt)
    return this.window.valueAtEntry(e, this.window.hasTombstones ? this.table.keyString(e) : '', Infinity, this.current[slot]!);
  }

  /** The value an atomic operation of `kind` with `param` leaves the slot's key with (apply.ts pointValueOf). */
  atomic(slot: number, kind: number, param: Uint8Array): Uint8Array | null {
    this.atomicSlot = slot;
    return pointValueOf(kind, param, this.currentOfSlot);
  }

  setSlot(slot: number, v: Uint8Array | null): void {
    if (this.pending[slot] === undefined) this.pendingSlots[this.pendings++] = slot;
    this.pending[slot] = v;
    this.written[slot] = v;
  }

  /** A range clear of the commit being applied: what the batch wrote there is gone too. */
  clearRange(b: string, e: string): void {
    const slots = this.pendingSlots;
    const t = this.table;
    for (let i = 0; i < this.pendings; i++) {
      const slot = slots[i]!;
      if (t.inRange(this.entries[slot]!, b, e)) this.pending[slot] = null;
    }
    this.clearedNow.push([b, e]);
  }
}

const EMPTY = new Uint8Array(0);

/** The part of one applied commit inside a move's range: its clears (clipped) and its point-written keys. */
function feedPart(feed: { begin: string; end: string }, written: readonly string[], ranges: readonly (readonly [string, string])[]): { clears: [string, string][]; keys: string[] } {
  const clears: [string, string][] = [];
  for (const [b, e] of ranges) {
    const cb = b > feed.begin ? b : feed.begin;
    const ce = e < feed.end ? e : feed.end;
    if (cb < ce) clears.push([cb, ce]);
  }
  const keys: string[] = [];
  for (const k of written) if (k >= feed.begin && k < feed.end) keys.push(k);
  return { clears, keys };
}


function maxOf(xs: readonly number[]): number {
  let m = -Infinity;
  for (const x of xs) if (x > m) m = x;
  return m;
}
const NO_MUTATIONS: PackedMutations = { kinds: new Uint8Array(0), bytes: { data: new Uint8Array(0), lens: new Int32Array(0) } };
