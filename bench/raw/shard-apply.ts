// The shard thread's CPU per written key under w10's shape, without the network, the
// coordinator or the other threads: one Shard (src/shard/shard.ts) over a real RocksDB
// column in this process, fed one-phase blind commits of 5 distinct random keys out of
// `keys` (a 2-shard w10: 10 keys per transaction, half on each shard), 8-100-byte values,
// `perBatch` commits per group commit (the mutation lists come from a pool of 8,192 made
// beforehand), the window slid as the coordinator does (horizon =
// 5 s of commits behind at `rate` keys/s). The write itself runs here too (buffered, no
// fsync; --no-write skips it: the shard's own work alone). CPU: all threads =
// process.cpuUsage() (V8's GC helper threads and RocksDB's background threads count), this
// thread = /proc/thread-self/schedstat, GC pauses = V8's count of this thread's time in
// collections (PerformanceObserver 'gc'). The generator (keys, values, packing) runs on
// this thread too and is counted.
// `--root DIR` runs another build's Shard (e.g. a worktree of main) for a before/after.
//   npm run build && node dist/bench/raw/shard-apply.js [--root DIR] [--keys 50000] [--commits 100000]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PerformanceObserver } from 'node:perf_hooks';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { kvKey, makeValue } from '../data.js';
import { Rng } from '../rng.js';

const { values: args } = parseArgs({
  options: {
    root: { type: 'string' },
    keys: { type: 'string', default: '50000' },
    commits: { type: 'string', default: '100000' },
    perBatch: { type: 'string', default: '10' },
    rate: { type: 'string', default: '30000' },
    rowCache: { type: 'string', default: String(32 * 1024 * 1024) },
    /** Skip the RocksDB writes: the shard's own work alone (the row cache holds every row after the warm-up). */
    'no-write': { type: 'boolean', default: false },
    /**
     * As under w10 on 2 shards: every batch arrives through the wire codec (wire.ts, a fresh
     * buffer per batch, decoded into views) as prepares, decided in the next batch, so a
     * commit's writes wait one batch as a prepared part does (the young generation then sees
     * what a shard thread's does; with the pooled lists alone it sees almost nothing).
     */
    wire: { type: 'boolean', default: false },
    /**
     * With --wire: prepares are decided this many batches later, and each batch's write ends
     * only after the next batch's requests were handled (as at the log writer): the server's
     * lifetimes, counted in allocation, which is what a scavenge sees.
     */
    'decide-after': { type: 'string', default: '1' },
    /** With --alloc-profile: sample only objects that outlived a scavenge (promoted), not all allocation. */
    promoted: { type: 'boolean', default: false },
    /** Write V8's sampling heap profile of the measured run to this file (every sampled object, also those collected: allocation; bench/heap-summary.js). */
    'alloc-profile': { type: 'string' },
  },
});

const root = args.root ?? join(import.meta.dirname, '../../..');
const imp = async <T>(rel: string): Promise<T> => (await import(pathToFileURL(join(root, 'dist', rel)).href)) as T;
const { openDatabase } = await imp<typeof import('../../src/server/open-database.js')>('src/server/open-database.js');
const { ShardStorage } = await imp<typeof import('../../src/shard/storage.js')>('src/shard/storage.js');
const { Shard } = await imp<typeof import('../../src/shard/shard.js')>('src/shard/shard.js');
const { Failpoints } = await imp<typeof import('../../src/failpoints/failpoints.js')>('src/failpoints/failpoints.js');
const { packBytes, packMutations } = await imp<typeof import('../../src/shard/interface.js')>('src/shard/interface.js');
const { encodeRequests, decodeRequests } = await imp<typeof import('../../src/shard/wire.js')>('src/shard/wire.js');

const KEYS = Number(args.keys);
const COMMITS = Number(args.commits);
const PER_BATCH = Number(args.perBatch);
const KEYS_PER_COMMIT = 5;
// the window: 5 s of commits at `rate` keys/s
const WINDOW = Math.round((5 * Number(args.rate)) / KEYS_PER_COMMIT);

const dir = mkdtempSync(join(tmpdir(), 'txkv-shard-apply-'));
const opened = await openDatabase(dir, { shards: 1, splitPoints: [], explicitSplitPoints: false });
const storage = await ShardStorage.attach(opened.db.handle, 0);
const shard = new Shard(storage, 0, 0, new Failpoints({}), false, Number(args.rowCache));
const write = storage.write.bind(storage);
storage.write = (ops, sync) => {
  if (!args['no-write']) write(ops, sync);
};

/** CPU time of this thread, ms (/proc/thread-self/schedstat: ns on the CPU). */
const threadCpuMs = (): number => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;

