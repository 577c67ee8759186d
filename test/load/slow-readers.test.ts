// Clients that never read their replies: what uWS holds unsent for them counts against the
// server's budget (limits.maxBufferedBytes), so the server's memory is bounded by that
// budget, not by (number of slow connections) x (each one's backpressure limit). Before,
// 20 paused readers of 1 MB range pages took a server from ~145 MB to 1.9 GB of RSS
// (default limits; reported by a reviewer), and the number of such readers was bounded only
// by limits.maxConnections. A client that reads none of its unsent replies for
// SLOW_READER_CLOSE_MS is closed, so stalled readers cannot hold the budget (and other
// clients' reads) for the whole idle timeout.
import fs from 'node:fs';
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/index.js';
import { SLOW_READER_CLOSE_MS } from '../../src/gateway/socket.js';
import { encodeRequests } from '../../src/protocol/codec.js';
import { freePort, killAllServers, rssMb, spawnServer } from '../support/child-server.js';
import { tempDir } from '../support/server.js';

const dirs: string[] = [];
afterAll(() => {
  killAllServers();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const BUDGET = 64 * 1024 * 1024;
const BACKPRESSURE = 32 * 1024 * 1024;
const SLOW = 24;

describe('slow readers', () => {
  it(`${SLOW} connections that stop reading hold at most the server's budget, and a reading client is still answered`, { timeout: 120_000 }, async () => {
    const dir = tempDir('txkv-slowread');
    dirs.push(dir);
    const port = await freePort();
    const child = await spawnServer(dir, port, {
      env: { TXKV_LIMITS_MAX_BUFFERED_BYTES: String(BUDGET), TXKV_LIMITS_MAX_BACKPRESSURE_BYTES: String(BACKPRESSURE) },
    });
    const pid = child.proc.pid!;
    const db = await connect({ endpoints: [child.url] });
    const sockets: WebSocket[] = [];
    try {
      for (let b = 0; b < 10; b++) {
        await db.transact(async (tx) => {
          for (let i = 0; i < 10; i++) tx.set(`big/${b}/${i}`, new Uint8Array(99_000).fill(b));
        });
      }
      const readVersion = await db.createTransaction().getReadVersion();
      const key = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));
      const before = rssMb(pid);
      for (let c = 0; c < SLOW; c++) {
        const ws = new WebSocket(child.url);
        await new Promise((r) => ws.once('open', r));
        ws.send(encodeRequests([{ requestId: 1, body: { type: 'hello', protocolVersion: 1, token: '', clientName: 'slow' } }]));
        await new Promise((r) => setTimeout(r, 30));
        // stop reading: replies pile up in the server (the kernel's buffers fill first)
        (ws as unknown as { _socket: { pause(): void } })._socket.pause();
        for (let f = 0; f < 20; f++) {
          ws.send(
            encodeRequests(
              Array.from({ length: 20 }, (_, i) => ({
                requestId: 10 + f * 20 + i,
                body: { type: 'range', readVersion, beginKey: key('big/'), beginInclusive: true, endKey: key('big0'), endInclusive: false, limit: 0, reverse: false },
              })),
            ),
          );
        }
        sockets.push(ws);
      }
      await new Promise((r) => setTimeout(r, 4_000));
      const after = rssMb(pid);
      const status = (await (await fetch(`${child.url.replace('ws', 'http')}/v1/status`)).json()) as { admission: { bufferedBytes: number } };
      console.log(`slow-readers: RSS ${Math.round(before)} -> ${Math.round(after)} MB; budget held ${status.admission.bufferedBytes} of ${BUDGET}`);
      // each slow connection alone may hold half its backpressure limit (16 MB): 24 of them
      // grew the server by ~450-650 MB before the budget; then by 212-295 MB for a 64 MB
      // budget (dead rows and pages awaiting collection, 10x read amplification of range
      // pages, frame builders, and the malloc space they left); 91-115 MB since each page
      // reads about its own rows, is moved (not cloned) to the main thread, and is freed
      // once in a frame (shard/free-buffers.ts). The bound leaves room for a loaded machine.
      expect(after - before).toBeLessThan(200);
      expect(status.admission.bufferedBytes).toBeLessThanOrEqual(BUDGET + 2 * 1024 * 1024);
      // a client that reads gets answers (or a retryable refusal while the budget is spent)
      const got = await db.transact(async (tx) => tx.get('big/3/3'), { maxRetryCount: 100 }).catch((e: unknown) => e);
      expect(got).toBeInstanceOf(Uint8Array);
      // the server closes them once they have read nothing for SLOW_READER_CLOSE_MS (they
      // are still paused), and their bytes come back to the budget
      const deadline = Date.now() + SLOW_READER_CLOSE_MS + 10_000;
      let held = -1;
      while (Date.now() < deadline) {
        held = ((await (await fetch(`${child.url.replace('ws', 'http')}/v1/status`)).json()) as { admission: { bufferedBytes: number } }).admission.bufferedBytes;
        if (held === 0) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const closed = child.logs.join('\n').split('"event":"SlowReaderClosed"').length - 1;
      console.log(`slow-readers: ${closed} closed as slow readers; budget held ${held}`);
      // only those uWS holds bytes for (the kernel took the others' replies) are stalled
      expect(closed).toBeGreaterThan(0);
      expect(held).toBe(0);
    } finally {
      for (const s of sockets) s.terminate();
      await db.close();
      child.proc.kill('SIGKILL');
      await child.exited;
    }
  });
});
