// A shard's view of the one RocksDB database: its own column family for data, and
// the default column for its applied-version watermark and the decision records it
// is asked to write. Worker thread only; every call is synchronous on purpose: the
// worker owns its column, does nothing else, and a synchronous read sees exactly the
// state left by the last applied batch (no read/write interleaving to reason about).
import { RocksLevel, type Column, type ChainedBatch } from '@nxtedition/rocksdb';
import { columnName, unpackBytes, type PackedBytes } from './interface.js';

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
   * `next()` for each chunk and `close()` when done. `chunkBytes`: a chunk ends after the
   * row that takes its key and value bytes past this (at least one row per chunk).
   * Without it a chunk is only bounded in rows: a range page of 1 MB read its whole
   * chunk of up to 1,000 rows (each row a copy, garbage once the page is cut), e.g.
   * 9.9 MB for a page of 100 KB values.
   */
  scan(begin: Uint8Array, end: Uint8Array, reverse: boolean, chunkBytes = Infinity): RangeScan {
    const it = this.db.iterator({
      column: this.column,
      gte: begin,
      lt: end,
      reverse,
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
      // the binding reads it as an int32 (a non-finite number would become 0: one row per chunk)
      ...(Number.isFinite(chunkBytes) ? { highWaterMarkBytes: Math.max(1, Math.min(Math.floor(chunkBytes), 0x7fff_ffff)) } : {}),
    });
    return new RangeScan(it);
  }

  /** Writes `ops` on this thread (see writeOps); with sync the WAL is fsync'd before this returns. */
  write(ops: WriteOps, sync: boolean): void {
    writeOps(this.db, [{ column: this.column, kinds: ops.kinds, parts: ops.parts }], sync);
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

  /** Continues from the first row at or after `key` (before it, in reverse). */
  seek(key: Uint8Array): void {
    this.done = false;
    this.it._seekSync(key);
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

/** Kinds of one write operation (WriteOps). */
export const enum OpKind {
  Put = 0,
  Del = 1,
  /** Internal metadata (watermarks, decision records) in the default column. */
  PutMeta = 2,
  DelMeta = 3,
  /**
   * RocksDB DeleteRange of [key, param) in the data column: O(1) whatever the number of
   * rows (measured: 0.3 ms for 1,000,000 rows). The binding has it only outside a batch,
   * so it splits the write: ops before it are written first, ops after it next; callers
   * order their ops so that a crash between the parts is recoverable (tombstone records).
   */
  DeleteRange = 4,
}

/**
 * The operations of one atomic write, recorded on the shard thread and applied
 * either there (buffered durability) or by the log writer thread (fsync durability),
 * so the shard thread never waits in RocksDB's write queue behind an fsync.
 */
export class WriteOps {
  readonly kinds: number[] = [];
  /**
   * The parts (key, then value or end key, of each op) copied one after the other into one
   * buffer as they are added, their lengths in `lens`: the shard's apply adds a written
   * key straight from the request's buffer (putAt) without a view of it, and the trip to
   * the log writer copies this buffer whole (log-wire.ts) instead of each part.
   */
  private data: Uint8Array;
  private size = 0;
  readonly lens: number[] = [];
  /** `bytes`: room for this many bytes of keys and values at first (it grows by doubling). */
  constructor(bytes = 256) {
    this.data = new Uint8Array(bytes);
  }
  put(key: Uint8Array, value: Uint8Array): void {
    this.kinds.push(OpKind.Put);
    this.part(key, 0, key.length);
    this.part(value, 0, value.length);
  }
  /** put() of the key of `len` bytes of `src` at `at`. */
  putAt(src: Uint8Array, at: number, len: number, value: Uint8Array): void {
    this.kinds.push(OpKind.Put);
    this.part(src, at, len);
    this.part(value, 0, value.length);
  }
  del(key: Uint8Array): void {
    this.kinds.push(OpKind.Del);
    this.part(key, 0, key.length);
    this.lens.push(0);
  }
  /** del() of the key of `len` bytes of `src` at `at`. */
  delAt(src: Uint8Array, at: number, len: number): void {
    this.kinds.push(OpKind.Del);
    this.part(src, at, len);
    this.lens.push(0);
  }
  putMeta(key: Uint8Array, value: Uint8Array): void {
    this.kinds.push(OpKind.PutMeta);
    this.part(key, 0, key.length);
    this.part(value, 0, value.length);
  }
  delMeta(key: Uint8Array): void {
    this.kinds.push(OpKind.DelMeta);
    this.part(key, 0, key.length);
    this.lens.push(0);
  }
  deleteRange(begin: Uint8Array, end: Uint8Array): void {
    this.kinds.push(OpKind.DeleteRange);
    this.part(begin, 0, begin.length);
    this.part(end, 0, end.length);
  }
  private part(src: Uint8Array, at: number, len: number): void {
    let d = this.data;
    const o = this.size;
    if (o + len > d.length) {
      const grown = new Uint8Array(Math.max(2 * d.length, o + len));
      grown.set(d.subarray(0, o));
      this.data = d = grown;
    }
    // short parts (keys, small values) by hand: a view to set() from costs more than the copy
    if (len <= 64) for (let i = 0; i < len; i++) d[o + i] = src[at + i]!;
    else d.set(at === 0 && len === src.length ? src : src.subarray(at, at + len), o);
    this.size = o + len;
    this.lens.push(len);
  }
  get length(): number {
    return this.kinds.length;
  }
  /** The parts' bytes, one after the other (a view: valid until the next op is added). */
  get bytes(): Uint8Array {
    return this.data.subarray(0, this.size);
  }
  /** Each part as a view into `bytes` (the binding takes one array per key and value). */
  get parts(): Uint8Array[] {
    return unpackBytes({ data: this.data, lens: Int32Array.from(this.lens) }) as Uint8Array[];
  }
  /** Forgets the ops (worker.ts, once the log writer has its copy). */
  clear(): void {
    this.kinds.length = 0;
    this.lens.length = 0;
    this.size = 0;
    this.data = EMPTY;
  }
  /** One buffer for the trip to the log writer (structured clone copies one buffer). */
  pack(): PackedOps {
    return { kinds: Uint8Array.from(this.kinds), bytes: { data: this.data.slice(0, this.size), lens: Int32Array.from(this.lens) } };
  }
}

export interface PackedOps {
  kinds: Uint8Array;
  bytes: PackedBytes;
}

const EMPTY = new Uint8Array(0);

interface OpList {
  column: Column;
  kinds: ArrayLike<number>;
  parts: readonly (Uint8Array | null)[];
}

/**
 * Writes op lists in order: data ops to each list's column, meta ops to the default
 * column. Without DeleteRange ops this is one atomic RocksDB write; each DeleteRange
 * ends the current write and runs on its own (the binding has no batch-level range
 * delete). Only the last write asks for sync: an fsync covers every earlier WAL record.
 */
function writeOps(db: RocksLevel, lists: readonly OpList[], sync: boolean): void {
  let b = db.batch();
  try {
    for (const l of lists) {
      const { column, kinds, parts } = l;
      for (let i = 0; i < kinds.length; i++) {
        const k = parts[2 * i]!;
        switch (kinds[i]) {
          case OpKind.Put:
            b._put(k, parts[2 * i + 1]!, { column });
            break;
          case OpKind.Del:
            b._del(k, { column });
            break;
          case OpKind.PutMeta:
            b._put(k, parts[2 * i + 1]!);
            break;
          case OpKind.DelMeta:
            b._del(k);
            break;
          case OpKind.DeleteRange:
            if (b.length > 0) b._writeSync({ sync: false });
            release(b);
            b = db.batch();
            deleteRange(db, column, k, parts[2 * i + 1]!);
            break;
          default:
            throw new Error(`unknown write op kind ${kinds[i]}`);
        }
      }
    }
    b._writeSync({ sync });
  } finally {
    release(b);
  }
}

/** RocksDB DeleteRange (the binding's _clear without a limit runs it synchronously; only its callback is deferred). */
function deleteRange(db: RocksLevel, column: Column, begin: Uint8Array, end: Uint8Array): void {
  let failed: unknown = null;
  db._clear({ gte: begin, lt: end, column }, (err) => {
    if (err) failed = err;
  });
  // the binding delivers a failure on the next tick: fail then (uncaught in a worker:
  // the server stops, as for any failed write)
  process.nextTick(() => {
    if (failed) throw new Error(`DeleteRange failed: ${(failed as Error).message}`, { cause: failed });
  });
}

/** Writes one shard's ops from the main thread (recovery, before any shard worker runs). */
export function writeShardOps(db: RocksLevel, shardId: number, ops: WriteOps, sync: boolean): void {
  const column = db.columns[columnName(shardId)];
  if (!column) throw new Error(`column family ${columnName(shardId)} is missing from the database`);
  writeOps(db, [{ column, kinds: ops.kinds, parts: ops.parts }], sync);
}

/** The log writer's view of the database: packed ops of several shards written as one atomic write. */
export class GroupWriter {
  private constructor(private readonly db: RocksLevel) {}

  static async attach(dbHandle: bigint): Promise<GroupWriter> {
    const db = new RocksLevel(dbHandle);
    await db.open();
    return new GroupWriter(db);
  }

  column(shardId: number): Column {
    const c = this.db.columns[columnName(shardId)];
    if (!c) throw new Error(`column family ${columnName(shardId)} is missing from the database`);
    return c;
  }

  write(items: readonly { column: Column; ops: PackedOps }[], sync: boolean): void {
    writeOps(
      this.db,
      items.map((it) => ({ column: it.column, kinds: it.ops.kinds, parts: unpackBytes(it.ops.bytes) })),
      sync,
    );
  }
}

/**
 * Releases a batch through the public close(): the database registers every batch
 * and only close() unregisters it, so a batch finished with _writeSync alone stays
 * referenced, its keys and values included, until the database closes (issue 17's
 * leak). close() clears the native batch at once and unregisters it on the next tick.
 */
function release(b: ChainedBatch): void {
  void b.close();
}
