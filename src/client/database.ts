// The client's Database: a connection pool, transactions, and the transact() retry loop.
import { TxnError } from '../errors.js';
import { describeArg } from '../keys/bytes.js';
import { ConnectionPool } from './pool.js';
import { retryDelayMs, shouldRetry, type RetryPolicy } from './retry.js';
import { MAX_VERSION } from '../keys/versions.js';
import { TxnImpl, type ReadTransaction, type Transaction } from './transaction.js';
import { FeedIterator, type ChangeFeedVersion, type SubscribeOptions, type Watch } from './live.js';
import { compareKeys, toBytes, type Bytes } from '../keys/bytes.js';
import { checkKeySize } from '../keys/limits.js';

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
  /**
   * Resolves once `key`'s value differs from its value now (a transaction that only
   * watches). Rejects CANCELED after cancel(), NETWORK_ERROR when the connection drops
   * (then re-read and watch again).
   */
  watch(key: Bytes): Watch;
  /**
   * Every committed change of [begin, end), in version order, each version once, after
   * `fromVersion` (default: now). Sets, clears and clearRanges (clipped to the range);
   * atomic and versionstamped writes appear as the set or clear they made. fromVersion
   * older than the server keeps (its MVCC window, 5 s by default): TOO_OLD. Breaking out
   * of the loop ends the subscription. A consumer that stops reading holds the server
   * to its window; one that falls further behind than limits.maxFeedBufferBytes is
   * ended with RESOURCE_CONSTRAINED.
   */
  subscribe(begin: Bytes, end: Bytes, opts?: SubscribeOptions): AsyncIterable<ChangeFeedVersion>;
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
    if (typeof fn !== 'function') throw new TxnError('INVALID_ARGUMENT', `transact() needs a function (tx) => Promise, got ${describeArg(fn)}`);
    if (options === null || typeof options !== 'object') throw new TxnError('INVALID_ARGUMENT', `transact() options must be an object, got ${describeArg(options)}`);
    if (options.maxRetryCount !== undefined) checkCount(options.maxRetryCount, 'maxRetryCount', 0);
    const maxRetries = options.maxRetryCount ?? this.maxRetryCount;
    const tx = this.createTransaction();
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await fn(tx);
        await tx.commit();
        return result;
      } catch (err) {
        if (attempt >= maxRetries || !shouldRetry(err, options)) throw err;
        await new Promise((r) => setTimeout(r, retryDelayMs(err, attempt)));
        tx.reset();
      }
    }
  }

  watch(key: Bytes): Watch {
    const tx = this.createTransaction();
    const w = tx.watch(key);
    tx.commit().catch(() => {}); // a failed commit rejects the watch itself
    return w;
  }

  subscribe(begin: Bytes, end: Bytes, opts: SubscribeOptions = {}): AsyncIterable<ChangeFeedVersion> {
    const b = toBytes(begin);
    const e = toBytes(end);
    checkKeySize(b, 'subscribe begin');
    checkKeySize(e, 'subscribe end');
    if (compareKeys(b, e) > 0) throw new TxnError('INVALID_ARGUMENT', 'subscribe: begin is after end');
    if (opts === null || typeof opts !== 'object') throw new TxnError('INVALID_ARGUMENT', `subscribe options must be an object { fromVersion? }, got ${describeArg(opts)}`);
    const from = opts.fromVersion ?? 0n;
    if (typeof from !== 'bigint' || from < 0n) throw new TxnError('INVALID_ARGUMENT', `fromVersion must be a non-negative bigint, got ${String(from)}`);
    // int64 on the wire: 2^64 wrapped to 0, which means "now", and the feed silently
    // started now instead of failing (setReadVersion checks the same)
    if (from > MAX_VERSION) throw new TxnError('INVALID_ARGUMENT', `fromVersion ${from} is out of range (at most 2^63-1)`);
    // 0 means "now" on the wire; an explicit fromVersion 0n asks for every change ever
    // made, which no server keeps (versions start near the clock's microseconds), so it
    // fails TOO_OLD like any version older than the window instead of silently starting now
    if (opts.fromVersion === 0n) {
      const tooOld = new TxnError('TOO_OLD', 'fromVersion 0 is older than any change the server keeps (its MVCC window); omit fromVersion to start now');
      return { [Symbol.asyncIterator]: () => new FeedIterator(() => Promise.reject(tooOld), b, e, from) };
    }
    return { [Symbol.asyncIterator]: () => new FeedIterator(() => this.pool.get(), b, e, from) };
  }

  async close(): Promise<void> {
    this.pool.close();
  }
}

