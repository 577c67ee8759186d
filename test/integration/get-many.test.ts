// GetManyRequest (issue 12, read path): the point reads of one turn at one read version
// travel as one request with one reply. A real server (RocksDB, shard workers, uWS,
// gateway threads in one case) and real sockets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Connection } from '../../src/client/connection.js';
import { decodeReplies, decodeRequests, encodeRequests, type ReplyBody, type RequestBody } from '../../src/protocol/codec.js';
import { toBytes } from '../../src/keys/bytes.js';
import { startTestServer, text, type TestServer } from '../support/server.js';
import { onEveryShard } from '../support/keys.js';

/** A connection whose frames to the server are decoded and kept (what the SDK really sends). */
async function watchedConnection(url: string): Promise<{ c: Connection; sent: RequestBody[][] }> {
  const c = await Connection.open(url, undefined, 5000);
  const sent: RequestBody[][] = [];
  const socket = (c as unknown as { socket: { send(d: Uint8Array): void } }).socket;
  const send = socket.send.bind(socket);
  socket.send = (d: Uint8Array) => {
    sent.push(decodeRequests(d).map((e) => e.body as RequestBody));
    send(d);
  };
  return { c, sent };
}

/** A client of raw frames (as the C++ client or any other binary-protocol client): replies kept as they come. */
async function rawClient(url: string): Promise<{ ws: WebSocket; replies: { requestId: number; body: ReplyBody }[]; until: (n: number) => Promise<void> }> {
  const ws = new WebSocket(url);
  await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
  const replies: { requestId: number; body: ReplyBody }[] = [];
  ws.on('message', (d) => replies.push(...(decodeReplies(new Uint8Array(d as Buffer)) as { requestId: number; body: ReplyBody }[])));
  const until = async (n: number): Promise<void> => {
    for (let i = 0; i < 500 && replies.length < n; i++) await new Promise((r) => setTimeout(r, 10));
  };
  ws.send(encodeRequests([{ requestId: 1, body: { type: 'hello', protocolVersion: 1, token: '', clientName: 'raw' } }]));
  await until(1);
  ws.send(encodeRequests([{ requestId: 2, body: { type: 'grv' } }]));
  await until(2);
  return { ws, replies, until };
}

