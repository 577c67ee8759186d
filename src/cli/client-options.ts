// What every client subcommand shares: --endpoint, --token (or TXKV_ENDPOINT,
// TXKV_TOKEN), and a connection made from them.
import { connect, type Database } from '../client/database.js';
import type { FlagSpec, Parsed } from './args.js';

export const DEFAULT_ENDPOINT = 'ws://127.0.0.1:7070';

export const CLIENT_FLAGS: FlagSpec = {
  endpoint: { type: 'string', short: 'e' },
  token: { type: 'string' },
  hex: { type: 'boolean' },
};

export const CLIENT_USAGE = `client options:
  --endpoint URL    server to talk to (default ${DEFAULT_ENDPOINT}; env TXKV_ENDPOINT)
  --token T         auth token, when the server requires one (env TXKV_TOKEN)
  --hex             keys and values given and printed as hex
keys and values: plain text, \\xNN escapes for any byte (\\\\ for a backslash), or hex with --hex
`;

export interface ClientTarget {
  endpoint: string;
  token: string | undefined;
  hex: boolean;
}

export function clientTarget(p: Parsed): ClientTarget {
  const endpoint = (p.flags.endpoint as string | undefined) ?? process.env.TXKV_ENDPOINT ?? DEFAULT_ENDPOINT;
  const token = (p.flags.token as string | undefined) ?? (process.env.TXKV_TOKEN || undefined);
  return { endpoint, token, hex: p.flags.hex === true };
}

export function connectTo(t: ClientTarget, transactionTimeoutMs = 10_000): Promise<Database> {
  return connect({ endpoints: [t.endpoint], token: t.token, connectionPoolSize: 1, transactionTimeoutMs, maxRetryCount: 5 });
}

/** http(s)://host:port of a ws(s):// endpoint, for the HTTP routes on the same port. */
export function httpBase(endpoint: string): string {
  return endpoint.replace(/^ws(s?):\/\//, 'http$1://').replace(/\/+$/, '');
}
