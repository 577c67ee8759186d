// hot path: reads. Main thread. Routes point and range reads to the shards that own
// the keys, and merges ranges that cross shard boundaries in key order.
import { TxnError } from '../errors.js';
import { RANGE_PAGE_MAX_BYTES, type KeyRange } from '../keys/ranges.js';
import type { ShardHandle } from './shard-handle.js';
import { packBytes, unpackBytes } from '../shard/interface.js';
import type { ShardMap } from './shard-map.js';
import type { TimestampOracle } from './timestamp-oracle.js';

export interface RangeResultRows {
  /** Flat [k0, v0, k1, v1, ...]. */
  kvs: Uint8Array[];
  hasMore: boolean;
}

/** How often a read refused as routed by a stale map is routed again (each time with the current map). */
const STALE_RETRIES = 5;

/** How long a read at a version that is assigned but not yet committed may wait. */
const FUTURE_WAIT_MS = 1000;

/** What reads need of the oracle: on the main thread the oracle itself; on a gateway thread a proxy (gateway/gateway-worker.ts). */
export type ReadClock = Pick<TimestampOracle, 'readableVersion' | 'waitFor' | 'readVersion'>;

/** What reads need of a shard: its handle on the main thread, a port of its own on a gateway thread. */
export type ShardReader = Pick<ShardHandle, 'request'>;

export class ReadRouter {
  constructor(
    private readonly oracle: ReadClock,
    private readonly shards: readonly ShardReader[],
    private readonly getShardMap: () => ShardMap,
  ) {}

  /** A read version newer than every commit acknowledged so far. */
  readVersion(): number {
    return this.oracle.readVersion();
  }

  private async checkVersion(readVersion: number): Promise<void> {
    if (readVersion <= this.oracle.readableVersion) return;
    // a version handed out as a commit version may still be in flight: wait briefly
    if (await this.oracle.waitFor(readVersion, FUTURE_WAIT_MS)) return;
    throw new TxnError('FUTURE_VERSION', `read version ${readVersion} is ahead of the server (latest committed ${this.oracle.readableVersion})`);
  }

  get(readVersion: number, key: Uint8Array): Promise<Uint8Array | null> {
    return this.getMany([readVersion], [key]).then(([r]) => {
      if (r instanceof TxnError) throw r;
      return r!;
    });
  }

  /**
   * Many point reads at once (the gets of one frame): one request per shard instead of
   * one per key. Each result is a value (null = absent) or the TxnError of that read.
   */
  getMany(readVersions: number[], keys: Uint8Array[], maxBytes = Infinity, attempt = 0): Promise<(Uint8Array | null | TxnError)[]> {
    const out: (Uint8Array | null | TxnError)[] = new Array(keys.length);
    const map = this.getShardMap();
    const byShard = new Map<number, number[]>();
    const slow: Promise<void>[] = [];
    for (let i = 0; i < keys.length; i++) {
      if (readVersions[i]! > this.oracle.readableVersion) {
        // rare: a version still in flight (or in the future) waits alone, then reads
        slow.push(
          this.checkVersion(readVersions[i]!)
            .then(() => this.getMany([readVersions[i]!], [keys[i]!], maxBytes))
            .then(([v]) => void (out[i] = v!), (e: TxnError) => void (out[i] = e)),
        );
        continue;
      }
      const shardId = map.shardOfKey(keys[i]!, readVersions[i]!);
      let idx = byShard.get(shardId);
      if (!idx) byShard.set(shardId, (idx = []));
      idx.push(i);
    }
    // the reply budget is shared out over the shards asked (each answers at least one value)
    const share = maxBytes === Infinity ? undefined : Math.floor(maxBytes / Math.max(1, byShard.size));
    const fast = [...byShard].map(([shardId, idx]) =>
      this.shards[shardId]!.request({ t: 'gets', readVersions: idx.map((i) => readVersions[i]!), keys: packBytes(idx.map((i) => keys[i]!)), maxBytes: share }).then(async (r) => {
        if ('error' in r && r.staleMap !== undefined && attempt < STALE_RETRIES) {
          // routed by a map the shard no longer follows (a move switched meanwhile): route again
          const again = await this.getMany(
            idx.map((i) => readVersions[i]!),
            idx.map((i) => keys[i]!),
            share ?? Infinity,
            attempt + 1,
          );
          for (let j = 0; j < idx.length; j++) out[idx[j]!] = again[j]!;
          return;
        }
        if ('error' in r) {
          const e = TxnError.fromWire(r.error);
          for (const i of idx) out[i] = e;
          return;
        }
        if (!('values' in r)) throw new Error(`shard ${shardId}: unexpected reply to gets`);
        const values = unpackBytes(r.values);
        for (let j = 0; j < idx.length; j++) {
          const err = r.errors?.[j];
          out[idx[j]!] = err ? TxnError.fromWire(err) : values[j]!;
        }
      }),
    );
    return Promise.all([...fast, ...slow]).then(() => out);
  }

