// A read in flight when its connection drops (a cluster node killed, a proxy or NAT
// resetting it) is asked again over another connection at the same read version, as
// FoundationDB retries a read on another storage server; a commit in flight is not
// (MAYBE_COMMITTED). Before, the read failed NETWORK_ERROR, which transact() does not retry:
// every kill -9 of a cluster node failed the reads in flight on it. A real server behind a
// TCP proxy that can hold the server's replies and then cut every connection.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, TxnError, type Database } from '../../src/index.js';
import { startTestServer, text, type TestServer } from '../support/server.js';

class CuttingProxy {
  hold = false;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  private readonly server: net.Server;
  constructor(targetPort: number) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(targetPort, '127.0.0.1');
      const pair: [net.Socket, net.Socket] = [client, upstream];
      this.pairs.add(pair);
      client.on('data', (d) => upstream.write(d));
      // replies are dropped while held: the request is answered, the answer never arrives
      upstream.on('data', (d) => {
        if (!this.hold) client.write(d);
      });
      const end = (): void => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
  }
  listen(): Promise<number> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as net.AddressInfo).port)));
  }
  /** Cuts every connection (a reset, as a killed node's kernel sends) and lets new ones through. */
  cutAll(): void {
    for (const [c, u] of this.pairs) {
      c.resetAndDestroy();
      u.destroy();
    }
    this.pairs.clear();
    this.hold = false;
  }
  close(): void {
    this.cutAll();
    this.server.close();
  }
}

let s: TestServer;
let proxy: CuttingProxy;
let db: Database;
beforeAll(async () => {
  s = await startTestServer();
  proxy = new CuttingProxy(s.server.port);
  const port = await proxy.listen();
  db = await connect({ endpoints: [`ws://127.0.0.1:${port}`], connectionPoolSize: 1 });
});
afterAll(async () => {
  await db?.close();
  proxy?.close();
  await s?.close();
});

const held = (): Promise<void> => new Promise((r) => setTimeout(r, 300));

describe('a connection that drops under a request', () => {
  it('a get, a range read and a read version in flight are asked again, at the same read version', async () => {
    await db.transact(async (tx) => tx.set('rr/k', 'v1'));
    const tx = db.createTransaction();
    const rv = await tx.getReadVersion();
    await s.db.transact(async (t) => t.set('rr/k', 'v2')); // after rv: the retried read must not see it
    proxy.hold = true;
    const get = tx.get('rr/k');
    const range = tx.getRange({ key: 'rr/', inclusive: true }, { key: 'rr0', inclusive: false });
    const fresh = db.createTransaction();
    const grv = fresh.getReadVersion();
    await held();
    proxy.cutAll();
    expect(text(await get)).toBe('v1');
    expect((await range).kvs.map((kv) => text(kv.value))).toEqual(['v1']);
    expect(await grv).toBeGreaterThan(rv);
    expect(await tx.getReadVersion()).toBe(rv);
    // the transaction goes on over the new connection, with its read conflicts: it conflicts
    tx.set('rr/other', 'x');
    const err = await tx.commit().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TxnError);
    expect((err as TxnError).code).toBe('CONFLICT');
  });

  it('a commit in flight is not asked again: MAYBE_COMMITTED', async () => {
    await db.createTransaction().get('rr/c'); // a live connection first
    const tx = db.createTransaction();
    tx.set('rr/c', '1');
    proxy.hold = true;
    const commit = tx.commit().then(
      () => null,
      (e: unknown) => e,
    );
    await held();
    proxy.cutAll();
    const err = await commit;
    expect(err).toBeInstanceOf(TxnError);
    expect((err as TxnError).code).toBe('MAYBE_COMMITTED');
  });
});
