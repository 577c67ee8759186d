// The resolver: the keyspace-wide conflict history, on the main thread. Pure: no thread,
// no clock, no RocksDB (unit-tested directly).
//
// FoundationDB's commit proxies ask resolvers, which keep the last few seconds of writes
// apart from storage. Here the coordinator assigns commit versions and orders commits on
// one thread anyway, so it also resolves them there, in commit-version order, before any
// shard hears of the commit: a transaction (read version r, commit version c) conflicts
// when a key or range it read was written by a commit with a version in (r, c). Every
// commit below c was resolved (and its writes recorded) before c was, because versions
// are assigned and resolved in the same synchronous step; a recorded commit that later
// fails (a shard refused it, the server shut down) stays in the history: false conflicts
// only, never a missed one. The shards then get only writes (one write shard: a
// one-phase commit; several: the blind cross-shard path), and a shard's reads are never
// sent anywhere.
//
// What is kept, bounded by the MVCC window (pruned at its edge; a backup's pin holds the shards' window open, not this history: commits reading at a pinned version are TOO_OLD):
//  - point writes (set, clear, atomic operations, versionstamped keys with their final
//    key): a log in version order, the keys' bytes packed in one buffer (KeyLog), and two
//    indexes over it, both brought up to date lazily, only when a check needs them:
//    * the newest write of each key, in an open-addressing hash table over the key bytes
//      (PointIndex: typed arrays, no object per key), for point reads (one probe). w10's
//      blind writes check nothing, so there recording a write is a copy of its key into
//      the log: the JS Map of key strings it replaces (a lookup or insert per written key,
//      a delete at the prune) was a quarter of the main thread's user CPU under w10
//      (perf, 2026-11-30: V8's FindOrderedHashMapEntry, ~4 cache misses per lookup in a
//      100,000-key table), and its strings and entries lived the window in the old
//      generation. A check first brings the index up to the log's end (each write enters
//      it once: what m90's checks cost per write is what the eager map cost).
//    * for range reads, the same writes in a VersionedMap ordered by key with the max
//      version of every subtree (a range read's check is O(log n) whatever the range's
//      size). Recording a write into it walks up the tree (~20 nodes, most of them cache
//      misses, per key), so range reads scan the log entries newer than their read
//      version that it lacks until those scans cost more than catching it up would (the
//      rule: shard/lazy-sync.ts; why the answer is exact: writtenIn).
//  - range clears: one step entry per cleared range (RangeVersions), never one per key,
//    so a 1,000,000-key clearRange costs what a one-key clear does.
// A point check is O(1), a range check O(log window) plus its scan, amortized: each write
// enters each index at most once and is scanned about twice. Below the horizon nothing is known:
// TRANSACTION_TOO_OLD. A fresh history (a start, a cluster node that begins to lead)
// knows nothing of versions before it and begins with its horizon there.
import { keyFromString, keyString } from '../keys/bytes.js';
import type { KeyRange } from '../keys/ranges.js';
import { firstAfter, LazySync, type LazyPolicy } from '../shard/lazy-sync.js';
import { RangeVersions, VersionedMap } from '../shard/versioned-map.js';

/** A read-conflict range as latin-1 key strings; end null: the single key `begin` (a read of [k, k + 0x00)). */
export type ReadRange = readonly [begin: string, end: string | null];

export type ResolveOutcome = null | 'CONFLICT' | 'TOO_OLD';

/** Range clears a prune forgets beyond those recorded since the previous one (the rest wait for the next prune, every HORIZON_TICK_MS). */
export const CLEARS_PER_PRUNE = 1024;

/**
 * A commit's writes: point-written keys (bytes as the commit carries them, copied into the
 * log; latin-1 key strings are accepted too, for tests) and cleared ranges [begin, end) as
 * latin-1 key strings.
 */
export interface CommitWrites {
  keys: readonly (Uint8Array | string)[];
  ranges: readonly (readonly [string, string])[];
}

/** 32-bit FNV-1a of bytes [from, to) of `b`, mixed (murmur3's finalizer) so that the low bits of similar keys spread. */
function hashBytes(b: Uint8Array, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return mix(h);
}

/** hashBytes of a latin-1 key string's bytes. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return mix(h);
}

function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

const INITIAL_ENTRIES = 1024;
const INITIAL_SLOTS = 1024;

/**
 * The point writes in version order, from `head` to `end`: entry i is the key in bytes
 * [starts[i], starts[i + 1]) of `bytes`, written at versions[i]. Nothing per entry on the
 * JS heap. Indices are positions in these arrays: compact() moves the live entries to the
 * front (callers shift their own indices by what it returns).
 */
