// Issue 10: inputs that real users hit, each with the value FoundationDB defines as
// correct, against a real 4-shard server (RocksDB, worker threads, uWS).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, startServer, TxnError, type Transaction } from '../../src/index.js';
import { startTestServer, text, type TestServer } from '../support/server.js';

let s: TestServer;

beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s?.close();
});

/** Resolves to the TxnError a call throws (sync or async), or fails the test. */
async function errorOf(f: () => unknown): Promise<TxnError> {
  try {
    await f();
  } catch (e) {
    expect(e).toBeInstanceOf(TxnError);
    return e as TxnError;
  }
  throw new Error('expected a TxnError, but the call succeeded');
}

const sel = (key: string | Uint8Array, inclusive = true): { key: string | Uint8Array; inclusive: boolean } => ({ key, inclusive });

describe('item 1: setReadVersion after reads', () => {
  it('setReadVersion after a get fails INVALID_ARGUMENT, and the concurrent write is not lost', async () => {
    await s.db.transact(async (tx) => tx.set('bal', '100'));
    const a = s.db.createTransaction();
    expect(text(await a.get('bal'))).toBe('100');
    await s.db.transact(async (tx) => tx.set('bal', '50'));
    const fresh = await s.db.createTransaction().getReadVersion();
    const e = await errorOf(() => a.setReadVersion(fresh));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(/setReadVersion after/);
    a.set('bal', '110');
    expect((await errorOf(() => a.commit())).code).toBe('CONFLICT');
    expect(text(await s.db.createTransaction().get('bal'))).toBe('50');
  });

  it('after getReadVersion, snapshotGet or a range read; twice; v <= 0: INVALID_ARGUMENT; reset() allows it again', async () => {
    const v = await s.db.createTransaction().getReadVersion();
    const reads: ((tx: Transaction) => Promise<unknown>)[] = [
      (tx) => tx.getReadVersion(),
      (tx) => tx.snapshotGet('bal'),
      (tx) => tx.getRange(sel('a'), sel('z')),
      (tx) => tx.snapshotGetRange(sel('a'), sel('z'), { reverse: true }),
    ];
    for (const read of reads) {
      const tx = s.db.createTransaction();
      await read(tx);
      expect((await errorOf(() => tx.setReadVersion(v))).code).toBe('INVALID_ARGUMENT');
      tx.reset();
      tx.setReadVersion(v);
      expect(text(await tx.get('bal'))).toBe('50');
    }
    const tx = s.db.createTransaction();
    tx.setReadVersion(v);
    expect((await errorOf(() => tx.setReadVersion(v))).message).toMatch(/already set/);
    for (const bad of [0n, -1n]) expect((await errorOf(() => s.db.createTransaction().setReadVersion(bad))).code).toBe('INVALID_ARGUMENT');
    expect((await errorOf(() => s.db.createTransaction().setReadVersion(5 as unknown as bigint))).message).toMatch(/bigint/);
  });
});

