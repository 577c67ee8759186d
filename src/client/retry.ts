// The one place that decides whether a failed transaction is run again. Browser-safe.
import { TxnError } from '../errors.js';

export interface RetryPolicy {
  /** Retry MAYBE_COMMITTED too: only for transactions that are idempotent (see README, "Idempotency"). */
  allowMaybeCommitted?: boolean;
}

export function shouldRetry(err: unknown, policy: RetryPolicy = {}): boolean {
  if (!(err instanceof TxnError)) return false;
  if (err.code === 'MAYBE_COMMITTED') return policy.allowMaybeCommitted === true;
  return err.retryable;
}

/** Exponential backoff with full jitter: 0..min(maxMs, baseMs * 2^attempt). */
export function backoffMs(attempt: number, random: () => number = Math.random, baseMs = 5, maxMs = 1000): number {
  return Math.floor(random() * Math.min(maxMs, baseMs * 2 ** attempt));
}

/**
 * The wait before retry `attempt` (0-based) after `err`, in transact(). UNAVAILABLE (a
 * cluster whose leader is gone, a server shutting down) lasts as long as a leader election,
 * 2-2.5 s after a kill -9 of the leader, and replicas answer it at once: with the full jitter
 * from 5 ms the 10 retries of transact() were spent in ~1.6 s, and writers failed UNAVAILABLE
 * 1.7-2 s after the kill. For it, half of 50 ms doubling to 1 s is always waited, so 10
 * retries span at least 3.3 s (at most 6.6 s).
 */
export function retryDelayMs(err: unknown, attempt: number, random: () => number = Math.random): number {
  if (err instanceof TxnError && err.code === 'UNAVAILABLE') {
    const d = Math.min(1000, 50 * 2 ** attempt);
    return Math.floor(d / 2 + (random() * d) / 2);
  }
  return backoffMs(attempt, random);
}
