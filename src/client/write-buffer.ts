// Read-your-writes: a transaction's buffered mutations, and the merge of them into
// the server's read results. Pure and browser-safe (no I/O), unit-tested directly.
//
// Two views of the same calls:
// - `log`: every mutation in call order, sent with commit in that order (the server
//   applies a commit's mutations in order, so a clearRange after a
//   setVersionstampedKey clears it when the final key falls in the range). An entry
//   made pointless by a later call (a set overwritten by a later set or clear of the
//   same key, or by a clearRange covering it) is dropped (set to null) so the request
//   stays small; a versionstamped key is never dropped, its final key is unknown.
// - `points` (the last point operation of each key, with its place in the log) and
//   `cleared` (the merged cleared ranges): what reads inside the transaction see.
import { TxnError } from '../errors.js';
import { keyFromString, keyString } from '../keys/bytes.js';
import { MAX_TRANSACTION_BYTES, mutationBytes } from '../keys/limits.js';
import { applyAtomic } from '../keys/atomic.js';
import type { MutationMsg } from '../protocol/codec.js';

export type PointOp =
  | { kind: 'set'; key: Uint8Array; value: Uint8Array; at: number }
  | { kind: 'clear'; key: Uint8Array; at: number }
  | { kind: 'vsv'; key: Uint8Array; value: Uint8Array; offset: number; at: number }
  /**
   * Atomic operations on a value the transaction does not know (the database's at
   * commit), in call order, at log places `ats` (`at` = the first); `after` is a
   * pending versionstamped value they apply to.
   */
  | { kind: 'atomic'; key: Uint8Array; ops: AtomicStep[]; at: number; ats: number[]; after?: Extract<PointOp, { kind: 'vsv' }> };

export interface AtomicStep {
  type: number;
  param: Uint8Array;
}

export type Lookup =
  | { kind: 'none' }
  | { kind: 'value'; value: Uint8Array | null }
  | { kind: 'unreadable' }
  /** The value is the database's with these atomic operations applied (read-your-writes). */
  | { kind: 'atomic'; ops: AtomicStep[] };

/** The database value `base` with buffered atomic operations applied in order. */
export function applySteps(base: Uint8Array | null, ops: readonly AtomicStep[]): Uint8Array | null {
  let v = base;
  for (const op of ops) v = applyAtomic(op.type, v, op.param);
  return v;
}

/** Wire mutation types (schemas/txkv.fbs MutationType). */
export const MUTATION = { set: 0, clear: 1, clearRange: 2, setVersionstampedKey: 3, setVersionstampedValue: 4 } as const;

/**
 * Stands in merge() results for the value of a key with a pending versionstamped
 * value: a read whose result includes such a row fails (accessed unreadable).
 */
export const UNREADABLE: Uint8Array = new Uint8Array(0);

const NONE: Lookup = { kind: 'none' };
const CLEARED: Lookup = { kind: 'value', value: null };
const EMPTY = new Uint8Array(0);

export class WriteBuffer {
  private readonly points = new Map<string, PointOp>();
  private sortedCache: string[] | null = null;
  /** Disjoint, sorted cleared ranges [begin, end) as latin-1 strings (touching ranges are merged). */
  private cleared: [string, string][] = [];
  /** Every mutation in call order; null = superseded by a later call. */
  private readonly log: (MutationMsg | null)[] = [];
  private live = 0;
  private bytes = 0;

  get empty(): boolean {
    return this.live === 0;
  }

  get size(): number {
    return this.bytes;
  }

  /** Counts bytes toward the transaction limit (keys/limits.ts mutationBytes); throws TRANSACTION_TOO_LARGE past it. */
  addBytes(n: number): void {
    if (this.bytes + n > MAX_TRANSACTION_BYTES) {
      throw new TxnError('TRANSACTION_TOO_LARGE', `transaction would be ${this.bytes + n} bytes; limit ${MAX_TRANSACTION_BYTES}`);
    }
    this.bytes += n;
  }

  private append(m: MutationMsg): number {
    this.log.push(m);
    this.live++;
    return this.log.length - 1;
  }

  private drop(at: number): void {
    if (this.log[at] !== null) {
      this.log[at] = null;
      this.live--;
    }
  }

  /** Drops every log entry of a point operation. */
  private dropPoint(op: PointOp): void {
    this.drop(op.at);
    if (op.kind === 'atomic') {
      for (const at of op.ats) this.drop(at);
      if (op.after) this.drop(op.after.at);
    }
  }

  /** A point operation: it supersedes the key's earlier point operation. */
  private putPoint(op: PointOp): void {
    const s = keyString(op.key);
    const old = this.points.get(s);
    if (old) this.dropPoint(old);
    else if (this.sortedCache !== null) {
      // a new key enters the sorted keys in place (a re-sort per new key after every
      // range read or clearRange was quadratic in the transaction's size)
      const keys = this.sortedCache;
      const i = lowerBound(keys, s);
      if (i === keys.length) keys.push(s);
      else keys.splice(i, 0, s);
    }
    this.points.set(s, op);
  }

