// PostgreSQL 15 adapter (pg), one connection per client loop. Table kv(k bytea primary key,
// v bytea). Read-write transactions: BEGIN ISOLATION LEVEL SERIALIZABLE, reads (one SELECT per
// tick, k = ANY), writes at commit in one statement (upsert + delete), COMMIT; SQLSTATE 40001
// (serialization failure) and 40P01 (deadlock) are CONFLICT. Multi-step read-only
// transactions: SERIALIZABLE READ ONLY. One-shot read-only and blind-write transactions are
// a single statement, which PostgreSQL runs as its own transaction (default isolation set to
// serializable for the session). Durability: synchronous_commit=on, fsync=on (WAL flush per commit).

import pg from 'pg';
import { BenchError, type Adapter, type AdapterSpec, type BenchSession, type BenchTxn, type KV, type OpenOptions, type RangePage, type TxnShape } from '../adapter.js';
import { asBuffer, hexKey, TickBatcher, WriteSet } from '../tick-batcher.js';

type PgSpec = Extract<AdapterSpec, { system: 'postgres' }>;

const LOAD_BATCH = 1000;

const SQL = {
  create: 'CREATE TABLE IF NOT EXISTS kv (k bytea PRIMARY KEY, v bytea NOT NULL)',
  getMany: { name: 'kv_get_many', text: 'SELECT k, v FROM kv WHERE k = ANY($1::bytea[])' },
  getOne: { name: 'kv_get_one', text: 'SELECT v FROM kv WHERE k = $1' },
  range: { name: 'kv_range', text: 'SELECT k, v FROM kv WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3' },
  write: {
    name: 'kv_write',
    text:
      'WITH d AS (DELETE FROM kv WHERE k = ANY($3::bytea[])) ' +
      'INSERT INTO kv (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v',
  },
};

function mapPgError(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === '40001' || code === '40P01') {
    return new BenchError('CONFLICT', true, `postgres: ${(err as Error).message} (${code})`, { cause: err });
  }
  return err;
}

class PgTxn implements BenchTxn {
  readonly writes = new WriteSet();
  private begun = false;
  private readonly reads: TickBatcher<Buffer, Buffer | null>;

  constructor(private readonly c: pg.Client, private readonly shape: TxnShape) {
    this.reads = new TickBatcher((keys) => this.readBatch(keys));
  }

  /** Opens the SQL transaction before the first statement, unless the shape runs as one statement. */
  private async begin(): Promise<void> {
    if (this.begun || this.shape.kind === 'wo' || (this.shape.kind === 'ro' && this.shape.oneShot === true)) return;
    this.begun = true;
    await this.c.query(this.shape.kind === 'ro' ? 'BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY' : 'BEGIN ISOLATION LEVEL SERIALIZABLE');
  }

  private async readBatch(keys: Buffer[]): Promise<(Buffer | null)[]> {
    await this.begin();
    if (keys.length === 1) {
      const res = await this.c.query<{ v: Buffer }>({ ...SQL.getOne, values: [keys[0]] });
      return [res.rows[0]?.v ?? null];
    }
    const res = await this.c.query<{ k: Buffer; v: Buffer }>({ ...SQL.getMany, values: [keys] });
    const byKey = new Map<string, Buffer>();
    for (const row of res.rows) byKey.set(hexKey(row.k), row.v);
    return keys.map((k) => byKey.get(hexKey(k)) ?? null);
  }

  async get(key: Uint8Array): Promise<Uint8Array | null> {
    const own = this.writes.lookup(key);
    if (own !== undefined) return own;
    return this.reads.request(asBuffer(key));
  }

  snapshotGet(key: Uint8Array): Promise<Uint8Array | null> {
    // SERIALIZABLE tracks every read; PostgreSQL has no per-read opt-out.
    return this.get(key);
  }

  async getRange(begin: Uint8Array, end: Uint8Array, limit: number): Promise<RangePage> {
    await this.begin();
    const res = await this.c.query<{ k: Buffer; v: Buffer }>({ ...SQL.range, values: [asBuffer(begin), asBuffer(end), limit + 1] });
    const kvs: KV[] = res.rows.slice(0, limit).map((r) => ({ key: r.k, value: r.v }));
    return { kvs, hasMore: res.rows.length > limit };
  }

  set(key: Uint8Array, value: Uint8Array): void {
    this.writes.set(key, value);
  }

  clear(key: Uint8Array): void {
    this.writes.clear(key);
  }

  async commit(): Promise<void> {
    if (this.writes.size > 0) {
      const setKeys: Buffer[] = [];
      const setValues: Buffer[] = [];
      const clearKeys: Buffer[] = [];
      for (const w of this.writes.sorted()) {
        if (w.value === null) clearKeys.push(asBuffer(w.key));
        else {
          setKeys.push(asBuffer(w.key));
          setValues.push(asBuffer(w.value));
        }
      }
      await this.c.query({ ...SQL.write, values: [setKeys, setValues, clearKeys] });
    }
    if (this.begun) {
      this.begun = false;
      await this.c.query('COMMIT');
    }
  }

  async abort(): Promise<void> {
    if (this.begun) {
      this.begun = false;
      await this.c.query('ROLLBACK');
    }
  }
}

class PgSession implements BenchSession {
  constructor(private readonly c: pg.Client) {}

  async attempt<T>(shape: TxnShape, fn: (tx: BenchTxn) => Promise<T>): Promise<T> {
    const tx = new PgTxn(this.c, shape);
    try {
      const result = await fn(tx);
      await tx.commit();
      return result;
    } catch (err) {
      await tx.abort().catch(() => undefined);
      throw mapPgError(err);
    }
  }

  async close(): Promise<void> {
    await this.c.end();
  }
}

export class PostgresAdapter implements Adapter {
  readonly system = 'postgres';
  readonly durability = 'SERIALIZABLE, synchronous_commit=on, fsync=on';
  private admin: pg.Client | undefined;

  constructor(private readonly spec: PgSpec) {}

  private async newClient(): Promise<pg.Client> {
    const c = new pg.Client({ host: this.spec.host, port: this.spec.port, user: this.spec.user, database: this.spec.database });
    await c.connect();
    await c.query("SET synchronous_commit = on; SET default_transaction_isolation = 'serializable'");
    return c;
  }

  async open(_opts: OpenOptions): Promise<void> {
    this.admin = await this.newClient();
    await this.admin.query(SQL.create);
  }

  async session(_clientId: number): Promise<BenchSession> {
    return new PgSession(await this.newClient());
  }

  async load(kvs: Iterable<KV>, onProgress?: (rows: number) => void): Promise<void> {
    const c = this.admin;
    if (!c) throw new Error('postgres adapter: not open');
    let keys: Buffer[] = [];
    let values: Buffer[] = [];
    let rows = 0;
    const flush = async (): Promise<void> => {
      await c.query({ ...SQL.write, values: [keys, values, []] });
      rows += keys.length;
      keys = [];
      values = [];
      onProgress?.(rows);
    };
    for (const kv of kvs) {
      keys.push(asBuffer(kv.key));
      values.push(asBuffer(kv.value));
      if (keys.length >= LOAD_BATCH) await flush();
    }
    if (keys.length > 0) await flush();
    await c.query('VACUUM ANALYZE kv');
  }

  async close(): Promise<void> {
    await this.admin?.end();
    this.admin = undefined;
  }
}
