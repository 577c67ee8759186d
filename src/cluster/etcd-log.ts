// The replicated CommitLog (src/coordinator/commit-log.ts) on etcd. Main thread.
//
// Group commit one level up: decided commits wait in version order; once per
// event-loop turn the longest prefix whose every version is decided (appended or
// dropped) becomes ONE etcd transaction, with one append in flight at a time:
//   If(createRevision(txkv/leader) == <this leader's term>) Then Put(txkv/log/<first version>, batch)
// The compare is the fence: a deposed or paused leader's append is refused by etcd
// itself, whatever this process believes. etcd acknowledges after a majority of its
// members fsync'd the entry; only then are the commits acknowledged (and applied).
//   compare failed -> this node is no longer leader: the batch did not happen (UNAVAILABLE)
//   error/timeout  -> unknown (MAYBE_COMMITTED); the node steps down and re-reads the log
// Either way everything still waiting fails with UNAVAILABLE (never sent).
import { TxnError } from '../errors.js';
import type { CommitLog, LogEntry } from '../coordinator/commit-log.js';
import { CALL_DEADLINE_MS, K, encodeEntry, logKey, type EtcdHosts } from './etcd.js';

/** Keep one append under etcd's default request limit (1.5 MiB) with room for the txn around it. */
const MAX_ENTRY_BYTES = 1024 * 1024;
/** etcd's refusal of a request over --max-request-bytes (its own check, or gRPC's receive limit): nothing was proposed. */
const TOO_LARGE = /request is too large|larger than max/;

interface Slot {
  version: number;
  entry: LogEntry | null;
  dropped: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
  bytes: number;
}

export interface LogCounters {
  appends: number;
  appendedCommits: number;
  appendedBytes: number;
  fenced: number;
  failed: number;
  /** Sum of append round trips (ms), for the mean. */
  appendMs: number;
}

export class EtcdLog implements CommitLog {
  readonly kind = 'replicated' as const;
  private fence: { rev: string } | null = null;
  private readonly slots: Slot[] = [];
  private head = 0;
  private readonly byVersion = new Map<number, Slot>();
  private inflight = false;
  private scheduled = false;
  /** Highest commit version etcd acknowledged from this node. */
  lastAcked = 0;
  /** Lowest version whose append failed with an unknown outcome since the last activate (it may be in the log). */
  unknownFrom: number | null = null;
  readonly counters: LogCounters = { appends: 0, appendedCommits: 0, appendedBytes: 0, fenced: 0, failed: 0, appendMs: 0 };

  constructor(
    private readonly hosts: EtcdHosts,
    /** Called once when an append shows this node must stop leading ('fenced' or 'error'). */
    private readonly onLost: (why: 'fenced' | 'error', detail: string) => void,
    /**
     * Deadline of one append attempt (ms), and where each append's round trip is told.
     * The cluster node gives its horizon (TTL - margin: 1.5 s at the default 2 s TTL): an
     * append is waited for as long as the leader could still serve on its last beat. It was
     * a fixed 1 s, and with etcd's writes slower than that (a slow fsync under its WAL)
     * every append ended MAYBE_COMMITTED and the leader stepped down at each. Only when the
     * outcome is known changes: the append is fenced in etcd itself, and one that ends
     * unanswered still makes the node step down.
     */
    private readonly timing: { deadlineMs(): number; note(ms: number): void } = { deadlineMs: () => CALL_DEADLINE_MS, note: () => {} },
  ) {}

  get writable(): boolean {
    return this.fence !== null;
  }

  /** Start appending under the leader key created at revision `rev` (this node's term). */
  activate(rev: string): void {
    this.fence = { rev };
    this.unknownFrom = null;
  }

  /** Stop appending; everything not yet sent fails with UNAVAILABLE (it did not happen). */
  deactivate(why: string): void {
    this.fence = null;
    this.failWaiting(why);
  }

  reserve(commitVersion: number): void {
    const s: Slot = { version: commitVersion, entry: null, dropped: false, resolve: noop, reject: noop, bytes: 0 };
    this.slots.push(s);
    this.byVersion.set(commitVersion, s);
  }

  append(entry: LogEntry): Promise<void> {
    const s = this.byVersion.get(entry.commitVersion);
    if (!s) return Promise.reject(new Error(`log: append of ${entry.commitVersion}, which was not reserved`));
    let bytes = 16;
    for (const p of entry.parts) for (const m of p.mutations) bytes += 9 + m.key.length + m.param.length;
    return new Promise<void>((resolve, reject) => {
      s.entry = entry;
      s.bytes = bytes;
      s.resolve = resolve;
      s.reject = reject;
      this.schedule();
    });
  }

