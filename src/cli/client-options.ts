// What every client subcommand shares: --endpoint, --token (or TXKV_ENDPOINT,
// TXKV_TOKEN), and a connection made from them.
import fs from 'node:fs';
import { connect, type Database } from '../client/database.js';
import { TxnError } from '../errors.js';
import type { FlagSpec, Parsed } from './args.js';

export const DEFAULT_ENDPOINT = 'ws://127.0.0.1:7070';

export const CLIENT_FLAGS: FlagSpec = {
  endpoint: { type: 'string', short: 'e' },
  token: { type: 'string' },
  hex: { type: 'boolean' },
  'ca-file': { type: 'string' },
};

export const CLIENT_USAGE = `client options:
  --endpoint URL    server to talk to (default ${DEFAULT_ENDPOINT}; env TXKV_ENDPOINT);
                    a cluster's nodes comma-separated (URL,URL,...): one that answers is
                    used (backup and shard map ask the first one's HTTP routes;
                    shard split/merge/move the leader's)
  --token T         auth token, when the server requires one (env TXKV_TOKEN)
  --hex             keys and values given and printed as hex
  --ca-file PEM     trust this CA for a wss:// endpoint (a private CA; NODE_EXTRA_CA_CERTS works too)
keys and values: plain text, \\xNN escapes for any byte (\\\\ for a backslash), or hex with --hex
                  (a raw byte that is not UTF-8 reaches txkv as U+FFFD and is refused: write it \\xNN)
`;

export interface ClientTarget {
  /** The first endpoint: the one whose HTTP routes shard and backup use (status: the first that answers). */
  endpoint: string;
  /** Every endpoint given (--endpoint a,b,c): the SDK moves on to the next when one fails. */
  endpoints: string[];
  token: string | undefined;
  hex: boolean;
  /** PEM file of a CA to trust for wss:// (and the HTTP routes over https://). */
  caFile: string | undefined;
}

export function clientTarget(p: Parsed): ClientTarget {
  const given = (p.flags.endpoint as string | undefined) ?? process.env.TXKV_ENDPOINT ?? DEFAULT_ENDPOINT;
  // a cluster's nodes, comma-separated (a URL has no comma); an empty item is left for
  // connect() to refuse by name
  const endpoints = given.split(',').map((e) => e.trim());
  const token = (p.flags.token as string | undefined) ?? (process.env.TXKV_TOKEN || undefined);
  const caFile = typeof p.flags['ca-file'] === 'string' ? p.flags['ca-file'] : undefined;
  return { endpoint: endpoints[0]!, endpoints, token, hex: p.flags.hex === true, caFile };
}

export function connectTo(t: ClientTarget, transactionTimeoutMs = 10_000): Promise<Database> {
  return connect({ endpoints: t.endpoints, token: t.token, caFile: t.caFile, connectionPoolSize: 1, transactionTimeoutMs, maxRetryCount: 5 });
}

/** The --ca-file PEM for the HTTP routes (the SDK reads it itself for wss://); INVALID_ARGUMENT when unreadable. */
export function caOf(t: ClientTarget): Buffer | undefined {
  if (t.caFile === undefined) return undefined;
  try {
    return fs.readFileSync(t.caFile);
  } catch (err) {
    throw new TxnError('INVALID_ARGUMENT', `--ca-file ${t.caFile} cannot be read: ${(err as Error).message}`);
  }
}

/** http(s)://host:port of a ws(s):// endpoint, for the HTTP routes on the same port. */
export function httpBase(endpoint: string): string {
  return endpoint.replace(/^ws(s?):\/\//, 'http$1://').replace(/\/+$/, '');
}
