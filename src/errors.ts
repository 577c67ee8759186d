// The one error class of txkv and the table of its codes. Browser-safe: no node: imports.
// Codes are the spec's strings (API and wire); the table only grows, nothing is renamed.

export const CODES = {
  CONFLICT: { retryable: true, threeFs: 'kConflict', meaning: 'read set overwritten since the read version' },
  TOO_OLD: { retryable: true, threeFs: 'kTooOld', meaning: 'read version fell out of the MVCC window' },
  FUTURE_VERSION: { retryable: true, threeFs: 'kFutureVersion', meaning: 'read version ahead of the server' },
  THROTTLED: { retryable: true, threeFs: 'kThrottled', meaning: 'server shedding load' },
  RESOURCE_CONSTRAINED: { retryable: true, threeFs: 'kResourceConstrained', meaning: 'server memory or queue bound hit' },
  MAYBE_COMMITTED: { retryable: false, threeFs: 'kMaybeCommitted', meaning: 'connection lost during commit' },
  NETWORK_ERROR: { retryable: false, threeFs: 'kNetworkError', meaning: 'cannot reach the server' },
  CANCELED: { retryable: false, threeFs: 'kCanceled', meaning: 'transaction canceled' },
  TIMEOUT: { retryable: false, threeFs: 'kFailed', meaning: 'transaction exceeded its timeout' },
  READ_ONLY: { retryable: false, threeFs: 'kFailed', meaning: 'server is read-only' },
  INVALID_ARGUMENT: { retryable: false, threeFs: 'kFailed', meaning: 'bad call' },
  KEY_TOO_LARGE: { retryable: false, threeFs: 'kFailed', meaning: 'key over 10,000 bytes' },
  VALUE_TOO_LARGE: { retryable: false, threeFs: 'kFailed', meaning: 'value over 100,000 bytes' },
  TRANSACTION_TOO_LARGE: { retryable: false, threeFs: 'kFailed', meaning: 'transaction over 10,000,000 bytes' },
  UNAUTHORIZED: { retryable: false, threeFs: 'kFailed', meaning: 'missing or wrong token' },
  PROTOCOL_ERROR: { retryable: false, threeFs: 'kFailed', meaning: 'malformed frame or unknown message' },
  FAILED: { retryable: false, threeFs: 'kFailed', meaning: 'anything else' },
  // second revision: a node that cannot serve right now (a cluster election, a server draining for shutdown);
  // retryable, so transact() tries again and the SDK moves to another endpoint
  UNAVAILABLE: { retryable: true, threeFs: 'kThrottled', meaning: 'no leader right now, or the server is shutting down' },
} as const;

export type TxnErrorCode = keyof typeof CODES;

export function isErrorCode(code: string): code is TxnErrorCode {
  return Object.prototype.hasOwnProperty.call(CODES, code);
}

/** An error as data, the form it takes across threads and on the wire. */
export interface WireError {
  code: TxnErrorCode;
  message: string;
}

/** The one error class: `code` is a stable string from {@link CODES}, `retryable` follows from it. */
export class TxnError extends Error {
  readonly code: TxnErrorCode;
  readonly retryable: boolean;
  constructor(code: TxnErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TxnError';
    this.code = code;
    this.retryable = CODES[code].retryable;
  }

  toWire(): WireError {
    return { code: this.code, message: this.message };
  }

  /** Rebuilds an error received as data; an unknown code becomes FAILED and keeps its text. */
  static fromWire(e: { code: string; message: string }): TxnError {
    if (isErrorCode(e.code)) return new TxnError(e.code, e.message);
    return new TxnError('FAILED', `${e.code}: ${e.message}`);
  }
}

/** Any thrown value as wire data: TxnErrors keep their code, anything else is FAILED. */
export function toWireError(err: unknown): WireError {
  if (err instanceof TxnError) return err.toWire();
  if (err && typeof err === 'object' && 'code' in err && 'message' in err && typeof err.code === 'string' && isErrorCode(err.code)) {
    return { code: err.code, message: String(err.message) };
  }
  return { code: 'FAILED', message: err instanceof Error ? err.message : String(err) };
}