class KeyLog {
  bytes = new Uint8Array(16 * INITIAL_ENTRIES);
  /** starts[end] is where the next key goes. */
  starts = new Int32Array(INITIAL_ENTRIES + 1);
  versions = new Float64Array(INITIAL_ENTRIES);
  head = 0;
  end = 0;

  get size(): number {
    return this.end - this.head;
  }

  /** Appends a key (its bytes, or a latin-1 key string's) at `version`; returns the entry's index. */
  push(key: Uint8Array | string, version: number): number {
    const n = key.length;
    if (this.end === this.versions.length) this.growEntries();
    let at = this.starts[this.end]!;
    if (at + n > this.bytes.length) {
      this.growBytes(n);
      at = this.starts[this.end]!;
    }
    if (typeof key === 'string') for (let i = 0; i < n; i++) this.bytes[at + i] = key.charCodeAt(i);
    else this.bytes.set(key, at);
    const i = this.end++;
    this.versions[i] = version;
    this.starts[i + 1] = at + n;
    return i;
  }

  /** Entry i's key as a latin-1 key string (the ordered map's keys). */
  keyString(i: number): string {
    return keyString(this.bytes.subarray(this.starts[i]!, this.starts[i + 1]!));
  }

  hash(i: number): number {
    return hashBytes(this.bytes, this.starts[i]!, this.starts[i + 1]!);
  }

  /** Whether entries i and j hold the same key. */
  same(i: number, j: number): boolean {
    const b = this.bytes;
    let p = this.starts[i]!;
    const pe = this.starts[i + 1]!;
    let q = this.starts[j]!;
    if (pe - p !== this.starts[j + 1]! - q) return false;
    while (p < pe) if (b[p++] !== b[q++]) return false;
    return true;
  }

  /** Whether entry i's key is the latin-1 key string `s`. */
  is(i: number, s: string): boolean {
    const b = this.bytes;
    const p = this.starts[i]!;
    if (this.starts[i + 1]! - p !== s.length) return false;
    for (let k = 0; k < s.length; k++) if (b[p + k] !== s.charCodeAt(k)) return false;
    return true;
  }

  /** Whether entry i's key is in [b, e) (bytes). */
  within(i: number, b: Uint8Array, e: Uint8Array): boolean {
    return this.compare(i, b) >= 0 && this.compare(i, e) < 0;
  }

  /** Entry i's key against `k`, in byte order (memcmp, then length). */
  private compare(i: number, k: Uint8Array): number {
    const b = this.bytes;
    const p = this.starts[i]!;
    const n = this.starts[i + 1]! - p;
    const m = n < k.length ? n : k.length;
    for (let x = 0; x < m; x++) {
      const d = b[p + x]! - k[x]!;
      if (d !== 0) return d;
    }
    return n - k.length;
  }

  /** Moves the live entries to the front; returns by how much their indices went down. */
  compact(): number {
    const h = this.head;
    if (h === 0) return 0;
    const base = this.starts[h]!;
    const top = this.starts[this.end]!;
    this.bytes.copyWithin(0, base, top);
    const live = this.end - h;
    for (let i = 0; i <= live; i++) this.starts[i] = this.starts[h + i]! - base;
    this.versions.copyWithin(0, h, this.end);
    this.head = 0;
    this.end = live;
    return h;
  }

  /** Room for one more entry (the callers compact first when half the log is forgotten). */
  private growEntries(): void {
    const cap = this.versions.length * 2;
    const starts = new Int32Array(cap + 1);
    starts.set(this.starts);
    this.starts = starts;
    const versions = new Float64Array(cap);
    versions.set(this.versions);
    this.versions = versions;
  }

  private growBytes(n: number): void {
    const used = this.starts[this.end]! - this.starts[this.head]!;
    let size = this.bytes.length;
    // moving the live keys to the front is enough when at least half the buffer is forgotten
    // (indices do not move here: only the offsets)
    while (size < 2 * (used + n)) size *= 2;
    const base = this.starts[this.head]!;
    if (size === this.bytes.length) this.bytes.copyWithin(0, base, base + used);
    else {
      const next = new Uint8Array(size);
      next.set(this.bytes.subarray(base, base + used));
      this.bytes = next;
    }
    for (let i = this.head; i <= this.end; i++) this.starts[i] = this.starts[i]! - base;
  }
}

