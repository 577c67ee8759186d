// What an operator sees of a running server: GET /v1/status (JSON), GET /metrics
// (Prometheus text, prom-client registry) and GET /v1/metrics.json (recent rates and
// latency percentiles for the dashboard). Main thread; the only importer of
// prom-client. It reads the server through ServerSources (wired in
// server/start-server.ts) and never changes anything it observes.
import fs from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { ShardCensus } from './census.js';
import { printable } from '../keys/bytes.js';
import { histogramText, quantile, type LatencyHistogram } from './latency-histogram.js';
import { RequestMetrics, type Protocol, type SlowLogger } from './request-metrics.js';

/** A shard's counters as the worker reports them (shard/interface.ts ShardStats is this type). */
export interface ShardCounters {
  shardId: number;
  appliedVersion: number;
  windowCommits: number;
  /** Keys written in the window (each one entry of a JS Map: V8 allows at most 2^24). */
  windowKeys: number;
  /** Bytes the window holds (before-images, write log, keys; mvcc.ts heldBytes, an estimate). */
  windowBytes: number;
  queued: number;
  estimatedKeys: number;
  estimatedBytes: number;
  reads: number;
  commits: number;
  fsyncs: number;
  batches: number;
  busyMs: number;
  /** Batches written to the WAL and the milliseconds those writes (with fsync) took. */
  walWrites: number;
  walMs: number;
  /** Batches of one-phase commits the log writer answered itself (fsync durability; shard/log-writer.ts). */
  directBatches?: number;
  /** Of those, batches whose end woke the shard because commits or reads waited behind them. */
  logWakes?: number;
  /** The census' slices counted on this shard (metrics/census.ts), their CPU time in total and the largest one's (ms; 0 where the platform does not say), and how many took over 5 ms of CPU. */
  censusSlices?: number;
  censusCpuMs?: number;
  censusCpuMaxMs?: number;
  censusSlowSlices?: number;
  /**
   * The shard's row cache (shard/row-cache.ts): rows held and the bytes they are counted for
   * (at most its share of rocksdb.rowCacheBytes); point reads answered from it or not; and
   * before-images of point writes found in it or read from RocksDB.
   */
  rowCacheRows?: number;
  rowCacheBytes?: number;
  rowCacheHits?: number;
  rowCacheMisses?: number;
  rowCacheImageHits?: number;
  rowCacheImageMisses?: number;
  /** Range tombstones the shard's window holds, those being retired (shard/retire.ts), those retired since start. */
  tombstones?: number;
  tombstonesRetiring?: number;
  tombstonesRetired?: number;
  /** RocksDB DeleteRanges those took (tombstones of one commit with few rows between them share one). */
  deleteRanges?: number;
  /** Slices of tombstone retirement, their CPU time in total and the largest one's (ms). */
  retireSlices?: number;
  retireCpuMs?: number;
  retireCpuMaxMs?: number;
}

export interface ShardRangeInfo {
  shardId: number;
  /** Latin-1 key strings (shard-map.ts); end null = the end of the keyspace. */
  begin: string;
  end: string | null;
  /** Requests sent to the worker and not yet answered. */
  queueDepth: number;
}

export interface CommitTotals {
  committed: number;
  /** Refused with CONFLICT (normal under optimistic concurrency: the client retries). */
  conflicts: number;
  /** Refused with TOO_OLD (the read version left the MVCC window). */
  tooOld: number;
  /** Failed for any other reason. */
  aborted: number;
  onePhase: number;
  twoPhase: number;
}

/** What the distribution source gives (coordinator/distribution.ts: map, move, counters, history, byReason). */
/** Split, merge and move counts and the rows and bytes moved since start (coordinator/distribution.ts keeps them). */
export interface DistributionCounters {
  splits: number;
  merges: number;
  moves: number;
  movesFailed: number;
  movesInProgress: number;
  rowsMoved: number;
  bytesMoved: number;
}

export interface DistributionView extends DistributionCounters {
  map: { version: number; workers: number; ranges: { begin: string; end: string | null; owner: number; prev?: { owner: number; until: number } }[] };
  move: { id: number; begin: string; end: string | null; from: number; to: number; phase: string; startedMs: number; reason: string } | null;
  history: unknown[];
  byReason: { kind: 'split' | 'merge' | 'move'; reason: string; outcome: 'done' | 'failed'; count: number; ms: number }[];
  /** The balancer's measurements (coordinator/balancer.ts BalancerStatus): per range (hex keys) and per worker. */
  balancer?: {
    ranges: { begin: string; end: string | null; readsPerSec: number | null; writesPerSec: number | null; bytes: number | null; keys: number | null }[];
    workers: { worker: number; opsPerSec: number; share: number }[];
  };
}

type MetricFactory = (name: string, help: string, labelNames: string[], fill: (set: (labels: Record<string, string | number>, v: number) => void) => void) => void;

/** One thread of the server: its name (main, gateway-N, shard-N, log-writer), id in /proc and CPU time (ms); gateway threads also count frames and requests. */
export interface ThreadCpu {
  name: string;
  tid: number | null;
  cpuMs: number | null;
  frames?: number;
  requests?: number;
}

/** The part of the cluster status (ClusterNode.status()) the metrics read. */
interface ClusterView {
  role: string;
  appliedVersion: number;
  members: { nodeId: string; applied: number; lagVersions: number | null }[];
  failovers: number;
  lastFailoverMs: number | null;
  log: { appends: number; appendedCommits: number; appendedBytes: number; fenced: number; failed: number; appendMs: number; trimmedThrough: number };
  forwarded: { commits: number; readVersions: number };
  appliedFromLog: number;
  etcd: { errors: number };
}

