// Node only: connects from the client block of a 3FS meta service config
// ([kv_engine] kv_engine_type = "custom", [kv_engine.custom_kv] ...), e.g.
// configs/custom_kv_example.toml, so the same file configures the C++ adapter and
// the TypeScript SDK. Not part of the browser-safe `txkv/client` entry.
import fs from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { TxnError } from '../errors.js';
import { connect, type ConnectOptions, type Database } from './database.js';

const CUSTOM_KV = z.strictObject({
  cluster_endpoints: z.array(z.string().regex(/^wss?:\/\//, 'a ws:// or wss:// URL')).min(1),
  transaction_timeout_ms: z.number().int().positive().optional(),
  max_retry_count: z.number().int().min(0).optional(),
  connection_pool_size: z.number().int().positive().optional(),
  auth_token: z.string().optional(),
  ca_file: z.string().optional(),
  connect_timeout_ms: z.number().int().positive().optional(),
});

/** ConnectOptions from the [kv_engine.custom_kv] table of a TOML file; other tables are ignored. */
export function readClientConfigFile(path: string): ConnectOptions {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(fs.readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new TxnError('INVALID_ARGUMENT', `${path}: ${(err as Error).message}`);
  }
  const engine = doc.kv_engine as Record<string, unknown> | undefined;
  if (!engine || typeof engine !== 'object') throw new TxnError('INVALID_ARGUMENT', `${path}: no [kv_engine] table`);
  if (engine.kv_engine_type !== undefined && engine.kv_engine_type !== 'custom') {
    throw new TxnError('INVALID_ARGUMENT', `${path}: kv_engine.kv_engine_type is ${JSON.stringify(engine.kv_engine_type)}; txkv is the "custom" engine`);
  }
  const r = CUSTOM_KV.safeParse(engine.custom_kv);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const key = issue.code === 'unrecognized_keys' ? issue.keys[0] : issue.path.join('.');
    throw new TxnError('INVALID_ARGUMENT', `${path}: kv_engine.custom_kv${key ? `.${key}` : ''}: ${issue.message}`);
  }
  const c = r.data;
  return {
    endpoints: c.cluster_endpoints,
    ...(c.auth_token ? { token: c.auth_token } : {}),
    ...(c.ca_file ? { caFile: c.ca_file } : {}),
    ...(c.transaction_timeout_ms !== undefined ? { transactionTimeoutMs: c.transaction_timeout_ms } : {}),
    ...(c.max_retry_count !== undefined ? { maxRetryCount: c.max_retry_count } : {}),
    ...(c.connection_pool_size !== undefined ? { connectionPoolSize: c.connection_pool_size } : {}),
  };
}

/**
 * Connects with the settings of a 3FS-style config file: [kv_engine.custom_kv]
 * cluster_endpoints, transaction_timeout_ms, max_retry_count, connection_pool_size,
 * auth_token, ca_file (connect_timeout_ms is accepted; the SDK bounds connecting itself).
 */
export async function connectFromConfigFile(path: string): Promise<Database> {
  return connect(readClientConfigFile(path));
}
