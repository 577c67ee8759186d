// hot path: a shard's cache of rows as RocksDB holds them (physical rows: range
// tombstones not applied; the window applies them, as it does to RocksDB's rows).
// Worker thread, one per shard. A point read that hits it costs a Map lookup instead
// of a RocksDB multi-get (measured under r10: ~1 µs of shard CPU per get in the
// binding, about a quarter of the server's CPU per get).
//
// Invalidation follows the shard's writes in version order: a group commit's point
// writes replace the cached rows when the batch is recorded (beginApply), before the
// log writer has written them; reads that could tell the difference cannot happen
// (a read below the batch's versions takes those keys' values from the window, a
// read at or above them waits for the write). A read that misses fills the cache
// only with rows no batch is writing at that moment (the caller checks), so a row
// read from RocksDB just before the log writer replaces it is never cached. Writes by
// range (a tombstone's DeleteRange, a move's dropped range or copied clear) drop the
// cached rows of that range; a move's copied rows replace cached ones; a re-seed
// empties the cache.

/** Bytes a cached row is counted for beyond its key and value (Map entry, string and array headers). */
const ROW_OVERHEAD = 96;

export class RowCache {
  /** Physical row per key string; null = no row. Insertion order = eviction order (oldest first). */
  private readonly rows = new Map<string, Uint8Array | null>();
  private bytes = 0;
  /**
   * Where eviction goes on: a live iterator over `rows` in insertion order. A new
   * iterator per eviction would walk again over every entry deleted before it (V8
   * keeps them as holes until the table is rebuilt): with 1,000,000 rows read at random
   * that made each fill cost ~100 µs (300,000 fills: 113 s). A live iterator passes
   * each hole once and sees rows added after it.
   */
  private cursor: Iterator<[string, Uint8Array | null]> | null = null;
  hits = 0;
  misses = 0;

  /** `budget`: bytes of keys, values and overhead held at most; 0 turns the cache off. */
  constructor(readonly budget: number) {}

  get enabled(): boolean {
    return this.budget > 0;
  }

  get size(): number {
    return this.rows.size;
  }

  get heldBytes(): number {
    return this.bytes;
  }

  /** The cached row (null: known absent), or undefined when not cached. */
  get(key: string): Uint8Array | null | undefined {
    return this.rows.get(key);
  }

  /** A row read from RocksDB while no batch writes it. */
  fill(key: string, value: Uint8Array | null | undefined): void {
    if (this.budget === 0) return;
    const v = value ? own(value) : null;
    const old = this.rows.get(key);
    if (old !== undefined) this.bytes -= cost(key, old);
    this.rows.set(key, v);
    this.bytes += cost(key, v);
    if (this.bytes > this.budget) this.evict();
  }

  /** A batch writes `value` (null: deletes) to the key's row: a cached row takes the new value. */
  wrote(key: string, value: Uint8Array | null): void {
    // one lookup: a cached row is never undefined
    const old = this.rows.get(key);
    if (old === undefined) return;
    const v = value ? own(value) : null;
    this.bytes += cost(key, v) - cost(key, old);
    this.rows.set(key, v);
    if (this.bytes > this.budget) this.evict();
  }

  /**
   * A batch writes `value` (null: deletes) to a row the cache held as `old` when the
   * batch began (BatchView read it from here, or filled it). One Map operation instead of
   * wrote()'s two (this ran for every written key); a row evicted since comes back with
   * the new value, which is the row RocksDB will hold.
   */
  replace(key: string, old: Uint8Array | null, value: Uint8Array | null): void {
    const v = value ? own(value) : null;
    const n = this.rows.size;
    this.rows.set(key, v);
    this.bytes += this.rows.size > n ? cost(key, v) : cost(key, v) - cost(key, old);
    if (this.bytes > this.budget) this.evict();
  }

  /**
   * Rows of [begin, end) changed by range: forget them. O(rows cached); called once per
   * moved range or deleted tombstone, which costs less than re-reading the whole cache.
   */
  clearRange(begin: string, end: string): void {
    if (this.rows.size === 0) return;
    for (const [k, v] of this.rows) {
      if (k >= begin && k < end) {
        this.rows.delete(k);
        this.bytes -= cost(k, v);
      }
    }
  }

  /** Rows changed in ways not tracked per key: forget everything. */
  clear(): void {
    this.rows.clear();
    this.bytes = 0;
    this.cursor = null;
  }

  private evict(): void {
    while (this.bytes > this.budget) {
      let r = (this.cursor ??= this.rows.entries()).next();
      if (r.done) {
        // at the end: start again from the oldest row
        this.cursor = this.rows.entries();
        r = this.cursor.next();
        if (r.done) return;
      }
      const [k, v] = r.value;
      this.rows.delete(k);
      this.bytes -= cost(k, v);
    }
  }
}

function cost(key: string, value: Uint8Array | null): number {
  return key.length + (value ? value.length : 0) + ROW_OVERHEAD;
}

/**
 * The value as an array of its own: a value viewing a larger buffer (a request's
 * packed mutations) would keep that whole buffer alive for as long as it is cached.
 */
function own(v: Uint8Array): Uint8Array {
  return v.byteOffset === 0 && v.byteLength === v.buffer.byteLength ? v : v.slice();
}
