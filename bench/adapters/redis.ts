// Redis 7 adapter (ioredis), one connection per client loop (WATCH state is per connection).
// Blind writes: MULTI/SET.../EXEC. Read-write and multi-step read-only transactions: WATCH the
// keys before reading them (pipelined with the MGET), then MULTI/writes/EXEC; a nil EXEC means
// a watched key changed: CONFLICT. One-shot read-only transactions: one MGET (atomic).
// Redis has no ordered keys: workloads that read ranges get an ordered index, a sorted set of
// all keys scored 0 (byte order), kept in the same MULTI as the writes and read with a Lua
// script (ZRANGE BYLEX + MGET, atomic). Range conflicts: every write bumps a stamp key of its
// key's group (the first rangeGroupBytes bytes, e.g. one directory), and a range read in a
// WATCH transaction watches the stamp of its group (a range across groups: a global stamp).
// Durability: appendonly yes, appendfsync always (the AOF is fsynced before replies).

import { Redis } from 'ioredis';
import { BenchError, type Adapter, type AdapterSpec, type BenchSession, type BenchTxn, type KV, type OpenOptions, type RangePage, type TxnShape } from '../adapter.js';
import { prefixEnd } from '../data.js';
import { asBuffer, TickBatcher, WriteSet } from '../tick-batcher.js';

type RedisSpec = Extract<AdapterSpec, { system: 'redis' }>;

/** The ordered index of all keys (no benchmark key starts with 0xff). */
const INDEX_KEY = Buffer.from([0xff, 0x69, 0x64, 0x78]);
const LOAD_BATCH = 1000;
const GROUP_STAMP = Buffer.from([0xff, 0x67]);
const GLOBAL_STAMP = Buffer.from([0xff, 0x61, 0x6c, 0x6c]);

/** Range-conflict groups: keys sharing their first `bytes` bytes. */
class Groups {
  constructor(readonly bytes: number) {}
  stamp(key: Uint8Array): Buffer {
    return Buffer.concat([GROUP_STAMP, asBuffer(key).subarray(0, this.bytes)]);
  }
  /** The one stamp covering [begin, end), or the global stamp when the range spans groups. */
  rangeStamp(begin: Uint8Array, end: Uint8Array): Buffer {
    if (begin.length >= this.bytes) {
      const group = asBuffer(begin).subarray(0, this.bytes);
      if (Buffer.compare(asBuffer(end), asBuffer(prefixEnd(group))) <= 0) return this.stamp(begin);
    }
    return GLOBAL_STAMP;
  }
}

/** KEYS[1] = index; ARGV = min, max (ZRANGE BYLEX bounds), count. Returns [k1, v1, k2, v2, ...]. */
const RANGE_LUA = `
local ks = redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2], 'BYLEX', 'LIMIT', 0, tonumber(ARGV[3]))
if #ks == 0 then return {} end
local vs = redis.call('MGET', unpack(ks))
local out = {}
for i = 1, #ks do
  out[2 * i - 1] = ks[i]
  out[2 * i] = vs[i] or ''
end
return out`;

interface RangeClient extends Redis {
  kvrangeBuffer(index: Buffer, min: Buffer, max: Buffer, count: number): Promise<Buffer[]>;
}

function newClient(spec: RedisSpec): RangeClient {
  const r = new Redis({ host: spec.host, port: spec.port, lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: true });
  r.defineCommand('kvrange', { numberOfKeys: 1, lua: RANGE_LUA });
  return r as RangeClient;
}

async function rangeRead(r: RangeClient, begin: Uint8Array, end: Uint8Array, limit: number): Promise<RangePage> {
  const min = Buffer.concat([Buffer.from('['), asBuffer(begin)]);
  const max = Buffer.concat([Buffer.from('('), asBuffer(end)]);
  const flat = await r.kvrangeBuffer(INDEX_KEY, min, max, limit + 1);
  const kvs: KV[] = [];
  for (let i = 0; i + 1 < flat.length && kvs.length < limit; i += 2) kvs.push({ key: flat[i] as Buffer, value: flat[i + 1] as Buffer });
  return { kvs, hasMore: flat.length / 2 > limit };
}

class RedisTxn implements BenchTxn {
  readonly writes = new WriteSet();
  /** WATCH before reading, so that EXEC fails if anything read changes afterwards. */
  private readonly watching: boolean;
  watched = false;
  private readonly reads: TickBatcher<Buffer, Buffer | null>;

  constructor(private readonly r: RangeClient, shape: TxnShape, private readonly groups: Groups | undefined) {
    this.watching = !(shape.kind === 'ro' && shape.oneShot === true) && shape.kind !== 'wo';
    this.reads = new TickBatcher((keys) => this.readBatch(keys));
  }

  private async readBatch(keys: Buffer[]): Promise<(Buffer | null)[]> {
    if (!this.watching) return keys.length === 1 ? [await this.r.getBuffer(keys[0] as Buffer)] : this.r.mgetBuffer(...keys);
    this.watched = true;
    const res = await this.r.pipeline().watch(...keys).mgetBuffer(...keys).exec();
    if (res === null) throw new BenchError('FAILED', false, 'redis: pipeline aborted');
    for (const [err] of res) if (err) throw err;
    return (res[1] as [Error | null, (Buffer | null)[]])[1];
  }

