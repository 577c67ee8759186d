// A replica's etcd watch on the log (txkv/log/), kept alive. Main thread.
//
// The watch is only a wake-up: the log is read by linearizable range reads (ClusterNode
// fetchAll), and a 200 ms poll reads it too, so a lost watch never loses an entry. It
// costs latency: without it a replica applies a commit up to 200 ms after etcd took it
// (about 100 ms on average) instead of a few ms.
//
// etcd ends a watch in two ways the etcd3 client does not recover from:
//   - it cancels it: a watch (re)created at a revision etcd has compacted away. The client
//     re-creates a watch after its stream broke at one past the last revision it saw;
//     the leader compacts etcd every second to a revision 5-6 s old, so after 6 s without
//     a log write (an idle cluster) that revision is gone, and the client drops the watch
//     for good (an 'error' event);
//   - its stream breaks (the member was killed or restarted, the connection reset): the
//     client reconnects to the same member every 200 ms, forever if that member stays down.
// Both used to leave the node polling for the rest of its life. Here the watch runs on one
// member's client (EtcdHosts, the member that answered first lately). When its stream
// breaks, a new watch goes to another member, starting one past the newest revision
// this node read the log at (nothing after that read is missed); when etcd cancels it
// (compacted), a new one (also on another member) starts at the current revision and the log is read once, which
// catches up whatever was appended in between. Every (re)connect reads the log once too.
import type { Logger } from 'pino';
import type { Watcher } from 'etcd3';
import type { EtcdHosts } from './etcd.js';

/** A watch not connected within this long is given up and tried on another member. */
const CONNECT_MS = 2000;
/**
 * A connected watch that has not reported a log entry this long after the node's own log
 * read found it is given up and tried on another member: its member stopped sending
 * (cut off from its peers: it applies nothing new, and only ends require-leader watches
 * after 3 election timeouts; or far behind). A watch reports an entry within a few ms of
 * etcd taking it, ~100 ms at load 20 (etcd-trouble.test.ts).
 */
const SILENT_MS = 1500;
/** Pause before the n-th consecutive retry (ms): 0, 100, 200, 400, ... at most 1 s. */
const retryDelay = (n: number): number => (n === 0 ? 0 : Math.min(1000, 100 * 2 ** (n - 1)));

export interface LogWatchStatus {
  /** etcd endpoint the watch is on (null: none right now). */
  member: string | null;
  connected: boolean;
  /** Watches created after the first (stream broke, canceled by etcd, no answer). */
  restarts: number;
  /** Of those, how many followed a cancel by etcd (compacted). */
  canceled: number;
  /** Of those, how many because the watch did not report entries the node's reads found (SILENT_MS). */
  silent: number;
  /**
   * Log entries the watches reported (puts, since start): each wakes a read of the log. A
   * test can tell by it that a replica follows the log by its watch, not by its 200 ms poll,
   * without timing it on a loaded machine.
   */
  reported: number;
}

export class LogWatch {
  private watcher: Watcher | null = null;
  /** Counts watches created; events of a replaced watch are ignored. */
  private gen = 0;
  private member = -1;
  private connected = false;
  /** One past the newest etcd revision the node read the log at (null: from now). */
  private fromRev: bigint | null = null;
  private failures = 0;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private restarts = 0;
  private canceled = 0;
  private silent = 0;
  private puts = 0;
  private lostAt = 0;
  /** The newest etcd revision up to which the current watch has reported every log change (events, or its start). */
  private reported = 0n;
  /** A log entry the node read that the current watch has not reported yet: its mod revision, and since when (performance.now()). */
  private unreported: { rev: bigint; since: number } | null = null;

  constructor(
    private readonly hosts: EtcdHosts,
    private readonly prefix: string,
    /** Read the log now (an entry may have been appended). */
    private readonly wake: () => void,
    private readonly logger: Logger,
  ) {}

  /** The node read the whole log above its position at etcd revision `rev` (a linearizable read). */
  readAt(rev: string | number): void {
    const next = BigInt(rev) + 1n;
    if (this.fromRev === null || next > this.fromRev) this.fromRev = next;
  }

