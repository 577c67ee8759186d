// MVCC version window of one shard. Pure (no RocksDB, no thread, no clock), so it is
// unit-tested directly.
//
// RocksDB holds only the latest applied state of each key, plus rows that a range clear
// has hidden but not yet deleted (see "range tombstones" below). The window remembers,
// for the last few seconds of commits:
//  - point writes: for each key written, a chain of (version, value before that write),
//    found by hash; a read at r of a key written after r takes the before-value of the
//    first such write. For range reads, the keys' newest write versions also go into a
//    sorted map with max versions (versioned-map.ts), where a range read at r finds the
//    keys written after r in O(log n) each; that map is filled from the write log only
//    when a range read needs it (as the resolver's: coordinator/resolver.ts), because
//    each write into it walks up the tree (~20 nodes, most of them cache misses), the
//    largest item of a shard's window under w10, which reads no range (the rule:
//    lazy-sync.ts).
//    (Conflict checks are not made here: the coordinator's resolver keeps its own
//    keyspace-wide history of write versions, coordinator/resolver.ts.)
//  - range clears, as range tombstones: one entry per cleared range, never one per key.
//    A row in RocksDB under a live tombstone of version c is hidden from reads at r >= c
//    unless the key was written at c or later (its newest write version says so). The
//    rows are deleted physically (RocksDB DeleteRange) once no reader can need them,
//    i.e. when the window's horizon passes c; keys written since are put back (prune /
//    survivors / dropTombstones, driven by the shard).
// The shard applies commits in version order, so each key's chain is sorted.
import { ByteRing } from './byte-ring.js';
import { firstAfter, LazySync, type LazyPolicy } from './lazy-sync.js';
import { RangeSet } from '../keys/ranges.js';
import { RangeVersions, VersionedMap } from './versioned-map.js';
import { ENTRY_BYTES, FLAG_ORDERED, INLINE_KEY_BYTES, KeyTable } from './key-table.js';

/** Bytes of one write log slot (the parallel typed arrays: 3 Float64, 3 Int32). */
const LOG_SLOT_BYTES = 36;
/**
 * JS heap per key beyond its bytes, measured (heldBytes): a key longer than
 * INLINE_KEY_BYTES is a Uint8Array of its own in the key table (194-211 bytes, 64- to
 * 1,000-byte keys); a key in the sorted map (`ordered`, filled once range reads need it)
 * is a tree node, a Map entry and a string (184-193 bytes plus its length, 32- to
 * 1,000-byte keys). 200,000 keys after full GCs, 2026-11-30 (test/unit/shard/window-held-bytes.test.ts).
 */
export const LONG_KEY_BYTES = 200;
export const ORDERED_KEY_BYTES = 190;

/** Writes the log holds room for at first (it doubles as needed). */
const INITIAL_LOG = 1024;

/** A range clear not yet applied physically. */
export interface Tombstone {
  begin: string;
  end: string;
  version: number;
  /** Its position among the commit's cleared ranges (names its durable record). */
  index: number;
  /** Handed to the shard for physical deletion (prune), not yet dropped. */
  applying: boolean;
  /** Its rows are deleted and its steps forgotten (forgetTombstone): it hides nothing, though still listed. */
  forgotten: boolean;
}

