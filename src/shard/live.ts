// Watches and change feeds on one shard (worker thread). The shard that applies a
// change is the one that notices it: Shard.beginApply tells this module each commit's
// net effect (cleared ranges, then point writes) and endApply hands the results (fired
// watches, changes of subscribed ranges) to the coordinator as events, in the same
// message as and ahead of the commit replies, so an event always reaches the
// coordinator before the commit it describes is acknowledged.
// Watches cost the commit path nothing while none is registered. Feeds replay from a
// log of each commit's resulting changes kept for the MVCC window (pruned with it), so
// a subscription may start at any version the window holds.
import { createHash } from 'node:crypto';
import { keyString } from '../keys/bytes.js';
import { MutationKind, packMutations, unpackBytes, type ChangeRecord, type ShardMutation, type ShardReply } from './interface.js';

interface Watch {
  watchId: number;
  present: boolean;
  /** The watched value's length. */
  length: number;
  /**
   * The watched value itself when short, else its SHA-256: a client may hold
   * limits.maxWatchesPerConnection watches of 100 KB values, and keeping each value
   * held ~1.2 GB of a shard's memory per connection (10,000 watches of one 100 KB value).
   */
  seen: Uint8Array;
}

/** Values up to this many bytes are kept as they are; longer ones as their SHA-256. */
const WATCH_VALUE_KEPT_BYTES = 64;

function watchDigest(v: Uint8Array): Uint8Array {
  return v.length <= WATCH_VALUE_KEPT_BYTES ? v.slice() : new Uint8Array(createHash('sha256').update(v).digest());
}

/** A value source for the keys of the commit being applied (the batch's view). */
export interface ValueView {
  get(s: string): Uint8Array | null;
}

/**
 * The distinct keys the commit being applied point-wrote, in order of first write, with
 * their values after it (Shard's batch view): the key i is `writeKeyLength(i)` bytes of
 * `writeKeyData(i)` at `writeKeyAt(i)`.
 */
export interface CommitWrites extends ValueView {
  readonly writeCount: number;
  writeValue(i: number): Uint8Array | null;
  writeKeyData(i: number): Uint8Array;
  writeKeyAt(i: number): number;
  writeKeyLength(i: number): number;
  writeKeyString(i: number): string;
  writeKeyInRange(i: number, begin: string, end: string): boolean;
}

const EMPTY = new Uint8Array(0);

function sameValue(w: Watch, v: Uint8Array | null): boolean {
  if (v === null) return !w.present;
  if (!w.present || v.length !== w.length) return false;
  const d = v.length <= WATCH_VALUE_KEPT_BYTES ? v : watchDigest(v);
  for (let i = 0; i < d.length; i++) if (d[i] !== w.seen[i]) return false;
  return true;
}

/**
 * The sealed changes of one batch's commits in ONE buffer (seal): i32 count n, i32 lengths
 * of key and param of each change (2n), u8 kinds (n), then the bytes. The log lives as long
 * as the window (5 s), so what it holds per commit outlives every young-generation
 * scavenge and is promoted: one buffer per batch, and per commit only numbers in arrays
 * (logVersion, logFrom, logTo) and a reference (logBatch), no object. An object per commit
 * and a PackedMutations (two objects, three typed arrays) per batch were 174 B per written
 * key of the shard's allocation and most of what it promoted without a client's feed.
 */
type LogBatch = Uint8Array;

/** The changes [from, to) of a sealed batch as views (history). */
function logChanges(b: LogBatch): { kinds: Uint8Array; lens: Int32Array; data: Uint8Array } {
  const n = new Int32Array(b.buffer, b.byteOffset, 1)[0]!;
  const lens = new Int32Array(b.buffer, b.byteOffset + 4, 2 * n);
  const kindsAt = 4 + 8 * n;
  return { kinds: b.subarray(kindsAt, kindsAt + n), lens, data: b.subarray(kindsAt + n) };
}

