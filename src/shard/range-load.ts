// Per-range load of one shard: reads and writes counted per range the shard owns, and a
// sample of the keys touched, from which the balancer (coordinator/balancer.ts) picks
// split points that cut a hot range's load into equal parts. Worker thread, hot path:
// one binary search over the shard's own ranges per key, and one key string kept in
// every SAMPLE_EVERY counted keys on average.

import type { KeyTable } from './key-table.js';

/** What a shard measured for one range it owns since the previous report. */
export interface RangeLoadReport {
  /** Latin-1 key strings of the range (end null = end of the keyspace). */
  begin: string;
  end: string | null;
  /** Keys read (point reads; a range read counts 1) and keys written (a range clear counts 1). */
  reads: number;
  writes: number;
  /** Milliseconds the counts cover (since the previous report, or since the shard got the range). */
  ms: number;
  /**
   * Load quantiles of the range: keys such that about i/QUANTILES of the sampled reads and
   * writes fall below quantiles[i-1] (sorted, deduplicated, strictly inside the range);
   * empty when too few keys were sampled.
   */
  quantiles: string[];
}

/** On average one counted key in this many is sampled. */
const SAMPLE_EVERY = 8;
/** Samples kept per range (the newest; older ones are overwritten). */
const SAMPLES = 256;
/** Quantiles reported per range (16 = split points for up to 16 equal parts). */
export const QUANTILES = 16;
/** Fewer samples than this: no quantiles (too noisy to split by). */
const MIN_SAMPLES = 32;

interface Counted {
  begin: string;
  end: string | null;
  reads: number;
  writes: number;
  since: number;
  samples: string[];
  /** Next slot of the sample ring. */
  next: number;
}

export class RangeLoad {
  private ranges: Counted[] = [];
  private begins: string[] = [];
  private countdown = 1 + Math.floor(Math.random() * 2 * SAMPLE_EVERY);

  /** The ranges this shard owns now (sorted by begin); counts of ranges it already had are kept. */
  setRanges(owned: readonly (readonly [string, string | null])[], now = performance.now()): void {
    const old = new Map(this.ranges.map((r) => [`${r.begin}\u0000${r.end ?? ''}`, r]));
    this.ranges = [...owned]
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .map(([begin, end]) => old.get(`${begin}\u0000${end ?? ''}`) ?? { begin, end, reads: 0, writes: 0, since: now, samples: [], next: 0 });
    this.begins = this.ranges.map((r) => r.begin);
  }

  /** The owned range holding `key`, or undefined. */
  private find(key: string): Counted | undefined {
    const bs = this.begins;
    let lo = 0;
    let hi = bs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (bs[mid]! <= key) lo = mid + 1;
      else hi = mid;
    }
    const r = this.ranges[lo - 1];
    return r && (r.end === null || key < r.end) ? r : undefined;
  }

  private sample(r: Counted, key: string): void {
    if (--this.countdown > 0) return;
    // a random gap (mean SAMPLE_EVERY) so that a workload's fixed pattern of keys cannot alias with it
    this.countdown = 1 + Math.floor(Math.random() * 2 * SAMPLE_EVERY);
    if (r.samples.length < SAMPLES) r.samples.push(key);
    else r.samples[r.next] = key;
    r.next = (r.next + 1) % SAMPLES;
  }

  /** The owned range holding the key of table entry `e` (compared in place: no key string), or undefined. */
  private findEntry(t: KeyTable, e: number): Counted | undefined {
    const bs = this.begins;
    let lo = 0;
    let hi = bs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (t.compareKey(e, bs[mid]!) >= 0) lo = mid + 1;
      else hi = mid;
    }
    const r = this.ranges[lo - 1];
    return r && (r.end === null || t.compareKey(e, r.end) < 0) ? r : undefined;
  }

  read(key: string): void {
    const r = this.find(key);
    if (!r) return;
    r.reads++;
    this.sample(r, key);
  }

  write(key: string): void {
    const r = this.find(key);
    if (!r) return;
    r.writes++;
    this.sample(r, key);
  }

  /** write() of the key of table entry `e` (the shard's apply: its key string is made only when sampled). */
  writeEntry(t: KeyTable, e: number): void {
    const r = this.findEntry(t, e);
    if (!r) return;
    r.writes++;
    if (this.countdown > 1) this.countdown--;
    else this.sample(r, t.keyString(e));
  }

  /** Counts since the previous report (then zeroed), with each range's load quantiles. */
  report(now = performance.now()): RangeLoadReport[] {
    return this.ranges.map((r) => {
      const out: RangeLoadReport = { begin: r.begin, end: r.end, reads: r.reads, writes: r.writes, ms: now - r.since, quantiles: quantiles(r) };
      r.reads = 0;
      r.writes = 0;
      r.since = now;
      return out;
    });
  }
}

function quantiles(r: Counted): string[] {
  if (r.samples.length < MIN_SAMPLES) return [];
  const s = [...r.samples].sort();
  const out: string[] = [];
  for (let i = 1; i < QUANTILES; i++) {
    const k = s[Math.floor((i * s.length) / QUANTILES)]!;
    // a split point must lie strictly inside the range, and each only once
    if (k > r.begin && (r.end === null || k < r.end) && out[out.length - 1] !== k) out.push(k);
  }
  return out;
}
