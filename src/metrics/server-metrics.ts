// What an operator sees of a running server: GET /v1/status (JSON), GET /metrics
// (Prometheus text, prom-client registry) and GET /v1/metrics.json (recent rates and
// latency percentiles for the dashboard). Main thread; the only importer of
// prom-client. It reads the server through ServerSources (wired in
// server/start-server.ts) and never changes anything it observes.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { printable } from '../keys/bytes.js';
import { histogramText, quantile, type LatencyHistogram } from './latency-histogram.js';
import { RequestMetrics, type SlowLogger } from './request-metrics.js';

/** A shard's counters as the worker reports them (shard/interface.ts ShardStats is this type). */
export interface ShardCounters {
  shardId: number;
  appliedVersion: number;
  windowCommits: number;
  queued: number;
  estimatedKeys: number;
  estimatedBytes: number;
  reads: number;
  commits: number;
  conflicts: number;
  fsyncs: number;
  batches: number;
  busyMs: number;
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
  conflicts: number;
  aborted: number;
  onePhase: number;
  twoPhase: number;
}

export interface ServerSources {
  version: string;
  /** The database's id (data directory or cluster), as in the Hello reply. */
  databaseId: string;
  /** Cluster role and members (src/cluster), or null on a single node. */
  cluster: () => Record<string, unknown> | null;
  settings: { durability: string; readonly: boolean; mvccWindowMs: number; shards: number; dataDir: string; slowTransactionMs: number };
  recovery: object;
  latestCommittedVersion(): number;
  oldestReadableVersion(): number;
  connections(): number;
  inflightCommits(): number;
  commitTotals(): CommitTotals;
  shardRanges(): ShardRangeInfo[];
  shardStats(): Promise<ShardCounters[]>;
  /** A RocksDB property of the database (default column family), or undefined. */
  rocksProperty(name: string): string | undefined;
  /** Gateway admission counters, when the gateway has them. */
  admission?: () => { bufferedBytes: number; peakBufferedBytes: number; refused: number };
}

/** One sample of every counter the rates are computed from. */
interface Sample {
  t: number;
  started: number;
  committed: number;
  conflicts: number;
  aborted: number;
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
}

const SAMPLE_MS = 1000;
const KEEP_SAMPLES = 301; // five minutes of one-second intervals
const RECENT_SEC = 10;

const ROCKS_PROPERTIES: [string, string, string][] = [
  ['txkv_rocksdb_memtable_bytes', 'rocksdb.cur-size-all-mem-tables', 'RocksDB memtable bytes (default column family)'],
  ['txkv_rocksdb_compaction_pending', 'rocksdb.compaction-pending', 'RocksDB: 1 if a compaction is pending (default column family)'],
  ['txkv_rocksdb_pending_compaction_bytes', 'rocksdb.estimate-pending-compaction-bytes', 'RocksDB estimated bytes compaction must rewrite (default column family)'],
  ['txkv_rocksdb_running_compactions', 'rocksdb.num-running-compactions', 'RocksDB compactions running (whole database)'],
  ['txkv_rocksdb_running_flushes', 'rocksdb.num-running-flushes', 'RocksDB memtable flushes running (whole database)'],
  ['txkv_rocksdb_background_errors', 'rocksdb.background-errors', 'RocksDB background errors (whole database)'],
  ['txkv_rocksdb_block_cache_bytes', 'rocksdb.block-cache-usage', 'RocksDB block cache bytes in use'],
  ['txkv_rocksdb_live_sst_bytes', 'rocksdb.live-sst-files-size', 'RocksDB live SST file bytes (default column family)'],
];

const hex = (latin1: string): string => Buffer.from(latin1, 'latin1').toString('hex');
const keyText = (latin1: string): string => printable(new Uint8Array(Buffer.from(latin1, 'latin1')), 256);
const round = (x: number, digits = 3): number | null => (Number.isFinite(x) ? Math.round(x * 10 ** digits) / 10 ** digits : null);

function mergedReadBuckets(a: LatencyHistogram, b: LatencyHistogram): Float64Array {
  const out = a.copy();
  for (let i = 0; i < out.length; i++) out[i]! += b.counts[i]!;
  return out;
}

