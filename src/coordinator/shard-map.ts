// The shard map: which shard worker owns which key range. Main thread; the
// coordinator is its single owner. Ranges are the unit and workers are the owners: a
// worker (one thread, one RocksDB column family) owns any number of ranges. The map is
// immutable and versioned: a split, merge or move publishes a new map with a higher
// version (src/coordinator/distribution.ts). Requests do not carry the version: each
// worker is sent the ranges it serves with the map's version (a 'map' message), refuses a
// request for a range it does not serve, and names its map version in the refusal
// (`staleMap`), after which the read router routes again by the current map.
//
// During and after a move a range keeps its previous owner (`prev`) for reads at
// versions below the switch version `prev.until`: the old owner still holds the rows
// as they were before the switch (and their MVCC history), the new owner has only the
// current state. Commits always go to `owner`.
import { compareKeys, keyFromString, keyString } from '../keys/bytes.js';
import type { KeyRange } from '../keys/ranges.js';

export interface ShardRange {
  shardId: number;
  /** Inclusive lower bound (latin-1 key string, see keyString). */
  begin: string;
  /** Exclusive upper bound; null = end of the keyspace. */
  end: string | null;
}

/** One range of the map. */
export interface MapRange {
  /** Inclusive lower bound (latin-1 key string). */
  begin: string;
  /** Exclusive upper bound; null = end of the keyspace. */
  end: string | null;
  /** The worker that owns the range: commits, and reads at versions >= prev.until. */
  owner: number;
  /** After a move: the worker that owned it before, which serves reads at versions < until. */
  prev?: { owner: number; until: number };
}

export interface ShardPart {
  shardId: number;
  begin: Uint8Array;
  end: Uint8Array;
}

/** A range as JSON (persisted in the default column, shown in status): keys as hex. */
export interface MapRangeJson {
  begin: string;
  end: string | null;
  owner: number;
  prev?: { owner: number; until: number };
}

export interface ShardMapJson {
  version: number;
  workers: number;
  ranges: MapRangeJson[];
}

const hex = (s: string): string => Buffer.from(keyFromString(s)).toString('hex');
const unhex = (h: string): string => keyString(Buffer.from(h, 'hex'));

export class ShardMap {
  readonly ranges: readonly MapRange[];
  /** Number of workers (shard threads / column families); owners are 0..workers-1. */
  readonly workers: number;
  /** ranges[i].begin, kept apart for binary search. */
  private readonly begins: readonly string[];

  /**
   * `new ShardMap(version, splitPoints)`: worker i owns [splitPoints[i-1], splitPoints[i])
   * (a data directory's initial layout). `new ShardMap(version, { workers, ranges })`: any map.
   */
  constructor(
    readonly version: number,
    layout: readonly Uint8Array[] | { workers: number; ranges: readonly MapRange[] },
  ) {
    let ranges: MapRange[];
    if (Array.isArray(layout)) {
      const splits = (layout as readonly Uint8Array[]).map(keyString);
      for (let i = 1; i < splits.length; i++) {
        if (!(splits[i - 1]! < splits[i]!)) throw new Error(`split points must be strictly increasing (point ${i})`);
      }
      if (splits.length > 0 && splits[0] === '') throw new Error('the first split point must not be the empty key');
      ranges = [];
      for (let i = 0; i <= splits.length; i++) ranges.push({ owner: i, begin: i === 0 ? '' : splits[i - 1]!, end: i < splits.length ? splits[i]! : null });
      this.workers = ranges.length;
    } else {
      const l = layout as { workers: number; ranges: readonly MapRange[] };
      ranges = l.ranges.map((r) => ({ ...r }));
      this.workers = l.workers;
      if (ranges.length === 0 || ranges[0]!.begin !== '' || ranges[ranges.length - 1]!.end !== null) throw new Error('a shard map must cover the whole keyspace');
      for (let i = 0; i < ranges.length; i++) {
        const r = ranges[i]!;
        if (i + 1 < ranges.length && (r.end === null || r.end !== ranges[i + 1]!.begin)) throw new Error(`shard map ranges ${i} and ${i + 1} do not meet`);
        if (r.end !== null && !(r.begin < r.end)) throw new Error(`shard map range ${i} is empty or inverted`);
        for (const o of [r.owner, r.prev?.owner]) {
          if (o !== undefined && !(Number.isInteger(o) && o >= 0 && o < this.workers)) throw new Error(`shard map range ${i} names worker ${o}; there are ${this.workers}`);
        }
      }
    }
    this.ranges = ranges;
    this.begins = ranges.map((r) => r.begin);
  }

  /** Number of workers. */
  get count(): number {
    return this.workers;
  }

  /** Every range with its owner (status). */
  get shards(): ShardRange[] {
    return this.ranges.map((r) => ({ shardId: r.owner, begin: r.begin, end: r.end }));
  }

