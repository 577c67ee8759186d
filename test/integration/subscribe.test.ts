// Change feeds end to end: a real server and clients over loopback. A randomized
// concurrent workload across all four shards is checked against a model: the feed has
// exactly the committed versions, in order, each once, and replaying it reproduces the
// model's state after every version. Resuming from fromVersion, breaking the loop, the
// window's limit (TOO_OLD) and a stalled subscriber (cut at its bound) are checked too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, TxnError, type ChangeFeedVersion } from '../../src/index.js';
import { applyAtomic, atomicTypeOf } from '../../src/keys/atomic.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { SHARD_PREFIXES } from '../support/keys.js';
import { mulberry32, randInt } from '../support/rng.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s?.close();
});

const enc = new TextEncoder();
const str = (b: Uint8Array): string => Buffer.from(b).toString('latin1');
const bytesOf = (k: string): Uint8Array => new Uint8Array(Buffer.from(k, 'latin1'));

/** Applies one feed version to a replica (latin-1 key -> hex value). */
function applyVersion(replica: Map<string, string>, v: ChangeFeedVersion): void {
  for (const m of v.mutations) {
    if (m.type === 'set') replica.set(str(m.key), Buffer.from(m.value!).toString('hex'));
    else if (m.type === 'clear') replica.delete(str(m.key));
    else for (const k of [...replica.keys()]) if (k >= str(m.key) && k < str(m.end!)) replica.delete(k);
  }
}

/** Takes versions from a feed until `until` says stop (bounded in time). */
async function take(it: AsyncIterator<ChangeFeedVersion>, until: (v: ChangeFeedVersion, all: ChangeFeedVersion[]) => boolean, ms = 20_000): Promise<ChangeFeedVersion[]> {
  const out: ChangeFeedVersion[] = [];
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`feed: no end condition within ${ms} ms (got ${out.length} versions)`);
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      it.next(),
      new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), left);
      }),
    ]);
    clearTimeout(timer);
    if (r === 'timeout') continue;
    if (r.done) return out;
    out.push(r.value);
    if (until(r.value, out)) return out;
  }
}

type Op = { t: 'set'; k: string; v: string } | { t: 'clear'; k: string } | { t: 'add'; k: string; n: number } | { t: 'clearRange'; b: string; e: string };