describe('reset() begins a new transaction', () => {
  it('getVersionstamp() before reset() settles (CANCELED), and a commit in flight at reset() gives its version and stamp to no one but its own promises', async () => {
    const settled = (p: Promise<unknown>): Promise<string> =>
      Promise.race([
        p.then(
          () => 'resolved',
          (e: TxnError) => `rejected ${e.code}`,
        ),
        new Promise<string>((r) => setTimeout(() => r('pending'), 200)),
      ]);
    // no commit: the stamp waited for ever
    const a = s.db.createTransaction();
    a.set('reset/a', '1');
    const stampA = a.getVersionstamp();
    a.reset();
    expect(await settled(stampA)).toBe('rejected CANCELED');
    // a commit in flight: it completes for the promises taken before the reset; the fresh
    // transaction took its version and its versionstamp
    const b = s.db.createTransaction();
    b.set('reset/b', '1');
    const stampB = b.getVersionstamp();
    const commitB = b.commit();
    b.reset();
    const stampFresh = b.getVersionstamp();
    await commitB;
    expect(await settled(stampB)).toBe('resolved');
    expect(b.getCommittedVersion()).toBe(-1n);
    expect(await settled(stampFresh)).toBe('pending');
    b.set('reset/b2', '2');
    await b.commit();
    const v = await stampFresh;
    expect(BigInt('0x' + Buffer.from(v.subarray(0, 8)).toString('hex'))).toBe(b.getCommittedVersion());
    expect(Buffer.from(v).equals(Buffer.from(await stampB))).toBe(false);
  });

  it('a range read in flight at reset() guards the transaction that asked, not the fresh one', async () => {
    const t = s.db.createTransaction();
    const pending = t.getRange({ key: 'rr/', inclusive: true }, { key: 'rr0', inclusive: false });
    t.reset();
    await pending;
    await t.getReadVersion();
    await s.db.transact(async (tx) => tx.set('rr/1', 'other'));
    t.set('rr-own', '1');
    await t.commit(); // failed CONFLICT: the old read's range was added to the fresh transaction
    expect(t.getCommittedVersion()).toBeGreaterThan(0n);
  });
});

describe('item 2: inverted ranges', () => {
  it("addReadConflictRange('b','a') and clearRange('b','a') fail INVALID_ARGUMENT at the call; begin == end is a legal empty range", async () => {
    await s.db.transact(async (tx) => tx.set('inv/a', 'x'));
    const tx = s.db.createTransaction();
    const e1 = await errorOf(() => tx.addReadConflictRange('b', 'a'));
    expect(e1.code).toBe('INVALID_ARGUMENT');
    expect(e1.message).toMatch(/inverted/);
    expect((await errorOf(() => tx.clearRange('b', 'a'))).code).toBe('INVALID_ARGUMENT');
    tx.addReadConflictRange('inv/a', 'inv/a');
    tx.clearRange('inv/a', 'inv/a');
    tx.set('inv/done', '1');
    await tx.commit();
    expect(text(await s.db.createTransaction().get('inv/a'))).toBe('x');
  });

  it('the guarding conflict range, given the right way round, makes the commit conflict', async () => {
    const a = s.db.createTransaction();
    await a.getReadVersion();
    a.addReadConflictRange('inv/', 'inv0');
    await s.db.transact(async (tx) => tx.set('inv/b', 'concurrent'));
    a.set('inv/guarded', '1');
    expect((await errorOf(() => a.commit())).code).toBe('CONFLICT');
  });

  it('getRange with begin after end returns no rows, forward and reverse, on the client and the server', async () => {
    const tx = s.db.createTransaction();
    expect((await tx.getRange(sel('inv/b'), sel('inv/a'))).kvs).toEqual([]);
    expect((await tx.getRange(sel('inv/b'), sel('inv/a', true), { reverse: true })).kvs).toEqual([]);
    expect((await tx.getRange(sel('inv/a', false), sel('inv/a', false))).kvs).toEqual([]);
  });
});

describe('item 3: a pending versionstamped value is unreadable', () => {
  it("getRange('' .. 'b') over it fails INVALID_ARGUMENT (accessed unreadable), forward and reverse, snapshot or not", async () => {
    await s.db.transact(async (tx) => tx.set('a', 'old'));
    const tx = s.db.createTransaction();
    tx.setVersionstampedValue('a', new Uint8Array(10), 0);
    for (const read of [
      () => tx.getRange(sel(''), sel('b', false)),
      () => tx.getRange(sel(''), sel('b', false), { reverse: true }),
      () => tx.snapshotGetRange(sel(''), sel('b', false)),
      () => tx.snapshotGetRange(sel('a'), sel('a', true), { reverse: true, limit: 1 }),
      () => tx.get('a'),
      () => tx.snapshotGet('a'),
    ]) {
      const e = await errorOf(read);
      expect(e.code).toBe('INVALID_ARGUMENT');
      expect(e.message).toMatch(/accessed unreadable/);
    }
    // a read that stops before the key is fine
    await s.db.transact(async (t) => t.set('a0', 'after'));
    const tx2 = s.db.createTransaction();
    tx2.setVersionstampedValue('a', new Uint8Array(10), 0);
    const r = await tx2.getRange(sel('a'), sel('b', false), { reverse: true, limit: 1 });
    expect(r.kvs.map((kv) => text(kv.key))).toEqual(['a0']);
    expect(r.hasMore).toBe(true);
    // a later set makes it readable again
    tx2.set('a', 'mine');
    expect(text(await tx2.get('a'))).toBe('mine');
  });
});

