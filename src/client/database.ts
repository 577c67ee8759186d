// The client's Database: a connection pool, transactions, and the transact() retry loop.
import { TxnError } from '../errors.js';
import { ConnectionPool } from './pool.js';
import { backoffMs, shouldRetry, type RetryPolicy } from './retry.js';
import { TxnImpl, type ReadTransaction, type Transaction } from './transaction.js';

export interface ConnectOptions {
  /** Server URLs, e.g. ['ws://127.0.0.1:7070']. */
  endpoints: string[];
  /** Auth token, when the server requires one. */
  token?: string;
  /** A transaction older than this fails its next call with TIMEOUT (default 10000). */
  transactionTimeoutMs?: number;
  /** Retries of transact() on retryable errors (default 10). */
  maxRetryCount?: number;
  /** WebSockets per Database (default 2). */
  connectionPoolSize?: number;
  /** For wss:// with a private CA: the CA certificate (PEM), or a file holding it (Node only). */
  ca?: string | Uint8Array;
  caFile?: string;
}

export interface TransactOptions extends RetryPolicy {
  /** Overrides ConnectOptions.maxRetryCount for this call. */
  maxRetryCount?: number;
}

export interface Database {
  createTransaction(): Transaction;
  createReadOnlyTransaction(): ReadTransaction;
  /**
   * Runs fn, commits, and on a retryable TxnError resets the transaction and runs
   * again (up to maxRetryCount retries, with backoff). MAYBE_COMMITTED is retried
   * only with { allowMaybeCommitted: true }. Returns fn's result.
   */
  transact<T>(fn: (tx: Transaction) => Promise<T>, options?: TransactOptions): Promise<T>;
  close(): Promise<void>;
}

class DatabaseImpl implements Database {
  constructor(
    private readonly pool: ConnectionPool,
    private readonly timeoutMs: number,
    private readonly maxRetryCount: number,
  ) {}

  createTransaction(): Transaction {
    return new TxnImpl(this.pool, this.timeoutMs, false);
  }

  createReadOnlyTransaction(): ReadTransaction {
    return new TxnImpl(this.pool, this.timeoutMs, true);
  }

  async transact<T>(fn: (tx: Transaction) => Promise<T>, options: TransactOptions = {}): Promise<T> {
    const maxRetries = options.maxRetryCount ?? this.maxRetryCount;
    const tx = this.createTransaction();
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await fn(tx);
        await tx.commit();
        return result;
      } catch (err) {
        if (attempt >= maxRetries || !shouldRetry(err, options)) throw err;
        await new Promise((r) => setTimeout(r, backoffMs(attempt)));
        tx.reset();
      }
    }
  }

  async close(): Promise<void> {
    this.pool.close();
  }
}

/** Connects to a txkv server (or several endpoints of one). Rejects NETWORK_ERROR when none answers. */
export async function connect(options: ConnectOptions): Promise<Database> {
  if (!options || !Array.isArray(options.endpoints)) throw new TxnError('INVALID_ARGUMENT', 'connect() needs { endpoints: string[] }');
  const timeoutMs = options.transactionTimeoutMs ?? 10_000;
  let ca = options.ca;
  if (options.caFile) {
    const fs = await import('node:fs');
    try {
      ca = fs.readFileSync(options.caFile);
    } catch (err) {
      throw new TxnError('INVALID_ARGUMENT', `caFile ${options.caFile} cannot be read: ${(err as Error).message}`);
    }
  }
  const pool = new ConnectionPool(options.endpoints, options.token, options.connectionPoolSize ?? 2, Math.min(Math.max(timeoutMs, 1000), 10_000), { ca });
  await pool.start();
  return new DatabaseImpl(pool, timeoutMs, options.maxRetryCount ?? 10);
}