describe('change feeds (subscribe)', () => {
  it('a randomized concurrent workload across shards: every committed version once, in order, replaying to the model', { timeout: 120_000 }, async () => {
    const rng = mulberry32(14);
    const keys = SHARD_PREFIXES.flatMap((p) => Array.from({ length: 6 }, (_, i) => `${p}feed/${i}`));
    const [begin, end] = ['\x01', '\xfe'];
    const feed = s.db.subscribe(bytesOf(begin), bytesOf(end))[Symbol.asyncIterator]();
    await new Promise((r) => setTimeout(r, 200)); // the subscription reaches every shard
    const committed: { version: bigint; ops: Op[] }[] = [];
    const WRITERS = 6;
    const PER_WRITER = 25;
    await Promise.all(
      Array.from({ length: WRITERS }, async () => {
        for (let i = 0; i < PER_WRITER; i++) {
          const ops: Op[] = [];
          const n = 1 + randInt(rng, 4);
          for (let j = 0; j < n; j++) {
            const k = keys[randInt(rng, keys.length)]!;
            const r = randInt(rng, 10);
            if (r < 5) ops.push({ t: 'set', k, v: `v${randInt(rng, 1000)}` });
            else if (r < 7) ops.push({ t: 'add', k, n: 1 + randInt(rng, 5) });
            else if (r < 9) ops.push({ t: 'clear', k });
            else {
              const p = SHARD_PREFIXES[randInt(rng, SHARD_PREFIXES.length)]!;
              ops.push({ t: 'clearRange', b: `${p}feed/${randInt(rng, 3)}`, e: `${p}feed/${3 + randInt(rng, 3)}` });
            }
          }
          const tx = s.db.createTransaction();
          for (const o of ops) {
            if (o.t === 'set') tx.set(bytesOf(o.k), o.v);
            else if (o.t === 'clear') tx.clear(bytesOf(o.k));
            else if (o.t === 'add') tx.add(bytesOf(o.k), new Uint8Array([o.n, 0]));
            else tx.clearRange(bytesOf(o.b), bytesOf(o.e));
          }
          await tx.commit(); // blind writes: never conflict
          committed.push({ version: tx.getCommittedVersion(), ops });
        }
      }),
    );
    committed.sort((a, b) => (a.version < b.version ? -1 : 1));
    const last = committed[committed.length - 1]!.version;
    const got = await take(feed, (v) => v.version >= last);
    await feed.return!();

    // versions: exactly the committed ones, increasing, each once
    expect(got.map((v) => v.version)).toEqual(committed.map((c) => c.version));
    // replay: after each version the replica equals the model
    const model = new Map<string, string>();
    const replica = new Map<string, string>();
    for (let i = 0; i < committed.length; i++) {
      for (const o of committed[i]!.ops) {
        if (o.t === 'set') model.set(o.k, Buffer.from(enc.encode(o.v)).toString('hex'));
        else if (o.t === 'clear') model.delete(o.k);
        else if (o.t === 'add') {
          const cur = model.get(o.k);
          const v = applyAtomic(atomicTypeOf('add')!, cur === undefined ? null : new Uint8Array(Buffer.from(cur, 'hex')), new Uint8Array([o.n, 0]))!;
          model.set(o.k, Buffer.from(v).toString('hex'));
        } else for (const k of [...model.keys()]) if (k >= o.b && k < o.e) model.delete(k);
      }
      applyVersion(replica, got[i]!);
      expect([...replica].sort(), `state after version ${committed[i]!.version}`).toEqual([...model].sort());
    }
    // and the database agrees
    const rows = await s.db.createTransaction().getRange({ key: bytesOf(begin), inclusive: true }, { key: bytesOf(end), inclusive: false }, { limit: 10_000 });
    const db = new Map(rows.kvs.filter((kv) => str(kv.key).includes('feed/')).map((kv) => [str(kv.key), Buffer.from(kv.value).toString('hex')]));
    expect([...db].sort()).toEqual([...model].sort());
  });

  it('reports changes clipped to the range, atomic ops as the set they made, and resumes after fromVersion', { timeout: 60_000 }, async () => {
    const feed = s.db.subscribe('clip/b', 'clip/d')[Symbol.asyncIterator]();
    await new Promise((r) => setTimeout(r, 100));
    await s.db.transact(async (tx) => tx.set('clip/c1', 'x'));
    await s.db.transact(async (tx) => tx.add('clip/c2', new Uint8Array([5])));
    await s.db.transact(async (tx) => tx.add('clip/c2', new Uint8Array([5])));
    await s.db.transact(async (tx) => {
      tx.clearRange('clip/a', 'clip/z');
      tx.set('clip/a5', 'outside');
      tx.set('clip/c3', 'inside');
    });
    const got = await take(feed, (_, all) => all.length >= 4);
    await feed.return!();
    const show = (v: ChangeFeedVersion): string[] =>
      v.mutations.map((m) => (m.type === 'set' ? `set ${str(m.key)}=${Buffer.from(m.value!).toString('hex')}` : m.type === 'clear' ? `clear ${str(m.key)}` : `clearRange ${str(m.key)}..${str(m.end!)}`));
    expect(got.map(show)).toEqual([['set clip/c1=78'], ['set clip/c2=05'], ['set clip/c2=0a'], ['clearRange clip/b..clip/d', 'set clip/c3=696e73696465']]);
    // resume: after the second version, the same sequence from the third on
    const again = s.db.subscribe('clip/b', 'clip/d', { fromVersion: got[1]!.version })[Symbol.asyncIterator]();
    const replayed = await take(again, (_, all) => all.length >= 2);
    await again.return!();
    expect(replayed.map((v) => v.version)).toEqual([got[2]!.version, got[3]!.version]);
    expect(replayed.map(show)).toEqual([show(got[2]!), show(got[3]!)]);
  });

  it('breaking out of the loop ends the subscription; a fromVersion older than the window is TOO_OLD', { timeout: 60_000 }, async () => {
    let seen = 0;
    const loop = (async () => {
      for await (const v of s.db.subscribe('brk/', 'brk0')) {
        seen++;
        if (v.mutations.length > 0) break;
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    await s.db.transact(async (tx) => tx.set('brk/1', 'a'));
    await loop;
    expect(seen).toBe(1);
    await expect(
      (async () => {
        for await (const _ of s.db.subscribe('brk/', 'brk0', { fromVersion: 1n })) break;
      })(),
    ).rejects.toMatchObject({ code: 'TOO_OLD', message: expect.stringMatching(/^the feed's start version \(fromVersion\) 1 is older than the changes this server keeps: its MVCC window begins at version \d+; subscribe from there on, or without a start version \(from now\)$/) });
    expect(() => s.db.subscribe('b', 'a')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    // int64 on the wire: 2^64 wrapped to 0 ("now") and the feed silently started now
    for (const v of [2n ** 64n, 2n ** 63n]) expect(() => s.db.subscribe('brk/', 'brk0', { fromVersion: v })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('a subscriber that stops reading is cut at the server’s bound (RESOURCE_CONSTRAINED), not buffered without end', { timeout: 120_000 }, async () => {
    const small = await startTestServer({ limits: { maxFeedBufferBytes: 256 * 1024 } });
    const db = await connect({ endpoints: [small.server.url] });
    try {
      const feed = db.subscribe('slow/', 'slow0')[Symbol.asyncIterator]();
      await new Promise((r) => setTimeout(r, 100));
      // 40 x 64 KB = 2.5 MB of changes: past the client's 1 MiB window plus the 256 KiB bound
      const value = new Uint8Array(64 * 1024).fill(7);
      for (let i = 0; i < 40; i++) await db.transact(async (tx) => tx.set(`slow/${i}`, value));
      // the consumer now reads: what it gets is at most the window, then the error
      let taken = 0;
      let err: unknown = null;
      try {
        for (;;) {
          const r = await feed.next();
          if (r.done) break;
          taken++;
        }
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TxnError);
      expect((err as TxnError).code).toBe('RESOURCE_CONSTRAINED');
      expect((err as TxnError).message).toContain('maxFeedBufferBytes');
      expect(taken).toBeLessThan(40);
      expect(taken).toBeGreaterThan(0);
    } finally {
      await db.close();
      await small.close();
    }
  });

  it('the same feed over HTTP as Server-Sent Events (GET /v1/subscribe)', { timeout: 60_000 }, async () => {
    const b64 = (x: string): string => Buffer.from(x).toString('base64url');
    const ac = new AbortController();
    const r = await fetch(`http://127.0.0.1:${s.server.port}/v1/subscribe?begin=${b64('sse/')}&end=${b64('sse0')}`, { signal: ac.signal });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    await s.db.transact(async (tx) => tx.set('sse/1', 'one'));
    await s.db.transact(async (tx) => tx.add('sse/2', new Uint8Array([9])));
    const reader = r.body!.getReader();
    let text = '';
    const deadline = Date.now() + 20_000;
    while ((text.match(/event: change/g) ?? []).length < 2 && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    ac.abort();
    const events = text
      .split('\n\n')
      .filter((e) => e.startsWith('event: change'))
      .map((e) => JSON.parse(e.split('\n').find((l) => l.startsWith('data: '))!.slice(6)) as { version: string; mutations: { type: string; key: string; value: string }[] });
    expect(events.map((e) => e.mutations.map((m) => [m.type, Buffer.from(m.key, 'base64url').toString(), Buffer.from(m.value, 'base64url').toString('hex')]))).toEqual([
      [['set', 'sse/1', Buffer.from('one').toString('hex')]],
      [['set', 'sse/2', '09']],
    ]);
    const old = await fetch(`http://127.0.0.1:${s.server.port}/v1/subscribe?begin=${b64('sse/')}&end=${b64('sse0')}&fromVersion=1`);
    expect(old.status).toBe(410);
    const e = ((await old.json()) as { error: { code: string; message: string } }).error;
    expect(e.code).toBe('TOO_OLD');
    // a feed has a start version, not a read version
    expect(e.message).toMatch(/^the feed's start version \(fromVersion\) 1 is older than/);
  });

  it('feed errors are counted in /metrics by code and protocol, as every other request’s (they were not)', { timeout: 30_000 }, async () => {
    const base = `http://127.0.0.1:${s.server.port}`;
    const scrape = async (): Promise<Map<string, number>> => {
      const m = new Map<string, number>();
      for (const line of (await (await fetch(`${base}/metrics`)).text()).split('\n')) {
        const hit = /^(txkv_errors_total|txkv_http_requests_total)\{(.*)\} (\d+)$/.exec(line);
        if (hit) m.set(`${hit[1]}{${hit[2]}}`, Number(hit[3]));
      }
      return m;
    };
    const b64 = (x: string): string => Buffer.from(x).toString('base64url');
    const ahead = (await s.db.createTransaction().getReadVersion()) + 60_000_000n;
    const before = await scrape();
    // binary protocol: two SubscribeRequests ahead of the server
    for (const end of ['m0', 'm1']) {
      await expect(s.db.subscribe('m/', end, { fromVersion: ahead })[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'FUTURE_VERSION' });
    }
    // HTTP: GET /v1/subscribe ahead of the server
    expect((await fetch(`${base}/v1/subscribe?begin=${b64('m/')}&end=${b64('m0')}&fromVersion=${ahead}`)).status).toBe(409);
    // a feed ended by the client (break) is no error
    const feed = s.db.subscribe('m/', 'm0')[Symbol.asyncIterator]();
    const first = feed.next();
    await s.db.transact(async (tx) => tx.set('m/x', 'y'));
    await first;
    await feed.return!();
    const after = await scrape();
    const grew = (k: string): number => (after.get(k) ?? 0) - (before.get(k) ?? 0);
    expect(grew('txkv_errors_total{code="FUTURE_VERSION",protocol="binary"}')).toBe(2);
    expect(grew('txkv_errors_total{code="FUTURE_VERSION",protocol="http"}')).toBe(1);
    expect(grew('txkv_http_requests_total{method="GET",route="/v1/subscribe",status="409"}')).toBe(1);
    expect(grew('txkv_errors_total{code="CANCELED",protocol="binary"}')).toBe(0);
  });

  it('GET /v1/subscribe answers errors with the statuses of every endpoint, and takes fromVersion exactly', { timeout: 30_000 }, async () => {
    const b64 = (x: string): string => Buffer.from(x).toString('base64url');
    const ask = async (from: string): Promise<[number, { error: { code: string; message: string } }]> => {
      const r = await fetch(`http://127.0.0.1:${s.server.port}/v1/subscribe?begin=${b64('sse/')}&end=${b64('sse0')}&fromVersion=${from}`);
      return [r.status, (await r.json()) as { error: { code: string; message: string } }];
    };
    // ahead of the server: FUTURE_VERSION is 409 everywhere else (it was 400 here)
    const ahead = (await s.db.createTransaction().getReadVersion()) + 60_000_000n;
    const [status, body] = await ask(String(ahead));
    expect(body.error.code).toBe('FUTURE_VERSION');
    expect(status).toBe(409);
    expect(body.error.message).toContain(String(ahead));
    // past 2^53 a version is still ahead of the server, read exactly, not rounded
    // (999999999999999999 was taken as 1000000000000000000)
    const [bigStatus, big] = await ask('999999999999999999');
    expect([bigStatus, big.error.code]).toEqual([409, 'FUTURE_VERSION']);
    expect(big.error.message).toContain('999999999999999999');
  });

  it('a feed started beside another feed of its range while a commit is being written reports the commit once', { timeout: 60_000 }, async () => {
    // A shard sends a batch's changes to the main thread whenever some feed there covers
    // them, and a new feed's history holds every commit the shard applied before it took the
    // subscription, the batch it is still writing included: that batch's changes came twice,
    // in the history and as events, and the new feed reported each of its mutations twice
    // (4,000 mutations in a version of 2,000 sets, 6 of 10 attempts at a 20 ms delay).
    // A big commit is written for long enough that some of the delays below land in it.
    const first = s.db.subscribe('ov/', 'ov0')[Symbol.asyncIterator]();
    const draining = (async () => {
      for (;;) if ((await first.next()).done) return;
    })();
    await new Promise((r) => setTimeout(r, 100));
    const counts: number[] = [];
    for (let a = 0; a < 16; a++) {
      const from = await s.db.createTransaction().getReadVersion();
      const tx = s.db.createTransaction();
      for (let i = 0; i < 2000; i++) tx.set(`ov/${a}/${String(i).padStart(5, '0')}`, 'v'.repeat(500));
      const commit = tx.commit();
      await new Promise((r) => setTimeout(r, 3 * a));
      const it = s.db.subscribe('ov/', 'ov0', { fromVersion: from })[Symbol.asyncIterator]();
      await commit;
      const [v] = await take(it, () => true);
      await it.return!();
      expect(v!.version).toBe(tx.getCommittedVersion());
      counts.push(v!.mutations.length);
      expect(new Set(v!.mutations.map((m) => str(m.key))).size).toBe(2000);
    }
    await first.return!();
    await draining;
    expect(counts).toEqual(counts.map(() => 2000));
  });
});
