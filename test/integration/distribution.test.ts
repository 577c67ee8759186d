// Online data distribution (docs/distribution.md) on a real server: splits and moves
// while transactions run, through the operator routes (/v1/shard/*).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TxnError } from '../../src/index.js';
import type { KeyValue, ReadTransaction } from '../../src/client/transaction.js';
import { keyAfter } from '../../src/keys/bytes.js';
import { startTestServer, text, type TestServer } from '../support/server.js';

const run = promisify(execFile);
const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64url');
const unhex = (h: string): string => Buffer.from(h, 'hex').toString('latin1');

interface MapJson {
  version: number;
  workers: number;
  ranges: { begin: string; end: string | null; owner: number; prev?: { owner: number; until: number } }[];
}

async function admin(t: TestServer, path: string, method = 'POST'): Promise<{ map: MapJson; [k: string]: unknown }> {
  const res = await fetch(t.server.url.replace('ws://', 'http://') + path, { method });
  const body = (await res.json()) as { map: MapJson; error?: { code: string; message: string } };
  if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

const ownerOf = (map: MapJson, key: string): number => {
  let o = -1;
  for (const r of map.ranges) if (unhex(r.begin) <= key) o = r.owner;
  return o;
};

/** Every row of [begin, end), page after page (one read version). */
async function scanAll(tx: ReadTransaction, begin: string, end: string): Promise<KeyValue[]> {
  const out: KeyValue[] = [];
  const bytes = (k: string): Uint8Array => new Uint8Array(Buffer.from(k, 'latin1'));
  let from = bytes(begin);
  for (;;) {
    const page = await tx.getRange({ key: from, inclusive: true }, { key: bytes(end), inclusive: false }, { limit: 1000 });
    out.push(...page.kvs);
    if (!page.hasMore || page.kvs.length === 0) return out;
    from = new Uint8Array(keyAfter(page.kvs[page.kvs.length - 1]!.key));
  }
}

/** scanAll in a fresh read-only transaction, again when the machine was so slow that its read version left the window. */
async function scanFresh(t: TestServer, begin: string, end: string): Promise<KeyValue[]> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await scanAll(t.db.createReadOnlyTransaction(), begin, end);
    } catch (err) {
      if (!(err instanceof TxnError && err.code === 'TOO_OLD') || attempt >= 5) throw err;
    }
  }
}

const ACCOUNTS = 40;
const acct = (i: number): string => `acct/${String(i).padStart(3, '0')}`;

