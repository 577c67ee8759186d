// hot path: the state machine of one shard. Worker thread (shard/worker.ts feeds it);
// it never touches the network or another shard's column.
//
// Requests arrive in batches. Reads are answered at once. Commits are checked for
// conflicts on arrival and queued in version order; `flush()` then applies the
// longest decided prefix of the queue as ONE RocksDB write batch (group commit: one
// fsync for every commit that was ready at that moment) and records each commit's
// before-images in the MVCC window.
import { TxnError, toWireError, type WireError } from '../errors.js';
import { keyFromString, keyString } from '../keys/bytes.js';
import { RangeSet } from '../keys/ranges.js';
import type { Failpoints } from '../failpoints/failpoints.js';
import { applyAtomic, isAtomicType } from '../keys/atomic.js';
import { checkConflicts, type PendingWrites } from './conflicts.js';
import {
  MutationKind,
  appliedKey,
  encodeVersion,
  packBytes,
  unpackBytes,
  unpackMutations,
  type CommitRequest,
  type DecideRequest,
  type PrepareRequest,
  type RangeRequest,
  type ShardMutation,
  type ShardReply,
  type ShardRequest,
  type ShardStats,
} from './interface.js';
import { VersionWindow } from './mvcc.js';
import { WriteOps, type ShardStorage } from './storage.js';

interface Queued extends PendingWrites {
  commitVersion: number;
  /** 'prepared': waiting for the coordinator's decision; 'ready': apply at the next flush. */
  state: 'prepared' | 'ready';
  mutations: ShardMutation[];
  sync: boolean;
  /** Whether this is part of a cross-shard commit (for the shard.after-apply failpoint). */
  twoPhase: boolean;
  decision?: { key: Uint8Array; value: Uint8Array };
  /** Request to answer once applied. */
  replyId: number;
}

/** One group commit between beginApply and endApply. */
export interface ApplyBatch {
  replyIds: number[];
  ops: WriteOps;
  /** fsync the WAL (some commit asked for it and the server is durable). */
  sync: boolean;
  twoPhase: boolean;
}

/** Point reads of the first RocksDB multi-get of a budgeted reply, before value sizes are known. */
const GETS_CHUNK = 16;

export class Shard {
  readonly window: VersionWindow;
  private readonly queue: Queued[] = [];
  private readonly byVersion = new Map<number, Queued>();
  private readonly forgets: Uint8Array[] = [];
  private appliedVersion: number;
  private readonly watermarkKey: Uint8Array;
  readonly counters = { reads: 0, commits: 0, conflicts: 0, fsyncs: 0, batches: 0, busyMs: 0 };

  constructor(
    private readonly storage: ShardStorage,
    readonly shardId: number,
    appliedVersion: number,
    private readonly failpoints: Failpoints,
    private readonly durable = true,
  ) {
    this.appliedVersion = appliedVersion;
    this.window = new VersionWindow(appliedVersion);
    this.watermarkKey = appliedKey(shardId);
  }

  /** Handles one request; its reply goes to `replies` now, or at a later flush (commits), or never (forget, horizon). */
  handle(req: ShardRequest, replies: ShardReply[]): void {
    try {
      switch (req.t) {
        case 'gets':
          replies.push(this.gets(req.id, unpackBytes(req.keys) as Uint8Array[], req.readVersions, req.maxBytes ?? Infinity));
          return;
        case 'range':
          replies.push(this.range(req));
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
          this.window.prune(req.horizon);
          return;
        case 'stats':
          replies.push({ id: req.id, stats: this.stats() });
          return;
      }
    } catch (err) {
      replies.push({ id: req.id, error: toWireError(err) });
    }
  }

  /** Handles a batch of requests in arrival order. */
  handleBatch(batch: ShardRequest[], replies: ShardReply[]): void {
    for (const req of batch) this.handle(req, replies);
  }

  private tooOld(readVersion: number): WireError {
    return { code: 'TOO_OLD', message: `read version ${readVersion} is older than the MVCC window (oldest readable ${this.window.horizon})` };
  }

  private checkReadable(readVersion: number): void {
    if (readVersion < this.window.horizon) throw TxnError.fromWire(this.tooOld(readVersion));
  }

