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
  private lostAt = 0;

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

  status(): LogWatchStatus {
    return { member: this.member >= 0 && this.watcher ? this.hosts.endpoint(this.member) : null, connected: this.connected, restarts: this.restarts, canceled: this.canceled };
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
    let b = this.hosts.client(i).watch().prefix(this.prefix);
    const from = this.fromRev;
    if (from !== null) b = b.startRevision(String(from));
    const w = b.watcher();
    this.watcher = w;
    const connectTimer = setTimeout(() => {
      if (gen === this.gen && !this.connected) this.lost(gen, i, `no answer within ${CONNECT_MS} ms`, false);
    }, CONNECT_MS);
    w.on('connected', () => {
      clearTimeout(connectTimer);
      if (gen !== this.gen) return;
      this.connected = true;
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
      if (gen === this.gen) this.wake();
    });
    w.on('data', (res: { header: { revision: string } }) => {
      // every event wakes a fetch, which reads the log at a later revision: a watch
      // re-created after this one may start past it
      if (gen === this.gen) this.readAt(res.header.revision);
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