describe('item 4: mutations apply in call order', () => {
  it("setVersionstampedKey('log/' + placeholder) then clearRange('log/', 'log0') leaves nothing", async () => {
    const tx = s.db.createTransaction();
    const key = new Uint8Array([...Buffer.from('log/'), ...new Uint8Array(10)]);
    tx.setVersionstampedKey(key, 4, 'v');
    tx.clearRange('log/', 'log0');
    await tx.commit();
    expect((await s.db.createTransaction().getRange(sel('log/'), sel('log0', false))).kvs).toEqual([]);
  });

  it('clearRange then setVersionstampedKey keeps the key; set, clear, set on one key keeps the last', async () => {
    const tx = s.db.createTransaction();
    tx.clearRange('log/', 'log0');
    tx.setVersionstampedKey(new Uint8Array([...Buffer.from('log/'), ...new Uint8Array(10)]), 4, 'v');
    tx.set('ord/k', '1');
    tx.clear('ord/k');
    tx.set('ord/k', '2');
    await tx.commit();
    const stamp = await tx.getVersionstamp();
    const rows = (await s.db.createTransaction().getRange(sel('log/'), sel('log0', false))).kvs;
    expect(rows.map((kv) => Buffer.from(kv.key.subarray(4)).toString('hex'))).toEqual([Buffer.from(stamp).toString('hex')]);
    expect(text(await s.db.createTransaction().get('ord/k'))).toBe('2');
  });
});

describe('the transaction size limit counts read conflicts', () => {
  it('1,100 read-conflict keys of 9,990 bytes (22 MB): TRANSACTION_TOO_LARGE at commit, not a frame that closes the connection (MAYBE_COMMITTED)', async () => {
    const tx = s.db.createTransaction();
    for (let i = 0; i < 1100; i++) tx.addReadConflictKey(String(i).padEnd(9990, 'p'));
    tx.set('rc-big', 'v');
    const e = await errorOf(() => tx.commit());
    expect(e.code).toBe('TRANSACTION_TOO_LARGE');
    expect(e.message).toMatch(/1100 read-conflict ranges/);
    // nothing was written, and the connections the next transactions use are still open
    const check = s.db.createTransaction();
    expect(await check.get('rc-big')).toBeNull();
    await s.db.transact(async (t) => t.set('rc-after', 'ok'));
  });
});

describe('transact() retries', () => {
  it('UNAVAILABLE for 3 s (a leader failover takes 2-2.5 s) is outlasted by the default 10 retries', { timeout: 20_000 }, async () => {
    // the error a replica answers while the cluster has no leader; the full jitter from 5 ms
    // spent the 10 retries in ~1.6 s (at most 3.3 s), and writers failed during a failover
    const t0 = Date.now();
    let attempts = 0;
    await s.db.transact(async (tx) => {
      attempts++;
      if (Date.now() - t0 < 3000) throw new TxnError('UNAVAILABLE', 'no leader (simulated election)');
      tx.set('after-election', 'ok');
    });
    expect(attempts).toBeLessThanOrEqual(11);
    expect(text(await s.db.createTransaction().get('after-election'))).toBe('ok');
  });
});

