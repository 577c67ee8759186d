// The contract between workloads, the load generator and the systems under test.
// Workloads see only BenchTxn; each adapter maps it onto one system's best transactional
// path (txkv SDK, etcd txn, Redis MULTI/WATCH, PostgreSQL SERIALIZABLE). No I/O here.

export interface KV {
  key: Uint8Array;
  value: Uint8Array;
}

export interface RangePage {
  kvs: KV[];
  hasMore: boolean;
}

/**
 * One attempt of one transaction, as a workload sees it. Reads issued in the same tick
 * (e.g. `Promise.all(keys.map((k) => tx.get(k)))`) are sent together where the system allows.
 */
export interface BenchTxn {
  /** Read with a read conflict (serializable). */
  get(key: Uint8Array): Promise<Uint8Array | null>;
  /** Read at the transaction's snapshot, no read conflict. */
  snapshotGet(key: Uint8Array): Promise<Uint8Array | null>;
  /** Forward range read of [begin, end), at most `limit` rows, with a read conflict on what it returned. */
  getRange(begin: Uint8Array, end: Uint8Array, limit: number): Promise<RangePage>;
  set(key: Uint8Array, value: Uint8Array): void;
  clear(key: Uint8Array): void;
}

/**
 * What a transaction will do, so that an adapter can pick its cheapest correct form:
 * - `ro`: reads only. `oneShot` = all its reads are issued in the first tick (r10, range):
 *   systems without multi-statement snapshots may then send one atomic statement (MGET, one SELECT).
 * - `wo`: blind writes only (w1, w10): one request, never conflicts.
 * - `rw`: reads then writes, serializable: conflicts are detected and reported as CONFLICT.
 */
export interface TxnShape {
  kind: 'ro' | 'wo' | 'rw';
  oneShot?: boolean;
}

/** An error an adapter raises; `code` uses the txkv spec's codes where one fits. */
export class BenchError extends Error {
  constructor(
    readonly code: string,
    readonly retryable: boolean,
    message: string,
    opts?: ErrorOptions,
  ) {
    super(message, opts);
    this.name = 'BenchError';
  }
}

/** The codes whose transactions the generator retries (txkv's retryable codes). */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  'CONFLICT',
  'TOO_OLD',
  'FUTURE_VERSION',
  'THROTTLED',
  'RESOURCE_CONSTRAINED',
]);

/** Code and retryability of anything thrown inside a transaction attempt. */
export function classifyError(err: unknown): { code: string; retryable: boolean; message: string } {
  if (err instanceof BenchError) return { code: err.code, retryable: err.retryable, message: err.message };
  const e = err as { code?: unknown; retryable?: unknown; message?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (e && typeof e.code === 'string' && typeof e.retryable === 'boolean') {
    // TxnError from the txkv SDK (duck-typed so this module needs no SDK import).
    return { code: e.code, retryable: e.retryable, message };
  }
  return { code: 'FAILED', retryable: false, message };
}

/** One client loop's connection (Redis WATCH and PostgreSQL transactions are per connection). */
export interface BenchSession {
  /** Runs one attempt of `fn` and commits; throws BenchError (or TxnError) on failure. */
  attempt<T>(shape: TxnShape, fn: (tx: BenchTxn) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** The workload reads ranges: adapters without ordered keys (Redis) maintain an ordered index. */
  ordered: boolean;
  /**
   * Range reads of the workload stay within keys that share this many leading bytes (flat: 1,
   * meta: 12 = "DENT" + parent id). Redis detects range conflicts per such group.
   */
  rangeGroupBytes?: number;
}

export interface Adapter {
  readonly system: string;
  /** How commits are made durable, in words, for the report. */
  readonly durability: string;
  open(opts: OpenOptions): Promise<void>;
  session(clientId: number): Promise<BenchSession>;
  /** Bulk preload (not timed as part of a workload); replaces any existing value. */
  load(kvs: Iterable<KV>, onProgress?: (rows: number) => void): Promise<void>;
  close(): Promise<void>;
}

/** Serializable description of how to reach a system: crosses process boundaries (fork). */
export type AdapterSpec =
  | {
      system: 'txkv';
      endpoint: string;
      /** Every node of a cluster (the client lists them all); default [endpoint]. */
      endpoints?: string[];
      /** The system's name in reports when not plain `txkv` (`txkv-cluster`, `txkv@<rev>`). */
      label?: string;
      connectionPoolSize?: number;
      durability?: string;
    }
  | { system: 'etcd'; url: string }
  | { system: 'redis'; host: string; port: number }
  | { system: 'postgres'; host: string; port: number; user: string; database: string };
