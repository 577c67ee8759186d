// Automatic data distribution (coordinator/balancer.ts, docs/distribution.md) on a real
// server: a workload whose keys all share one prefix (acct/...) starts on one worker of
// four; within 30 s the balancer splits and moves its ranges until no worker carries more
// than 40 % of the reads and writes, as the shards' own counters measure them, while a bank
// invariant (transfers between accounts, the total never changes) and an append check
// (every list read is a prefix of the final list, every acknowledged append is in it once)
// run throughout and hold. With distribution.enabled = false the load stays where it is.
import { afterEach, describe, expect, it } from 'vitest';
import { TxnError, type Database } from '../../src/index.js';
import type { KeyValue, ReadTransaction } from '../../src/client/transaction.js';
import { keyAfter } from '../../src/keys/bytes.js';
import { startTestServer, text, type TestServer } from '../support/server.js';
import { mulberry32, randInt } from '../support/rng.js';

const ACCOUNTS = 200;
const LISTS = 16;
const START = 100;
const acct = (i: number): string => `acct/bank/${String(i).padStart(4, '0')}`;
const list = (i: number): string => `acct/list/${String(i).padStart(2, '0')}`;

interface StatusShard {
  shardId: number;
  reads: number;
  commits: number;
}
interface Status {
  shards: StatusShard[];
  distribution: { splits: number; moves: number; merges: number; history: { kind: string; ms: number; at: string }[]; map: { ranges: { owner: number }[] }; balancer: { actions: number; workers: { share: number }[] } };
}

async function status(t: TestServer): Promise<Status> {
  const res = await fetch(t.server.url.replace('ws://', 'http://') + '/v1/status');
  return (await res.json()) as Status;
}

/** Per worker: reads (keys) + commit parts, cumulative, from the shards' own counters. */
function workerOps(s: Status): number[] {
  const out: number[] = [];
  for (const r of s.shards) out[r.shardId] = r.reads + r.commits;
  return out;
}

/** The workload: transfers, appends, point reads and audits, until stop(); failures collected. */
function workload(db: Database, seed: number): { stop: () => Promise<void>; failures: string[]; counts: { transfers: number; appends: number; audits: number } } {
  const rng = mulberry32(seed);
  let running = true;
  const failures: string[] = [];
  const counts = { transfers: 0, appends: 0, audits: 0 };
  /** Each list's observed values (reads), and the appends acknowledged. */
  const observed: string[][] = Array.from({ length: LISTS }, () => []);
  const acked: Set<string>[] = Array.from({ length: LISTS }, () => new Set());
  let nextId = 0;
  const retrying = async (fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      // a commit whose outcome is unknown (or a read that could not be served in time) is
      // not a failure of the invariants; anything else is
      if (!(err instanceof TxnError && ['COMMIT_UNKNOWN_RESULT', 'TOO_OLD', 'UNAVAILABLE', 'TIMED_OUT', 'NETWORK_ERROR'].includes(err.code))) failures.push(String(err));
    }
  };
  const transfer = async (): Promise<void> => {
    const a = randInt(rng, ACCOUNTS);
    const b = (a + 1 + randInt(rng, ACCOUNTS - 1)) % ACCOUNTS;
    await db.transact(async (tx) => {
      const [va, vb] = await Promise.all([tx.get(acct(a)), tx.get(acct(b))]);
      const x = Number(text(va));
      const y = Number(text(vb));
      const amount = Math.min(x, 1 + randInt(rng, 10));
      tx.set(acct(a), String(x - amount));
      tx.set(acct(b), String(y + amount));
    });
    counts.transfers++;
  };
  const append = async (): Promise<void> => {
    const l = randInt(rng, LISTS);
    const id = `${seed}.${nextId++}`;
    let seen = '';
    await db.transact(async (tx) => {
      seen = text(await tx.get(list(l))) ?? '';
      tx.set(list(l), seen === '' ? id : `${seen},${id}`);
    });
    observed[l]!.push(seen);
    acked[l]!.add(id);
    counts.appends++;
  };
  const audit = async (): Promise<void> => {
    const rows = await db.createReadOnlyTransaction().getRange({ key: 'acct/bank/', inclusive: true }, { key: 'acct/bank0', inclusive: true }, { limit: 10_000 });
    const total = rows.kvs.reduce((s, kv) => s + Number(text(kv.value)), 0);
    if (rows.kvs.length !== ACCOUNTS || total !== ACCOUNTS * START) failures.push(`audit: ${rows.kvs.length} accounts, total ${total} (expected ${ACCOUNTS}, ${ACCOUNTS * START})`);
    counts.audits++;
  };
  const loop = async (op: () => Promise<void>): Promise<void> => {
    while (running) await retrying(op);
  };
  const loops = [
    ...Array.from({ length: 8 }, () => loop(transfer)),
    ...Array.from({ length: 4 }, () => loop(append)),
    loop(async () => {
      await audit();
      await new Promise((r) => setTimeout(r, 200));
    }),
  ];
  return {
    failures,
    counts,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      // the append check: each list's final value holds every acknowledged append once,
      // and every value read before an append is a prefix of it
      for (let l = 0; l < LISTS; l++) {
        const final = text(await db.createReadOnlyTransaction().get(list(l))) ?? '';
        const items = final === '' ? [] : final.split(',');
        if (new Set(items).size !== items.length) failures.push(`list ${l}: an append appears twice`);
        for (const id of acked[l]!) if (!items.includes(id)) failures.push(`list ${l}: acknowledged append ${id} is missing`);
        for (const seen of observed[l]!) if (!(final === seen || final.startsWith(seen === '' ? '' : `${seen},`))) failures.push(`list ${l}: read ${JSON.stringify(seen)} is not a prefix of the final list`);
      }
    },
  };
}

