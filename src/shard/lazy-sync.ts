// When to bring an append-only write log into a sorted index, and when to scan it instead.
// Pure (no thread, no clock): the rule shared by the resolver's ordered map
// (coordinator/resolver.ts) and the shard window's sorted map (shard/mvcc.ts).
//
// Both keep their writes twice: in a log in version order (cheap to append) and in a sorted
// map with max versions per subtree (versioned-map.ts), which only range queries need and
// which costs a walk up the tree per insert (~20 nodes, most of them cache misses). So the
// map is filled lazily. A range query at version v answers from the map for the log entries
// below `synced` and scans the entries from `synced` on that are newer than v (those at or
// below v cannot qualify; a binary search skips them). Scanning an entry costs a string
// comparison, inserting it ~20x more, and no catch-up pays if range queries stop. So the
// queries scan until what they scanned since the map was last up to date exceeds what it
// lacks; then a chunk enters it at once (bounded: the first query after a long stretch
// without one would otherwise stall the thread for the whole window, ~150,000 entries,
// ~150 ms) and the rest with the next recorded writes. Amortized, each write costs at most
// one insert and about two scanned entries, whatever the query versions' ages; without
// range queries, nothing.

/** The first index in [lo, hi) of `versions` (ascending) whose version is > v (hi when none). */
export function firstAfter(versions: ArrayLike<number>, v: number, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (versions[mid]! > v) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** A query scans the entries the map lacks, whatever came before, when there are at most this many. */
export const SCAN_LIMIT = 256;
/** At most this many log entries enter the map during one query (the rest is scanned). */
export const CATCH_UP_CHUNK = 2048;

/** The scan limit and catch-up chunk (tests pass small ones to exercise every way of a query). */
export interface LazyPolicy {
  scanLimit?: number;
  catchUpChunk?: number;
}

/**
 * The bookkeeping of a lazily filled sorted index over a write log. Log indices are the
 * owner's; `insert(from, to)` must bring entries [from, to) into its map (each key's newest
 * write among them).
 */
export class LazySync {
  /** Log entries below this index are in the map (or forgotten). */
  synced = 0;
  /** Entries scanned by queries since the map was last up to date. */
  private scanned = 0;
  /** A catch-up is under way: each recorded batch of writes brings its own and some of the rest in. */
  private catching = false;
  private readonly scanLimit: number;
  private readonly chunk: number;

  constructor(
    private readonly insert: (from: number, to: number) => void,
    policy: LazyPolicy = {},
  ) {
    this.scanLimit = policy.scanLimit ?? SCAN_LIMIT;
    this.chunk = policy.catchUpChunk ?? CATCH_UP_CHUNK;
  }

  /** Whether a catch-up is under way (tests, status). */
  get catchingUp(): boolean {
    return this.catching;
  }

  /**
   * A query will scan the log entries [from, end) (from: the first one newer than its
   * version, at or above `synced`; end: the log's end). Catches up a chunk when the scans
   * would cost more than that; returns where the scan starts now.
   */
  scanFrom(from: number, end: number): number {
    const n = end - from;
    if (n > this.scanLimit && this.scanned + n > end - this.synced) {
      this.catching = true;
      this.catchUp(this.synced + this.chunk, end);
      if (from < this.synced) from = this.synced;
    }
    this.scanned += end - from;
    return from;
  }

  /** `writes` entries were appended (the log now ends at `end`): a catch-up under way takes them and 4x as many more, so it ends within a few batches. */
  recorded(writes: number, end: number): void {
    if (this.catching) this.catchUp(this.synced + 4 * writes + 64, end);
  }

  /** Brings up to `n` more entries into the map, whatever the queries (a caller about to make many); true when it is up to date with `end`. */
  catchUpSome(n: number, end: number): boolean {
    this.catchUp(this.synced + n, end);
    return this.synced >= end;
  }

  /** Entries below `head` were forgotten: those not yet in the map never will be. */
  forgot(head: number): void {
    if (this.synced < head) this.synced = head;
  }

  /** The log moved its entries `offset` places towards its start. */
  shifted(offset: number): void {
    this.synced -= offset;
  }

  private catchUp(until: number, end: number): void {
    const to = until < end ? until : end;
    if (to > this.synced) {
      this.insert(this.synced, to);
      this.synced = to;
    }
    if (this.synced === end) {
      this.catching = false;
      this.scanned = 0;
    }
  }
}
