// The coordinator: everything on the main thread between the gateway and the shard
// workers: the oracle, the shard map and handles, commits and reads. It owns the
// shard map (single owner) and the MVCC window's clock.
import type { Logger } from 'pino';
import type { RocksLevel } from '@nxtedition/rocksdb';
import { Failpoints } from '../failpoints/failpoints.js';
import type { ShardStats } from '../shard/interface.js';
import { CommitCoordinator } from './commit-coordinator.js';
import { LocalLog, type CommitLog } from './commit-log.js';
import { ReadRouter } from './read-router.js';
import { recover, type RecoveryReport } from './recovery.js';
import { LogWriterHandle, ShardHandle } from './shard-handle.js';
import { ShardMap } from './shard-map.js';
import { TimestampOracle, microClock } from './timestamp-oracle.js';

export interface CoordinatorOptions {
  db: RocksLevel;
  splitPoints: Uint8Array[];
  readonly: boolean;
  durable: boolean;
  mvccWindowMs: number;
  failpoints: Record<string, string>;
  logger: Logger;
  /** Where decided commits become durable; default: the local log (shards fsync their batches). */
  commitLog?: CommitLog;
  /** Called when a shard worker dies: the server must stop (its state is unknown). */
  onFatal: (err: Error) => void;
}

/** How often the MVCC window slides (and shards forget old versions). */
const HORIZON_TICK_MS = 100;

export class Coordinator {
  private horizonTimer: NodeJS.Timeout | null = null;

  private constructor(
    readonly oracle: TimestampOracle,
    readonly shardMap: ShardMap,
    readonly shards: ShardHandle[],
    readonly commits: CommitCoordinator,
    readonly reads: ReadRouter,
    readonly recovery: RecoveryReport,
    private readonly mvccWindowMs: number,
    private readonly log: LogWriterHandle | null,
  ) {}

  static async start(o: CoordinatorOptions): Promise<Coordinator> {
    const shardMap = new ShardMap(1, o.splitPoints);
    const recovery = recover(o.db, shardMap.count);
    // never reuse or go below a version on disk, whatever the clock says
    const oracle = new TimestampOracle(Math.max(recovery.lastCommittedVersion, microClock()));
    const shards: ShardHandle[] = [];
    // fsync durability: the fsyncs run on a thread of their own, so shards keep serving reads meanwhile
    const log = o.durable ? await LogWriterHandle.start(o.db.handle, o.onFatal) : null;
    try {
      for (let i = 0; i < shardMap.count; i++) {
        shards.push(
          await ShardHandle.start(
            { shardId: i, dbHandle: o.db.handle, appliedVersion: recovery.appliedVersions[i]!, failpoints: o.failpoints },
            o.durable,
            o.onFatal,
            log?.portFor(i),
          ),
        );
      }
    } catch (err) {
      await Promise.all(shards.map((s) => s.close()));
      await log?.close();
      throw err;
    }
    const failpoints = new Failpoints(o.failpoints);
    const map = (): ShardMap => shardMap;
    const c = new Coordinator(
      oracle,
      shardMap,
      shards,
      new CommitCoordinator(oracle, shards, map, failpoints, { readonly: o.readonly, durable: o.durable }, o.commitLog ?? new LocalLog()),
      new ReadRouter(oracle, shards, map),
      recovery,
      o.mvccWindowMs,
      log,
    );
    c.horizonTimer = setInterval(() => c.slideWindow(), HORIZON_TICK_MS);
    c.horizonTimer.unref();
    return c;
  }

  /**
   * Oldest readable version: the window's length behind the clock, never past what
   * is committed (a read at the committed version must stay possible). The oracle is
   * asked for a read version first so that an idle server's committed version keeps
   * up with the clock.
   */
  get oldestReadableVersion(): number {
    return Math.min(microClock() - this.mvccWindowMs * 1000, this.oracle.readVersion());
  }

  private slideWindow(): void {
    const horizon = this.oldestReadableVersion;
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
    if (this.horizonTimer) clearInterval(this.horizonTimer);
    const deadline = Date.now() + drainMs;
    while (this.oracle.inflightCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await Promise.all(this.shards.map((s) => s.close()));
    await this.log?.close();
  }
}