export interface ServerSources {
  version: string;
  /** The database's id (data directory or cluster), as in the Hello reply. */
  databaseId: string;
  /** Cluster role and members (src/cluster), or null on a single node. */
  cluster: () => Record<string, unknown> | null;
  settings: { durability: string; readonly: boolean; mvccWindowMs: number; shards: number; dataDir: string; slowTransactionMs: number };
  recovery: object;
  /** Data distribution: the range map, the move in progress, counters, recent splits/moves/merges (coordinator/distribution.ts). */
  distribution?: () => DistributionView;
  latestCommittedVersion(): number;
  oldestReadableVersion(): number;
  connections(): number;
  inflightCommits(): number;
  commitTotals(): CommitTotals;
  /** The resolver's conflict history (coordinator/resolver.ts): keys and range clears it holds, and the versions it covers. */
  resolver?: () => { keys: number; ranges: number; horizon: number; startVersion: number };
  shardRanges(): ShardRangeInfo[];
  shardStats(): Promise<ShardCounters[]>;
  /** A RocksDB property of the database (default column family), or undefined. */
  rocksProperty(name: string): string | undefined;
  /** Counted keys and bytes per shard (census.ts), when the server runs a census. */
  census?: () => ShardCensus[];
  /** The server's threads and their CPU time (main, gateway threads, shards, the log writer). */
  threads?: () => ThreadCpu[];
  /** Gateway admission counters, when the gateway has them. */
  admission?: () => { bufferedBytes: number; peakBufferedBytes: number; refused: number };
}

/** One sample of every counter the rates are computed from. */
interface Sample {
  t: number;
  started: number;
  committed: number;
  conflicts: number;
  tooOld: number;
  aborted: number;
  /** HTTP responses and binary-protocol requests (reads and commits) so far. */
  httpRequests: number;
  binaryRequests: number;
  gets: number;
  ranges: number;
  errors: number;
  bytesIn: number;
  bytesOut: number;
  commitBuckets: Float64Array;
  readBuckets: Float64Array;
  shardBusyMs: number[];
  shardCommits: number[];
  shardReads: number[];
  /** Sums over the shards: WAL batch writes and their milliseconds, fsyncs. */
  walWrites: number;
  walMs: number;
  fsyncs: number;
  /** process.cpuUsage() user + system, microseconds. */
  cpuMicros: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** Event-loop delay over the interval ending here (ms): p99 and max; NaN without samples. */
  loopP99Ms: number;
  loopMaxMs: number;
}

/** What the data directory takes on disk, and what its file system has left. */
export interface DiskUsage {
  dataDir: string;
  /** Bytes of every file under the data directory. */
  usedBytes: number;
  /** RocksDB table files (*.sst), all column families together. */
  sstBytes: number;
  sstFiles: number;
  /** RocksDB write-ahead log files (*.log). */
  walBytes: number;
  otherBytes: number;
  fsTotalBytes: number;
  fsFreeBytes: number;
  /** Free bytes an unprivileged process may use (statfs bavail). */
  fsAvailableBytes: number;
}

/** Walks the data directory (RocksDB keeps it flat: a few hundred files at most) and statfs's it. */
export function diskUsage(dataDir: string): DiskUsage {
  const u: DiskUsage = { dataDir, usedBytes: 0, sstBytes: 0, sstFiles: 0, walBytes: 0, otherBytes: 0, fsTotalBytes: 0, fsFreeBytes: 0, fsAvailableBytes: 0 };
  const walk = (dir: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // gone meanwhile
    }
    for (const e of entries) {
      const f = path.join(dir, e.name);
      if (e.isDirectory()) {
        walk(f);
        continue;
      }
      let size = 0;
      try {
        size = fs.statSync(f).size;
      } catch {
        continue; // deleted by a compaction meanwhile
      }
      u.usedBytes += size;
      if (e.name.endsWith('.sst')) {
        u.sstBytes += size;
        u.sstFiles++;
      } else if (e.name.endsWith('.log')) u.walBytes += size;
      else u.otherBytes += size;
    }
  };
  walk(dataDir);
  try {
    const st = fs.statfsSync(dataDir);
    u.fsTotalBytes = st.blocks * st.bsize;
    u.fsFreeBytes = st.bfree * st.bsize;
    u.fsAvailableBytes = st.bavail * st.bsize;
  } catch {
    // no statfs: leave zeros
  }
  return u;
}

const SAMPLE_MS = 1000;
const KEEP_SAMPLES = 301; // five minutes of one-second intervals
const RECENT_SEC = 10;

// The binding answers properties of the default column family only (txkv's metadata:
// watermarks and decision records), or of the whole database: every entry says which.
// Per-shard (per column family) figures come from the census and the directory walk.
const ROCKS_PROPERTIES: [string, string, string][] = [
  ['txkv_rocksdb_metadata_memtable_bytes', 'rocksdb.cur-size-all-mem-tables', 'RocksDB memtable bytes of the default column family (txkv metadata only; shard data is in per-shard column families)'],
  ['txkv_rocksdb_metadata_compaction_pending', 'rocksdb.compaction-pending', 'RocksDB: 1 if a compaction of the default column family (metadata) is pending'],
  ['txkv_rocksdb_running_compactions', 'rocksdb.num-running-compactions', 'RocksDB compactions running (whole database)'],
  ['txkv_rocksdb_running_flushes', 'rocksdb.num-running-flushes', 'RocksDB memtable flushes running (whole database)'],
  ['txkv_rocksdb_background_errors', 'rocksdb.background-errors', 'RocksDB background errors (whole database)'],
  ['txkv_rocksdb_block_cache_bytes', 'rocksdb.block-cache-usage', 'RocksDB block cache bytes in use (one cache shared by every column family)'],
  ['txkv_rocksdb_write_stopped', 'rocksdb.is-write-stopped', 'RocksDB: 1 while writes are stopped (a write stall: too many memtables or level-0 files, or too much pending compaction; whole database)'],
  ['txkv_rocksdb_delayed_write_rate_bytes', 'rocksdb.actual-delayed-write-rate', 'RocksDB: the write rate (bytes/s) it slows writers to during a write slowdown, 0 when not delayed (whole database)'],
];
const DISK_CACHE_MS = 2000;

const hex = (latin1: string): string => Buffer.from(latin1, 'latin1').toString('hex');
const keyText = (latin1: string): string => printable(new Uint8Array(Buffer.from(latin1, 'latin1')), 256);
const round = (x: number, digits = 3): number | null => (Number.isFinite(x) ? Math.round(x * 10 ** digits) / 10 ** digits : null);

