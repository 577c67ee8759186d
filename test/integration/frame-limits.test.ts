// Per-frame limits (docs/protocol.md "Limits"): a request frame past MAX_FRAME_ENVELOPES
// envelopes or MAX_GET_MANY_KEYS GetManyRequest keys is refused before it is decoded
// (PROTOCOL_ERROR under request id 0, then the connection closed 1009), and the SDK
// splits a turn's requests so that no call of a user meets either limit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { decodeReplies, encodeRequests, MAX_FRAME_ENVELOPES, MAX_GET_MANY_KEYS, type Envelope, type RequestBody } from '../../src/protocol/codec.js';
import { startTestServer, text, type TestServer } from '../support/server.js';

const FRAME_BYTES = 4 * 1024 * 1024;
let s: TestServer;
let threaded: TestServer;
beforeAll(async () => {
  // in-flight limit above one frame's envelopes: the frame limit is what these tests meet, not THROTTLED;
  // frames of 4 MiB at most, so a turn of commits passes it with less data to write; a 30 s MVCC
  // window, so a loaded machine does not turn the big turns' reads TOO_OLD
  [s, threaded] = await Promise.all([
    startTestServer({ maxFrameBytes: FRAME_BYTES, mvccWindowMs: 30_000, limits: { maxInflightPerConnection: 3 * MAX_FRAME_ENVELOPES } }),
    startTestServer({ maxFrameBytes: FRAME_BYTES, gatewayThreads: 1, limits: { maxInflightPerConnection: 3 * MAX_FRAME_ENVELOPES } }),
  ]);
});
afterAll(async () => {
  await Promise.all([s?.close(), threaded?.close()]);
});

const hello = encodeRequests([{ requestId: 1, body: { type: 'hello', protocolVersion: 1, token: '', clientName: 't' } }]);

/** Sends Hello and `frame` on a raw socket; collects the replies until `until` holds or the socket closes (10 s at most). */
async function raw(url: string, frame: Uint8Array, until: (replies: number) => boolean): Promise<{ replies: Envelope<unknown>[]; close: { code: number; reason: string } | null }> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
  const replies: Envelope<unknown>[] = [];
  let close: { code: number; reason: string } | null = null;
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 10_000);
    ws.on('message', (d) => {
      replies.push(...decodeReplies(new Uint8Array(d as Buffer)));
      if (until(replies.length)) {
        clearTimeout(timer);
        resolve();
      }
    });
    ws.on('close', (code, reason) => {
      close = { code, reason: String(reason) };
      clearTimeout(timer);
      resolve();
    });
  });
  ws.send(hello);
  ws.send(frame);
  await done;
  ws.close();
  return { replies, close };
}

const grvs = (n: number): Envelope<RequestBody>[] => Array.from({ length: n }, (_, i) => ({ requestId: i + 2, body: { type: 'grv' } }));
const many = (requestId: number, n: number): Envelope<RequestBody> => ({
  requestId,
  body: { type: 'getMany', readVersion: 0n, keys: Array.from({ length: n }, (_, i) => new TextEncoder().encode(`fl/${i}`)) },
});

