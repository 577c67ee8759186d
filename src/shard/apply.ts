// How a commit's mutations become writes, shared by the shard (shard.ts) and crash
// recovery (coordinator/recovery.ts), so both apply the same way. Pure encoding and
// op construction: no RocksDB calls (storage.ts writes the ops).
//
// A range clear is never enumerated key by key. On a shard it becomes a range
// tombstone: a durable record `tomb/<shard><version><n>` written in the commit's own
// batch, and an entry of the MVCC window that hides the rows from reads at the
// tombstone's version and later. The rows are deleted later with one RocksDB
// DeleteRange, once no reader can need them (tombstoneApplyOps). Keys written again
// after the clear must survive that DeleteRange: the window knows them while the
// server runs, and each such write also leaves a durable mark `mark/<shard><key>` =
// its version in the same batch, so recovery knows them after a crash.
import { MutationKind, encodeVersion, decodeVersion, unpackMutations, writeVersion, type PackedMutations, type ShardMutation } from './interface.js';
import type { WriteOps } from './storage.js';
import { concatBytes, keyString } from '../keys/bytes.js';
import { RangeVersions } from './versioned-map.js';
import { applyAtomic, isAtomicType } from '../keys/atomic.js';

/** A commit's mutations in effect: ranges cleared first, then the point writes that follow them. */
export interface NetEffect {
  /** Cleared ranges [begin, end) (bytes). */
  ranges: [Uint8Array, Uint8Array][];
  /** Point mutations in order; those a later clearRange of the same commit covers are dropped. */
  points: ShardMutation[];
}