const rng = new Rng(1);
const noReads = packBytes([]);
let version = 0;
let id = 1;
const replies: unknown[] = [];
// a pool of packed mutation lists, reused in turn (the shard only reads them), so that
// generating keys and values costs nothing in the measured loop
const pool = Array.from({ length: 8192 }, () => {
  const picked = new Set<number>();
  while (picked.size < KEYS_PER_COMMIT) picked.add(rng.int(KEYS));
  return packMutations(
    [...picked].map((k) => {
      const key = kvKey(k);
      return { kind: 0, key, param: makeValue(rng, key) };
    }),
  );
});
const DECIDE_AFTER = Number(args['decide-after']);
const undecided: number[][] = [];
let inflight: ReturnType<typeof shard.beginApply> = null;
const stepWire = (commits: number): void => {
  for (let c = 0; c < commits; c += PER_BATCH) {
    const batch: Parameters<typeof encodeRequests>[0][number][] = [];
    if (undecided.length >= DECIDE_AFTER) for (const v of undecided.shift()!) batch.push({ t: 'decide', id: id++, commitVersion: v, commit: true, sync: false });
    const prepared: number[] = [];
    for (let j = 0; j < PER_BATCH; j++) {
      const v = ++version;
      batch.push({ t: 'prepare', id: 0, commitVersion: v, mutations: pool[v % pool.length]! });
      prepared.push(v);
    }
    undecided.push(prepared);
    shard.handleBatch(decodeRequests(encodeRequests(batch)), replies as never);
    if (inflight) shard.endApply(inflight, replies as never);
    inflight = shard.beginApply();
    if (inflight) {
      storage.write(inflight.ops, false);
      // as worker.ts does once the log writer has the bytes (a build without clear() keeps them)
      (inflight.ops as { clear?: () => void }).clear?.();
    }
    replies.length = 0;
    if (version % 100 < PER_BATCH && version > WINDOW) shard.handleBatch([{ t: 'horizon', id: 0, horizon: version - WINDOW } as never], replies as never);
  }
};
const step = (commits: number): void => {
  if (args.wire) {
    stepWire(commits);
    return;
  }
  for (let c = 0; c < commits; c += PER_BATCH) {
    const batch = [];
    for (let j = 0; j < PER_BATCH; j++) {
      batch.push({ t: 'commit' as const, id: id++, readVersion: 0, commitVersion: ++version, reads: noReads, mutations: pool[version % pool.length]!, sync: false });
    }
    shard.handleBatch(batch, replies as never);
    shard.applyReady(replies as never);
    replies.length = 0;
    if (version % 100 < PER_BATCH && version > WINDOW) shard.handleBatch([{ t: 'horizon', id: 0, horizon: version - WINDOW } as never], replies as never);
  }
};

// fill the window and the row cache first
step(WINDOW + 20_000);
let gcMs = 0;
let majorGcs = 0;
let minorGcs = 0;
const obs = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcMs += e.duration;
    // perf_hooks constants: 1 = scavenge, 4 = mark-compact
    const kind = ((e as unknown as { detail?: { kind?: number } }).detail)?.kind;
    if (kind === 1) minorGcs++;
    else if (kind === 4) majorGcs++;
  }
});
obs.observe({ entryTypes: ['gc'] });
const session = args['alloc-profile'] ? new Session() : null;
if (session) {
  session.connect();
  await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: !args.promoted });
}
const cpu0 = process.cpuUsage();
const thread0 = threadCpuMs();
step(COMMITS);
const cpu = process.cpuUsage(cpu0);
const thread = threadCpuMs() - thread0;
await new Promise((r) => setTimeout(r, 10));
obs.disconnect();
if (session) {
  const { profile } = await session.post('HeapProfiler.stopSampling');
  writeFileSync(args['alloc-profile']!, JSON.stringify(profile));
  session.disconnect();
}
const keys = COMMITS * KEYS_PER_COMMIT;
const us = (ms: number): string => ((ms * 1000) / keys).toFixed(2);
console.log(
  `${args.root ?? 'this build'}${args['no-write'] ? ' (no RocksDB writes)' : ''}${args.wire ? ' (through the wire, prepare + decide)' : ''}: ${keys} keys, CPU µs/key: all threads ${((cpu.user + cpu.system) / keys).toFixed(2)}, this thread ${us(thread)} (GC pauses ${us(gcMs)}: ${minorGcs} scavenges, ${majorGcs} mark-compacts), other threads ${((cpu.user + cpu.system) / keys - (thread * 1000) / keys).toFixed(2)}`,
);
await opened.db.close();
rmSync(dir, { recursive: true, force: true });
