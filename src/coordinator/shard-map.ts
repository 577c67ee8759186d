// The shard map: which shard owns which contiguous key range. Main thread; the
// coordinator is its single owner. It carries a version so that moving ranges online
// (split, merge, rebalance) can later publish a new map; no message carries that
// version yet (the map never changes while a server runs).
import { compareKeys, keyFromString, keyString } from '../keys/bytes.js';
import type { KeyRange } from '../keys/ranges.js';

export interface ShardRange {
  shardId: number;
  /** Inclusive lower bound (latin-1 key string, see keyString). */
  begin: string;
  /** Exclusive upper bound; null = end of the keyspace. */
  end: string | null;
}

export interface ShardPart {
  shardId: number;
  begin: Uint8Array;
  end: Uint8Array;
}

export class ShardMap {
  readonly shards: readonly ShardRange[];
  /** shards[i].begin for i >= 1, kept apart for binary search. */
  private readonly splits: readonly string[];

  constructor(
    readonly version: number,
    splitPoints: readonly Uint8Array[],
  ) {
    const splits = splitPoints.map(keyString);
    for (let i = 1; i < splits.length; i++) {
      if (!(splits[i - 1]! < splits[i]!)) throw new Error(`split points must be strictly increasing (point ${i})`);
    }
    if (splits.length > 0 && splits[0] === '') throw new Error('the first split point must not be the empty key');
    this.splits = splits;
    const shards: ShardRange[] = [];
    for (let i = 0; i <= splits.length; i++) {
      shards.push({ shardId: i, begin: i === 0 ? '' : splits[i - 1]!, end: i < splits.length ? splits[i]! : null });
    }
    this.shards = shards;
  }

  get count(): number {
    return this.shards.length;
  }

  /** The shard that owns `key` (a latin-1 key string). */
  shardOf(key: string): number {
    let lo = 0;
    let hi = this.splits.length;
    // first split > key => shard index
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.splits[mid]! <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  shardOfKey(key: Uint8Array): number {
    return this.shardOf(keyString(key));
  }

  /** [begin, end) cut along shard boundaries, in key order. Empty ranges give []. */
  split(range: KeyRange): ShardPart[] {
    if (compareKeys(range.begin, range.end) >= 0) return [];
    const b = keyString(range.begin);
    const e = keyString(range.end);
    const first = this.shardOf(b);
    const out: ShardPart[] = [];
    for (let id = first; id < this.shards.length; id++) {
      const s = this.shards[id]!;
      if (id > first && s.begin >= e) break;
      const pb = id === first ? range.begin : keyFromString(s.begin);
      const pe = s.end !== null && s.end < e ? keyFromString(s.end) : range.end;
      out.push({ shardId: id, begin: pb, end: pe });
    }
    return out;
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
  interface Cell {
    key: string;
    mass: number;
  }
  const cells: Cell[] = [];
  const BINARY = 0.3;
  const TEXT = 0.3;
  const THREE_FS = 0.4;
  for (let b = 0; b < 256; b++) {
    for (let s = 0; s < 256; s++) cells.push({ key: String.fromCharCode(b, s), mass: BINARY / 65536 });
  }
  const PRINTABLE_FIRST = 0x7f - 0x21; // '!'..'~'
  const PRINTABLE_SECOND = 0x7f - 0x20; // ' '..'~'
  for (let b = 0x21; b < 0x7f; b++) {
    for (let s = 0x20; s < 0x7f; s++) cells.push({ key: String.fromCharCode(b, s), mass: TEXT / (PRINTABLE_FIRST * PRINTABLE_SECOND) });
  }
  const prefixes: [string, number][] = [
    ['DENT', 0.4],
    ['INOD', 0.4],
    ['INOS', 0.1],
    ['META', 0.1],
  ];
  for (const [p, w] of prefixes) {
    for (let s = 0; s < 256; s++) cells.push({ key: p + String.fromCharCode(s), mass: (THREE_FS * w) / 256 });
  }
  cells.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
  const out: Uint8Array[] = [];
  let acc = 0;
  let next = 1;
  for (const c of cells) {
    if (next >= n) break;
    // the cell that crosses the quantile starts the next shard
    if (acc + c.mass > next / n + 1e-12) {
      const k = keyFromString(c.key);
      if (out.length === 0 || compareKeys(out[out.length - 1]!, k) < 0) out.push(k);
      next++;
    }
    acc += c.mass;
  }
  return out;
}
