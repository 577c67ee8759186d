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
//
// The values live in a slab (ValueSlab below: size classes of slots in 256 KiB chunks,
// whose bytes are outside the JS heap), the Map holds a small integer per row. Under w10
// every write replaces its key's cached value, and the value then lives until the key's
// next write: as an object of its own (a typed array and its ArrayBuffer, ~190 bytes of JS
// heap besides the bytes) each was copied by two young-generation scavenges and promoted,
// the largest part of what the shard threads' scavenges copied (bench/README.md).
// get() returns a view into the slab, valid until recycle(): a slot whose row is replaced
// or evicted is reused only after the shard calls recycle() at a point where nobody holds
// such a view (Shard: when no batch is being built or written), so a batch's before-images
// and a read's rows stay intact while its own fills evict rows.

import { RangeSet } from '../keys/ranges.js';

/** Bytes a cached row is counted for beyond its key and value slot (Map entry, key string). */
export const ROW_OVERHEAD = 64;

/**
 * Size classes: 16-byte steps up to 256 bytes (classes 0-15: 16, 32, .., 256), then powers
 * of two up to 16 KiB (classes 16-21); larger values are kept as arrays of their own (class
 * BIG). Small values are the common case (3FS's inodes and directory entries, the bench's
 * 8-100 bytes), so the steps there are fine: powers of two from 16 bytes wasted ~25 bytes
 * per row on 8-100-byte values (a 79.7-byte slot per 54-byte value), ~15 % of a row's cost.
 */
const STEP = 16;
const STEPPED = 16;
const CLASSES = 22;
const BIG = 31;
/** Bits of a ref that hold its class. */
const CLASS_BITS = 5;
const CLASS_MASK = (1 << CLASS_BITS) - 1;
const CHUNK_BYTES = 1 << 18;
/** A ref is slot << 5 | class: below 2^30 (a small integer, no heap number) while slot < 2^25. */
const MAX_SLOTS = 2 ** 25;

/** Bytes of class c's slots. */
function classBytes(c: number): number {
  return c < STEPPED ? STEP * (c + 1) : (STEP * STEPPED) << (c - STEPPED + 1);
}

/** The class of a value of n bytes (CLASSES or more: too big for the slab). */
function classOf(n: number): number {
  if (n <= STEP * STEPPED) return n <= STEP ? 0 : ((n + STEP - 1) >> 4) - 1;
  // 257..512 -> 16, 513..1024 -> 17, ..
  return 32 - Math.clz32(n - 1) + 7;
}

/** A row known to be absent. */
const NO_ROW = -1;

class SizeClass {
  readonly chunks: Uint8Array[] = [];
  /** Bytes used in each slot handed out. */
  lens = new Int32Array(0);
  private free = new Int32Array(64);
  private freeTop = 0;
  /** Slots handed out so far from the chunks (the rest of the last chunk is unused). */
  private next = 0;
  readonly perChunkShift: number;

  constructor(readonly slotBytes: number) {
    // a power of two of slots per chunk (a slot's chunk is slot >> perChunkShift)
    this.perChunkShift = Math.floor(Math.log2(Math.max(1, CHUNK_BYTES / slotBytes)));
  }

  alloc(): number {
    if (this.freeTop > 0) return this.free[--this.freeTop]!;
    const slot = this.next++;
    if (slot >= MAX_SLOTS) throw new Error('row cache slab: too many slots');
    if (slot >> this.perChunkShift >= this.chunks.length) {
      this.chunks.push(new Uint8Array(this.slotBytes << this.perChunkShift));
      const lens = new Int32Array(this.chunks.length << this.perChunkShift);
      lens.set(this.lens);
      this.lens = lens;
    }
    return slot;
  }

  release(slot: number): void {
    if (this.freeTop === this.free.length) {
      const f = new Int32Array(this.free.length * 2);
      f.set(this.free);
      this.free = f;
    }
    this.free[this.freeTop++] = slot;
  }

  get reservedBytes(): number {
    return this.chunks.length * (this.slotBytes << this.perChunkShift);
  }
}

