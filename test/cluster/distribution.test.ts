// Data distribution in cluster mode (issue 13): splits, merges and moves are log entries,
// so every node's map and shard contents follow the leader's. On one 3+3 cluster, with
// writers recording every acknowledged commit and a bank workload running: a split and a
// move on the leader; then kill -9 of the leader after its copy (the switch not logged:
// the new leader aborts the move) and after its logged switch (every node finishes the
// move); a replica re-seeded by snapshot after a move; two back-to-back moves out of one
// worker with a slowed replica, and with a replica killed at its second switch. After each: every node has the
// same map and the same full scan at one read version, every acknowledged commit, the
// bank total; at the end each row of the moved range is in exactly one column of each
// node's database, its owner's.
import path from 'node:path';
import { RocksLevel } from '@nxtedition/rocksdb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Database } from '../../src/index.js';
import { appliedVersion, HAVE_ETCD, keepLogsOnFailure, sleep, TestCluster, within } from './harness.js';

const ACCOUNTS = 8;
const START_BALANCE = 100;
const PRELOAD = 2500; // three chunks of a move's copy
const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64url');
const hexOf = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

interface MapJson {
  version: number;
  workers: number;
  ranges: { begin: string; end: string | null; owner: number; prev?: { owner: number; until: number } }[];
}
interface MapReply {
  map: MapJson;
  move: { id: number; phase: string } | null;
  history: { kind: string; outcome: string; reason: string; error?: string }[];
}


class Workload {
  readonly acked = new Map<string, string>();
  transfers = 0;
  private stopped = false;
  private loops: Promise<void>[] = [];
  constructor(private readonly db: Database) {}

  start(): void {
    for (let w = 0; w < 3; w++) this.loops.push(this.writer(w));
    this.loops.push(this.bank());
  }

  private async writer(w: number): Promise<void> {
    for (let seq = 0; !this.stopped; seq++) {
      // inside the moved range and outside it; a key is retried until acknowledged (a set is idempotent)
      const key = seq % 2 === 0 ? `mv/w${w}/${String(seq).padStart(7, '0')}` : `zz/w${w}/${String(seq).padStart(7, '0')}`;
      while (!this.stopped) {
        try {
          const tx = this.db.createTransaction();
          tx.set(key, `v${seq}`);
          await within(tx.commit(), 3000);
          this.acked.set(key, `v${seq}`);
          break;
        } catch {
          await sleep(20);
        }
      }
    }
  }

