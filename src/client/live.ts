// Watches and change feeds on the client (browser-safe). A watch is one WatchRequest
// answered once; a feed is one SubscribeRequest answered with many ChangeBatches,
// acknowledged as the consumer takes them, so a consumer that stops reading stops the
// server from sending (docs/protocol.md, "Watches and change feeds").
import { TxnError } from '../errors.js';
import type { ReplyBody } from '../protocol/codec.js';
import type { Connection } from './connection.js';

/** Resolves once the key's value differs from the value its transaction saw. */
export interface Watch extends PromiseLike<void> {
  /** Rejects the watch with CANCELED and drops it on the server. */
  cancel(): void;
}

/** UNAVAILABLE answers in a row after which a watch gives up re-arming (about 10 s of backoff). */
const WATCH_REARM_LIMIT = 15;

export class WatchImpl implements Watch {
  private readonly promise: Promise<void>;
  private resolveFn!: () => void;
  private rejectFn!: (e: unknown) => void;
  private settled = false;
  private conn: Connection | null = null;
  private requestId = 0;

  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
    // a watch nobody awaits must not become an unhandled rejection when its connection drops
    this.promise.catch(() => {});
  }

  then<A = void, B = never>(onfulfilled?: ((value: void) => A | PromiseLike<A>) | null, onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.promise.then(onfulfilled, onrejected);
  }

  get done(): boolean {
    return this.settled;
  }

  /**
   * Sends the WatchRequest: the key's value was { present: value !== null, value }.
   * A retryable UNAVAILABLE (the server ends the watches of a key range that the balancer
   * or an operator moved to another shard worker) re-arms it with the same value, so the
   * watch still fires exactly when the value differs, also if it changed meanwhile; after
   * WATCH_REARM_LIMIT such answers in a row the watch rejects with the last one.
   */
  arm(conn: Connection, key: Uint8Array, value: Uint8Array | null, rearms = 0): void {
    if (this.settled) return;
    this.conn = conn;
    this.requestId = conn.stream(
      { type: 'watch', key, present: value !== null, value: value ?? new Uint8Array(0) },
      () => {
        conn.forget(this.requestId);
        this.settle(null);
      },
      (e) => {
        if (e instanceof TxnError && e.code === 'UNAVAILABLE' && rearms < WATCH_REARM_LIMIT && !this.settled) {
          setTimeout(() => this.arm(conn, key, value, rearms + 1), Math.min(1000, 20 * 2 ** rearms));
        } else this.settle(e);
      },
    );
  }

  fail(err: unknown): void {
    this.settle(err);
  }

  /** Resolves without asking the server (the watched value could not be established). */
  wake(): void {
    this.settle(null);
  }

  cancel(): void {
    if (this.settled) return;
    this.settle(new TxnError('CANCELED', 'watch canceled'));
    if (this.conn && this.requestId) {
      this.conn.forget(this.requestId);
      this.conn.post({ type: 'cancel', targetRequestId: this.requestId });
    }
  }

  private settle(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    if (err === null) this.resolveFn();
    else this.rejectFn(err);
  }
}

/** One committed version of a change feed. */
export interface ChangeFeedVersion {
  version: bigint;
  mutations: { type: 'set' | 'clear' | 'clearRange'; key: Uint8Array; value?: Uint8Array; end?: Uint8Array }[];
}

export interface SubscribeOptions {
  /** Changes after this version (default: now). Older than the server keeps (its MVCC window): TOO_OLD. */
  fromVersion?: bigint;
}

/** Bytes of changes the server may send before the consumer has taken them. */
const FEED_WINDOW_BYTES = 1024 * 1024;

/**
 * The async iterator of one subscription. Holds at most the window's worth of changes;
 * acknowledges each batch once the consumer has taken its last version.
 */
export class FeedIterator implements AsyncIterator<ChangeFeedVersion> {
  private readonly queue: { v: ChangeFeedVersion; ackBytes: number }[] = [];
  private waiter: { resolve: (r: IteratorResult<ChangeFeedVersion>) => void; reject: (e: unknown) => void } | null = null;
  private error: unknown = null;
  private finished = false;
  private conn: Connection | null = null;
  private requestId = 0;
  private readonly started: Promise<void>;

  constructor(connect: () => Promise<Connection>, begin: Uint8Array, end: Uint8Array, fromVersion: bigint) {
    this.started = connect().then(
      (conn) => {
        if (this.finished) return;
        this.conn = conn;
        this.requestId = conn.stream(
          { type: 'subscribe', begin, end, fromVersion, windowBytes: FEED_WINDOW_BYTES },
          (r) => this.onBatch(r),
          (e) => this.onError(e),
        );
      },
      (e: unknown) => this.onError(e),
    );
  }

  private onBatch(r: ReplyBody): void {
    if (r.type !== 'changes' || this.finished) return;
    r.versions.forEach((v, i) => {
      const item: ChangeFeedVersion = {
        version: v.version,
        mutations: v.mutations.map((m) =>
          m.type === 0 ? { type: 'set', key: m.key, value: m.param } : m.type === 1 ? { type: 'clear', key: m.key } : { type: 'clearRange', key: m.key, end: m.param },
        ),
      };
      // the batch is acknowledged when its last version is taken
      this.push({ v: item, ackBytes: i === r.versions.length - 1 ? r.bytes : 0 });
    });
  }

  private push(x: { v: ChangeFeedVersion; ackBytes: number }): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      this.ack(x.ackBytes);
      w.resolve({ value: x.v, done: false });
    } else this.queue.push(x);
  }

  private onError(e: unknown): void {
    if (this.finished) return;
    this.error = e;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      this.finished = true;
      w.reject(e);
    }
  }

  private ack(bytes: number): void {
    if (bytes > 0 && this.conn && !this.finished) this.conn.post({ type: 'subscribeAck', subscribeRequestId: this.requestId, bytes });
  }

  async next(): Promise<IteratorResult<ChangeFeedVersion>> {
    const x = this.queue.shift();
    if (x) {
      this.ack(x.ackBytes);
      return { value: x.v, done: false };
    }
    if (this.error !== null) {
      this.finished = true;
      const e = this.error;
      this.error = null;
      throw e;
    }
    if (this.finished) return { value: undefined, done: true };
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Breaking out of the loop: the subscription ends on the server too. */
  async return(): Promise<IteratorResult<ChangeFeedVersion>> {
    if (!this.finished) {
      this.finished = true;
      await this.started.catch(() => {});
      if (this.conn && this.requestId) {
        this.conn.forget(this.requestId);
        this.conn.post({ type: 'cancel', targetRequestId: this.requestId });
      }
      this.queue.length = 0;
      if (this.waiter) {
        this.waiter.resolve({ value: undefined, done: true });
        this.waiter = null;
      }
    }
    return { value: undefined, done: true };
  }
}
