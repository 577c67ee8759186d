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
// Either way everything still waiting fails with UNAVAILABLE (never sent). An append that
// one etcd member does not answer soon goes to another too (hedged: EtcdLog.send).
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
  /** Appends sent to more than one etcd member (the first did not answer within the hedge delay, or failed). */
  hedged: number;
}

/** How one append ended (EtcdLog.send); `answerMs`: the answering attempt's own round trip. */
interface SendOutcome {
  kind: 'ok' | 'fenced' | 'tooLarge' | 'unknown';
  detail: string;
  attempts: number;
  answerMs?: number;
}

export class EtcdLog implements CommitLog {
  readonly kind = 'replicated' as const;
  private fence: { rev: string } | null = null;
  private readonly slots: Slot[] = [];
  private head = 0;
  private readonly byVersion = new Map<number, Slot>();
  private inflight = false;
  /** Called once no append is in flight (whenIdle). */
  private idleWaiters: (() => void)[] = [];
  private scheduled = false;
  /** Highest commit version etcd acknowledged from this node. */
  lastAcked = 0;
  /** Lowest version whose append failed with an unknown outcome since the last activate (it may be in the log). */
  unknownFrom: number | null = null;
  readonly counters: LogCounters = { appends: 0, appendedCommits: 0, appendedBytes: 0, fenced: 0, failed: 0, appendMs: 0, hedged: 0 };

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
    private readonly timing: { deadlineMs(): number; hedgeMs(): number; note(ms: number): void } = { deadlineMs: () => CALL_DEADLINE_MS, hedgeMs: () => CALL_DEADLINE_MS / 5, note: () => {} },
  ) {}

  get writable(): boolean {
    return this.fence !== null;
  }

  /** Start appending under the leader key created at revision `rev` (this node's term). */
  activate(rev: string): void {
    this.fence = { rev };
    this.unknownFrom = null;
  }

  /**
   * Resolves once no append is in flight: its commits have their outcome. A leader that
   * stops gracefully waits for it before it deletes its key and closes its etcd clients
   * (either would turn the append's answer into MAYBE_COMMITTED).
   */
  whenIdle(): Promise<void> {
    return this.inflight ? new Promise((resolve) => this.idleWaiters.push(resolve)) : Promise.resolve();
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
    void this.send(rev, Buffer.from(logKey(batch[0]!.version)), value)
      .then((o) => {
        this.counters.appendMs += performance.now() - started;
        if (o.attempts > 1) this.counters.hedged++;
        if (o.kind === 'ok') {
          this.counters.appends++;
          this.counters.appendedCommits += batch.length;
          this.counters.appendedBytes += value.length;
          this.lastAcked = batch[batch.length - 1]!.version;
          for (const s of batch) s.resolve();
        } else if (o.kind === 'fenced') {
          this.counters.fenced++;
          const e = new TxnError('UNAVAILABLE', 'this node lost the leadership before its commit reached the log; the commit did not happen');
          for (const s of batch) s.reject(e);
          this.lose('fenced', `append of ${batch.length} commits from ${batch[0]!.version} refused: the leader key is no longer this node's`);
        } else if (o.kind === 'tooLarge') {
          // etcd checks the size before it proposes anything: the batch was not appended
          // (definite), and this node still leads; a client's oversized commit must not
          // cost the cluster a leader
          this.counters.failed++;
          const e = new TxnError(
            'TRANSACTION_TOO_LARGE',
            `the commit is too large for the replicated log (etcd: ${o.detail}; about ${value.length} bytes); the commit did not happen. Raise etcd's --max-request-bytes or commit less at once`,
          );
          for (const s of batch) s.reject(e);
        } else {
          this.counters.failed++;
          this.unknownFrom ??= batch[0]!.version;
          const e = new TxnError('MAYBE_COMMITTED', `the replicated log did not answer (${o.detail}); the commit may or may not have happened`);
          for (const s of batch) s.reject(e);
          this.lose('error', `append of ${batch.length} commits from ${batch[0]!.version}: outcome unknown (${o.detail})`);
        }
        // etcd's write latency as the member that answered saw it: a paused member's
        // silence is not etcd being slow (its hedge answered); no answer at all is
        this.timing.note(o.answerMs ?? performance.now() - started);
      })
      .finally(() => {
        this.inflight = false;
        for (const w of this.idleWaiters.splice(0)) w();
        if (this.head < this.slots.length) this.schedule();
      });
  };

  /**
   * One fenced append of `value` at `key`, hedged: to the member first in order(); when it
   * has not answered within the hedge delay (twice etcd's recent write latency, 200 ms at
   * least), to the next member, and so on; a member whose attempt failed (e.g. during an
   * etcd election) is asked again at the next delay, and so is one whose attempt is stuck
   * (twice the delay, once it answered another call since; else after a second or four
   * delays): a follower passes the put on to etcd's leader, and when that leader is paused
   * etcd leaves it unanswered until its deadline, after its election too (without asking
   * again, a 5 s pause of the etcd leader held every commit 5 s at a 10 s lease; 1.3-1.4 s
   * now, etcd's election; bench/etcd-pause.ts --ttl-ms 10000 --writers 1 --targets leader). All
   * attempts end by one deadline (the horizon). Without the hedge, a paused (SIGSTOP)
   * member first in order() held every commit of the cluster for the whole deadline (1.5 s
   * at the default lease; measured with bench/etcd-pause.ts), and a paused etcd leader
   * cost the txkv leader its term.
   *
   * Exactly once: every attempt puts the same value at the same key (the batch's first
   * version) under the same fence, so a second one that lands, now or after a paused
   * member resumes, rewrites the entry with itself while this term lasts and is refused
   * after (a replica skips versions it applied). The outcome:
   *   some attempt succeeded                      -> ok (the batch is in the log)
   *   every attempt answered, each fenced or too large -> that (definite: nothing appended)
   *   a fenced answer while another attempt may still land or failed unanswered,
   *   or no answer by the deadline                -> unknown (MAYBE_COMMITTED)
   * A fenced answer means no later attempt can land (the term's key is gone), so none is
   * sent after one; an earlier one may have landed before the key went.
   */
  private send(rev: string, key: Buffer, value: Buffer): Promise<SendOutcome> {
    const hosts = this.hosts;
    const until = Date.now() + this.timing.deadlineMs();
    const hedgeMs = Math.max(1, this.timing.hedgeMs());
    const maxAttempts = 4 * hosts.size;
    return new Promise<SendOutcome>((resolve) => {
      /** Per member: attempts outstanding, when the newest was sent (performance.now()), whether one failed. */
      const out = new Array<number>(hosts.size).fill(0);
      const sentAt = new Array<number>(hosts.size).fill(0);
      const failed = new Array<boolean>(hosts.size).fill(false);
      let sent = 0;
      let settled = 0;
      let fenced = false;
      let tooLarge: string | null = null;
      /** An attempt ended without an answer (it may have landed). */
      let unanswered: string | null = null;
      let done = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (o: Omit<SendOutcome, 'attempts'>): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({ ...o, attempts: sent });
      };
      /** The member to ask next (none asked now, the most recent answer first), or -1. `any`: also one that failed, or one whose attempt is stuck. */
      const pick = (any: boolean): number => {
        const order = hosts.order();
        for (const i of order) if (out[i] === 0 && !failed[i]) return i;
        if (!any) return -1;
        for (const i of order) if (out[i] === 0) return i;
        // every member has an attempt out: one stuck a while is asked again, at once when the
        // member answered another call since (keepalive, beat), else after a second or so
        const now = performance.now();
        for (const i of order) {
          const age = now - sentAt[i]!;
          if (out[i]! < 3 && age >= 2 * hedgeMs && (hosts.lastAnswer(i) > sentAt[i]! || age >= Math.max(1000, 4 * hedgeMs))) return i;
        }
        return -1;
      };
      const decide = (): void => {
        if (done) return;
        if (fenced && (unanswered !== null || settled < sent)) finish({ kind: 'unknown', detail: `a fenced answer while another attempt may have appended the batch${unanswered ? ` (${unanswered})` : ''}` });
        else if (settled < sent) return;
        else if (fenced) finish({ kind: 'fenced', detail: 'fenced' });
        else if (tooLarge !== null && unanswered === null) finish({ kind: 'tooLarge', detail: tooLarge });
        else if (Date.now() >= until || sent >= maxAttempts || tooLarge !== null) finish({ kind: 'unknown', detail: unanswered ?? 'no answer' });
        // else: every attempt so far failed before the deadline; the timer asks again
      };
      /** Sends one more attempt if there is a member to ask; false when none was sent. */
      const launch = (any: boolean): boolean => {
        if (done || fenced || tooLarge !== null || sent >= maxAttempts || Date.now() >= until) return false;
        const i = pick(any);
        if (i < 0) return false;
        sent++;
        out[i]!++;
        const t0 = performance.now();
        sentAt[i] = t0;
        hosts
          .client(i)
          .kv.txn(
            {
              compare: [{ key: Buffer.from(K.leader), target: 'Create', result: 'Equal', create_revision: rev }],
              success: [{ request_put: { key, value } }],
              failure: [],
            },
            { deadline: until },
          )
          .then(
            (res) => {
              out[i]!--;
              settled++;
              hosts.answered(i);
              if (res.succeeded) finish({ kind: 'ok', detail: 'ok', answerMs: performance.now() - t0 });
              else {
                fenced = true;
                decide();
              }
            },
            (err: Error) => {
              out[i]!--;
              settled++;
              failed[i] = true;
              // etcd refuses an oversized request before it proposes anything
              if (TOO_LARGE.test(err.message)) tooLarge = err.message;
              else {
                unanswered = err.message;
                // at once to a member not asked yet (the timer re-asks the others)
                launch(false);
              }
              decide();
            },
          );
        clearTimeout(timer);
        timer = setTimeout(tick, hedgeMs);
        return true;
      };
      const tick = (): void => {
        if (done || launch(true)) return;
        decide();
        // every member has an attempt out: look again later (one may fail and be asked again);
        // past the deadline the attempts still out end by it, and decide() then
        if (!done && Date.now() < until) timer = setTimeout(tick, hedgeMs);
      };
      launch(false);
    });
  }

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