describe('request frames past a per-frame limit', () => {
  it('MAX_FRAME_ENVELOPES + 1 envelopes: PROTOCOL_ERROR under id 0 naming the limit, then close 1009; MAX_FRAME_ENVELOPES are served; other clients unaffected (with and without gateway threads)', { timeout: 60_000 }, async () => {
    for (const [mode, t] of [['single', s], ['gateway threads', threaded]] as const) {
      const over = await raw(t.server.url, encodeRequests(grvs(MAX_FRAME_ENVELOPES + 1)), () => false);
      expect(over.close?.code, mode).toBe(1009);
      expect(over.close?.reason, mode).toMatch(/MAX_FRAME_ENVELOPES/);
      // the Hello's reply, then the refusal; none of the 10,001 requests was answered
      expect(over.replies.map((r) => r.requestId), mode).toEqual([1, 0]);
      expect(over.replies[1]!.body, mode).toMatchObject({ type: 'error', code: 'PROTOCOL_ERROR', message: expect.stringMatching(/frame holds 10001 requests; limit 10000 per frame \(MAX_FRAME_ENVELOPES\)/) });
      const at = await raw(t.server.url, encodeRequests(grvs(MAX_FRAME_ENVELOPES)), (n) => n >= MAX_FRAME_ENVELOPES + 1);
      expect(at.close, mode).toBeNull();
      expect(at.replies.filter((r) => (r.body as { type: string }).type === 'grv'), mode).toHaveLength(MAX_FRAME_ENVELOPES);
      expect(await t.db.createTransaction().getReadVersion(), mode).toBeGreaterThan(0n);
    }
  });

  it('GetManyRequests past MAX_GET_MANY_KEYS keys (in one request, or in two of one frame together): refused and closed 1009; MAX_GET_MANY_KEYS keys are answered', { timeout: 60_000 }, async () => {
    await s.db.transact(async (tx) => tx.set('fl/7', 'seven'));
    for (const [mode, t] of [['single', s], ['gateway threads', threaded]] as const) {
      for (const frame of [[many(2, MAX_GET_MANY_KEYS + 1)], [many(2, 6000), many(3, 6000)]]) {
        const over = await raw(t.server.url, encodeRequests(frame), () => false);
        expect(over.close?.code, mode).toBe(1009);
        expect(over.replies.map((r) => r.requestId), mode).toEqual([1, 0]);
        expect(over.replies[1]!.body, mode).toMatchObject({ code: 'PROTOCOL_ERROR', message: expect.stringMatching(/limit 10000 per frame \(MAX_GET_MANY_KEYS\)/) });
      }
      if (t !== s) continue;
      // read version 0 fails each read alone (out of the window): answered, key by key
      const at = await raw(t.server.url, encodeRequests([many(2, MAX_GET_MANY_KEYS)]), (n) => n >= 2);
      expect(at.close, mode).toBeNull();
      expect((at.replies[1]!.body as { values: unknown[] }).values, mode).toHaveLength(MAX_GET_MANY_KEYS);
    }
  });
});

