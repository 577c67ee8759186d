// The coordinator: everything on the main thread between the gateway and the shard
// workers: the oracle, the shard map and handles, commits and reads. It owns the
// shard map (single owner) and the MVCC window's clock.
import type { Logger } from 'pino';
import type { RocksLevel } from '@nxtedition/rocksdb';
import { Failpoints } from '../failpoints/failpoints.js';
import type { ShardStats } from '../shard/interface.js';
import { CommitCoordinator, type CommitResult } from './commit-coordinator.js';
import type { CommitInput } from './commit-plan.js';
import { LocalLog, type CommitLog } from './commit-log.js';
import { ReadRouter } from './read-router.js';
import { LiveHub } from './live-hub.js';
import { TxnError } from '../errors.js';
import { recover, type RecoveryReport } from './recovery.js';
import { LogWriterHandle, ShardHandle } from './shard-handle.js';
import type { ShardMap } from './shard-map.js';
import { Distribution, loadDistribution } from './distribution.js';
import { TimestampOracle, VERSION_BOUND_AHEAD, microClock, versionClock, type Clock } from './timestamp-oracle.js';
import { decodeVersion, encodeVersion } from '../shard/interface.js';

/** Key (default column) of the persisted bound above every version handed out (timestamp-oracle.ts). */
export const VERSION_BOUND_KEY = new TextEncoder().encode('oracle/bound');

export interface CoordinatorOptions {
  db: RocksLevel;
  splitPoints: Uint8Array[];
  readonly: boolean;
  durable: boolean;
  mvccWindowMs: number;
  failpoints: Record<string, string>;
  logger: Logger;
  /**
   * Cluster mode: start as a follower of the replicated log at this version (every log
   * entry <= it is applied here); versions then come from the log until the node leads.
   */
  followFrom?: number;
  /** Where decided commits become durable; default: the local log (shards fsync their batches). */
  commitLog?: CommitLog;
  /** Called when a shard worker dies: the server must stop (its state is unknown). */
  onFatal: (err: Error) => void;
  /** Wall clock in microseconds (default microClock); places the first version of this start. Tests step it. */
  clock?: Clock;
  /** Row cache bytes, all shards together (the `rocksdb.rowCacheBytes` setting); default 0 (off). */
  rowCacheBytes?: number;
}

/** How often the MVCC window slides (and shards forget old versions). */
const HORIZON_TICK_MS = 100;

/** Cluster mode: read versions and commits of clients go through the cluster node (the leader's own, or forwarded to it). */
export interface ClientFront {
  readVersion(): Promise<number>;
  commit(input: CommitInput): Promise<CommitResult>;
}

export class Coordinator {
  private horizonTimer: NodeJS.Timeout | null = null;
  private horizon = 0;
  /** Set in cluster mode (src/cluster/cluster-node.ts); null on a single node. */
  front: ClientFront | null = null;
  /** Watches and change feeds (live-hub.ts). */
  readonly live: LiveHub;

  /** Splits, merges and moves; owns the current shard map. Set right after construction. */
  distribution!: Distribution;

  /** The current shard map (the distribution publishes new ones). */
  get shardMap(): ShardMap {
    return this.distribution.map;
  }

  private constructor(
    readonly oracle: TimestampOracle,
    readonly shards: ShardHandle[],
    readonly commits: CommitCoordinator,
    readonly reads: ReadRouter,
    readonly recovery: RecoveryReport,
    private readonly mvccWindowMs: number,
    /** The log writer thread (fsync durability); null with buffered durability. */
    readonly logWriter: LogWriterHandle | null,
  ) {
    this.live = new LiveHub(oracle, shards, () => this.distribution.map);
  }

