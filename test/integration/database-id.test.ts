// Every database has an id (made with its data directory), reported in the Hello reply
// and /v1/status; a client refuses endpoints that belong to different databases instead
// of splitting its data between them (spec: "Clusters").
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { connect, startServer } from '../../src/index.js';
import { tempDir } from '../support/server.js';

const logger = pino({ level: 'warn' });

async function status(url: string): Promise<{ databaseId: string; cluster: unknown }> {
  const r = await fetch(url.replace(/^ws/, 'http') + '/v1/status');
  return (await r.json()) as { databaseId: string; cluster: unknown };
}

describe('database id', () => {
  it('two single-node servers listed as endpoints of one client are refused, naming both ids', { timeout: 60_000 }, async () => {
    const d1 = tempDir('txkv-dbid');
    const d2 = tempDir('txkv-dbid');
    const a = await startServer({ port: 0, dataDir: d1, shards: 2 }, { logger });
    const b = await startServer({ port: 0, dataDir: d2, shards: 2 }, { logger });
    try {
      const ida = (await status(a.url)).databaseId;
      const idb = (await status(b.url)).databaseId;
      expect(ida).toMatch(/^[0-9a-f-]{36}$/);
      expect(idb).toMatch(/^[0-9a-f-]{36}$/);
      expect(ida).not.toBe(idb);
      expect((await status(a.url)).cluster).toBeNull();
      const err = await connect({ endpoints: [a.url, b.url] }).then(
        () => null,
        (e: unknown) => e as { code: string; message: string },
      );
      expect(err?.code).toBe('INVALID_ARGUMENT');
      expect(err?.message).toContain(ida);
      expect(err?.message).toContain(idb);
      // one database through two endpoints is fine, and the id survives a restart
      const db = await connect({ endpoints: [a.url, a.url] });
      await db.transact(async (tx) => tx.set('k', 'v'));
      await db.close();
      await a.close();
      const again = await startServer({ port: 0, dataDir: d1, shards: 2 }, { logger });
      expect((await status(again.url)).databaseId).toBe(ida);
      await again.close();
    } finally {
      await a.close();
      await b.close();
      fs.rmSync(d1, { recursive: true, force: true });
      fs.rmSync(d2, { recursive: true, force: true });
    }
  });
});
