// The CommitLog seam (src/coordinator/commit-log.ts) with a real coordinator, real
// shard workers and RocksDB: in replicated mode a commit is applied only after the log
// acknowledged it, parts of a cross-shard commit travel in one entry, and a refused
// append leaves nothing applied and frees the shards' queues.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { RocksLevel } from '@nxtedition/rocksdb';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import type { CommitLog, LogEntry } from '../../src/coordinator/commit-log.js';
import { WireMutationType } from '../../src/coordinator/commit-plan.js';
import { TxnError } from '../../src/errors.js';
import { toBytes } from '../../src/keys/bytes.js';
import { openDatabase } from '../../src/server/open-database.js';
import { tempDir } from '../support/server.js';

/** A log in memory: acknowledges on the next turn, or refuses while `refuse` is set. */
class MemoryLog implements CommitLog {
  readonly kind = 'replicated' as const;
  readonly writable = true;
  readonly entries: LogEntry[] = [];
  readonly reserved = new Set<number>();
  refuse = false;
  reserve(v: number): void {
    this.reserved.add(v);
  }
  drop(v: number): void {
    if (!this.reserved.delete(v)) throw new Error(`drop(${v}) without reserve`);
  }
  append(e: LogEntry): Promise<void> {
    if (!this.reserved.delete(e.commitVersion)) throw new Error(`append(${e.commitVersion}) without reserve`);
    return new Promise((resolve, reject) =>
      setImmediate(() => {
        if (this.refuse) reject(new TxnError('UNAVAILABLE', 'test log refuses'));
        else {
          this.entries.push(e);
          resolve();
        }
      }),
    );
  }
}

const set = (k: string, v: string) => ({ type: WireMutationType.Set, key: toBytes(k), param: toBytes(v), offset: 0 });
const t = (u: Uint8Array | null | TxnError | undefined): string | null => (u instanceof Uint8Array ? Buffer.from(u).toString() : null);

describe('CommitLog seam (replicated mode)', () => {
  let dir: string;
  let db: RocksLevel;
  let c: Coordinator;
  const log = new MemoryLog();
  beforeAll(async () => {
    dir = tempDir('txkv-commitlog');
    ({ db } = await openDatabase(dir, { shards: 2, splitPoints: [toBytes('m')], explicitSplitPoints: true }));
    c = await Coordinator.start({
      db,
      splitPoints: [toBytes('m')],
      readonly: false,
      durable: true,
      mvccWindowMs: 5000,
      failpoints: {},
      logger: pino({ level: 'warn' }),
      commitLog: log,
      onFatal: (err) => {
        throw err;
      },
    });
  }, 30_000);
  afterAll(async () => {
    await c?.close();
    await db?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('appends each commit (all its parts in one entry) before applying it, in version order', async () => {
    const rv = c.reads.readVersion();
    const a = await c.commits.commit({ readVersion: rv, readConflicts: [], mutations: [set('a', '1')] });
    const b = await c.commits.commit({ readVersion: rv, readConflicts: [], mutations: [set('b', '2'), set('x', '3')] });
    expect(log.entries.map((e) => e.commitVersion)).toEqual([a.commitVersion, b.commitVersion]);
    expect(log.entries[1]!.parts.map((p) => p.shardId)).toEqual([0, 1]);
    const got = await c.reads.getMany([b.commitVersion, b.commitVersion, b.commitVersion], [toBytes('a'), toBytes('b'), toBytes('x')]);
    expect(got.map(t)).toEqual(['1', '2', '3']);
    expect(log.reserved.size).toBe(0);
  });

  it('a refused append applies nothing, fails the commit, and frees the queues', async () => {
    log.refuse = true;
    const rv = c.reads.readVersion();
    await expect(c.commits.commit({ readVersion: rv, readConflicts: [], mutations: [set('a', 'lost'), set('y', 'lost')] })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    log.refuse = false;
    const rv2 = c.reads.readVersion();
    expect((await c.reads.getMany([rv2, rv2], [toBytes('a'), toBytes('y')])).map(t)).toEqual(['1', null]);
    // the shards are not blocked by the refused commit's prepared writes
    const ok = await c.commits.commit({ readVersion: rv2, readConflicts: [{ begin: toBytes('a'), end: toBytes('a\0') }], mutations: [set('a', 'again'), set('y', 'y')] });
    expect((await c.reads.getMany([ok.commitVersion, ok.commitVersion], [toBytes('a'), toBytes('y')])).map(t)).toEqual(['again', 'y']);
    expect(log.reserved.size).toBe(0);
  });
});
