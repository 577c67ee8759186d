// hot path: one shard's table of keys, shared by its row cache (row-cache.ts) and its MVCC
// window (mvcc.ts). Worker thread, one per shard. Pure: no RocksDB, no clock.
//
// Both used to keep a JS Map keyed by key string (the cache ~100,000 rows, the window ~50,000
// keys under w10), and a written key was looked up in them four times per group commit (the
// cache's row for the before-image, the window's chain, then the cache's get and set of the
// new row): 27-37 % of a shard thread's CPU under w10 (perf), each lookup two or three cache
// misses (the Map's bucket, its entry, the stored key string to compare), and ~150,000
// long-lived strings and chain objects for the collector to mark. Here a key is an entry: a
// small integer found once per written key, whose fields (its cached row, its newest write in
// the window) sit in one 64-byte record of a typed array, next to the key's first 32 bytes.
// Open addressing with linear probing over an Int32Array of entry numbers (as
// coordinator/resolver.ts's point index), at most half full; deletion shifts back (no
// tombstones). Keys longer than INLINE bytes are kept as arrays of their own.
//
// An entry lives while either user holds it: a cached row (row != NOT_CACHED) or a write in
// the window (newest >= 0). release(e) frees it once neither does; entry numbers are reused,
// so a user must not keep an entry number past the point where it let go of the entry (see
// RowCache.recycle for when the cache lets go).

/** Int32 words per entry record. */
const STRIDE = 16;
/** Record fields (word offsets). */
const HASH = 0;
/** Key length in bytes; -1: the entry is free. */
const LEN = 1;
const ROW = 2;
const NEWEST = 3;
const NEXT = 4;
const PREV = 5;
const FLAGS = 6;
/** Byte offset of the inline key in a record. */
const KEY_AT = 32;
/** Keys up to this many bytes are kept in the record. */
const INLINE = STRIDE * 4 - KEY_AT;
/** Keys longer than this are arrays of their own (memory estimates: mvcc.ts heldBytes). */
export const INLINE_KEY_BYTES = INLINE;

/** `row` of an entry with no cached row. */
export const NOT_CACHED = -2;
/** `row` of a key cached as absent. */
export const NO_ROW = -1;

/** Flag bits (free for the users to assign; the table clears them when an entry is freed). */
export const FLAG_ORDERED = 1;
export const FLAG_ZOMBIE = 2;
/** The key's row is written by the batch at the log writer (Shard.writing). */
export const FLAG_WRITING = 4;

/** Bytes the table takes per entry (record and two hash slots), for memory estimates. */
export const ENTRY_BYTES = STRIDE * 4 + 2 * 4;

function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Hash of a latin-1 key string (its char codes are its bytes); equal to hashBytes of those bytes. */
export function hashString(s: string): number {
  let h = 0x811c9dc5 ^ s.length;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return finish(h);
}

export function hashBytes(k: Uint8Array): number {
  return hashAt(k, 0, k.length);
}

/** hashBytes of the `len` bytes of `data` at `at` (a key inside a request's buffer, without a view of it). */
export function hashAt(data: Uint8Array, at: number, len: number): number {
  let h = 0x811c9dc5 ^ len;
  for (let i = at, end = at + len; i < end; i++) h = Math.imul(h ^ data[i]!, 0x01000193);
  return finish(h);
}

export class KeyTable {
  private rec: Int32Array;
  private bytes: Uint8Array;
  /** Keys longer than INLINE, by entry. */
  private long: (Uint8Array | undefined)[] = [];
  /** Entry + 1 per slot (0: empty). */
  private slots: Int32Array;
  private mask: number;
  private count = 0;
  /** Entries made so far (free ones included): entries are 0 .. end - 1. */
  private made = 0;
  /** Head of the list of free entries (linked through NEXT); -1: none. */
  private freeHead = -1;

  /** `initialEntries`: room at first (a power of two; tests pass small ones so that probe runs wrap around the slots' end). */
  constructor(private readonly initialEntries = 1024) {
    this.rec = new Int32Array(STRIDE * initialEntries);
    this.bytes = new Uint8Array(this.rec.buffer);
    this.slots = new Int32Array(2 * initialEntries);
    this.mask = 2 * initialEntries - 1;
  }

  /** Entries in use. */
  get size(): number {
    return this.count;
  }

  /** One past the highest entry number ever made (iterate 0 .. end - 1, skipping free ones: isLive). */
  get end(): number {
    return this.made;
  }

  isLive(e: number): boolean {
    return this.rec[e * STRIDE + LEN]! >= 0;
  }