  drop(commitVersion: number): void {
    const s = this.byVersion.get(commitVersion);
    if (!s) return;
    s.dropped = true;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.pump);
  }

  private readonly pump = (): void => {
    this.scheduled = false;
    if (this.inflight) return;
    if (this.fence === null) {
      this.failWaiting('this node is not the leader');
      return;
    }
    const batch: Slot[] = [];
    let bytes = 0;
    while (this.head < this.slots.length) {
      const s = this.slots[this.head]!;
      if (s.dropped) {
        this.forget(s);
        continue;
      }
      if (s.entry === null) break; // an older version is still undecided: keep version order
      if (batch.length > 0 && bytes + s.bytes > MAX_ENTRY_BYTES) break;
      batch.push(s);
      bytes += s.bytes;
      this.forget(s);
    }
    this.compact();
    if (batch.length === 0) return;
    this.inflight = true;
    const rev = this.fence.rev;
    const value = encodeEntry(batch.map((s) => s.entry!));
    const started = performance.now();
    const ms = this.timing.deadlineMs();
    this.hosts
      .run(async (c, attempt) => ({
        attempt,
        res: await c.kv.txn(
          {
            compare: [{ key: Buffer.from(K.leader), target: 'Create', result: 'Equal', create_revision: rev }],
            success: [{ request_put: { key: Buffer.from(logKey(batch[0]!.version)), value } }],
            failure: [],
          },
          { deadline: Date.now() + ms },
        ),
      }))
      .then(
        ({ res, attempt }) => {
          this.counters.appendMs += performance.now() - started;
          if (!res.succeeded && attempt > 0) {
            // an earlier attempt ended without an answer and may have appended the batch
            // before this node lost the leader key: the outcome is unknown
            this.counters.failed++;
            this.unknownFrom ??= batch[0]!.version;
            const e = new TxnError('MAYBE_COMMITTED', 'the replicated log did not answer, then this node lost the leadership; the commit may or may not have happened');
            for (const s of batch) s.reject(e);
            this.lose('error', `append of ${batch.length} commits from ${batch[0]!.version}: outcome unknown`);
          } else if (res.succeeded) {
            this.counters.appends++;
            this.counters.appendedCommits += batch.length;
            this.counters.appendedBytes += value.length;
            this.lastAcked = batch[batch.length - 1]!.version;
            for (const s of batch) s.resolve();
          } else {
            this.counters.fenced++;
            const e = new TxnError('UNAVAILABLE', 'this node lost the leadership before its commit reached the log; the commit did not happen');
            for (const s of batch) s.reject(e);
            this.lose('fenced', `append of ${batch.length} commits from ${batch[0]!.version} refused: the leader key is no longer this node's`);
          }
        },
        (err: Error) => {
          this.counters.failed++;
          if (TOO_LARGE.test(err.message)) {
            // etcd checks the size before it proposes anything: the batch was not appended
            // (definite), and this node still leads; a client's oversized commit must not
            // cost the cluster a leader
            const e = new TxnError(
              'TRANSACTION_TOO_LARGE',
              `the commit is too large for the replicated log (etcd: ${err.message}; about ${value.length} bytes); the commit did not happen. Raise etcd's --max-request-bytes or commit less at once`,
            );
            for (const s of batch) s.reject(e);
            return;
          }
          this.unknownFrom ??= batch[0]!.version;
          const e = new TxnError('MAYBE_COMMITTED', `the replicated log did not answer (${err.message}); the commit may or may not have happened`);
          for (const s of batch) s.reject(e);
          this.lose('error', `append of ${batch.length} commits from ${batch[0]!.version} failed: ${err.message}`);
        },
      )
      .finally(() => {
        this.timing.note(performance.now() - started);
        this.inflight = false;
        if (this.head < this.slots.length) this.schedule();
      });
  };

  private lose(why: 'fenced' | 'error', detail: string): void {
    if (this.fence === null) return;
    this.fence = null;
    this.failWaiting(detail);
    this.onLost(why, detail);
  }

  private forget(s: Slot): void {
    this.byVersion.delete(s.version);
    this.head++;
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.slots.length) {
      this.slots.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Fails every decided commit still waiting; undecided ones fail when they append. */
  private failWaiting(why: string): void {
    const e = new TxnError('UNAVAILABLE', `commit not attempted: ${why}`);
    while (this.head < this.slots.length) {
      const s = this.slots[this.head]!;
      if (s.entry === null && !s.dropped) break;
      this.forget(s);
      if (s.entry !== null) s.reject(e);
    }
    // later decided slots behind an undecided one: fail them too (pump will not send them)
    for (let i = this.head; i < this.slots.length; i++) {
      const s = this.slots[i]!;
      if (s.entry !== null && !s.dropped) {
        s.dropped = true;
        s.reject(e);
      }
    }
    this.compact();
  }

  /** Commits reserved and not yet acknowledged or dropped. */
  get pending(): number {
    return this.slots.length - this.head;
  }
}

function noop(): void {}