function mergedReadBuckets(a: LatencyHistogram, b: LatencyHistogram): Float64Array {
  const out = a.copy();
  for (let i = 0; i < out.length; i++) out[i]! += b.counts[i]!;
  return out;
}

function sumOf(...xs: Float64Array[]): Float64Array {
  const out = new Float64Array(xs[0]!.length);
  for (const x of xs) for (let i = 0; i < out.length; i++) out[i]! += x[i]!;
  return out;
}

function diff(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! - b[i]!;
  return out;
}

export class ServerMetrics {
  /** Requests of the binary protocol (WebSocket). */
  readonly requests: RequestMetrics;
  /** Requests of the HTTP API. */
  readonly http: RequestMetrics;
  readonly registry = new Registry();
  private readonly startedAt = Date.now();
  private readonly samples: Sample[] = [];
  private lastShards: ShardCounters[] = [];
  private timer: NodeJS.Timeout | null = null;
  private sampling = false;
  private readonly loop: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private diskCache: { at: number; u: DiskUsage } | null = null;

  /** Disk usage of the data directory, recomputed at most every DISK_CACHE_MS. */
  disk(): DiskUsage {
    const now = Date.now();
    if (!this.diskCache || now - this.diskCache.at > DISK_CACHE_MS) this.diskCache = { at: now, u: diskUsage(this.src.settings.dataDir) };
    return this.diskCache.u;
  }

  constructor(
    private readonly src: ServerSources,
    logger: SlowLogger,
  ) {
    this.requests = new RequestMetrics(src.settings.slowTransactionMs, logger, 'binary');
    this.http = new RequestMetrics(src.settings.slowTransactionMs, logger, 'http');
    this.register();
  }

