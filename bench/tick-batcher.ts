// Coalesces the point reads that one transaction issues in the same tick into one request
// (etcd txn of ranges, Redis MGET, one PostgreSQL SELECT ... = ANY), as the txkv SDK puts
// one tick's requests in one frame. Used by the peer adapters; runs on the client's thread.

interface Waiter<V> {
  resolve: (v: V) => void;
  reject: (e: unknown) => void;
}

export class TickBatcher<K, V> {
  private keys: K[] = [];
  private waiters: Waiter<V>[] = [];

  constructor(private readonly flushBatch: (keys: K[]) => Promise<V[]>) {}

  request(key: K): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      this.keys.push(key);
      this.waiters.push({ resolve, reject });
      if (this.keys.length === 1) queueMicrotask(() => this.flush());
    });
  }

  private flush(): void {
    const keys = this.keys;
    const waiters = this.waiters;
    this.keys = [];
    this.waiters = [];
    this.flushBatch(keys).then(
      (values) => {
        for (let i = 0; i < waiters.length; i++) (waiters[i] as Waiter<V>).resolve(values[i] as V);
      },
      (err: unknown) => {
        for (const w of waiters) w.reject(err);
      },
    );
  }
}

/** Hex string of a key, for maps keyed by bytes. */
export function hexKey(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex');
}

/** A Buffer view of bytes (no copy). */
export function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Buffered writes of one attempt, collapsed per key (last write wins), as the txkv SDK does.
 * Peer adapters use it for read-your-writes on point reads and to send writes at commit.
 */
export class WriteSet {
  readonly byKey = new Map<string, { key: Uint8Array; value: Uint8Array | null }>();

  set(key: Uint8Array, value: Uint8Array): void {
    this.byKey.set(hexKey(key), { key, value });
  }

  clear(key: Uint8Array): void {
    this.byKey.set(hexKey(key), { key, value: null });
  }

  /** undefined = not written here; null = cleared here. */
  lookup(key: Uint8Array): Uint8Array | null | undefined {
    const w = this.byKey.get(hexKey(key));
    return w === undefined ? undefined : w.value;
  }

  get size(): number {
    return this.byKey.size;
  }

  /** Writes in key order (sorted so that row locks are taken in one order: no deadlocks). */
  sorted(): { key: Uint8Array; value: Uint8Array | null }[] {
    return [...this.byKey.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((e) => e[1]);
  }
}
