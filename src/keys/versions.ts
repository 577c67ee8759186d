// Versions a client gives the server (read versions, a feed's fromVersion), checked the
// same way at every front door: the binary protocol, the HTTP API and the change feeds.
// Browser-safe.
import { TxnError } from '../errors.js';

/** The largest version the wire and the API carry (int64). */
export const MAX_VERSION = (1n << 63n) - 1n;

/**
 * Versions inside the server are JavaScript numbers: microsecond clock readings
 * (~1.8e15 today), exact up to 2^53 (year ~2255). No server has committed past it.
 */
export const MAX_SERVER_VERSION = Number.MAX_SAFE_INTEGER;

/**
 * A client's version as the server's number. Not a version at all (negative, past
 * int64): INVALID_ARGUMENT. A valid int64 past 2^53 is a version ahead of the server, so
 * it is answered as every version ahead is (spec "Read versions"; FoundationDB's
 * future_version): FUTURE_VERSION, retryable, at once (no commit can bring the server
 * there to wait for). It was INVALID_ARGUMENT, which a retry loop gives up on.
 */
export function clientVersion(v: bigint, what: string): number {
  if (v < 0n || v > MAX_VERSION) throw new TxnError('INVALID_ARGUMENT', `${what} ${v} is out of range (a version is 0 to 2^63-1)`);
  if (v > BigInt(MAX_SERVER_VERSION)) {
    throw new TxnError('FUTURE_VERSION', `${what} ${v} is ahead of the server (versions are microsecond clock readings, below 2^53 until the year 2255)`);
  }
  return Number(v);
}

/** A version written as a decimal string (HTTP API), as clientVersion; INVALID_ARGUMENT when not digits. */
export function decimalVersion(s: unknown, what: string): number {
  if (typeof s !== 'string' || !/^\d+$/.test(s)) {
    throw new TxnError('INVALID_ARGUMENT', `${what} must be a version as a decimal string (e.g. "1795637081925202"), got ${JSON.stringify(s)}`);
  }
  // past 20 digits it is past int64 anyway: not worth a BigInt of any length
  if (s.length > 20) throw new TxnError('INVALID_ARGUMENT', `${what} ${s.length > 40 ? `${s.slice(0, 40)}...` : s} is out of range (a version is 0 to 2^63-1)`);
  return clientVersion(BigInt(s), what);
}
