// w1: one client, one durable write per transaction (latency bound).
// FoundationDB's published figure: 917 writes/s on a SATA SSD.

import { kvKey, makeValue } from '../data.js';
import { preloadFlat } from './flat-keyspace.js';
import type { ClientContext, TxnPlan, Workload, WorkloadClient } from './workload.js';

export const w1: Workload = {
  name: 'w1',
  description: '1 client, 1 write per transaction (latency bound)',
  opUnit: 'writes',
  defaultClients: 1,
  ordered: false,
  keyspace: 'flat',
  preload: preloadFlat,
  client(ctx: ClientContext): WorkloadClient {
    return {
      next(): TxnPlan {
        const key = kvKey(ctx.rng.int(ctx.rows));
        const value = makeValue(ctx.rng, key);
        return {
          op: 'w1',
          shape: { kind: 'wo' },
          async run(tx) {
            tx.set(key, value);
            return 1;
          },
        };
      },
    };
  },
};