  /**
   * Rows of `range` at `readVersion`, at most `limit`. Shards are asked one after the
   * other (in reverse for reverse reads), each for what is still missing, so a page
   * costs one hop unless it crosses a boundary. hasMore is true exactly when rows remain past
   * the page (cut by the limit or the byte cap).
   */
  async getRange(readVersion: number, range: KeyRange, limit: number, reverse: boolean, maxBytes = RANGE_PAGE_MAX_BYTES): Promise<RangeResultRows> {
    if (readVersion > this.oracle.readableVersion) await this.checkVersion(readVersion);
    // the bounds are often views into the request's frame: structured clone would copy the
    // whole frame to the shard (a range read sharing a frame with a 10 MB commit took 2.4x
    // as long); copy the bounds themselves instead
    range = { begin: compact(range.begin), end: compact(range.end) };
    let parts = this.getShardMap().split(range, readVersion);
    if (reverse) parts.reverse();
    const kvs: Uint8Array[] = [];
    let rows = 0;
    let bytes = 0;
    let retries = 0;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      const r = await this.shards[p.shardId]!.request({
        t: 'range',
        readVersion,
        begin: p.begin,
        end: p.end,
        limit: limit - rows,
        reverse,
        maxBytes: Math.max(maxBytes - bytes, 1),
      });
      if ('error' in r && r.staleMap !== undefined && retries++ < STALE_RETRIES) {
        // the map changed under this read: cut what is still missing along the current one
        parts = this.getShardMap().split(reverse ? { begin: range.begin, end: p.end } : { begin: p.begin, end: range.end }, readVersion);
        if (reverse) parts.reverse();
        i = -1;
        continue;
      }
      if ('error' in r) throw TxnError.fromWire(r.error);
      if (!('kvs' in r)) throw new Error(`shard ${p.shardId}: unexpected reply to range`);
      const got = unpackBytes(r.kvs) as Uint8Array[];
      for (let j = 0; j < got.length; j++) {
        kvs.push(got[j]!);
        bytes += got[j]!.length;
      }
      rows += got.length / 2;
      if (r.more) return { kvs, hasMore: true };
      if (rows >= limit || bytes >= maxBytes) return { kvs, hasMore: await this.anyRow(readVersion, parts.slice(i + 1), reverse) };
    }
    return { kvs, hasMore: false };
  }

  /**
   * The census' slice (metrics/census.ts): the rows of `range` at readVersion counted on
   * their shards, nothing shipped: at most `limit` rows or, past the first, `maxBytes`
   * key+value bytes. next = where the following slice begins (null: the range is done).
   */
  async countRange(readVersion: number, range: KeyRange, limit: number, maxBytes: number): Promise<{ keys: number; bytes: number; next: Uint8Array | null }> {
    if (readVersion > this.oracle.readableVersion) await this.checkVersion(readVersion);
    let parts = this.getShardMap().split(range, readVersion);
    let keys = 0;
    let bytes = 0;
    let retries = 0;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      const r = await this.shards[p.shardId]!.request({ t: 'count', readVersion, begin: p.begin, end: p.end, limit: limit - keys, maxBytes: Math.max(maxBytes - bytes, 1) });
      if ('error' in r && r.staleMap !== undefined && retries++ < STALE_RETRIES) {
        parts = this.getShardMap().split({ begin: p.begin, end: range.end }, readVersion);
        i = -1;
        continue;
      }
      if ('error' in r) throw TxnError.fromWire(r.error);
      if (!('count' in r)) throw new Error(`shard ${p.shardId}: unexpected reply to count`);
      keys += r.count.keys;
      bytes += r.count.bytes;
      if (r.count.next !== null) return { keys, bytes, next: r.count.next };
      if (keys >= limit || bytes >= maxBytes) return { keys, bytes, next: i + 1 < parts.length ? parts[i + 1]!.begin : null };
    }
    return { keys, bytes, next: null };
  }

  /** Whether any of the remaining shard parts holds a row (so hasMore is exact, not a guess). */
  private async anyRow(readVersion: number, parts: { shardId: number; begin: Uint8Array; end: Uint8Array }[], reverse: boolean, attempt = 0): Promise<boolean> {
    for (const p of parts) {
      const r = await this.shards[p.shardId]!.request({ t: 'range', readVersion, begin: p.begin, end: p.end, limit: 1, reverse, maxBytes: 1 });
      if ('error' in r && r.staleMap !== undefined && attempt < STALE_RETRIES) {
        const again = this.getShardMap().split({ begin: p.begin, end: p.end }, readVersion);
        if (reverse) again.reverse();
        if (await this.anyRow(readVersion, again, reverse, attempt + 1)) return true;
        continue;
      }
      if ('error' in r) throw TxnError.fromWire(r.error);
      if ('kvs' in r && r.kvs.lens.length > 0) return true;
    }
    return false;
  }
}

/** `b` itself when it owns its whole buffer, else a copy of just its bytes. */
function compact(b: Uint8Array): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : b.slice();
}
