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
import { MutationKind, mutationKey, packBytes, packMutations, unpackBytes, type ChangeRecord, type PackedMutations, type ShardMutation, type ShardReply } from './interface.js';

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

const EMPTY = new Uint8Array(0);

function sameValue(w: Watch, v: Uint8Array | null): boolean {
  if (v === null) return !w.present;
  if (!w.present || v.length !== w.length) return false;
  const d = v.length <= WATCH_VALUE_KEPT_BYTES ? v : watchDigest(v);
  for (let i = 0; i < d.length; i++) if (d[i] !== w.seen[i]) return false;
  return true;
}

/**
 * One commit's resulting changes in the feed log: mutations [from, to) of its batch's
 * packed changes. The changes of a batch's commits are packed into one buffer when the
 * batch is built (seal): the log lives as long as the window (5 s), and objects and
 * views per written key kept that long were copied by two scavenges each and kept every
 * request buffer alive (under w10, the shard threads' GC cost).
 */
interface LogEntry {
  version: number;
  /** Null until the batch is sealed, and again once pruned. */
  batch: PackedMutations | null;
  from: number;
  to: number;
}

export class ShardLive {
  private readonly watches = new Map<string, Watch[]>();
  private watchCount = 0;
  private readonly subs = new Map<number, [string, string]>();
  /** Resulting changes of every commit the window holds, oldest first (from logHead on). */
  private log: LogEntry[] = [];
  private logHead = 0;
  /** Changes of the batch being built, packed into one buffer by seal(). */
  private pendingKinds: number[] = [];
  private pendingParts: Uint8Array[] = [];
  private pendingEntries: LogEntry[] = [];
  /** Results of the batch being applied, sent at endApply. */
  private fired: { version: number; watchIds: number[] }[] = [];
  private records: ChangeRecord[] = [];
  /** The batch being applied or at the log writer (RocksDB may not hold its writes yet); null = none. */
  inflight: { wrote(s: string): Uint8Array | null | undefined } | null = null;

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
   * One commit applied: `ranges` it cleared, then `points` it wrote (its net effect,
   * apply.ts netEffect), `view` giving each key's value after it.
   */
  commit(version: number, ranges: readonly [Uint8Array, Uint8Array][], points: readonly ShardMutation[], view: ValueView): void {
    const kinds = this.pendingKinds;
    const parts = this.pendingParts;
    const from = kinds.length;
    const subscribed = this.subs.size > 0;
    const mine: ShardMutation[] = [];
    const rangeStrs: [string, string][] = [];
    for (const [b, e] of ranges) {
      const range: [string, string] = [keyString(b), keyString(e)];
      rangeStrs.push(range);
      kinds.push(MutationKind.ClearRange);
      parts.push(b, e);
      if (subscribed && this.subscribedRange(range[0], range[1])) mine.push({ kind: MutationKind.ClearRange, key: b, param: e });
    }
    const seen = new Set<string>();
    for (const m of points) {
      const s = mutationKey(m);
      if (seen.has(s)) continue;
      seen.add(s);
      const v = view.get(s);
      if (v === null && rangeStrs.some(([b, e]) => s >= b && s < e)) continue;
      kinds.push(v === null ? MutationKind.Clear : MutationKind.Set);
      parts.push(m.key, v ?? EMPTY);
      if (subscribed && this.subscribed(s)) mine.push(v === null ? { kind: MutationKind.Clear, key: m.key, param: EMPTY } : { kind: MutationKind.Set, key: m.key, param: v });
    }
    if (kinds.length > from) {
      const entry: LogEntry = { version, batch: null, from, to: kinds.length };
      this.log.push(entry);
      this.pendingEntries.push(entry);
    }
    if (this.watchCount > 0) this.fire(version, seen, rangeStrs, view);
    if (mine.length > 0) this.records.push({ version, mutations: packMutations(mine) });
  }

  /** The batch is built: its commits' changes become one packed buffer in the log (Shard.beginApply). */
  seal(): void {
    if (this.pendingEntries.length === 0) return;
    const batch: PackedMutations = { kinds: Uint8Array.from(this.pendingKinds), bytes: packBytes(this.pendingParts) };
    for (const e of this.pendingEntries) e.batch = batch;
    this.pendingKinds = [];
    this.pendingParts = [];
    this.pendingEntries = [];
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
    while (this.logHead < this.log.length && this.log[this.logHead]!.version <= horizon) {
      // drop the entry's keys and values now (a batch's buffer goes with its last entry):
      // the slot itself goes at the next compaction below, which may be 1,024 commits
      // away (with 100 KB values, hundreds of MB held: the soak's memory growth after
      // watches landed)
      this.log[this.logHead]!.batch = null;
      this.logHead++;
    }
    if (this.logHead > 1024 && this.logHead * 2 > this.log.length) {
      this.log = this.log.slice(this.logHead);
      this.logHead = 0;
    }
  }

  /** The kept changes of commits after `from` within [begin, end), oldest first. */
  history(from: number, begin: Uint8Array, end: Uint8Array): ChangeRecord[] {
    this.seal();
    const b = keyString(begin);
    const e = keyString(end);
    let lo = this.logHead;
    let hi = this.log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.log[mid]!.version > from) hi = mid;
      else lo = mid + 1;
    }
    const out: ChangeRecord[] = [];
    let unpacked: PackedMutations | null = null;
    let parts: (Uint8Array | null)[] = [];
    for (let i = lo; i < this.log.length; i++) {
      const { version, batch, from: first, to } = this.log[i]!;
      if (batch === null) continue;
      if (batch !== unpacked) {
        unpacked = batch;
        parts = unpackBytes(batch.bytes);
      }
      const mine: ShardMutation[] = [];
      for (let j = first; j < to; j++) {
        const kind = batch.kinds[j]!;
        const key = parts[2 * j]!;
        const param = parts[2 * j + 1]!;
        const k = keyString(key);
        if (kind === MutationKind.ClearRange ? k < e && b < keyString(param) : k >= b && k < e) mine.push({ kind, key, param });
      }
      if (mine.length > 0) out.push({ version, mutations: packMutations(mine) });
    }
    return out;
  }
}