  async get(key: Uint8Array): Promise<Uint8Array | null> {
    const own = this.writes.lookup(key);
    if (own !== undefined) return own;
    return this.reads.request(asBuffer(key));
  }

  snapshotGet(key: Uint8Array): Promise<Uint8Array | null> {
    // Redis has no snapshot without WATCH: snapshot reads are watched like the others.
    return this.get(key);
  }

  async getRange(begin: Uint8Array, end: Uint8Array, limit: number): Promise<RangePage> {
    if (!this.groups) throw new BenchError('FAILED', false, 'redis: range read without the ordered index (adapter opened with ordered=false)');
    if (this.watching) {
      // A range has no fixed key set to watch: its group's stamp is watched (any write in the group conflicts).
      this.watched = true;
      await this.r.watch(this.groups.rangeStamp(begin, end));
    }
    return rangeRead(this.r, begin, end, limit);
  }

  set(key: Uint8Array, value: Uint8Array): void {
    this.writes.set(key, value);
  }

  clear(key: Uint8Array): void {
    this.writes.clear(key);
  }

  async commit(): Promise<void> {
    if (this.writes.size === 0 && !this.watched) return;
    const m = this.r.multi();
    const stamps = new Set<string>();
    for (const w of this.writes.sorted()) {
      const k = asBuffer(w.key);
      if (w.value === null) m.del(k);
      else m.set(k, asBuffer(w.value));
      if (this.groups) {
        if (w.value === null) m.zrem(INDEX_KEY, k);
        else m.zadd(INDEX_KEY, 0, k);
        stamps.add(this.groups.stamp(k).toString('latin1'));
      }
    }
    if (stamps.size > 0) {
      for (const st of stamps) m.incr(Buffer.from(st, 'latin1'));
      m.incr(GLOBAL_STAMP);
    }
    const res = await m.exec();
    this.watched = false;
    if (res === null) throw new BenchError('CONFLICT', true, 'redis: a watched key changed before EXEC');
    for (const [err] of res) if (err) throw err;
  }

  async abort(): Promise<void> {
    if (this.watched) await this.r.unwatch();
  }
}

class RedisSession implements BenchSession {
  constructor(private readonly r: RangeClient, private readonly groups: Groups | undefined) {}

  async attempt<T>(shape: TxnShape, fn: (tx: BenchTxn) => Promise<T>): Promise<T> {
    const tx = new RedisTxn(this.r, shape, this.groups);
    try {
      const result = await fn(tx);
      await tx.commit();
      return result;
    } catch (err) {
      // Redis reads are not a snapshot: a workload may see state mixed from before and after
      // another commit and give up (its consistency checks fail). If a watched key changed,
      // that was a conflict, as an empty EXEC tells; otherwise the error stands.
      if (!(err instanceof BenchError && err.code === 'CONFLICT') && tx.watched) {
        const res = await this.r.multi().exec().catch(() => undefined);
        tx.watched = false;
        if (res === null) throw new BenchError('CONFLICT', true, `redis: watched keys changed under a failed attempt (${(err as Error).message})`);
      }
      await tx.abort().catch(() => undefined);
      throw err;
    }
  }

  async close(): Promise<void> {
    this.r.disconnect();
  }
}

export class RedisAdapter implements Adapter {
  readonly system = 'redis';
  readonly durability = 'AOF, appendfsync always';
  private admin: RangeClient | undefined;
  private groups: Groups | undefined;

  constructor(private readonly spec: RedisSpec) {}

  async open(opts: OpenOptions): Promise<void> {
    this.groups = opts.ordered ? new Groups(opts.rangeGroupBytes ?? 0) : undefined;
    this.admin = newClient(this.spec);
    await this.admin.connect();
  }

  async session(_clientId: number): Promise<BenchSession> {
    const r = newClient(this.spec);
    await r.connect();
    return new RedisSession(r, this.groups);
  }

  /** Loads rows and always builds the ordered index, so that any workload can follow. */
  async load(kvs: Iterable<KV>, onProgress?: (rows: number) => void): Promise<void> {
    const r = this.admin;
    if (!r) throw new Error('redis adapter: not open');
    let batch: KV[] = [];
    let rows = 0;
    const flush = async (): Promise<void> => {
      const p = r.pipeline();
      const flat: Buffer[] = [];
      const members: (number | Buffer)[] = [];
      for (const kv of batch) {
        flat.push(asBuffer(kv.key), asBuffer(kv.value));
        members.push(0, asBuffer(kv.key));
      }
      p.mset(...flat);
      p.zadd(INDEX_KEY, ...members);
      const res = await p.exec();
      for (const [err] of res ?? []) if (err) throw err;
      rows += batch.length;
      batch = [];
      onProgress?.(rows);
    };
    for (const kv of kvs) {
      batch.push(kv);
      if (batch.length >= LOAD_BATCH) await flush();
    }
    if (batch.length > 0) await flush();
  }

  async close(): Promise<void> {
    this.admin?.disconnect();
    this.admin = undefined;
  }
}
