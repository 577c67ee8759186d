// The part of @nxtedition/rocksdb that txkv uses (the package ships no types).
// Its synchronous calls (_getManySync, _nextvSync, _writeSync) run RocksDB inline on
// the calling thread; txkv calls them only from shard workers and at start-up.
declare module '@nxtedition/rocksdb' {
  export type Column = object & { readonly __column: unique symbol };
  export interface ColumnOption {
    column?: Column;
  }
  export interface RocksIterator {
    _nextvSync(size: number, options?: object): { rows: Buffer[]; finished: boolean };
    /** Moves to the first key >= target (<= in reverse), within the iterator's bounds. */
    _seekSync(target: Uint8Array): void;
    _closeSync(): void;
    /** Frees the native iterator and unregisters it from the database (_closeSync does only the first). */
    close(): Promise<void>;
  }
  export interface ChainedBatch {
    // the underscore forms take bytes as they are; put/del would run abstract-level's
    // default utf8 key encoding over them and mangle every byte >= 0x80
    _put(key: Uint8Array, value: Uint8Array, options?: ColumnOption): void;
    _del(key: Uint8Array, options?: ColumnOption): void;
    _writeSync(options?: { sync?: boolean }): void;
    close(): Promise<void>;
    readonly length: number;
  }
  export class RocksLevel {
    constructor(locationOrHandle: string | bigint, options?: object);
    open(options?: { columns?: Record<string, object>; createIfMissing?: boolean } & Record<string, unknown>): Promise<void>;
    close(): Promise<void>;
    readonly status: string;
    readonly handle: bigint;
    readonly columns: Record<string, Column>;
    batch(): ChainedBatch;
    _getManySync(keys: Uint8Array[], options?: ColumnOption & { valueEncoding?: string }): (Buffer | undefined)[];
    iterator(options: ColumnOption & {
      gte?: Uint8Array;
      gt?: Uint8Array;
      lt?: Uint8Array;
      lte?: Uint8Array;
      reverse?: boolean;
      limit?: number;
      keys?: boolean;
      values?: boolean;
      keyEncoding?: string;
      valueEncoding?: string;
      /** A nextv chunk ends after the row that takes its key+value bytes past this (int32). */
      highWaterMarkBytes?: number;
    }): RocksIterator;
    /** abstract-level's key iterator (tests read a column's keys with it; the server uses iterator()). */
    keys(options: ColumnOption & { gte?: string | Uint8Array; gt?: string | Uint8Array; lt?: string | Uint8Array; lte?: string | Uint8Array }): AsyncIterable<unknown>;
    getProperty(property: string): string;
    /** Without `limit`: RocksDB DeleteRange, run synchronously; the callback is deferred to the next tick. */
    _clear(options: ColumnOption & { gte: Uint8Array; lt: Uint8Array }, callback: (err: Error | null) => void): void;
  }
}
