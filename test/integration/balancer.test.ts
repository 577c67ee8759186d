// Automatic data distribution (coordinator/balancer.ts, docs/distribution.md) on a real
// server: a workload whose keys all share one prefix (acct/...) starts on one worker of
// four; within 30 s the balancer splits and moves its ranges until no worker carries more
// than 40 % of the reads and writes, as the shards' own counters measure them, while a bank
// invariant (transfers between accounts, the total never changes) and an append check
// (every list read is a prefix of the final list, every acknowledged append is in it once)
// run throughout and hold. With distribution.enabled = false the load stays where it is.
import { afterEach, describe, expect, it } from 'vitest';
import { TxnError, type Database } from '../../src/index.js';
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
