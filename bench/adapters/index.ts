// Builds the adapter an AdapterSpec names. Each adapter module is loaded only when used, so a
// run against one system does not load the other systems' clients.

import type { Adapter, AdapterSpec } from '../adapter.js';

export async function createAdapter(spec: AdapterSpec): Promise<Adapter> {
  switch (spec.system) {
    case 'txkv':
      return new (await import('./txkv.js')).TxkvAdapter(spec);
    case 'etcd':
      return new (await import('./etcd.js')).EtcdAdapter(spec);
    case 'redis':
      return new (await import('./redis.js')).RedisAdapter(spec);
    case 'postgres':
      return new (await import('./postgres.js')).PostgresAdapter(spec);
  }
}
