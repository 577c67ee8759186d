// Client side of faults: reads on a dropped connection fail NETWORK_ERROR, and the
// same Database reconnects (with backoff) once the server is back on its address.
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, TxnError } from '../../src/index.js';
import { freePort, spawnServer, killAllServers } from '../support/child-server.js';
import { tempDir, text } from '../support/server.js';

const dirs: string[] = [];
afterAll(() => {
  killAllServers();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('reconnect', () => {
  it('NETWORK_ERROR while the server is down, then the same Database works again', { timeout: 60_000 }, async () => {
    const dir = tempDir('txkv-reconnect');
    dirs.push(dir);
    const port = await freePort();
    let srv = await spawnServer(dir, port);
    const db = await connect({ endpoints: [srv.url], connectionPoolSize: 1 });
    await db.transact(async (tx) => tx.set('rc/k', 'before'));
    const reader = db.createReadOnlyTransaction();
    await reader.getReadVersion();

    srv.proc.kill('SIGKILL');
    await srv.exited;
    const err = await reader.get('rc/k').then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TxnError);
    expect((err as TxnError).code).toBe('NETWORK_ERROR');
    expect((err as TxnError).retryable).toBe(false);

    srv = await spawnServer(dir, port);
    // the pool reconnects on demand; allow a few backoff rounds
    let value: string | null = null;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      try {
        value = text(await db.createTransaction().get('rc/k'));
        break;
      } catch (e) {
        if (!(e instanceof TxnError) || e.code !== 'NETWORK_ERROR') throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(value).toBe('before');
    await db.transact(async (tx) => tx.set('rc/k', 'after'));
    expect(text(await db.createTransaction().get('rc/k'))).toBe('after');
    await db.close();
    srv.proc.kill('SIGTERM');
    expect((await srv.exited).code).toBe(0);
  });
});
