// Anomalies a serializable database must refuse, and MVCC snapshot reads
// at old versions. Real server, four shards split at b, c, d ("a…" on shard 0, "b…" on 1,
// "c…" on 2, "d…" on 3), the balancer off so keys stay where the test put them.
import fs from 'node:fs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, startServer, TxnError, type Database } from '../../src/index.js';
import { startTestServer, tempDir, text, type TestServer } from '../support/server.js';

const sel = (key: string | Uint8Array, inclusive = true): { key: string | Uint8Array; inclusive: boolean } => ({ key, inclusive });

async function codeOf(p: Promise<unknown>): Promise<string | null> {
  try {
    await p;
    return null;
  } catch (e) {
    if (!(e instanceof TxnError)) throw e;
    return e.code;
  }
}

const rows = (r: { kvs: { key: Uint8Array; value: Uint8Array }[] }): string[] => r.kvs.map((kv) => `${text(kv.key)}=${text(kv.value)}`);

describe('serializability across shards', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ splitPoints: ['b', 'c', 'd'], durability: 'buffered', distribution: { enabled: false } });
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it('write skew across shards: each reads both doctors, takes its own off call; the second commit is refused', { timeout: 30_000 }, async () => {
    await s.db.transact(async (tx) => {
      tx.set('a/oncall', '1');
      tx.set('b/oncall', '1');
    });
    const t1 = s.db.createTransaction();
    const t2 = s.db.createTransaction();
    for (const t of [t1, t2]) {
      expect(text(await t.get('a/oncall'))).toBe('1');
      expect(text(await t.get('b/oncall'))).toBe('1');
    }
    t1.set('a/oncall', '0'); // writes shard 0 only, read shard 1
    t2.set('b/oncall', '0'); // writes shard 1 only, read shard 0
    await t1.commit();
    expect(await codeOf(t2.commit())).toBe('CONFLICT');
    const r = s.db.createTransaction();
    expect([text(await r.get('a/oncall')), text(await r.get('b/oncall'))]).toEqual(['0', '1']);
  });

  it('phantom: a range read over three shards vs an insert on a shard the reader never writes', { timeout: 30_000 }, async () => {
    const t = s.db.createTransaction();
    const seen = await t.getRange(sel('a/p/'), sel('d/p/'));
    t.set('a/p/count', String(seen.kvs.length));
    await s.db.transact(async (o) => o.set('c/p/new', 'x'));
    expect(await codeOf(t.commit())).toBe('CONFLICT');
  });

  it('a range read vs a clearRange on another shard (the rows it saw vanish)', { timeout: 30_000 }, async () => {
    await s.db.transact(async (o) => {
      for (let i = 0; i < 5; i++) o.set(`c/q/${i}`, 'v');
    });
    const t = s.db.createTransaction();
    expect((await t.getRange(sel('c/q/'), sel('c/q0'))).kvs.length).toBe(5);
    t.set('a/q/total', '5');
    await s.db.transact(async (o) => o.clearRange('c/q/2', 'c/q/4'));
    expect(await codeOf(t.commit())).toBe('CONFLICT');
  });

  it('a point read of a key another transaction then clears by range (spanning two shards)', { timeout: 30_000 }, async () => {
    await s.db.transact(async (o) => o.set('b/r/k', 'v'));
    const t = s.db.createTransaction();
    expect(text(await t.get('b/r/k'))).toBe('v');
    t.set('d/r/out', 'from-v');
    await s.db.transact(async (o) => o.clearRange('a/zz', 'c/zz'));
    expect(await codeOf(t.commit())).toBe('CONFLICT');
  });

  it('a range read vs a versionstamped key written into it on another shard', { timeout: 30_000 }, async () => {
    const t = s.db.createTransaction();
    expect((await t.getRange(sel('c/vs/'), sel('c/vs0'))).kvs.length).toBe(0);
    t.set('a/vs/seen', 'none');
    await s.db.transact(async (o) => o.setVersionstampedKey(Buffer.concat([Buffer.from('c/vs/'), Buffer.alloc(10), Buffer.from([0, 0, 0, 0])]), 5, 'x'));
    expect(await codeOf(t.commit())).toBe('CONFLICT');
  });

  it('an explicit read-conflict range on a shard the transaction never touched', { timeout: 30_000 }, async () => {
    const t = s.db.createTransaction();
    await t.getReadVersion();
    t.addReadConflictRange('d/lock/', 'd/lock0');
    t.set('a/lock/holder', 'me');
    await s.db.transact(async (o) => o.set('d/lock/x', '1'));
    expect(await codeOf(t.commit())).toBe('CONFLICT');
  });

  it('an atomic add is a write: a reader of the counter on another shard conflicts', { timeout: 30_000 }, async () => {
    const one = Buffer.alloc(8);
    one.writeBigInt64LE(1n);
    await s.db.transact(async (o) => o.set('c/ctr', Buffer.alloc(8)));
    const t = s.db.createTransaction();
    await t.get('c/ctr');
    t.set('a/ctr/copy', 'x');
    await s.db.transact(async (o) => o.add('c/ctr', one));
    expect(await codeOf(t.commit())).toBe('CONFLICT');
  });

  it('a limit over rows on four shards, checked by range reads, inserts on one shard: never exceeded under concurrency', { timeout: 60_000 }, async () => {
    const LIMIT = 5;
    const prefixes = ['a', 'b', 'c', 'd'];
    let committed = 0;
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; i < 8; i++) {
        const t = s.db.createTransaction();
        let n = 0;
        for (const p of prefixes) n += (await t.getRange(sel(`${p}/slot/`), sel(`${p}/slot0`, false))).kvs.length;
        if (n >= LIMIT) return;
        t.set(`${prefixes[(w + i) % 4]}/slot/${w}-${i}`, 'taken');
        const c = await codeOf(t.commit());
        if (c === null) committed++;
        else expect(c).toBe('CONFLICT');
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
    const r = s.db.createTransaction();
    let total = 0;
    for (const p of prefixes) total += (await r.getRange(sel(`${p}/slot/`), sel(`${p}/slot0`, false))).kvs.length;
    expect(total).toBe(committed);
    expect(total).toBe(LIMIT);
  });

  it('concurrent transfers across four shards keep the total (no lost update, no write skew)', { timeout: 60_000 }, async () => {
    const accts = ['a/acct', 'b/acct', 'c/acct', 'd/acct'];
    await s.db.transact(async (o) => {
      for (const k of accts) o.set(k, '100');
    });
    let refused = 0;
    const worker = async (seed: number): Promise<void> => {
      for (let i = 0; i < 25; i++) {
        const from = accts[(seed + i) % 4]!;
        const to = accts[(seed * 3 + i + 1) % 4]!;
        if (from === to) continue;
        const t = s.db.createTransaction();
        const a = Number(text(await t.get(from)));
        const b = Number(text(await t.get(to)));
        t.set(from, String(a - 1));
        t.set(to, String(b + 1));
        const c = await codeOf(t.commit());
        if (c === 'CONFLICT') refused++;
        else expect(c).toBeNull();
      }
    };
    await Promise.all([0, 1, 2, 3, 4, 5].map(worker));
    const r = s.db.createTransaction();
    let total = 0;
    for (const k of accts) total += Number(text(await r.get(k)));
    expect(total).toBe(400);
    expect(refused).toBeGreaterThan(0);
  });
});

