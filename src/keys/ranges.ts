// Half-open key ranges [begin, end) and the spec's key selectors turned into them. Pure.
import { TxnError } from '../errors.js';
import { compareKeys, describeArg, keyAfter } from './bytes.js';

export interface KeyRange {
  begin: Uint8Array;
  end: Uint8Array;
}

export interface KeySelectorBytes {
  key: Uint8Array;
  inclusive: boolean;
}

/**
 * begin {k, inclusive} -> first key >= k, {k, exclusive} -> first key > k (= k\0);
 * end {k, exclusive} -> keys < k, {k, inclusive} -> keys <= k (end = k\0). As in 3FS.
 */
export function selectorsToRange(begin: KeySelectorBytes, end: KeySelectorBytes): KeyRange {
  return {
    begin: begin.inclusive ? begin.key : keyAfter(begin.key),
    end: end.inclusive ? keyAfter(end.key) : end.key,
  };
}

export function isEmptyRange(r: KeyRange): boolean {
  return compareKeys(r.begin, r.end) >= 0;
}

export function checkSelector(sel: unknown, which: string): void {
  if (!sel || typeof sel !== 'object') throw new TxnError('INVALID_ARGUMENT', `${which} selector must be an object { key, inclusive }`);
  const s = sel as { key?: unknown; inclusive?: unknown };
  if (typeof s.key !== 'string' && !(s.key instanceof Uint8Array)) {
    throw new TxnError('INVALID_ARGUMENT', `${which} selector key must be a string or Uint8Array`);
  }
  if (typeof s.inclusive !== 'boolean') throw new TxnError('INVALID_ARGUMENT', `${which} selector inclusive must be a boolean`);
  // FoundationDB's selectors also have `offset` (and `orEqual`): a selector written that way
  // was read as { key, inclusive } with its offset dropped, rows from the wrong place with no
  // error. Other extra fields (a spread { key, value } row) change nothing and are let be.
  for (const f of ['offset', 'orEqual'] as const) {
    if (f in s && (s as Record<string, unknown>)[f] !== undefined) {
      throw new TxnError(
        'INVALID_ARGUMENT',
        `${which} selector has ${f} (${describeArg((s as Record<string, unknown>)[f])}): txkv selectors are { key, inclusive } (as 3FS's), with no ${f}; ` +
          'move by rows with limit and paging instead',
      );
    }
  }
}

/**
 * What a range read adds to the read set: the whole range, or, when the limit cut
 * it, only as far as the rows returned reach (as 3FS's MemKV and FoundationDB).
 * `rows` are [key, value] pairs in scan order.
 */
export function conflictRangeOf(range: KeyRange, rows: readonly (readonly [Uint8Array, Uint8Array])[], hasMore: boolean, reverse: boolean): KeyRange {
  if (!hasMore || rows.length === 0) return range;
  const last = rows[rows.length - 1]![0];
  return reverse ? { begin: last, end: range.end } : { begin: range.begin, end: keyAfter(last) };
}

/** Default page size of range reads when limit <= 0 or absent (documented in README and protocol.md). */
export const DEFAULT_RANGE_LIMIT = 1000;
/** A page is also cut once it holds this many bytes (after at least one row). */
export const RANGE_PAGE_MAX_BYTES = 1 << 20;

/**
 * Sorted, merged list of half-open ranges over latin-1 key strings (see keyString),
 * used for read-conflict checks on the server: binary search instead of a scan.
 */
export class RangeSet {
  private readonly begins: string[] = [];
  private readonly ends: string[] = [];

  /** Builds from arbitrary (unsorted, overlapping) ranges; empty ranges are dropped. */
  static from(ranges: Iterable<readonly [string, string]>): RangeSet {
    const list = [...ranges].filter(([b, e]) => b < e).sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    const set = new RangeSet();
    for (const [b, e] of list) {
      const n = set.begins.length;
      if (n > 0 && b <= set.ends[n - 1]!) {
        if (e > set.ends[n - 1]!) set.ends[n - 1] = e;
      } else {
        set.begins.push(b);
        set.ends.push(e);
      }
    }
    return set;
  }

  get size(): number {
    return this.begins.length;
  }

  /** Index of the last range whose begin <= k, or -1. */
  private floor(k: string): number {
    let lo = 0;
    let hi = this.begins.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.begins[mid]! <= k) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  containsKey(k: string): boolean {
    const i = this.floor(k);
    return i >= 0 && k < this.ends[i]!;
  }

  /** Whether [b, e) overlaps any range of the set. */
  intersects(b: string, e: string): boolean {
    if (b >= e) return false;
    const i = this.floor(b);
    if (i >= 0 && b < this.ends[i]!) return true;
    const next = i + 1;
    return next < this.begins.length && this.begins[next]! < e;
  }

  *entries(): IterableIterator<[string, string]> {
    for (let i = 0; i < this.begins.length; i++) yield [this.begins[i]!, this.ends[i]!];
  }
}