/**
 * Values in slots of size classes (16 B .. 16 KiB, see classOf) carved from chunks of up
 * to 256 KiB, a ref (small integer) per value; larger values are arrays of their own. Freed
 * slots wait for recycle() before they are reused (see the file's header). Chunks are
 * kept once made: a class holds at most the most it ever held at once.
 */
export class ValueSlab {
  private readonly classes: SizeClass[] = Array.from({ length: CLASSES }, (_, c) => new SizeClass(classBytes(c)));
  private bigs: (Uint8Array | undefined)[] = [];
  private bigFree: number[] = [];
  private pending: number[] = [];

  /** Copies `v` into a slot; returns its ref. */
  put(v: Uint8Array): number {
    const n = v.length;
    const c = classOf(n);
    if (c >= CLASSES) {
      const slot = this.bigFree.length > 0 ? this.bigFree.pop()! : this.bigs.length;
      // a copy (a Buffer's slice() would be a view of what may be a request's whole buffer)
      const own = new Uint8Array(n);
      own.set(v);
      this.bigs[slot] = own;
      return slot * (CLASS_MASK + 1) + BIG;
    }
    const k = this.classes[c]!;
    const slot = k.alloc();
    const off = (slot & ((1 << k.perChunkShift) - 1)) * k.slotBytes;
    k.chunks[slot >> k.perChunkShift]!.set(v, off);
    k.lens[slot] = n;
    return slot * (CLASS_MASK + 1) + c;
  }

  /** The value of `ref` (a view into the slab, valid until the ref is freed and recycle() runs). */
  view(ref: number): Uint8Array {
    const c = ref & CLASS_MASK;
    const slot = (ref - c) / (CLASS_MASK + 1);
    if (c === BIG) return this.bigs[slot]!;
    const k = this.classes[c]!;
    const off = (slot & ((1 << k.perChunkShift) - 1)) * k.slotBytes;
    return k.chunks[slot >> k.perChunkShift]!.subarray(off, off + k.lens[slot]!);
  }

  /** Bytes the ref's slot takes. */
  slotBytes(ref: number): number {
    const c = ref & CLASS_MASK;
    return c === BIG ? this.bigs[(ref - c) / (CLASS_MASK + 1)]!.length : this.classes[c]!.slotBytes;
  }

  /** The ref's slot is free once recycle() runs (views of it stay valid until then). */
  free(ref: number): void {
    this.pending.push(ref);
  }

  /** Slots freed since the last call become reusable: no view of them may be held now. */
  recycle(): void {
    const p = this.pending;
    if (p.length === 0) return;
    for (let i = 0; i < p.length; i++) {
      const ref = p[i]!;
      const c = ref & CLASS_MASK;
      const slot = (ref - c) / (CLASS_MASK + 1);
      if (c === BIG) {
        this.bigs[slot] = undefined;
        this.bigFree.push(slot);
      } else this.classes[c]!.release(slot);
    }
    this.pending = [];
  }

  /** Everything goes (rows changed in ways not tracked per key); views stay valid until recycle(). */
  reset(refs: Iterable<number>): void {
    for (const r of refs) if (r >= 0) this.free(r);
  }

  /** Bytes of chunks made, and of big values held. */
  get reservedBytes(): number {
    let n = 0;
    for (const k of this.classes) n += k.reservedBytes;
    for (const b of this.bigs) if (b) n += b.length;
    return n;
  }
}

export class RowCache {
  /** Physical row per key string: a slab ref, or NO_ROW. Insertion order = eviction order (oldest first). */
  private readonly rows = new Map<string, number>();
  private readonly slab = new ValueSlab();
  private bytes = 0;
  /**
   * Where eviction goes on: a live iterator over `rows` in insertion order. A new
   * iterator per eviction would walk again over every entry deleted before it (V8
   * keeps them as holes until the table is rebuilt): with 1,000,000 rows read at random
   * that made each fill cost ~100 µs (300,000 fills: 113 s). A live iterator passes
   * each hole once and sees rows added after it.
   */
  private cursor: Iterator<[string, number]> | null = null;
  /** Point reads answered from the cache, and those that went to RocksDB. */
  hits = 0;
  misses = 0;
  /** Before-images of point writes found in the cache, and those read from RocksDB (shard.ts BatchView). */
  imageHits = 0;
  imageMisses = 0;