describe('MVCC snapshot reads at an old version', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ splitPoints: ['b', 'c', 'd'], durability: 'buffered', distribution: { enabled: false }, mvccWindowMs: 60_000 });
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it('after many overwrites and a clear of the range, an old read version still sees the old rows', { timeout: 60_000 }, async () => {
    await s.db.transact(async (o) => {
      for (let i = 0; i < 20; i++) o.set(`b/m/${String(i).padStart(2, '0')}`, `v0-${i}`);
    });
    const old = await s.db.createTransaction().getReadVersion();
    for (let round = 1; round <= 30; round++) {
      await s.db.transact(async (o) => {
        for (let i = 0; i < 20; i += round % 3 === 0 ? 1 : 2) o.set(`b/m/${String(i).padStart(2, '0')}`, `v${round}-${i}`);
      });
    }
    const mid = await s.db.createTransaction().getReadVersion();
    await s.db.transact(async (o) => o.clearRange('b/m/', 'b/m0'));
    await s.db.transact(async (o) => o.set('b/m/05', 'after-clear'));
    const at = (v: bigint) => {
      const t = s.db.createTransaction();
      t.setReadVersion(v);
      return t;
    };
    const expectOld = Array.from({ length: 20 }, (_, i) => `b/m/${String(i).padStart(2, '0')}=v0-${i}`);
    expect(rows(await at(old).getRange(sel('b/m/'), sel('b/m0')))).toEqual(expectOld);
    expect(rows(await at(old).getRange(sel('b/m/'), sel('b/m0'), { reverse: true }))).toEqual([...expectOld].reverse());
    expect(text(await at(old).get('b/m/05'))).toBe('v0-5');
    expect(text(await at(old).get('b/m/06'))).toBe('v0-6');
    expect(text(await at(mid).get('b/m/05'))).toBe('v30-5');
    expect(rows(await at(mid).getRange(sel('b/m/'), sel('b/m0'))).length).toBe(20);
    const now = s.db.createTransaction();
    expect(rows(await now.getRange(sel('b/m/'), sel('b/m0')))).toEqual(['b/m/05=after-clear']);
    expect(text(await now.get('b/m/06'))).toBeNull();
  });

  it('a transaction at a read version older than the server: TOO_OLD, never the current value', { timeout: 60_000 }, async () => {
    const t = s.db.createTransaction();
    t.setReadVersion(1n);
    expect(await codeOf(t.get('b/m/05'))).toBe('TOO_OLD');
  });
});

