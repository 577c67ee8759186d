// Timestamp oracle. Main thread; the only writer of the version counters.
// Versions advance with elapsed time, about 1,000,000 per second (as in
// FoundationDB), bumped by one when commits outrun the clock, so versions also
// measure age: the MVCC window is a version distance. Elapsed time comes from the
// monotonic clock (versionClock), so a wall clock stepped back or forward while the
// server runs changes nothing. Across restarts versions never go backwards, not even
// below a read version that was handed out but never committed: a bound ahead of
// every version handed out is persisted (VersionBound) before any version passes it,
// and the next start begins above it (FoundationDB's jump forward on recovery).

export type Clock = () => number;

/** Microseconds since the epoch, wall clock (used only to place the first version of a start). */
export const microClock: Clock = () => Math.floor((performance.timeOrigin + performance.now()) * 1000);

/** A clock of versions: `start` now, then one per elapsed microsecond of monotonic time. */
export function versionClock(start: number): Clock {
  const t0 = performance.now();
  return () => start + Math.floor((performance.now() - t0) * 1000);
}

/**
 * The persisted upper bound of versions handed out. `persist(v)` must make v durable
 * before it returns (it runs rarely: once per `ahead / 2` versions, about every 5 s
 * with ahead = 10,000,000).
 */
export interface VersionBound {
  ahead: number;
  persist(bound: number): void;
}

/** How far ahead of the versions handed out the persisted bound is kept (10 s of versions). */
export const VERSION_BOUND_AHEAD = 10_000_000;

export class TimestampOracle {
  private lastAssigned: number;
  /** Assigned commit versions not yet finished, in assignment (= version) order. */
  private readonly inflight: number[] = [];
  /**
   * Per entry of `inflight`: 1 once finished. Not a Set of finished versions: with one add
   * and one delete per commit V8 rehashes a Set's table every few hundred commits and links
   * the old table to the new one, and once one table is in the old generation scavenges
   * keep the chain alive and promote it (src/client/id-table.ts tells the whole story).
   */
  private readonly done: number[] = [];
  private inflightHead = 0;
  /** Every version <= this is finished (applied on all its shards, or aborted). */
  private finishedThrough: number;
  private readonly waiters: { version: number; resolve: () => void }[] = [];
  /**
   * Cluster replica (src/cluster): versions come from the leader's log, not from this
   * oracle. Read versions do not follow the clock, and a read may wait for a version
   * not yet seen here (the log brings it, or `beyond` proves nothing is missing).
   */
  private following = false;
  /** Called (following only) when a reader waits for a version beyond the last one seen. */
  beyond: ((version: number) => void) | null = null;

  /**
   * Newest acknowledged commit (single node). A commit is acknowledged as soon as its own
   * shards applied it, not when every lower version has finished, so read versions go up
   * to here; a read then waits, on each shard it reads, for the commits at or below its
   * version that shard still applies (Shard.mustWait).
   */
  private acked = 0;

  /** Versions up to this may be handed out without persisting a new bound. */
  private bound = Infinity;

  constructor(
    startVersion: number,
    private readonly clock: Clock = microClock,
    private readonly versionBound?: VersionBound,
  ) {
    this.lastAssigned = Math.max(startVersion, 0);
    this.finishedThrough = this.lastAssigned;
    if (versionBound) this.bound = this.lastAssigned; // persist before the first version handed out
  }

  /** Persist a new bound before `v` is handed out, half the margin early so this stays rare. */
  private reserve(v: number): void {
    if (v + this.versionBound!.ahead / 2 <= this.bound) return;
    const next = v + this.versionBound!.ahead;
    this.versionBound!.persist(next);
    this.bound = next;
  }

  /**
   * Every commit with a version <= this is finished: applied on all its shards, or aborted.
   * A watermark of finished work, not of acknowledgement: a commit is acknowledged (and
   * read versions cover it) once its own shards applied it, possibly before a lower one
   * finished (readableVersion).
   */
  get finishedVersion(): number {
    return this.finishedThrough;
  }

  /** The newest version a read may use without waiting here (the shards wait for what they still apply). */
  get readableVersion(): number {
    const v = this.finishedThrough > this.acked ? this.finishedThrough : this.acked;
    const r = v < this.ceiling ? v : this.ceiling - 1;
    return r < this.readCap ? r : this.readCap;
  }

  /**
   * Cluster leader: reads are served only at versions up to `version` (its read-version
   * grant in etcd). Versions above the grant belong to a later leader (each starts above
   * the last grant), whose commits this node may not have: a leader paused (SIGSTOP, a VM
   * stall) and resumed still leads in its own eyes until etcd refuses it, and meanwhile
   * its finished version follows its clock (slideWindow, aborted commits) past versions
   * the new leader handed out; a read at one of those, sent to it by a client that lists
   * every node, was answered from its own data without the new leader's commits (a stale
   * read: test/cluster/cluster.test.ts, the SIGSTOP case). Such a read now waits, and
   * fails FUTURE_VERSION (retryable) unless the grant moves or the node follows the log.
   * follow() lifts the cap: a follower's reads wait for the log itself.
   */
  capReads(version: number): void {
    this.readCap = version;
    if (this.waiters.length > 0) this.wake();
  }

  private readCap = Infinity;

  /**
   * Read versions stay below `version` from now on: a commit decided there could not be
   * applied on every shard (only recovery, at the next start, completes it), so no read
   * version may cover it, not even through later commits acknowledged meanwhile.
   */
  holdBelow(version: number): void {
    if (version < this.ceiling) this.ceiling = version;
  }

  private ceiling = Infinity;

  /** A commit was acknowledged to its client: read versions handed out from now on cover it. */
  acknowledge(version: number): void {
    if (version > this.acked) this.acked = version;
  }

