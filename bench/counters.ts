// Issue 14's benchmarks, in one run on one machine:
//  1. hot counters: C clients incrementing K counters with add() vs get()+set() on txkv,
//     and INCR on Redis (appendfsync always, as bench/peers.ts starts it): throughput
//     and conflict rate, and a check that every counter holds exactly its increments;
//  2. watch fan-out: 1 writer, W watchers of one key: time from the write's commit to
//     each watch resolving;
//  3. change feed: one subscriber of the whole keyspace while C clients write single
//     keys (w10-like blind sets): changes delivered per second and lag (commit
//     acknowledged -> version delivered).
// Usage: node dist/bench/counters.js [--clients 100] [--counters 10] [--seconds 5] [--watchers 1000]
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { connect, TxnError, type Database } from '../src/index.js';
import { startRedis, startTxkv } from './peers.js';

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '100' },
    counters: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '5' },
    watchers: { type: 'string', default: '1000' },
    shards: { type: 'string', default: '4' },
  },
});
const CLIENTS = Number(args.clients);
const COUNTERS = Number(args.counters);
const SECONDS = Number(args.seconds);
const WATCHERS = Number(args.watchers);

const le64 = (n: number): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
};
const readLe64 = (b: Uint8Array | null): number => (b === null ? 0 : Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true)));
const pct = (xs: number[], p: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const f1 = (x: number): string => x.toFixed(1);

interface CounterResult {
  system: string;
  ops: number;
  perSec: number;
  attempts: number;
  conflicts: number;
  exact: boolean;
  p50: number;
  p99: number;
}

async function txkvCounters(dbs: Database[], mode: 'add' | 'get+set', prefix: string): Promise<CounterResult> {
  const key = (i: number): string => `${prefix}/${i}`;
  let ops = 0;
  let attempts = 0;
  let conflicts = 0;
  const lat: number[] = [];
  const perCounter = new Array<number>(COUNTERS).fill(0);
  const stopAt = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      const db = dbs[c % dbs.length]!;
      let i = c;
      while (performance.now() < stopAt) {
        const k = i++ % COUNTERS;
        const t0 = performance.now();
        for (;;) {
          attempts++;
          const tx = db.createTransaction();
          try {
            if (mode === 'add') tx.add(key(k), le64(1));
            else tx.set(key(k), le64(readLe64(await tx.get(key(k))) + 1));
            await tx.commit();
            break;
          } catch (e) {
            if (e instanceof TxnError && e.code === 'CONFLICT') {
              conflicts++;
              continue;
            }
            throw e;
          }
        }
        lat.push(performance.now() - t0);
        perCounter[k]!++;
        ops++;
      }
    }),
  );
  const r = dbs[0]!.createReadOnlyTransaction();
  const stored = await Promise.all(Array.from({ length: COUNTERS }, async (_, k) => readLe64(await r.get(key(k)))));
  return {
    system: `txkv ${mode}`,
    ops,
    perSec: ops / SECONDS,
    attempts,
    conflicts,
    exact: stored.every((v, k) => v === perCounter[k]),
    p50: pct(lat, 50),
    p99: pct(lat, 99),
  };
}

async function redisIncr(port: number): Promise<CounterResult> {
  const conns = Array.from({ length: 10 }, () => new Redis({ host: '127.0.0.1', port, lazyConnect: false, enableAutoPipelining: false }));
  await Promise.all(conns.map((c) => c.ping()));
  let ops = 0;
  const lat: number[] = [];
  const perCounter = new Array<number>(COUNTERS).fill(0);
  const stopAt = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      const r = conns[c % conns.length]!;
      let i = c;
      while (performance.now() < stopAt) {
        const k = i++ % COUNTERS;
        const t0 = performance.now();
        await r.incr(`ctr:${k}`);
        lat.push(performance.now() - t0);
        perCounter[k]!++;
        ops++;
      }
    }),
  );
  const stored = await Promise.all(Array.from({ length: COUNTERS }, async (_, k) => Number(await conns[0]!.get(`ctr:${k}`))));
  await Promise.all(conns.map((c) => c.quit()));
  return { system: 'redis INCR', ops, perSec: ops / SECONDS, attempts: ops, conflicts: 0, exact: stored.every((v, k) => v === perCounter[k]), p50: pct(lat, 50), p99: pct(lat, 99) };
}

