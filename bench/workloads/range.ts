// range: 100 concurrent clients, one 1,000-key forward range read per read-only transaction,
// at a random start key. FoundationDB's published single-core result: 3,600,000 keys/s.

import { BenchError } from '../adapter.js';
import { checkValue, kvIndex, kvKey, prefixEnd } from '../data.js';
import { preloadFlat } from './flat-keyspace.js';
import type { ClientContext, TxnPlan, Workload, WorkloadClient } from './workload.js';

export const RANGE_ROWS = 1000;
const FLAT_END = prefixEnd(new Uint8Array([0x6b])); // every key starting with 'k'

export const range: Workload = {
  name: 'range',
  description: '100 clients, one 1,000-key range read per read-only transaction',
  opUnit: 'keys',
  defaultClients: 100,
  ordered: true,
  rangeGroupBytes: 1,
  keyspace: 'flat',
  preload: preloadFlat,
  client(ctx: ClientContext): WorkloadClient {
    return {
      next(): TxnPlan {
        const start = ctx.rng.int(Math.max(1, ctx.rows - RANGE_ROWS + 1));
        const begin = kvKey(start);
        const expected = Math.min(RANGE_ROWS, ctx.rows - start);
        return {
          op: 'range',
          shape: { kind: 'ro', oneShot: true },
          async run(tx) {
            const page = await tx.getRange(begin, FLAT_END, RANGE_ROWS);
            if (page.kvs.length !== expected) {
              throw new BenchError('BAD_READ', false, `range from row ${start}: ${page.kvs.length} rows, expected ${expected}`);
            }
            if (ctx.verify) {
              for (let i = 0; i < page.kvs.length; i++) {
                const kv = page.kvs[i];
                if (kv === undefined || kvIndex(kv.key) !== start + i || !checkValue(kv.key, kv.value)) {
                  throw new BenchError('BAD_READ', false, `range from row ${start}: row ${i} is not row ${start + i} with a valid value`);
                }
              }
              // Cut by the limit with rows left: hasMore must say so (it may also be true at the very end).
              if (start + expected < ctx.rows && !page.hasMore) {
                throw new BenchError('BAD_READ', false, `range from row ${start}: hasMore=false with rows left`);
              }
            }
            return page.kvs.length;
          },
        };
      },
    };
  },
};
