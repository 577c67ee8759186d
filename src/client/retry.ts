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