async function watchFanout(dbs: Database[]): Promise<{ rounds: number; p50: number; p99: number; max: number }> {
  const key = 'bench/watched';
  const lat: number[] = [];
  const ROUNDS = 5;
  await dbs[0]!.transact(async (tx) => tx.set(key, le64(0)));
  for (let round = 1; round <= ROUNDS; round++) {
    // W watchers spread over the connections, armed with one transaction per connection
    const watches = dbs.flatMap((db, d) => {
      const tx = db.createTransaction();
      const ws = Array.from({ length: Math.ceil(WATCHERS / dbs.length) }, () => tx.watch(key)).slice(0, Math.max(0, WATCHERS - d * Math.ceil(WATCHERS / dbs.length)));
      void tx.commit();
      return ws;
    });
    await new Promise((r) => setTimeout(r, 1500)); // armed
    const t0 = performance.now();
    await dbs[0]!.transact(async (tx) => tx.set(key, le64(round)));
    await Promise.all(watches.map((w) => Promise.resolve(w).then(() => lat.push(performance.now() - t0))));
  }
  return { rounds: ROUNDS, p50: pct(lat, 50), p99: pct(lat, 99), max: Math.max(...lat) };
}

async function feedThroughput(dbs: Database[]): Promise<{ committed: number; delivered: number; perSec: number; lagP50: number; lagP99: number; commitP50: number }> {
  const acked = new Map<bigint, number>();
  const deliveredAt = new Map<bigint, number>();
  const commitLat: number[] = [];
  let delivered = 0;
  let committed = 0;
  let stop = false;
  const feed = dbs[0]!.subscribe('feed/', 'feed0')[Symbol.asyncIterator]();
  await new Promise((r) => setTimeout(r, 300));
  const consumer = (async () => {
    for (;;) {
      const r = await feed.next();
      if (r.done) return;
      deliveredAt.set(r.value.version, performance.now());
      delivered += r.value.mutations.length;
      if (stop && delivered >= committed) return;
    }
  })();
  const stopAt = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      const db = dbs[c % dbs.length]!;
      let i = 0;
      while (performance.now() < stopAt) {
        const tx = db.createTransaction();
        tx.set(`feed/${c}/${i++ % 1000}`, 'x'.repeat(100));
        const t0 = performance.now();
        await tx.commit();
        const now = performance.now();
        commitLat.push(now - t0);
        acked.set(tx.getCommittedVersion(), now);
        committed++;
      }
    }),
  );
  stop = true;
  await Promise.race([consumer, new Promise((r) => setTimeout(r, 30_000))]);
  await feed.return!();
  // delivered minus the writer's acknowledgement (negative: the feed had it first)
  const lags = [...acked].filter(([v]) => deliveredAt.has(v)).map(([v, a]) => deliveredAt.get(v)! - a);
  return { committed, delivered, perSec: delivered / SECONDS, lagP50: pct(lags, 50), lagP99: pct(lags, 99), commitP50: pct(commitLat, 50) };
}

async function main(): Promise<void> {
  const txkv = await startTxkv(Number(args.shards));
  if (!txkv.ok) throw new Error(txkv.reason);
  const endpoint = (txkv.peer.spec as { endpoint: string }).endpoint;
  const dbs = await Promise.all(Array.from({ length: 10 }, () => connect({ endpoints: [endpoint], connectionPoolSize: 1, transactionTimeoutMs: 60_000 })));
  const rows: CounterResult[] = [];
  try {
    rows.push(await txkvCounters(dbs, 'add', 'ctr-add'));
    rows.push(await txkvCounters(dbs, 'get+set', 'ctr-rmw'));
    const redis = await startRedis();
    if (redis.ok) {
      try {
        rows.push(await redisIncr((redis.peer.spec as { port: number }).port));
      } finally {
        await redis.peer.stop();
      }
    } else console.log(`redis skipped: ${redis.reason}`);
    console.log(`\ncounters: ${CLIENTS} clients, ${COUNTERS} hot counters, ${SECONDS} s each, txkv ${args.shards} shards (fsync), redis appendfsync always`);
    console.log('| system | increments/s | attempts | conflicts | conflict rate | p50 ms | p99 ms | counters exact |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      console.log(`| ${r.system} | ${f1(r.perSec)} | ${r.attempts} | ${r.conflicts} | ${f1((100 * r.conflicts) / Math.max(1, r.attempts))}% | ${f1(r.p50)} | ${f1(r.p99)} | ${r.exact} |`);
    }
    const w = await watchFanout(dbs);
    console.log(`\nwatch fan-out: 1 writer, ${WATCHERS} watchers of one key over 10 connections, ${w.rounds} rounds: commit -> watch resolved p50 ${f1(w.p50)} ms, p99 ${f1(w.p99)} ms, max ${f1(w.max)} ms`);
    const fd = await feedThroughput(dbs);
    console.log(
      `\nchange feed: ${CLIENTS} writers of single 100-byte values for ${SECONDS} s, 1 subscriber: ${fd.committed} commits, ${fd.delivered} changes delivered (${f1(fd.perSec)}/s), lag = delivered - writer's acknowledgement: p50 ${f1(fd.lagP50)} ms, p99 ${f1(fd.lagP99)} ms (commit latency p50 ${f1(fd.commitP50)} ms)`,
    );
  } finally {
    await Promise.all(dbs.map((d) => d.close()));
    await txkv.peer.stop();
  }
}

await main();