describe('an old read version after a restart', () => {
  it('reads at a read version from before the restart: the old value or TOO_OLD; a commit that read a key overwritten since: never committed', { timeout: 90_000 }, async () => {
    const dataDir = tempDir('txkv-old-read-restart');
    const logger = pino({ level: 'warn' });
    const cfg = { port: 0, dataDir, splitPoints: ['b', 'c', 'd'], durability: 'fsync' as const, distribution: { enabled: false }, mvccWindowMs: 60_000 };
    let srv = await startServer(cfg, { logger });
    let db: Database = await connect({ endpoints: [srv.url] });
    try {
      await db.transact(async (o) => o.set('b/restart', 'before'));
      const rv = await db.createTransaction().getReadVersion();
      await db.transact(async (o) => o.set('b/restart', 'after'));
      await db.close();
      await srv.close();
      srv = await startServer(cfg, { logger });
      db = await connect({ endpoints: [srv.url] });
      const r = db.createTransaction();
      r.setReadVersion(rv);
      const got = await r.get('b/restart').then(
        (v) => text(v),
        (e: unknown) => (e instanceof TxnError ? e.code : 'other'),
      );
      expect(['before', 'TOO_OLD']).toContain(got);
      // a transaction at that version that read b/restart (now overwritten) must not commit
      const t = db.createTransaction();
      t.setReadVersion(rv);
      t.addReadConflictKey('b/restart');
      t.set('a/restart/copy', 'before');
      expect(['TOO_OLD', 'CONFLICT']).toContain(await codeOf(t.commit()));
      expect(text(await db.createTransaction().get('a/restart/copy'))).toBeNull();
      // a fresh transaction right after the restart commits (no TOO_OLD at the resolver's start)
      const f = db.createTransaction();
      expect(text(await f.get('b/restart'))).toBe('after');
      f.set('a/restart/fresh', '1');
      await f.commit();
    } finally {
      await db.close();
      await srv.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('a read of a range that moves, then a write on its new owner', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ splitPoints: ['b', 'c', 'd'], durability: 'buffered', distribution: { enabled: false } });
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });
  const admin = async (route: string, method = 'POST'): Promise<{ map: { ranges: { begin: string; owner: number }[] } }> => {
    const res = await fetch(s.server.url.replace('ws://', 'http://') + route, { method });
    const body = (await res.json()) as { map: { ranges: { begin: string; owner: number }[] } };
    if (!res.ok) throw new Error(`${route}: ${res.status} ${JSON.stringify(body)}`);
    return body;
  };
  const b64 = (k: string): string => Buffer.from(k, 'latin1').toString('base64url');

  it('the reader (writing another shard) is refused: the conflict history does not move with the range', { timeout: 60_000 }, async () => {
    await s.db.transact(async (o) => {
      for (let i = 0; i < 50; i++) o.set(`b/mv/${String(i).padStart(2, '0')}`, 'v0');
    });
    await admin(`/v1/shard/split?key=${b64('b/mv/')}`);
    const t = s.db.createTransaction();
    expect(text(await t.get('b/mv/10'))).toBe('v0');
    expect((await t.getRange(sel('b/mv/20'), sel('b/mv/30', false))).kvs.length).toBe(10);
    t.set('d/mv/sum', 'seen');
    const u = s.db.createTransaction();
    expect(text(await u.get('b/mv/40'))).toBe('v0');
    u.set('a/mv/other', 'seen');
    await admin(`/v1/shard/move?begin=${b64('b/mv/')}&to=3`);
    const map = (await admin('/v1/shard/map', 'GET')).map;
    expect(map.ranges.find((r) => Buffer.from(r.begin, 'hex').toString('latin1') === 'b/mv/')?.owner).toBe(3);
    // after the switch, on the new owner: a point write and a range clear inside what t read
    await s.db.transact(async (o) => o.set('b/mv/10', 'v1'));
    await s.db.transact(async (o) => o.clearRange('b/mv/25', 'b/mv/26'));
    expect(await codeOf(t.commit())).toBe('CONFLICT');
    // u read a key nobody wrote since: it commits (no false refusal because of the move)
    await u.commit();
    expect(text(await s.db.createTransaction().get('d/mv/sum'))).toBeNull();
  });
});
