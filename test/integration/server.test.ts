// A real server (RocksDB, shard workers, uWS) and real clients over loopback.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { TxnError } from '../../src/index.js';
import { decodeReplies, encodeRequests } from '../../src/protocol/codec.js';
import { startTestServer, text, type TestServer } from '../support/server.js';
import { onEveryShard } from '../support/keys.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s?.close();
});

/** Keys whose first bytes land on different shards of the default 4-shard map. */
const spread = onEveryShard;

describe('transactions over the wire', () => {
  it('a cross-shard commit is visible on every shard at once, and at its version', async () => {
    const keys = spread('xs');
    const w = s.db.createTransaction();
    for (const k of keys) w.set(k, 'v1');
    await w.commit();
    const v1 = w.getCommittedVersion();
    const w2 = s.db.createTransaction();
    for (const k of keys) w2.set(k, 'v2');
    await w2.commit();
    const old = s.db.createReadOnlyTransaction();
    old.setReadVersion(v1);
    expect(await Promise.all(keys.map(async (k) => text(await old.get(k))))).toEqual(['v1', 'v1', 'v1', 'v1']);
    const now = s.db.createReadOnlyTransaction();
    expect(await Promise.all(keys.map(async (k) => text(await now.get(k))))).toEqual(['v2', 'v2', 'v2', 'v2']);
  });

  it('concurrent read-modify-write of one key: exactly one of two conflicting commits wins', async () => {
    const k = 'rmw/counter';
    await s.db.transact(async (tx) => tx.set(k, '0'));
    const a = s.db.createTransaction();
    const b = s.db.createTransaction();
    const [va, vb] = await Promise.all([a.get(k), b.get(k)]);
    a.set(k, String(Number(text(va)) + 1));
    b.set(k, String(Number(text(vb)) + 1));
    const results = await Promise.allSettled([a.commit(), b.commit()]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0]!.reason as TxnError).code).toBe('CONFLICT');
    expect(text(await s.db.createTransaction().get(k))).toBe('1');
  });

  it('a read version taken after commit() resolved covers that commit, under concurrency', { timeout: 60_000 }, async () => {
    // Commits finish out of version order: quick one-shard commits (shard 3) overtake
    // slow cross-shard ones (shards 0-2, large values) with lower versions. An
    // acknowledgment must still mean that every later read version sees the commit.
    const [p0, p1, p2, p3] = onEveryShard('ack/');
    let stop = false;
    const slow = async (w: number): Promise<void> => {
      const big = 'x'.repeat(30_000);
      while (!stop) {
        const tx = s.db.createTransaction();
        for (const p of [p0, p1, p2]) for (let j = 0; j < 4; j++) tx.set(`${p}slow${w}/${j}`, big);
        await tx.commit();
      }
    };
    const fast = async (w: number): Promise<void> => {
      for (let i = 0; i < 25; i++) {
        const k = `${p3}fast${w}`;
        const tx = s.db.createTransaction();
        tx.set(k, `v${i}`);
        await tx.commit();
        const r = s.db.createTransaction();
        const rv = await r.getReadVersion();
        expect(rv >= tx.getCommittedVersion(), `read version ${rv} below acknowledged commit ${tx.getCommittedVersion()}`).toBe(true);
        expect(text(await r.get(k))).toBe(`v${i}`);
      }
    };
    const slowOnes = Array.from({ length: 4 }, (_, w) => slow(w));
    await Promise.all(Array.from({ length: 6 }, (_, w) => fast(w)));
    stop = true;
    await Promise.all(slowOnes);
  });

  it('a read version past the MVCC window fails TOO_OLD', async () => {
    const t = await startTestServer({ mvccWindowMs: 200 });
    try {
      const tx = t.db.createTransaction();
      await tx.get('k');
      await new Promise((r) => setTimeout(r, 600));
      await expect(tx.get('k')).rejects.toMatchObject({ code: 'TOO_OLD', retryable: true });
      tx.set('k', 'v');
      await expect(tx.commit()).rejects.toMatchObject({ code: 'TOO_OLD' });
    } finally {
      await t.close();
    }
  });
});