async function seed(db: Database): Promise<void> {
  await db.transact(async (tx) => {
    for (let i = 0; i < ACCOUNTS; i++) tx.set(acct(i), String(START));
  });
}

describe('automatic distribution (the balancer)', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('keys on one prefix on 4 workers: within 30 s no worker carries more than 40 % of reads and writes; bank and append checks hold', async () => {
    t = await startTestServer({ shards: 4, durability: 'buffered' });
    await seed(t.db);
    const before = await status(t);
    // every key of the workload starts on one worker
    const w = workload(t.db, 1);
    const started = Date.now();
    let last = workerOps(before);
    let shares: number[] = [];
    let spreadAt = -1;
    try {
      while (Date.now() - started < 30_000) {
        await new Promise((r) => setTimeout(r, 1000));
        const s = await status(t);
        const now = workerOps(s);
        const d = now.map((x, i) => x - (last[i] ?? 0));
        last = now;
        const total = d.reduce((a, b) => a + b, 0);
        shares = d.map((x) => x / total);
        // spread: the last second's reads and writes, on every worker at most 40 %, twice in a row
        if (total > 0 && Math.max(...shares) <= 0.4) {
          if (spreadAt < 0) spreadAt = Date.now() - started;
          else break;
        } else spreadAt = -1;
      }
    } finally {
      await w.stop();
    }
    const s = await status(t);
    const events = s.distribution.history.map((e) => `${e.kind} ${e.ms} ms at +${Date.parse(e.at) - started} ms`).join(', ');
    const detail = `shares ${shares.map((x) => (x * 100).toFixed(0) + ' %').join(' ')}; splits ${s.distribution.splits}, moves ${s.distribution.moves}; ${JSON.stringify(w.counts)}; events: ${events}`;
    if (process.env.BAL_SHOW) console.log(`spread at ${spreadAt}: ${detail}`);
    expect(spreadAt, `load did not spread within 30 s: ${detail}`).toBeGreaterThan(0);
    expect(w.failures, detail).toEqual([]);
    expect(w.counts.audits).toBeGreaterThan(3);
    expect(s.distribution.splits).toBeGreaterThan(0);
    expect(s.distribution.moves).toBeGreaterThan(0);
    expect(new Set(s.distribution.map.ranges.map((r) => r.owner)).size).toBe(4);
  }, 60_000);

  it('with distribution.enabled = false the ranges stay as they are (the load stays on one worker)', async () => {
    t = await startTestServer({ shards: 4, durability: 'buffered', distribution: { enabled: false, checkIntervalMs: 200 } });
    await seed(t.db);
    const before = await status(t);
    const w = workload(t.db, 2);
    await new Promise((r) => setTimeout(r, 3000));
    await w.stop();
    const s = await status(t);
    expect(w.failures).toEqual([]);
    expect(s.distribution.splits + s.distribution.moves + s.distribution.merges).toBe(0);
    expect(s.distribution.map).toEqual(before.distribution.map);
    // measured all the same (status shows where the load is): one worker has it all
    expect(s.distribution.balancer.actions).toBe(0);
    expect(Math.max(...s.distribution.balancer.workers.map((x) => x.share))).toBeGreaterThan(0.95);
  }, 30_000);
});