  /** Many point reads in one RocksDB multi-get and one reply. */
  private gets(id: number, keys: Uint8Array[], versions: number[], maxBytes: number): ShardReply {
    // read in small chunks and stop once the reply holds maxBytes of values (after at
    // least one): the reply's memory is bounded, the rest is refused (retryable)
    const values: (Uint8Array | null)[] = new Array(keys.length).fill(null);
    let errors: (WireError | null)[] | null = null;
    let bytes = 0;
    let chunk: (Uint8Array | null | undefined)[] = [];
    let chunkStart = 0;
    let chunkEnd = 0;
    for (let i = 0; i < keys.length; i++) {
      if (i === chunkEnd) {
        // as many keys as the budget left probably holds, judged by the values so far
        // (all of them when values are small, the common case: one multi-get)
        const left = maxBytes - bytes;
        const n = i === 0 ? (maxBytes === Infinity ? keys.length : GETS_CHUNK) : bytes === 0 ? i : Math.max(GETS_CHUNK, Math.ceil(left / (bytes / i)));
        chunkStart = i;
        chunkEnd = Math.min(keys.length, i + n);
        chunk = this.storage.getMany(chunkStart === 0 && chunkEnd === keys.length ? keys : keys.slice(chunkStart, chunkEnd)) as (Uint8Array | null | undefined)[];
      }
      if (bytes >= maxBytes && i > 0) {
        errors ??= new Array(keys.length).fill(null);
        const refusal: WireError = { code: 'RESOURCE_CONSTRAINED', message: `reply memory budget reached: ${bytes} bytes of values in this reply; limit ${maxBytes}` };
        for (let j = i; j < keys.length; j++) errors[j] = refusal;
        break;
      }
      values[i] = chunk[i - chunkStart] ?? null;
      const rv = versions[i]!;
      if (rv < this.window.horizon) {
        errors ??= new Array(keys.length).fill(null);
        errors[i] = this.tooOld(rv);
        values[i] = null;
        continue;
      }
      if (values[i] === undefined) values[i] = null;
      if (rv < this.window.newestVersion) {
        const r = this.window.resolve(keyString(keys[i]!), rv);
        if (r.overridden) values[i] = r.value;
      }
      bytes += values[i]?.length ?? 0;
    }
    this.counters.reads += keys.length;
    return { id, values: packBytes(values), errors };
  }

  /**
   * Range read at a version: RocksDB rows (latest state) merged with the window's
   * corrections for keys changed after the read version. Stops at `limit` rows or
   * `maxBytes`; `more` says whether rows remain in this shard's part of the range.
   */
  private range(req: RangeRequest): ShardReply {
    this.checkReadable(req.readVersion);
    this.counters.reads++;
    const { readVersion, limit, reverse } = req;
    const beginS = keyString(req.begin);
    const endS = keyString(req.end);
    // keys changed after the read version, with their values at the read version
    const changed = this.window.changedAfter(readVersion, beginS, endS);
    const changedSet = new Set(changed);
    const overlay: { key: string; value: Uint8Array }[] = [];
    for (const k of changed) {
      const r = this.window.resolve(k, readVersion);
      if (r.overridden && r.value !== null) overlay.push({ key: k, value: r.value });
    }
    if (reverse) overlay.reverse();

    const out: Uint8Array[] = [];
    let rows = 0;
    let bytes = 0;
    let oi = 0;
    const scan = this.storage.scan(req.begin, req.end, reverse);
    try {
      let chunk: Buffer[] = [];
      let ci = 0;
      const chunkSize = Math.min(Math.max(limit + 1, 16), 1000);
      // next RocksDB row not overridden by the window, or null at the end
      const nextBase = (): { key: Buffer; keyS: string | null; value: Buffer } | null => {
        for (;;) {
          if (ci >= chunk.length) {
            if (scan.finished) return null;
            chunk = scan.next(chunkSize);
            ci = 0;
            if (chunk.length === 0) return null;
          }
          const key = chunk[ci]!;
          const value = chunk[ci + 1]!;
          ci += 2;
          if (changedSet.size > 0) {
            const ks = keyString(key);
            if (changedSet.has(ks)) continue;
            return { key, keyS: ks, value };
          }
          return { key, keyS: null, value };
        }
      };
      let base = nextBase();
      for (;;) {
        const ov = oi < overlay.length ? overlay[oi]! : null;
        if (!base && !ov) break;
        if (rows >= limit || (rows > 0 && bytes >= req.maxBytes)) {
          return { id: req.id, kvs: packBytes(out), more: true };
        }
        let takeOverlay: boolean;
        if (!base) takeOverlay = true;
        else if (!ov) takeOverlay = false;
        else {
          const bk = base.keyS ?? keyString(base.key);
          takeOverlay = reverse ? ov.key > bk : ov.key < bk;
        }
        if (takeOverlay) {
          const k = keyFromString(ov!.key);
          out.push(k, ov!.value);
          bytes += k.length + ov!.value.length;
          oi++;
        } else {
          out.push(base!.key, base!.value);
          bytes += base!.key.length + base!.value.length;
          base = nextBase();
        }
        rows++;
      }
      return { id: req.id, kvs: packBytes(out), more: false };
    } finally {
      scan.close();
    }
  }