export class ShardLive {
  private readonly watches = new Map<string, Watch[]>();
  private watchCount = 0;
  private readonly subs = new Map<number, [string, string]>();
  /**
   * Resulting changes of every commit the window holds, oldest first (from logHead on), as
   * parallel arrays (LogBatch says why): the commit's version, its batch's buffer (null
   * until sealed, and again once pruned), its changes [from, to) in that batch.
   */
  private logVersion: number[] = [];
  private logBatch: (LogBatch | null)[] = [];
  private logFrom: number[] = [];
  private logTo: number[] = [];
  private logHead = 0;
  /**
   * Changes of the batch being built (pendingCount of them), packed into one buffer by
   * seal(); its commits are log[sealedUpTo..]. The arrays are reused from batch to batch
   * (only counted, never shrunk: made anew, each batch grew its own by copies).
   */
  private readonly pendingKinds: number[] = [];
  /** Per part (key, then value or end key, of each change): the bytes it is in, where, how many. */
  private readonly pendingSrc: Uint8Array[] = [];
  private readonly pendingAt: number[] = [];
  private readonly pendingLen: number[] = [];
  private pendingCount = 0;
  private pendingBytes = 0;
  private sealedUpTo = 0;
  /** Results of the batch being applied, sent at endApply. */
  private fired: { version: number; watchIds: number[] }[] = [];
  private records: ChangeRecord[] = [];

  /** Registers watches; those whose key already differs fire at once (at `version`, the newest applied). */
  watch(list: { watchId: number; key: Uint8Array; present: boolean; value: Uint8Array }[], current: (keys: Uint8Array[]) => (Uint8Array | null)[], version: number, replies: ShardReply[]): void {
    const now = current(list.map((w) => w.key));
    const fired: number[] = [];
    list.forEach((w, i) => {
      const entry: Watch = { watchId: w.watchId, present: w.present, length: w.value.length, seen: watchDigest(w.value) };
      if (!sameValue(entry, now[i]!)) {
        fired.push(w.watchId);
        return;
      }
      const s = keyString(w.key);
      let arr = this.watches.get(s);
      if (!arr) this.watches.set(s, (arr = []));
      arr.push(entry);
      this.watchCount++;
    });
    if (fired.length > 0) replies.push({ id: 0, event: 'fired', version, watchIds: fired });
  }

  unwatch(ids: number[]): void {
    const drop = new Set(ids);
    for (const [s, arr] of this.watches) {
      const keep = arr.filter((w) => !drop.has(w.watchId));
      this.watchCount -= arr.length - keep.length;
      if (keep.length === 0) this.watches.delete(s);
      else if (keep.length !== arr.length) this.watches.set(s, keep);
    }
  }

  subscribe(subId: number, begin: Uint8Array, end: Uint8Array): void {
    this.subs.set(subId, [keyString(begin), keyString(end)]);
  }

  unsubscribe(subId: number): void {
    this.subs.delete(subId);
  }

  // ---------------------------------------------------------------- commit path

