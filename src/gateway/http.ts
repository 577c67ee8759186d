// HTTP routes served by the same uWS app and port as the WebSocket protocol.
// Main thread. JSON in and out; keys and values in URLs and JSON are base64url.
// Errors are { "error": { "code", "message" } } with the binary protocol's codes.
//   GET    /v1/status                 server status (JSON)
//   GET    /v1/kv/:key                one read at the latest version
//   PUT    /v1/kv/:key   body=value   one write, one transaction
//   DELETE /v1/kv/:key                one clear, one transaction
//   GET    /v1/range?begin=&end=&limit=&reverse=   begin inclusive, end exclusive
//   POST   /v1/txn                    reads and writes committed atomically (see txn())
import type { HttpRequest, HttpResponse, TemplatedApp } from '@trufflesuite/uws-js-unofficial';
import { TxnError, toWireError, type TxnErrorCode } from '../errors.js';
import { MAX_KEY_BYTES, MAX_TRANSACTION_BYTES } from '../keys/limits.js';
import { conflictRangeOf, DEFAULT_RANGE_LIMIT, type KeyRange } from '../keys/ranges.js';
import { keyAfter } from '../keys/bytes.js';
import type { Coordinator } from '../coordinator/coordinator.js';
import { WireMutationType, type WireMutation } from '../coordinator/commit-plan.js';
import { bearer, type Access, type TokenStore } from './auth.js';

/** An extra GET page; `public` ones (static files with no data, e.g. the dashboard's HTML) skip protectStatus. */
export type Page = (() => Promise<[string, string | Uint8Array]>) & { public?: boolean };

export interface HttpOptions {
  coordinator: Coordinator;
  tokens: TokenStore;
  /** Require a token for the status page and the extra pages too. */
  protectStatus: boolean;
  status: () => Promise<unknown>;
  /** Extra GET routes (path -> handler returning [contentType, body]), e.g. /metrics and the dashboard. */
  pages?: Record<string, Page>;
}

const STATUS_OF: Partial<Record<TxnErrorCode, string>> = {
  INVALID_ARGUMENT: '400 Bad Request',
  KEY_TOO_LARGE: '400 Bad Request',
  VALUE_TOO_LARGE: '413 Payload Too Large',
  TRANSACTION_TOO_LARGE: '413 Payload Too Large',
  PROTOCOL_ERROR: '400 Bad Request',
  UNAUTHORIZED: '401 Unauthorized',
  READ_ONLY: '403 Forbidden',
  CONFLICT: '409 Conflict',
  TOO_OLD: '409 Conflict',
  FUTURE_VERSION: '409 Conflict',
  THROTTLED: '429 Too Many Requests',
  RESOURCE_CONSTRAINED: '503 Service Unavailable',
};

const utf8 = new TextDecoder('utf-8', { fatal: true });

function b64(s: unknown, what: string): Uint8Array {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*={0,2}$/.test(s)) throw new TxnError('INVALID_ARGUMENT', `${what} must be base64url`);
  const b = Buffer.from(s, 'base64url');
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}
const enc = (u: Uint8Array): string => Buffer.from(u.buffer, u.byteOffset, u.length).toString('base64url');

/** Runs an async handler on a uWS response: guards against aborts, answers errors as JSON. */
function handle(res: HttpResponse, work: () => Promise<[string, string | Uint8Array, string?]>): void {
  let aborted = false;
  res.onAborted(() => (aborted = true));
  work().then(
    ([contentType, body, status]) => {
      if (aborted) return;
      res.cork(() => {
        if (status) res.writeStatus(status);
        res.writeHeader('content-type', contentType).end(body);
      });
    },
    (err: unknown) => {
      if (aborted) return;
      const e = toWireError(err);
      res.cork(() =>
        res
          .writeStatus(STATUS_OF[e.code] ?? '500 Internal Server Error')
          .writeHeader('content-type', 'application/json')
          .end(JSON.stringify({ error: e })),
      );
    },
  );
}

/** Reads a request body up to maxBytes (uWS delivers it in chunks; must be set up synchronously). */
function readBody(res: HttpResponse, maxBytes: number): Promise<Uint8Array> {
  const body = new Promise<Uint8Array>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      size += chunk.byteLength;
      if (size > maxBytes) {
        reject(new TxnError('TRANSACTION_TOO_LARGE', `request body over ${maxBytes} bytes`));
        return;
      }
      chunks.push(Buffer.from(chunk.slice(0)));
      if (isLast) {
        const b = Buffer.concat(chunks);
        resolve(new Uint8Array(b.buffer, b.byteOffset, b.length));
      }
    });
  });
  body.catch(() => {}); // a request refused before its body is read must not leave an unhandled rejection
  return body;
}