describe('item 5: selectors on a maximum-size key', () => {
  let e: TestServer;
  beforeAll(async () => {
    e = await startTestServer(); // an empty database, as in the issue
  });
  afterAll(async () => {
    await e?.close();
  });

  it('{k, inclusive:false} as begin and {k, inclusive:true} as end work for a 10,000-byte k; paging past it too', async () => {
    const k = 'a'.repeat(10_000);
    const tx = e.db.createTransaction();
    expect((await tx.getRange(sel(k, false), sel('z', false))).kvs).toEqual([]);
    expect((await tx.getRange(sel(''), sel(k, true))).kvs).toEqual([]);
    expect((await tx.getRange(sel(''), sel(k, true), { reverse: true })).kvs).toEqual([]);
    await tx.commit();
    const k2 = 'a'.repeat(9_999) + 'b';
    await e.db.transact(async (t) => {
      t.set(k, '1');
      t.set(k2, '2');
    });
    // 3FS's paging: {lastKey, inclusive: false}, in a read-write transaction that commits
    const keys: string[] = [];
    await e.db.transact(async (t) => {
      keys.length = 0;
      let begin = sel('', true);
      for (;;) {
        const page = await t.getRange(begin, sel('z', false), { limit: 1 });
        for (const kv of page.kvs) keys.push(text(kv.value)!);
        if (!page.hasMore) break;
        begin = sel(page.kvs[page.kvs.length - 1]!.key, false);
      }
      expect(text(await t.get(k))).toBe('1');
      t.set('done', '1');
    });
    expect(keys).toEqual(['1', '2']);
    const r = await e.db.createTransaction().getRange(sel(k), sel(k, true));
    expect(r.kvs.map((kv) => text(kv.value))).toEqual(['1']);
    const rev = await e.db.createTransaction().getRange(sel(k, false), sel(k2, true), { reverse: true });
    expect(rev.kvs.map((kv) => text(kv.value))).toEqual(['2']);
    // a key over the limit is still refused, as given
    expect((await errorOf(() => e.db.createTransaction().getRange(sel('a'.repeat(10_001), false), sel('z')))).code).toBe('KEY_TOO_LARGE');
  });
});

describe('item 6: reading past buffered clears', () => {
  it('9,999 committed keys cleared in the transaction: getRange limit 1 costs a constant number of server requests', { timeout: 60_000 }, async () => {
    for (let b = 0; b < 9_999; b += 2_000) {
      await s.db.transact(async (tx) => {
        for (let i = b; i < Math.min(b + 2_000, 9_999); i++) tx.set(`m/${String(i).padStart(4, '0')}`, 'v');
      });
    }
    const status = async (): Promise<number> => {
      const r = (await (await fetch(`${s.server.url.replace('ws', 'http')}/v1/status`)).json()) as { transactions: { ranges: number } };
      return r.transactions.ranges;
    };
    for (const [cb, ce] of [
      ['m/', 'm0'],
      ['m/0000', 'm/9998'], // the last key survives
      ['m/0001', 'm/9999'], // the first key survives
    ] as const) {
      const tx = s.db.createTransaction();
      tx.clearRange(cb, ce);
      const before = await status();
      const started = performance.now();
      const fwd = await tx.getRange(sel('m/'), sel('m0', false), { limit: 1 });
      const rev = await tx.getRange(sel('m/'), sel('m0', false), { limit: 1, reverse: true });
      const ms = performance.now() - started;
      const requests = (await status()) - before;
      const expected = { 'm/': [], 'm/0000': ['m/9998'], 'm/0001': ['m/0000'] }[cb];
      expect(fwd.kvs.map((kv) => text(kv.key))).toEqual(expected);
      expect(rev.kvs.map((kv) => text(kv.key))).toEqual(expected);
      console.log(`item 6: clearRange(${cb}, ${ce}) then getRange limit 1 forward + reverse: ${requests} server range requests, ${Math.round(ms)} ms`);
      expect(requests).toBeLessThanOrEqual(6);
      expect(ms).toBeLessThan(1000);
    }
  });
});