  /** The entry of a latin-1 key string, or -1. */
  find(s: string): number {
    const h = hashString(s);
    const rec = this.rec;
    const slots = this.slots;
    const mask = this.mask;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const x = slots[i]!;
      if (x === 0) return -1;
      const e = x - 1;
      const o = e * STRIDE;
      if (rec[o + HASH] === h && rec[o + LEN] === s.length && this.equalsString(e, s)) return e;
    }
  }

  /** The entry of a key, or -1. */
  findBytes(k: Uint8Array): number {
    return this.findAt(k, 0, k.length);
  }

  /** findBytes of the `len` bytes of `data` at `at`. */
  findAt(data: Uint8Array, at: number, len: number): number {
    return this.probe(hashAt(data, at, len), data, at, len);
  }

  private probe(h: number, data: Uint8Array, at: number, len: number): number {
    const rec = this.rec;
    const slots = this.slots;
    const mask = this.mask;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const x = slots[i]!;
      if (x === 0) return -1;
      const e = x - 1;
      const o = e * STRIDE;
      if (rec[o + HASH] === h && rec[o + LEN] === len && this.equalsAt(e, data, at, len)) return e;
    }
  }

  /** The entry of a latin-1 key string, made (no row, no write) when absent. */
  intern(s: string): number {
    const e = this.find(s);
    if (e >= 0) return e;
    const n = s.length;
    const f = this.add(hashString(s), n);
    if (n <= INLINE) {
      const b = this.bytes;
      const at = f * STRIDE * 4 + KEY_AT;
      for (let i = 0; i < n; i++) b[at + i] = s.charCodeAt(i);
    } else {
      const own = new Uint8Array(n);
      for (let i = 0; i < n; i++) own[i] = s.charCodeAt(i);
      this.long[f] = own;
    }
    return f;
  }

  /** The entry of a key, made (no row, no write) when absent. */
  internBytes(k: Uint8Array): number {
    return this.internAt(k, 0, k.length);
  }

  /** internBytes of the `len` bytes of `data` at `at` (the shard's apply: a key inside a request's buffer). */
  internAt(data: Uint8Array, at: number, len: number): number {
    const h = hashAt(data, at, len);
    const e = this.probe(h, data, at, len);
    if (e >= 0) return e;
    const f = this.add(h, len);
    // a copy either way: the key is inside a whole request's buffer
    if (len <= INLINE) {
      const b = this.bytes;
      const to = f * STRIDE * 4 + KEY_AT;
      for (let i = 0; i < len; i++) b[to + i] = data[at + i]!;
    } else this.long[f] = data.slice(at, at + len);
    return f;
  }

  /** Frees the entry if neither user holds it (no cached row, no write in the window, no flag). */
  release(e: number): void {
    const o = e * STRIDE;
    const rec = this.rec;
    if (rec[o + LEN]! < 0 || rec[o + ROW] !== NOT_CACHED || rec[o + NEWEST] !== -1 || rec[o + FLAGS] !== 0) return;
    this.unlink(e, rec[o + HASH]!);
    rec[o + LEN] = -1;
    this.long[e] = undefined;
    rec[o + NEXT] = this.freeHead;
    this.freeHead = e;
    this.count--;
  }

  /** Forgets every entry (the users have let go of all of them). */
  clear(): void {
    this.rec = new Int32Array(STRIDE * this.initialEntries);
    this.bytes = new Uint8Array(this.rec.buffer);
    this.long = [];
    this.slots = new Int32Array(2 * this.initialEntries);
    this.mask = 2 * this.initialEntries - 1;
    this.count = 0;
    this.made = 0;
    this.freeHead = -1;
  }

  row(e: number): number {
    return this.rec[e * STRIDE + ROW]!;
  }

  setRow(e: number, ref: number): void {
    this.rec[e * STRIDE + ROW] = ref;
  }

  /** The entry's newest write in the window (an index into its write log); -1: none. */
  newest(e: number): number {
    return this.rec[e * STRIDE + NEWEST]!;
  }

  setNewest(e: number, i: number): void {
    this.rec[e * STRIDE + NEWEST] = i;
  }

  /** Links of the row cache's list (its eviction order). */
  next(e: number): number {
    return this.rec[e * STRIDE + NEXT]!;
  }

  setNext(e: number, n: number): void {
    this.rec[e * STRIDE + NEXT] = n;
  }

  prev(e: number): number {
    return this.rec[e * STRIDE + PREV]!;
  }

  setPrev(e: number, p: number): void {
    this.rec[e * STRIDE + PREV] = p;
  }

  hasFlag(e: number, f: number): boolean {
    return (this.rec[e * STRIDE + FLAGS]! & f) !== 0;
  }

  setFlag(e: number, f: number): void {
    this.rec[e * STRIDE + FLAGS]! |= f;
  }

  clearFlag(e: number, f: number): void {
    this.rec[e * STRIDE + FLAGS]! &= ~f;
  }

  keyLength(e: number): number {
    return this.rec[e * STRIDE + LEN]!;
  }

  /** The entry's key as a latin-1 key string (keys/bytes.ts keyString); a new string each call. */
  keyString(e: number): string {
    const n = this.rec[e * STRIDE + LEN]!;
    if (n > INLINE) {
      const k = this.long[e]!;
      if (n <= 4096) return String.fromCharCode.apply(null, k as unknown as number[]);
      let s = '';
      for (let i = 0; i < n; i += 4096) s += String.fromCharCode.apply(null, k.subarray(i, i + 4096) as unknown as number[]);
      return s;
    }
    const at = e * STRIDE * 4 + KEY_AT;
    return String.fromCharCode.apply(null, this.bytes.subarray(at, at + n) as unknown as number[]);
  }

  /** The entry's key (a copy). */
  keyBytes(e: number): Uint8Array {
    const n = this.rec[e * STRIDE + LEN]!;
    if (n > INLINE) return this.long[e]!.slice();
    const at = e * STRIDE * 4 + KEY_AT;
    return this.bytes.slice(at, at + n);
  }

  /** The entry's key against a latin-1 key string, in byte order (< 0: the entry's sorts first). */
  compareKey(e: number, s: string): number {
    const n = this.rec[e * STRIDE + LEN]!;
    const m = Math.min(n, s.length);
    if (n > INLINE) {
      const k = this.long[e]!;
      for (let i = 0; i < m; i++) {
        const d = k[i]! - s.charCodeAt(i);
        if (d !== 0) return d;
      }
    } else {
      const b = this.bytes;
      const at = e * STRIDE * 4 + KEY_AT;
      for (let i = 0; i < m; i++) {
        const d = b[at + i]! - s.charCodeAt(i);
        if (d !== 0) return d;
      }
    }
    return n - s.length;
  }

  /** Whether the entry's key is in [begin, end). */
  inRange(e: number, begin: string, end: string): boolean {
    return this.compareKey(e, begin) >= 0 && this.compareKey(e, end) < 0;
  }

  private equalsString(e: number, s: string): boolean {
    const n = s.length;
    if (n > INLINE) {
      const k = this.long[e]!;
      for (let i = 0; i < n; i++) if (k[i] !== s.charCodeAt(i)) return false;
      return true;
    }
    const b = this.bytes;
    const at = e * STRIDE * 4 + KEY_AT;
    for (let i = 0; i < n; i++) if (b[at + i] !== s.charCodeAt(i)) return false;
    return true;
  }

  private equalsAt(e: number, data: Uint8Array, from: number, n: number): boolean {
    if (n > INLINE) {
      const l = this.long[e]!;
      for (let i = 0; i < n; i++) if (l[i] !== data[from + i]) return false;
      return true;
    }
    const b = this.bytes;
    const at = e * STRIDE * 4 + KEY_AT;
    for (let i = 0; i < n; i++) if (b[at + i] !== data[from + i]) return false;
    return true;
  }

  /** Copies the entry's key into `out` at `at` (its length: keyLength). */
  copyKey(e: number, out: Uint8Array, at: number): void {
    const n = this.rec[e * STRIDE + LEN]!;
    if (n > INLINE) {
      out.set(this.long[e]!, at);
      return;
    }
    const b = this.bytes;
    const from = e * STRIDE * 4 + KEY_AT;
    for (let i = 0; i < n; i++) out[at + i] = b[from + i]!;
  }

  /** A new entry for a key of `len` bytes with hash h (the caller writes the key). */
  private add(h: number, len: number): number {
    if ((this.count + 1) * 2 > this.slots.length) this.grow();
    let e = this.freeHead;
    if (e >= 0) this.freeHead = this.rec[e * STRIDE + NEXT]!;
    else {
      e = this.made++;
      if (this.made * STRIDE > this.rec.length) {
        const rec = new Int32Array(this.rec.length * 2);
        rec.set(this.rec);
        this.rec = rec;
        this.bytes = new Uint8Array(rec.buffer);
      }
    }
    const o = e * STRIDE;
    const rec = this.rec;
    rec[o + HASH] = h;
    rec[o + LEN] = len;
    rec[o + ROW] = NOT_CACHED;
    rec[o + NEWEST] = -1;
    rec[o + NEXT] = -1;
    rec[o + PREV] = -1;
    rec[o + FLAGS] = 0;
    this.place(e, h);
    this.count++;
    return e;
  }

  private place(e: number, h: number): void {
    const slots = this.slots;
    const mask = this.mask;
    let i = h & mask;
    while (slots[i] !== 0) i = (i + 1) & mask;
    slots[i] = e + 1;
  }

  /** Takes e's slot out of the probe sequence, shifting later entries of the run back. */
  private unlink(e: number, h: number): void {
    const slots = this.slots;
    const mask = this.mask;
    let i = h & mask;
    while (slots[i] !== e + 1) i = (i + 1) & mask;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const x = slots[j]!;
      if (x === 0) break;
      const home = this.rec[(x - 1) * STRIDE + HASH]! & mask;
      // x may move to the hole at i unless its home lies cyclically in (i, j]
      const stays = i <= j ? home > i && home <= j : home > i || home <= j;
      if (!stays) {
        slots[i] = x;
        i = j;
      }
    }
    slots[i] = 0;
  }

  private grow(): void {
    const size = this.slots.length * 2;
    this.slots = new Int32Array(size);
    this.mask = size - 1;
    const rec = this.rec;
    for (let e = 0; e < this.made; e++) if (rec[e * STRIDE + LEN]! >= 0) this.place(e, rec[e * STRIDE + HASH]!);
  }
}
