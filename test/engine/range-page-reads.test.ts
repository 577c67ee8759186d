// A range page reads from RocksDB about the page it returns, not its whole chunk of rows.
// The shard reads RocksDB in chunks of up to 1,000 rows, and each row is a copy (a
// Buffer): a 1 MB page of 100 KB values read all 100 rows of its range (9.9 MB of
// copies, garbage once the page was cut), and a 'has more?' probe (maxBytes 1) 16 rows.
// Under slow readers that garbage was a large part of the RSS past the server's budget
// (test/load/slow-readers.test.ts). Real shard over real RocksDB, no threads; what RocksDB
// returned is counted at the shard's storage (its scans), nothing else is replaced. The
// page's rows are freed once packed, not left to the collector (shard/free-buffers.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RocksLevel } from '@nxtedition/rocksdb';
import { Failpoints } from '../../src/failpoints/failpoints.js';
import { MutationKind, packMutations, unpackBytes, type PackedBytes, type ShardMutation, type ShardReply } from '../../src/shard/interface.js';
import { Shard } from '../../src/shard/shard.js';
import { ShardStorage } from '../../src/shard/storage.js';
import { openOneShardDb, type OneShardDb } from '../support/one-shard-db.js';

const ROWS = 100;
const VALUE = 99_000;
const PAGE = 1 << 20;
const b = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const key = (i: number): string => `big/${String(i).padStart(3, '0')}`;

describe('range pages over large values', () => {
  let fixture: OneShardDb;
  let db: RocksLevel;
  let shard: Shard;
  let id = 1;
  /** Key and value bytes the shard's RocksDB scans returned, and the rows (of the last range()). */
  let scanned = 0;
  let lastRows: Uint8Array[] = [];
  beforeAll(async () => {
    ({ db } = fixture = await openOneShardDb('txkv-rangepage'));
    const storage = await ShardStorage.attach(db.handle, 0);
    const scan = storage.scan.bind(storage);
    storage.scan = (...args) => {
      const s = scan(...args);
      const next = s.next.bind(s);
      s.next = (n) => {
        const rows = next(n);
        for (const r of rows) scanned += r.length;
        lastRows.push(...rows);
        return rows;
      };
      return s;
    };
    shard = new Shard(storage, 0, 0, new Failpoints({}), true, 0);
    for (let v = 1; v <= 10; v++) {
      const sets: ShardMutation[] = [];
      for (let i = (v - 1) * 10; i < v * 10; i++) sets.push({ kind: MutationKind.Set, key: b(key(i)), param: new Uint8Array(VALUE).fill(i) });
      const replies: ShardReply[] = [];
      shard.handleBatch([{ t: 'commit', id: id++, commitVersion: v * 10, mutations: packMutations(sets), sync: false }], replies);
      shard.applyReady(replies);
      expect(replies.at(-1)).toMatchObject({ ok: true });
    }
  });
  afterAll(async () => {
    await fixture.close();
  });

  const range = (readVersion: number, limit: number, maxBytes: number, reverse = false): { keys: string[]; more: boolean; scanned: number } => {
    scanned = 0;
    lastRows = [];
    const replies: ShardReply[] = [];
    shard.handleBatch([{ t: 'range', id: id++, readVersion, begin: b('big/'), end: b('big0'), limit, reverse, maxBytes }], replies);
    const r = replies[0] as { kvs: PackedBytes; more: boolean };
    const kvs = unpackBytes(r.kvs);
    const keys: string[] = [];
    for (let i = 0; i < kvs.length; i += 2) {
      keys.push(Buffer.from(kvs[i]!).toString('latin1'));
      expect(kvs[i + 1]![0]).toBe(Number(keys.at(-1)!.slice(4)) % 256);
    }
    return { keys, more: r.more, scanned };
  };

  it('a 1 MB page reads its rows and one more from RocksDB (was the whole chunk: 9.9 MB), and pages cover the range exactly', () => {
    const rows = Math.ceil(PAGE / (VALUE + 7)); // 11: the page ends after the row that reaches 1 MB
    const first = range(100, 1000, PAGE);
    expect(first.keys).toEqual(Array.from({ length: rows }, (_, i) => key(i)));
    expect(first.more).toBe(true);
    // the page's rows plus at most two (the look-ahead that says 'more')
    expect(first.scanned).toBeLessThanOrEqual((rows + 2) * (VALUE + 7));
    // reverse, and a read in the past (rows written after it skipped): same bound, same rows
    const rev = range(100, 1000, PAGE, true);
    expect(rev.keys).toEqual(Array.from({ length: rows }, (_, i) => key(ROWS - 1 - i)));
    expect(rev.scanned).toBeLessThanOrEqual((rows + 2) * (VALUE + 7));
    // the page's values read from RocksDB are freed once packed (shard/free-buffers.ts): they
    // read as empty now, and the page above was checked whole; the look-ahead row is not
    // in the page and is left to the collector
    const values = lastRows.filter((_, i) => i % 2 === 1);
    expect(values.slice(0, rows).every((v) => v.byteLength === 0)).toBe(true);
    expect(values.slice(rows).every((v) => v.byteLength === VALUE)).toBe(true);
    const old = range(50, 1000, PAGE);
    expect(old.keys).toEqual(Array.from({ length: rows }, (_, i) => key(i)));
    // paging to the end: every row once, the last page says no more
    const seen: string[] = [];
    let total = 0;
    for (let pages = 0; pages < 20; pages++) {
      const last = seen.at(-1);
      scanned = 0;
      const replies: ShardReply[] = [];
      shard.handleBatch([{ t: 'range', id: id++, readVersion: 100, begin: last ? b(`${last}\u0000`) : b('big/'), end: b('big0'), limit: 1000, reverse: false, maxBytes: PAGE }], replies);
      const r = replies[0] as { kvs: PackedBytes; more: boolean };
      const kvs = unpackBytes(r.kvs);
      for (let i = 0; i < kvs.length; i += 2) seen.push(Buffer.from(kvs[i]!).toString('latin1'));
      total += scanned;
      if (!r.more) break;
    }
    expect(seen).toEqual(Array.from({ length: ROWS }, (_, i) => key(i)));
    expect(total).toBeLessThan(1.3 * ROWS * (VALUE + 7));
  });

  it("a 'has more?' probe (limit 1, maxBytes 1) reads two rows (was 16)", () => {
    const r = range(100, 1, 1);
    expect(r.keys).toEqual([key(0)]);
    expect(r.more).toBe(true);
    expect(r.scanned).toBeLessThanOrEqual(2 * (VALUE + 7));
  });
});