  static async start(o: CoordinatorOptions): Promise<Coordinator> {
    // the persisted map, and the rest of a move a crash interrupted (finished or rolled back
    // between the decision records below its switch version and the others)
    // cluster mode: replicas apply the leader's log into the same columns, so map changes
    // are log entries too (coordinator/distribution.ts)
    const clustered = o.followFrom !== undefined || o.commitLog?.kind === 'replicated';
    const loaded = loadDistribution(o.db, o.splitPoints, clustered);
    const recovery = recover(o.db, loaded.map.count, loaded.at);
    const { map: shardMap, nextMoveId, recovered, logVersion } = loaded.finish();
    if (recovered) o.logger.info({ event: 'MoveRecovered', detail: recovered }, recovered);
    // never reuse or go below a version on disk or a version handed out before (the
    // persisted bound), whatever the wall clock says; from here on versions follow
    // elapsed monotonic time
    const [storedBound] = o.db._getManySync([VERSION_BOUND_KEY]);
    const start = Math.max(recovery.lastCommittedVersion, storedBound ? decodeVersion(storedBound) : 0, (o.clock ?? microClock)());
    const oracle = new TimestampOracle(start, versionClock(start), {
      ahead: VERSION_BOUND_AHEAD,
      persist: (bound) => {
        const b = o.db.batch();
        b._put(VERSION_BOUND_KEY, encodeVersion(bound));
        try {
          b._writeSync({ sync: o.durable });
        } finally {
          void b.close(); // only close() unregisters a batch from the database (issue 17's leak)
        }
      },
    });
    if (o.followFrom !== undefined) oracle.follow(o.followFrom);
    const shards: ShardHandle[] = [];
    // fsync durability: the fsyncs run on a thread of their own, so shards keep serving reads meanwhile
    const log = o.durable ? await LogWriterHandle.start(o.db.handle, o.onFatal) : null;
    try {
      for (let i = 0; i < shardMap.count; i++) {
        const shard = await ShardHandle.start(
          { shardId: i, dbHandle: o.db.handle, appliedVersion: recovery.appliedVersions[i]!, failpoints: o.failpoints, rowCacheBytes: Math.floor((o.rowCacheBytes ?? 0) / shardMap.count) },
          o.durable,
          o.onFatal,
          log?.portFor(i),
        );
        log?.attach(i, shard);
        shards.push(shard);
      }
    } catch (err) {
      await Promise.all(shards.map((s) => s.close()));
      await log?.close();
      throw err;
    }
    const failpoints = new Failpoints(o.failpoints);
    const map = (): ShardMap => c.distribution.map;
    const c: Coordinator = new Coordinator(
      oracle,
      shards,
      new CommitCoordinator(oracle, shards, map, failpoints, { readonly: o.readonly, durable: o.durable }, o.commitLog ?? new LocalLog()),
      new ReadRouter(oracle, shards, map),
      recovery,
      o.mvccWindowMs,
      log,
    );
    c.slideWindow();
    c.distribution = new Distribution(shardMap, nextMoveId, o.db, shards, oracle, failpoints, () => c.oldestReadableVersion, o.commitLog ?? new LocalLog(), logVersion);
    c.distribution.onSwitch = (from, begin, end, to, vm) => c.live.rangeMoved(from, begin, end, to, vm);
    c.distribution.start();
    c.horizonTimer = setInterval(() => c.slideWindow(), HORIZON_TICK_MS);
    c.horizonTimer.unref();
    return c;
  }

  private readonly pins = new Map<number, number>();
  private nextPin = 1;

  /**
   * Keeps `version` readable until unpin: the window stops sliding past it, so the
   * shards keep every change since (memory grows with the write rate; the caller
   * bounds how long). Fails TOO_OLD if the version is already out of the window.
   */
  pin(version: number): number {
    if (version < this.horizon) throw new TxnError('TOO_OLD', `version ${version} is older than the MVCC window (oldest readable ${this.horizon})`);
    const id = this.nextPin++;
    this.pins.set(id, version);
    return id;
  }

  unpin(id: number): void {
    this.pins.delete(id);
  }

  /** Oldest readable version, as of the last slide of the window (every 100 ms). No side effect. */
  get oldestReadableVersion(): number {
    return this.horizon;
  }

  /**
   * Slides the window: the oldest readable version becomes the window's length, in
   * versions (1,000,000 a second), behind the newest read version, never the wall clock
   * (a clock stepped back must not make the window keep everything). Asking the oracle
   * for a read version (which may move its counters) lets an idle server's versions keep
   * moving; this is the one place that does it for the window.
   */
  private slideWindow(): void {
    const edge = this.oracle.readVersion() - this.mvccWindowMs * 1000;
    this.horizon = edge;
    // a pinned version (a long backup, gateway/snapshots.ts) holds the window open at it
    for (const v of this.pins.values()) if (v < this.horizon) this.horizon = v;
    const horizon = this.horizon;
    // the resolver forgets at the window's own edge, pinned or not (commits reading below
    // it are TOO_OLD, as FoundationDB's resolvers keep 5 s whatever storage keeps): a
    // pinned snapshot is read, not committed from, and its pin is bounded by the shards'
    // commits, not keys, so the main thread kept every key written while a backup ran
    this.commits.pruneHistory(edge);
    for (const s of this.shards) s.post({ t: 'horizon', horizon });
  }

  /** Each shard's counters (reads, commits, conflicts, fsyncs, batches, queue, window size). */
  async shardStats(): Promise<ShardStats[]> {
    const replies = await Promise.all(this.shards.map((s) => s.request({ t: 'stats' })));
    return replies.map((r, i) => {
      if (!('stats' in r)) throw new Error(`shard ${i}: unexpected reply to stats`);
      return r.stats;
    });
  }

  /** Stop new commits, wait for those in flight (bounded), stop the workers. */
  async close(drainMs = 10_000): Promise<void> {
    this.commits.stopAccepting();
    this.distribution.stop();
    if (this.horizonTimer) clearInterval(this.horizonTimer);
    this.live.closeAll(new TxnError('NETWORK_ERROR', 'server shutting down'));
    const deadline = Date.now() + drainMs;
    while (this.oracle.inflightCount > this.commits.unapplied && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await Promise.all(this.shards.map((s) => s.close()));
    await this.logWriter?.close();
  }
}