  /** Opens the first watch; resolves once it is connected or after CONNECT_MS (it keeps trying). */
  start(): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, CONNECT_MS);
      this.open(-1, () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /**
   * The node's own log read (on whichever member answered) found entries written at etcd
   * revisions up to `rev`. The watch should report them too, within a few ms; check()
   * gives it up if it has not within SILENT_MS.
   */
  sawEntries(rev: string | number): void {
    const r = BigInt(rev);
    if (!this.connected || r <= this.reported || this.unreported !== null) return;
    this.unreported = { rev: r, since: performance.now() };
  }

  /** Called every poll: a connected watch silent about an entry the reads found for SILENT_MS goes to another member. */
  check(): void {
    const u = this.unreported;
    if (u === null || !this.connected) return;
    const ms = performance.now() - u.since;
    if (ms < SILENT_MS) return;
    // not checked for long: the node led meanwhile (it reads the log once at a takeover and
    // follows no watch); not a sign of this watch's health
    if (ms > 10 * SILENT_MS) {
      this.unreported = null;
      return;
    }
    this.unreported = null;
    this.silent++;
    this.lost(this.gen, this.member, `silent: it did not report a log entry at revision ${u.rev} that a read found ${Math.round(ms)} ms ago`, false);
  }

  status(): LogWatchStatus {
    return { member: this.member >= 0 && this.watcher ? this.hosts.endpoint(this.member) : null, connected: this.connected, restarts: this.restarts, canceled: this.canceled, silent: this.silent, reported: this.puts };
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.drop();
  }

  /** A watch on the member first in order other than `avoid`, from `fromRev`. */
  private open(avoid: number, onConnected?: () => void): void {
    if (this.closed) return;
    const gen = ++this.gen;
    const i = this.hosts.pick(avoid);
    this.member = i;
    this.connected = false;
    this.unreported = null;
    let b = this.hosts.client(i).watch().prefix(this.prefix);
    const from = this.fromRev;
    // a watch from `from` reports every change from there on; one from now, everything after its start (below)
    this.reported = from !== null ? from - 1n : 0n;
    if (from !== null) b = b.startRevision(String(from));
    const w = b.watcher();
    this.watcher = w;
    const connectTimer = setTimeout(() => {
      if (gen === this.gen && !this.connected) this.lost(gen, i, `no answer within ${CONNECT_MS} ms`, false);
    }, CONNECT_MS);
    w.on('connected', (res: { header: { revision: string } }) => {
      clearTimeout(connectTimer);
      if (gen !== this.gen) return;
      this.connected = true;
      // from now: what came before its start is not reported (the read below covers it)
      if (from === null) this.reported = BigInt(res.header.revision);
      this.failures = 0;
      if (this.lostAt > 0) {
        this.logger.info(
          { event: 'LogWatchRestored', member: this.hosts.endpoint(i), fromRevision: from === null ? null : String(from), downMs: Math.round(performance.now() - this.lostAt) },
          `etcd watch on the log re-created on ${this.hosts.endpoint(i)}`,
        );
        this.lostAt = 0;
      }
      onConnected?.();
      // whatever was appended while no watch was in place (or before a watch from now)
      this.wake();
    });
    w.on('put', () => {
      if (gen !== this.gen) return;
      this.puts++;
      this.wake();
    });
    w.on('data', (res: { header: { revision: string } }) => {
      if (gen !== this.gen) return;
      // every event wakes a fetch, which reads the log at a later revision: a watch
      // re-created after this one may start past it
      this.readAt(res.header.revision);
      const r = BigInt(res.header.revision);
      if (r > this.reported) this.reported = r;
      if (this.unreported !== null && this.unreported.rev <= r) this.unreported = null;
    });
    // the stream broke: the client would retry the same member forever
    w.on('disconnected', (err: Error) => {
      clearTimeout(connectTimer);
      this.lost(gen, i, err.message, false);
    });
    // canceled by etcd (its start revision was compacted): the client drops it for good
    w.on('error', (err: Error) => {
      clearTimeout(connectTimer);
      this.lost(gen, i, err.message, true);
    });
  }

  private lost(gen: number, member: number, why: string, canceled: boolean): void {
    if (gen !== this.gen || this.closed) return;
    // a watch etcd canceled is already gone from its client (and a cancel of it now would
    // be written to a stream the client may be closing)
    this.drop(!canceled);
    this.restarts++;
    if (canceled) {
      this.canceled++;
      // the revisions after fromRev are gone from etcd's history: watch from now, and
      // read the log (once connected) for what was appended in between
      this.fromRev = null;
    }
    if (this.lostAt === 0) this.lostAt = performance.now();
    this.logger.warn(
      { event: 'LogWatchLost', member: this.hosts.endpoint(member), why, canceled },
      `etcd watch on the log ended (${why}); re-creating it${canceled ? ' from the current revision' : ' on another member'}`,
    );
    this.wake();
    const delay = retryDelay(this.failures++);
    // on another member: its client's watch stream may still be closing after a cancel
    this.timer = setTimeout(() => {
      this.timer = null;
      this.open(member);
    }, delay);
    this.timer.unref();
  }

  private drop(cancel = true): void {
    const w = this.watcher;
    this.watcher = null;
    this.connected = false;
    this.gen++;
    // not awaited: on a stopped member a cancel may never be answered
    if (w && cancel) void w.cancel().catch(() => {});
  }
}