  /** Index of the range holding `key` (a latin-1 key string). */
  indexOf(key: string): number {
    let lo = 0;
    let hi = this.begins.length;
    // first begin > key, minus one
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.begins[mid]! <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  /** The worker that serves range i at `readVersion` (omitted: the owner, for commits). */
  ownerAt(i: number, readVersion?: number): number {
    const r = this.ranges[i]!;
    return r.prev && readVersion !== undefined && readVersion < r.prev.until ? r.prev.owner : r.owner;
  }

  /** The worker that owns `key` (a latin-1 key string): commits; with a read version: reads. */
  shardOf(key: string, readVersion?: number): number {
    return this.ownerAt(this.indexOf(key), readVersion);
  }

  /**
   * shardOf for a key in bytes, compared with the ranges' latin-1 begins as they are: no
   * string per key (every written key of every commit comes here on the main thread).
   */
  shardOfKey(key: Uint8Array, readVersion?: number): number {
    let lo = 0;
    let hi = this.begins.length;
    // first begin > key, minus one
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareStringToBytes(this.begins[mid]!, key) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return this.ownerAt(lo - 1, readVersion);
  }

  /**
   * [begin, end) cut along the map's ranges, in key order, neighbours served by the
   * same worker joined (one request each). Empty ranges give [].
   */
  split(range: KeyRange, readVersion?: number): ShardPart[] {
    if (compareKeys(range.begin, range.end) >= 0) return [];
    const b = keyString(range.begin);
    const e = keyString(range.end);
    const first = this.indexOf(b);
    const out: ShardPart[] = [];
    for (let i = first; i < this.ranges.length; i++) {
      const r = this.ranges[i]!;
      if (i > first && r.begin >= e) break;
      const shardId = this.ownerAt(i, readVersion);
      const pe = r.end !== null && r.end < e ? keyFromString(r.end) : range.end;
      const last = out[out.length - 1];
      if (last && last.shardId === shardId) last.end = pe;
      else out.push({ shardId, begin: i === first ? range.begin : keyFromString(r.begin), end: pe });
    }
    return out;
  }

  /** A new map (version + 1) with a boundary at `key`: no data moves. */
  withSplit(key: string): ShardMap {
    if (key === '') throw new Error('cannot split at the empty key (it begins the keyspace)');
    const i = this.indexOf(key);
    const r = this.ranges[i]!;
    if (r.begin === key) throw new Error(`a range already begins at ${JSON.stringify(key)}`);
    const ranges = [...this.ranges];
    ranges.splice(i, 1, { ...r, end: key }, { ...r, begin: key });
    return new ShardMap(this.version + 1, { workers: this.workers, ranges });
  }

  /** A new map without the boundary at `key` (the ranges on both sides must have one owner and no previous owner). */
  withMerge(key: string): ShardMap {
    const i = this.indexOf(key);
    const r = this.ranges[i]!;
    if (r.begin !== key || i === 0) throw new Error(`no range boundary at ${JSON.stringify(key)}`);
    const left = this.ranges[i - 1]!;
    if (left.owner !== r.owner) throw new Error(`ranges meeting at ${JSON.stringify(key)} have different owners (${left.owner}, ${r.owner}); move one first`);
    if (left.prev || r.prev) throw new Error(`a range meeting at ${JSON.stringify(key)} still has a previous owner serving old reads`);
    const ranges = [...this.ranges];
    ranges.splice(i - 1, 2, { begin: left.begin, end: r.end, owner: r.owner });
    return new ShardMap(this.version + 1, { workers: this.workers, ranges });
  }

  /** A new map where range i is owned by `to` from version `until` on; the old owner serves reads below it. */
  withOwner(i: number, to: number, until: number): ShardMap {
    const r = this.ranges[i]!;
    const ranges = [...this.ranges];
    ranges[i] = { begin: r.begin, end: r.end, owner: to, prev: { owner: r.owner, until } };
    return new ShardMap(this.version + 1, { workers: this.workers, ranges });
  }

  /** A new map where range i no longer has a previous owner (its rows there are gone). */
  withoutPrev(i: number): ShardMap {
    const r = this.ranges[i]!;
    const ranges = [...this.ranges];
    ranges[i] = { begin: r.begin, end: r.end, owner: r.owner };
    return new ShardMap(this.version + 1, { workers: this.workers, ranges });
  }

  /** Index of the range that begins exactly at `begin`, or -1. */
  rangeAt(begin: string): number {
    const i = this.indexOf(begin);
    return this.ranges[i]!.begin === begin ? i : -1;
  }

  toJSON(): ShardMapJson {
    return {
      version: this.version,
      workers: this.workers,
      ranges: this.ranges.map((r) => ({ begin: hex(r.begin), end: r.end === null ? null : hex(r.end), owner: r.owner, ...(r.prev ? { prev: { ...r.prev } } : {}) })),
    };
  }

  static fromJSON(j: ShardMapJson): ShardMap {
    return new ShardMap(j.version, {
      workers: j.workers,
      ranges: j.ranges.map((r) => ({ begin: unhex(r.begin), end: r.end === null ? null : unhex(r.end), owner: r.owner, ...(r.prev ? { prev: { ...r.prev } } : {}) })),
    });
  }
}

/**
 * Default split points for `n` shards: quantiles of a prior over keys with three parts
 * (30 % binary, 30 % text, 40 % 3FS), so keys of any common shape spread over the shards:
 *  - binary keys: the first byte uniform over 0x00-0xff (refined by the second byte);
 *  - text keys: first and second bytes uniform over printable ASCII (most application
 *    keys: "acct/...", "user:...", "k...": with the binary part alone every ASCII key
 *    fell on one shard);
 *  - 3FS metadata keys: a 4-byte prefix (DENT, INOD, INOS, META) followed by an 8-byte
 *    little-endian inode id, whose first byte is the id's low byte and so is evenly spread.
 * For 4 shards: ["", "DENT[") ["DENT[", "INOD\xc7") ["INOD\xc7", "hD") ["hD", end).
 * Three boundaries cannot serve three shapes that share the printable range evenly:
 * measured shares per shard are about 37/5/33/25 % for random text keys, 26/2/12/60 %
 * for random binary keys and 18/71/11/0 % for 3FS keys; 8 shards do better.
 * A data directory keeps the split points it was created with (txkv-layout.json), so a
 * change here affects new directories only. Keys that share a long prefix (a counter
 * after one letter) still need explicit split points, or load-based splitting.
 */
export function defaultSplitPoints(n: number): Uint8Array[] {
  if (!Number.isInteger(n) || n < 1) throw new Error(`shard count must be a positive integer, got ${n}`);
  if (n === 1) return [];
  const BINARY = 0.3 / 65536;
  const PRINTABLE_FIRST = 0x7f - 0x21; // '!'..'~'
  const PRINTABLE_SECOND = 0x7f - 0x20; // ' '..'~'
  const TEXT = 0.3 / (PRINTABLE_FIRST * PRINTABLE_SECOND);
  const THREE_FS = 0.4;
  // in key order (each is a prefix of no other)
  const prefixes: [string, number][] = [
    ['DENT', 0.4],
    ['INOD', 0.4],
    ['INOS', 0.1],
    ['META', 0.1],
  ];
  // The prior's cells in key order: each 2-byte key (a binary cell, then a text cell when
  // both bytes are printable), then the 3FS cells under it (prefix + one byte), which sort
  // after that 2-byte key and before the next. Walked in place instead of made and sorted
  // (74,000 cells: 116-139 ms of CPU and their garbage at every server start; 22-29 ms
  // now): the same cells in the same order, so the same sums and the same split points.
  const under = new Map<number, [string, number][]>(); // 2-byte key (b << 8 | s) -> the 3FS prefixes it begins
  for (const pw of prefixes) {
    const two = (pw[0].charCodeAt(0) << 8) | pw[0].charCodeAt(1);
    under.set(two, [...(under.get(two) ?? []), pw]);
  }
  const out: Uint8Array[] = [];
  let acc = 0;
  let next = 1;
  /** Adds a cell of `mass`; `key` makes its key, asked only when the cell crosses the next quantile (it starts the next shard). */
  const cell = (mass: number, key: () => string): void => {
    if (acc + mass > next / n + 1e-12) {
      const k = keyFromString(key());
      if (out.length === 0 || compareKeys(out[out.length - 1]!, k) < 0) out.push(k);
      next++;
    }
    acc += mass;
  };
  for (let two = 0; two < 65536 && next < n; two++) {
    const b = two >> 8;
    const s = two & 0xff;
    // the common case inline: a call and a closure per cell cost most of what the walk saves
    if (acc + BINARY > next / n + 1e-12) cell(BINARY, () => String.fromCharCode(b, s));
    else acc += BINARY;
    if (next < n && b >= 0x21 && b < 0x7f && s >= 0x20 && s < 0x7f) {
      if (acc + TEXT > next / n + 1e-12) cell(TEXT, () => String.fromCharCode(b, s));
      else acc += TEXT;
    }
    for (const [p, w] of under.get(two) ?? []) {
      for (let t = 0; t < 256 && next < n; t++) cell((THREE_FS * w) / 256, () => p + String.fromCharCode(t));
    }
  }
  return out;
}

/** A latin-1 key string against a key in bytes, in byte order (as compareKeys of the string's bytes). */
export function compareStringToBytes(s: string, k: Uint8Array): number {
  const n = s.length < k.length ? s.length : k.length;
  for (let i = 0; i < n; i++) {
    const d = s.charCodeAt(i) - k[i]!;
    if (d !== 0) return d;
  }
  return s.length - k.length;
}