describe.each([0, 1])('GetManyRequest (gateway threads: %i)', (gatewayThreads) => {
  let s: TestServer;
  const keys = onEveryShard('gm/');
  beforeAll(async () => {
    s = await startTestServer({ gatewayThreads });
    await s.db.transact(async (tx) => keys.forEach((k, i) => tx.set(k, `v${i}`)));
  });
  afterAll(async () => {
    await s?.close();
  });

  it('answers every key in order: values from every shard, absent, and a key that fails alone', async () => {
    const ws = new WebSocket(s.server.url);
    await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    const replies: { requestId: number; body: unknown }[] = [];
    ws.on('message', (d) => replies.push(...decodeReplies(new Uint8Array(d as Buffer))));
    const until = async (n: number): Promise<void> => {
      for (let i = 0; i < 200 && replies.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    };
    ws.send(encodeRequests([{ requestId: 1, body: { type: 'hello', protocolVersion: 1, token: '', clientName: 't' } }]));
    await until(1);
    expect(replies[0]!.body).toMatchObject({ type: 'hello', getMany: true });
    ws.send(encodeRequests([{ requestId: 2, body: { type: 'grv' } }]));
    await until(2);
    const rv = (replies[1]!.body as Extract<ReplyBody, { type: 'grv' }>).readVersion;
    const asked = [keys[3]!, 'gm/absent', keys[0]!, 'x'.repeat(10_001), keys[2]!, keys[1]!];
    ws.send(encodeRequests([{ requestId: 3, body: { type: 'getMany', readVersion: rv, keys: asked.map((k) => toBytes(k)) } }]));
    await until(3);
    await new Promise((r) => setTimeout(r, 100));
    ws.close();
    expect(replies).toHaveLength(3); // one reply, no more
    const r = replies[2]!;
    expect(r.requestId).toBe(3);
    const body = r.body as Extract<ReplyBody, { type: 'getMany' }>;
    expect(body.type).toBe('getMany');
    expect(body.values.map((v) => text(v))).toEqual(['v3', null, 'v0', null, 'v2', 'v1']);
    expect(body.errors?.map((e) => e?.code ?? null)).toEqual([null, null, null, 'KEY_TOO_LARGE', null, null]);
  });

  it('the SDK sends a turn\'s gets at one read version as one GetManyRequest; each get still gets its own value', async () => {
    const { c, sent } = await watchedConnection(s.server.url);
    try {
      expect(c.getMany).toBe(true);
      const rv = ((await c.request({ type: 'grv' }, false)) as Extract<ReplyBody, { type: 'grv' }>).readVersion;
      sent.length = 0;
      const asked = [...keys, 'gm/absent'];
      const got = await Promise.all([
        ...asked.map((k) => c.request({ type: 'get', readVersion: rv, key: toBytes(k) }, false)),
        // another read version: its own request
        c.request({ type: 'get', readVersion: rv - 1n, key: toBytes(keys[0]!) }, false),
        // a key that fails alone fails only its own get
        c.request({ type: 'get', readVersion: rv, key: new Uint8Array(10_001) }, false).catch((e: { code: string }) => e.code),
      ]);
      expect(got.slice(0, asked.length).map((r) => text((r as Extract<ReplyBody, { type: 'get' }>).value))).toEqual(['v0', 'v1', 'v2', 'v3', null]);
      expect(text((got[asked.length] as Extract<ReplyBody, { type: 'get' }>).value)).toBe('v0');
      expect(got[asked.length + 1]).toBe('KEY_TOO_LARGE');
      expect(sent).toHaveLength(1);
      expect(sent[0]!.map((b) => b.type).sort()).toEqual(['get', 'getMany']);
      expect((sent[0]!.find((b) => b.type === 'getMany') as Extract<RequestBody, { type: 'getMany' }>).keys).toHaveLength(asked.length + 1);
    } finally {
      c.close();
    }
  });

  it('a read-only transaction of ten gets: one frame with one GetManyRequest after the read version', async () => {
    const { c, sent } = await watchedConnection(s.server.url);
    try {
      // the SDK's transaction over this connection
      const { TxnImpl } = await import('../../src/client/transaction.js');
      const tx = new TxnImpl({ get: async () => c } as never, 5000, true);
      const asked = Array.from({ length: 10 }, (_, i) => keys[i % 4]!);
      const values = await Promise.all(asked.map((k) => tx.get(k)));
      expect(values.map(text)).toEqual(asked.map((k) => `v${keys.indexOf(k)}`));
      expect(sent.map((f) => f.map((b) => b.type))).toEqual([['grv'], ['getMany']]);
    } finally {
      c.close();
    }
  });

  it('twenty 99 KB values read at once: the reads past a reply\'s ~1 MB grant are asked again by the gateway, and every get gets its value', async () => {
    const big = Array.from({ length: 20 }, (_, i) => `gm-big/${String(i).padStart(2, '0')}`);
    await s.db.transact(async (tx) => big.forEach((k, i) => tx.set(k, new Uint8Array(99_000).fill(i))));
    const { c, sent } = await watchedConnection(s.server.url);
    try {
      const { TxnImpl } = await import('../../src/client/transaction.js');
      const tx = new TxnImpl({ get: async () => c } as never, 5000, true);
      // before: RESOURCE_CONSTRAINED for the reads past ~1 MB, every time (transact() retried in vain)
      const values = await Promise.all(big.map((k) => tx.get(k)));
      values.forEach((v, i) => {
        expect(v!.length).toBe(99_000);
        expect(v![0]).toBe(i);
      });
      // the gateway itself asks the shards again past each ~1 MB grant: one GetManyReply answers all
      expect(sent.map((f) => f.map((b) => b.type))).toEqual([['grv'], ['getMany']]);
    } finally {
      c.close();
    }
  });

  it('a raw client sends twenty GetRequests and a GetManyRequest of twenty 99 KB values in one frame: the gateway asks again past each reply grant, and every read gets its value', async () => {
    const big = Array.from({ length: 20 }, (_, i) => `gm-raw/${String(i).padStart(2, '0')}`);
    await s.db.transact(async (tx) => big.forEach((k, i) => tx.set(k, new Uint8Array(99_000).fill(i))));
    const { ws, replies, until } = await rawClient(s.server.url);
    try {
      const rv = (replies[1]!.body as Extract<ReplyBody, { type: 'grv' }>).readVersion;
      // before: the reads past ~1 MB of values (about ten of each batch) were RESOURCE_CONSTRAINED, every time
      ws.send(
        encodeRequests([
          ...big.map((k, i) => ({ requestId: 10 + i, body: { type: 'get' as const, readVersion: rv, key: toBytes(k) } })),
          { requestId: 40, body: { type: 'getMany', readVersion: rv, keys: big.map((k) => toBytes(k)) } },
        ]),
      );
      await until(2 + 21);
      await new Promise((r) => setTimeout(r, 200)); // one reply per request, no more
      const got = replies.slice(2);
      expect(got).toHaveLength(21);
      for (let i = 0; i < 20; i++) {
        const r = got.find((x) => x.requestId === 10 + i)!;
        expect(r.body.type).toBe('get');
        const v = (r.body as Extract<ReplyBody, { type: 'get' }>).value!;
        expect([v.length, v[0]]).toEqual([99_000, i]);
      }
      const many = got.find((x) => x.requestId === 40)!.body as Extract<ReplyBody, { type: 'getMany' }>;
      expect(many.type).toBe('getMany');
      expect(many.errors?.filter((e) => e !== null) ?? []).toEqual([]);
      expect(many.values.map((v) => [v!.length, v![0]])).toEqual(big.map((_, i) => [99_000, i]));
    } finally {
      ws.close();
    }
  });

  it('against a server without GetManyRequest the SDK sends one GetRequest per key', async () => {
    const { c, sent } = await watchedConnection(s.server.url);
    try {
      c.getMany = false; // as the Hello of a server that predates it says
      const rv = ((await c.request({ type: 'grv' }, false)) as Extract<ReplyBody, { type: 'grv' }>).readVersion;
      sent.length = 0;
      const got = await Promise.all(keys.map((k) => c.request({ type: 'get', readVersion: rv, key: toBytes(k) }, false)));
      expect(got.map((r) => text((r as Extract<ReplyBody, { type: 'get' }>).value))).toEqual(['v0', 'v1', 'v2', 'v3']);
      expect(sent[0]!.map((b) => b.type)).toEqual(['get', 'get', 'get', 'get']);
    } finally {
      c.close();
    }
  });
});

describe.each([0, 1])('point reads past the reply grant, a connection budget of 1 MB (gateway threads: %i)', (gatewayThreads) => {
  let s: TestServer;
  const big = Array.from({ length: 20 }, (_, i) => `gm-budget/${String(i).padStart(2, '0')}`);
  beforeAll(async () => {
    // a connection may hold half of maxBackpressureBytes of unsent reply bytes: 1 MB
    s = await startTestServer({ gatewayThreads, limits: { maxBackpressureBytes: 2 * 1024 * 1024 } });
    await s.db.transact(async (tx) => big.forEach((k, i) => tx.set(k, new Uint8Array(99_000).fill(i))));
  });
  afterAll(async () => {
    await s?.close();
  });

  it('twenty GetRequests of 99 KB in one frame are all answered, round after round, as earlier replies leave', async () => {
    const { ws, replies, until } = await rawClient(s.server.url);
    try {
      const rv = (replies[1]!.body as Extract<ReplyBody, { type: 'grv' }>).readVersion;
      ws.send(encodeRequests(big.map((k, i) => ({ requestId: 10 + i, body: { type: 'get' as const, readVersion: rv, key: toBytes(k) } }))));
      await until(2 + 20);
      await new Promise((r) => setTimeout(r, 200)); // one reply per request, no more
      const got = replies.slice(2);
      expect(got.map((r) => r.body.type)).toEqual(new Array(20).fill('get'));
      for (const r of got) expect((r.body as Extract<ReplyBody, { type: 'get' }>).value![0]).toBe(r.requestId - 10);
    } finally {
      ws.close();
    }
  });

  it('a GetManyRequest of twenty 99 KB values (2 MB in one reply): what fits the connection is answered, the rest RESOURCE_CONSTRAINED', async () => {
    const { ws, replies, until } = await rawClient(s.server.url);
    try {
      const rv = (replies[1]!.body as Extract<ReplyBody, { type: 'grv' }>).readVersion;
      ws.send(encodeRequests([{ requestId: 10, body: { type: 'getMany', readVersion: rv, keys: big.map((k) => toBytes(k)) } }]));
      await until(3);
      const many = replies[2]!.body as Extract<ReplyBody, { type: 'getMany' }>;
      expect(many.type).toBe('getMany');
      const answered = many.values.filter((v, i) => !many.errors?.[i] && v!.length === 99_000 && v![0] === i).length;
      const refused = (many.errors ?? []).filter((e) => e?.code === 'RESOURCE_CONSTRAINED').length;
      // one reply holds all its values at once: past the connection's 1 MB the budget is truly spent
      expect(answered).toBeGreaterThanOrEqual(10);
      expect(refused).toBeGreaterThan(0);
      expect(answered + refused).toBe(20);
      expect(many.errors!.find((e) => e)!.message).toMatch(/reply memory budget spent/);
    } finally {
      ws.close();
    }
  });
});