function diff(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! - b[i]!;
  return out;
}

export class ServerMetrics {
  readonly requests: RequestMetrics;
  readonly registry = new Registry();
  private readonly startedAt = Date.now();
  private readonly samples: Sample[] = [];
  private lastShards: ShardCounters[] = [];
  private timer: NodeJS.Timeout | null = null;
  private sampling = false;

  constructor(
    private readonly src: ServerSources,
    logger: SlowLogger,
  ) {
    this.requests = new RequestMetrics(src.settings.slowTransactionMs, logger);
    this.register();
  }

  /** Starts the one-second sampler that the recent rates come from. */
  start(): void {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  stop(): void {
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
      const r = this.requests;
      const c = this.src.commitTotals();
      let errors = 0;
      for (const k in r.errors) errors += r.errors[k]!;
      this.samples.push({
        t: Date.now(),
        started: r.transactionsStarted,
        committed: c.committed,
        conflicts: c.conflicts,
        aborted: c.aborted,
        gets: r.getLatency.count,
        ranges: r.rangeLatency.count,
        errors,
        bytesIn: r.bytesIn,
        bytesOut: r.bytesOut,
        commitBuckets: r.commitLatency.copy(),
        readBuckets: mergedReadBuckets(r.getLatency, r.rangeLatency),
        shardBusyMs: shards.map((s) => s.busyMs),
        shardCommits: shards.map((s) => s.commits),
        shardReads: shards.map((s) => s.reads),
      });
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
      abortedPerSec: round((b.aborted - a.aborted) / sec, 1),
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
    return { sampleMs: SAMPLE_MS, points, errorsByCode: { ...this.requests.errors }, totals: this.totals() };
  }

  private totals(): Record<string, number> {
    const r = this.requests;
    const c = this.src.commitTotals();
    return {
      transactionsStarted: r.transactionsStarted,
      committed: c.committed,
      conflicts: c.conflicts,
      aborted: c.aborted,
      gets: r.getLatency.count,
      ranges: r.rangeLatency.count,
      bytesIn: r.bytesIn,
      bytesOut: r.bytesOut,
    };
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
    return {
      version: s.version,
      databaseId: s.databaseId,
      cluster: s.cluster(),
      uptimeSec: Math.round((Date.now() - this.startedAt) / 1000),
      startedAt: new Date(this.startedAt).toISOString(),
      durability: s.settings.durability,
      readonly: s.settings.readonly,
      dataDir: s.settings.dataDir,
      latestCommittedVersion: s.latestCommittedVersion(),
      oldestReadableVersion: s.oldestReadableVersion(),
      mvccWindowMs: s.settings.mvccWindowMs,
      connections: s.connections(),
      admission: s.admission ? (({ bufferedBytes, peakBufferedBytes, refused }) => ({ bufferedBytes, peakBufferedBytes, refused }))(s.admission()) : null,
      inflightCommits: s.inflightCommits(),
      inflightRequests: this.requests.inflight,
      transactions: this.totals(),
      commits: s.commitTotals(),
      errorsByCode: { ...this.requests.errors },
      recent: recent === null ? null : { windowSec: recent.seconds, ...recent, t: undefined, seconds: undefined },
      shards: s.shardRanges().map((r) => ({
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
      })),
      storage: { note: 'RocksDB properties of the default column family unless marked whole-database', ...rocks },
      recovery: s.recovery,
    };
  }

  /** GET /metrics. */
  async prometheusText(): Promise<string> {
    await this.refreshShards();
    const r = this.requests;
    const text = await this.registry.metrics();
    return (
      text +
      histogramText('txkv_commit_latency_seconds', 'Commit latency at the gateway (CommitRequest in to CommitReply out), every outcome', [[{}, r.commitLatency]]) +
      histogramText('txkv_read_latency_seconds', 'Read latency at the gateway', [
        [{ kind: 'get' }, r.getLatency],
        [{ kind: 'range' }, r.rangeLatency],
      ])
    );
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
    counter('txkv_transactions_started_total', 'Transactions started (GetReadVersion requests)', [], (set) => set({}, r.transactionsStarted));
    counter('txkv_transactions_committed_total', 'Transactions committed (binary protocol and HTTP)', [], (set) => set({}, s.commitTotals().committed));
    counter('txkv_transactions_conflicted_total', 'Commits refused with CONFLICT or TOO_OLD', [], (set) => set({}, s.commitTotals().conflicts));
    counter('txkv_transactions_aborted_total', 'Commits that failed for another reason', [], (set) => set({}, s.commitTotals().aborted));
    counter('txkv_commits_total', 'Committed transactions by commit path', ['path'], (set) => {
      const c = s.commitTotals();
      set({ path: 'one_phase' }, c.onePhase);
      set({ path: 'two_phase' }, c.twoPhase);
    });
    counter('txkv_errors_total', 'Error replies of the binary protocol by code', ['code'], (set) => {
      for (const code in r.errors) set({ code }, r.errors[code]!);
    });
    counter('txkv_payload_bytes_received_total', 'Key and value bytes received in requests (binary protocol)', [], (set) => set({}, r.bytesIn));
    counter('txkv_payload_bytes_sent_total', 'Key and value bytes sent in replies (binary protocol)', [], (set) => set({}, r.bytesOut));
    gauge('txkv_connections', 'Open WebSocket connections', [], (set) => set({}, s.connections()));
    gauge('txkv_inflight_requests', 'Requests being processed', [], (set) => set({}, r.inflight));
    gauge('txkv_inflight_commits', 'Commit versions assigned and not yet finished', [], (set) => set({}, s.inflightCommits()));
    gauge('txkv_latest_committed_version', 'Latest committed version (microseconds)', [], (set) => set({}, s.latestCommittedVersion()));
    gauge('txkv_mvcc_window_seconds', 'MVCC window', [], (set) => set({}, s.settings.mvccWindowMs / 1000));
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
    gauge('txkv_shard_utilization', 'Fraction of the last ~10 s the shard worker spent applying batches', ['shard'], (set) => {
      const u = (this.recent(RECENT_SEC)?.shardUtilization as (number | null)[] | undefined) ?? [];
      for (const x of shards()) set({ shard: x.shardId }, u[x.shardId] ?? 0);
    });
    counter('txkv_shard_busy_seconds_total', 'Seconds the shard worker spent applying batches (rate() = utilization)', ['shard'], (set) => {
      for (const x of shards()) set({ shard: x.shardId }, x.busyMs / 1000);
    });
    const perShard: [string, string, keyof ShardCounters][] = [
      ['txkv_shard_fsyncs_total', 'fsync calls (group commits) of the shard', 'fsyncs'],
      ['txkv_shard_batches_total', 'RocksDB write batches of the shard', 'batches'],
      ['txkv_shard_commits_total', 'Commits (or commit parts) applied by the shard', 'commits'],
      ['txkv_shard_reads_total', 'Reads served by the shard', 'reads'],
      ['txkv_shard_conflicts_total', 'Conflicts found by the shard', 'conflicts'],
    ];
    for (const [name, help, field] of perShard) {
      counter(name, help, ['shard'], (set) => {
        for (const x of shards()) set({ shard: x.shardId }, x[field]);
      });
    }
    gauge('txkv_shard_window_commits', 'Commits held in the shard MVCC window', ['shard'], (set) => {
      for (const x of shards()) set({ shard: x.shardId }, x.windowCommits);
    });
    gauge('txkv_shard_estimated_keys', 'RocksDB estimate of keys (rocksdb.estimate-num-keys, as the shard reports it)', ['shard'], (set) => {
      for (const x of shards()) set({ shard: x.shardId }, x.estimatedKeys);
    });
    gauge('txkv_shard_estimated_bytes', 'RocksDB estimate of live bytes (rocksdb.estimate-live-data-size, as the shard reports it)', ['shard'], (set) => {
      for (const x of shards()) set({ shard: x.shardId }, x.estimatedBytes);
    });
    for (const [name, prop, help] of ROCKS_PROPERTIES) {
      gauge(name, help, [], (set) => {
        const v = Number(s.rocksProperty(prop));
        if (Number.isFinite(v)) set({}, v);
      });
    }
    collectDefaultMetrics({ register: reg, prefix: 'txkv_' }); // txkv_process_*, txkv_nodejs_eventloop_lag_*, heap
  }
}
