// Admission control of the gateway: bounds on connections, requests in flight per
// connection, and the bytes of requests being processed across all connections.
// Pure accounting (no uWS), so it is unit-tested directly. When a bound is hit the
// request is answered THROTTLED (this connection is too busy) or
// RESOURCE_CONSTRAINED (the server's memory budget is spent), both retryable,
// instead of the server growing without bound.
import type { LimitsConfig } from '../config/server-config.js';

/** Reply bytes reserved per point read of a frame before values are known (16 KiB; at least a range page for the frame). */
export const GET_REPLY_SHARE = 16 * 1024;

export type Refusal = null | { code: 'THROTTLED' | 'RESOURCE_CONSTRAINED'; message: string };

/** Slots of the shared counters (gateway threads, gateway-threads.ts): one BigInt64 each. */
const BUFFERED = 0;
const PEAK = 1;
const REFUSED = 2;
export const ADMISSION_SHARED_BYTES = 3 * 8;

/**
 * The server-wide counters live in a SharedArrayBuffer when gateway threads run: every
 * thread admits and releases bytes against one budget with atomic adds. A check and the
 * add that follows it are not one step across threads, so the budget can be overshot by
 * at most one grant per thread at the same instant (bounded; never unbounded growth).
 */
export class Admission {
  connections = 0;
  private local = { buffered: 0, peak: 0, refused: 0 };
  private readonly shared: BigInt64Array | null;

  /** `shared`: ADMISSION_SHARED_BYTES of a SharedArrayBuffer that every gateway thread passes (zeroed). */
  constructor(
    private readonly limits: LimitsConfig,
    shared?: SharedArrayBuffer,
  ) {
    this.shared = shared ? new BigInt64Array(shared, 0, 3) : null;
  }

  get bufferedBytes(): number {
    return this.shared ? Number(Atomics.load(this.shared, BUFFERED)) : this.local.buffered;
  }

  get peakBufferedBytes(): number {
    return this.shared ? Number(Atomics.load(this.shared, PEAK)) : this.local.peak;
  }

  get refused(): number {
    return this.shared ? Number(Atomics.load(this.shared, REFUSED)) : this.local.refused;
  }

  private refuse(): void {
    if (this.shared) Atomics.add(this.shared, REFUSED, 1n);
    else this.local.refused++;
  }

  /** Adds `n` (may be negative) to the bytes held; keeps the peak. */
  private add(n: number): void {
    if (n === 0) return;
    if (!this.shared) {
      this.local.buffered += n;
      if (this.local.buffered > this.local.peak) this.local.peak = this.local.buffered;
      return;
    }
    const now = Atomics.add(this.shared, BUFFERED, BigInt(n)) + BigInt(n);
    if (n < 0) return;
    for (;;) {
      const peak = Atomics.load(this.shared, PEAK);
      if (now <= peak || Atomics.compareExchange(this.shared, PEAK, peak, now) === peak) return;
    }
  }

  admitConnection(): boolean {
    if (this.connections >= this.limits.maxConnections) return false;
    this.connections++;
    return true;
  }

  releaseConnection(): void {
    this.connections--;
  }

  /** Whether another request may start on a connection with `inflight` requests and `backpressure` bytes unsent. */
  admitRequest(inflight: number, backpressure: number): Refusal {
    if (inflight >= this.limits.maxInflightPerConnection) {
      this.refuse();
      return { code: 'THROTTLED', message: `connection has ${inflight} requests in flight; limit ${this.limits.maxInflightPerConnection}` };
    }
    if (backpressure > this.limits.maxBackpressureBytes / 2) {
      this.refuse();
      return { code: 'THROTTLED', message: `connection is not reading its replies (${backpressure} bytes waiting)` };
    }
    return null;
  }

  /** Whether a frame of `bytes` fits the budget; if so the bytes are held until release(). */
  admitBytes(bytes: number): Refusal {
    if (this.bufferedBytes + bytes > this.limits.maxBufferedBytes) {
      this.refuse();
      return {
        code: 'RESOURCE_CONSTRAINED',
        message: `server holds ${this.bufferedBytes} request and unsent reply bytes; budget ${this.limits.maxBufferedBytes}`,
      };
    }
    this.add(bytes);
    return null;
  }

  release(bytes: number): void {
    this.add(-bytes);
  }

  /**
   * Reply bytes, bounded like request bytes: up to `want` bytes for replies of a
   * connection that already holds `connHeld` unsent reply bytes and `backpressure`
   * bytes uWS could not send yet. The grant comes out of the same server budget as
   * request bytes (maxBufferedBytes); a connection gets at most half its
   * backpressure limit. 0 = nothing fits: refuse with replyRefusal().
   */
  grantReply(want: number, connHeld: number, backpressure: number): number {
    const perConn = this.limits.maxBackpressureBytes / 2 - connHeld - backpressure;
    const server = this.limits.maxBufferedBytes - this.bufferedBytes;
    const grant = Math.floor(Math.min(want, perConn, server));
    if (grant <= 0) {
      this.refuse();
      return 0;
    }
    this.add(grant);
    return grant;
  }

  /** A grant turned out to need `actual` bytes: give back the rest (or take the overshoot of a first row). */
  settleReply(grant: number, actual: number): void {
    this.add(actual - grant);
  }

  /** Reply bytes uWS holds unsent for a slow reader: `delta` more (or fewer, when negative) in the budget. */
  holdUnsent(delta: number): void {
    this.add(delta);
  }

  replyRefusal(connHeld: number, backpressure: number): NonNullable<Refusal> {
    return {
      code: 'RESOURCE_CONSTRAINED',
      message:
        `reply memory budget spent: this connection holds ${connHeld + backpressure} unsent reply bytes (limit ${this.limits.maxBackpressureBytes / 2}), ` +
        `the server ${this.bufferedBytes} request and reply bytes (budget ${this.limits.maxBufferedBytes})`,
    };
  }
}
