// The table of a connection's pending requests (Connection.pending). See IdTable.

/**
 * A connection's pending requests by request id (an integer in 1..2^32-2): open addressing
 * with linear probing over two parallel arrays (ids are sequential, so `id & mask` spreads
 * them evenly); grows to keep at most half of its slots used, never shrinks.
 *
 * Not a Map, on purpose. Every request adds an entry and its reply deletes it, so a Map's
 * table fills with deleted entries and V8 rehashes it into a new table every few hundred
 * requests, linking the old table to the new one (for iterators still walking the old one)
 * and leaving the old one's entries in place. Once one of those tables is in the old
 * generation (a mark-compact promotes every young object alive, the current table among
 * them), each scavenge treats its link as a root and keeps the whole chain of later tables
 * alive, with every request they held, its promise, transaction and reply values, so all
 * of them are promoted too, until the next mark-compact, which that promotion brings on
 * soon and which promotes the current table again: the state sustains itself. Measured with
 * the r10 generator (100 clients, 2 connections): ~1.7 MB promoted per 11 MB scavenged, a
 * mark-compact every 0.5 s, GC 24 % of the process, 5.4 instead of 3.7 us of client CPU per
 * read. Whether a process fell into it depended on whether a mark-compact ran while a
 * connection was open (one gc() 1 s into the run was enough); importing etcd3, grpc-js and
 * protobufjs had moved the generator's only mark-compact into its start-up, before any
 * connection, which is why loading them lazily (faccd0b) looked like an SDK slow-down.
 * These arrays are replaced only when they grow, and nothing links the old ones.
 */
/**
 * The id after `id` in 1..2^32-2, wrapping: the ids an IdTable holds (0 marks an empty slot in
 * its Uint32Array; 2^32-1 is left out so an id and its successor both fit). Every user of an
 * IdTable numbers its requests with it.
 */
export function idAfter(id: number): number {
  return id >= 0xfffffffe ? 1 : id + 1;
}

export class IdTable<T> {
  private ids = new Uint32Array(64);
  private vals: (T | undefined)[] = new Array<T | undefined>(64).fill(undefined);
  private mask = 63;
  size = 0;

  private slot(id: number): number {
    const ids = this.ids;
    for (let i = id & this.mask; ; i = (i + 1) & this.mask) {
      const k = ids[i]!;
      if (k === id) return i;
      if (k === 0) return -1;
    }
  }

  get(id: number): T | undefined {
    const i = this.slot(id);
    return i < 0 ? undefined : this.vals[i];
  }

  /** Adds (or replaces) the entry of `id`, an id in 1..2^32-2 (0 marks a free slot). */
  set(id: number, v: T): void {
    if ((this.size + 1) * 2 > this.ids.length) this.grow();
    const ids = this.ids;
    let i = id & this.mask;
    while (ids[i] !== 0 && ids[i] !== id) i = (i + 1) & this.mask;
    if (ids[i] === 0) this.size++;
    ids[i] = id;
    this.vals[i] = v;
  }

  delete(id: number): boolean {
    let i = this.slot(id);
    if (i < 0) return false;
    const ids = this.ids;
    const vals = this.vals;
    const mask = this.mask;
    // backward-shift deletion: move up each later entry of the run that may sit in the hole
    for (let j = (i + 1) & mask; ids[j] !== 0; j = (j + 1) & mask) {
      const home = ids[j]! & mask;
      const stays = i <= j ? i < home && home <= j : i < home || home <= j;
      if (stays) continue;
      ids[i] = ids[j]!;
      vals[i] = vals[j];
      i = j;
    }
    ids[i] = 0;
    vals[i] = undefined;
    this.size--;
    return true;
  }

  values(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.ids.length; i++) if (this.ids[i] !== 0) out.push(this.vals[i]!);
    return out;
  }

  /** [id, entry] of every entry, in slot order. */
  entries(): [number, T][] {
    const out: [number, T][] = [];
    for (let i = 0; i < this.ids.length; i++) if (this.ids[i] !== 0) out.push([this.ids[i]!, this.vals[i]!]);
    return out;
  }

  clear(): void {
    this.ids.fill(0);
    this.vals.fill(undefined);
    this.size = 0;
  }

  private grow(): void {
    const ids = this.ids;
    const vals = this.vals;
    const n = ids.length * 2;
    this.ids = new Uint32Array(n);
    this.vals = new Array<T | undefined>(n).fill(undefined);
    this.mask = n - 1;
    this.size = 0;
    for (let i = 0; i < ids.length; i++) if (ids[i] !== 0) this.set(ids[i]!, vals[i]!);
  }
}
