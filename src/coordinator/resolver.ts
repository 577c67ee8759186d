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
//    key): the newest write version of each key in a plain hash map (a point read's check
//    is one lookup; recording a write is one hash update and a push on the log), and, for
//    range reads, the same writes in a VersionedMap ordered by key with the max version
//    of every subtree (a range read's check is O(log n) whatever the range's size). The
//    ordered map is brought up to date lazily, from the log of writes, only when a range
//    read needs it: recording a write into it walks up the tree (~20 nodes, most of them
//    cache misses, per key; the resolver's largest cost under w10, which reads nothing),
//    and range reads scan the log entries newer than their read version that it lacks
//    until those scans cost more than catching it up would (the rule: shard/lazy-sync.ts;
//    why the answer is exact: writtenIn).
//  - range clears: one step entry per cleared range (RangeVersions), never one per key,
//    so a 1,000,000-key clearRange costs what a one-key clear does.
// A point check is O(1), a range check O(log window) plus its scan, amortized: each write
// enters the ordered map at most once and is scanned about twice. Below the horizon nothing is known:
// TRANSACTION_TOO_OLD. A fresh history (a start, a cluster node that begins to lead)
// knows nothing of versions before it and begins with its horizon there.
import { keyString } from '../keys/bytes.js';
import type { KeyRange } from '../keys/ranges.js';
import { firstAfter, LazySync, type LazyPolicy } from '../shard/lazy-sync.js';
import { RangeVersions, VersionedMap } from '../shard/versioned-map.js';

/** A read-conflict range as latin-1 key strings; end null: the single key `begin` (a read of [k, k + 0x00)). */
export type ReadRange = readonly [begin: string, end: string | null];

export type ResolveOutcome = null | 'CONFLICT' | 'TOO_OLD';

/** Range clears a prune forgets beyond those recorded since the previous one (the rest wait for the next prune, every HORIZON_TICK_MS). */
export const CLEARS_PER_PRUNE = 1024;

/** A commit's writes as latin-1 key strings: point-written keys and cleared ranges [begin, end). */
export interface CommitWrites {
  keys: readonly string[];
  ranges: readonly (readonly [string, string])[];
}

/** A key's newest point write in the window (ConflictHistory.newest). */
interface Written {
  readonly key: string;
  version: number;
}

export class ConflictHistory {
  /**
   * Newest write version of each point-written key in the window. An entry per key, its
   * version updated in place: a key written again keeps the entry and its first string
   * (the log refers to that one too), so a rewrite leaves nothing new that lives the
   * window. Before, each write kept a fresh key string and a boxed version (versions are
   * past 2^31) for the window's ~5 s: most of what the main thread's scavenges copied
   * under w10.
   */
  private readonly newest = new Map<string, Written>();
  /**
   * The point writes of the log entries below `sync.synced`, ordered by key with subtree
   * maxima (range checks): for each key, its newest write among those entries, unless pruned.
   */
  private readonly ordered = new VersionedMap();
  /** How much of the log `ordered` holds (always >= logHead), and when to catch it up. */
  private readonly sync: LazySync;
  /** Newest range clear over each part of the keyspace. */
  private readonly cleared = new RangeVersions();
  /** Point writes in version order (for pruning, and the ordered map's catch-up), from logHead on. */
  private logKeys: string[] = [];
  private logVersions: number[] = [];
  private logHead = 0;
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
        if ((this.newest.get(b)?.version ?? 0) > readVersion) return 'CONFLICT';
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
    const end = this.logKeys.length;
    if (this.sync.synced < end) {
      const from = this.sync.scanFrom(firstAfter(this.logVersions, readVersion, this.sync.synced, end), end);
      const keys = this.logKeys;
      for (let i = from; i < end; i++) {
        const k = keys[i]!;
        if (k >= b && k < e) return true;
      }
    }
    return this.ordered.maxIn(b, e) > readVersion;
  }

  /** Brings log entries [from, to) into the ordered map; only each key's newest write goes in. */
  private insert(from: number, to: number): void {
    const keys = this.logKeys;
    const versions = this.logVersions;
    for (let i = from; i < to; i++) {
      const k = keys[i]!;
      const v = versions[i]!;
      // an older write of a key written again later: the later one goes in
      if (this.newest.get(k)?.version === v) this.ordered.set(k, v);
    }
  }

  /** Records the writes of the commit at `version`, which is newer than every version recorded. */
  record(version: number, writes: CommitWrites): void {
    if (version <= this.newestVersion) throw new Error(`resolver: commit ${version} recorded after ${this.newestVersion} (out of version order)`);
    this.newestVersion = version;
    const keys = writes.keys;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      let w = this.newest.get(k);
      if (w === undefined) this.newest.set(k, (w = { key: k, version }));
      else w.version = version;
      this.logKeys.push(w.key);
      this.logVersions.push(version);
    }
    this.sync.recorded(writes.keys.length, this.logKeys.length);
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
    while (this.logHead < this.logKeys.length && this.logVersions[this.logHead]! <= horizon) {
      const k = this.logKeys[this.logHead]!;
      const v = this.logVersions[this.logHead]!;
      // the key's newest write is this one (not a later one): it goes
      if (this.newest.get(k)?.version === v) this.newest.delete(k);
      if (this.logHead < this.sync.synced && this.ordered.get(k) === v) this.ordered.deletePresent(k);
      this.logHead++;
    }
    this.sync.forgot(this.logHead);
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
    // compact the logs now and then so they do not grow forever
    if (this.logHead > 4096 && this.logHead * 2 > this.logKeys.length) {
      this.logKeys = this.logKeys.slice(this.logHead);
      this.logVersions = this.logVersions.slice(this.logHead);
      this.sync.shifted(this.logHead);
      this.logHead = 0;
    }
    if (this.clearHead > 1024 && this.clearHead * 2 > this.clears.length) {
      this.clears = this.clears.slice(this.clearHead);
      this.clearHead = 0;
    }
  }

  /** Keys with a point write in the window (status, tests). */
  get keys(): number {
    return this.newest.size;
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
