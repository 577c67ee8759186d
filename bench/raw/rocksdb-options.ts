// RocksDB column and database options for txkv's workload, measured one configuration at a
// time on the binding alone (no txkv code), each in a fresh process and directory so that
// RSS belongs to that configuration: `rows` rows of 16-byte keys and 8-100-byte random values
// spread over 4 shard column families (as `txkv serve --shards 4` lays them out), then
// `writes` keys rewritten in 10-key batches (buffered: the fsync is the disk's, the same for
// every configuration), 10-key multi-gets (r10's shape) and 1,000-row scans. CPU per key is
// process.cpuUsage() over the phase, so RocksDB's flush and compaction threads count.
//   npm run build && node dist/bench/raw/rocksdb-options.js [rows] [writes] [seconds] [config,...]
// `node dist/bench/raw/rocksdb-options.js --list` names the configurations.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RocksLevel } from '@nxtedition/rocksdb';
import { DEFAULT_CONFIG } from '../../src/config/server-config.js';
import { rocksDbOptions } from '../../src/server/open-database.js';
import { kvKey, makeValue } from '../data.js';
import { Rng } from '../rng.js';

const SHARDS = 4;
const MB = 1 << 20;

/** The binding's option names (binding.cc InitOptions / db_open); `column` is applied to every shard column. */
export const CONFIGS: Record<string, { db: Record<string, unknown>; column: Record<string, unknown> }> = {
  // ZSTD WAL, ZSTD + 16 KB dictionary on every level, 8 MB HyperClock cache per column,
  // bloom 10 bits/key, RocksDB's 64 MB memtables (2 per column)
  defaults: { db: {}, column: {} },
  'wal-plain': { db: { walCompression: false }, column: {} },
  'no-compression': { db: {}, column: { compression: false } },
  // compaction 'level' is the binding's only way to size memtables: write buffer = budget / 4,
  // up to 6 of them, L0/L1 uncompressed, L2+ ZSTD (with the dictionary unless compression: false)
  'level-16': { db: {}, column: { compaction: 'level', memtableMemoryBudget: 16 * MB } },
  'level-16-nodict': { db: {}, column: { compaction: 'level', memtableMemoryBudget: 16 * MB, compression: false } },
  'level-32': { db: {}, column: { compaction: 'level', memtableMemoryBudget: 32 * MB } },
  'level-64': { db: {}, column: { compaction: 'level', memtableMemoryBudget: 64 * MB } },
  'point-lookup': { db: {}, column: { optimize: 'point-lookup' } },
  'cache-0': { db: {}, column: { cacheSize: 0 } },
  'cache-32': { db: {}, column: { cacheSize: 32 * MB } },
};
// what txkv opens with (src/server/open-database.ts), at the default settings
const txkv = rocksDbOptions(DEFAULT_CONFIG.rocksdb, SHARDS);
CONFIGS.txkv = { db: txkv.db, column: txkv.shardColumn };
// the candidates: plain WAL, level compaction without dictionary, by memtable budget, block cache and filter
for (const mem of [8, 16, 32]) {
  for (const cache of [0, 8, 16, 64]) {
    const column = { compaction: 'level', memtableMemoryBudget: mem * MB, compression: false, cacheSize: cache * MB };
    CONFIGS[`m${mem}-c${cache}`] = { db: { walCompression: false }, column };
    CONFIGS[`m${mem}-c${cache}-point`] = { db: { walCompression: false }, column: { ...column, optimize: 'point-lookup' } };
    CONFIGS[`m${mem}-c${cache}-nofilter`] = { db: { walCompression: false }, column: { ...column, filterPolicy: 'bloomfilter:0' } };
  }
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return n;
}

/**
 * Runs `step` (returning keys done) for `seconds` or until `limit` keys; keys/s and CPU µs
 * per key (all threads). Yields to the event loop every 64 steps, as a server does between
 * batches: a batch's close() completes there, and until it does the batch (its native
 * WriteBatch included) stays registered with the database.
 */
async function phase(step: () => number, o: { seconds?: number; limit?: number }): Promise<{ perSec: number; cpuUsPerKey: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let ops = 0;
  let n = 0;
  while ((o.seconds === undefined || performance.now() - t0 < o.seconds * 1000) && (o.limit === undefined || ops < o.limit)) {
    ops += step();
    if (++n % 64 === 0) await new Promise((r) => setImmediate(r));
  }
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { perSec: Math.round(ops / (ms / 1000)), cpuUsPerKey: +((c.user + c.system) / ops).toFixed(2) };
}

