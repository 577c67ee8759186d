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
    ws.close();
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

  it('twenty 99 KB values read at once: the reads a reply refused past its ~1 MB grant are asked again, and every get gets its value', async () => {
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
      expect(sent.length).toBeGreaterThan(2); // the read version, the reads, then the refused ones again
    } finally {
      c.close();
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
