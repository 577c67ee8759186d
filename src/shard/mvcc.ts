// MVCC version window of one shard. Pure (no RocksDB, no thread, no clock), so it is
// unit-tested directly.
//
// Why this design: RocksDB holds only the latest applied state of each key. The
// window remembers, for every write applied in the last few seconds, the value the
// key had *before* that write ("prev"). A read at version r first reads RocksDB, then
// asks the window: if the key was written by a commit with version > r, the value
// at r is the prev of the first such write. Reads at the latest version (the common
// case) find nothing newer than r and cost one Map lookup at most. The same
// version-ordered log answers conflict checks ("was anything I read written after my
// read version?") and is pruned from its old end as the window slides.
// The shard applies commits in version order, so each key's chain is sorted.
import type { RangeSet } from '../keys/ranges.js';

export interface PrevValue {
  version: number;
  /** The value before this write; null = the key did not exist. */
  prev: Uint8Array | null;
}

export interface AppliedCommit {
  version: number;
  /** Every key whose value this commit changed (set, clear, or removed by a clearRange). */
  keys: string[];
  /** Cleared ranges [begin, end) as written, for conflict checks (a clearRange is a write of the whole range). */
  ranges: [string, string][];
}

export type Resolved = { overridden: false } | { overridden: true; value: Uint8Array | null };

const NOT_OVERRIDDEN: Resolved = { overridden: false };

export class VersionWindow {
  private readonly chains = new Map<string, PrevValue[]>();
  private readonly log: AppliedCommit[] = [];
  private logStart = 0;
  /** Newest version applied; reads at r >= newestVersion need no correction. */
  newestVersion = 0;
  /** Reads and conflict checks at a version below this fail with TOO_OLD. */
  horizon = 0;

  constructor(initialVersion = 0) {
    this.newestVersion = initialVersion;
    this.horizon = initialVersion;
  }

  /** Record one applied commit: `changes` maps each changed key to its value before the commit. */
  record(version: number, changes: Map<string, Uint8Array | null>, ranges: [string, string][] = []): void {
    if (version <= this.newestVersion && this.log.length > this.logStart) {
      throw new Error(`commits must be recorded in version order: ${version} after ${this.newestVersion}`);
    }
    const keys: string[] = [];
    for (const [key, prev] of changes) {
      let chain = this.chains.get(key);
      if (!chain) {
        chain = [];
        this.chains.set(key, chain);
      }
      chain.push({ version, prev });
      keys.push(key);
    }
    this.log.push({ version, keys, ranges });
    if (version > this.newestVersion) this.newestVersion = version;
  }

  /** The value of `key` at `readVersion`, if a later write changed it; else the base (RocksDB) value stands. */
  resolve(key: string, readVersion: number): Resolved {
    if (readVersion >= this.newestVersion) return NOT_OVERRIDDEN;
    const chain = this.chains.get(key);
    if (!chain) return NOT_OVERRIDDEN;
    // first write after readVersion; chains are short, so a linear scan from the end is cheap
    let i = chain.length;
    while (i > 0 && chain[i - 1]!.version > readVersion) i--;
    if (i === chain.length) return NOT_OVERRIDDEN;
    return { overridden: true, value: chain[i]!.prev };
  }

  /** Index in the log of the first commit with version > v. */
  private firstAfter(v: number): number {
    let lo = this.logStart;
    let hi = this.log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.log[mid]!.version > v) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Keys in [begin, end) changed by commits newer than readVersion, sorted ascending. */
  changedAfter(readVersion: number, begin: string, end: string): string[] {
    if (readVersion >= this.newestVersion) return [];
    const seen = new Set<string>();
    for (let i = this.firstAfter(readVersion); i < this.log.length; i++) {
      for (const k of this.log[i]!.keys) if (k >= begin && k < end) seen.add(k);
    }
    return [...seen].sort();
  }

  /** Whether any commit newer than readVersion wrote a key or range that `reads` covers. */
  conflictsWith(readVersion: number, reads: RangeSet): boolean {
    if (readVersion >= this.newestVersion || reads.size === 0) return false;
    for (let i = this.firstAfter(readVersion); i < this.log.length; i++) {
      const c = this.log[i]!;
      for (const k of c.keys) if (reads.containsKey(k)) return true;
      for (const [b, e] of c.ranges) if (reads.intersects(b, e)) return true;
    }
    return false;
  }

  /** Forget commits with version <= newHorizon; reads below the horizon become TOO_OLD. */
  prune(newHorizon: number): void {
    if (newHorizon <= this.horizon) return;
    this.horizon = newHorizon;
    while (this.logStart < this.log.length && this.log[this.logStart]!.version <= newHorizon) {
      const c = this.log[this.logStart]!;
      for (const k of c.keys) {
        const chain = this.chains.get(k);
        if (!chain) continue;
        chain.shift();
        if (chain.length === 0) this.chains.delete(k);
      }
      this.log[this.logStart] = undefined as unknown as AppliedCommit;
      this.logStart++;
    }
    // compact the array now and then so it does not grow forever
    if (this.logStart > 1024 && this.logStart * 2 > this.log.length) {
      this.log.splice(0, this.logStart);
      this.logStart = 0;
    }
  }

  /** Number of commits held (for status and metrics). */
  get size(): number {
    return this.log.length - this.logStart;
  }
}