describe('bad input over the wire', () => {
  const raw = async (send: (ws: WebSocket) => void, url = s.server.url): Promise<{ frames: Buffer[]; closeCode: number | null }> => {
    const ws = new WebSocket(url);
    await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    const frames: Buffer[] = [];
    let closeCode: number | null = null;
    ws.on('message', (d) => frames.push(d as Buffer));
    ws.on('close', (c) => (closeCode = c));
    send(ws);
    await new Promise((r) => setTimeout(r, 300));
    ws.close();
    return { frames, closeCode };
  };
  const hello = encodeRequests([{ requestId: 1, body: { type: 'hello', protocolVersion: 1, token: '', clientName: 't' } }]);

  it('garbage bytes get PROTOCOL_ERROR and the connection stays usable', async () => {
    const { frames } = await raw((ws) => {
      ws.send(hello);
      ws.send(Buffer.from('this is not a flatbuffer at all'));
      ws.send(encodeRequests([{ requestId: 7, body: { type: 'grv' } }]));
    });
    const replies = frames.flatMap((f) => decodeReplies(new Uint8Array(f)));
    expect(replies.find((r) => r.requestId === 0)?.body).toMatchObject({ type: 'error', code: 'PROTOCOL_ERROR' });
    expect(replies.find((r) => r.requestId === 7)?.body).toMatchObject({ type: 'grv' });
  });

  it('a text frame closes the connection with 1003', async () => {
    const { closeCode } = await raw((ws) => ws.send('hello?'));
    expect(closeCode).toBe(1003);
  });

  it('a request before Hello or a wrong protocol version: PROTOCOL_ERROR, then the connection is closed', async () => {
    for (const first of [
      encodeRequests([{ requestId: 3, body: { type: 'grv' } }]),
      encodeRequests([{ requestId: 3, body: { type: 'hello', protocolVersion: 99, token: '', clientName: 't' } }]),
    ]) {
      const { frames, closeCode } = await raw((ws) => ws.send(first));
      const replies = frames.flatMap((f) => decodeReplies(new Uint8Array(f)));
      expect(replies.find((r) => r.requestId === 3)?.body).toMatchObject({ code: 'PROTOCOL_ERROR' });
      expect(closeCode).toBe(1002);
    }
  });

  it('an unknown message type gets PROTOCOL_ERROR and the connection stays open', async () => {
    const { frames, closeCode } = await raw((ws) => {
      ws.send(hello);
      // a reply type sent as a request: not a request this server knows
      const patched = Buffer.from(encodeRequests([{ requestId: 5, body: { type: 'grv' } }]));
      // GetReadVersionRequest is union type 3; make it 4 (GetReadVersionReply)
      patched[patched.indexOf(3, 8)] = 4;
      ws.send(patched);
      ws.send(encodeRequests([{ requestId: 6, body: { type: 'grv' } }]));
    });
    const replies = frames.flatMap((f) => decodeReplies(new Uint8Array(f)));
    expect(replies.find((r) => r.requestId === 5)?.body).toMatchObject({ code: 'PROTOCOL_ERROR' });
    expect(replies.find((r) => r.requestId === 6)?.body).toMatchObject({ type: 'grv' });
    expect(closeCode).not.toBe(1002);
  });

  it('request id 0 (the id of frame-level errors) is refused PROTOCOL_ERROR without running the request, with and without gateway threads; a Hello with id 0 is refused', { timeout: 60_000 }, async () => {
    const threaded = await startTestServer({ gatewayThreads: 1 });
    try {
      for (const [mode, t] of [['single', s], ['gateway threads', threaded]] as const) {
        const key = `rid0/${mode}`;
        const { frames, closeCode } = await raw((ws) => {
          ws.send(hello);
          ws.send(
            encodeRequests([
              { requestId: 0, body: { type: 'commit', readVersion: 0n, readConflicts: [], mutations: [{ type: 0, key: new TextEncoder().encode(key), param: new TextEncoder().encode('x'), offset: 0 }] } },
              { requestId: 9, body: { type: 'grv' } },
            ]),
          );
        }, t.server.url);
        const replies = frames.flatMap((f) => decodeReplies(new Uint8Array(f)));
        const zero = replies.filter((r) => r.requestId === 0);
        expect(zero, mode).toHaveLength(1);
        expect(zero[0]!.body, mode).toMatchObject({ type: 'error', code: 'PROTOCOL_ERROR', message: expect.stringMatching(/request id 0 is reserved/) });
        expect(replies.find((r) => r.requestId === 9)?.body, mode).toMatchObject({ type: 'grv' });
        expect(closeCode, mode).not.toBe(1002);
        // the refused commit did not run
        expect(await t.db.createTransaction().get(key), mode).toBeNull();
      }
      const { frames, closeCode } = await raw((ws) => ws.send(encodeRequests([{ requestId: 0, body: { type: 'hello', protocolVersion: 1, token: '', clientName: 't' } }])));
      const replies = frames.flatMap((f) => decodeReplies(new Uint8Array(f)));
      expect(replies.map((r) => r.body)).toEqual([expect.objectContaining({ type: 'error', code: 'PROTOCOL_ERROR', message: expect.stringMatching(/request id 0 is reserved/) })]);
      expect(closeCode).toBe(1002);
    } finally {
      await threaded.close();
    }
  });

  it('a connection that sends no HelloRequest is closed 1008 after 10 s (it held a connection slot for the idle timeout); one that did stays open', { timeout: 30_000 }, async () => {
    const open = async (): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string; atMs: number }> }> => {
      const ws = new WebSocket(s.server.url);
      const t0 = Date.now();
      const closed = new Promise<{ code: number; reason: string; atMs: number }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason), atMs: Date.now() - t0 })));
      await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
      return { ws, closed };
    };
    const silent = await open();
    const greeted = await open();
    greeted.ws.send(hello);
    const timer = setTimeout(() => silent.ws.terminate(), 20_000);
    const c = await silent.closed;
    clearTimeout(timer);
    expect(c.code).toBe(1008);
    expect(c.reason).toBe('no HelloRequest within 10 s of connecting');
    expect(c.atMs).toBeGreaterThanOrEqual(9_000);
    expect(greeted.ws.readyState).toBe(WebSocket.OPEN);
    greeted.ws.close();
    await greeted.closed;
  });

  it('the server still serves normal clients afterwards', async () => {
    const tx = s.db.createTransaction();
    tx.set('after-bad-input', 'ok');
    await tx.commit();
    expect(text(await s.db.createTransaction().get('after-bad-input'))).toBe('ok');
  });
});