function json(body: unknown): [string, string] {
  return ['application/json', JSON.stringify(body, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))];
}

/** Access of the request's bearer token; read synchronously (uWS requests die after the handler returns). */
function accessOf(o: HttpOptions, req: HttpRequest): Access {
  return o.tokens.check(bearer(req.getHeader('authorization')));
}

function requireAccess(access: Access, need: 'read' | 'write'): void {
  if (access === 'none') throw new TxnError('UNAUTHORIZED', 'missing or wrong token (Authorization: Bearer <token>)');
  if (need === 'write' && access !== 'write') throw new TxnError('UNAUTHORIZED', 'this token is read-only: writes are refused');
}

export function registerHttpRoutes(app: TemplatedApp, o: HttpOptions): void {
  const c = o.coordinator;
  const open = (res: HttpResponse, req: HttpRequest, page: Page): void => {
    const access = o.protectStatus && !page.public ? accessOf(o, req) : 'write';
    handle(res, async () => {
      requireAccess(access, 'read');
      return page();
    });
  };
  app.get('/v1/status', (res, req) => open(res, req, async () => json(await o.status())));
  for (const [route, page] of Object.entries(o.pages ?? {})) app.get(route, (res, req) => open(res, req, page));

  app.get('/v1/kv/:key', (res, req) => {
    const keyParam = req.getParameter(0) ?? '';
    const access = accessOf(o, req);
    handle(res, async () => {
      requireAccess(access, 'read');
      const key = b64(keyParam, 'key');
      const value = await c.reads.get(c.reads.readVersion(), key);
      return value === null ? [...json({ key: keyParam, value: null }), '404 Not Found'] : json({ key: keyParam, value: enc(value) });
    });
  });
  app.put('/v1/kv/:key', (res, req) => {
    const keyParam = req.getParameter(0) ?? '';
    const access = accessOf(o, req);
    const body = readBody(res, MAX_TRANSACTION_BYTES);
    handle(res, async () => {
      requireAccess(access, 'write');
      const r = await c.commits.commit({ readVersion: 0, readConflicts: [], mutations: [{ type: WireMutationType.Set, key: b64(keyParam, 'key'), param: await body, offset: 0 }] });
      return json({ commitVersion: String(r.commitVersion) });
    });
  });
  app.del('/v1/kv/:key', (res, req) => {
    const keyParam = req.getParameter(0) ?? '';
    const access = accessOf(o, req);
    handle(res, async () => {
      requireAccess(access, 'write');
      const r = await c.commits.commit({ readVersion: 0, readConflicts: [], mutations: [{ type: WireMutationType.Clear, key: b64(keyParam, 'key'), param: new Uint8Array(0), offset: 0 }] });
      return json({ commitVersion: String(r.commitVersion) });
    });
  });
  app.get('/v1/range', (res, req) => {
    const q = new URLSearchParams(req.getQuery() ?? '');
    const access = accessOf(o, req);
    handle(res, async () => {
      requireAccess(access, 'read');
      const range = { begin: b64(q.get('begin') ?? '', 'begin'), end: b64(q.get('end') ?? '', 'end') };
      const limit = parseLimit(q.get('limit'));
      const r = await c.reads.getRange(c.reads.readVersion(), range, limit, q.get('reverse') === 'true');
      return json({ kvs: pairs(r.kvs).map(([k, v]) => ({ key: enc(k), value: enc(v) })), hasMore: r.hasMore });
    });
  });
  app.post('/v1/txn', (res, req) => {
    const access = accessOf(o, req);
    const body = readBody(res, MAX_TRANSACTION_BYTES * 2);
    handle(res, async () => {
      requireAccess(access, 'read');
      return json(await txn(c, await body, access === 'write'));
    });
  });
  app.any('/*', (res, req: HttpRequest) => {
    const url = req.getUrl();
    handle(res, async () => {
      throw new TxnError('INVALID_ARGUMENT', `no such endpoint: ${url}`);
    });
  });
}

function parseLimit(s: string | null | undefined): number {
  if (s === null || s === undefined || s === '') return DEFAULT_RANGE_LIMIT;
  if (!/^-?\d+$/.test(s)) throw new TxnError('INVALID_ARGUMENT', `limit must be an integer, got ${JSON.stringify(s)}`);
  const n = Number(s);
  if (n < 0) throw new TxnError('INVALID_ARGUMENT', `limit must not be negative, got ${n}`);
  return n === 0 ? DEFAULT_RANGE_LIMIT : n;
}

