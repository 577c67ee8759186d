// etcd 3.4 adapter (etcd3 npm client, gRPC). Optimistic transactions in etcd's own idiom:
// reads of one transaction go at one revision (the first read's), point reads of one tick
// are one txn of ranges, and the commit is one txn whose compares check that every key read
// still has the mod revision it was read at (a range read: no key in it modified since).
// A failed compare is a CONFLICT. Blind writes are one txn of puts. Durability: etcd fsyncs
// its WAL before acknowledging every write (raft, one member).

import { Etcd3, type ICompare, type IRequestOp } from 'etcd3';
import { BenchError, type Adapter, type AdapterSpec, type BenchSession, type BenchTxn, type KV, type OpenOptions, type RangePage, type TxnShape } from '../adapter.js';
import { asBuffer, TickBatcher, WriteSet } from '../tick-batcher.js';

type EtcdSpec = Extract<AdapterSpec, { system: 'etcd' }>;

/** etcd's default --max-txn-ops is 128. */
const LOAD_BATCH = 100;

class EtcdTxn implements BenchTxn {
  private readRevision: string | undefined;
  private readonly compares: ICompare[] = [];
  readonly writes = new WriteSet();
  private readonly reads: TickBatcher<Buffer, { value: Buffer | null; modRevision: string }>;

  constructor(private readonly client: Etcd3, private readonly shape: TxnShape) {
    this.reads = new TickBatcher((keys) => this.readBatch(keys));
  }

  private async readBatch(keys: Buffer[]): Promise<{ value: Buffer | null; modRevision: string }[]> {
    const revision = this.readRevision;
    if (keys.length === 1) {
      const res = await this.client.kv.range({ key: keys[0], revision });
      this.readRevision ??= res.header.revision;
      const kv = res.kvs[0];
      return [{ value: kv ? kv.value : null, modRevision: kv ? kv.mod_revision : '0' }];
    }
    const res = await this.client.kv.txn({ success: keys.map((key) => ({ request_range: { key, revision } })) });
    this.readRevision ??= res.header.revision;
    return res.responses.map((r) => {
      const kv = r.response_range.kvs[0];
      return { value: kv ? kv.value : null, modRevision: kv ? kv.mod_revision : '0' };
    });
  }

  private async read(key: Uint8Array, conflict: boolean): Promise<Uint8Array | null> {
    const own = this.writes.lookup(key);
    if (own !== undefined) return own;
    const k = asBuffer(key);
    const r = await this.reads.request(k);
    if (conflict && this.shape.kind === 'rw') {
      this.compares.push({ key: k, target: 'Mod', result: 'Equal', mod_revision: r.modRevision });
    }
    return r.value;
  }

  get(key: Uint8Array): Promise<Uint8Array | null> {
    return this.read(key, true);
  }

  snapshotGet(key: Uint8Array): Promise<Uint8Array | null> {
    return this.read(key, false);
  }

  async getRange(begin: Uint8Array, end: Uint8Array, limit: number): Promise<RangePage> {
    const res = await this.client.kv.range({ key: asBuffer(begin), range_end: asBuffer(end), limit, revision: this.readRevision });
    this.readRevision ??= res.header.revision;
    const kvs: KV[] = res.kvs.map((kv) => ({ key: kv.key, value: kv.value }));
    const last = kvs[kvs.length - 1];
    if (this.shape.kind === 'rw') {
      // No key in what was read may have been modified after the read revision.
      const conflictEnd = res.more && last ? Buffer.concat([last.key, Buffer.from([0])]) : asBuffer(end);
      this.compares.push({
        key: asBuffer(begin),
        range_end: conflictEnd,
        target: 'Mod',
        result: 'Less',
        mod_revision: String(BigInt(this.readRevision ?? '0') + 1n),
      });
    }
    return { kvs, hasMore: res.more };
  }

  set(key: Uint8Array, value: Uint8Array): void {
    this.writes.set(key, value);
  }

  clear(key: Uint8Array): void {
    this.writes.clear(key);
  }

  async commit(): Promise<void> {
    if (this.writes.size === 0) return;
    const success: IRequestOp[] = this.writes
      .sorted()
      .map((w) => (w.value === null ? { request_delete_range: { key: asBuffer(w.key) } } : { request_put: { key: asBuffer(w.key), value: asBuffer(w.value) } }));
    const res = await this.client.kv.txn({ compare: this.compares, success });
    if (!res.succeeded) throw new BenchError('CONFLICT', true, 'etcd: a key read by the transaction was modified after its read revision');
  }
}

class EtcdSession implements BenchSession {
  constructor(private readonly client: Etcd3) {}

  async attempt<T>(shape: TxnShape, fn: (tx: BenchTxn) => Promise<T>): Promise<T> {
    const tx = new EtcdTxn(this.client, shape);
    const result = await fn(tx);
    await tx.commit();
    return result;
  }

  async close(): Promise<void> {}
}

export class EtcdAdapter implements Adapter {
  readonly system = 'etcd';
  readonly durability = 'WAL fsync per commit (1 member)';
  private client: Etcd3 | undefined;

  constructor(private readonly spec: EtcdSpec) {}

  async open(_opts: OpenOptions): Promise<void> {
    this.client = new Etcd3({ hosts: this.spec.url });
    await this.client.kv.range({ key: Buffer.from('probe') });
  }

  private get c(): Etcd3 {
    if (!this.client) throw new Error('etcd adapter: not open');
    return this.client;
  }

  async session(_clientId: number): Promise<BenchSession> {
    return new EtcdSession(this.c);
  }

  async load(kvs: Iterable<KV>, onProgress?: (rows: number) => void): Promise<void> {
    let batch: IRequestOp[] = [];
    let rows = 0;
    const inflight = new Set<Promise<unknown>>();
    const flush = async (): Promise<void> => {
      const ops = batch;
      batch = [];
      const p = this.c.kv.txn({ success: ops });
      inflight.add(p);
      void p.finally(() => inflight.delete(p)).catch(() => undefined);
      if (inflight.size >= 8) await Promise.race(inflight);
    };
    for (const kv of kvs) {
      batch.push({ request_put: { key: asBuffer(kv.key), value: asBuffer(kv.value) } });
      if (batch.length >= LOAD_BATCH) {
        await flush();
        rows += LOAD_BATCH;
        onProgress?.(rows);
      }
    }
    if (batch.length > 0) await flush();
    await Promise.all(inflight);
  }

  async close(): Promise<void> {
    this.client?.close();
    this.client = undefined;
  }
}