  /** `budget`: bytes of keys, value slots and overhead held at most; 0 turns the cache off. */
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

  /** Bytes of the slab's chunks (what the cache's values take, free slots included). */
  get reservedBytes(): number {
    return this.slab.reservedBytes;
  }

  /**
   * The cached row (null: known absent), or undefined when not cached. A row is a view
   * into the slab: read or copy it before the shard next calls recycle().
   */
  get(key: string): Uint8Array | null | undefined {
    const r = this.rows.get(key);
    return r === undefined ? undefined : r < 0 ? null : this.slab.view(r);
  }

  /** Rows replaced or evicted since the last call may have their slots reused: call only when no row view is held. */
  recycle(): void {
    this.slab.recycle();
  }

  /** A row read from RocksDB while no batch writes it. */
  fill(key: string, value: Uint8Array | null | undefined): void {
    if (this.budget === 0) return;
    this.set(key, value ?? null);
  }

  /** A batch writes `value` (null: deletes) to the key's row: a cached row takes the new value. */
  wrote(key: string, value: Uint8Array | null): void {
    if (this.rows.has(key)) this.set(key, value);
  }

  /**
   * A batch writes `value` (null: deletes) to a row the cache held when the batch began
   * (BatchView read it from here, or filled it); a row evicted since comes back with the
   * new value, which is the row RocksDB will hold.
   */
  replace(key: string, value: Uint8Array | null): void {
    this.set(key, value);
  }

  private set(key: string, value: Uint8Array | null): void {
    const ref = value ? this.slab.put(value) : NO_ROW;
    const old = this.rows.get(key);
    this.rows.set(key, ref);
    if (old !== undefined) {
      this.bytes -= this.cost(key, old);
      if (old >= 0) this.slab.free(old);
    }
    this.bytes += this.cost(key, ref);
    if (this.bytes > this.budget) this.evict();
  }

  /**
   * Rows of [begin, end) changed by range: forget them. O(rows cached); called once per
   * moved range or deleted tombstone, which costs less than re-reading the whole cache.
   */
  clearRange(begin: string, end: string): void {
    if (this.rows.size === 0) return;
    for (const [k, r] of this.rows) {
      if (k >= begin && k < end) this.drop(k, r);
    }
  }

  /**
   * clearRange() of several ranges in one pass over the cache (a pass per range cost
   * O(ranges x rows cached): the tombstones of a commit with 20,000 range clears took
   * seconds of the shard thread when they were deleted).
   */
  clearRanges(ranges: readonly { begin: string; end: string }[]): void {
    if (this.rows.size === 0 || ranges.length === 0) return;
    if (ranges.length === 1) return this.clearRange(ranges[0]!.begin, ranges[0]!.end);
    const set = RangeSet.from(ranges.map((r) => [r.begin, r.end] as const));
    for (const [k, r] of this.rows) {
      if (set.containsKey(k)) this.drop(k, r);
    }
  }

  /** The cached keys, oldest first (a pass may forget() as it goes; keys added meanwhile come at the end). */
  keys(): IterableIterator<string> {
    return this.rows.keys();
  }

  /** Forgets one key's row (if cached). */
  forget(key: string): void {
    const r = this.rows.get(key);
    if (r !== undefined) this.drop(key, r);
  }

  /** Rows changed in ways not tracked per key: forget everything. */
  clear(): void {
    this.slab.reset(this.rows.values());
    this.rows.clear();
    this.bytes = 0;
    this.cursor = null;
  }

  /** Each cached row as [key, value] (tests). */
  *entries(): Generator<[string, Uint8Array | null]> {
    for (const [k, r] of this.rows) yield [k, r < 0 ? null : this.slab.view(r)];
  }

  private drop(k: string, r: number): void {
    this.rows.delete(k);
    this.bytes -= this.cost(k, r);
    if (r >= 0) this.slab.free(r);
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
      const [k, ref] = r.value;
      this.drop(k, ref);
    }
  }

  /** What a row is counted for: its key, its value's slot (the slot's size, not the value's length) and the overhead. */
  cost(key: string, ref: number): number {
    return key.length + (ref < 0 ? 0 : this.slab.slotBytes(ref)) + ROW_OVERHEAD;
  }
}
