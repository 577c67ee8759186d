// The window's memory estimate (VersionWindow.heldBytes) against what it holds: JS heap and
// ArrayBuffer bytes after full collections, for keys the key table keeps in its records
// (up to 32 bytes), longer keys (arrays of their own), and keys in the sorted map that
// range reads fill. The estimate bounds pinned snapshots (limits.maxSnapshotHistoryBytes)
// and is reported as txkv_shard_window_bytes. Until 2026-11-30 it counted 72 bytes plus
// the key's length per key: 2.0x short for 100-byte keys, 2.4x once range reads had run.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { KeyTable } from '../../../src/shard/key-table.js';
import { VersionWindow } from '../../../src/shard/mvcc.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const KEYS = 50_000;
const PER_COMMIT = 100;

/** Records KEYS new keys, PER_COMMIT per commit (no before-images: the keys are new). */
function fill(table: KeyTable, w: VersionWindow, keys: string[], rangeReads: boolean): void {
  let v = 0;
  for (let c = 0; c < KEYS / PER_COMMIT; c++) {
    v++;
    w.beginRecord(v);
    for (let i = 0; i < PER_COMMIT; i++) w.recordWrite(v, table.intern(keys[c * PER_COMMIT + i]!), null);
    w.endRecord(v, PER_COMMIT);
    // range reads now and then: the sorted map catches up with the log (lazy-sync.ts)
    if (rangeReads && c % 10 === 0) for (const _ of w.changedAfter(0, 'k', 'l')) break;
  }
  if (rangeReads) for (let i = 0; i < 1000; i++) for (const _ of w.changedAfter(v - 1, 'k', 'l'));
}

function used(): number {
  for (let i = 0; i < 4; i++) gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Heap and ArrayBuffer bytes the window and its table added (the keys made before). */
function measure(keyLength: number, rangeReads: boolean): { measured: number; estimate: number } {
  // the keys exist apart from the window (a shard gets them from its requests), as flat
  // strings: a concatenated one is flattened when first read, and the collector would free
  // its parts during the measurement
  const keys = Array.from({ length: KEYS }, (_, i) => Buffer.from(`k${String(i).padStart(10, '0')}`.padEnd(keyLength, 'x'), 'latin1').toString('latin1'));
  const before = used();
  const table = new KeyTable();
  const w = new VersionWindow(0, {}, table);
  fill(table, w, keys, rangeReads);
  const measured = used() - before;
  const estimate = w.heldBytes;
  // all alive up to here (the optimizer may otherwise drop them before the measurement)
  expect(w.held.keys).toBe(KEYS);
  expect(table.size).toBe(KEYS);
  expect(keys.length).toBe(KEYS);
  return { measured, estimate };
}

describe('window memory estimate', () => {
  it.each([
    [16, false],
    [100, false],
    [32, true],
  ])('%i-byte keys, range reads %s: heldBytes within 20 % of the heap and ArrayBuffer bytes held', { timeout: 30_000 }, (keyLength, rangeReads) => {
    const { measured, estimate } = measure(keyLength, rangeReads);
    console.log(`window ${keyLength}-byte keys, range reads ${rangeReads}: ${(measured / KEYS).toFixed(0)} B/key held, ${(estimate / KEYS).toFixed(0)} B/key estimated`);
    expect(estimate / measured).toBeGreaterThan(0.8);
    expect(estimate / measured).toBeLessThan(1.2);
  });
});
