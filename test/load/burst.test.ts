// Overload, bounded: 1,000 connections on loopback and a burst of large commits far
// beyond the memory budget. The server refuses what does not fit (retryable
// RESOURCE_CONSTRAINED / THROTTLED), never holds more request bytes than its budget,
// and keeps answering.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { decodeReplies, encodeRequests } from '../../src/protocol/codec.js';
import { startTestServer, text, type TestServer } from '../support/server.js';

const BUDGET = 24 * 1024 * 1024;
const CONNECTIONS = 1000;
let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ limits: { maxBufferedBytes: BUDGET, maxInflightPerConnection: 4, maxConnections: 2000 }, durability: 'buffered' });
});
afterAll(async () => {
  await s?.close();
});

interface Status {
  connections: number;
  admission: { bufferedBytes: number; peakBufferedBytes: number; refused: number };
}
const status = async (): Promise<Status> => (await (await fetch(`http://127.0.0.1:${s.server.port}/v1/status`)).json()) as Status;

describe('1,000 connections and a burst of large transactions', () => {
  it('stays within the memory budget and keeps answering', { timeout: 120_000 }, async () => {
    const hello = encodeRequests([{ requestId: 1, body: { type: 'hello', protocolVersion: 1, token: '', clientName: 'burst' } }]);
    const sockets: WebSocket[] = [];
    const codes = new Map<string, number>();
    let answered = 0;
    for (let i = 0; i < CONNECTIONS; i++) {
      const ws = new WebSocket(s.server.url, { perMessageDeflate: false });
      ws.on('message', (d: Buffer) => {
        for (const r of decodeReplies(new Uint8Array(d))) {
          if (r.requestId === 1) continue;
          answered++;
          const c = r.body.type === 'error' ? r.body.code : 'COMMITTED';
          codes.set(c, (codes.get(c) ?? 0) + 1);
        }
      });
      sockets.push(ws);
    }
    await Promise.all(sockets.map((ws) => new Promise((r, j) => (ws.once('open', r), ws.once('error', j)))));
    for (const ws of sockets) ws.send(hello);
    await new Promise((r) => setTimeout(r, 200));
    expect((await status()).connections).toBeGreaterThanOrEqual(CONNECTIONS);

    // every connection sends one commit of 4 x 100 KB values: ~400 MB offered against a 24 MB budget
    const value = new Uint8Array(100_000).fill(7);
    const burstFrame = (i: number): Uint8Array =>
      encodeRequests([
        {
          requestId: 2,
          body: {
            type: 'commit',
            readVersion: 0n,
            readConflicts: [],
            mutations: [0, 1, 2, 3].map((j) => ({ type: 0, key: new TextEncoder().encode(`burst/${i}/${j}`), param: value, offset: 0 })),
          },
        },
      ]);
    for (let i = 0; i < CONNECTIONS; i++) sockets[i]!.send(burstFrame(i));

    // while the burst is being processed, a normal client still gets answers
    const t0 = Date.now();
    await s.db.transact(async (tx) => tx.set('burst/probe', 'answered'), { maxRetryCount: 50 });
    expect(text(await s.db.createTransaction().get('burst/probe'))).toBe('answered');
    const probeMs = Date.now() - t0;

    const deadline = Date.now() + 90_000;
    while (answered < CONNECTIONS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(answered).toBe(CONNECTIONS);
    const st = await status();
    for (const c of codes.keys()) expect(['COMMITTED', 'RESOURCE_CONSTRAINED', 'THROTTLED']).toContain(c);
    expect(codes.get('COMMITTED') ?? 0).toBeGreaterThan(0);
    expect(codes.get('RESOURCE_CONSTRAINED') ?? 0, 'the budget must have been hit').toBeGreaterThan(0);
    expect(st.admission.peakBufferedBytes).toBeGreaterThan(0);
    expect(st.admission.peakBufferedBytes).toBeLessThanOrEqual(BUDGET);
    expect(st.admission.bufferedBytes).toBe(0);
    console.log(
      `burst: ${JSON.stringify(Object.fromEntries(codes))}; peak request bytes held ${st.admission.peakBufferedBytes} of ${BUDGET}; ` +
        `a normal commit was answered in ${probeMs} ms during the burst`,
    );
    for (const ws of sockets) ws.close();
  });
});
