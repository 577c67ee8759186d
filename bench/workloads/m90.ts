// m90: 100 concurrent clients, 9 reads + 1 write per read-write transaction (90/10 mix).
// The 9 reads are issued concurrently and carry read conflicts; the write goes to a 10th key.
// FoundationDB's published single-core result: 107,000 operations/s.

import { kvKey, makeValue } from '../data.js';
import { distinctRows, expectRow, preloadFlat } from './flat-keyspace.js';
import type { ClientContext, TxnPlan, Workload, WorkloadClient } from './workload.js';

export const m90: Workload = {
  name: 'm90',
  description: '100 clients, 9 reads + 1 write per read-write transaction',
  opUnit: 'ops',
  defaultClients: 100,
  ordered: false,
  keyspace: 'flat',
  preload: preloadFlat,
  client(ctx: ClientContext): WorkloadClient {
    return {
      next(): TxnPlan {
        const rows = distinctRows(ctx.rng, ctx.rows, 10);
        const reads = rows.slice(0, 9).map(kvKey);
        const writeKey = kvKey(rows[9] ?? 0);
        const value = makeValue(ctx.rng, writeKey);
        return {
          op: 'm90',
          shape: { kind: 'rw' },
          async run(tx) {
            const values = await Promise.all(reads.map((k) => tx.get(k)));
            for (let i = 0; i < reads.length; i++) expectRow(reads[i] as Uint8Array, values[i] ?? null, ctx.verify);
            tx.set(writeKey, value);
            return reads.length + 1;
          },
        };
      },
    };
  },
};
