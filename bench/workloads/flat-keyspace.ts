// The flat keyspace shared by w1, w10, r10, m90 and range: `rows` keys kvKey(0..rows-1),
// 16 bytes each, with random 8-100-byte checksummed values. Pure.

import { BenchError, type KV } from '../adapter.js';
import { checkValue, kvKey } from '../data.js';
import { makeValue } from '../data.js';
import { Rng } from '../rng.js';
import type { WorkloadParams } from './workload.js';

export function* preloadFlat(params: WorkloadParams): Iterable<KV> {
  const rng = new Rng(params.seed ^ 0x1f1f1f1f);
  for (let i = 0; i < params.rows; i++) {
    const key = kvKey(i);
    yield { key, value: makeValue(rng, key) };
  }
}

/** `count` distinct random row numbers in [0, rows). */
export function distinctRows(rng: Rng, rows: number, count: number): number[] {
  const out: number[] = [];
  const seen = new Set<number>();
  const n = Math.min(count, rows);
  while (out.length < n) {
    const i = rng.int(rows);
    if (!seen.has(i)) {
      seen.add(i);
      out.push(i);
    }
  }
  return out;
}

/**
 * Asserts a value read from the preloaded flat keyspace: every row exists (nothing deletes
 * there) and, when verifying, carries the checksum that ties it to its key.
 */
export function expectRow(key: Uint8Array, value: Uint8Array | null, verify: boolean): void {
  if (value === null) {
    throw new BenchError('BAD_READ', false, `key ${Buffer.from(key).toString()} of the preloaded keyspace read as absent`);
  }
  if (verify && !checkValue(key, value)) {
    throw new BenchError('BAD_READ', false, `key ${Buffer.from(key).toString()}: value of ${value.length} bytes fails its checksum`);
  }
}
