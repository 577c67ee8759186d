// One HTTP request to a txkv server's HTTP routes (/v1/status, /v1/shard/..., /v1/backup,
// a cluster node's snapshot routes), for the CLI and cluster nodes. Node only: the browser
// entry (txkv/client) does not reach this file.
//
// Why not fetch: undici's fetch refuses the WHATWG "bad ports" (6000, 6665-6669, 10080,
// ... about 80 of them) with a bare "bad port", before any connection is tried, while a
// txkv server listens on whatever port it is given (`txkv serve --port 6000` works, and
// the SDK's WebSocket connects to it). node:http has no such list.
import http from 'node:http';
import https from 'node:https';

export interface HttpAnswer {
  /** HTTP status code. */
  status: number;
  /** The body as UTF-8 text. */
  text: string;
}

export interface HttpRequestOptions {
  /** Default 'GET'. */
  method?: string;
  /** Sent as `authorization: Bearer <token>` when set. */
  token?: string;
  /** The whole request, body included, in milliseconds; default none. */
  timeoutMs?: number;
  /** PEM of the CA(s) to trust for https:// (default: Node's; NODE_EXTRA_CA_CERTS adds to it). */
  ca?: string | Uint8Array;
}

/**
 * Sends one request to an http:// or https:// URL and reads the whole answer.
 * Rejects with an Error whose message names the URL and the reason: the socket's
 * (`connect ECONNREFUSED 127.0.0.1:7070`, `getaddrinfo ENOTFOUND host`), "no answer
 * within N ms", or an unsupported scheme.
 */
/** No HTTP answer at all (refused, reset, timed out): another node of a cluster may answer. */
export class UnreachableError extends Error {}

export function httpRequest(url: string, o: HttpRequestOptions = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      reject(new Error(`${url} is not a valid URL`));
      return;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      reject(new Error(`${url}: only http:// and https:// (ws:// and wss:// endpoints) are supported`));
      return;
    }
    const lib = u.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = {};
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    const req = lib.request(u, { method: o.method ?? 'GET', headers, ...(o.ca !== undefined && lib === https ? { ca: typeof o.ca === 'string' ? o.ca : Buffer.from(o.ca) } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => reject(new Error(`${url}: ${err.message}`)));
    });
    if (o.timeoutMs !== undefined) {
      const ms = o.timeoutMs;
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${ms} ms`)), ms);
      req.on('close', () => clearTimeout(timer));
    }
    req.on('error', (err) => reject(new UnreachableError(`cannot reach ${url}: ${err.message || (err as NodeJS.ErrnoException).code || String(err)}`)));
    req.end();
  });
}

/** The answer's body as JSON; a body that is not JSON becomes `{ error: { code, message } }` naming the status. */
export function answerJson<T = Record<string, unknown>>(a: HttpAnswer): T {
  try {
    return JSON.parse(a.text) as T;
  } catch {
    return { error: { code: 'FAILED', message: `HTTP ${a.status}, not JSON: ${a.text.slice(0, 200)}` } } as T;
  }
}