/**
 * The newest write of each key among the log's entries below `synced`: open addressing
 * with linear probing over the key bytes; a slot holds an entry index + 1 (0: empty) and
 * the key's hash. Kept at most half full; deletions shift the probe run back (no tombstones).
 */
class PointIndex {
  entry = new Int32Array(INITIAL_SLOTS);
  hashes = new Int32Array(INITIAL_SLOTS);
  mask = INITIAL_SLOTS - 1;
  count = 0;
  /** Log entries below this index are in the table (or forgotten). */
  synced = 0;

  constructor(private readonly log: KeyLog) {}

  /** Slot of log entry i's key (its hash h), or -1. */
  private find(i: number, h: number): number {
    const entry = this.entry;
    const hashes = this.hashes;
    const mask = this.mask;
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const e = entry[s]!;
      if (e === 0) return -1;
      if (hashes[s] === h && this.log.same(e - 1, i)) return s;
    }
  }

  /** Index of the newest write of key `s` (a latin-1 key string) in the table, or -1. */
  newestOf(s: string): number {
    const h = hashString(s);
    const entry = this.entry;
    const hashes = this.hashes;
    const mask = this.mask;
    for (let x = h & mask; ; x = (x + 1) & mask) {
      const e = entry[x]!;
      if (e === 0) return -1;
      if (hashes[x] === h && this.log.is(e - 1, s)) return e - 1;
    }
  }

  /** Index of the newest write of entry i's key in the table, or -1. */
  newestOfEntry(i: number): number {
    const s = this.find(i, this.log.hash(i));
    return s < 0 ? -1 : this.entry[s]! - 1;
  }

  /** Brings the log's entries up to `end` in: each is its key's newest write when it goes in. */
  syncTo(end: number): void {
    const log = this.log;
    for (let i = this.synced; i < end; i++) {
      if (2 * (this.count + 1) > this.entry.length) this.rehash(this.entry.length * 2);
      const h = log.hash(i);
      const entry = this.entry;
      const hashes = this.hashes;
      const mask = this.mask;
      let s = h & mask;
      for (; ; s = (s + 1) & mask) {
        const e = entry[s]!;
        if (e === 0) {
          hashes[s] = h;
          this.count++;
          break;
        }
        if (hashes[s] === h && log.same(e - 1, i)) break;
      }
      entry[s] = i + 1;
    }
    if (end > this.synced) this.synced = end;
  }

  /** Log entry i (in the table) is forgotten: its key leaves the table if i is its newest write. */
  forget(i: number): void {
    const h = this.log.hash(i);
    let s = this.find(i, h);
    if (s < 0 || this.entry[s] !== i + 1) return;
    // backward-shift deletion: entries of the probe run after s that may move up, do
    const entry = this.entry;
    const hashes = this.hashes;
    const mask = this.mask;
    for (let t = (s + 1) & mask; entry[t] !== 0; t = (t + 1) & mask) {
      const home = hashes[t]! & mask;
      // t's entry stays when its home is cyclically in (s, t]
      if (s <= t ? s < home && home <= t : s < home || home <= t) continue;
      entry[s] = entry[t]!;
      hashes[s] = hashes[t]!;
      s = t;
    }
    entry[s] = 0;
    this.count--;
    if (this.entry.length > INITIAL_SLOTS && 8 * this.count < this.entry.length) this.rehash(this.entry.length / 2);
  }

  /** The log's indices went down by `offset` (KeyLog.compact). */
  shifted(offset: number): void {
    if (offset === 0) return;
    const entry = this.entry;
    for (let s = 0; s < entry.length; s++) if (entry[s] !== 0) entry[s] = entry[s]! - offset;
    this.synced = Math.max(0, this.synced - offset);
  }

  private rehash(size: number): void {
    const oldEntry = this.entry;
    const oldHashes = this.hashes;
    this.entry = new Int32Array(size);
    this.hashes = new Int32Array(size);
    this.mask = size - 1;
    for (let s = 0; s < oldEntry.length; s++) {
      const e = oldEntry[s]!;
      if (e === 0) continue;
      const h = oldHashes[s]!;
      let t = h & this.mask;
      while (this.entry[t] !== 0) t = (t + 1) & this.mask;
      this.entry[t] = e;
      this.hashes[t] = h;
    }
  }
}

