// Per-shard key counts and sizes, counted rather than estimated. Main thread.
//
// Why: the RocksDB binding (@nxtedition/rocksdb) answers getProperty for the default
// column family only (binding.cc db_get_property calls DB::GetProperty(property)
// without a column handle) and has no GetApproximateSizes or live-file listing, so
// rocksdb.estimate-num-keys and friends cannot be asked per shard (each shard is a
// column family). Instead a background census pages through every shard's key range
// with ordinary range reads at fresh read versions (1,000 rows a page, one page every
// PAGE_INTERVAL_MS, so it takes a small, bounded share of the shards' time) and counts
// rows and key+value bytes. The figures are exact as of the last complete pass
// (`at`), not a snapshot at one version; the pass in progress is reported apart.
import { keyFromString, keyString } from '../keys/bytes.js';

const rangeId = (begin: string, end: string | null): string => `${begin}\u0000${end ?? ''}`;

/** What the census reads (the coordinator's shard map and read router; structural, to keep metrics/ free of coordinator imports). */
export interface CensusSource {
  shardMap: { shards: readonly { shardId: number; begin: string; end: string | null }[] };
  reads: {
    readVersion(): number;
    getRange(readVersion: number, range: { begin: Uint8Array; end: Uint8Array }, limit: number, reverse: boolean): Promise<{ kvs: Uint8Array[]; hasMore: boolean }>;
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
  /** A key that cuts the range's bytes about in half (to the nearest page of PAGE_ROWS rows), or null (one page or less). */
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

const PAGE_ROWS = 1000;
// 100, not 20: at 20 ms the census took 20-25 % of every shard thread's busy time under
// m90 with 100,000 rows (bench/profile.ts, bench/results/profiles-2026-11-29.md), and
// with 1,000,000 rows it never paused (40,000 rows/s scanned and shipped to the main
// thread). A pass over 100,000 rows now takes ~10 s, over 1,000,000 rows ~100 s.
const PAGE_INTERVAL_MS = 100;
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
        /** [first key after the page, bytes before it] of every page boundary. */
        const cuts: [Uint8Array, number][] = [];
        for (;;) {
          if (this.stopped) return;
          const r = await this.c.reads.getRange(this.c.reads.readVersion(), { begin, end }, PAGE_ROWS, false);
          for (let i = 0; i < r.kvs.length; i++) bytes += r.kvs[i]!.length;
          keys += r.kvs.length / 2;
          if (!r.hasMore || r.kvs.length === 0) break;
          const last = r.kvs[r.kvs.length - 2]!;
          begin = new Uint8Array(last.length + 1);
          begin.set(last);
          cuts.push([begin, bytes]);
          await this.sleep(PAGE_INTERVAL_MS);
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
