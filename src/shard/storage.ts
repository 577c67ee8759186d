// A shard's view of the one RocksDB database: its own column family for data, and
// the default column for its applied-version watermark and the decision records it
// is asked to write. Worker thread only; every call is synchronous on purpose: the
// worker owns its column, does nothing else, and a synchronous read sees exactly the
// state left by the last applied batch (no read/write interleaving to reason about).
import { RocksLevel, type Column, type ChainedBatch } from '@nxtedition/rocksdb';
import { columnName } from './interface.js';

export class ShardStorage {
  private constructor(
    private readonly db: RocksLevel,
    private readonly column: Column,
    readonly shardId: number,
  ) {}

  /** Attaches to the database the main thread opened (same process, shared handle). */
  static async attach(dbHandle: bigint, shardId: number): Promise<ShardStorage> {
    const db = new RocksLevel(dbHandle);
    await db.open();
    const column = db.columns[columnName(shardId)];
    if (!column) throw new Error(`column family ${columnName(shardId)} is missing from the database`);
    return new ShardStorage(db, column, shardId);
  }

  getMany(keys: Uint8Array[]): (Buffer | undefined)[] {
    return this.db._getManySync(keys, { column: this.column });
  }

  /**
   * Rows of [begin, end) in key order (or reverse), fetched in chunks; call
   * `next()` for each chunk and `close()` when done.
   */
  scan(begin: Uint8Array, end: Uint8Array, reverse: boolean): RangeScan {
    const it = this.db.iterator({
      column: this.column,
      gte: begin,
      lt: end,
      reverse,
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
    });
    return new RangeScan(it);
  }

  batch(): ShardBatch {
    return new ShardBatch(this.db.batch(), this.column);
  }

  estimate(): { keys: number; bytes: number } {
    // getProperty reads the default column; per-column estimates need the column API,
    // which this binding does not expose, so status reports database-wide figures.
    const keys = Number(this.db.getProperty('rocksdb.estimate-num-keys')) || 0;
    const bytes = Number(this.db.getProperty('rocksdb.estimate-live-data-size')) || 0;
    return { keys, bytes };
  }
}

export class RangeScan {
  private done = false;
  constructor(private readonly it: ReturnType<RocksLevel['iterator']>) {}

  /** Up to `n` rows as a flat [k0, v0, k1, v1, ...] list; an empty list means the end. */
  next(n: number): Buffer[] {
    if (this.done) return [];
    const { rows, finished } = this.it._nextvSync(n);
    if (finished) this.done = true;
    return rows;
  }

  get finished(): boolean {
    return this.done;
  }

  close(): void {
    // The public close(), not _closeSync(): abstract-level registers every iterator
    // with the database and only close() unregisters it; an iterator left registered
    // stays referenced (with its native snapshot) until the database closes, so the
    // worker's memory would grow with every range read. close() frees the native
    // iterator at once and unregisters it on the next tick.
    void this.it.close();
  }
}

export class ShardBatch {
  constructor(
    private readonly b: ChainedBatch,
    private readonly column: Column,
  ) {}
  put(key: Uint8Array, value: Uint8Array): void {
    this.b._put(key, value, { column: this.column });
  }
  del(key: Uint8Array): void {
    this.b._del(key, { column: this.column });
  }
  /** Internal metadata (watermarks, decision records) lives in the default column. */
  putMeta(key: Uint8Array, value: Uint8Array): void {
    this.b._put(key, value);
  }
  delMeta(key: Uint8Array): void {
    this.b._del(key);
  }
  /**
   * Writes atomically; with sync the WAL is fsync'd before this returns. The batch
   * is released afterwards (also when the write fails) and cannot be used again.
   */
  write(sync: boolean): void {
    try {
      this.b._writeSync({ sync });
    } finally {
      this.close();
    }
  }
  /**
   * Releases the batch. Through the public close(): the database registers every
   * batch and only close() unregisters it, so a batch finished with _writeSync alone
   * stays referenced, its keys and values included, until the database closes (the
   * leak of issue 17: server memory grew with every byte committed). close() clears
   * the native batch at once and unregisters it on the next tick; it takes no keys,
   * so it does not touch the bytes (unlike the public put/del).
   */
  close(): void {
    void this.b.close();
  }
}
