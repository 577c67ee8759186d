// Admission control of the gateway: bounds on connections, requests in flight per
// connection, and the bytes of requests being processed across all connections.
// Pure accounting (no uWS), so it is unit-tested directly. When a bound is hit the
// request is answered THROTTLED (this connection is too busy) or
// RESOURCE_CONSTRAINED (the server's memory budget is spent), both retryable,
// instead of the server growing without bound.
import type { LimitsConfig } from '../config/server-config.js';

export type Refusal = null | { code: 'THROTTLED' | 'RESOURCE_CONSTRAINED'; message: string };

export class Admission {
  connections = 0;
  bufferedBytes = 0;
  peakBufferedBytes = 0;
  refused = 0;

  constructor(private readonly limits: LimitsConfig) {}

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
      this.refused++;
      return { code: 'THROTTLED', message: `connection has ${inflight} requests in flight; limit ${this.limits.maxInflightPerConnection}` };
    }
    if (backpressure > this.limits.maxBackpressureBytes / 2) {
      this.refused++;
      return { code: 'THROTTLED', message: `connection is not reading its replies (${backpressure} bytes waiting)` };
    }
    return null;
  }

  /** Whether a frame of `bytes` fits the budget; if so the bytes are held until release(). */
  admitBytes(bytes: number): Refusal {
    if (this.bufferedBytes + bytes > this.limits.maxBufferedBytes) {
      this.refused++;
      return {
        code: 'RESOURCE_CONSTRAINED',
        message: `server is processing ${this.bufferedBytes} request bytes; budget ${this.limits.maxBufferedBytes}`,
      };
    }
    this.bufferedBytes += bytes;
    if (this.bufferedBytes > this.peakBufferedBytes) this.peakBufferedBytes = this.bufferedBytes;
    return null;
  }

  release(bytes: number): void {
    this.bufferedBytes -= bytes;
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
      this.refused++;
      return 0;
    }
    this.bufferedBytes += grant;
    if (this.bufferedBytes > this.peakBufferedBytes) this.peakBufferedBytes = this.bufferedBytes;
    return grant;
  }

  /** A grant turned out to need `actual` bytes: give back the rest (or take the overshoot of a first row). */
  settleReply(grant: number, actual: number): void {
    this.bufferedBytes += actual - grant;
    if (this.bufferedBytes > this.peakBufferedBytes) this.peakBufferedBytes = this.bufferedBytes;
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