  private enqueue(req: CommitRequest | PrepareRequest, state: 'prepared' | 'ready', replies: ShardReply[]): void {
    const reads = readRangeSet(unpackBytes(req.reads) as Uint8Array[]);
    const mutations = unpackMutations(req.mutations);
    const outcome = checkConflicts(req.readVersion, reads, this.window, this.queue);
    if (outcome === 'TOO_OLD') {
      this.counters.conflicts++;
      replies.push({ id: req.id, error: this.tooOld(req.readVersion) });
      return;
    }
    if (outcome === 'CONFLICT') {
      this.counters.conflicts++;
      replies.push({ id: req.id, error: { code: 'CONFLICT', message: `a key read at version ${req.readVersion} was written by a later commit` } });
      return;
    }
    if (mutations.length === 0) {
      // read-only participant of a cross-shard commit: checked, nothing to hold
      replies.push({ id: req.id, ok: true });
      return;
    }
    const keys: string[] = [];
    const ranges: [string, string][] = [];
    for (const m of mutations) {
      if (m.kind === MutationKind.ClearRange) ranges.push([keyString(m.key), keyString(m.param)]);
      else keys.push(keyString(m.key));
    }
    const q: Queued = {
      commitVersion: req.commitVersion,
      state,
      mutations,
      keys,
      ranges,
      sync: req.t === 'commit' ? req.sync : false,
      twoPhase: req.t === 'prepare',
      replyId: req.id,
    };
    const last = this.queue[this.queue.length - 1];
    if ((last && last.commitVersion >= q.commitVersion) || q.commitVersion <= this.appliedVersion) {
      throw new Error(`shard ${this.shardId}: commit ${q.commitVersion} arrived out of version order`);
    }
    this.queue.push(q);
    this.byVersion.set(q.commitVersion, q);
    if (state === 'prepared') {
      replies.push({ id: req.id, ok: true });
      this.failpoints.hitShard('shard.after-prepare', this.shardId);
    }
  }

  private decide(req: DecideRequest, replies: ShardReply[]): void {
    const q = this.byVersion.get(req.commitVersion);
    if (!q || q.state !== 'prepared') {
      throw new Error(`shard ${this.shardId}: decision for ${req.commitVersion}, which is not prepared here`);
    }
    if (!req.commit) {
      this.byVersion.delete(req.commitVersion);
      this.queue.splice(this.queue.indexOf(q), 1);
      replies.push({ id: req.id, ok: true });
      return;
    }
    q.state = 'ready';
    q.sync = req.sync;
    q.decision = req.decision;
    q.replyId = req.id;
  }

  /**
   * Takes every decided commit at the head of the queue and turns it into one atomic
   * write (group commit), recording each commit in the MVCC window at once: later
   * conflict checks and reads at older versions see it from now on, while reads at
   * newer versions cannot happen before the write is acknowledged (the oracle passes
   * a version only once its shards replied). Pair with endApply() once the write is
   * done (durable when `sync`). Null when there is nothing to write.
   */
  beginApply(): ApplyBatch | null {
    let n = 0;
    while (n < this.queue.length && this.queue[n]!.state === 'ready') n++;
    if (n === 0 && this.forgets.length === 0) return null;
    const started = performance.now();
    const commits = this.queue.splice(0, n);
    const ops = new WriteOps();
    const view = new BatchView(this.storage, commits);
    let sync = false;
    let twoPhase = false;
    for (const c of commits) {
      const before = this.applyMutations(c.mutations, ops, view);
      if (c.decision) ops.putMeta(c.decision.key, c.decision.value);
      sync ||= c.sync || c.decision !== undefined;
      twoPhase ||= c.twoPhase;
      this.byVersion.delete(c.commitVersion);
      this.window.record(c.commitVersion, before, c.ranges as [string, string][]);
    }
    for (const k of this.forgets.splice(0)) ops.delMeta(k);
    if (commits.length > 0) {
      this.appliedVersion = commits[commits.length - 1]!.commitVersion;
      ops.putMeta(this.watermarkKey, encodeVersion(this.appliedVersion));
    }
    this.counters.busyMs += performance.now() - started;
    return { replyIds: commits.map((c) => c.replyId), ops, sync: sync && this.durable, twoPhase };
  }

