// hot path: the commit protocol. Main thread.
//
// A commit gets its version from the oracle, then, in the same synchronous step, the
// resolver (resolver.ts, on this thread) checks its reads against every commit with a
// lower version and records its writes: commits are resolved in version order, and no
// shard ever sees a read. Only the shards it writes then get messages, in version order
// per shard (sends happen synchronously after the version is assigned):
//   one write shard -> one-phase commit on that shard (it applies with fsync)
//   several         -> prepares posted without replies (a prepare cannot be refused) and
//                      the decision to the primary (lowest write shard), which applies its
//                      part AND the decision record (the other parts) in one fsync'd
//                      batch; then the others apply (no fsync needed: recovery replays the
//                      record). See docs/durability.md.
// The client hears "committed" once the commit is durable: a one-phase commit once its
// shard applied it; a cross-shard one once the primary wrote its part and the decision
// record, while the other write shards may still apply theirs. A read version taken
// afterwards covers it, and a read at that version waits, on each shard it reads, until
// that shard has applied every commit at or below it (Shard.mustWait). The version
// finishes (finishedVersion: moves, watches, feeds) once every part is applied.
import { TxnError, type WireError } from '../errors.js';
import { crashProcess, type Failpoints } from '../failpoints/failpoints.js';
import type { ShardReply } from '../shard/interface.js';
import { LocalLog, type CommitLog } from './commit-log.js';
import { decisionKey, encodeDecision } from './decision-log.js';
import { planCommit, validateCommit, versionstampOf, writesOf, type CommitInput, type ShardPlan } from './commit-plan.js';
import { ConflictHistory, readRangesOf } from './resolver.js';
import type { ShardHandle } from './shard-handle.js';
import type { ShardMap } from './shard-map.js';
import type { TimestampOracle } from './timestamp-oracle.js';

export interface CommitResult {
  commitVersion: number;
  versionstamp: Uint8Array;
}

/** Commit attempts by outcome (committed, CONFLICT, TOO_OLD, any other failure) and by path (any outcome). */
export interface CommitCounters {
  committed: number;
  conflicts: number;
  tooOld: number;
  aborted: number;
  onePhase: number;
  /** Commits with writes on several shards (prepares posted, decision record); cluster mode: every commit with writes. */
  twoPhase: number;
}

function replyError(r: ShardReply): WireError | null {
  return 'error' in r ? r.error : null;
}

/**
 * A commit whose decision is durable (decision record or log entry written) but
 * whose part could not be applied on some shard. The commit stands: recovery
 * finishes it on the next start. Until then no read version may cover it.
 */
class DecidedNotApplied extends Error {}

/** Runs the apply phase of a decided commit; any failure there becomes DecidedNotApplied. */
async function applyDecided(commitVersion: number, parts: { shardId: number; apply: () => Promise<ShardReply> }[]): Promise<void> {
  const failures: string[] = [];
  await Promise.all(
    parts.map((p) =>
      p.apply().then(
        (r) => {
          const e = replyError(r);
          if (e) failures.push(`shard ${p.shardId}: ${e.message}`);
        },
        (err: unknown) => void failures.push(`shard ${p.shardId}: ${err instanceof Error ? err.message : String(err)}`),
      ),
    ),
  );
  if (failures.length > 0) throw new DecidedNotApplied(`commit ${commitVersion} is decided but not applied everywhere (${failures.join('; ')})`);
}

export class CommitCoordinator {
  readonly counters: CommitCounters = { committed: 0, conflicts: 0, tooOld: 0, aborted: 0, onePhase: 0, twoPhase: 0 };
  private draining = false;
  /** Set when a decided commit could not be applied: read versions stop below it until a restart recovers it. */
  private stuck: string | null = null;
  /** Decided commits not applied everywhere: their versions stay unfinished (shutdown need not wait for them). */
  unapplied = 0;
  /**
   * The conflict history of every commit resolved here (resolver.ts). It begins at the
   * oracle's version now: read versions handed out before this start (or, in a cluster,
   * before this node leads: resetHistory) are TOO_OLD when they read anything.
   */
  resolver: ConflictHistory;

  constructor(
    private readonly oracle: TimestampOracle,
    private readonly shards: readonly ShardHandle[],
    private readonly getShardMap: () => ShardMap,
    private readonly failpoints: Failpoints,
    private readonly options: { readonly: boolean; durable: boolean },
    /** Where a decided commit becomes durable (commit-log.ts); the local log is today's single node. */
    private readonly log: CommitLog = new LocalLog(),
  ) {
    this.resolver = new ConflictHistory(oracle.lastAssignedVersion);
  }

  /**
   * Cluster mode: this node begins to lead at the oracle's version. Commits decided by
   * earlier leaders are not in this node's history, so reads at versions before it are
   * refused TOO_OLD (retryable) rather than checked against nothing.
   */
  resetHistory(): void {
    this.resolver = new ConflictHistory(this.oracle.lastAssignedVersion);
  }