  /**
   * One commit applied: `ranges` it cleared, then the distinct keys it point-wrote
   * (`writes`: its net effect, apply.ts netEffect, each key once, with its value after the
   * commit). Keys are copied from where they are (a request's buffer) into the batch's
   * buffer at seal(): no view, no key string per key unless a watch or a feed needs it.
   */
  commit(version: number, ranges: readonly [Uint8Array, Uint8Array][], writes: CommitWrites): void {
    const kinds = this.pendingKinds;
    const src = this.pendingSrc;
    const at = this.pendingAt;
    const lens = this.pendingLen;
    const from = this.pendingCount;
    let n = from;
    const subscribed = this.subs.size > 0;
    let mine: ShardMutation[] | null = null;
    let rangeStrs: [string, string][] | null = null;
    for (const [b, e] of ranges) {
      const range: [string, string] = [keyString(b), keyString(e)];
      (rangeStrs ??= []).push(range);
      kinds[n] = MutationKind.ClearRange;
      src[2 * n] = b;
      at[2 * n] = 0;
      lens[2 * n] = b.length;
      src[2 * n + 1] = e;
      at[2 * n + 1] = 0;
      lens[2 * n + 1] = e.length;
      n++;
      this.pendingBytes += b.length + e.length;
      if (subscribed && this.subscribedRange(range[0], range[1])) (mine ??= []).push({ kind: MutationKind.ClearRange, key: b, param: e });
    }
    const watched = this.watchCount > 0;
    const count = writes.writeCount;
    for (let i = 0; i < count; i++) {
      const v = writes.writeValue(i);
      if (v === null && rangeStrs !== null && rangeStrs.some(([b, e]) => writes.writeKeyInRange(i, b, e))) continue;
      const kd = writes.writeKeyData(i);
      const ka = writes.writeKeyAt(i);
      const kl = writes.writeKeyLength(i);
      kinds[n] = v === null ? MutationKind.Clear : MutationKind.Set;
      src[2 * n] = kd;
      at[2 * n] = ka;
      lens[2 * n] = kl;
      src[2 * n + 1] = v ?? EMPTY;
      at[2 * n + 1] = 0;
      lens[2 * n + 1] = v?.length ?? 0;
      n++;
      this.pendingBytes += kl + (v?.length ?? 0);
      if (subscribed && this.subscribed(writes.writeKeyString(i))) {
        const key = kd.slice(ka, ka + kl);
        (mine ??= []).push(v === null ? { kind: MutationKind.Clear, key, param: EMPTY } : { kind: MutationKind.Set, key, param: v });
      }
    }
    this.pendingCount = n;
    if (n > from) {
      this.logVersion.push(version);
      this.logBatch.push(null);
      this.logFrom.push(from);
      this.logTo.push(n);
    }
    if (watched) {
      const seen = new Set<string>();
      for (let i = 0; i < count; i++) seen.add(writes.writeKeyString(i));
      this.fire(version, seen, rangeStrs ?? [], writes);
    }
    if (mine !== null) this.records.push({ version, mutations: packMutations(mine) });
  }

  /** The batch is built: its commits' changes become one buffer in the log (Shard.beginApply). */
  seal(): void {
    const n = this.pendingCount;
    if (n === 0) return;
    const kindsAt = 4 + 8 * n;
    const batch: LogBatch = new Uint8Array(kindsAt + n + this.pendingBytes);
    const lens = new Int32Array(batch.buffer, 0, 1 + 2 * n);
    lens[0] = n;
    const kinds = this.pendingKinds;
    const src = this.pendingSrc;
    const at = this.pendingAt;
    const len = this.pendingLen;
    let o = kindsAt + n;
    for (let i = 0; i < n; i++) batch[kindsAt + i] = kinds[i]!;
    for (let j = 0; j < 2 * n; j++) {
      const d = src[j]!;
      const a = at[j]!;
      const l = len[j]!;
      lens[1 + j] = l;
      if (l <= 64) for (let x = 0; x < l; x++) batch[o + x] = d[a + x]!;
      else batch.set(a === 0 && l === d.length ? d : d.subarray(a, a + l), o);
      o += l;
    }
    for (let i = this.sealedUpTo; i < this.logBatch.length; i++) this.logBatch[i] = batch;
    this.sealedUpTo = this.logBatch.length;
    // the references go now (they hold the request buffers); the arrays stay for the next batch
    src.fill(EMPTY, 0, 2 * n);
    this.pendingCount = 0;
    this.pendingBytes = 0;
  }