export class ConflictHistory {
  /** Point writes in version order (for the indexes, checks' scans and pruning). */
  private readonly log = new KeyLog();
  /** Newest write of each key among the log's entries below `points.synced` (point checks); synced by each check. */
  private readonly points: PointIndex;
  /**
   * The point writes of the log entries below `sync.synced`, ordered by key with subtree
   * maxima (range checks): for each key, its newest write among those entries, unless pruned.
   */
  private readonly ordered = new VersionedMap();
  /** How much of the log `ordered` holds (always >= the log's head), and when to catch it up. */
  private readonly sync: LazySync;
  /** Newest range clear over each part of the keyspace. */
  private readonly cleared = new RangeVersions();
  /** Range clears in version order (for pruning), from clearHead on. */
  private clears: { begin: string; end: string; version: number }[] = [];
  private clearHead = 0;
  /** Range clears recorded since the last prune (how many a prune must forget at least, to keep up). */
  private clearsAdded = 0;
  /** Newest commit version recorded. */
  newestVersion: number;
  /** Checks of read versions below this fail TOO_OLD: what was written at or below it is forgotten. */
  horizon: number;
  /** Where this history began (a start, or a cluster node beginning to lead): nothing before it was recorded here. */
  readonly startVersion: number;

  /**
   * An empty history: nothing is known about versions at or below `horizon`. `lazy`: when
   * range checks scan the log and when they catch the ordered map up (shard/lazy-sync.ts;
   * tests pass small limits to exercise every way of a range check).
   */
  constructor(horizon: number, lazy: LazyPolicy = {}) {
    this.points = new PointIndex(this.log);
    this.sync = new LazySync((from, to) => this.insert(from, to), lazy);
    this.horizon = horizon;
    this.newestVersion = horizon;
    this.startVersion = horizon;
  }

  /**
   * Whether a transaction at `readVersion` that read `reads` may commit after every
   * commit recorded so far: 'CONFLICT' when one of them (newer than the read version)
   * wrote a key or cleared a range it read; 'TOO_OLD' when the read version is below the
   * horizon (and it read something; a blind write is never too old). O(reads x log n),
   * amortized.
   */
  check(readVersion: number, reads: readonly ReadRange[]): ResolveOutcome {
    if (reads.length === 0) return null;
    if (readVersion < this.horizon) return 'TOO_OLD';
    if (readVersion >= this.newestVersion) return null;
    const clears = this.clears.length > this.clearHead;
    for (const [b, e] of reads) {
      if (e === null) {
        if (this.points.synced < this.log.end) this.points.syncTo(this.log.end);
        const i = this.points.newestOf(b);
        if (i >= 0 && this.log.versions[i]! > readVersion) return 'CONFLICT';
        if (clears && this.cleared.valueAt(b) > readVersion) return 'CONFLICT';
        continue;
      }
      if (b >= e) continue;
      if (this.writtenIn(b, e, readVersion)) return 'CONFLICT';
      if (clears && this.cleared.maxOverlap(b, e) > readVersion) return 'CONFLICT';
    }
    return null;
  }

  /**
   * Whether a key of [b, e) has a point write newer than `readVersion` in the window.
   * Exact either way: the ordered map answers for the log entries below `sync.synced`
   * (for each key it holds the newest of them: a newer write of the key is at or above
   * that index), and the entries from there on that are newer than the read version are
   * scanned (those at or below it cannot conflict).
   */
  private writtenIn(b: string, e: string, readVersion: number): boolean {
    const log = this.log;
    const end = log.end;
    if (this.sync.synced < end) {
      const from = this.sync.scanFrom(firstAfter(log.versions, readVersion, this.sync.synced, end), end);
      if (from < end) {
        const bb = keyFromString(b);
        const eb = keyFromString(e);
        for (let i = from; i < end; i++) if (log.within(i, bb, eb)) return true;
      }
    }
    return this.ordered.maxIn(b, e) > readVersion;
  }

  /** Brings log entries [from, to) into the ordered map; only each key's newest write goes in. */
  private insert(from: number, to: number): void {
    const log = this.log;
    // which write of a key is its newest: the point index, up to date
    if (this.points.synced < log.end) this.points.syncTo(log.end);
    for (let i = from; i < to; i++) {
      // an older write of a key written again later: the later one goes in
      if (this.points.newestOfEntry(i) === i) this.ordered.set(log.keyString(i), log.versions[i]!);
    }
  }

