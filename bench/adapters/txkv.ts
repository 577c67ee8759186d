// txkv adapter: drives the server through the TypeScript SDK (the package entry), as an
// application would. One Database (its own connection pool) per generator process, shared by
// the client loops; the SDK coalesces the requests of one tick into one frame. Conflicts and
// other errors are the SDK's TxnError codes, passed through unchanged.

import { connect } from '../../src/index.js';
import type { Adapter, AdapterSpec, BenchSession, BenchTxn, KV, OpenOptions, RangePage, TxnShape } from '../adapter.js';

type TxkvSpec = Extract<AdapterSpec, { system: 'txkv' }>;
type Database = Awaited<ReturnType<typeof connect>>;
type ReadTransaction = ReturnType<Database['createReadOnlyTransaction']>;
type Transaction = ReturnType<Database['createTransaction']>;

const LOAD_BATCH = 500;
const LOAD_CONCURRENCY = 4;

function rangeOf(tx: ReadTransaction, begin: Uint8Array, end: Uint8Array, limit: number): Promise<RangePage> {
  return tx.getRange({ key: begin, inclusive: true }, { key: end, inclusive: false }, { limit });
}

/** The SDK transaction behind a workload's calls; writes are refused on a read-only one. */
class SdkTxn implements BenchTxn {
  constructor(
    private readonly tx: ReadTransaction,
    private readonly writable: Transaction | null,
  ) {}
  get(key: Uint8Array): Promise<Uint8Array | null> {
    return this.tx.get(key);
  }
  snapshotGet(key: Uint8Array): Promise<Uint8Array | null> {
    return this.tx.snapshotGet(key);
  }
  getRange(begin: Uint8Array, end: Uint8Array, limit: number): Promise<RangePage> {
    return rangeOf(this.tx, begin, end, limit);
  }
  private rw(): Transaction {
    if (!this.writable) throw new Error('txkv adapter: write in a read-only transaction (workload bug)');
    return this.writable;
  }
  set(key: Uint8Array, value: Uint8Array): void {
    this.rw().set(key, value);
  }
  clear(key: Uint8Array): void {
    this.rw().clear(key);
  }
}

class TxkvSession implements BenchSession {
  constructor(private readonly db: Database) {}

  async attempt<T>(shape: TxnShape, fn: (tx: BenchTxn) => Promise<T>): Promise<T> {
    if (shape.kind === 'ro') {
      return fn(new SdkTxn(this.db.createReadOnlyTransaction(), null));
    }
    const tx = this.db.createTransaction();
    const result = await fn(new SdkTxn(tx, tx));
    await tx.commit();
    return result;
  }

  async close(): Promise<void> {}
}

export class TxkvAdapter implements Adapter {
  readonly system: string;
  readonly durability: string;
  private db: Database | undefined;

  constructor(private readonly spec: TxkvSpec) {
    this.system = spec.label ?? 'txkv';
    this.durability =
      spec.durability === 'buffered'
        ? 'buffered (no fsync: NOT durable)'
        : (spec.endpoints?.length ?? 1) > 1
          ? 'etcd log, fsync on a majority of 3 members per batch'
          : 'fsync per commit batch (default)';
  }

  async open(_opts: OpenOptions): Promise<void> {
    this.db = await connect({
      endpoints: this.spec.endpoints ?? [this.spec.endpoint],
      ...(this.spec.connectionPoolSize !== undefined ? { connectionPoolSize: this.spec.connectionPoolSize } : {}),
    });
  }

  private get d(): Database {
    if (!this.db) throw new Error('txkv adapter: not open');
    return this.db;
  }

  async session(_clientId: number): Promise<BenchSession> {
    return new TxkvSession(this.d);
  }

  async load(kvs: Iterable<KV>, onProgress?: (rows: number) => void): Promise<void> {
    let batch: KV[] = [];
    let rows = 0;
    const inflight = new Set<Promise<void>>();
    const flush = async (): Promise<void> => {
      const rowsOf = batch;
      batch = [];
      const p = this.d.transact(async (tx) => {
        for (const kv of rowsOf) tx.set(kv.key, kv.value);
      });
      inflight.add(p);
      void p
        .finally(() => inflight.delete(p))
        .then(() => {
          rows += rowsOf.length;
          onProgress?.(rows);
        })
        .catch(() => undefined);
      if (inflight.size >= LOAD_CONCURRENCY) await Promise.race(inflight);
    };
    for (const kv of kvs) {
      batch.push(kv);
      if (batch.length >= LOAD_BATCH) await flush();
    }
    if (batch.length > 0) await flush();
    await Promise.all(inflight);
  }

  async close(): Promise<void> {
    await this.db?.close();
    this.db = undefined;
  }
}