  /**
   * An atomic operation (wire type 5..14). On a value the buffer knows (set, cleared)
   * it folds into that value at once and is sent as the set (or clear) it makes;
   * otherwise it is sent as is, and reads apply it to the database's value.
   */
  atomic(key: Uint8Array, type: number, param: Uint8Array): void {
    const s = keyString(key);
    const op = this.points.get(s);
    const known = op ? (op.kind === 'set' ? op.value : op.kind === 'clear' ? null : undefined) : this.isCleared(s) ? null : undefined;
    if (known !== undefined) {
      const v = applyAtomic(type, known, param);
      if (v === null) this.clear(key);
      else this.set(key, v);
      return;
    }
    this.addBytes(mutationBytes(key.length, param.length));
    const at = this.append({ type, key, param, offset: 0 });
    const step = { type, param };
    if (op?.kind === 'atomic') {
      op.ops.push(step);
      op.ats.push(at);
    } else if (op?.kind === 'vsv') {
      // the stamped value stays in the log: these apply to it at commit
      this.points.set(s, { kind: 'atomic', key, ops: [step], at, ats: [], after: op });
    } else {
      this.putPoint({ kind: 'atomic', key, ops: [step], at, ats: [] });
    }
  }

  set(key: Uint8Array, value: Uint8Array): void {
    this.addBytes(mutationBytes(key.length, value.length));
    const at = this.append({ type: MUTATION.set, key, param: value, offset: 0 });
    this.putPoint({ kind: 'set', key, value, at });
  }

  clear(key: Uint8Array): void {
    this.addBytes(mutationBytes(key.length, 0));
    const at = this.append({ type: MUTATION.clear, key, param: EMPTY, offset: 0 });
    this.putPoint({ kind: 'clear', key, at });
  }

  setVersionstampedValue(key: Uint8Array, value: Uint8Array, offset: number): void {
    this.addBytes(mutationBytes(key.length, value.length));
    const at = this.append({ type: MUTATION.setVersionstampedValue, key, param: value, offset });
    this.putPoint({ kind: 'vsv', key, value, offset, at });
  }

  setVersionstampedKey(key: Uint8Array, offset: number, value: Uint8Array): void {
    this.addBytes(mutationBytes(key.length, value.length));
    // the final key is known only at commit: nothing to read back, nothing it supersedes
    this.append({ type: MUTATION.setVersionstampedKey, key, param: value, offset });
  }