export class VersionWindow {
  /**
   * The shard's key table (key-table.ts, shared with its row cache): a key written in the
   * window is an entry whose `newest` is the index of its newest write in the log (the
   * older ones are linked from it), -1 for a key with no write in the window.
   */
  readonly table: KeyTable;
  /** Keys with a write in the window, and the sum of their lengths (memory estimate: heldBytes). */
  private keyCount = 0;
  private keyBytes = 0;
  /** Of those, keys longer than INLINE_KEY_BYTES; and keys in `ordered` and their bytes (heldBytes). */
  private longKeys = 0;
  private orderedKeyBytes = 0;
  /**
   * The keys of the write log's entries below `sync.synced`, sorted, each with its newest
   * write among those entries (a newer one is at or above that index); a key whose chain
   * emptied is removed. Entries older than the horizon may linger (never read: reads and
   * survivors ask for versions above it).
   */
  private readonly ordered = new VersionedMap();
  /** How much of the write log `ordered` holds (always >= logHead), and when to catch it up. */
  private readonly sync: LazySync;
  private readonly tombs = new RangeVersions();
  /** Live tombstones in version order. */
  private tombList: Tombstone[] = [];
  /**
   * The live tombstones by commit, in version order: each commit's ranges merged and sorted,
   * so "which older tombstone covers this key" costs O(log n) per commit, not a walk of
   * every tombstone (a commit writing 20,000 keys under the 20,000 clears of an earlier one
   * took 2.1 s of its shard's thread walking them). `forgotten`: its tombstones' rows are
   * deleted and their steps forgotten (forgetTombstone forgets a commit's only as a whole).
   */
  private tombCommits: { version: number; ranges: RangeSet; forgotten: boolean }[] = [];
  /** The first `handed` tombstones of the list were handed out by prune (applying). */
  private handed = 0;
  /**
   * The write log, in version order, one entry per point write, from logHead to logEnd:
   * parallel typed arrays and the value bytes in a ByteRing, so that a write allocates
   * nothing on the JS heap that lives the window (under w10 every write lives it, 5 s:
   * objects per write were copied by two young-generation scavenges each and promoted,
   * the shard threads' largest GC pauses). Entry i: the write's version, its key's table entry,
   * the key's previous write still in the log (link; < logHead: none), the row RocksDB
   * held before the write (prevLen -1: none; else prevLen bytes at prevPos in `values`;
   * prevPos never decreases along the log, also for none), and the version of the first
   * tombstone that hid that row before the write (hidden; Infinity: none): a read at r
   * with hidden <= r < version sees no value.
   */
  /** Entry (key table) of each write's key. */
  private logKeys = new Int32Array(INITIAL_LOG);
  private logVersions = new Float64Array(INITIAL_LOG);
  private logLinks = new Int32Array(INITIAL_LOG);
  private logPrevPos = new Float64Array(INITIAL_LOG);
  private logPrevLen = new Int32Array(INITIAL_LOG);
  private logHidden = new Float64Array(INITIAL_LOG);
  private logHead = 0;
  private logEnd = 0;
  private readonly values = new ByteRing();
  private commits: number[] = [];
  private commitsHead = 0;
  /** Newest version applied; reads at r >= newestVersion need no correction (when no tombstone is live). */
  newestVersion = 0;
  /** Reads and conflict checks at a version below this fail with TOO_OLD. */
  horizon = 0;

  /** `lazy`: when range reads scan the log and when they catch the sorted map up (lazy-sync.ts; tests pass small limits). */
  constructor(initialVersion = 0, lazy: LazyPolicy = {}, table?: KeyTable) {
    this.table = table ?? new KeyTable();
    this.newestVersion = initialVersion;
    this.horizon = initialVersion;
    this.sync = new LazySync((from, to) => this.insert(from, to), lazy);
  }

  /**
   * Record one applied commit: `changes` maps each key it point-wrote to the row RocksDB
   * held for it before the commit (the physical before-image: tombstones are accounted
   * here); `ranges` are the ranges it cleared (tombstones). (The shard records by table
   * entry: beginRecord, recordWrite, endRecord.)
   */
  record(version: number, changes: Map<string, Uint8Array | null>, ranges: readonly (readonly [string, string])[] = []): void {
    this.beginRecord(version);
    for (const [key, prev] of changes) this.recordWrite(version, this.table.intern(key), prev);
    this.endRecord(version, changes.size, ranges);
  }

  /** Starts recording commit `version` (commits are recorded in version order). */
  beginRecord(version: number): void {
    if (version <= this.newestVersion && this.commits.length > this.commitsHead) {
      throw new Error(`commits must be recorded in version order: ${version} after ${this.newestVersion}`);
    }
  }

  /** Commit `version` point-wrote the key of table entry `e`, which RocksDB held as `prev` before (null: no row). Once per key and commit. */
  recordWrite(version: number, e: number, prev: Uint8Array | null): void {
    const t = this.table;
    let newest = t.newest(e);
    if (newest < 0) {
      const n = t.keyLength(e);
      this.keyCount++;
      this.keyBytes += n;
      if (n > INLINE_KEY_BYTES) this.longKeys++;
    }
    const lastWrite = newest >= 0 ? this.logVersions[newest]! : 0;
    const hiddenFrom = this.tombList.length === 0 ? Infinity : this.firstTombstoneAfter(t.keyString(e), lastWrite);
    if (this.logEnd === this.logVersions.length) {
      this.makeRoom();
      newest = t.newest(e);
    }
    const i = this.logEnd++;
    this.logKeys[i] = e;
    this.logVersions[i] = version;
    this.logLinks[i] = newest;
    if (prev === null) {
      this.logPrevPos[i] = this.values.position;
      this.logPrevLen[i] = -1;
    } else {
      this.logPrevPos[i] = this.values.append(prev);
      this.logPrevLen[i] = prev.length;
    }
    this.logHidden[i] = hiddenFrom;
    t.setNewest(e, i);
  }

