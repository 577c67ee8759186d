// Issue 12, the single-shard commit path (w1, w10): with fsync durability a one-phase
// commit's batch is answered by the log writer thread itself, and the shard learns of
// the end of the write from memory it shares with the log writer, without a message,
// unless commits or reads wait behind the batch (then the log writer wakes it). Before,
// every commit took the log writer -> shard -> coordinator route: one thread wake-up
// and one message more per commit. These tests check both halves with the shards'
// counters (directBatches, logWakes), and that nothing waiting behind a batch is lost.
// The decided parts of cross-shard commits take the same route (the last test).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, text, type TestServer } from '../support/server.js';

interface ShardRow {
  shardId: number;
  commits: number;
  directBatches: number;
  logWakes: number;
}

describe('single-shard commits: the log writer answers them', () => {
  let s: TestServer;
  // each shard's counters as /v1/status reports them (fetched from the shards on each
  // request; one row per key range, so a shard split by the balancer has several), by shard id
  const stats = async (): Promise<ShardRow[]> => {
    const rows = ((await (await fetch(`${s.server.url.replace(/^ws/, 'http')}/v1/status`)).json()) as { shards: ShardRow[] }).shards;
    const byShard: ShardRow[] = [];
    for (const r of rows) byShard[r.shardId] ??= r;
    return byShard;
  };
  beforeAll(async () => {
    // fsync durability (the log writer exists only there); shard 0: "a…", 1: "b…", 2: "c…", 3: "d…";
    // the balancer off (it would move the written ranges, and their commits, to other shards)
    s = await startTestServer({ splitPoints: ['b', 'c', 'd'], durability: 'fsync', distribution: { enabled: false } });
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it('sequential one-key commits are answered by the log writer and never wake their shard a second time', { timeout: 60_000 }, async () => {
    const before = (await stats())[0]!;
    for (let i = 0; i < 40; i++) {
      const tx = s.db.createTransaction();
      tx.set(`a/seq/${i}`, `v${i}`);
      await tx.commit();
      // the next commit's read of its own shard sees this one (the shard ends the batch
      // from the shared counter when the read arrives)
      const rx = s.db.createTransaction();
      expect(text(await rx.get(`a/seq/${i}`))).toBe(`v${i}`);
    }
    const after = (await stats())[0]!;
    expect(after.directBatches - before.directBatches).toBeGreaterThanOrEqual(40);
    // nothing waited behind any of these batches: the shard was never woken by their end
    expect(after.logWakes - before.logWakes).toBe(0);
    expect(after.commits - before.commits).toBeGreaterThanOrEqual(40);
  });

  it('commits and reads that wait behind a batch at the log writer are woken at its end', { timeout: 60_000 }, async () => {
    const before = await stats();
    // clients on shards 0 and 1 at random moments: commits arrive while a batch is at the
    // log writer and queue behind it, and a read version that covers a commit acknowledged
    // on one shard parks on the other behind that shard's batch
    const rounds = 30;
    await Promise.all(
      Array.from({ length: 16 }, async (_, c) => {
        const key = `${c % 2 === 0 ? 'a' : 'b'}/c${c}`;
        const other = `${c % 2 === 0 ? 'b' : 'a'}/c${c ^ 1}`;
        for (let i = 0; i < rounds; i++) {
          await new Promise((r) => setTimeout(r, Math.random() * 3));
          const tx = s.db.createTransaction();
          tx.set(key, `r${i}`);
          await tx.commit();
          const rx = s.db.createTransaction();
          const [mine] = await Promise.all([rx.get(key), rx.get(other)]);
          expect(text(mine)).toBe(`r${i}`);
        }
      }),
    );
    const after = await stats();
    const sum = (rows: ShardRow[], f: keyof ShardRow): number => rows[0]![f] + rows[1]![f];
    expect(sum(after, 'commits') - sum(before, 'commits')).toBe(16 * rounds);
    expect(sum(after, 'directBatches') - sum(before, 'directBatches')).toBeGreaterThan(0);
    // some batch had commits or reads behind it, and its end woke the shard
    expect(sum(after, 'logWakes') - sum(before, 'logWakes')).toBeGreaterThan(0);
  });

  it('the log writer thread is in /v1/status threads, with the CPU of the writes and fsyncs', { timeout: 60_000 }, async () => {
    type Thread = { name: string; tid: number | null; cpuMs: number | null };
    const threads = async (): Promise<Thread[]> =>
      ((await (await fetch(`${s.server.url.replace(/^ws/, 'http')}/v1/status`)).json()) as { threads: Thread[] }).threads;
    const before = (await threads()).find((t) => t.name === 'log-writer');
    expect(before, 'a log-writer row (fsync durability)').toBeDefined();
    if (process.platform !== 'linux') return;
    const all = await threads();
    // a thread of its own: not the main thread's or a shard's id
    expect(before!.tid).toBeGreaterThan(0);
    expect(all.filter((t) => t.tid === before!.tid).map((t) => t.name)).toEqual(['log-writer']);
    for (let i = 0; i < 60; i++) {
      const tx = s.db.createTransaction();
      tx.set(`a/cpu/${i}`, 'x');
      await tx.commit();
    }
    const after = (await threads()).find((t) => t.name === 'log-writer')!;
    // 60 fsync'd writes cost it CPU (clock ticks of 10 ms: > 0 once it ran about that long)
    expect(after.cpuMs!).toBeGreaterThanOrEqual(before!.cpuMs!);
    expect(after.cpuMs!).toBeGreaterThan(0);
  });

  it('the parts of cross-shard commits are answered by the log writer; a read right after sees every part', { timeout: 60_000 }, async () => {
    // the client's acknowledgement waits for the primary's part (shard 2 here, with the
    // decision record): it no longer waits for the primary's thread to run after the write
    const before = await stats();
    for (let i = 0; i < 30; i++) {
      const tx = s.db.createTransaction();
      tx.set(`c/x${i}`, `c${i}`);
      tx.set(`d/x${i}`, `d${i}`);
      await tx.commit();
      // a read version taken after the acknowledgement covers the commit: both shards
      // end their batch (the shared counter) or wait for their part before answering
      const rx = s.db.createTransaction();
      expect([text(await rx.get(`c/x${i}`)), text(await rx.get(`d/x${i}`))]).toEqual([`c${i}`, `d${i}`]);
    }
    const after = await stats();
    // the primary's 30 batches (decision record and part) went out from the log writer
    expect(after[2]!.directBatches - before[2]!.directBatches).toBeGreaterThanOrEqual(30);
    // the other part's batches too (each its own, or several decided parts together)
    expect(after[3]!.directBatches - before[3]!.directBatches).toBeGreaterThan(0);
    expect(after[2]!.commits - before[2]!.commits).toBe(30);
    expect(after[3]!.commits - before[3]!.commits).toBe(30);
  });
});