  /** Records the writes of the commit at `version`, which is newer than every version recorded. */
  record(version: number, writes: CommitWrites): void {
    if (version <= this.newestVersion) throw new Error(`resolver: commit ${version} recorded after ${this.newestVersion} (out of version order)`);
    this.newestVersion = version;
    const keys = writes.keys;
    for (let i = 0; i < keys.length; i++) this.log.push(keys[i]!, version);
    this.sync.recorded(keys.length, this.log.end);
    for (const [b, e] of writes.ranges) {
      if (b >= e) continue;
      this.cleared.assign(b, e, version);
      this.clears.push({ begin: b, end: e, version });
      this.clearsAdded++;
    }
  }

  /** check(), then record() when it passes: one commit, resolved in version order. */
  resolve(readVersion: number, reads: readonly ReadRange[], version: number, writes: CommitWrites): ResolveOutcome {
    const outcome = this.check(readVersion, reads);
    if (outcome === null) this.record(version, writes);
    return outcome;
  }

  /**
   * Forgets writes at or below `horizon` (no read version that may still commit is below
   * it: they fail TOO_OLD). Never moves the horizon back.
   */
  prune(horizon: number): void {
    if (horizon <= this.horizon) return;
    this.horizon = horizon;
    const log = this.log;
    const vs = log.versions;
    let head = log.head;
    // entries never indexed leave without a lookup (w10: every entry)
    const indexed = this.points.synced;
    const inOrdered = this.sync.synced;
    while (head < log.end && vs[head]! <= horizon) {
      // the key's newest write is this one (not a later one): it goes
      if (head < indexed) this.points.forget(head);
      if (head < inOrdered && this.ordered.size > 0) {
        const k = log.keyString(head);
        if (this.ordered.get(k) === vs[head]) this.ordered.deletePresent(k);
      }
      head++;
    }
    log.head = head;
    if (this.points.synced < head) this.points.synced = head;
    this.sync.forgot(head);
    // at most CLEARS_PER_PRUNE more than were recorded since the last prune: a commit with
    // 20,000 clears held the main thread (every shard's commits) ~80 ms at load 2, 240 ms
    // at load 9, when all of them left the window at once. A clear left in the step
    // function past the horizon conflicts with nothing (reads below the horizon are TOO_OLD)
    let budget = CLEARS_PER_PRUNE + this.clearsAdded;
    this.clearsAdded = 0;
    while (budget-- > 0 && this.clearHead < this.clears.length && this.clears[this.clearHead]!.version <= horizon) {
      const c = this.clears[this.clearHead]!;
      this.cleared.forget(c.begin, c.end, c.version);
      this.clearHead++;
    }
    // compact the log now and then so it does not grow forever
    if (log.head > 4096 && log.head * 2 > log.end) {
      const offset = log.compact();
      this.points.shifted(offset);
      this.sync.shifted(offset);
    }
    if (this.clearHead > 1024 && this.clearHead * 2 > this.clears.length) {
      this.clears = this.clears.slice(this.clearHead);
      this.clearHead = 0;
    }
  }

  /** Keys with a point write in the window (status, tests; brings the point index up to date). */
  get keys(): number {
    if (this.points.synced < this.log.end) this.points.syncTo(this.log.end);
    return this.points.count;
  }

  /** Keys in the point index now (tests: it stays empty while no check needs it). */
  get indexedKeys(): number {
    return this.points.count;
  }

  /** Point writes in the log (the window's). */
  get loggedWrites(): number {
    return this.log.size;
  }

  /** Keys in the ordered map (tests: it stays empty while no range read needs it). */
  get orderedKeys(): number {
    return this.ordered.size;
  }

  /** Range clears not yet forgotten: those in the window, and those past it that prunes still have to forget (status, tests). */
  get ranges(): number {
    return this.clears.length - this.clearHead;
  }

  /** Step boundaries of the cleared ranges (memory: about two per live range clear). */
  get rangeBoundaries(): number {
    return this.cleared.size;
  }
}

/** Whether `end` is `begin` + 0x00 (the range of one key). */
function isKeyAfter(begin: Uint8Array, end: Uint8Array): boolean {
  if (end.length !== begin.length + 1 || end[begin.length] !== 0) return false;
  for (let i = 0; i < begin.length; i++) if (begin[i] !== end[i]) return false;
  return true;
}

/** A commit's read-conflict ranges as the resolver takes them (single keys recognized). */
export function readRangesOf(ranges: readonly KeyRange[]): ReadRange[] {
  const out: ReadRange[] = new Array(ranges.length);
  for (let i = 0; i < ranges.length; i++) {
    const { begin, end } = ranges[i]!;
    out[i] = isKeyAfter(begin, end) ? [keyString(begin), null] : [keyString(begin), keyString(end)];
  }
  return out;
}