  private fire(version: number, points: Set<string>, ranges: [string, string][], view: ValueView): void {
    const ids: number[] = [];
    const check = (s: string): void => {
      const arr = this.watches.get(s);
      if (!arr) return;
      const v = view.get(s);
      const keep = arr.filter((w) => {
        if (sameValue(w, v)) return true;
        ids.push(w.watchId);
        return false;
      });
      this.watchCount -= arr.length - keep.length;
      if (keep.length === 0) this.watches.delete(s);
      else if (keep.length !== arr.length) this.watches.set(s, keep);
    };
    for (const s of points) check(s);
    if (ranges.length > 0) {
      for (const s of [...this.watches.keys()]) if (!points.has(s) && ranges.some(([b, e]) => s >= b && s < e)) check(s);
    }
    if (ids.length > 0) this.fired.push({ version, watchIds: ids });
  }

  private subscribed(s: string): boolean {
    for (const [b, e] of this.subs.values()) if (s >= b && s < e) return true;
    return false;
  }

  private subscribedRange(b: string, e: string): boolean {
    for (const [sb, se] of this.subs.values()) if (sb < e && b < se) return true;
    return false;
  }

  /** Whether the batch being applied produced watch or change-feed events (sent at endApply, ahead of its commit replies). */
  get hasEvents(): boolean {
    return this.fired.length > 0 || this.records.length > 0;
  }

  /** The batch is written: its events go out ahead of its commit replies. */
  drainEvents(replies: ShardReply[]): void {
    for (const f of this.fired) replies.push({ id: 0, event: 'fired', version: f.version, watchIds: f.watchIds });
    if (this.records.length > 0) replies.push({ id: 0, event: 'changes', records: this.records });
    this.fired = [];
    this.records = [];
  }

  /** The window slid: changes of versions <= horizon are no longer kept. */
  prune(horizon: number): void {
    this.seal();
    const versions = this.logVersion;
    while (this.logHead < versions.length && versions[this.logHead]! <= horizon) {
      // drop the commit's keys and values now (a batch's buffer goes with its last commit):
      // the slots themselves go at the next compaction below, which may be 1,024 commits
      // away (with 100 KB values, hundreds of MB held: the soak's memory growth after
      // watches landed)
      this.logBatch[this.logHead] = null;
      this.logHead++;
    }
    if (this.logHead > 1024 && this.logHead * 2 > versions.length) {
      const h = this.logHead;
      this.logVersion = versions.slice(h);
      this.logBatch = this.logBatch.slice(h);
      this.logFrom = this.logFrom.slice(h);
      this.logTo = this.logTo.slice(h);
      this.sealedUpTo -= h;
      this.logHead = 0;
    }
  }

  /** The kept changes of commits after `from` within [begin, end), oldest first. */
  history(from: number, begin: Uint8Array, end: Uint8Array): ChangeRecord[] {
    this.seal();
    const b = keyString(begin);
    const e = keyString(end);
    let lo = this.logHead;
    let hi = this.logVersion.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.logVersion[mid]! > from) hi = mid;
      else lo = mid + 1;
    }
    const out: ChangeRecord[] = [];
    let unpacked: LogBatch | null = null;
    let kinds: Uint8Array = EMPTY;
    let parts: (Uint8Array | null)[] = [];
    for (let i = lo; i < this.logVersion.length; i++) {
      const batch = this.logBatch[i];
      if (batch === null || batch === undefined) continue;
      if (batch !== unpacked) {
        unpacked = batch;
        const c = logChanges(batch);
        kinds = c.kinds;
        parts = unpackBytes({ data: c.data, lens: c.lens });
      }
      const mine: ShardMutation[] = [];
      for (let j = this.logFrom[i]!; j < this.logTo[i]!; j++) {
        const kind = kinds[j]!;
        const key = parts[2 * j]!;
        const param = parts[2 * j + 1]!;
        const k = keyString(key);
        if (kind === MutationKind.ClearRange ? k < e && b < keyString(param) : k >= b && k < e) mine.push({ kind, key, param });
      }
      if (mine.length > 0) out.push({ version: this.logVersion[i]!, mutations: packMutations(mine) });
    }
    return out;
  }
}
