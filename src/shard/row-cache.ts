// hot path: a shard's cache of rows as RocksDB holds them (physical rows: range
// tombstones not applied; the window applies them, as it does to RocksDB's rows).
// Worker thread, one per shard. A point read that hits it costs a table lookup instead
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
// whose bytes are outside the JS heap); the row of a key is a small integer in its entry
// of the shard's key table (key-table.ts, shared with the window, so a written key is
// found once for both), and the cached entries form a list in the order they were cached
// (eviction order, linked through the table's records). Under w10
// every write replaces its key's cached value, and the value then lives until the key's
// next write: as an object of its own (a typed array and its ArrayBuffer, ~190 bytes of JS
// heap besides the bytes) each was copied by two young-generation scavenges and promoted,
// the largest part of what the shard threads' scavenges copied (bench/README.md).
// get() returns a view into the slab, valid until recycle(): a slot whose row is replaced
// or evicted is reused only after the shard calls recycle() at a point where nobody holds
// such a view (Shard: when no batch is being built or written), so a batch's before-images
// and a read's rows stay intact while its own fills evict rows. Likewise an evicted row's
// table entry is freed only at recycle(), so entry numbers a batch or a read holds keep
// naming their keys.

import { RangeSet } from '../keys/ranges.js';
import { FLAG_ZOMBIE, KeyTable, NO_ROW, NOT_CACHED } from './key-table.js';

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
  /** The shard's key table (shared with the window, key-table.ts): each entry's `row` is a slab ref, NO_ROW or NOT_CACHED. */
  readonly table: KeyTable;
  private readonly slab = new ValueSlab();
  private bytes = 0;
  private rowCount = 0;
  /** The cached entries in the order they were cached (eviction takes the oldest): a list linked through the table's next/prev. */
  private head = -1;
  private tail = -1;
  /**
   * Entries evicted or forgotten since the last recycle(): the table frees them then (if the
   * window holds no write of theirs), not at once, so that an entry number a caller holds
   * (a batch's before-images, a read's keys) names the same key until recycle().
   */
  private zombies: number[] = [];
  /** Point reads answered from the cache, and those that went to RocksDB. */
  hits = 0;
  misses = 0;
  /** Before-images of point writes found in the cache, and those read from RocksDB (shard.ts BatchView). */
  imageHits = 0;
  imageMisses = 0;

  /** `budget`: bytes of keys, value slots and overhead held at most; 0 turns the cache off. `table`: the shard's, shared with its window. */
  constructor(
    readonly budget: number,
    table?: KeyTable,
  ) {
    this.table = table ?? new KeyTable();
  }

  get enabled(): boolean {
    return this.budget > 0;
  }

  get size(): number {
    return this.rowCount;
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
    const e = this.table.find(key);
    return e < 0 ? undefined : this.getEntry(e);
  }

  /** get() of a table entry. */
  getEntry(e: number): Uint8Array | null | undefined {
    const r = this.table.row(e);
    return r === NOT_CACHED ? undefined : r === NO_ROW ? null : this.slab.view(r);
  }

  /**
   * Rows replaced or evicted since the last call may have their slots reused, and entries
   * evicted since then may be freed: call only when no row view and no entry number
   * obtained before is held.
   */
  recycle(): void {
    this.slab.recycle();
    const z = this.zombies;
    if (z.length === 0) return;
    const t = this.table;
    for (let i = 0; i < z.length; i++) {
      t.clearFlag(z[i]!, FLAG_ZOMBIE);
      t.release(z[i]!);
    }
    this.zombies = [];
  }

  /** A row read from RocksDB while no batch writes it. */
  fill(key: string, value: Uint8Array | null | undefined): void {
    if (this.budget === 0) return;
    this.set(this.table.intern(key), value ?? null);
  }

  /** fill() of a table entry. */
  fillEntry(e: number, value: Uint8Array | null | undefined): void {
    if (this.budget === 0) return;
    this.set(e, value ?? null);
  }

  /** A batch writes `value` (null: deletes) to the key's row: a cached row takes the new value. */
  wrote(key: string, value: Uint8Array | null): void {
    const e = this.table.find(key);
    if (e >= 0 && this.table.row(e) !== NOT_CACHED) this.set(e, value);
  }

  /**
   * A batch writes `value` (null: deletes) to a row the cache held when the batch began
   * (BatchView read it from here, or filled it); a row evicted since comes back with the
   * new value, which is the row RocksDB will hold.
   */
  replace(key: string, value: Uint8Array | null): void {
    if (this.budget === 0) return;
    this.set(this.table.intern(key), value);
  }

  /** replace() of a table entry. */
  replaceEntry(e: number, value: Uint8Array | null): void {
    if (this.budget === 0) return;
    this.set(e, value);
  }

  private set(e: number, value: Uint8Array | null): void {
    const t = this.table;
    const ref = value ? this.slab.put(value) : NO_ROW;
    const old = t.row(e);
    t.setRow(e, ref);
    if (old !== NOT_CACHED) {
      this.bytes -= this.cost(t.keyLength(e), old);
      if (old >= 0) this.slab.free(old);
    } else {
      // cached now: the newest end of the list
      t.setPrev(e, this.tail);
      t.setNext(e, -1);
      if (this.tail >= 0) t.setNext(this.tail, e);
      else this.head = e;
      this.tail = e;
      this.rowCount++;
    }
    this.bytes += this.cost(t.keyLength(e), ref);
    if (this.bytes > this.budget) this.evict();
  }

  /**
   * Rows of [begin, end) changed by range: forget them. O(rows cached); called once per
   * moved range or deleted tombstone, which costs less than re-reading the whole cache.
   */
  clearRange(begin: string, end: string): void {
    if (this.rowCount === 0) return;
    const t = this.table;
    for (let e = this.head; e >= 0; ) {
      const n = t.next(e);
      if (t.inRange(e, begin, end)) this.drop(e);
      e = n;
    }
  }

  /**
   * clearRange() of several ranges in one pass over the cache (a pass per range cost
   * O(ranges x rows cached): the tombstones of a commit with 20,000 range clears took
   * seconds of the shard thread when they were deleted).
   */
  clearRanges(ranges: readonly { begin: string; end: string }[]): void {
    if (this.rowCount === 0 || ranges.length === 0) return;
    if (ranges.length === 1) return this.clearRange(ranges[0]!.begin, ranges[0]!.end);
    const set = RangeSet.from(ranges.map((r) => [r.begin, r.end] as const));
    const t = this.table;
    for (let e = this.head; e >= 0; ) {
      const n = t.next(e);
      if (set.containsKey(t.keyString(e))) this.drop(e);
      e = n;
    }
  }

  /**
   * The cached keys, by entry number: a pass may forget() as it goes and may run in slices
   * between which rows are filled, replaced and evicted; every row cached when the pass
   * began and still cached when the pass reaches its entry is visited (entries do not
   * move); rows cached meanwhile may or may not be.
   */
  *keys(): Generator<string> {
    const t = this.table;
    for (let e = 0; e < t.end; e++) if (t.isLive(e) && t.row(e) !== NOT_CACHED) yield t.keyString(e);
  }

  /** Forgets one key's row (if cached). */
  forget(key: string): void {
    const e = this.table.find(key);
    if (e >= 0 && this.table.row(e) !== NOT_CACHED) this.drop(e);
  }

  /** Rows changed in ways not tracked per key: forget everything. */
  clear(): void {
    for (let e = this.head; e >= 0; ) {
      const n = this.table.next(e);
      this.drop(e);
      e = n;
    }
    this.bytes = 0;
  }

  /** Each cached row as [key, value], oldest first (tests). */
  *entries(): Generator<[string, Uint8Array | null]> {
    const t = this.table;
    for (let e = this.head; e >= 0; e = t.next(e)) yield [t.keyString(e), this.getEntry(e)!];
  }

  private drop(e: number): void {
    const t = this.table;
    const r = t.row(e);
    this.bytes -= this.cost(t.keyLength(e), r);
    if (r >= 0) this.slab.free(r);
    t.setRow(e, NOT_CACHED);
    const p = t.prev(e);
    const n = t.next(e);
    if (p >= 0) t.setNext(p, n);
    else this.head = n;
    if (n >= 0) t.setPrev(n, p);
    else this.tail = p;
    this.rowCount--;
    if (!t.hasFlag(e, FLAG_ZOMBIE)) {
      t.setFlag(e, FLAG_ZOMBIE);
      this.zombies.push(e);
    }
  }

  private evict(): void {
    while (this.bytes > this.budget && this.head >= 0) this.drop(this.head);
  }

  /** What a row is counted for: its key, its value's slot (the slot's size, not the value's length) and the overhead. */
  cost(keyLength: number, ref: number): number {
    return keyLength + (ref < 0 ? 0 : this.slab.slotBytes(ref)) + ROW_OVERHEAD;
  }
}