// Size: the census counts every range's rows and bytes; a range above splitBytes is split
// at its middle, the workers' bytes are evened by moves (within sizeBand), and small cold
// neighbours are brought onto one worker and merged. Small thresholds so that a few MB do it;
// minOpsPerSec out of reach, so load never acts here.
describe('automatic distribution by size', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  interface SizeStatus {
    distribution: {
      history: { kind: string; reason: string; at: string }[];
      map: { ranges: { begin: string; end: string | null; owner: number; prev?: unknown }[] };
      balancer: { ranges: { begin: string; end: string | null; owner: number; bytes: number | null }[] };
    };
  }
  const sizeStatus = async (x: TestServer): Promise<SizeStatus> => (await fetch(x.server.url.replace('ws://', 'http://') + '/v1/status').then((r) => r.json())) as SizeStatus;
  const ROWS = 20_000;
  const row = (i: number): string => `big/${String(i).padStart(6, '0')}`;
  const value = (i: number): string => `${i}:`.padEnd(100, 'v');
  /** Each worker's bytes (the census' count of every range of the map; null until all are counted). */
  const workerBytes = (s: SizeStatus): number[] | null => {
    const out = [0, 0, 0, 0];
    for (const r of s.distribution.balancer.ranges) {
      if (r.bytes === null) return null;
      out[r.owner]! += r.bytes;
    }
    return out;
  };
  /** Every row under big/, page after page (a reply holds at most about 1 MB). */
  const scan = async (tx: ReadTransaction): Promise<KeyValue[]> => {
    const out: KeyValue[] = [];
    let from = new Uint8Array(Buffer.from('big/'));
    for (;;) {
      const page = await tx.getRange({ key: from, inclusive: true }, { key: 'big0', inclusive: false });
      out.push(...page.kvs);
      if (!page.hasMore || page.kvs.length === 0) return out;
      from = new Uint8Array(keyAfter(page.kvs[page.kvs.length - 1]!.key));
    }
  };
  const count = (s: SizeStatus, kind: string, reason: string): number => s.distribution.history.filter((e) => e.kind === kind && e.reason === reason).length;

  it('a range that grows past splitBytes is split at its middle, its parts move until every worker holds its share of the bytes, and small cold neighbours merge', async () => {
    t = await startTestServer({
      shards: 4,
      durability: 'buffered',
      // a 2 s MVCC window (default 5 s): a moved range's previous owner is let go sooner, so the
      // next move or merge of it waits less; the scan below (~24,000 rows) still fits in it
      mvccWindowMs: 2000,
      distribution: { enabled: true, checkIntervalMs: 200, censusIntervalMs: 200, splitBytes: 512 * 1024, mergeBytes: 64 * 1024, balanceMinBytes: 256 * 1024, sizeBand: 0.25, cooldownMs: 1000, minOpsPerSec: 1e12 },
    });
    const db = t.db;
    // ~2.4 MB under one prefix: on one worker at first
    for (let i = 0; i < ROWS; i += 500) {
      await db.transact(async (tx) => {
        for (let j = i; j < i + 500; j++) tx.set(row(j), value(j));
      });
    }
    let s = await sizeStatus(t);
    const started = Date.now();
    let spread: number[] | null = null;
    while (Date.now() - started < 45_000) {
      await new Promise((r) => setTimeout(r, 500));
      s = await sizeStatus(t);
      const b = workerBytes(s);
      const total = b ? b.reduce((x, y) => x + y, 0) : 0;
      // every worker within the band, the big ranges split, and nothing in flight
      const big = s.distribution.balancer.ranges.some((r) => (r.bytes ?? 0) > 512 * 1024);
      if (b && total > 2_000_000 && !big && b.every((x) => Math.abs(x - total / 4) <= (total / 4) * 0.25 + 1)) {
        spread = b;
        break;
      }
    }
    const detail = `worker bytes ${JSON.stringify(workerBytes(s))}; history ${JSON.stringify(s.distribution.history.map((e) => `${e.kind} ${e.reason}`))}`;
    expect(spread, `the bytes did not spread within 45 s: ${detail}`).not.toBeNull();
    expect(count(s, 'split', 'balancer: size'), detail).toBeGreaterThanOrEqual(3);
    expect(count(s, 'move', 'balancer: size'), detail).toBeGreaterThanOrEqual(2);
    expect(count(s, 'split', 'balancer: load') + count(s, 'move', 'balancer: load'), detail).toBe(0);
    // every row is where it was written, once
    const rows = await db.transact(async (tx) => scan(tx));
    expect(rows.length).toBe(ROWS);
    expect(rows.every((r, i) => Buffer.from(r.key).toString() === row(i) && text(r.value) === value(i))).toBe(true);

    // most rows go: the parts are small and cold now; neighbours meet on one worker and merge
    const peak = s.distribution.map.ranges.length;
    await db.transact(async (tx) => tx.clearRange(row(10), row(ROWS - 10)));
    const merging = Date.now();
    while (Date.now() - merging < 45_000) {
      await new Promise((r) => setTimeout(r, 500));
      s = await sizeStatus(t);
      if (s.distribution.map.ranges.length <= 4 && s.distribution.map.ranges.every((r) => !r.prev)) break;
    }
    const detail2 = `ranges ${peak} -> ${s.distribution.map.ranges.length}; history ${JSON.stringify(s.distribution.history.map((e) => `${e.kind} ${e.reason}`))}`;
    if (process.env.BAL_SHOW) console.log(`spread: ${detail}\nmerged: ${detail2}`);
    // islands (a range with no neighbour on its worker) moved next to a neighbour and merged: at
    // most one range more than the workers (without those moves: 8 of 11 left in a run)
    expect(count(s, 'merge', 'balancer: cold'), detail2).toBeGreaterThanOrEqual(2);
    expect(count(s, 'move', 'balancer: cold'), detail2).toBeGreaterThanOrEqual(1);
    expect(s.distribution.map.ranges.length, detail2).toBeLessThanOrEqual(5);
    // every worker keeps a range (an island only moves off a worker that has another)
    expect(new Set(s.distribution.map.ranges.map((r) => r.owner)).size, detail2).toBe(4);
    const left = await db.transact(async (tx) => scan(tx));
    expect(left.map((r) => Buffer.from(r.key).toString())).toEqual([...Array.from({ length: 10 }, (_, i) => row(i)), ...Array.from({ length: 10 }, (_, i) => row(ROWS - 10 + i))]);
  }, 120_000);
});
