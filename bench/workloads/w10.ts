// w10: 100 concurrent clients, 10 blind writes per transaction.
// FoundationDB's published single-core result: 46,000 writes/s.

import { kvKey, makeValue } from '../data.js';
import { distinctRows, preloadFlat } from './flat-keyspace.js';
import type { ClientContext, TxnPlan, Workload, WorkloadClient } from './workload.js';

export const WRITES_PER_TXN = 10;

export const w10: Workload = {
  name: 'w10',
  description: '100 clients, 10 writes per transaction',
  opUnit: 'writes',
  defaultClients: 100,
  ordered: false,
  keyspace: 'flat',
  preload: preloadFlat,
  client(ctx: ClientContext): WorkloadClient {
    return {
      next(): TxnPlan {
        const writes = distinctRows(ctx.rng, ctx.rows, WRITES_PER_TXN).map((i) => {
          const key = kvKey(i);
          return { key, value: makeValue(ctx.rng, key) };
        });
        return {
          op: 'w10',
          shape: { kind: 'wo' },
          async run(tx) {
            for (const w of writes) tx.set(w.key, w.value);
            return writes.length;
          },
        };
      },
    };
  },
};