  /** Ends recording commit `version`: it wrote `writes` keys (recordWrite) and cleared `ranges`. */
  endRecord(version: number, writes: number, ranges: readonly (readonly [string, string])[] = []): void {
    this.sync.recorded(writes, this.logEnd);
    let cleared = false;
    for (let i = 0; i < ranges.length; i++) {
      const [b, e] = ranges[i]!;
      if (b >= e) continue;
      this.tombs.assign(b, e, version);
      this.tombList.push({ begin: b, end: e, version, index: i, applying: false, forgotten: false });
      cleared = true;
    }
    if (cleared) this.tombCommits.push({ version, ranges: RangeSet.from(ranges), forgotten: false });
    this.commits.push(version);
    if (version > this.newestVersion) this.newestVersion = version;
  }

  /** Whether any range clear is live (reads must then look at tombstones). */
  get hasTombstones(): boolean {
    return this.tombList.length > 0;
  }

  /**
   * The value of `key` at `readVersion`, given `base`, RocksDB's current value for it
   * (undefined when not read: only valid for keys written after readVersion).
   */
  valueAt(key: string, readVersion: number, base: Uint8Array | null | undefined): Uint8Array | null {
    return this.valueAtEntry(this.table.find(key), key, readVersion, base);
  }

  /** valueAt() of the key of table entry `e` (-1: a key not in the table, so not written in the window). */
  valueAtEntry(e: number, key: string, readVersion: number, base: Uint8Array | null | undefined): Uint8Array | null {
    let newest = 0;
    const ni = e >= 0 ? this.table.newest(e) : -1;
    if (ni >= 0) {
      const vs = this.logVersions;
      let i = ni;
      newest = vs[i]!;
      if (newest > readVersion) {
        // first write after readVersion; chains are short, so a walk back from the newest is cheap
        const links = this.logLinks;
        for (;;) {
          const l = links[i]!;
          if (l < this.logHead || vs[l]! <= readVersion) break;
          i = l;
        }
        if (readVersion >= this.logHidden[i]!) return null;
        const n = this.logPrevLen[i]!;
        // a view into the window's bytes: valid until the window slides past this write
        return n < 0 ? null : this.values.view(this.logPrevPos[i]!, n);
      }
    }
    const b = base ?? null;
    if (this.tombList.length === 0 || b === null) return b;
    return this.hiddenAt(key, readVersion, newest) ? null : b;
  }

  /** Whether a live tombstone newer than the key's last write (`newest`) and not newer than readVersion covers key. */
  private hiddenAt(key: string, readVersion: number, newest: number): boolean {
    const c = this.tombs.valueAt(key);
    if (c <= newest) return false;
    if (c <= readVersion) return true;
    // the newest covering tombstone is after the read; an older one may still hide the key
    const tc = this.tombCommits;
    for (let i = this.firstCommitAfter(newest); i < tc.length && tc[i]!.version <= readVersion; i++) {
      if (!tc[i]!.forgotten && tc[i]!.ranges.containsKey(key)) return true;
    }
    return false;
  }