  get lastAssignedVersion(): number {
    return this.lastAssigned;
  }

  /**
   * Where this oracle's clock stands now (µs versions): an idle leader's next read version
   * moves up to it. After a restart it runs ahead of the wall clock by up to the persisted
   * bound's margin (VERSION_BOUND_AHEAD).
   */
  get clockVersion(): number {
    return this.clock();
  }

  get inflightCount(): number {
    return this.inflight.length - this.inflightHead;
  }

  /** A fresh, strictly increasing commit version. Pair with finish(). */
  assignCommitVersion(): number {
    const v = Math.max(this.lastAssigned + 1, this.clock());
    if (!Number.isSafeInteger(v)) throw new Error(`version ${v} is past 2^53`);
    if (this.versionBound) this.reserve(v);
    this.lastAssigned = v;
    this.inflight.push(v);
    this.done.push(0);
    return v;
  }

  /** The commit at `version` is applied everywhere or aborted; read versions may now pass it. */
  finish(version: number): void {
    // inflight is in increasing version order: binary search (a version never assigned is ignored)
    const inflight = this.inflight;
    let lo = this.inflightHead;
    let hi = inflight.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = inflight[mid]!;
      if (v === version) {
        this.done[mid] = 1;
        break;
      }
      if (v < version) lo = mid + 1;
      else hi = mid - 1;
    }
    while (this.inflightHead < inflight.length && this.done[this.inflightHead] === 1) this.inflightHead++;
    if (this.inflightHead > 4096 && this.inflightHead * 2 > inflight.length) {
      inflight.splice(0, this.inflightHead);
      this.done.splice(0, this.inflightHead);
      this.inflightHead = 0;
    }
    this.finishedThrough = this.inflightHead < this.inflight.length ? this.inflight[this.inflightHead]! - 1 : this.lastAssigned;
    if (this.waiters.length > 0) this.wake();
  }

  /**
   * A read version covering every acknowledged commit. When nothing is in flight the
   * counter is moved up to the clock, so an idle server's read versions stay young
   * (a read version is "too old" by its distance from the newest one).
   */
  readVersion(): number {
    if (!this.following && this.inflightHead === this.inflight.length) {
      const now = this.clock();
      if (now > this.lastAssigned) {
        if (this.versionBound) this.reserve(now);
        this.lastAssigned = now;
      }
      this.finishedThrough = this.lastAssigned;
    }
    const v = this.finishedThrough > this.acked ? this.finishedThrough : this.acked;
    return v < this.ceiling ? v : this.ceiling - 1;
  }

  /** Whether every version assigned below `version` is finished (finishedVersion moves only on finish(), so it may lag). */
  allFinishedBelow(version: number): boolean {
    return this.inflightHead === this.inflight.length || this.inflight[this.inflightHead]! >= version;
  }

  /** Resolves true once finishedVersion >= version; false for a version never assigned, or after timeoutMs. */
  waitFor(version: number, timeoutMs: number): Promise<boolean> {
    if (this.finishedThrough >= version && version <= this.readCap) return Promise.resolve(true);
    if (version > this.lastAssigned) {
      if (!this.following) return Promise.resolve(false);
      this.beyond?.(version);
    }
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const w = {
        version,
        resolve: () => {
          if (timer) clearTimeout(timer);
          resolve(true);
        },
      };
      if (Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          resolve(false);
        }, timeoutMs);
      }
      // kept sorted by version (they mostly arrive in order, so this is usually an append):
      // wake() then only looks at the front
      let i = this.waiters.length;
      while (i > 0 && this.waiters[i - 1]!.version > version) i--;
      this.waiters.splice(i, 0, w);
    });
  }

  get isFollowing(): boolean {
    return this.following;
  }

  /**
   * Become a follower of a log at `version` (every version <= it is applied here, none
   * above). Only when nothing is in flight.
   */
  follow(version: number): void {
    if (this.inflightCount > 0) throw new Error(`oracle: cannot follow with ${this.inflightCount} versions in flight`);
    this.following = true;
    this.readCap = Infinity;
    this.lastAssigned = version;
    this.finishedThrough = version;
    // reads that waited at a leader's cap and are applied here
    if (this.waiters.length > 0) this.wake();
  }

  /** Follower: the log holds a commit at `version` (above every one seen); pair with finish(). */
  observe(version: number): void {
    if (!this.following) throw new Error('oracle: observe() is for followers');
    if (version <= this.lastAssigned) throw new Error(`oracle: log version ${version} is not above ${this.lastAssigned}`);
    this.lastAssigned = version;
    this.inflight.push(version);
    this.done.push(0);
  }

  /**
   * Follower: nothing at or below `version` is missing any more (a version the leader
   * handed out, and the log read after it). Moves the finished version up to it.
   */
  coverUpTo(version: number): void {
    if (!this.following || version <= this.lastAssigned) return;
    this.lastAssigned = version;
    if (this.inflightHead === this.inflight.length) this.finishedThrough = version;
    if (this.waiters.length > 0) this.wake();
  }

  /** Stop following: assign versions from here on, never at or below `floor`. Only when nothing is in flight. */
  lead(floor: number): void {
    if (this.inflightCount > 0) throw new Error(`oracle: cannot lead with ${this.inflightCount} versions in flight`);
    this.following = false;
    this.lastAssigned = Math.max(this.lastAssigned, floor);
    this.finishedThrough = this.lastAssigned;
    if (this.waiters.length > 0) this.wake();
  }

  private wake(): void {
    let n = 0;
    const through = this.finishedThrough < this.readCap ? this.finishedThrough : this.readCap;
    while (n < this.waiters.length && this.waiters[n]!.version <= through) n++;
    if (n === 0) return;
    for (const w of this.waiters.splice(0, n)) w.resolve();
  }
}