async function measure(name: string, rows: number, writes: number, seconds: number): Promise<Record<string, number | string>> {
  const cfg = CONFIGS[name];
  if (!cfg) throw new Error(`unknown configuration ${name}; known: ${Object.keys(CONFIGS).join(', ')}`);
  const dir = mkdtempSync(join(tmpdir(), 'txkv-rocks-opts-'));
  const db = new RocksLevel(dir);
  const columns: Record<string, object> = { default: {} };
  for (let s = 0; s < SHARDS; s++) columns[`s${s}`] = cfg.column;
  await db.open({ ...cfg.db, createIfMissing: true, columns } as never);
  // contiguous quarters of the keyspace, like the bench's split points
  const col = (i: number) => db.columns[`s${Math.min(SHARDS - 1, Math.floor((i * SHARDS) / rows))}`]!;
  const rng = new Rng(7);
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  // native memory: RSS less the JS heap and Buffers, after a full GC (the child runs with --expose-gc)
  const native = async (): Promise<number> => {
    await new Promise((r) => setImmediate(r));
    gc();
    const m = process.memoryUsage();
    return m.rss - m.heapTotal - m.external;
  };
  const native0 = await native();
  try {
    let next = 0;
    const load = await phase(() => {
      const b = db.batch();
      const end = Math.min(rows, next + 1000);
      for (let j = next; j < end; j++) {
        const k = kvKey(j);
        b._put(k, makeValue(rng, k), { column: col(j) });
      }
      b._writeSync({ sync: false });
      void b.close();
      const n = end - next;
      next = end;
      return n === 0 ? 1 : n;
    }, { limit: rows });
    const write = await phase(() => {
      // one shard's group commit: 10 keys of one column
      const s = rng.int(SHARDS);
      const b = db.batch();
      for (let j = 0; j < 10; j++) {
        const i = Math.floor(((s + rng.float()) * rows) / SHARDS);
        const k = kvKey(i);
        b._put(k, makeValue(rng, k), { column: col(i) });
      }
      b._writeSync({ sync: false });
      void b.close();
      return 10;
    }, { limit: writes });
    const nativeAfterWrites = await native();
    const read = await phase(() => {
      const s = rng.int(SHARDS);
      const keys: Uint8Array[] = [];
      let first = 0;
      for (let j = 0; j < 10; j++) {
        const i = Math.floor(((s + rng.float()) * rows) / SHARDS);
        if (j === 0) first = i;
        keys.push(kvKey(i));
      }
      const got = db._getManySync(keys, { column: col(first) });
      if (got.some((v) => v === undefined)) throw new Error('a preloaded key read as absent');
      return 10;
    }, { seconds });
    const scan = await phase(() => {
      const start = rng.int(Math.max(1, rows - 1000));
      const it = db.iterator({ column: col(start), gte: kvKey(start), lt: kvKey(Math.min(rows, start + 1000)), keyEncoding: 'buffer', valueEncoding: 'buffer' });
      const n = it._nextvSync(1000, {}).rows.length / 2;
      void it.close();
      return Math.max(1, n);
    }, { seconds });
    return {
      config: name,
      'load keys/s': load.perSec,
      'load µs/key': load.cpuUsPerKey,
      'write keys/s': write.perSec,
      'write µs/key': write.cpuUsPerKey,
      'get keys/s': read.perSec,
      'get µs/key': read.cpuUsPerKey,
      'scan rows/s': scan.perSec,
      'scan µs/row': scan.cpuUsPerKey,
      'native +MB': Math.round((nativeAfterWrites - native0) / MB),
      'native end +MB': Math.round(((await native()) - native0) / MB),
      'disk MB': +(dirBytes(dir) / MB).toFixed(1),
    };
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2);
if (args[0] === '--list') {
  for (const [name, c] of Object.entries(CONFIGS)) console.log(name, JSON.stringify(c));
} else if (args[0] === '--one') {
  const [, name, rows, writes, seconds] = args;
  console.log(JSON.stringify(await measure(name!, Number(rows), Number(writes), Number(seconds))));
} else {
  const rows = Number(args[0] ?? 100_000);
  const writes = Number(args[1] ?? 1_000_000);
  const seconds = Number(args[2] ?? 2);
  const names = args[3] ? args[3].split(',') : Object.keys(CONFIGS);
  const out: Record<string, number | string>[] = [];
  for (const name of names) {
    const line = execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--one', name, String(rows), String(writes), String(seconds)], { encoding: 'utf8' });
    out.push(JSON.parse(line.trim().split('\n').pop()!) as Record<string, number | string>);
    console.error(JSON.stringify(out[out.length - 1]));
  }
  console.table(out);
}
