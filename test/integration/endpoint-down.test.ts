// Spec "Clusters": connect({ endpoints }) may list every node; the client works through any
// of them and moves on when one fails. With one connection (connectionPoolSize 1, what the
// CLI uses) a first endpoint that was down failed connect() outright, and after the
// endpoint in use went down every call failed NETWORK_ERROR although another endpoint
// answered. One real server; a second endpoint for it is a TCP relay in this process,
// which the test closes to take that endpoint down.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/index.js';
import { freePort } from '../support/child-server.js';
import { startTestServer, type TestServer } from '../support/server.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s?.close();
});

/** A TCP relay to the server: another endpoint of the same database, closed by close(). */
async function relay(port: number): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((c) => {
    const up = net.connect(port, '127.0.0.1');
    for (const x of [c, up]) {
      sockets.add(x);
      x.on('error', () => {});
      x.on('close', () => sockets.delete(x));
    }
    c.pipe(up).pipe(c);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return {
    url,
    close: async () => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const x of sockets) x.destroy();
      await closed;
    },
  };
}

describe('an endpoint that is down', () => {
  it('connect() with one connection and the first endpoint down uses the next endpoint', { timeout: 30_000 }, async () => {
    const down = `ws://127.0.0.1:${await freePort()}`;
    const db = await connect({ endpoints: [down, s.server.url], connectionPoolSize: 1 });
    try {
      await db.transact(async (tx) => tx.set('down/first', 'v'));
      expect(new TextDecoder().decode((await db.createReadOnlyTransaction().get('down/first'))!)).toBe('v');
    } finally {
      await db.close();
    }
  });

  it('after the endpoint in use goes down, the next call goes to another endpoint instead of failing NETWORK_ERROR', { timeout: 30_000 }, async () => {
    const r = await relay(s.server.port);
    const db = await connect({ endpoints: [r.url, s.server.url], connectionPoolSize: 1 });
    try {
      await db.transact(async (tx) => tx.set('down/before', 'v'));
      await r.close();
      // the socket's close reaches the client before the next call
      await new Promise((res) => setTimeout(res, 200));
      await db.transact(async (tx) => tx.set('down/after', 'w'));
      expect(new TextDecoder().decode((await db.createReadOnlyTransaction().get('down/after'))!)).toBe('w');
    } finally {
      await db.close();
    }
  });
});
