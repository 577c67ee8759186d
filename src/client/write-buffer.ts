// Read-your-writes: a transaction's buffered mutations, and the merge of them into
// the server's read results. Pure and browser-safe (no I/O), unit-tested directly.
// The buffer keeps, per key, only the last point operation, plus the merged list of
// cleared ranges; a clearRange drops the point operations it covers. Sending the
// cleared ranges first and the point operations after reproduces the original order.
import { TxnError } from '../errors.js';
import { keyFromString, keyString } from '../keys/bytes.js';
import { MAX_TRANSACTION_BYTES } from '../keys/limits.js';
import type { MutationMsg } from '../protocol/codec.js';

export type PointOp =
  | { kind: 'set'; key: Uint8Array; value: Uint8Array }
  | { kind: 'clear'; key: Uint8Array }
  | { kind: 'vsv'; key: Uint8Array; value: Uint8Array; offset: number };

export type Lookup = { kind: 'none' } | { kind: 'value'; value: Uint8Array | null } | { kind: 'unreadable' };

const NONE: Lookup = { kind: 'none' };
const CLEARED: Lookup = { kind: 'value', value: null };

export class WriteBuffer {
  private readonly points = new Map<string, PointOp>();
  private sortedCache: string[] | null = null;
  /** Disjoint, sorted cleared ranges [begin, end) as latin-1 strings. */
  private cleared: [string, string][] = [];
  private readonly stampedKeys: MutationMsg[] = [];
  private bytes = 0;

  get empty(): boolean {
    return this.points.size === 0 && this.cleared.length === 0 && this.stampedKeys.length === 0;
  }

  get size(): number {
    return this.bytes;
  }

  /** Counts bytes toward the transaction limit; throws TRANSACTION_TOO_LARGE past it. */
  addBytes(n: number): void {
    if (this.bytes + n > MAX_TRANSACTION_BYTES) {
      throw new TxnError('TRANSACTION_TOO_LARGE', `transaction would be ${this.bytes + n} bytes; limit ${MAX_TRANSACTION_BYTES}`);
    }
    this.bytes += n;
  }

  private putPoint(op: PointOp): void {
    const s = keyString(op.key);
    if (!this.points.has(s)) this.sortedCache = null;
    this.points.set(s, op);
  }

  set(key: Uint8Array, value: Uint8Array): void {
    this.addBytes(key.length + value.length);
    this.putPoint({ kind: 'set', key, value });
  }

  clear(key: Uint8Array): void {
    this.addBytes(key.length);
    this.putPoint({ kind: 'clear', key });
  }

  setVersionstampedValue(key: Uint8Array, value: Uint8Array, offset: number): void {
    this.addBytes(key.length + value.length);
    this.putPoint({ kind: 'vsv', key, value, offset });
  }

  setVersionstampedKey(key: Uint8Array, offset: number, value: Uint8Array): void {
    this.addBytes(key.length + value.length);
    this.stampedKeys.push({ type: 3, key, param: value, offset });
  }

  clearRange(begin: Uint8Array, end: Uint8Array): void {
    const b = keyString(begin);
    const e = keyString(end);
    if (b >= e) return;
    this.addBytes(begin.length + end.length);
    for (const k of this.pointKeysIn(b, e)) this.points.delete(k);
    this.sortedCache = null;
    // merge into the disjoint sorted list
    const out: [string, string][] = [];
    let nb = b;
    let ne = e;
    for (const [rb, re] of this.cleared) {
      if (re < nb || rb > ne) out.push([rb, re]);
      else {
        if (rb < nb) nb = rb;
        if (re > ne) ne = re;
      }
    }
    out.push([nb, ne]);
    out.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    this.cleared = out;
  }

  private isCleared(s: string): boolean {
    let lo = 0;
    let hi = this.cleared.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const [b, e] = this.cleared[mid]!;
      if (s < b) hi = mid - 1;
      else if (s >= e) lo = mid + 1;
      else return true;
    }
    return false;
  }

  /** What the buffer says about one key: nothing, a value (null = cleared), or unreadable (pending versionstamp). */
  lookup(key: Uint8Array): Lookup {
    if (this.empty) return NONE;
    const s = keyString(key);
    const op = this.points.get(s);
    if (op) {
      if (op.kind === 'set') return { kind: 'value', value: op.value };
      if (op.kind === 'clear') return CLEARED;
      return { kind: 'unreadable' };
    }
    return this.isCleared(s) ? CLEARED : NONE;
  }

  private sortedKeys(): string[] {
    return (this.sortedCache ??= [...this.points.keys()].sort());
  }

  private pointKeysIn(b: string, e: string): string[] {
    const keys = this.sortedKeys();
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keys[mid]! < b) lo = mid + 1;
      else hi = mid;
    }
    const out: string[] = [];
    for (let i = lo; i < keys.length && keys[i]! < e; i++) out.push(keys[i]!);
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

  /** Number of buffered operations that may hide server rows in [b, e) (bounds extra rows to fetch). */
  hidingOpsIn(b: Uint8Array, e: Uint8Array): number {
    const bs = keyString(b);
    const es = keyString(e);
    return this.pointKeysIn(bs, es).length + this.cleared.filter(([rb, re]) => rb < es && re > bs).length;
  }

  /**
   * The rows of [b, e) the transaction sees: the server's rows (flat [k, v, ...], in
   * scan order) with buffered sets, clears and cleared ranges applied. When the
   * server has more rows than it sent (`complete` false), rows past the last server
   * key are left out: unfetched server rows may lie between them.
   */
  merge(serverKvs: Uint8Array[], b: Uint8Array, e: Uint8Array, reverse: boolean, complete: boolean): [Uint8Array, Uint8Array][] {
    const own = this.pointKeysIn(keyString(b), keyString(e)).filter((s) => this.points.get(s)!.kind === 'set');
    if (reverse) own.reverse();
    const out: [Uint8Array, Uint8Array][] = [];
    const pushOwn = (s: string): void => {
      const op = this.points.get(s) as Extract<PointOp, { kind: 'set' }>;
      out.push([op.key, op.value]);
    };
    let oi = 0;
    let last: string | null = null;
    for (let i = 0; i + 1 < serverKvs.length; i += 2) {
      const k = serverKvs[i]!;
      const s = keyString(k);
      last = s;
      while (oi < own.length && (reverse ? own[oi]! > s : own[oi]! < s)) pushOwn(own[oi++]!);
      if (this.points.has(s) || this.isCleared(s)) continue; // overwritten or cleared in this transaction
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

  /** The mutations to send with commit, in an order that reproduces the calls' effect. */
  mutations(): MutationMsg[] {
    const out: MutationMsg[] = [];
    const empty = new Uint8Array(0);
    for (const [b, e] of this.cleared) out.push({ type: 2, key: keyFromString(b), param: keyFromString(e), offset: 0 });
    for (const op of this.points.values()) {
      if (op.kind === 'set') out.push({ type: 0, key: op.key, param: op.value, offset: 0 });
      else if (op.kind === 'clear') out.push({ type: 1, key: op.key, param: empty, offset: 0 });
      else out.push({ type: 4, key: op.key, param: op.value, offset: op.offset });
    }
    out.push(...this.stampedKeys);
    return out;
  }
}
