// A data directory keeps the shard layout it was created with.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { connect, startServer } from '../../src/index.js';
import { tempDir, text } from '../support/server.js';
import { AUTO_SHARDS_MAX, resolveConfig, shardCount } from '../../src/config/server-config.js';

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

  it('with shards unset (automatic): a new directory gets one shard per core, an existing one keeps its count', { timeout: 60_000 }, async () => {
    const fresh = tempDir('txkv-layout-auto');
    const made = tempDir('txkv-layout-three');
    const shardsOf = (dir: string): number => (JSON.parse(fs.readFileSync(path.join(dir, 'txkv-layout.json'), 'utf8')) as { shards: number }).shards;
    try {
      let srv = await startServer({ port: 0, dataDir: fresh }, { logger });
      await srv.close();
      expect(shardsOf(fresh)).toBe(Math.min(AUTO_SHARDS_MAX, os.availableParallelism()));
      // a directory made with 3 shards opens without naming the count (it used to be refused: the default was 4)
      srv = await startServer({ port: 0, dataDir: made, shards: 3 }, { logger });
      let db = await connect({ endpoints: [srv.url] });
      await db.transact(async (tx) => tx.set('layout/auto', 'kept'));
      await db.close();
      await srv.close();
      srv = await startServer({ port: 0, dataDir: made }, { logger });
      db = await connect({ endpoints: [srv.url] });
      expect(text(await db.createTransaction().get('layout/auto'))).toBe('kept');
      await db.close();
      await srv.close();
      expect(shardsOf(made)).toBe(3);
    } finally {
      fs.rmSync(fresh, { recursive: true, force: true });
      fs.rmSync(made, { recursive: true, force: true });
    }
  });

  it('shardCount: a set count wins, then split points + 1, then the directory, then the cores (capped)', () => {
    expect(resolveConfig({}).shards).toBe(0);
    expect(() => resolveConfig({ shards: -1 })).toThrow(/shards must be an integer 1..64 \(or 0 = automatic\)/);
    expect(resolveConfig({ splitPoints: ['m'] }).shards).toBe(0);
    expect(shardCount(4, 2, 0, 2)).toBe(4);
    expect(shardCount(0, 3, 0, 2)).toBe(3);
    expect(shardCount(0, null, 2, 16)).toBe(3);
    expect(shardCount(0, 3, 1, 2)).toBe(2); // given split points must match the directory's; the refusal names their count
    expect(shardCount(0, null, 0, 2)).toBe(2);
    expect(shardCount(0, null, 0, 64)).toBe(AUTO_SHARDS_MAX);
    expect(shardCount(0, null, 0, 0)).toBe(1);
  });
  it('shards unset with split points: more than 63 points is refused (the 1..64 bound holds for an automatic count too)', () => {
    const points = (n: number): string[] => Array.from({ length: n }, (_, i) => `k${String(i).padStart(3, '0')}`);
    expect(resolveConfig({ splitPoints: points(63) }).splitPoints.length).toBe(63);
    expect(() => resolveConfig({ splitPoints: points(70) })).toThrow(/splitPoints: 70 points make 71 shards; at most 64/);
  });

  it('shards unset, split points that differ from the directory\'s: the refusal names the count those points make', { timeout: 60_000 }, async () => {
    const dir = tempDir('txkv-layout-points');
    try {
      const srv = await startServer({ port: 0, dataDir: dir, splitPoints: ['g', 'p'] }, { logger });
      const db = await connect({ endpoints: [srv.url] });
      await db.transact(async (tx) => tx.set('h', 'middle'));
      await db.close();
      await srv.close();
      // was: "holds 3 shards split at [67, 70], but the configuration asks for 3 shards split at [6d]"
      await expect(startServer({ port: 0, dataDir: dir, splitPoints: ['m'] }, { logger })).rejects.toThrow(/asks for 2 shards split at \[6d\]/);
      // neither a count nor split points: the directory's layout, its data where it was
      const again = await startServer({ port: 0, dataDir: dir }, { logger });
      const db2 = await connect({ endpoints: [again.url] });
      expect(text(await db2.createTransaction().get('h'))).toBe('middle');
      await db2.close();
      await again.close();
      expect(JSON.parse(fs.readFileSync(path.join(dir, 'txkv-layout.json'), 'utf8'))).toMatchObject({ shards: 3, splitPoints: ['67', '70'] });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  it('a damaged layout file is named, with what to do (not a raw JSON error, not "start with shards = 0")', { timeout: 60_000 }, async () => {
    const cases: [string, RegExp][] = [
      ['{not json', /txkv-layout\.json is damaged \(.*JSON.*\): it records the shard layout .* restore it from a backup/],
      ['{"format":1,"shards":0,"splitPoints":[],"createdAt":"x"}', /txkv-layout\.json is damaged \(shards 0, split points \[\]/],
      ['{"format":1,"shards":"two","splitPoints":[],"createdAt":"x"}', /txkv-layout\.json is damaged \(shards "two"/],
      ['{"format":1,"shards":3,"splitPoints":["80"],"createdAt":"x"}', /txkv-layout\.json is damaged \(shards 3, split points \["80"\]/],
    ];
    for (const [content, why] of cases) {
      const dir = tempDir('txkv-layout-damaged');
      try {
        fs.writeFileSync(path.join(dir, 'txkv-layout.json'), content);
        await expect(startServer({ port: 0, dataDir: dir }, { logger }), content).rejects.toThrow(why);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});