  /** The window slid (Coordinator.slideWindow): forget writes no read version that may commit can miss. */
  pruneHistory(horizon: number): void {
    this.resolver.prune(horizon);
  }

  /** Refuse new commits from now on (graceful shutdown). */
  stopAccepting(): void {
    this.draining = true;
  }

  async commit(input: CommitInput): Promise<CommitResult> {
    // UNAVAILABLE (retryable): nothing was attempted, another server (or this one after
    // its restart) can take the commit
    if (this.draining) throw new TxnError('UNAVAILABLE', 'server is shutting down; commit not attempted');
    if (this.options.readonly) throw new TxnError('READ_ONLY', 'server is read-only (config readonly = true); commits that write are refused');
    if (this.stuck) throw new TxnError('UNAVAILABLE', `${this.stuck}; the server must restart (recovery applies it) before it takes commits again`);
    validateCommit(input);
    if (input.readVersion > this.oracle.lastAssignedVersion) {
      throw new TxnError('FUTURE_VERSION', `read version ${input.readVersion} is ahead of the server (latest assigned ${this.oracle.lastAssignedVersion})`);
    }
    if (!this.log.writable) throw new TxnError('UNAVAILABLE', 'this cluster node is not the leader (an election may be running); commit not attempted');
    const commitVersion = this.oracle.assignCommitVersion();
    const stamp = versionstampOf(commitVersion);
    const replicated = this.log.kind === 'replicated';
    if (replicated) this.log.reserve(commitVersion);
    /** A cross-shard commit's parts still being applied on its other write shards (decided, durable). */
    let applying: { done: Promise<void> } | null = null;
    try {
      let plans: ShardPlan[];
      try {
        plans = this.resolve(input, commitVersion, stamp);
      } catch (err) {
        if (replicated) this.log.drop(commitVersion);
        throw err;
      }
      if (replicated) await this.runReplicated(commitVersion, plans);
      else applying = await this.run(commitVersion, plans);
      this.counters.committed++;
    } catch (err) {
      if (err instanceof DecidedNotApplied) {
        // the decision stands (recovery finishes it), so this is not FAILED; and the
        // version is never finished here: no read version covers a partly applied commit
        this.stuck = err.message;
        this.unapplied++;
        this.oracle.holdBelow(commitVersion);
        this.counters.committed++;
        throw new TxnError('MAYBE_COMMITTED', `${err.message}; it will be completed by recovery`);
      }
      this.oracle.finish(commitVersion);
      if (err instanceof TxnError && (err.code === 'UNAVAILABLE' || err.code === 'FAILED') && this.shards.some((s) => s.shutDown)) {
        // the shutdown drain gave up on this commit while a shard still held it (e.g. a
        // write blocked in fsync): it may yet become durable, so its outcome is unknown
        this.counters.aborted++;
        throw new TxnError('MAYBE_COMMITTED', `the server shut down while commit ${commitVersion} was in flight (${err.message}): it may or may not have been applied`);
      }
      if (err instanceof TxnError && err.code === 'CONFLICT') this.counters.conflicts++;
      else if (err instanceof TxnError && err.code === 'TOO_OLD') this.counters.tooOld++;
      else this.counters.aborted++;
      throw err;
    }
    if (applying) {
      // single node, cross-shard: acknowledged once the decision is durable (as FoundationDB
      // acknowledges once its logs are), not once every part is applied. Read versions from
      // now on cover the commit; a read at one waits on each shard it reads until that shard
      // has applied it (the part is queued there, prepared or ready, until then: Shard.mustWait).
      // The version finishes (finishedVersion, moves, feeds) once every part is applied.
      this.oracle.acknowledge(commitVersion);
      applying.done.then(
        () => this.oracle.finish(commitVersion),
        (err: Error) => {
          // decided and acknowledged, but a part is not applied: read versions keep covering
          // it (the client was told it committed); the shard that did not apply it is shut
          // down, so its reads are refused (UNAVAILABLE), never answered without the part.
          // Commits stop until a restart, whose recovery applies the part from the record.
          this.stuck = err.message;
          this.unapplied++;
          // a live shard refusing a decision it prepared would answer reads without the part:
          // its state is not what the coordinator knows, so stop (recovery completes the commit)
          if (!this.shards.some((sh) => sh.shutDown)) crashProcess(`${err.message}; stopping the server (recovery completes the commit at the next start)`);
        },
      );
      return { commitVersion, versionstamp: stamp };
    }
    this.oracle.finish(commitVersion);
    if (replicated) {
      // cluster: acknowledge only once every lower version has finished too, so a read
      // version taken after this reply covers this commit (replicas serve reads by it)
      if (this.oracle.finishedVersion < commitVersion) await this.oracle.waitFor(commitVersion, Infinity);
    } else {
      // single node: acknowledge now; read versions handed out from now on cover this
      // commit, and a read at such a version waits on each shard it reads for the lower
      // commits that shard still applies (unrelated commits no longer wait for each other)
      this.oracle.acknowledge(commitVersion);
    }
    return { commitVersion, versionstamp: stamp };
  }