function checkCount(n: unknown, what: string, min: number, max = Infinity): void {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new TxnError('INVALID_ARGUMENT', `${what} must be an integer ${max === Infinity ? `>= ${min}` : `from ${min} to ${max}`}, got ${describeArg(n)}`);
  }
}

/**
 * The most WebSockets one Database opens. Each is a socket and a handshake at connect();
 * 1e9 made connect() build a billion slots and never return, and thousands would take a
 * server's connection limit for one client. A few carry any one process's load (the
 * default is 2; the CLI's import uses up to 8).
 */
export const MAX_CONNECTION_POOL_SIZE = 64;

/** Every option of connect() checked, so a mistake fails INVALID_ARGUMENT naming it instead of as a network error later. */
function checkConnectOptions(options: ConnectOptions): void {
  if (!options || typeof options !== 'object') throw new TxnError('INVALID_ARGUMENT', `connect() needs an options object { endpoints: string[] }, got ${describeArg(options)}`);
  const { endpoints } = options;
  if (!Array.isArray(endpoints) || endpoints.length === 0) {
    throw new TxnError('INVALID_ARGUMENT', `connect() needs endpoints: a non-empty array of URLs such as 'ws://127.0.0.1:7070', got ${describeArg(endpoints)}`);
  }
  for (const e of endpoints) {
    if (typeof e !== 'string') throw new TxnError('INVALID_ARGUMENT', `every endpoint must be a string URL, got ${describeArg(e)}`);
    let url: URL | null = null;
    try {
      url = new URL(e);
    } catch {
      // reported below
    }
    // a ws:// URL that does not parse is most often a bad port: say that, not "not a ws:// URL"
    const port = /^wss?:\/\/(?:\[[^\]]*\]|[^/:?#]*):(\d+)(?:[/?#]|$)/i.exec(e)?.[1];
    if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
      throw new TxnError('INVALID_ARGUMENT', `endpoint ${JSON.stringify(e)}: port ${port} is out of range (1 to 65535)`);
    }
    if (!url || (url.protocol !== 'ws:' && url.protocol !== 'wss:') || url.hostname === '') {
      throw new TxnError('INVALID_ARGUMENT', `endpoint ${JSON.stringify(e)} is not a ws:// or wss:// URL; write it as ws://${e.replace(/^[a-z]+:\/\//i, '')}`);
    }
  }
  if (options.token !== undefined && typeof options.token !== 'string') throw new TxnError('INVALID_ARGUMENT', `token must be a string, got ${describeArg(options.token)}`);
  if (options.transactionTimeoutMs !== undefined) checkCount(options.transactionTimeoutMs, 'transactionTimeoutMs', 0);
  if (options.maxRetryCount !== undefined) checkCount(options.maxRetryCount, 'maxRetryCount', 0);
  if (options.connectionPoolSize !== undefined) checkCount(options.connectionPoolSize, 'connectionPoolSize', 1, MAX_CONNECTION_POOL_SIZE);
  if (options.ca !== undefined && typeof options.ca !== 'string' && !(options.ca instanceof Uint8Array)) {
    throw new TxnError('INVALID_ARGUMENT', `ca must be a PEM string or bytes, got ${describeArg(options.ca)}`);
  }
  if (options.caFile !== undefined && typeof options.caFile !== 'string') throw new TxnError('INVALID_ARGUMENT', `caFile must be a path string, got ${describeArg(options.caFile)}`);
}

/**
 * Connects to a txkv server (or several endpoints of one). Rejects INVALID_ARGUMENT for
 * a bad option (naming it), NETWORK_ERROR when no endpoint answers.
 */
export async function connect(options: ConnectOptions): Promise<Database> {
  checkConnectOptions(options);
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