  private async bank(): Promise<void> {
    for (let n = 0; !this.stopped; n++) {
      const from = n % ACCOUNTS;
      const to = (n * 5 + 3) % ACCOUNTS;
      if (from === to) continue;
      try {
        await within(
          this.db.transact(async (tx) => {
            const a = Number(Buffer.from((await tx.get(`mv/acct/${from}`))!).toString());
            const c = Number(Buffer.from((await tx.get(`mv/acct/${to}`))!).toString());
            tx.set(`mv/acct/${from}`, String(a - 1));
            tx.set(`mv/acct/${to}`, String(c + 1));
          }),
          5000,
        );
        this.transfers++;
      } catch {
        await sleep(20);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}

describe.skipIf(!HAVE_ETCD)('data distribution in a replicated cluster', () => {
  // the balancer off: the test alone moves ranges (the balancer's moves in a cluster are the
  // same log entries); a 10 s MVCC window, for sameRows' full scans at one read version
  const c = new TestCluster({ TXKV_MVCC_WINDOW_MS: '10000', TXKV_CLUSTER_LOG_RETENTION_MS: '12000', TXKV_DISTRIBUTION_ENABLED: 'false' });
  keepLogsOnFailure(() => c);
  let db: Database;
  let work: Workload;
  const live = new Set<number>();
  const measured: Record<string, number | string> = {};

  const base = (i: number): string => `http://127.0.0.1:${c.nodes[i]!.port}`;
  const mapOf = async (i: number): Promise<MapReply> => (await (await fetch(`${base(i)}/v1/shard/map`, { signal: AbortSignal.timeout(5000) })).json()) as MapReply;
  const ownerOf = (m: MapJson, begin: string): number => m.ranges.find((r) => r.begin === hexOf(begin))!.owner;
  const post = async (i: number, p: string): Promise<{ status: number; body: { error?: { code: string; message: string } } & Partial<MapReply> }> => {
    const r = await fetch(`${base(i)}${p}`, { method: 'POST', signal: AbortSignal.timeout(60_000) });
    return { status: r.status, body: (await r.json()) as { error?: { code: string; message: string } } };
  };

  /** Every live node: no move in progress, no previous owner left, and the same map. */
  async function settled(ms = 40_000): Promise<MapJson> {
    const until = Date.now() + ms;
    for (;;) {
      const maps = await Promise.all([...live].map((i) => mapOf(i).catch(() => null)));
      const ok = maps.every((m) => m && m.move === null && m.map.ranges.every((r) => r.prev === undefined));
      if (ok && maps.every((m) => JSON.stringify(m!.map) === JSON.stringify(maps[0]!.map))) return maps[0]!.map;
      if (Date.now() > until) throw new Error(`maps did not settle: ${JSON.stringify(maps.map((m) => m && { map: m.map, move: m.move }))}`);
      await sleep(100);
    }
  }

  /** The same full scan at one read version on every live node, holding every acknowledged write and the bank total. */
  async function sameRows(): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const t0 = Date.now();
      try {
        const n = await sameRowsOnce();
        measured.longestScanMs = Math.max(Number(measured.longestScanMs ?? 0), Date.now() - t0);
        return n;
      } catch (err) {
        // a slow box: the read version left the window during the scans; or the leader
        // refused a read version for a moment (UNAVAILABLE: its grant in etcd ran short
        // while etcd was slow, or an election). Both retryable by contract: take a new one.
        const code = (err as { code?: string }).code;
        if (code !== 'TOO_OLD' && code !== 'UNAVAILABLE') throw err;
        if (attempt >= 5) throw new Error(`full scan attempt ${attempt + 1} failed after ${Date.now() - t0} ms: ${(err as Error).message}`, { cause: err });
        await sleep(200);
      }
    }
  }

  async function sameRowsOnce(): Promise<number> {
    const any = await connect({ endpoints: [...live].map((i) => c.urls[i]!) });
    const rv = await any.createTransaction().getReadVersion();
    await any.close();
    // the nodes are scanned at once, in pages of 10,000 rows: the scans must end within the
    // MVCC window from the read version. The CI run of 736ddcd (4 s window, one node after
    // another in pages of 1,000) ran out of it four times in a row; here at load ~10 one
    // scan of three nodes took 4.2 s, hence also the 10 s window of this cluster
    const scans = await Promise.all(
      [...live].map(async (i) => {
        const one = await connect({ endpoints: [c.urls[i]!], connectionPoolSize: 1 });
        try {
          const tx = one.createTransaction();
          tx.setReadVersion(rv);
          const rows: string[] = [];
          let begin = { key: '' as string | Uint8Array, inclusive: true };
          for (;;) {
            const page = await tx.snapshotGetRange(begin, { key: '\xff', inclusive: false }, { limit: 10_000 });
            for (const kv of page.kvs) rows.push(`${Buffer.from(kv.key).toString('latin1')}=${Buffer.from(kv.value).toString()}`);
            if (!page.hasMore || page.kvs.length === 0) break;
            begin = { key: page.kvs[page.kvs.length - 1]!.key, inclusive: false };
          }
          return { i, rows };
        } finally {
          await one.close();
        }
      }),
    );
    for (const { i, rows } of scans) {
      const got = new Map(rows.map((x) => [x.slice(0, x.indexOf('=')), x.slice(x.indexOf('=') + 1)]));
      let total = 0;
      for (let a = 0; a < ACCOUNTS; a++) total += Number(got.get(`mv/acct/${a}`));
      expect(total, `bank total on node ${i}`).toBe(ACCOUNTS * START_BALANCE);
      for (let p = 0; p < PRELOAD; p++) expect(got.get(`mv/pre/${String(p).padStart(5, '0')}`), `node ${i} preloaded row ${p}`).toBe(`p${p}`);
    }
    for (const s of scans.slice(1)) expect(s.rows).toEqual(scans[0]!.rows);
    // every write acknowledged before the read version (the workload runs on; checked on the settled rows)
    return scans[0]!.rows.length;
  }

  /** Restarts every node with `env` (the replicas together, then the leader: it hands over on SIGTERM to one of them). */
  async function restartAll(env: Record<string, string>): Promise<void> {
    const l = await c.leader();
    const restart1 = async (i: number): Promise<void> => {
      c.kill(c.nodes[i]!, 'SIGTERM');
      await c.nodes[i]!.exited;
      await c.startNode(i, undefined, env);
    };
    await Promise.all([...live].filter((i) => i !== l).map(restart1));
    await restart1(l);
    await c.leader();
  }

  /** Kills the leader at the armed failpoint with a move of [mv/, mv0) to `to`; returns the old leader. */
  async function moveAndDie(to: number, failpoint: string): Promise<number> {
    const l = await c.leader();
    const move = post(l, `/v1/shard/move?begin=${b64('mv/')}&to=${to}`).catch((err: Error) => ({ status: 0, body: { error: { code: 'NETWORK', message: err.message } } }));
    const exit = (await within(c.nodes[l]!.exited, 60_000)) as { signal: string | null };
    await move;
    expect(exit.signal).toBe('SIGKILL');
    expect(c.nodes[l]!.logs.some((x) => x.includes(`failpoint ${failpoint} fired`))).toBe(true);
    live.delete(l);
    const next = await c.leader(20_000, l);
    expect(next).not.toBe(l);
    return l;
  }

  beforeAll(async () => {
    await c.startEtcd();
    await c.startNodes();
    for (let i = 0; i < c.nodes.length; i++) live.add(i);
    await c.leader();
    db = await connect({ endpoints: c.urls, connectionPoolSize: 3 });
    await db.transact(async (tx) => {
      for (let i = 0; i < ACCOUNTS; i++) tx.set(`mv/acct/${i}`, String(START_BALANCE));
    });
    for (let p = 0; p < PRELOAD; p += 500) {
      await db.transact(async (tx) => {
        for (let j = p; j < p + 500; j++) tx.set(`mv/pre/${String(j).padStart(5, '0')}`, `p${j}`);
      });
    }
    work = new Workload(db);
    work.start();
    // the moves below run under a going workload: writes and transfers acknowledged
    const until = Date.now() + 30_000;
    while (work.acked.size < 10 || work.transfers < 2) {
      if (Date.now() > until) throw new Error(`the workload did not get going in 30 s: ${work.acked.size} writes, ${work.transfers} transfers`);
      await sleep(20);
    }
  }, 120_000);

  afterAll(async () => {
    await work?.stop();
    await db?.close();
    await c.stop();
    console.log(`cluster distribution test: ${JSON.stringify(measured)}; acknowledged ${work?.acked.size} writes, ${work?.transfers} transfers`);
  }, 60_000);

  it('split and move on the leader under writes: every node ends with the same map and the same rows', { timeout: 120_000 }, async () => {
    const l = await c.leader();
    const r = (l + 1) % 3;
    // a replica refuses: map changes are the leader's
    const refused = await post(r, `/v1/shard/split?key=${b64('mv/')}`);
    expect(refused.status).toBe(503);
    expect(refused.body.error?.code).toBe('UNAVAILABLE');
    expect((await post(l, `/v1/shard/split?key=${b64('mv/')}`)).status).toBe(200);
    expect((await post(l, `/v1/shard/split?key=${b64('mv0')}`)).status).toBe(200);
    const before = (await mapOf(l)).map;
    const from = ownerOf(before, 'mv/');
    const t = Date.now();
    const moved = await post(l, `/v1/shard/move?begin=${b64('mv/')}&to=${1 - from}`);
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    measured.moveMs = Date.now() - t;
    const map = await settled();
    expect(ownerOf(map, 'mv/')).toBe(1 - from);
    // the switch and the drop of the old rows: two versions past the splits, on every node
    expect(map.version).toBeGreaterThanOrEqual(before.version + 2);
    for (const i of live) {
      const h = (await mapOf(i)).history;
      expect(h.filter((e) => e.kind === 'move' && e.outcome === 'done').length, `node ${i} history`).toBeGreaterThanOrEqual(1);
    }
    measured.rowsAfterMove = await sameRows();
  });

  it('kill -9 of the leader after its copy, before the switch is logged: the new leader aborts the move; nothing lost or duplicated', { timeout: 180_000 }, async () => {
    await restartAll({ TXKV_FAILPOINTS: 'cluster-move.after-copy=1' });
    const owner = ownerOf((await mapOf(await c.leader())).map, 'mv/');
    const dead = await moveAndDie(1 - owner, 'cluster-move.after-copy');
    const map = await settled();
    expect(ownerOf(map, 'mv/')).toBe(owner);
    const l = await c.leader();
    expect((await mapOf(l)).history.some((e) => e.kind === 'move' && e.outcome === 'failed')).toBe(true);
    await sameRows();
    // the killed node comes back (undoes its copy, replays the start and the abort) with the same map
    await c.startNode(dead);
    live.add(dead);
    expect(c.nodes[dead]!.logs.some((x) => x.includes('"event":"MoveRecovered"'))).toBe(true);
    expect(ownerOf(await settled(), 'mv/')).toBe(owner);
    await sameRows();
  });

  it('kill -9 of the leader after its switch is logged: every node finishes the move; nothing lost or duplicated', { timeout: 180_000 }, async () => {
    await restartAll({ TXKV_FAILPOINTS: 'cluster-move.after-switch=1' });
    const owner = ownerOf((await mapOf(await c.leader())).map, 'mv/');
    const dead = await moveAndDie(1 - owner, 'cluster-move.after-switch');
    const map = await settled();
    expect(ownerOf(map, 'mv/')).toBe(1 - owner);
    await sameRows();
    await c.startNode(dead);
    live.add(dead);
    expect(ownerOf(await settled(), 'mv/')).toBe(1 - owner);
    await sameRows();
  });

  // snapshot seeding adopts the leader's map (cluster/snapshot.ts)
  it('a replica re-seeded by snapshot after the log was trimmed past a move takes the leader\'s map', { timeout: 180_000 }, async () => {
    await restartAll({}); // no failpoint armed any more
    const l = await c.leader();
    const r = [...live].find((i) => i !== l)!;
    const applied = await appliedVersion(c, r);
    c.kill(c.nodes[r]!, 'SIGKILL');
    await c.nodes[r]!.exited;
    live.delete(r);
    expect((await post(l, `/v1/shard/split?key=${b64('zz/')}`)).status).toBe(200);
    expect((await post(l, `/v1/shard/split?key=${b64('zz0')}`)).status).toBe(200);
    const owner = ownerOf((await mapOf(l)).map, 'zz/');
    expect((await post(l, `/v1/shard/move?begin=${b64('zz/')}&to=${1 - owner}`)).status).toBe(200);
    await c.trimmedPast(applied, 90_000);
    const from = c.nodes[r]!.logs.length;
    await c.startNode(r);
    live.add(r);
    expect(c.nodes[r]!.logs.slice(from).some((x) => x.includes('"event":"SnapshotSeeded"'))).toBe(true);
    const map = await settled();
    expect(ownerOf(map, 'zz/')).toBe(1 - owner);
    await sameRows();
  });

  /** Writes keys of [bb/, bb0) until stopped; every acknowledged key with its value. */
  /** Single-key commits alternating between bb/a/ and bb/n/ until stop(), which waits for at least `atLeast` acknowledged (a loaded machine acknowledges fewer in the same time: 13 in one run at load ~18). */
  function bbWriter(atLeast = 0): { stop(): Promise<Map<string, string>> } {
    const acked = new Map<string, string>();
    let stopped = false;
    const loop = (async () => {
      for (let seq = 0; !stopped; seq++) {
        const key = `bb/${seq % 2 === 0 ? 'a' : 'n'}/${String(seq).padStart(7, '0')}`;
        while (!stopped) {
          try {
            const tx = db.createTransaction();
            tx.set(key, `b${seq}`);
            await within(tx.commit(), 3000);
            acked.set(key, `b${seq}`);
            break;
          } catch {
            await sleep(20);
          }
        }
      }
    })();
    return {
      stop: async () => {
        for (const until = Date.now() + 60_000; acked.size < atLeast && Date.now() < until; ) await sleep(100);
        stopped = true;
        await loop;
        return acked;
      },
    };
  }

  /** Every node holds each of `rows` (key -> value). */
  async function holds(rows: Map<string, string>): Promise<void> {
    const keys = [...rows.keys()];
    for (const i of live) {
      const one = await connect({ endpoints: [c.urls[i]!], connectionPoolSize: 1 });
      try {
        for (let k = 0; k < keys.length; k += 500) {
          const vals = await one.transact(async (tx) => Promise.all(keys.slice(k, k + 500).map((key) => tx.snapshotGet(key))));
          const wrong = keys.slice(k, k + 500).filter((key, j) => (vals[j] === null ? null : Buffer.from(vals[j]!).toString()) !== rows.get(key));
          expect(wrong.slice(0, 10), `node ${i}: ${wrong.length} rows of [bb/, bb0) missing or wrong`).toEqual([]);
        }
      } finally {
        await one.close();
      }
    }
  }

  /** Restarts node `i` with `env`. */
  async function restart(i: number, env: Record<string, string>): Promise<void> {
    c.kill(c.nodes[i]!, 'SIGTERM');
    await c.nodes[i]!.exited;
    await c.startNode(i, undefined, env);
  }

  // A source worker feeds one move at a time, and a node persists one move in progress: a
  // node following the log finishes a move's catch-up before it starts the next logged
  // move, as the leader does (the CI run of 8e55895 lost a moved range's rows on a replica
  // whose catch-up of one move ended the feed of the next).
  it('back-to-back moves out of one worker, with a slowed replica (its copy and catch-up lag the log): every node has every row', { timeout: 180_000 }, async () => {
    const l = await c.leader();
    const r = [...live].find((i) => i !== l)!;
    await restart(r, { TXKV_FAILPOINTS: 'cluster-move.replica-slow=1000' });
    const leader = await c.leader();
    for (const k of ['bb/', 'bb/n', 'bb0']) expect((await post(leader, `/v1/shard/split?key=${b64(k)}`)).status).toBe(200);
    const preload = new Map<string, string>();
    for (const half of ['a', 'n']) {
      for (let p = 0; p < 1500; p += 500) {
        await db.transact(async (tx) => {
          for (let j = p; j < p + 500; j++) {
            const key = `bb/${half}/p${String(j).padStart(5, '0')}`;
            tx.set(key, `p${j}`);
            preload.set(key, `p${j}`);
          }
        });
      }
    }
    const w = bbWriter(21);
    await sleep(500);
    const owner = ownerOf((await mapOf(leader)).map, 'bb/');
    expect(ownerOf((await mapOf(leader)).map, 'bb/n')).toBe(owner);
    for (const begin of ['bb/', 'bb/n']) {
      const moved = await post(leader, `/v1/shard/move?begin=${b64(begin)}&to=${1 - owner}`);
      expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    }
    await sleep(1000);
    const acked = await w.stop();
    expect(acked.size).toBeGreaterThan(20);
    const map = await settled(60_000);
    expect(ownerOf(map, 'bb/')).toBe(1 - owner);
    expect(ownerOf(map, 'bb/n')).toBe(1 - owner);
    expect(c.nodes[r]!.proc!.exitCode, `node ${r} exited`).toBeNull();
    await holds(new Map([...preload, ...acked]));
    await sameRows();
  });

  it('kill -9 of a replica at its switch of the second of two back-to-back moves: it restarts, replays the move, and has every row', { timeout: 180_000 }, async () => {
    const l = await c.leader();
    const r = [...live].find((i) => i !== l)!;
    await restart(r, { TXKV_FAILPOINTS: 'cluster-move.replica-after-switch=2' });
    const leader = await c.leader();
    const owner = ownerOf((await mapOf(leader)).map, 'bb/');
    const w = bbWriter();
    await sleep(500);
    for (const begin of ['bb/', 'bb/n']) {
      const moved = await post(leader, `/v1/shard/move?begin=${b64(begin)}&to=${1 - owner}`);
      expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    }
    const exit = (await within(c.nodes[r]!.exited, 60_000)) as { signal: string | null };
    expect(exit.signal).toBe('SIGKILL');
    expect(c.nodes[r]!.logs.some((x) => x.includes('failpoint cluster-move.replica-after-switch fired'))).toBe(true);
    live.delete(r);
    await sleep(500);
    const acked = await w.stop();
    await c.startNode(r);
    live.add(r);
    expect(c.nodes[r]!.logs.some((x) => x.includes('"event":"MoveRecovered"'))).toBe(true);
    const map = await settled(60_000);
    expect(ownerOf(map, 'bb/')).toBe(1 - owner);
    expect(ownerOf(map, 'bb/n')).toBe(1 - owner);
    await holds(acked);
    await sameRows();
  });

  it('every acknowledged write is on every node, and each row of the moved range is in its owner\'s column only', { timeout: 120_000 }, async () => {
    await work.stop();
    const map = await settled();
    await sameRows();
    for (const i of live) {
      const one = await connect({ endpoints: [c.urls[i]!], connectionPoolSize: 1 });
      try {
        const keys = [...work.acked.keys()];
        for (let k = 0; k < keys.length; k += 200) {
          const vals = await one.transact(async (tx) => Promise.all(keys.slice(k, k + 200).map((key) => tx.snapshotGet(key))));
          vals.forEach((v, j) => expect(v === null ? null : Buffer.from(v).toString(), `node ${i} ${keys[k + j]}`).toBe(work.acked.get(keys[k + j]!)));
        }
      } finally {
        await one.close();
      }
    }
    measured.acknowledged = work.acked.size;
    expect(work.acked.size).toBeGreaterThan(50);
    const owner = ownerOf(map, 'mv/');
    for (const i of live) {
      // a replica deletes a dropped range's rows after the map change (retried while busy); a
      // start deletes any it did not get to: stop, start, stop, then look
      c.kill(c.nodes[i]!, 'SIGTERM');
      await c.nodes[i]!.exited;
      await c.startNode(i);
      c.kill(c.nodes[i]!, 'SIGTERM');
      await c.nodes[i]!.exited;
      const rdb = new RocksLevel(path.join(c.nodes[i]!.dir, 'rocksdb'));
      await rdb.open({ columns: { default: {}, s0: {}, s1: {} } });
      try {
        const n: number[] = [];
        for (const s of ['s0', 's1']) {
          let k = 0;
          for await (const _ of rdb.keys({ column: rdb.columns[s], gte: 'mv/', lt: 'mv0' })) k++;
          n.push(k);
        }
        expect(n[1 - owner], `node ${i}: rows of the moved range in the other column`).toBe(0);
        expect(n[owner]).toBeGreaterThanOrEqual(PRELOAD + ACCOUNTS);
      } finally {
        await rdb.close();
      }
    }
    live.clear();
  });
});