describe('a commit whose counts alone pass the transaction size limit', () => {
  it('is answered TRANSACTION_TOO_LARGE under its id without being decoded; the connection stays open (with and without gateway threads)', { timeout: 60_000 }, async () => {
    const E = new Uint8Array(0);
    const frame = encodeRequests([
      { requestId: 2, body: { type: 'commit', readVersion: 0n, readConflicts: [], mutations: Array.from({ length: 140_000 }, () => ({ type: 1, key: E, param: E, offset: 0 })) } },
      { requestId: 3, body: { type: 'grv' } },
    ]);
    for (const [mode, t] of [['single', s], ['gateway threads', threaded]] as const) {
      const r = await raw(t.server.url, frame, (n) => n >= 3);
      expect(r.close, mode).toBeNull();
      expect(r.replies.find((e) => e.requestId === 2)?.body, mode).toMatchObject({ type: 'error', code: 'TRANSACTION_TOO_LARGE', message: expect.stringMatching(/at least 10080000 bytes \(140000 mutations/) });
      expect(r.replies.find((e) => e.requestId === 3)?.body, mode).toMatchObject({ type: 'grv' });
    }
  });
});

describe('the SDK splits its frames', () => {
  it('20,500 gets of one transaction in one turn (GetManyRequests of at most MAX_GET_MANY_KEYS) and 10,200 gets at 10,200 read versions in one turn (frames of at most MAX_FRAME_ENVELOPES) are all answered', { timeout: 60_000 }, async () => {
    await s.db.transact(async (tx) => {
      for (let i = 0; i < 100; i++) tx.set(`split/${String(i).padStart(3, '0')}`, `v${i}`);
    });
    const tx = s.db.createTransaction();
    const keys = Array.from({ length: 20_500 }, (_, i) => `split/${String(i % 100).padStart(3, '0')}`);
    const values = await Promise.all(keys.map((k) => tx.snapshotGet(k)));
    expect(values.map(text)).toEqual(keys.map((_, i) => `v${i % 100}`));
    // 10,200 gets of one turn at 10,200 read versions: one GetRequest envelope each
    const rv = await s.db.createTransaction().getReadVersion();
    const reads = Array.from({ length: 10_200 }, (_, i) => {
      const r = s.db.createReadOnlyTransaction();
      r.setReadVersion(rv - BigInt(i));
      return r.snapshotGet('split/007');
    });
    expect((await Promise.all(reads)).map(text)).toEqual(Array.from({ length: 10_200 }, () => 'v7'));
  });

  it('a turn of commits past the server\'s maxFrameBytes together goes in several frames (MAX_BATCHED_FRAME_BYTES): every commit lands', { timeout: 60_000 }, async () => {
    // 18 MB in 20 commits over the client's connections (it keeps two): each gets more than 4 MiB
    const big = new Uint8Array(90_000).fill(7);
    const commits = Array.from({ length: 20 }, async (_, c) => {
      const tx = s.db.createTransaction();
      for (let i = 0; i < 10; i++) tx.set(`bigturn/${c}/${i}`, big);
      await tx.commit();
    });
    await Promise.all(commits);
    const check = s.db.createTransaction();
    const got = await Promise.all(Array.from({ length: 200 }, (_, j) => check.snapshotGet(`bigturn/${Math.floor(j / 10)}/${j % 10}`)));
    expect(got.filter((v) => v?.length === big.length)).toHaveLength(200);
  });
});

describe('request ids in flight are unique per connection', () => {
  const enc = (k: string): Uint8Array => new TextEncoder().encode(k);
  const set = (requestId: number, key: string): Envelope<RequestBody> => ({
    requestId,
    body: { type: 'commit', readVersion: 0n, readConflicts: [], mutations: [{ type: 0, key: enc(key), param: enc('x'), offset: 0 }] },
  });

  it('a second request under an id in flight (a commit, a get, a watch) is refused PROTOCOL_ERROR under id 0 and not run; the first gets its one reply; the id is free again once answered (with and without gateway threads)', { timeout: 60_000 }, async () => {
    for (const [mode, t] of [['single', s], ['gateway threads', threaded]] as const) {
      const ws = new WebSocket(t.server.url, { perMessageDeflate: false });
      await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
      const replies: Envelope<{ type: string; code?: string; message?: string }>[] = [];
      ws.on('message', (d) => replies.push(...(decodeReplies(new Uint8Array(d as Buffer)) as never[])));
      const waitFor = async (what: string, ok: () => boolean): Promise<void> => {
        for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
        expect(ok(), `${mode}: ${what}`).toBe(true);
      };
      const under = (id: number): typeof replies => replies.filter((r) => r.requestId === id);
      ws.send(hello);
      // two commits under id 5 in one frame: the first runs, the second is refused
      ws.send(encodeRequests([set(5, `dup/${mode}/a`), set(5, `dup/${mode}/b`)]));
      await waitFor('commit 5 answered and the duplicate refused', () => under(5).length === 1 && under(0).length === 1);
      expect(under(5)[0]!.body.type, mode).toBe('commit');
      expect(under(0)[0]!.body, mode).toMatchObject({ code: 'PROTOCOL_ERROR', message: expect.stringMatching(/request id 5 is already in flight on this connection: this commit request was not run/) });
      expect(text(await t.db.createTransaction().get(`dup/${mode}/a`)), mode).toBe('x');
      expect(await t.db.createTransaction().get(`dup/${mode}/b`), mode).toBeNull();
      // answered: id 5 may be used again
      ws.send(encodeRequests([{ requestId: 5, body: { type: 'grv' } }]));
      await waitFor('id 5 used again', () => under(5).length === 2);
      expect(under(5)[1]!.body.type, mode).toBe('grv');
      // a pending watch holds its id: a get under it is refused; the watch still fires under its id
      ws.send(encodeRequests([{ requestId: 7, body: { type: 'watch', key: enc(`dup/${mode}/w`), present: false, value: new Uint8Array(0) } }]));
      await new Promise((r) => setTimeout(r, 100));
      ws.send(encodeRequests([{ requestId: 7, body: { type: 'get', readVersion: 0n, key: enc('k') } }]));
      await waitFor('the get under the watch id refused', () => under(0).length === 2);
      expect(under(0)[1]!.body.message, mode).toMatch(/request id 7 is already in flight on this connection: this get request was not run/);
      expect(under(7), mode).toHaveLength(0);
      await t.db.transact(async (tx) => tx.set(`dup/${mode}/w`, 'changed'));
      await waitFor('the watch fired', () => under(7).length === 1);
      expect(under(7)[0]!.body.type, mode).toBe('watch');
      // the watch ended: id 7 is free again (on a gateway thread once the main thread says so)
      ws.send(encodeRequests([{ requestId: 7, body: { type: 'grv' } }]));
      await waitFor('id 7 used again', () => under(7).length === 2);
      expect(under(7)[1]!.body.type, mode).toBe('grv');
      expect(under(0), mode).toHaveLength(2);
      ws.close();
    }
  });
});