function pairs(flat: Uint8Array[]): [Uint8Array, Uint8Array][] {
  const out: [Uint8Array, Uint8Array][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

interface TxnBody {
  readVersion?: string;
  reads?: ({ key: string } | { begin: string; end: string; limit?: number; reverse?: boolean; snapshot?: boolean })[];
  writes?: ({ op: 'set'; key: string; value: string } | { op: 'clear'; key: string } | { op: 'clearRange'; begin: string; end: string })[];
}

/**
 * POST /v1/txn: { readVersion?, reads: [{key} | {begin, end, limit?, reverse?}], writes:
 * [{op:'set',key,value} | {op:'clear',key} | {op:'clearRange',begin,end}] }. Reads run at
 * the read version (a fresh one if absent) and guard the commit against conflicts, as
 * get/getRange do in the SDK. Returns { readVersion, results, commitVersion } (-1 when
 * nothing was written). Reads do not see this request's own writes.
 */
async function txn(c: Coordinator, raw: Uint8Array, mayWrite: boolean): Promise<unknown> {
  let body: TxnBody;
  try {
    body = JSON.parse(utf8.decode(raw)) as TxnBody;
  } catch (err) {
    throw new TxnError('INVALID_ARGUMENT', `request body must be UTF-8 JSON: ${(err as Error).message}`);
  }
  if (!body || typeof body !== 'object') throw new TxnError('INVALID_ARGUMENT', 'request body must be a JSON object');
  const reads = body.reads ?? [];
  const writes = body.writes ?? [];
  if (!Array.isArray(reads) || !Array.isArray(writes)) throw new TxnError('INVALID_ARGUMENT', 'reads and writes must be arrays');
  let readVersion: number;
  if (body.readVersion !== undefined) {
    if (typeof body.readVersion !== 'string' || !/^\d+$/.test(body.readVersion)) throw new TxnError('INVALID_ARGUMENT', 'readVersion must be a decimal string');
    readVersion = Number(body.readVersion);
  } else readVersion = c.reads.readVersion();
  const conflicts: KeyRange[] = [];
  const results = await Promise.all(
    reads.map(async (r) => {
      if (r && typeof r === 'object' && 'key' in r) {
        const key = b64(r.key, 'read key');
        if (key.length > MAX_KEY_BYTES) throw new TxnError('KEY_TOO_LARGE', `read key is ${key.length} bytes; limit ${MAX_KEY_BYTES}`);
        conflicts.push({ begin: key, end: keyAfter(key) });
        const v = await c.reads.get(readVersion, key);
        return { key: r.key, value: v === null ? null : enc(v) };
      }
      if (r && typeof r === 'object' && 'begin' in r) {
        const range = { begin: b64(r.begin, 'read begin'), end: b64(r.end, 'read end') };
        const limit = parseLimit(r.limit === undefined ? undefined : String(r.limit));
        const reverse = r.reverse === true;
        const got = await c.reads.getRange(readVersion, range, limit, reverse);
        const rows = pairs(got.kvs);
        if (!r.snapshot) conflicts.push(conflictRangeOf(range, rows, got.hasMore, reverse));
        return { kvs: rows.map(([k, v]) => ({ key: enc(k), value: enc(v) })), hasMore: got.hasMore };
      }
      throw new TxnError('INVALID_ARGUMENT', 'each read is {key} or {begin, end}');
    }),
  );
  const mutations: WireMutation[] = writes.map((w) => {
    if (!w || typeof w !== 'object') throw new TxnError('INVALID_ARGUMENT', 'each write is an object with op');
    switch (w.op) {
      case 'set':
        return { type: WireMutationType.Set, key: b64(w.key, 'write key'), param: b64(w.value, 'write value'), offset: 0 };
      case 'clear':
        return { type: WireMutationType.Clear, key: b64(w.key, 'write key'), param: new Uint8Array(0), offset: 0 };
      case 'clearRange':
        return { type: WireMutationType.ClearRange, key: b64(w.begin, 'clearRange begin'), param: b64(w.end, 'clearRange end'), offset: 0 };
      default:
        throw new TxnError('INVALID_ARGUMENT', `unknown write op ${JSON.stringify((w as { op: unknown }).op)}; expected set, clear or clearRange`);
    }
  });
  if (mutations.length === 0) return { readVersion: String(readVersion), results, commitVersion: '-1' };
  if (!mayWrite) throw new TxnError('UNAUTHORIZED', 'this token is read-only: writes are refused');
  const r = await c.commits.commit({ readVersion, readConflicts: conflicts, mutations });
  return { readVersion: String(readVersion), results, commitVersion: String(r.commitVersion) };
}
