// A data directory keeps the shard layout it was created with.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { connect, startServer } from '../../src/index.js';
import { tempDir, text } from '../support/server.js';

const logger = pino({ level: 'warn' });

describe('shard layout of a data directory', () => {
  it('reopens with its own layout, and refuses a different shard count with a clear message', { timeout: 60_000 }, async () => {
    const dataDir = tempDir('txkv-layout');
    try {
      let srv = await startServer({ port: 0, dataDir, shards: 4 }, { logger });
      let db = await connect({ endpoints: [srv.url] });
      await db.transact(async (tx) => tx.set('layout/k', 'kept'));
      await db.close();
      await srv.close();
      await expect(startServer({ port: 0, dataDir, shards: 2 }, { logger })).rejects.toThrow(/holds 4 shards .* asks for 2 shards/);
      await expect(startServer({ port: 0, dataDir, shards: 4, splitPoints: ['b', 'c', 'd'] }, { logger })).rejects.toThrow(/split at/);
      srv = await startServer({ port: 0, dataDir, shards: 4 }, { logger });
      db = await connect({ endpoints: [srv.url] });
      expect(text(await db.createTransaction().get('layout/k'))).toBe('kept');
      await db.close();
      await srv.close();
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
