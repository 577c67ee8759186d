// Per-shard key counts and sizes, counted rather than estimated. Main thread.
//
// Why: the RocksDB binding (@nxtedition/rocksdb) answers getProperty for the default
// column family only (binding.cc db_get_property calls DB::GetProperty(property)
// without a column handle) and has no GetApproximateSizes or live-file listing, so
// rocksdb.estimate-num-keys and friends cannot be asked per shard (each shard is a
// column family). Instead a background census walks every shard's key range at fresh
// read versions and counts rows and key+value bytes. The figures are exact as of the last
// complete pass (`at`), not a snapshot at one version; the pass in progress is reported apart.
//
// How it stays cheap: each step is a slice counted on the shard itself (ReadRouter.countRange,
// shard CountRequest: the same rows a range read would return, summed there, nothing
// shipped to this thread), of at most SLICE_ROWS rows or SLICE_BYTES bytes, one slice every
// SLICE_INTERVAL_MS. A slice holds its shard's thread (every commit and read of that shard
// waits behind it), so slices are small: 1,000-row pages read and shipped to the main thread
// took 5-10 ms of shard time each (wall; up to 23 ms at half of peak w10) and every commit
// on that shard waited behind them (issue 12). Counting 1,000 rows of 8 KB on the shard
// still took 9 ms of its CPU (test/engine/census-slices.test.ts); a slice takes well under 1.
// The pace (10,000 rows/s) is what it was with pages: a pass over 100,000 rows takes ~10 s.
import { keyFromString, keyString } from '../keys/bytes.js';

const rangeId = (begin: string, end: string | null): string => `${begin}\u0000${end ?? ''}`;

/** What the census reads (the coordinator's shard map and read router; structural, to keep metrics/ free of coordinator imports). */
export interface CensusSource {
  shardMap: { shards: readonly { shardId: number; begin: string; end: string | null }[] };
  reads: {
    readVersion(): number;
    countRange(readVersion: number, range: { begin: Uint8Array; end: Uint8Array }, limit: number, maxBytes: number): Promise<{ keys: number; bytes: number; next: Uint8Array | null }>;
  };
}

/** One range of the map as the census counted it (the balancer's size measurements). */
export interface RangeCensus {
  /** Latin-1 key strings of the range when it was counted (end null = end of the keyspace). */
  begin: string;
  end: string | null;
  owner: number;
  keys: number;
  bytes: number;
  /** A key that cuts the range's bytes about in half (to the nearest slice), or null (one slice or less). */
  middle: string | null;
  at: number;
}

export interface ShardCensus {
  shardId: number;
  /** Rows (live keys) counted in the last complete pass; null before the first one ends. */
  keys: number | null;
  /** Key + value bytes of those rows. */
  bytes: number | null;
  /** When the last complete pass of this shard ended (ms since the epoch). */
  at: number | null;
}

/** Rows per slice at most (a slice of 200 rows of 100 bytes takes well under a millisecond of shard CPU). */
export const SLICE_ROWS = 200;
/** Key+value bytes per slice at most (past its first row): big values make short slices. */
export const SLICE_BYTES = 64 * 1024;
/** Pause between two slices: 200 rows every 20 ms, the 10,000 rows/s of the former 1,000-row pages every 100 ms. */
const SLICE_INTERVAL_MS = 20;
/** Pause between passes, unless the constructor is given another (distribution.censusIntervalMs). */
const PASS_INTERVAL_MS = 5000;
const END = new Uint8Array([0xff, 0xff, 0xff, 0xff]);

export class Census {
  private readonly results = new Map<number, ShardCensus>();
  /** Per range of the map, keyed by begin + NUL + end. */
  private readonly rangeResults = new Map<string, RangeCensus>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly c: CensusSource,
    private readonly passIntervalMs = PASS_INTERVAL_MS,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Per shard (worker): every range it owned when its last pass counted them. */
  get(): ShardCensus[] {
    const seen = new Set<number>();
    const out: ShardCensus[] = [];
    for (const s of this.c.shardMap.shards) {
      if (seen.has(s.shardId)) continue;
      seen.add(s.shardId);
      out.push(this.results.get(s.shardId) ?? { shardId: s.shardId, keys: null, bytes: null, at: null });
    }
    return out.sort((a, b) => a.shardId - b.shardId);
  }

  /** The last count of each range of the current map (ranges not counted since they appeared are missing). */
  ranges(): RangeCensus[] {
    const out: RangeCensus[] = [];
    for (const s of this.c.shardMap.shards) {
      const r = this.rangeResults.get(rangeId(s.begin, s.end));
      if (r) out.push(r);
    }
    return out;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.pass(), ms);
    this.timer.unref();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.timer = setTimeout(resolve, ms);
      this.timer.unref();
    });
  }

  private async pass(): Promise<void> {
    try {
      const perShard = new Map<number, { keys: number; bytes: number }>();
      const counted = new Set<string>();
      for (const s of this.c.shardMap.shards) {
        let begin = keyFromString(s.begin);
        const end = s.end === null ? END : keyFromString(s.end);
        let keys = 0;
        let bytes = 0;
        /** [first key after the slice, bytes before it] of every slice boundary. */
        const cuts: [Uint8Array, number][] = [];
        for (;;) {
          if (this.stopped) return;
          const r = await this.c.reads.countRange(this.c.reads.readVersion(), { begin, end }, SLICE_ROWS, SLICE_BYTES);
          keys += r.keys;
          bytes += r.bytes;
          if (r.next === null) break;
          begin = r.next;
          cuts.push([begin, bytes]);
          await this.sleep(SLICE_INTERVAL_MS);
        }
        let middle: string | null = null;
        let best = Infinity;
        for (const [k, before] of cuts) {
          if (Math.abs(before - bytes / 2) < best) {
            best = Math.abs(before - bytes / 2);
            middle = keyString(k);
          }
        }
        const id = rangeId(s.begin, s.end);
        counted.add(id);
        this.rangeResults.set(id, { begin: s.begin, end: s.end, owner: s.shardId, keys, bytes, middle, at: Date.now() });
        const t = perShard.get(s.shardId) ?? { keys: 0, bytes: 0 };
        t.keys += keys;
        t.bytes += bytes;
        perShard.set(s.shardId, t);
      }
      const at = Date.now();
      for (const [shardId, t] of perShard) this.results.set(shardId, { shardId, ...t, at });
      for (const id of [...this.rangeResults.keys()]) if (!counted.has(id)) this.rangeResults.delete(id);
    } catch {
      // shutting down, or a page failed: the next pass counts again
    }
    this.schedule(this.passIntervalMs);
  }
}