describe('online data distribution', () => {
  let t: TestServer;
  beforeAll(async () => {
    // ranges change only by hand here (the balancer would merge the cold splits of these tests)
    t = await startTestServer({ shards: 4, mvccWindowMs: 5000, distribution: { enabled: false } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('split adds a boundary and keeps every row where it was', async () => {
    await t.db.transact(async (tx) => {
      for (let i = 0; i < 10; i++) tx.set(`sp/${i}`, `v${i}`);
    });
    const before = await admin(t, '/v1/shard/map', 'GET');
    const { map } = await admin(t, `/v1/shard/split?key=${b64('sp/5')}`);
    expect(map.version).toBe(before.map.version + 1);
    expect(map.ranges.length).toBe(before.map.ranges.length + 1);
    expect(map.ranges.some((r) => unhex(r.begin) === 'sp/5')).toBe(true);
    const rows = await scanFresh(t, 'sp/', 'sp0');
    expect(rows.map((r) => text(r.value))).toEqual(Array.from({ length: 10 }, (_, i) => `v${i}`));
    // splitting at an existing boundary is a clear error
    await expect(admin(t, `/v1/shard/split?key=${b64('sp/5')}`)).rejects.toThrow(/INVALID_ARGUMENT/);
  });

  it('moves ranges between workers while transfers run: the bank total and the transfer log hold', { timeout: 120_000 }, async () => {
    await t.db.transact(async (tx) => {
      for (let i = 0; i < ACCOUNTS; i++) tx.set(acct(i), '100');
    });
    let stop = false;
    let done = 0;
    const worker = async (seed: number): Promise<void> => {
      let n = 0;
      while (!stop) {
        const a = (seed * 7 + n * 13) % ACCOUNTS;
        const b = (a + 1 + ((n * 5) % (ACCOUNTS - 1))) % ACCOUNTS;
        const id = `${seed}-${n++}`;
        await t.db.transact(async (tx) => {
          const va = Number(text(await tx.get(acct(a))));
          const vb = Number(text(await tx.get(acct(b))));
          tx.set(acct(a), String(va - 1));
          tx.set(acct(b), String(vb + 1));
          // the append check: one log row per acknowledged transfer, under the same prefix
          tx.set(`acct/log/${id}`, `${a}>${b}`);
        });
        done++;
      }
    };
    const workers = [1, 2, 3, 4].map((s) => worker(s));
    const readers = (async () => {
      // the total is the same at every read version, whatever moves
      while (!stop) {
        const rows = await scanFresh(t, 'acct/0', 'acct/1');
        expect(rows.length).toBe(ACCOUNTS);
        expect(rows.reduce((s, r) => s + Number(text(r.value)), 0)).toBe(ACCOUNTS * 100);
      }
    })();
    // cut the prefix into pieces and send them to every worker, some twice
    const cuts = ['acct/010', 'acct/020', 'acct/030', 'acct/log/'];
    for (const c of cuts) await admin(t, `/v1/shard/split?key=${b64(c)}`);
    const plan: [string, number][] = [
      ['acct/010', 1],
      ['acct/020', 2],
      ['acct/030', 3],
      ['acct/log/', 0],
      ['acct/010', 3],
    ];
    for (const [begin, to] of plan) {
      const cur = (await admin(t, '/v1/shard/map', 'GET')).map;
      const target = ownerOf(cur, begin) === to ? (to + 1) % 4 : to;
      // a range that moved lately waits for its old owner to let go (MVCC window)
      for (let tries = 0; ; tries++) {
        try {
          const r = await admin(t, `/v1/shard/move?begin=${b64(begin)}&to=${target}`);
          expect(ownerOf(r.map, begin)).toBe(target);
          break;
        } catch (err) {
          if (!/moved recently/.test(String(err)) || tries > 80) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    stop = true;
    await Promise.all([...workers, readers]);
    expect(done).toBeGreaterThan(20);
    // accounts and log at one read version (again if a slow machine let it leave the window)
    let accounts: KeyValue[] = [];
    let log: KeyValue[] = [];
    for (let attempt = 0; ; attempt++) {
      try {
        const r = t.db.createReadOnlyTransaction();
        accounts = await scanAll(r, 'acct/0', 'acct/1');
        log = await scanAll(r, 'acct/log/', 'acct/log0');
        break;
      } catch (err) {
        if (!(err instanceof TxnError && err.code === 'TOO_OLD') || attempt >= 5) throw err;
      }
    }
    expect(accounts.reduce((s, x) => s + Number(text(x.value)), 0)).toBe(ACCOUNTS * 100);
    // nothing lost, nothing duplicated: exactly one log row per acknowledged transfer
    expect(log.length).toBe(done);
    // and the balances are exactly what the log says
    const bal = Array.from({ length: ACCOUNTS }, () => 100);
    for (const row of log) {
      const [a, b] = text(row.value)!.split('>').map(Number);
      bal[a!]!--;
      bal[b!]!++;
    }
    expect(accounts.map((x) => Number(text(x.value)))).toEqual(bal);
    const status = await admin(t, '/v1/shard/map', 'GET');
    expect((status.history as { kind: string; outcome: string }[]).filter((e) => e.kind === 'move' && e.outcome === 'done').length).toBe(plan.length);
  });

  it('a scan at a read version older than a move returns exactly the old data', { timeout: 60_000 }, async () => {
    await t.db.transact(async (tx) => {
      for (let i = 0; i < 300; i++) tx.set(`old/${String(i).padStart(4, '0')}`, 'old');
    });
    await admin(t, `/v1/shard/split?key=${b64('old/0100')}`).catch(() => undefined);
    await admin(t, `/v1/shard/split?key=${b64('old/0200')}`).catch(() => undefined);
    const snap = t.db.createReadOnlyTransaction();
    const rv = await snap.getReadVersion();
    // a first page at the old version, before anything changes
    const first = (await snap.getRange({ key: 'old/', inclusive: true }, { key: 'old0', inclusive: false }, { limit: 50 })).kvs;
    expect(first.length).toBe(50);
    expect(first.every((r) => text(r.value) === 'old')).toBe(true);
    await t.db.transact(async (tx) => {
      for (let i = 0; i < 300; i++) tx.set(`old/${String(i).padStart(4, '0')}`, 'new');
      tx.set('old/0150x', 'inserted');
    });
    const map = (await admin(t, '/v1/shard/map', 'GET')).map;
    const owner = ownerOf(map, 'old/0100');
    const moving = admin(t, `/v1/shard/move?begin=${b64('old/0100')}&to=${(owner + 1) % 4}`);
    // scan at the old version while the range moves, and after it switched
    const scanOld = async (): Promise<void> => {
      const tx = t.db.createReadOnlyTransaction();
      tx.setReadVersion(rv);
      const rows = await scanAll(tx, 'old/', 'old0');
      expect(rows.length).toBe(300);
      expect(rows.every((r) => text(r.value) === 'old')).toBe(true);
    };
    await scanOld();
    await moving;
    await scanOld();
    // the latest version sees the new data from the new owner
    const now = await scanFresh(t, 'old/', 'old0');
    expect(now.length).toBe(301);
    expect(now.filter((r) => text(r.value) === 'new').length).toBe(300);
    // a transaction that read the range before the switch and writes after it conflicts (never commits on stale reads)
    const tx = t.db.createTransaction();
    tx.setReadVersion(rv);
    await tx.get('old/0150');
    tx.set('old/0150', 'late');
    const err = await tx.commit().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TxnError);
    expect(['CONFLICT', 'TOO_OLD']).toContain((err as TxnError).code);
  });

  it('a hot range moves away while one long scan at an older read version runs across it: the scan returns exactly the old data', { timeout: 60_000 }, async () => {
    const N = 1500; // two chunks of the move's copy
    const key = (i: number): string => `hot/${String(i).padStart(4, '0')}`;
    await t.db.transact(async (tx) => {
      for (let i = 0; i < N; i++) tx.set(key(i), `old-${i}-${'x'.repeat(80)}`);
    });
    await admin(t, `/v1/shard/split?key=${b64('hot/')}`).catch(() => undefined);
    await admin(t, `/v1/shard/split?key=${b64('hot0')}`).catch(() => undefined);
    // the scan's read version: before every write below
    const scan = t.db.createReadOnlyTransaction();
    const rv = await scan.getReadVersion();
    // hot: writers update, insert and clear keys of the range throughout
    let stop = false;
    let writes = 0;
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        await t.db.transact(async (tx) => {
          const k = (i * 37 + w * 401) % N;
          tx.set(key(k), `new-${w}-${i}`);
          tx.set(`${key(k)}+${w}`, 'inserted');
          if (i % 5 === 0) tx.clear(key((k + 7) % N));
          if (i % 11 === 0) tx.clearRange(key((k + 100) % N), key(((k + 100) % N) + 3));
        });
        writes++;
      }
    });
    const bytes = (k: string): Uint8Array => new Uint8Array(Buffer.from(k, 'latin1'));
    const rows: KeyValue[] = [];
    let from = bytes('hot/');
    const page = async (): Promise<boolean> => {
      const p = await scan.getRange({ key: from, inclusive: true }, { key: bytes('hot0'), inclusive: false }, { limit: 100 });
      rows.push(...p.kvs);
      if (!p.hasMore || p.kvs.length === 0) return false;
      from = new Uint8Array(keyAfter(p.kvs[p.kvs.length - 1]!.key));
      return true;
    };
    let moved = false;
    let pagesAfterSwitch = 0;
    try {
      // pages before the move, pages while it copies, pages after its switch: one scan
      for (let k = 0; k < 3; k++) await page();
      while (writes < 20) await new Promise((r) => setTimeout(r, 5));
      const map = (await admin(t, '/v1/shard/map', 'GET')).map;
      const from0 = ownerOf(map, 'hot/0000');
      const moving = admin(t, `/v1/shard/move?begin=${b64('hot/')}&to=${(from0 + 1) % 4}`).then((r) => {
        moved = true;
        return r;
      });
      let more = await page();
      const done = (await moving) as { map: MapJson };
      expect(ownerOf(done.map, 'hot/0000')).toBe((from0 + 1) % 4);
      expect(writes, 'writes ran during the move').toBeGreaterThan(20);
      while (more) {
        more = await page();
        if (moved) pagesAfterSwitch++;
      }
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    expect(pagesAfterSwitch, 'the scan went on after the switch').toBeGreaterThan(5);
    // exactly the old data: every row, in order, none of the writers' changes
    expect(rows.length).toBe(N);
    expect(rows.every((r, i) => Buffer.from(r.key).toString('latin1') === key(i) && text(r.value) === `old-${i}-${'x'.repeat(80)}`)).toBe(true);
    // one request over the whole range at the old version, after the switch (the old owner serves it)
    const whole = t.db.createReadOnlyTransaction();
    whole.setReadVersion(rv);
    const all = await whole.getRange({ key: 'hot/', inclusive: true }, { key: 'hot0', inclusive: false }, { limit: 10_000 });
    expect(all.kvs.length).toBe(N);
    expect(all.kvs.every((r, i) => text(r.value) === `old-${i}-${'x'.repeat(80)}`)).toBe(true);
    // and the newest version has the writers' rows (at the new owner)
    const now = await scanFresh(t, 'hot/', 'hot0');
    expect(now.some((r) => Buffer.from(r.key).toString('latin1').includes('+'))).toBe(true);
  });

  it('sets, clears and range clears during moves end exactly as a model says', { timeout: 150_000 }, async () => {
    const key = (i: number): string => `cr/${String(i).padStart(3, '0')}`;
    const model = new Map<string, string>();
    // enough rows that a copy takes many chunks, so commits land while it runs
    for (let c = 0; c < 4; c++) {
      await t.db.transact(async (tx) => {
        for (let j = c * 5000; j < (c + 1) * 5000; j++) {
          const k = `cr/pad/${String(j).padStart(5, '0')}`;
          tx.set(k, 'p');
          model.set(k, 'p');
        }
      });
    }
    let stop = false;
    let n = 0;
    const writer = (async () => {
      while (!stop) {
        const i = (n * 37) % 200;
        const op = n % 5;
        const tx = t.db.createTransaction();
        const changes: [string, string | null][] = [];
        if (op === 3) {
          // a range clear: a tombstone at the source, a DeleteRange at the target
          tx.clearRange(key(i), key(i + 15));
          for (let j = i; j < i + 15; j++) changes.push([key(j), null]);
        } else if (op === 4) {
          tx.clear(key(i));
          changes.push([key(i), null]);
        } else {
          for (let j = 0; j < 4; j++) {
            const k = key((i + j * 11) % 200);
            tx.set(k, `n${n}`);
            changes.push([k, `n${n}`]);
          }
        }
        await tx.commit();
        for (const [k, v] of changes) {
          if (v === null) model.delete(k);
          else model.set(k, v);
        }
        n++;
      }
    })();
    await admin(t, `/v1/shard/split?key=${b64('cr/')}`);
    await admin(t, `/v1/shard/split?key=${b64('cr0')}`);
    for (let m = 0; m < 4; m++) {
      const owner = ownerOf((await admin(t, '/v1/shard/map', 'GET')).map, 'cr/');
      for (let tries = 0; ; tries++) {
        try {
          await admin(t, `/v1/shard/move?begin=${b64('cr/')}&to=${(owner + 1 + m) % 4 === owner ? (owner + 2) % 4 : (owner + 1 + m) % 4}`);
          break;
        } catch (err) {
          if (!/moved recently/.test(String(err)) || tries > 80) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    }
    stop = true;
    await writer;
    expect(n).toBeGreaterThan(20);
    const rows = await scanFresh(t, 'cr/', 'cr0');
    expect(rows.map((r) => [Buffer.from(r.key).toString('latin1'), text(r.value)])).toEqual([...model].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
  });

  it('txkv shard split|move|map drive the same routes', { timeout: 60_000 }, async () => {
    const bin = path.resolve(__dirname, '../../bin/txkv.js');
    const cli = (...args: string[]) => run(process.execPath, [bin, 'shard', ...args, '--endpoint', t.server.url], { timeout: 30_000 });
    await t.db.transact(async (tx) => tx.set('cli/a', '1'));
    await cli('split', 'cli/');
    const map = (await admin(t, '/v1/shard/map', 'GET')).map;
    const to = (ownerOf(map, 'cli/') + 1) % 4;
    await cli('split', 'cli0');
    await cli('move', 'cli/', String(to));
    const out = (await cli('map')).stdout;
    expect(out).toContain(`[cli/, cli0)  worker ${to}`);
    expect(text(await t.db.createReadOnlyTransaction().get('cli/a'))).toBe('1');
    // /v1/status lists the ranges with their workers and the recent moves
    const status = (await (await fetch(t.server.url.replace('ws://', 'http://') + '/v1/status')).json()) as {
      distribution: { map: MapJson; moves: number; history: { kind: string }[] };
    };
    expect(ownerOf(status.distribution.map, 'cli/')).toBe(to);
    expect(status.distribution.moves).toBeGreaterThan(0);
    expect(status.distribution.history.some((e) => e.kind === 'move')).toBe(true);
    // /v1/status `workers`: one row per worker, each of its ranges with its size (the census)
    // and load (the balancer's rates, measured with the balancer off too)
    type RangeRow = { beginKey: string; keys: number | null; bytes: number | null; readsPerSec: number | null; writesPerSec: number | null };
    type WorkerRow = { worker: number; ranges: RangeRow[]; commits: number; estimatedBytes: number | null; opsPerSec: number | null };
    let rowOf: { workers: WorkerRow[]; shards: unknown[] } | null = null;
    let cliRange: RangeRow | undefined;
    for (const until = Date.now() + 30_000; Date.now() < until; await new Promise((r) => setTimeout(r, 250))) {
      rowOf = (await (await fetch(t.server.url.replace('ws://', 'http://') + '/v1/status')).json()) as { workers: WorkerRow[]; shards: unknown[] };
      cliRange = rowOf.workers[to]?.ranges.find((r) => r.beginKey === 'cli/');
      if (cliRange && cliRange.bytes !== null && cliRange.readsPerSec !== null) break;
    }
    expect(rowOf!.workers.map((w) => w.worker)).toEqual([0, 1, 2, 3]);
    expect(rowOf!.shards.length).toBe(status.distribution.map.ranges.length);
    expect(cliRange, JSON.stringify(rowOf!.workers[to])).toMatchObject({ keys: 1, bytes: 'cli/a'.length + 1 });
    expect(typeof cliRange!.readsPerSec).toBe('number');
    expect(typeof cliRange!.writesPerSec).toBe('number');
    expect(typeof rowOf!.workers[to]!.commits).toBe('number');
    // txkv status: each worker's ranges with size and load, and the recent events with reason and duration
    const st = (await run(process.execPath, [bin, 'status', '--endpoint', t.server.url], { timeout: 30_000 })).stdout;
    expect(st).toMatch(new RegExp(`^  ${to} .*\\[cli/, cli0\\)( \\(from \\d\\))? 6 B \\d+\\.\\dr/\\d+\\.\\dw/s`, 'm'));
    expect(st).toMatch(/^distribution: map version \d+; \d+ splits, \d+ merges, \d+ moves \(0 failed\)/m);
    // "(from N)" while the old owner still serves older reads (until the window passes the move)
    expect(st).toMatch(new RegExp(`^  ${to} .*\\[cli/, cli0\\)( \\(from ${ownerOf(map, 'cli/')}\\))?`, 'm'));
    expect(st).toMatch(/^    \S+ move \[cli\/, cli0\) \d -> \d, \d+ rows: done, \d+ ms, reason operator$/m);
    expect(st).toMatch(/^    \S+ split at cli0: done, \d+ ms, reason operator$/m);
    const bad = await cli('move', 'cli/', 'x').catch((e: { code: number; stderr: string }) => e);
    expect((bad as { code: number }).code).toBe(2);
  });

  it('Prometheus: txkv_distribution_* counts splits, merges and moves by reason, rows and bytes moved, moves in progress', { timeout: 60_000 }, async () => {
    const base = t.server.url.replace('ws://', 'http://');
    const scrape = async (): Promise<string> => (await fetch(`${base}/metrics`)).text();
    const metric = (body: string, name: string): number => {
      const line = body.split('\n').find((l) => l.startsWith(`${name} `));
      return line ? Number(line.slice(name.length + 1)) : 0;
    };
    const before = await scrape();
    await t.db.transact(async (tx) => {
      for (let i = 0; i < 50; i++) tx.set(`pm/${i}`, 'x'.repeat(100));
    });
    await admin(t, `/v1/shard/split?key=${b64('pm/')}`);
    await admin(t, `/v1/shard/split?key=${b64('pm0')}`);
    const map = (await admin(t, '/v1/shard/map', 'GET')).map;
    await admin(t, `/v1/shard/move?begin=${b64('pm/')}&to=${(ownerOf(map, 'pm/') + 1) % 4}`);
    const after = await scrape();
    for (const [name, type] of [
      ['txkv_distribution_moves_total', 'counter'],
      ['txkv_distribution_moves_in_progress', 'gauge'],
      ['txkv_distribution_bytes_moved_total', 'counter'],
      ['txkv_distribution_rows_moved_total', 'counter'],
      ['txkv_distribution_splits_total', 'counter'],
      ['txkv_distribution_merges_total', 'counter'],
      ['txkv_distribution_ranges', 'gauge'],
    ]) expect(after).toContain(`# TYPE ${name} ${type}\n`);
    expect(metric(after, 'txkv_distribution_splits_total{reason="operator"}') - metric(before, 'txkv_distribution_splits_total{reason="operator"}')).toBe(2);
    expect(metric(after, 'txkv_distribution_moves_total{reason="operator",outcome="done"}') - metric(before, 'txkv_distribution_moves_total{reason="operator",outcome="done"}')).toBe(1);
    expect(metric(after, 'txkv_distribution_rows_moved_total') - metric(before, 'txkv_distribution_rows_moved_total')).toBeGreaterThanOrEqual(50);
    expect(metric(after, 'txkv_distribution_bytes_moved_total') - metric(before, 'txkv_distribution_bytes_moved_total')).toBeGreaterThanOrEqual(50 * 100);
    expect(metric(after, 'txkv_distribution_moves_in_progress')).toBe(0);
    expect(metric(after, 'txkv_distribution_map_version')).toBeGreaterThan(metric(before, 'txkv_distribution_map_version'));
    expect(metric(after, 'txkv_distribution_move_seconds_total{reason="operator",outcome="done"}')).toBeGreaterThan(0);
  });
});