  /**
   * Checks the commit's reads and records its writes in the conflict history: called
   * synchronously after its version was assigned, so commits are resolved in version
   * order. Returns its write shards' plans; throws CONFLICT or TOO_OLD.
   */
  private resolve(input: CommitInput, commitVersion: number, stamp: Uint8Array): ShardPlan[] {
    // the final keys (versionstamps substituted) are what later commits may read
    const plans = planCommit(input, this.getShardMap(), stamp);
    const outcome = this.resolver.resolve(input.readVersion, readRangesOf(input.readConflicts), commitVersion, writesOf(plans));
    if (outcome === 'TOO_OLD') {
      const r = this.resolver;
      throw new TxnError(
        'TOO_OLD',
        input.readVersion < r.startVersion
          ? `read version ${input.readVersion} is older than this server's conflict history, which begins at version ${r.startVersion} (where the server started or this cluster node began to lead)`
          : `read version ${input.readVersion} is older than the MVCC window (oldest readable ${r.horizon})`,
      );
    }
    if (outcome === 'CONFLICT') throw new TxnError('CONFLICT', `a key read at version ${input.readVersion} was written by a later commit`);
    return plans;
  }

  /**
   * Cluster mode (the reads are resolved already): the write shards hold their parts
   * (prepares posted, even for one shard: the log decides, not the shard), the parts are
   * appended to the log, then the write shards apply without fsync and without a decision
   * record (the log entry is both).
   */
  private async runReplicated(commitVersion: number, plans: ShardPlan[]): Promise<void> {
    if (plans.length === 0) {
      this.log.drop(commitVersion);
      return;
    }
    this.counters.twoPhase++;
    let appended = false;
    try {
      for (const p of plans) this.shards[p.shardId]!.post({ t: 'prepare', commitVersion, mutations: p.mutations });
      const logged = this.log.append({ commitVersion, parts: plans.map((p) => ({ shardId: p.shardId, mutations: p.mutations })) });
      appended = true;
      await logged;
    } catch (err) {
      if (!appended) this.log.drop(commitVersion);
      // not in the log (or not known to be): the prepared writes must not be applied here;
      // if the log does hold them after all (MAYBE_COMMITTED), this node re-reads the log
      for (const p of plans) this.shards[p.shardId]!.post({ t: 'decide', commitVersion, commit: false, sync: false });
      throw err;
    }
    await applyDecided(
      commitVersion,
      plans.map((p) => ({ shardId: p.shardId, apply: () => this.shards[p.shardId]!.request({ t: 'decide', commitVersion, commit: true, sync: false }) })),
    );
  }

  /**
   * Single node (the reads are resolved already; `plans` are the write shards). Resolves
   * once the commit is decided and durable: null when every part is applied too, else
   * `done`, the apply of the other write shards' parts, still running (it rejects with
   * DecidedNotApplied; the decision record is forgotten once it resolves).
   */
  private async run(commitVersion: number, plans: ShardPlan[]): Promise<{ done: Promise<void> } | null> {
    if (plans.length === 0) return null;
    if (plans.length === 1) {
      const single = plans[0]!;
      this.counters.onePhase++;
      const r = await this.shards[single.shardId]!.request({ t: 'commit', commitVersion, mutations: single.mutations, sync: true });
      const e = replyError(r);
      if (e) throw TxnError.fromWire(e);
      return null;
    }
    this.counters.twoPhase++;
    // no write shard can refuse its prepare (nothing is checked there any more), so the
    // prepares go without replies and the decision goes to the primary in the same
    // message as its prepare
    for (const p of plans) this.shards[p.shardId]!.post({ t: 'prepare', commitVersion, mutations: p.mutations });
    const [primary, ...others] = plans;
    // the decision becomes durable with the primary's own part
    const decision = { key: decisionKey(commitVersion), value: encodeDecision({ commitVersion, parts: others.map((p) => ({ shardId: p.shardId, mutations: p.mutations })) }) };
    const first = await this.shards[primary!.shardId]!.request({ t: 'decide', commitVersion, commit: true, sync: true, decision });
    const e = replyError(first);
    if (e) {
      // the primary refused before writing anything: nothing is durable, so the others
      // must let go of their prepared writes (they would block their queues forever)
      for (const p of others) this.shards[p.shardId]!.post({ t: 'decide', commitVersion, commit: false, sync: false });
      throw new TxnError('FAILED', `shard ${primary!.shardId} failed to apply commit ${commitVersion}; nothing of it was written: ${e.message}`);
    }
    this.failpoints.hitCount('coordinator.after-decision');
    // from here on the commit is decided (the record is durable): a failure below is not an abort
    const done = applyDecided(
      commitVersion,
      others.map((p) => ({ shardId: p.shardId, apply: () => this.shards[p.shardId]!.request({ t: 'decide', commitVersion, commit: true, sync: false }) })),
    ).then(() => {
      // every part is applied: the record is no longer needed
      this.shards[primary!.shardId]!.forget(decision.key);
    });
    return { done };
  }
}
