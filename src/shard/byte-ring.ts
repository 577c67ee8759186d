// hot path: the MVCC window's before-images as bytes in large off-heap chunks, written and
// released in version order (a log), instead of one Uint8Array per write. Under w10 every
// write's before-image lives the whole window (5 s): as an object of its own (a typed array
// and its ArrayBuffer, ~190 bytes of JS heap besides the bytes) each was copied by two
// young-generation scavenges and then promoted, and those scavenges paused the shard
// thread 9-23 ms about three times a second (bench/README.md, "p99 at half of peak").
// A chunk is one ArrayBuffer whose bytes live outside the JS heap: a scavenge copies none
// of it. Pure (no thread, no RocksDB), unit-tested directly.
//
// A position is chunkNumber * CHUNK_SPAN + offset; chunk numbers only grow, so positions
// only grow and "release everything before p" is how the window frees what it forgets.

/** Positions per chunk number: a value (or chunk) is at most this many bytes. */
const CHUNK_SPAN = 2 ** 24;

export class ByteRing {
  /** chunks[i] is chunk number firstChunk + i. */
  private chunks: Uint8Array[] = [];
  private firstChunk = 0;
  /** Emptied chunks of the normal size kept for reuse (at most `spares`). */
  private readonly spare: Uint8Array[] = [];
  /** Position of the next byte written. */
  private end = 0;
  private held = 0;

  /**
   * `chunkBytes`: size of a chunk (a value larger than a chunk's space left starts the
   * next one; a value larger than a chunk gets a chunk of its own size, at most 16 MiB).
   * `spares`: emptied chunks kept for reuse instead of being left to the GC.
   */
  constructor(
    readonly chunkBytes = 1 << 20,
    private readonly spares = 2,
  ) {
    if (!(chunkBytes > 0 && chunkBytes <= CHUNK_SPAN)) throw new Error(`chunkBytes must be in 1..${CHUNK_SPAN}, got ${chunkBytes}`);
  }

  /** The position the next append starts at or after (positions only grow). */
  get position(): number {
    return this.end;
  }

  /** Bytes of chunks held (live bytes, the unused tail of each chunk, spares). */
  get heldBytes(): number {
    return this.held;
  }

  /** Copies `b` in; returns its position (valid until released). */
  append(b: Uint8Array): number {
    const n = b.length;
    if (n > CHUNK_SPAN) throw new Error(`a value of ${n} bytes is larger than a window chunk can hold (${CHUNK_SPAN})`);
    let chunkNo = Math.floor(this.end / CHUNK_SPAN);
    let off = this.end - chunkNo * CHUNK_SPAN;
    let chunk = this.chunks.length > 0 ? this.chunks[chunkNo - this.firstChunk] : undefined;
    if (chunk === undefined || off + n > chunk.length) {
      // start a new chunk (the rest of this one stays unused until it is released);
      // positions never go back, so a chunk number is never reused
      if (chunk !== undefined || off > 0) chunkNo++;
      off = 0;
      if (n <= this.chunkBytes && this.spare.length > 0) chunk = this.spare.pop()!;
      else {
        chunk = new Uint8Array(Math.max(n, this.chunkBytes));
        this.held += chunk.length;
      }
      if (this.chunks.length === 0) this.firstChunk = chunkNo;
      this.chunks.push(chunk);
    }
    chunk.set(b, off);
    const pos = chunkNo * CHUNK_SPAN + off;
    this.end = pos + n;
    return pos;
  }

  /**
   * A view of `len` bytes at `pos` (no copy). Valid until the position is released and
   * the space is written again: callers read or copy it before the window moves.
   */
  view(pos: number, len: number): Uint8Array {
    const chunkNo = Math.floor(pos / CHUNK_SPAN);
    const off = pos - chunkNo * CHUNK_SPAN;
    return this.chunks[chunkNo - this.firstChunk]!.subarray(off, off + len);
  }

  /** Bytes before `pos` are no longer needed: whole chunks before pos's chunk are freed. */
  release(pos: number): void {
    const keepFrom = Math.floor(Math.min(pos, this.end) / CHUNK_SPAN);
    let drop = 0;
    while (drop < this.chunks.length && this.firstChunk + drop < keepFrom) {
      const c = this.chunks[drop]!;
      // a spare stays counted in heldBytes
      if (c.length === this.chunkBytes && this.spare.length < this.spares) this.spare.push(c);
      else this.held -= c.length;
      drop++;
    }
    if (drop > 0) {
      this.chunks.splice(0, drop);
      this.firstChunk += drop;
    }
  }
}
