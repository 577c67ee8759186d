// Watches and change feeds on one shard (worker thread). The shard that applies a
// change is the one that notices it: Shard.beginApply tells this module each commit's
// net effect (cleared ranges, then point writes) and endApply hands the results (fired
// watches, changes of subscribed ranges) to the coordinator as events, in the same
// message as and ahead of the commit replies, so an event always reaches the
// coordinator before the commit it describes is acknowledged.
// Watches cost the commit path nothing while none is registered. Feeds replay from a
// log of each commit's resulting changes kept for the MVCC window (pruned with it), so
// a subscription may start at any version the window holds.
import { keyString } from '../keys/bytes.js';
import { MutationKind, mutationKey, packMutations, type ChangeRecord, type ShardMutation, type ShardReply } from './interface.js';

interface Watch {
  watchId: number;
  present: boolean;
  value: Uint8Array;
}

/** A value source for the keys of the commit being applied (the batch's view). */
export interface ValueView {
  get(s: string): Uint8Array | null;
}

const EMPTY = new Uint8Array(0);

function sameValue(w: Watch, v: Uint8Array | null): boolean {
  if (v === null) return !w.present;
  if (!w.present || v.length !== w.value.length) return false;
  for (let i = 0; i < v.length; i++) if (v[i] !== w.value[i]) return false;
  return true;
}

export class ShardLive {
  private readonly watches = new Map<string, Watch[]>();
  private watchCount = 0;
  private readonly subs = new Map<number, [string, string]>();
  /** Resulting changes of every commit the window holds, oldest first (from logHead on). */
  private log: { version: number; ms: ShardMutation[] }[] = [];
  private logHead = 0;
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
      const entry: Watch = { watchId: w.watchId, present: w.present, value: w.value };
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
    const ms: ShardMutation[] = [];
    const rangeStrs: [string, string][] = [];
    for (const [b, e] of ranges) {
      rangeStrs.push([keyString(b), keyString(e)]);
      ms.push({ kind: MutationKind.ClearRange, key: b, param: e });
    }
    const seen = new Set<string>();
    for (const m of points) {
      const s = mutationKey(m);
      if (seen.has(s)) continue;
      seen.add(s);
      const v = view.get(s);
      if (v === null && rangeStrs.some(([b, e]) => s >= b && s < e)) continue;
      ms.push(v === null ? { kind: MutationKind.Clear, key: m.key, param: EMPTY } : { kind: MutationKind.Set, key: m.key, param: v });
    }
    if (ms.length > 0) this.log.push({ version, ms });
    if (this.watchCount > 0) this.fire(version, seen, rangeStrs, view);
    if (this.subs.size > 0 && ms.length > 0) {
      const mine = ms.filter((m) =>
        m.kind === MutationKind.ClearRange ? this.subscribedRange(keyString(m.key), keyString(m.param)) : this.subscribed(keyString(m.key)),
      );
      if (mine.length > 0) this.records.push({ version, mutations: packMutations(mine) });
    }
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
    while (this.logHead < this.log.length && this.log[this.logHead]!.version <= horizon) {
      // drop the entry's keys and values now: the slot itself goes at the next compaction
      // below, which may be 1,024 commits away (with 100 KB values, hundreds of MB held:
      // the soak's memory growth after watches landed)
      this.log[this.logHead] = { version: this.log[this.logHead]!.version, ms: [] };
      this.logHead++;
    }
    if (this.logHead > 1024 && this.logHead * 2 > this.log.length) {
      this.log = this.log.slice(this.logHead);
      this.logHead = 0;
    }
  }

  /** The kept changes of commits after `from` within [begin, end), oldest first. */
  history(from: number, begin: Uint8Array, end: Uint8Array): ChangeRecord[] {
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
    for (let i = lo; i < this.log.length; i++) {
      const { version, ms } = this.log[i]!;
      const mine = ms.filter((m) => {
        const k = keyString(m.key);
        return m.kind === MutationKind.ClearRange ? k < e && b < keyString(m.param) : k >= b && k < e;
      });
      if (mine.length > 0) out.push({ version, mutations: packMutations(mine) });
    }
    return out;
  }
}
