// r10: 100 concurrent clients, 10 reads per transaction, issued concurrently (one tick).
// FoundationDB's published single-core result: 305,000 reads/s.

import { kvKey } from '../data.js';
import { distinctRows, expectRow, preloadFlat } from './flat-keyspace.js';
import type { ClientContext, TxnPlan, Workload, WorkloadClient } from './workload.js';

export const READS_PER_TXN = 10;

export const r10: Workload = {
  name: 'r10',
  description: '100 clients, 10 concurrent reads per read-only transaction',
  opUnit: 'reads',
  defaultClients: 100,
  ordered: false,
  keyspace: 'flat',
  preload: preloadFlat,
  client(ctx: ClientContext): WorkloadClient {
    return {
      next(): TxnPlan {
        const keys = distinctRows(ctx.rng, ctx.rows, READS_PER_TXN).map(kvKey);
        return {
          op: 'r10',
          shape: { kind: 'ro', oneShot: true },
          async run(tx) {
            const values = await Promise.all(keys.map((k) => tx.get(k)));
            for (let i = 0; i < keys.length; i++) expectRow(keys[i] as Uint8Array, values[i] ?? null, ctx.verify);
            return keys.length;
          },
        };
      },
    };
  },
};
