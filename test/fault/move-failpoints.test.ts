// kill -9 at each step of a range move (coordinator/distribution.ts), restart without
// failpoints: nothing lost or duplicated, the map consistent, each row in exactly one
// column (the owner's). docs/distribution.md lists the crash cases.
import fs from 'node:fs';
import path from 'node:path';
import { RocksLevel } from '@nxtedition/rocksdb';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { connect, TxnError } from '../../src/index.js';
import type { KeyValue } from '../../src/client/transaction.js';
import { FAILPOINT_NAMES } from '../../src/failpoints/failpoints.js';
import { freePort, logEvent, spawnServer, killAllServers } from '../support/child-server.js';
import { startLoggedServer, tempDir, text } from '../support/server.js';

const dirs: string[] = [];
afterAll(() => {
  killAllServers();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64url');
const http = (port: number, p: string, method = 'POST'): Promise<Response> => fetch(`http://127.0.0.1:${port}${p}`, { method });
interface MapJson {
  version: number;
  ranges: { begin: string; end: string | null; owner: number; prev?: unknown }[];
}
const mapOf = async (port: number): Promise<MapJson> => ((await (await http(port, '/v1/shard/map', 'GET')).json()) as { map: MapJson }).map;
const rangeAt = (m: MapJson, begin: string) => m.ranges.find((r) => r.begin === Buffer.from(begin, 'latin1').toString('hex'))!;

const ROWS = 1500; // two chunks (1,000 rows each)
const key = (i: number): string => `mv/${String(i).padStart(5, '0')}`;

/** Rows of [mv/, mv0) in each shard column, read from the closed database. */
async function rowsPerColumn(dir: string): Promise<number[]> {
  const db = new RocksLevel(path.join(dir, 'rocksdb'));
  await db.open({ columns: { default: {}, s0: {}, s1: {}, s2: {}, s3: {} } });
  try {
    const out: number[] = [];
    for (let s = 0; s < 4; s++) {
      let n = 0;
      for await (const _ of db.keys({ column: db.columns[`s${s}`], gte: 'mv/', lt: 'mv0' })) n++;
      out.push(n);
    }
    return out;
  } finally {
    await db.close();
  }
}

const MOVE_POINTS = FAILPOINT_NAMES.filter((n) => n.startsWith('move.'));
/** Whether the range belongs to the target after recovery. */
const SWITCHED: Record<string, boolean> = {
  'move.after-start': false,
  'move.after-copy': false,
  'move.after-switch': true,
  'move.after-marker': true,
  'move.after-drop': true,
};

describe('kill -9 at each move failpoint', () => {
  it('every move failpoint has a case', () => {
    for (const n of MOVE_POINTS) expect(n in SWITCHED, `no case for ${n}`).toBe(true);
  });

  // 180 s: at load 19-22 (16:22-16:28, 2 cores) move.after-switch timed out at 90 s on main and here alike; a case takes ~8 s in CI
  it.each(MOVE_POINTS)('crash at %s: nothing lost or duplicated, map consistent', { timeout: 180_000 }, async (name) => {
    const dir = tempDir('txkv-movefp');
    dirs.push(dir);
    const port = await freePort();
    // armed from the start: the preload and the splits pass no move failpoint (countdown 1: the move below is the first)
    const srv = await spawnServer(dir, port, { failpoints: `${name}=1`, env: { TXKV_MVCC_WINDOW_MS: '1000', TXKV_DISTRIBUTION_ENABLED: 'false' } });
    let db = await connect({ endpoints: [srv.url] });
    for (let i = 0; i < ROWS; i += 500) {
      await db.transact(async (tx) => {
        for (let j = i; j < i + 500; j++) tx.set(key(j), `v${j}`);
      });
    }
    expect((await http(srv.port, `/v1/shard/split?key=${b64('mv/')}`)).status).toBe(200);
    expect((await http(srv.port, `/v1/shard/split?key=${b64('mv0')}`)).status).toBe(200);
    const before = await mapOf(srv.port);
    const from = rangeAt(before, 'mv/').owner;
    const to = (from + 1) % 4;
    // writes keep coming while the range moves (they must all survive, or not be acknowledged)
    let acked = 0;
    let stop = false;
    const writer = (async () => {
      for (let n = 0; !stop; n++) {
        const tx = db.createTransaction();
        tx.set(key(n % ROWS), `w${n}`);
        try {
          await tx.commit();
          acked = n + 1;
        } catch {
          return;
        }
      }
    })();
    while (acked < 20) await new Promise((r) => setTimeout(r, 10));
    await http(srv.port, `/v1/shard/move?begin=${b64('mv/')}&to=${to}`).catch(() => null);
    const exit = await srv.exited;
    stop = true;
    await writer;
    expect(exit.signal).toBe('SIGKILL');
    expect(srv.logs.join('\n')).toContain(`failpoint ${name} fired`);
    await db.close();

    // recovery in this process (startServer, as `txkv serve` runs it), same settings
    const back = await startLoggedServer({ dataDir: dir, mvccWindowMs: 1000, distribution: { enabled: false } });
    onTestFinished(() => back.server.close()); // also when an assertion below fails (close() is idempotent)
    expect(logEvent(back.logs, 'MoveRecovered') ?? logEvent(back.logs, 'RecoveryDone')).toBeTruthy();
    const after = await mapOf(back.server.port);
    expect(rangeAt(after, 'mv/').owner).toBe(SWITCHED[name] ? to : from);
    expect(after.ranges.every((r) => r.prev === undefined)).toBe(true);
    db = await connect({ endpoints: [back.server.url] });
    // one read version for every page; again from the start if the machine was so slow that
    // it left the 1 s window between two pages (TOO_OLD: the test's window, not a lost row)
    const scan = async (): Promise<KeyValue[]> => {
      const r = db.createReadOnlyTransaction();
      const out: KeyValue[] = [];
      let fromKey = 'mv/';
      for (;;) {
        const page = await r.getRange({ key: fromKey, inclusive: out.length === 0 }, { key: 'mv0', inclusive: false }, { limit: 1000 });
        out.push(...page.kvs);
        if (!page.hasMore) return out;
        fromKey = Buffer.from(page.kvs[page.kvs.length - 1]!.key).toString('latin1');
      }
    };
    let rows: KeyValue[] = [];
    for (let attempt = 0; ; attempt++) {
      try {
        rows = await scan();
        break;
      } catch (err) {
        if (!(err instanceof TxnError && err.code === 'TOO_OLD') || attempt >= 5) throw err;
      }
    }
    expect(rows.length).toBe(ROWS);
    // every acknowledged write is there (the last acknowledged one of each key wins; the one
    // write in flight at the crash, unacknowledged, may or may not have happened)
    const expected = Array.from({ length: ROWS }, (_, j) => `v${j}`);
    for (let n = 0; n < acked; n++) expected[n % ROWS] = `w${n}`;
    for (let j = 0; j < ROWS; j++) {
      const got = text(rows[j]!.value);
      if (j === acked % ROWS && got === `w${acked}`) continue;
      expect(got, `row ${j}`).toBe(expected[j]);
    }
    expect(acked).toBeGreaterThan(0);
    await db.close();
    await back.server.close();
    // each row in exactly one column: the owner's
    const cols = await rowsPerColumn(dir);
    expect(cols[rangeAt(after, 'mv/').owner]).toBe(ROWS);
    expect(cols.reduce((a, b) => a + b, 0)).toBe(ROWS);
  });
});