  /**
   * Applies one commit's mutation list to `ops`, reading current values through `view`
   * (RocksDB as of the last write, overridden by what this batch already wrote) and
   * updating it. Returns each changed key's value before the commit (for the window).
   */
  private applyMutations(mutations: readonly ShardMutation[], ops: WriteOps, view: BatchView): Map<string, Uint8Array | null> {
    const changes = new Map<string, Uint8Array | null>();
    for (const m of mutations) {
      if (m.kind === MutationKind.ClearRange) {
        for (const [s, row] of view.rowsIn(m.key, m.param)) {
          if (!changes.has(s)) changes.set(s, row.value);
          view.set(s, null);
          ops.del(row.key);
        }
        continue;
      }
      const s = keyString(m.key);
      if (!changes.has(s)) changes.set(s, view.get(s));
      // an atomic operation is a set (or clear) of what it makes of the value at this version
      const value = m.kind === MutationKind.Set ? m.param : isAtomicType(m.kind) ? applyAtomic(m.kind, view.get(s), m.param) : null;
      if (value !== null) {
        view.set(s, value);
        ops.put(m.key, value);
      } else {
        view.set(s, null);
        ops.del(m.key);
      }
    }
    return changes;
  }

  /** The write of `batch` is done: answer its commits. */
  endApply(batch: ApplyBatch, replies: ShardReply[]): void {
    if (batch.sync) this.counters.fsyncs++;
    this.counters.batches++;
    for (const id of batch.replyIds) replies.push({ id, ok: true });
    this.counters.commits += batch.replyIds.length;
    if (batch.twoPhase) this.failpoints.hitShard('shard.after-apply', this.shardId);
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
      queued: this.queue.length,
      estimatedKeys: est.keys,
      estimatedBytes: est.bytes,
      ...this.counters,
    };
  }
}

/** One write batch being built: what RocksDB holds as of the last write, overridden by the batch so far. */
class BatchView {
  private readonly pending = new Map<string, Uint8Array | null>();
  private readonly current = new Map<string, Uint8Array | null>();

  constructor(
    private readonly storage: ShardStorage,
    commits: readonly Queued[],
  ) {
    // one multi-get for the before-images of every point write of the batch
    const pointKeys = new Map<string, Uint8Array>();
    for (const c of commits) for (const m of c.mutations) if (m.kind !== MutationKind.ClearRange) pointKeys.set(keyString(m.key), m.key);
    if (pointKeys.size > 0) {
      const vs = storage.getMany([...pointKeys.values()]);
      let i = 0;
      for (const s of pointKeys.keys()) this.current.set(s, vs[i++] ?? null);
    }
  }

  get(s: string): Uint8Array | null {
    return this.pending.has(s) ? this.pending.get(s)! : (this.current.get(s) ?? null);
  }

  set(s: string, v: Uint8Array | null): void {
    this.pending.set(s, v);
  }

  /** Rows of [begin, end) as they stand now. */
  rowsIn(begin: Uint8Array, end: Uint8Array): Map<string, { key: Uint8Array; value: Uint8Array }> {
    const out = new Map<string, { key: Uint8Array; value: Uint8Array }>();
    const scan = this.storage.scan(begin, end, false);
    try {
      for (;;) {
        const rows = scan.next(1000);
        if (rows.length === 0) break;
        for (let i = 0; i < rows.length; i += 2) out.set(keyString(rows[i]!), { key: rows[i]!, value: rows[i + 1]! });
      }
    } finally {
      scan.close();
    }
    const b = keyString(begin);
    const e = keyString(end);
    for (const [s, v] of this.pending) {
      if (s < b || s >= e) continue;
      if (v === null) out.delete(s);
      else out.set(s, { key: keyFromString(s), value: v });
    }
    return out;
  }
}

function readRangeSet(flat: Uint8Array[]): RangeSet {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([keyString(flat[i]!), keyString(flat[i + 1]!)]);
  return RangeSet.from(pairs);
}