  /** [begin, end); begin >= end is an empty range (the caller refuses inverted ones). */
  clearRange(begin: Uint8Array, end: Uint8Array): void {
    const b = keyString(begin);
    const e = keyString(end);
    if (b >= e) return;
    this.addBytes(mutationBytes(begin.length, end.length, true));
    // the buffered point writes of [b, e) go: they are one run of the sorted keys
    const keys = this.sortedKeys();
    const from = lowerBound(keys, b);
    let to = from;
    for (; to < keys.length && keys[to]! < e; to++) {
      this.dropPoint(this.points.get(keys[to]!)!);
      this.points.delete(keys[to]!);
    }
    if (to > from) keys.splice(from, to - from);
    this.append({ type: MUTATION.clearRange, key: begin, param: end, offset: 0 });
    // merge into the disjoint sorted list (touching ranges merged, so ends are sorted too):
    // the ranges it touches are one run, replaced by their union. A rebuild and sort of
    // the whole list per call made 20,000 clearRanges in one transaction take minutes.
    const cl = this.cleared;
    let lo = 0;
    let hi = cl.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cl[mid]![1] < b) lo = mid + 1;
      else hi = mid;
    }
    let stop = lo;
    while (stop < cl.length && cl[stop]![0] <= e) stop++;
    const nb = stop > lo && cl[lo]![0] < b ? cl[lo]![0] : b;
    const ne = stop > lo && cl[stop - 1]![1] > e ? cl[stop - 1]![1] : e;
    cl.splice(lo, stop - lo, [nb, ne]);
  }

  /** Index of the cleared range holding `s`, or -1. */
  private clearedAt(s: string): number {
    let lo = 0;
    let hi = this.cleared.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const [b, e] = this.cleared[mid]!;
      if (s < b) hi = mid - 1;
      else if (s >= e) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  private isCleared(s: string): boolean {
    return this.clearedAt(s) >= 0;
  }

  /** What the buffer says about one key: nothing, a value (null = cleared), or unreadable (pending versionstamp). */
  lookup(key: Uint8Array): Lookup {
    if (this.empty) return NONE;
    const s = keyString(key);
    const op = this.points.get(s);
    if (op) {
      if (op.kind === 'set') return { kind: 'value', value: op.value };
      if (op.kind === 'clear') return CLEARED;
      if (op.kind === 'atomic' && !op.after) return { kind: 'atomic', ops: op.ops };
      return { kind: 'unreadable' };
    }
    return this.isCleared(s) ? CLEARED : NONE;
  }

  private sortedKeys(): string[] {
    return (this.sortedCache ??= [...this.points.keys()].sort());
  }

  private pointKeysIn(b: string, e: string): string[] {
    const keys = this.sortedKeys();
    const out: string[] = [];
    for (let i = lowerBound(keys, b); i < keys.length && keys[i]! < e; i++) out.push(keys[i]!);
    return out;
  }

  /** Whether anything buffered can change the rows of [b, e). */
  touches(b: Uint8Array, e: Uint8Array): boolean {
    if (this.empty) return false;
    const bs = keyString(b);
    const es = keyString(e);
    if (this.pointKeysIn(bs, es).length > 0) return true;
    return this.cleared.some(([rb, re]) => rb < es && re > bs);
  }

  /** Number of buffered point operations in [b, e): each may hide one server row (bounds extra rows to fetch). */
  hidingOpsIn(b: Uint8Array, e: Uint8Array): number {
    return this.pointKeysIn(keyString(b), keyString(e)).length;
  }

  /**
   * [b, e) narrowed so that neither end lies inside a buffered cleared range: the
   * server need not be asked for rows the transaction cleared (FoundationDB answers
   * cleared spans from its write map too). A cleared span in the middle stays; the
   * caller narrows again after each page.
   */
  skipCleared(b: Uint8Array, e: Uint8Array): [Uint8Array, Uint8Array] {
    if (this.cleared.length === 0) return [b, e];
    let bs = keyString(b);
    let es = keyString(e);
    let nb = b;
    let ne = e;
    const i = this.clearedAt(bs);
    if (i >= 0) {
      bs = this.cleared[i]![1];
      nb = keyFromString(bs);
    }
    // the last cleared range with begin < e: if it reaches e, the rows just below e are cleared
    let lo = 0;
    let hi = this.cleared.length - 1;
    let j = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cleared[mid]![0] < es) {
        j = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (j >= 0 && this.cleared[j]![1] >= es) {
      es = this.cleared[j]![0];
      ne = keyFromString(es);
    }
    return bs < es ? [nb, ne] : [nb, nb];
  }

  /**
   * The rows of [b, e) the transaction sees: the server's rows (flat [k, v, ...], in
   * scan order) with buffered sets, clears and cleared ranges applied. A key with a
   * pending versionstamped value comes out with the value UNREADABLE. When the
   * server has more rows than it sent (`complete` false), rows past the last server
   * key are left out: unfetched server rows may lie between them.
   */
  merge(serverKvs: Uint8Array[], b: Uint8Array, e: Uint8Array, reverse: boolean, complete: boolean): [Uint8Array, Uint8Array][] {
    const own = this.pointKeysIn(keyString(b), keyString(e)).filter((s) => this.points.get(s)!.kind !== 'clear');
    if (reverse) own.reverse();
    const out: [Uint8Array, Uint8Array][] = [];
    // server values of keys with pending atomic operations (absent = the key is absent)
    const atomicBase = new Map<string, Uint8Array>();
    const pushOwn = (s: string): void => {
      const op = this.points.get(s)!;
      if (op.kind === 'set') out.push([op.key, op.value]);
      else if (op.kind === 'atomic' && !op.after) {
        const v = applySteps(atomicBase.get(s) ?? null, op.ops);
        if (v !== null) out.push([op.key, v]);
      } else out.push([op.key, UNREADABLE]);
    };
    let oi = 0;
    let last: string | null = null;
    for (let i = 0; i + 1 < serverKvs.length; i += 2) {
      const k = serverKvs[i]!;
      const s = keyString(k);
      last = s;
      while (oi < own.length && (reverse ? own[oi]! > s : own[oi]! < s)) pushOwn(own[oi++]!);
      const op = this.points.get(s);
      if (op?.kind === 'atomic') atomicBase.set(s, serverKvs[i + 1]!);
      if (op || this.isCleared(s)) continue; // overwritten or cleared in this transaction
      out.push([k, serverKvs[i + 1]!]);
    }
    while (oi < own.length) {
      const s = own[oi]!;
      if (!complete && (last === null || (reverse ? s < last : s > last))) break;
      pushOwn(s);
      oi++;
    }
    return out;
  }

  /** The mutations to send with commit, in call order (superseded ones left out). */
  mutations(): MutationMsg[] {
    const out: MutationMsg[] = [];
    for (const m of this.log) if (m !== null) out.push(m);
    return out;
  }
}

/** The first index of sorted `keys` whose key is >= s (keys.length when none). */
function lowerBound(keys: readonly string[], s: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < s) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