describe('item 10: every bad argument is a TxnError INVALID_ARGUMENT that says what was wrong', () => {
  it('tx.get(42)', async () => {
    const e = await errorOf(() => s.db.createTransaction().get(42 as unknown as string));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(/key must be a string or Uint8Array, got number 42/);
  });

  it("connect({ endpoints: ['127.0.0.1:7070'] })", async () => {
    const e = await errorOf(() => connect({ endpoints: ['127.0.0.1:7070'] }));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(/not a ws:\/\/ or wss:\/\/ URL; write it as ws:\/\/127\.0\.0\.1:7070/);
  });

  it('every other argument of the public API', async () => {
    const tx = s.db.createTransaction();
    const bad: [() => unknown, RegExp][] = [
      [() => tx.set('k', 5 as unknown as string), /value must be .* got number 5/],
      [() => tx.set(null as unknown as string, 'v'), /key must be .* got null/],
      [() => tx.clear({} as unknown as string), /key must be/],
      [() => tx.clearRange('a', 7 as unknown as string), /end must be/],
      [() => tx.addReadConflictRange(undefined as unknown as string, 'b'), /begin must be/],
      [() => tx.addReadConflictKey([1] as unknown as string), /key must be .* an array/],
      [() => tx.setVersionstampedKey('0123456789', 'x' as unknown as number, 'v'), /offset/],
      [() => tx.setVersionstampedValue('k', 3 as unknown as string, 0), /value must be/],
      [() => tx.snapshotGet(1n as unknown as string), /key must be .* bigint/],
      [() => tx.getRange(sel('a'), { key: 'b' } as unknown as { key: string; inclusive: boolean }), /end selector inclusive/],
      [() => tx.getRange(sel(3 as unknown as string), sel('b')), /begin selector key/],
      [() => tx.getRange(sel('a'), sel('b'), { limit: '10' as unknown as number }), /limit must be/],
      [() => tx.getRange(sel('a'), sel('b'), { reverse: 1 as unknown as boolean }), /reverse must be a boolean/],
      [() => tx.getRange(sel('a'), sel('b'), 5 as unknown as object), /range options/],
      [() => s.db.transact('nope' as unknown as () => Promise<void>), /transact\(\) needs a function/],
      [() => connect(undefined as unknown as { endpoints: string[] }), /options object/],
      [() => connect({ endpoints: [] }), /non-empty array/],
      [() => connect({ endpoints: 'ws://127.0.0.1:1' as unknown as string[] }), /non-empty array/],
      [() => connect({ endpoints: ['http://127.0.0.1:7070'] }), /not a ws/],
      [() => connect({ endpoints: ['ws://127.0.0.1:99999'] }), /port 99999 is out of range \(1 to 65535\)/],
      [() => connect({ endpoints: ['ws://127.0.0.1:0'] }), /port 0 is out of range/],
      [() => connect({ endpoints: ['ws://[::1]:70000/'] }), /port 70000 is out of range/],
      [() => connect({ endpoints: [s.server.url], connectionPoolSize: 0 }), /connectionPoolSize must be an integer from 1 to 64/],
      [() => connect({ endpoints: [s.server.url], transactionTimeoutMs: -1 }), /transactionTimeoutMs/],
      [() => connect({ endpoints: [s.server.url], maxRetryCount: 1.5 }), /maxRetryCount/],
      [() => connect({ endpoints: [s.server.url], token: 5 as unknown as string }), /token must be a string/],
      [() => startServer({ port: 'x' as unknown as number }), /port must be an integer/],
      [() => startServer({ dataDir: 5 as unknown as string }), /dataDir must be/],
      [() => startServer({ shardz: 4 } as unknown as { shards: number }), /unknown server setting "shardz"/],
      [() => startServer(7 as unknown as { shards: number }), /server settings must be an object/],
    ];
    for (const [call, why] of bad) {
      const e = await errorOf(call);
      expect(e.code, String(call)).toBe('INVALID_ARGUMENT');
      expect(e.message, String(call)).toMatch(why);
    }
  });
});