  /** Index of the first commit with tombstones whose version is > v. */
  private firstCommitAfter(v: number): number {
    const tc = this.tombCommits;
    let lo = 0;
    let hi = tc.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (tc[mid]!.version > v) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Version of the oldest live tombstone newer than `after` that covers key (Infinity: none). */
  private firstTombstoneAfter(key: string, after: number): number {
    if (this.tombList.length === 0 || this.tombs.valueAt(key) <= after) return Infinity;
    const tc = this.tombCommits;
    for (let i = this.firstCommitAfter(after); i < tc.length; i++) {
      if (!tc[i]!.forgotten && tc[i]!.ranges.containsKey(key)) return tc[i]!.version;
    }
    return Infinity;
  }

  /** Version of the key's newest write in the window (0: none). */
  lastWrite(key: string): number {
    const e = this.table.find(key);
    const i = e >= 0 ? this.table.newest(e) : -1;
    return i >= 0 ? this.logVersions[i]! : 0;
  }

  /** Keys of [begin, end) written after readVersion, in key order (or reverse). O(log n) per key (amortized). */
  *changedAfter(readVersion: number, begin: string, end: string, reverse = false): Generator<string> {
    if (readVersion >= this.newestVersion) return;
    yield* this.above(readVersion, begin, end, reverse);
  }

  /** Keys of [begin, end) written at `version` or later (rows a tombstone of that version must not delete). */
  survivors(begin: string, end: string, version: number): string[] {
    return [...this.above(version - 1, begin, end, false)];
  }

  /**
   * Keys of [b, e) whose newest write is after v, in key order (or reverse). Exact: the
   * sorted map answers for the log entries below `sync.synced`, and the entries from there
   * on that are newer than v are scanned (those at or below v cannot qualify), sorted, and
   * merged in (a key in both is yielded once).
   */
  private *above(v: number, b: string, e: string, reverse: boolean): Generator<string> {
    if (b >= e) return;
    let extra: string[] | null = null;
    const end = this.logEnd;
    if (this.sync.synced < end) {
      const from = this.sync.scanFrom(firstAfter(this.logVersions, v, this.sync.synced, end), end);
      let found: Set<string> | null = null;
      const t = this.table;
      for (let i = from; i < end; i++) {
        const k = this.logKeys[i]!;
        if (t.inRange(k, b, e)) (found ??= new Set()).add(t.keyString(k));
      }
      if (found !== null) {
        // latin-1 key strings: the default sort (UTF-16 code units) is byte order
        extra = [...found].sort();
        if (reverse) extra.reverse();
      }
    }
    const sorted = this.ordered.above(v, b, e, reverse);
    if (extra === null) {
      for (const [k] of sorted) yield k;
      return;
    }
    let i = 0;
    for (const [k] of sorted) {
      // the scanned keys that come before k, then k (once)
      while (i < extra.length && (reverse ? extra[i]! > k : extra[i]! < k)) yield extra[i++]!;
      if (i < extra.length && extra[i] === k) i++;
      yield k;
    }
    while (i < extra.length) yield extra[i++]!;
  }

  /** Brings write log entries [from, to) into the sorted map: each key's newest write. */
  private insert(from: number, to: number): void {
    const keys = this.logKeys;
    const versions = this.logVersions;
    const t = this.table;
    for (let i = from; i < to; i++) {
      const e = keys[i]!;
      // an older write of a key written again later: the later one goes in
      if (t.newest(e) === i) {
        this.ordered.set(t.keyString(e), versions[i]!);
        if (!t.hasFlag(e, FLAG_ORDERED)) this.orderedKeyBytes += t.keyLength(e);
        t.setFlag(e, FLAG_ORDERED);
      }
    }
  }

  /** The tombstone steps of [begin, end): [b, e, newest covering version (0: none)]. */
  tombstoneSteps(begin: string, end: string, reverse: boolean): [string, string, number][] {
    return this.tombs.steps(begin, end, reverse);
  }

  /** Whether key is under a live tombstone (its physical row must survive that tombstone's deletion). */
  covered(key: string): boolean {
    return this.tombList.length > 0 && this.tombs.valueAt(key) > 0;
  }

  /**
   * Slide the window: reads below newHorizon become TOO_OLD. Returns the tombstones that
   * no reader can need any more: the shard deletes their rows physically and then calls
   * dropTombstones. Until then they stay live, and so do the writes that must survive
   * them (the window keeps every write newer than the oldest live tombstone).
   */
  prune(newHorizon: number): Tombstone[] {
    const due: Tombstone[] = [];
    if (newHorizon <= this.horizon) return due;
    this.horizon = newHorizon;
    // from the first not handed out yet: those handed out wait for the shard (a commit
    // with 20,000 clears kept 20,000 of them listed for a second, and each prune walked them)
    let i = this.handed;
    for (; i < this.tombList.length; i++) {
      const t = this.tombList[i]!;
      if (t.version > newHorizon) break;
      t.applying = true;
      due.push(t);
    }
    this.handed = i;
    const limit = this.tombList.length > 0 ? Math.min(newHorizon, this.tombList[0]!.version - 1) : newHorizon;
    this.forgetWrites(limit);
    return due;
  }

  /** The rows of these tombstones are deleted: forget them (forgetTombstone each, then retireOldest). */
  dropTombstones(done: readonly Tombstone[]): void {
    if (done.length === 0) return;
    for (const t of done) this.forgetTombstone(t);
    this.retireOldest(done);
  }

  /**
   * The step function forgets `t` (its steps hide nothing any more, nor do steps of other
   * tombstones of its version that it shares: call only once the rows of every tombstone
   * of that version are deleted, shard/retire.ts). It stays in the list until retireOldest.
   */
  forgetTombstone(t: Tombstone): void {
    this.tombs.forget(t.begin, t.end, t.version);
    t.forgotten = true;
    const i = this.firstCommitAfter(t.version - 1);
    if (i < this.tombCommits.length && this.tombCommits[i]!.version === t.version) this.tombCommits[i]!.forgotten = true;
  }

  /**
   * Brings up to `n` more write log entries into the sorted map (range reads and
   * survivors then look there instead of scanning the log); true when it is up to date.
   */
  catchUpSome(n: number): boolean {
    return this.sync.catchUpSome(n, this.logEnd);
  }

  /**
   * The first `n` tombstones of the list are forgotten (forgetTombstone): forgets up to
   * `max` of the writes kept only for them (those at or below the horizon and older than
   * every other tombstone). True when none remain. In steps, so that a large backlog (the
   * writes of the window while they were live) goes without a long pause.
   */
  forgetWritesBefore(n: number, max: number): boolean {
    if (n > this.tombList.length || (n > 0 && !this.tombList[n - 1]!.forgotten)) throw new Error(`forgetWritesBefore(${n}): the first ${n} tombstones are not forgotten`);
    const next = this.tombList[n];
    return this.forgetWrites(next !== undefined ? Math.min(this.horizon, next.version - 1) : this.horizon, max);
  }

  /**
   * These tombstones, forgotten (forgetTombstone), leave the list, with the writes kept for
   * them. They are normally the oldest live ones, in order (one slice of the list then).
   */
  retireOldest(done: readonly Tombstone[]): void {
    if (done.length === 0) return;
    const n = done.length;
    let prefix = n <= this.tombList.length;
    for (let i = 0; prefix && i < n; i++) prefix = this.tombList[i] === done[i];
    // the tombstones go, and the commits none of whose tombstones is listed any more
    if (prefix) {
      this.tombList = this.tombList.slice(n);
      this.handed = Math.max(0, this.handed - n);
      const oldest = this.tombList.length > 0 ? this.tombList[0]!.version : Infinity;
      let k = 0;
      while (k < this.tombCommits.length && this.tombCommits[k]!.version < oldest) k++;
      if (k > 0) this.tombCommits = this.tombCommits.slice(k);
    } else {
      const gone = new Set(done);
      this.tombList = this.tombList.filter((t) => !gone.has(t));
      let h = 0;
      while (h < this.tombList.length && this.tombList[h]!.applying) h++;
      this.handed = h;
      const left = new Set(this.tombList.map((t) => t.version));
      this.tombCommits = this.tombCommits.filter((c) => left.has(c.version));
    }
    const limit = this.tombList.length > 0 ? Math.min(this.horizon, this.tombList[0]!.version - 1) : this.horizon;
    this.forgetWrites(limit);
  }

  /** Forgets the writes at or below `limit` (at most `max` of them); true when none remain. */
  private forgetWrites(limit: number, max = Infinity): boolean {
    const vs = this.logVersions;
    let head = this.logHead;
    const stop = Math.min(this.logEnd, head + max);
    const t = this.table;
    while (head < stop && vs[head]! <= limit) {
      const e = this.logKeys[head]!;
      // the key's newest write goes: its history is empty (older ones went before it)
      if (t.newest(e) === head) {
        const n = t.keyLength(e);
        t.setNewest(e, -1);
        this.keyCount--;
        this.keyBytes -= n;
        if (n > INLINE_KEY_BYTES) this.longKeys--;
        if (t.hasFlag(e, FLAG_ORDERED)) {
          this.ordered.delete(t.keyString(e));
          this.orderedKeyBytes -= n;
          t.clearFlag(e, FLAG_ORDERED);
        }
        // freed unless the row cache holds it (or lets go of it at its next recycle())
        t.release(e);
      }
      head++;
    }
    this.logHead = head;
    this.sync.forgot(head);
    // the bytes of forgotten writes go (prevPos never decreases along the log)
    this.values.release(head < this.logEnd ? this.logPrevPos[head]! : this.values.position);
    // a log grown by a burst or a pinned snapshot gives its room back once mostly empty
    const cap = this.logVersions.length;
    if (cap > 8 * INITIAL_LOG && (this.logEnd - head) * 8 < cap) this.resize(cap / 4);
    while (this.commitsHead < this.commits.length && this.commits[this.commitsHead]! <= limit) this.commitsHead++;
    if (this.commitsHead > 4096 && this.commitsHead * 2 > this.commits.length) {
      this.commits = this.commits.slice(this.commitsHead);
      this.commitsHead = 0;
    }
    return head >= this.logEnd || vs[head]! > limit;
  }

  /** The log is full: move the live entries to the front when at least half of it is forgotten, else double it. */
  private makeRoom(): void {
    const cap = this.logVersions.length;
    this.resize(this.logHead * 2 >= cap ? cap : cap * 2);
  }

  /**
   * Moves the live entries to the front of a log of `size` slots (at least the live
   * entries; the same arrays when `size` is the capacity). Indices (links, chains' newest,
   * synced) move by the same offset.
   */
  private resize(size: number): void {
    const head = this.logHead;
    const live = this.logEnd - head;
    const cap = this.logVersions.length;
    const move = <A extends Float64Array | Int32Array>(a: A, make: (n: number) => A): A => {
      if (size === cap) {
        a.copyWithin(0, head, this.logEnd);
        return a;
      }
      const b = make(size);
      b.set(a.subarray(head, this.logEnd));
      return b;
    };
    this.logVersions = move(this.logVersions, (n) => new Float64Array(n));
    this.logLinks = move(this.logLinks, (n) => new Int32Array(n));
    this.logPrevPos = move(this.logPrevPos, (n) => new Float64Array(n));
    this.logPrevLen = move(this.logPrevLen, (n) => new Int32Array(n));
    this.logHidden = move(this.logHidden, (n) => new Float64Array(n));
    this.logKeys = move(this.logKeys, (n) => new Int32Array(n));
    const t = this.table;
    for (let i = 0; i < live; i++) {
      const e = this.logKeys[i]!;
      // a link before the head (a forgotten write) stays below it: none
      this.logLinks[i] = this.logLinks[i]! - head;
      if (t.newest(e) === head + i) t.setNewest(e, i);
    }
    this.sync.shifted(head);
    this.logHead = 0;
    this.logEnd = live;
  }

  /** Point writes held, bytes of their before-images' chunks, and the log's slots (for tests and status). */
  get held(): { writes: number; keys: number; valueBytes: number; logSlots: number } {
    return { writes: this.logEnd - this.logHead, keys: this.keyCount, valueBytes: this.values.heldBytes, logSlots: this.logVersions.length };
  }

  /**
   * What the window holds, in bytes (an estimate): before-images, the write log's slots
   * (LOG_SLOT_BYTES each) and, per key, its table entry (ENTRY_BYTES, key-table.ts, whose
   * record holds keys up to 32 bytes) and its length again (for short keys this counts a
   * little more than is held), LONG_KEY_BYTES more for a longer key (an array of its own),
   * and ORDERED_KEY_BYTES plus its length for a key in the sorted map. Measured within
   * ~10 % (test/unit/shard/window-held-bytes.test.ts); it counted 72 bytes plus the key's
   * length per key until 2026-11-30, which was 2.0-2.3x short for keys of 64-100 bytes
   * and 2.4-3.3x once range reads had filled the sorted map.
   */
  get heldBytes(): number {
    return (
      this.values.heldBytes +
      this.logVersions.length * LOG_SLOT_BYTES +
      this.keyCount * ENTRY_BYTES +
      this.keyBytes +
      this.longKeys * LONG_KEY_BYTES +
      this.ordered.size * ORDERED_KEY_BYTES +
      this.orderedKeyBytes
    );
  }

  /**
   * The window is dropped (a re-seed): its keys leave the table (their entries are freed
   * unless the row cache holds them).
   */
  detach(): void {
    const t = this.table;
    for (let i = this.logHead; i < this.logEnd; i++) {
      const e = this.logKeys[i]!;
      if (t.newest(e) !== i) continue;
      t.setNewest(e, -1);
      t.clearFlag(e, FLAG_ORDERED);
      t.release(e);
    }
    this.keyCount = 0;
    this.keyBytes = 0;
    this.longKeys = 0;
  }

  /** Number of commits held (for status and metrics). */
  get size(): number {
    return this.commits.length - this.commitsHead;
  }

  /** Live range tombstones (for status and tests). */
  get tombstones(): number {
    return this.tombList.length;
  }
}