  /** Starts the one-second sampler that the recent rates come from. */
  start(): void {
    this.loop.enable();
    void this.sample();
    this.timer = setInterval(() => void this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  stop(): void {
    this.loop.disable();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async refreshShards(): Promise<ShardCounters[]> {
    try {
      this.lastShards = await this.src.shardStats();
    } catch {
      // shutting down or a worker is gone: keep the last known counters
    }
    return this.lastShards;
  }

  private async sample(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const shards = await this.refreshShards();
      const [r, h] = [this.requests, this.http];
      const c = this.src.commitTotals();
      let errors = 0;
      // CONFLICT and TOO_OLD replies are outcomes of optimistic concurrency, counted as conflicts, not errors
      for (const m of [r, h]) for (const k in m.errors) if (k !== 'CONFLICT' && k !== 'TOO_OLD') errors += m.errors[k]!;
      let httpRequests = 0;
      for (const n of h.responses.values()) httpRequests += n;
      this.samples.push({
        t: Date.now(),
        started: r.transactionsStarted + h.transactionsStarted,
        committed: c.committed,
        conflicts: c.conflicts,
        tooOld: c.tooOld,
        aborted: c.aborted,
        httpRequests,
        binaryRequests: r.getLatency.count + r.rangeLatency.count + r.commitLatency.count,
        gets: r.getLatency.count + h.getLatency.count,
        ranges: r.rangeLatency.count + h.rangeLatency.count,
        errors,
        bytesIn: r.bytesIn + h.bytesIn,
        bytesOut: r.bytesOut + h.bytesOut,
        commitBuckets: sumOf(r.commitLatency.counts, h.commitLatency.counts),
        readBuckets: sumOf(mergedReadBuckets(r.getLatency, r.rangeLatency), mergedReadBuckets(h.getLatency, h.rangeLatency)),
        shardBusyMs: shards.map((s) => s.busyMs),
        shardCommits: shards.map((s) => s.commits),
        shardReads: shards.map((s) => s.reads),
        walWrites: shards.reduce((n, s) => n + (s.walWrites ?? 0), 0),
        walMs: shards.reduce((n, s) => n + (s.walMs ?? 0), 0),
        fsyncs: shards.reduce((n, s) => n + s.fsyncs, 0),
        cpuMicros: ((u) => u.user + u.system)(process.cpuUsage()),
        rssBytes: process.memoryUsage.rss(),
        heapUsedBytes: process.memoryUsage().heapUsed,
        loopP99Ms: this.loop.count > 0 ? this.loop.percentile(99) / 1e6 : NaN,
        loopMaxMs: this.loop.count > 0 ? this.loop.max / 1e6 : NaN,
      });
      this.loop.reset();
      if (this.samples.length > KEEP_SAMPLES) this.samples.splice(0, this.samples.length - KEEP_SAMPLES);
    } finally {
      this.sampling = false;
    }
  }

  /** Rates over one interval between two samples. */
  private interval(a: Sample, b: Sample): Record<string, unknown> {
    const sec = Math.max((b.t - a.t) / 1000, 0.001);
    const committed = b.committed - a.committed;
    const conflicts = b.conflicts - a.conflicts;
    const commitBuckets = diff(b.commitBuckets, a.commitBuckets);
    const readBuckets = diff(b.readBuckets, a.readBuckets);
    const ms = (buckets: Float64Array, q: number): number | null => round(quantile(buckets, q) * 1000);
    return {
      t: b.t,
      seconds: round(sec),
      startedPerSec: round((b.started - a.started) / sec, 1),
      committedPerSec: round(committed / sec, 1),
      conflictsPerSec: round(conflicts / sec, 1),
      tooOldPerSec: round((b.tooOld - a.tooOld) / sec, 1),
      abortedPerSec: round((b.aborted - a.aborted) / sec, 1),
      httpRequestsPerSec: round((b.httpRequests - a.httpRequests) / sec, 1),
      binaryRequestsPerSec: round((b.binaryRequests - a.binaryRequests) / sec, 1),
      readsPerSec: round((b.gets - a.gets + b.ranges - a.ranges) / sec, 1),
      errorsPerSec: round((b.errors - a.errors) / sec, 1),
      bytesInPerSec: round((b.bytesIn - a.bytesIn) / sec, 0),
      bytesOutPerSec: round((b.bytesOut - a.bytesOut) / sec, 0),
      conflictRate: committed + conflicts > 0 ? round(conflicts / (committed + conflicts), 4) : 0,
      commitLatencyMs: { p50: ms(commitBuckets, 0.5), p95: ms(commitBuckets, 0.95), p99: ms(commitBuckets, 0.99) },
      readLatencyMs: { p50: ms(readBuckets, 0.5), p95: ms(readBuckets, 0.95), p99: ms(readBuckets, 0.99) },
      shardUtilization: b.shardBusyMs.map((busy, i) => round(Math.min(1, (busy - (a.shardBusyMs[i] ?? 0)) / (sec * 1000)), 4)),
      shardCommitsPerSec: b.shardCommits.map((n, i) => round((n - (a.shardCommits[i] ?? 0)) / sec, 1)),
      shardReadsPerSec: b.shardReads.map((n, i) => round((n - (a.shardReads[i] ?? 0)) / sec, 1)),
      // WAL write (and fsync) latency: mean over the interval's batches; null when none was written
      walWriteMs: b.walWrites > a.walWrites ? round((b.walMs - a.walMs) / (b.walWrites - a.walWrites)) : null,
      walWritesPerSec: round((b.walWrites - a.walWrites) / sec, 1),
      fsyncsPerSec: round((b.fsyncs - a.fsyncs) / sec, 1),
      cpuPercent: round(((b.cpuMicros - a.cpuMicros) / 1e6 / sec) * 100, 1),
      rssBytes: b.rssBytes,
      heapUsedBytes: b.heapUsedBytes,
      eventLoopLagP99Ms: round(b.loopP99Ms, 2),
      eventLoopLagMaxMs: round(b.loopMaxMs, 2),
    };
  }

  /** Rates over the last `seconds` (between the newest sample and one about that old). */
  private recent(seconds: number): Record<string, unknown> | null {
    const n = this.samples.length;
    if (n < 2) return null;
    const b = this.samples[n - 1]!;
    let i = n - 2;
    while (i > 0 && b.t - this.samples[i]!.t < seconds * 1000) i--;
    return this.interval(this.samples[i]!, b);
  }

  /** GET /v1/metrics.json: one point per sampler interval (up to five minutes) plus totals. */
  async seriesJson(): Promise<Record<string, unknown>> {
    const points: Record<string, unknown>[] = [];
    for (let i = 1; i < this.samples.length; i++) points.push(this.interval(this.samples[i - 1]!, this.samples[i]!));
    return { sampleMs: SAMPLE_MS, points, errorsByCode: this.errorsByCode(), totals: this.totals() };
  }

  /** Error replies by code, both protocols. */
  private errorsByCode(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const m of [this.requests, this.http]) for (const k in m.errors) out[k] = (out[k] ?? 0) + m.errors[k]!;
    return out;
  }

  private protocolTotals(m: RequestMetrics): Record<string, number> {
    let errors = 0;
    for (const k in m.errors) errors += m.errors[k]!;
    let requests = 0;
    for (const n of m.responses.values()) requests += n;
    return {
      ...(m.protocol === 'http' ? { requests } : {}),
      transactionsStarted: m.transactionsStarted,
      gets: m.getLatency.count,
      ranges: m.rangeLatency.count,
      commits: m.commitLatency.count,
      errors,
      bytesIn: m.bytesIn,
      bytesOut: m.bytesOut,
      inflight: m.inflight,
    };
  }

  private totals(): Record<string, number> {
    const [r, h] = [this.requests, this.http];
    const c = this.src.commitTotals();
    return {
      transactionsStarted: r.transactionsStarted + h.transactionsStarted,
      committed: c.committed,
      conflicts: c.conflicts,
      tooOld: c.tooOld,
      aborted: c.aborted,
      gets: r.getLatency.count + h.getLatency.count,
      ranges: r.rangeLatency.count + h.rangeLatency.count,
      bytesIn: r.bytesIn + h.bytesIn,
      bytesOut: r.bytesOut + h.bytesOut,
      httpRequests: this.protocolTotals(h).requests!,
    };
  }

  /**
   * /v1/status `distribution`: the source's map, move, counters and history, plus
   * `workers`: per worker its ranges (hex and printable keys; `oldReads` = ranges it still
   * serves to reads below a move's switch), its counted keys and bytes and its recent load.
   * Each range carries its own size and load: `keys`/`bytes` (the census, null until
   * counted) and `readsPerSec`/`writesPerSec` (the balancer's smoothed rates, keys read and
   * written per second, null until measured); each worker `opsPerSec` and `share` (of all
   * reads and writes).
   */
  private distributionStatus(
    d: DistributionView,
    census: Map<number, ShardCensus>,
    utilization: (number | null)[],
    commitsPerSec: (number | null)[],
    readsPerSec: (number | null)[],
  ): Record<string, unknown> {
    const text = (h: string | null): string | null => (h === null ? null : printable(new Uint8Array(Buffer.from(h, 'hex')), 256));
    const workers = [];
    const measured = new Map((d.balancer?.ranges ?? []).map((r) => [`${r.begin}-${r.end ?? ''}`, r]));
    const sizeAndLoad = (begin: string, end: string | null): { keys: number | null; bytes: number | null; readsPerSec: number | null; writesPerSec: number | null } => {
      const m = measured.get(`${begin}-${end ?? ''}`);
      return { keys: m?.keys ?? null, bytes: m?.bytes ?? null, readsPerSec: m?.readsPerSec ?? null, writesPerSec: m?.writesPerSec ?? null };
    };
    for (let w = 0; w < d.map.workers; w++) {
      const c = census.get(w);
      const load = d.balancer?.workers.find((x) => x.worker === w);
      workers.push({
        worker: w,
        ranges: d.map.ranges
          .filter((r) => r.owner === w)
          .map((r) => ({ begin: r.begin, end: r.end, beginKey: text(r.begin), endKey: text(r.end), ...(r.prev ? { movedFrom: r.prev.owner, since: String(r.prev.until) } : {}), ...sizeAndLoad(r.begin, r.end) })),
        oldReads: d.map.ranges.filter((r) => r.prev?.owner === w).map((r) => ({ begin: r.begin, end: r.end, beginKey: text(r.begin), endKey: text(r.end), until: String(r.prev!.until) })),
        estimatedKeys: c?.keys ?? null,
        estimatedBytes: c?.bytes ?? null,
        utilization: utilization[w] ?? null,
        commitsPerSec: commitsPerSec[w] ?? null,
        readsPerSec: readsPerSec[w] ?? null,
        opsPerSec: load?.opsPerSec ?? null,
        share: load?.share ?? null,
      });
    }
    return { ...d, workers };
  }

  /** GET /v1/status. */
  async status(): Promise<Record<string, unknown>> {
    const stats = await this.refreshShards();
    const s = this.src;
    const recent = this.recent(RECENT_SEC);
    const utilization = (recent?.shardUtilization as (number | null)[] | undefined) ?? [];
    const commitsPerSec = (recent?.shardCommitsPerSec as (number | null)[] | undefined) ?? [];
    const readsPerSec = (recent?.shardReadsPerSec as (number | null)[] | undefined) ?? [];
    const rocks: Record<string, number | null> = {};
    for (const [, prop] of ROCKS_PROPERTIES) {
      const v = s.rocksProperty(prop);
      rocks[prop.replace(/^rocksdb\./, '')] = v === undefined || v === '' ? null : Number(v);
    }
    const census = new Map((s.census?.() ?? []).map((c) => [c.shardId, c]));
    const disk = this.disk();
    const distribution = s.distribution ? this.distributionStatus(s.distribution(), census, utilization, commitsPerSec, readsPerSec) : null;
    const shardRanges = s.shardRanges();
    return {
      version: s.version,
      databaseId: s.databaseId,
      cluster: s.cluster(),
      uptimeSec: Math.round((Date.now() - this.startedAt) / 1000),
      startedAt: new Date(this.startedAt).toISOString(),
      durability: s.settings.durability,
      readonly: s.settings.readonly,
      dataDir: s.settings.dataDir,
      // versions are decimal strings everywhere in the HTTP API (64-bit; JSON numbers are exact only to 2^53)
      latestCommittedVersion: String(s.latestCommittedVersion()),
      oldestReadableVersion: String(s.oldestReadableVersion()),
      mvccWindowMs: s.settings.mvccWindowMs,
      connections: s.connections(),
      httpInflightRequests: this.http.inflight,
      admission: s.admission ? (({ bufferedBytes, peakBufferedBytes, refused }) => ({ bufferedBytes, peakBufferedBytes, refused }))(s.admission()) : null,
      inflightCommits: s.inflightCommits(),
      inflightRequests: this.requests.inflight + this.http.inflight,
      // per-thread CPU (ms since start; null off Linux) and, for gateway threads, what they served
      processCpuMs: (({ user, system }) => Math.round((user + system) / 1000))(process.cpuUsage()),
      threads: s.threads?.() ?? [],
      transactions: this.totals(),
      commits: s.commitTotals(),
      resolver: s.resolver ? (({ keys, ranges, horizon, startVersion }) => ({ keys, ranges, horizon: String(horizon), startVersion: String(startVersion) }))(s.resolver()) : null,
      protocols: { binary: this.protocolTotals(this.requests), http: this.protocolTotals(this.http) },
      errorsByCode: this.errorsByCode(),
      recent: recent === null ? null : { windowSec: recent.seconds, ...recent, t: undefined, seconds: undefined },
      // one row per worker (a shard thread and its column family): its counters once, and
      // its ranges with their size and load (the same rows as distribution.workers)
      workers: ((distribution?.workers as { worker: number }[] | undefined) ?? []).map((w) => {
        const st = stats[w.worker];
        return {
          ...w,
          queueDepth: shardRanges.find((r) => r.shardId === w.worker)?.queueDepth ?? null,
          ...st,
          appliedVersion: st ? String(st.appliedVersion) : null,
          walWriteMsAvg: st && st.walWrites > 0 ? round(st.walMs / st.walWrites) : null,
        };
      }),
      // one row per range of the map, with its worker's counters (kept for the clients that read it; `workers` has each worker once)
      shards: shardRanges.map((r) => ({
        shardId: r.shardId,
        begin: hex(r.begin),
        end: r.end === null ? null : hex(r.end),
        beginKey: keyText(r.begin),
        endKey: r.end === null ? null : keyText(r.end),
        queueDepth: r.queueDepth,
        utilization: utilization[r.shardId] ?? null,
        commitsPerSec: commitsPerSec[r.shardId] ?? null,
        readsPerSec: readsPerSec[r.shardId] ?? null,
        ...stats[r.shardId],
        appliedVersion: stats[r.shardId] ? String(stats[r.shardId]!.appliedVersion) : null,
        // counted by the census (census.ts), per shard; null until its first pass ends
        estimatedKeys: census.get(r.shardId)?.keys ?? null,
        estimatedBytes: census.get(r.shardId)?.bytes ?? null,
        countedAt: census.get(r.shardId)?.at ? new Date(census.get(r.shardId)!.at!).toISOString() : null,
        walWriteMsAvg: stats[r.shardId] && stats[r.shardId]!.walWrites > 0 ? round(stats[r.shardId]!.walMs / stats[r.shardId]!.walWrites) : null,
      })),
      storage: {
        note:
          'disk: the data directory on disk (every column family) and its file system; shards[].estimatedKeys/estimatedBytes: rows and key+value bytes counted per shard (column family) by a background census; ' +
          'metadata-*: RocksDB properties of the default column family (txkv metadata only); the rest: whole database',
        disk,
        metadataMemtableBytes: rocks['cur-size-all-mem-tables'],
        metadataCompactionPending: rocks['compaction-pending'],
        runningCompactions: rocks['num-running-compactions'],
        runningFlushes: rocks['num-running-flushes'],
        backgroundErrors: rocks['background-errors'],
        blockCacheBytes: rocks['block-cache-usage'],
        writeStopped: rocks['is-write-stopped'] == null ? null : rocks['is-write-stopped']! > 0,
        delayedWriteRateBytes: rocks['actual-delayed-write-rate'],
      },
      process: recent === null
        ? null
        : { cpuPercent: recent.cpuPercent, rssBytes: recent.rssBytes, heapUsedBytes: recent.heapUsedBytes, eventLoopLagP99Ms: recent.eventLoopLagP99Ms, eventLoopLagMaxMs: recent.eventLoopLagMaxMs, walWriteMs: recent.walWriteMs },
      recovery: versionsAsStrings(s.recovery),
      distribution,
    };
  }

  /** GET /metrics. */
  async prometheusText(): Promise<string> {
    await this.refreshShards();
    const [r, h] = [this.requests, this.http];
    const text = await this.registry.metrics();
    return (
      text +
      histogramText('txkv_commit_latency_seconds', 'Commit latency at the gateway (request in to reply out), every outcome, by protocol (binary = WebSocket, http)', [
        [{ protocol: 'binary' }, r.commitLatency],
        [{ protocol: 'http' }, h.commitLatency],
      ]) +
      histogramText('txkv_read_latency_seconds', 'Read latency at the gateway, by kind and protocol', [
        [{ kind: 'get', protocol: 'binary' }, r.getLatency],
        [{ kind: 'range', protocol: 'binary' }, r.rangeLatency],
        [{ kind: 'get', protocol: 'http' }, h.getLatency],
        [{ kind: 'range', protocol: 'http' }, h.rangeLatency],
      ])
    );
  }

  /** txkv_distribution_*: ranges, moves, splits and merges (coordinator/distribution.ts). */
  private registerDistribution(d: () => DistributionView, counter: MetricFactory, gauge: MetricFactory): void {
    gauge('txkv_distribution_map_version', 'Version of the range map (every split, merge, move switch and drop of moved rows adds one)', [], (set) => set({}, d().map.version));
    gauge('txkv_distribution_ranges', 'Key ranges each worker owns', ['worker'], (set) => {
      const m = d().map;
      const n = new Array<number>(m.workers).fill(0);
      for (const r of m.ranges) n[r.owner]!++;
      n.forEach((v, w) => set({ worker: w }, v));
    });
    gauge('txkv_distribution_moves_in_progress', 'Range moves running now (0 or 1: moves run one at a time)', [], (set) => set({}, d().movesInProgress));
    gauge('txkv_distribution_move_progress_seconds', 'Age of the move in progress (0 when none runs)', [], (set) => {
      const m = d().move;
      set({}, m ? Math.max(0, Date.now() - m.startedMs) / 1000 : 0);
    });
    counter('txkv_distribution_rows_moved_total', 'Rows copied or fed to a new owner by finished moves (a key written during the copy counts again)', [], (set) => set({}, d().rowsMoved));
    counter('txkv_distribution_bytes_moved_total', 'Key and value bytes copied or fed to a new owner by finished moves', [], (set) => set({}, d().bytesMoved));
    const byKind = (kind: 'split' | 'merge' | 'move', name: string, help: string, withOutcome: boolean): void => {
      counter(name, help, withOutcome ? ['reason', 'outcome'] : ['reason'], (set) => {
        for (const c of d().byReason) if (c.kind === kind) set(withOutcome ? { reason: c.reason, outcome: c.outcome } : { reason: c.reason }, c.count);
      });
    };
    byKind('split', 'txkv_distribution_splits_total', 'Range splits, by reason (operator, or the balancer: size, load)', false);
    byKind('merge', 'txkv_distribution_merges_total', 'Range merges, by reason', false);
    byKind('move', 'txkv_distribution_moves_total', 'Range moves, by reason and outcome (done, failed: rolled back before the switch)', true);
    counter('txkv_distribution_move_seconds_total', 'Seconds spent in moves, by reason and outcome (over txkv_distribution_moves_total = mean duration)', ['reason', 'outcome'], (set) => {
      for (const c of d().byReason) if (c.kind === 'move') set({ reason: c.reason, outcome: c.outcome }, c.ms / 1000);
    });
  }

  /** txkv_cluster_*: cluster mode only (src/cluster/cluster-node.ts status()). */
  private registerCluster(counter: MetricFactory, gauge: MetricFactory): void {
    const cl = (): ClusterView | null => this.src.cluster() as ClusterView | null;
    gauge('txkv_cluster_role', "This node's role: 1 on the label of the current one", ['role'], (set) => {
      const c = cl();
      if (c) for (const role of ['leader', 'replica', 'candidate']) set({ role }, c.role === role ? 1 : 0);
    });
    gauge('txkv_cluster_applied_version', 'Every log entry at or below this version is applied on this node', [], (set) => {
      const c = cl();
      if (c) set({}, c.appliedVersion);
    });
    gauge('txkv_cluster_member_applied_version', 'Applied version each live member published in etcd (every ~0.5 s)', ['node'], (set) => {
      for (const m of cl()?.members ?? []) set({ node: m.nodeId }, m.applied);
    });
    gauge('txkv_cluster_member_lag_versions', "How far each member's published applied version is behind the leader's (versions = microseconds)", ['node'], (set) => {
      for (const m of cl()?.members ?? []) if (m.lagVersions !== null) set({ node: m.nodeId }, m.lagVersions);
    });
    counter('txkv_cluster_failovers_total', 'Times this node became the leader', [], (set) => set({}, cl()?.failovers ?? 0));
    gauge('txkv_cluster_last_failover_seconds', 'Duration of the last take-over by this node, from the last sight of the previous leader to serving', [], (set) => {
      const ms = cl()?.lastFailoverMs;
      if (ms !== null && ms !== undefined) set({}, ms / 1000);
    });
    const log: [string, string, keyof ClusterView['log']][] = [
      ['txkv_cluster_log_appends_total', 'Group-commit batches this node appended to the log in etcd (one fenced etcd transaction each)', 'appends'],
      ['txkv_cluster_log_appended_commits_total', 'Commits in those batches', 'appendedCommits'],
      ['txkv_cluster_log_appended_bytes_total', 'Bytes of those batches', 'appendedBytes'],
      ['txkv_cluster_log_fenced_total', 'Appends refused by etcd because this node no longer held the leader key (the commits did not happen)', 'fenced'],
      ['txkv_cluster_log_failed_total', 'Appends without an answer (their commits got MAYBE_COMMITTED)', 'failed'],
    ];
    for (const [name, help, key] of log) counter(name, help, [], (set) => set({}, Number(cl()?.log[key] ?? 0)));
    gauge('txkv_cluster_log_append_seconds_mean', 'Mean round trip of an append to etcd', [], (set) => {
      const l = cl()?.log;
      if (l && l.appends + l.fenced > 0) set({}, l.appendMs / 1000 / (l.appends + l.fenced));
    });
    gauge('txkv_cluster_log_trimmed_through_version', 'Log entries with versions up to this were deleted from etcd (leader)', [], (set) => set({}, Number(cl()?.log.trimmedThrough ?? 0)));
    counter('txkv_cluster_forwarded_total', 'Requests this node forwarded to the leader, by kind', ['kind'], (set) => {
      const f = cl()?.forwarded;
      if (f) {
        set({ kind: 'commit' }, f.commits);
        set({ kind: 'grv' }, f.readVersions);
      }
    });
    counter('txkv_cluster_applied_from_log_total', 'Commits this node applied from the log (as a replica or while taking over)', [], (set) => set({}, cl()?.appliedFromLog ?? 0));
    counter('txkv_cluster_etcd_errors_total', 'etcd calls of the cluster machinery that failed', [], (set) => set({}, cl()?.etcd.errors ?? 0));
  }

  private register(): void {
    const reg = this.registry;
    const s = this.src;
    const r = this.requests;
    // counters whose value lives elsewhere: set from the source when scraped
    const counter = (name: string, help: string, labelNames: string[], fill: (set: (labels: Record<string, string | number>, v: number) => void) => void): void => {
      new Counter({
        name,
        help,
        labelNames,
        registers: [reg],
        collect(this: Counter) {
          this.reset();
          fill((labels, v) => this.inc(labels, Math.max(0, v)));
        },
      });
    };
    const gauge = (name: string, help: string, labelNames: string[], fill: (set: (labels: Record<string, string | number>, v: number) => void) => void): void => {
      new Gauge({
        name,
        help,
        labelNames,
        registers: [reg],
        collect(this: Gauge) {
          this.reset();
          fill((labels, v) => this.set(labels, v));
        },
      });
    };
    const shards = (): ShardCounters[] => this.lastShards;

    gauge('txkv_build_info', 'txkv version', ['version'], (set) => set({ version: s.version }, 1));
    gauge('txkv_uptime_seconds', 'Seconds since the server started', [], (set) => set({}, (Date.now() - this.startedAt) / 1000));
    const protocols: [Protocol, RequestMetrics][] = [
      ['binary', r],
      ['http', this.http],
    ];
    counter(
      'txkv_transactions_started_total',
      'Transactions started: read versions handed out (one per transaction that reads) plus write-only transactions (no read version; counted at commit), by protocol',
      ['protocol'],
      (set) => {
        for (const [protocol, m] of protocols) set({ protocol }, m.transactionsStarted);
      },
    );
    counter('txkv_transactions_committed_total', 'Commits that succeeded (both protocols)', [], (set) => set({}, s.commitTotals().committed));
    counter('txkv_transactions_conflicted_total', 'Commits refused with CONFLICT: a key read was written since the read version (normal under optimistic concurrency; clients retry)', [], (set) => set({}, s.commitTotals().conflicts));
    counter('txkv_transactions_too_old_total', 'Commits refused with TOO_OLD: the read version left the MVCC window (a transaction that ran too long)', [], (set) => set({}, s.commitTotals().tooOld));
    counter('txkv_transactions_aborted_total', 'Commits that failed for any other reason than CONFLICT or TOO_OLD', [], (set) => set({}, s.commitTotals().aborted));
    counter('txkv_commit_attempts_total', 'Commit attempts by commit path (one_phase: one shard; two_phase: several), any outcome', ['path'], (set) => {
      const c = s.commitTotals();
      set({ path: 'one_phase' }, c.onePhase);
      set({ path: 'two_phase' }, c.twoPhase);
    });
    counter('txkv_errors_total', 'Error replies by code and protocol (CONFLICT and TOO_OLD included)', ['code', 'protocol'], (set) => {
      for (const [protocol, m] of protocols) for (const code in m.errors) set({ code, protocol }, m.errors[code]!);
    });
    counter('txkv_payload_bytes_received_total', 'Key and value bytes received in requests, by protocol', ['protocol'], (set) => {
      for (const [protocol, m] of protocols) set({ protocol }, m.bytesIn);
    });
    counter('txkv_payload_bytes_sent_total', 'Key and value bytes sent in replies, by protocol', ['protocol'], (set) => {
      for (const [protocol, m] of protocols) set({ protocol }, m.bytesOut);
    });
    counter('txkv_http_requests_total', 'HTTP API responses by method, route (pattern) and status', ['method', 'route', 'status'], (set) => {
      for (const [k, n] of this.http.responses) {
        const [method, route, status] = k.split(' ') as [string, string, string];
        set({ method, route, status }, n);
      }
    });
    gauge('txkv_connections', 'Open WebSocket connections (HTTP requests are counted in txkv_inflight_requests{protocol="http"})', [], (set) => set({}, s.connections()));
    gauge('txkv_inflight_requests', 'Requests being processed, by protocol', ['protocol'], (set) => {
      for (const [protocol, m] of protocols) set({ protocol }, m.inflight);
    });
    gauge('txkv_inflight_commits', 'Commit versions assigned and not yet finished', [], (set) => set({}, s.inflightCommits()));
    gauge('txkv_latest_committed_version', 'Latest committed version (microseconds)', [], (set) => set({}, s.latestCommittedVersion()));
    gauge('txkv_mvcc_window_seconds', 'MVCC window', [], (set) => set({}, s.settings.mvccWindowMs / 1000));
    if (s.cluster() !== null) this.registerCluster(counter, gauge);
    if (s.distribution) this.registerDistribution(s.distribution, counter, gauge);
    if (s.admission) {
      const adm = s.admission;
      gauge('txkv_gateway_buffered_bytes', 'Request bytes being processed (admission budget in use)', [], (set) => set({}, adm().bufferedBytes));
      counter('txkv_gateway_refused_total', 'Requests refused by admission control (THROTTLED, RESOURCE_CONSTRAINED)', [], (set) => set({}, adm().refused));
    }
    gauge('txkv_shard_queue_depth', 'Requests sent to the shard worker and not yet answered', ['shard'], (set) => {
      for (const x of s.shardRanges()) set({ shard: x.shardId }, x.queueDepth);
    });
    gauge('txkv_shard_queued_commits', 'Commits queued in the shard (prepared or waiting for their batch)', ['shard'], (set) => {
      for (const x of shards()) set({ shard: x.shardId }, x.queued);
    });
    gauge('txkv_shard_utilization_ratio', 'Fraction (0..1) of the last ~10 s the shard worker spent applying batches', ['shard'], (set) => {
      const u = (this.recent(RECENT_SEC)?.shardUtilization as (number | null)[] | undefined) ?? [];
      for (const x of shards()) set({ shard: x.shardId }, u[x.shardId] ?? 0);
    });
    counter('txkv_shard_busy_seconds_total', 'Seconds the shard worker spent applying batches (rate() = utilization)', ['shard'], (set) => {
      for (const x of shards()) set({ shard: x.shardId }, x.busyMs / 1000);
    });
    // no per-shard conflicts: commits are resolved on the main thread (txkv_transactions_conflicted_total)
    const perShard: [string, string, 'fsyncs' | 'batches' | 'commits' | 'reads'][] = [
      ['txkv_shard_fsyncs_total', 'fsync calls (group commits) of the shard', 'fsyncs'],
      ['txkv_shard_batches_total', 'RocksDB write batches of the shard', 'batches'],
      ['txkv_shard_commits_total', 'Commits (or commit parts) applied by the shard', 'commits'],
      ['txkv_shard_reads_total', 'Reads served by the shard', 'reads'],
    ];
    for (const [name, help, field] of perShard) {
      counter(name, help, ['shard'], (set) => {
        for (const x of shards()) set({ shard: x.shardId }, x[field]);
      });
    }
    gauge('txkv_shard_window_commits', 'Commits held in the shard MVCC window', ['shard'], (set) => {
      for (const x of shards()) set({ shard: x.shardId }, x.windowCommits);
    });
    gauge('txkv_shard_window_bytes', 'Bytes held by the shard MVCC window (before-images, write log, keys; an estimate)', ['shard'], (set) => {
      for (const x of shards()) set({ shard: x.shardId }, x.windowBytes);
    });
    gauge('txkv_shard_keys', 'Live keys of the shard, counted by the background census (as of its last pass)', ['shard'], (set) => {
      for (const c of s.census?.() ?? []) if (c.keys !== null) set({ shard: c.shardId }, c.keys);
    });
    gauge('txkv_shard_bytes', 'Key and value bytes of the shard, counted by the background census (as of its last pass)', ['shard'], (set) => {
      for (const c of s.census?.() ?? []) if (c.bytes !== null) set({ shard: c.shardId }, c.bytes);
    });
    counter('txkv_shard_wal_writes_total', 'Batches the shard wrote to the RocksDB WAL (with fsync under fsync durability)', ['shard'], (set) => {
      for (const x of shards()) set({ shard: x.shardId }, x.walWrites ?? 0);
    });
    counter('txkv_shard_wal_write_seconds_total', 'Seconds those WAL writes took, fsync and queueing at the log writer included (rate over rate of txkv_shard_wal_writes_total = mean latency)', ['shard'], (set) => {
      for (const x of shards()) set({ shard: x.shardId }, (x.walMs ?? 0) / 1000);
    });
    const disk: [string, string, keyof DiskUsage][] = [
      ['txkv_storage_used_bytes', 'Bytes of every file in the data directory (all column families, WAL, manifest)', 'usedBytes'],
      ['txkv_storage_sst_bytes', 'Bytes of RocksDB table files (*.sst) in the data directory, all column families', 'sstBytes'],
      ['txkv_storage_wal_bytes', 'Bytes of RocksDB WAL files (*.log) in the data directory', 'walBytes'],
      ['txkv_storage_filesystem_size_bytes', 'Size of the file system holding the data directory', 'fsTotalBytes'],
      ['txkv_storage_filesystem_free_bytes', 'Free bytes of that file system (statfs bfree)', 'fsFreeBytes'],
      ['txkv_storage_filesystem_available_bytes', 'Bytes of that file system an unprivileged process may use (statfs bavail)', 'fsAvailableBytes'],
    ];
    for (const [name, help, field] of disk) gauge(name, help, [], (set) => set({}, this.disk()[field] as number));
    gauge('txkv_nodejs_eventloop_lag_p99_recent_seconds', 'Event-loop delay p99 over the last sampler interval (about 1 s)', [], (set) => {
      const last = this.samples[this.samples.length - 1];
      if (last && Number.isFinite(last.loopP99Ms)) set({}, last.loopP99Ms / 1000);
    });
    for (const [name, prop, help] of ROCKS_PROPERTIES) {
      gauge(name, help, [], (set) => {
        const v = Number(s.rocksProperty(prop));
        if (Number.isFinite(v)) set({}, v);
      });
    }
    collectDefaultMetrics({ register: reg, prefix: 'txkv_' }); // txkv_process_*, txkv_nodejs_eventloop_lag_*, heap
    // prom-client names three gauges *_total (active handles, requests, resources): a
    // _total suffix promises a counter, so they are exposed without it
    const counts: [string, () => number][] = [
      ['active_handles', () => (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length],
      ['active_requests', () => (process as unknown as { _getActiveRequests(): unknown[] })._getActiveRequests().length],
      ['active_resources', () => process.getActiveResourcesInfo().length],
    ];
    for (const [name, count] of counts) {
      reg.removeSingleMetric(`txkv_nodejs_${name}_total`);
      reg.removeSingleMetric(`txkv_nodejs_${name}`); // per-type breakdown of prom-client; dropped with its total
      gauge(`txkv_nodejs_${name}`, `Node.js ${name.replace('_', ' ')} now (libuv)`, [], (set) => set({}, count()));
    }
  }
}

/** A copy of `o` with its *Version fields as decimal strings (versions are strings in the HTTP API). */
function versionsAsStrings(o: object): object {
  const out: Record<string, unknown> = { ...o };
  for (const [k, v] of Object.entries(out)) if (/Version$/.test(k) && typeof v === 'number') out[k] = String(v);
  return out;
}