export function netEffect(mutations: readonly ShardMutation[], compare: (a: Uint8Array, b: Uint8Array) => number): NetEffect {
  const ranges: [Uint8Array, Uint8Array][] = [];
  for (const m of mutations) if (m.kind === MutationKind.ClearRange && compare(m.key, m.param) < 0) ranges.push([m.key, m.param]);
  if (ranges.length <= SMALL_CLEARS) {
    // few clears (nearly every commit): each drops the points before it that it covers
    let points: ShardMutation[] = [];
    for (const m of mutations) {
      if (m.kind === MutationKind.ClearRange) {
        if (compare(m.key, m.param) >= 0) continue;
        points = points.filter((p) => compare(p.key, m.key) < 0 || compare(p.key, m.param) >= 0);
      } else points.push(m);
    }
    return { ranges, points };
  }
  // many: that filter cost O(points x clears) (a commit of 20,000 clearRange + set pairs
  // held its shard thread for seconds, 100,000 for minutes). A point survives unless a
  // clear after it covers its key; points after the last clear all survive.
  let lastClear = -1;
  for (let i = mutations.length - 1; i >= 0; i--) {
    if (mutations[i]!.kind === MutationKind.ClearRange) {
      lastClear = i;
      break;
    }
  }
  let firstPoint = 0;
  while (firstPoint < mutations.length && mutations[firstPoint]!.kind === MutationKind.ClearRange) firstPoint++;
  if (firstPoint > lastClear) {
    // every clear before every point write (nothing to drop)
    const points: ShardMutation[] = [];
    for (let i = firstPoint; i < mutations.length; i++) points.push(mutations[i]!);
    return { ranges, points };
  }
  const disjoint = disjointClears(mutations, lastClear, compare);
  if (disjoint !== null) {
    // the usual many (a batch delete: one range per directory): sorted by begin and not
    // overlapping, so the one clear that may cover a key is found by binary search
    const { begins, ends, at } = disjoint;
    const points: ShardMutation[] = [];
    for (let i = 0; i < mutations.length; i++) {
      const m = mutations[i]!;
      if (m.kind === MutationKind.ClearRange) continue;
      if (i > lastClear) {
        points.push(m);
        continue;
      }
      let lo = 0;
      let hi = begins.length - 1;
      let f = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        if (compare(begins[mid]!, m.key) <= 0) {
          f = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      if (f < 0 || compare(m.key, ends[f]!) >= 0 || at[f]! < i) points.push(m);
    }
    return { ranges, points };
  }
  // overlapping clears: they go into a step function of "the last clear covering each
  // key" (their positions as versions, O(log n) each)
  const last = new RangeVersions();
  for (let i = 0; i < mutations.length; i++) {
    const m = mutations[i]!;
    if (m.kind === MutationKind.ClearRange && compare(m.key, m.param) < 0) last.assign(keyString(m.key), keyString(m.param), i + 1);
  }
  const points: ShardMutation[] = [];
  for (let i = 0; i < mutations.length; i++) {
    const m = mutations[i]!;
    if (m.kind !== MutationKind.ClearRange && last.valueAt(keyString(m.key)) <= i + 1) points.push(m);
  }
  return { ranges, points };
}

/**
 * netEffect of a commit's packed mutations (as it arrived on the shard), its points as
 * indices into them: null = every mutation, in order (a commit without range clears, nearly
 * every one: nothing is unpacked, no object made per mutation). With range clears the
 * mutations are unpacked and netEffect decides.
 */
export function packedNetEffect(p: PackedMutations, compare: (a: Uint8Array, b: Uint8Array) => number): { ranges: [Uint8Array, Uint8Array][]; points: number[] | null } {
  const kinds = p.kinds;
  let clears = false;
  for (let i = 0; i < kinds.length && !clears; i++) clears = kinds[i] === MutationKind.ClearRange;
  if (!clears) return { ranges: [], points: null };
  const ms = unpackMutations(p);
  const at = new Map<ShardMutation, number>();
  for (let i = 0; i < ms.length; i++) at.set(ms[i]!, i);
  const effect = netEffect(ms, compare);
  return { ranges: effect.ranges, points: effect.points.map((m) => at.get(m)!) };
}

/** Up to this many range clears in one commit, netEffect filters the points at each. */
const SMALL_CLEARS = 16;

/**
 * The non-empty clears of mutations[0..upTo] sorted by begin, with their positions, when
 * no two of them overlap; null when some do.
 */
function disjointClears(
  mutations: readonly ShardMutation[],
  upTo: number,
  compare: (a: Uint8Array, b: Uint8Array) => number,
): { begins: Uint8Array[]; ends: Uint8Array[]; at: number[] } | null {
  const order: number[] = [];
  for (let i = 0; i <= upTo; i++) {
    const m = mutations[i]!;
    if (m.kind === MutationKind.ClearRange && compare(m.key, m.param) < 0) order.push(i);
  }
  let sorted = true;
  for (let j = 1; j < order.length && sorted; j++) sorted = compare(mutations[order[j - 1]!]!.key, mutations[order[j]!]!.key) <= 0;
  if (!sorted) order.sort((x, y) => compare(mutations[x]!.key, mutations[y]!.key));
  const begins: Uint8Array[] = new Array(order.length);
  const ends: Uint8Array[] = new Array(order.length);
  for (let j = 0; j < order.length; j++) {
    const m = mutations[order[j]!]!;
    if (j > 0 && compare(m.key, ends[j - 1]!) < 0) return null;
    begins[j] = m.key;
    ends[j] = m.param;
  }
  return { begins, ends, at: order };
}

/**
 * The value a point mutation leaves the key with: a set's value, an atomic operation
 * applied to `current()` (the key's value just before it, this commit's earlier writes
 * included; called only for atomic operations), or null (a clear). The shard and
 * recovery both write exactly this.
 */
export function pointValue(m: ShardMutation, current: () => Uint8Array | null): Uint8Array | null {
  return pointValueOf(m.kind, m.param, current);
}

/** pointValue of a mutation given as its kind and param. */
export function pointValueOf(kind: number, param: Uint8Array, current: () => Uint8Array | null): Uint8Array | null {
  if (kind === MutationKind.Set) return param;
  return isAtomicType(kind) ? applyAtomic(kind, current(), param) : null;
}

const enc = new TextEncoder();
const TOMB = enc.encode('tomb/');
const MARK = enc.encode('mark/');

/** Every tombstone record, of every shard (default column). */
export const TOMBSTONE_RANGE = { begin: TOMB, end: enc.encode('tomb0') };
/** Every mark, of every shard (default column). */
export const MARK_RANGE = { begin: MARK, end: enc.encode('mark0') };

function u32(n: number): Uint8Array {
  // big-endian, without a DataView per call (a commit with 100,000 range clears made 200,000)
  return new Uint8Array([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

/** tomb/<shard u32><version u64><index u32>: sorts by shard, then version. */
export function tombstoneKey(shardId: number, version: number, index: number): Uint8Array {
  // one allocation (a commit with 20,000 clears makes 20,000 of these)
  const out = new Uint8Array(TOMB.length + 16);
  out.set(TOMB, 0);
  putU32(out, TOMB.length, shardId);
  writeVersion(out, TOMB.length + 4, version);
  putU32(out, TOMB.length + 12, index);
  return out;
}

function putU32(out: Uint8Array, at: number, n: number): void {
  out[at] = n >>> 24;
  out[at + 1] = (n >>> 16) & 0xff;
  out[at + 2] = (n >>> 8) & 0xff;
  out[at + 3] = n & 0xff;
}

export function parseTombstoneKey(k: Uint8Array): { shardId: number; version: number } {
  const dv = new DataView(k.buffer, k.byteOffset, k.byteLength);
  return { shardId: dv.getUint32(TOMB.length), version: decodeVersion(k.subarray(TOMB.length + 4, TOMB.length + 12)) };
}

export function markKey(shardId: number, key: Uint8Array): Uint8Array {
  return concatBytes(MARK, u32(shardId), key);
}

/** The marks of shard keys in [begin, end). */
export function markRange(shardId: number, begin: Uint8Array, end: Uint8Array): { begin: Uint8Array; end: Uint8Array } {
  return { begin: markKey(shardId, begin), end: markKey(shardId, end) };
}

/** The shard key a mark is for. */
export function markedKey(mark: Uint8Array): Uint8Array {
  return mark.slice(MARK.length + 4);
}

export interface TombstoneRecord {
  begin: Uint8Array;
  end: Uint8Array;
  /**
   * Null while the tombstone is live. Set in the batch that deletes the rows, before the
   * DeleteRange: the rows to put back, so a crash in between loses none of them.
   */
  survivors: { key: Uint8Array; value: Uint8Array }[] | null;
}

export function encodeTombstone(r: TombstoneRecord): Uint8Array {
  const parts: Uint8Array[] = [new Uint8Array([r.survivors ? 2 : 1]), u32(r.begin.length), r.begin, u32(r.end.length), r.end];
  if (r.survivors) {
    parts.push(u32(r.survivors.length));
    for (const s of r.survivors) parts.push(u32(s.key.length), s.key, u32(s.value.length), s.value);
  }
  return concatBytes(...parts);
}

export function decodeTombstone(b: Uint8Array): TombstoneRecord {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let o = 1;
  const bytes = (): Uint8Array => {
    if (o + 4 > b.length) throw new Error('tombstone record truncated');
    const n = dv.getUint32(o);
    if (o + 4 + n > b.length) throw new Error('tombstone record truncated');
    const out = b.slice(o + 4, o + 4 + n);
    o += 4 + n;
    return out;
  };
  const format = b[0];
  if (format !== 1 && format !== 2) throw new Error(`tombstone record format ${format} is unknown`);
  const begin = bytes();
  const end = bytes();
  if (format === 1) return { begin, end, survivors: null };
  const n = dv.getUint32(o);
  o += 4;
  const survivors: { key: Uint8Array; value: Uint8Array }[] = [];
  for (let i = 0; i < n; i++) survivors.push({ key: bytes(), value: bytes() });
  return { begin, end, survivors };
}

/**
 * The ops that delete a tombstone's rows, in a crash-safe order: the record is rewritten
 * with the survivors' current values, then DeleteRange, then the survivors are put
 * back and the record (and marks no longer needed) deleted. A crash after the first
 * step is finished by recovery from the record alone.
 */
export function tombstoneApplyOps(
  ops: WriteOps,
  recordKey: Uint8Array,
  begin: Uint8Array,
  end: Uint8Array,
  survivors: { key: Uint8Array; value: Uint8Array }[],
  forgetMarks: Uint8Array[],
): void {
  ops.putMeta(recordKey, encodeTombstone({ begin, end, survivors }));
  ops.deleteRange(begin, end);
  for (const s of survivors) ops.put(s.key, s.value);
  ops.delMeta(recordKey);
  for (const m of forgetMarks) ops.delMeta(m);
}
