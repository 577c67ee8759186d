// HTTP routes served by the same uWS app and port as the WebSocket protocol. Main
// thread. JSON in and out; keys and values in URLs and JSON are canonical base64url
// (RFC 4648 §5, no padding). docs/http-api.md documents every route and
// src/gateway/openapi.ts describes them (served at GET /v1/openapi.json); a test
// runs the document's curl examples against a server.
//
// Routes live in one table (ROUTES, plus HttpOptions.routes from other modules): each
// has a method, a uWS path pattern, the query parameters it accepts, the access it
// needs and a handler. Anything else is answered from the table too: an unknown path
// is 404 NOT_FOUND, a known path with another method 405 METHOD_NOT_ALLOWED (with
// Allow), an unknown query parameter or JSON field 400 INVALID_ARGUMENT naming it.
// Errors are { "error": { "code", "message" } } with the binary protocol's codes
// (plus NOT_FOUND and METHOD_NOT_ALLOWED, which only HTTP has).
import type { HttpRequest, HttpResponse, TemplatedApp } from '@trufflesuite/uws-js-unofficial';
import { visit as visitJson } from 'jsonc-parser';
import { TxnError, toWireError, type TxnErrorCode } from '../errors.js';
import { MAX_KEY_BYTES, MAX_TRANSACTION_BYTES, MAX_VALUE_BYTES } from '../keys/limits.js';
import { conflictRangeOf, DEFAULT_RANGE_LIMIT, RANGE_PAGE_MAX_BYTES, type KeyRange } from '../keys/ranges.js';
import { decimalVersion } from '../keys/versions.js';
import { keyAfter, printable } from '../keys/bytes.js';
import type { Coordinator } from '../coordinator/coordinator.js';
import { WireMutationType, type WireMutation } from '../coordinator/commit-plan.js';
import { requestMetricsOf, type RequestMetrics } from '../metrics/request-metrics.js';
import { bearer, type Access, type TokenStore } from './auth.js';
import { OPENAPI } from './openapi.js';
import { HttpError } from './http-error.js';
import { snapshotsOf } from './snapshots.js';

/** An extra GET page; `public` ones (static files with no data, e.g. the dashboard's HTML) skip protectStatus. */
export type Page = (() => Promise<[string, string | Uint8Array]>) & { public?: boolean };

/** What a route needs: nothing, the status token (with auth.protectStatus), a read token, a write token. */
export type RouteAccess = 'public' | 'status' | 'read' | 'write';

export type Method = 'GET' | 'PUT' | 'DELETE' | 'POST';

/** A JSON route's answer: body (JSON-serialised unless a [contentType, text] pair) and status. */
export interface Answer {
  status?: number;
  body: unknown;
  /** Set for non-JSON answers (e.g. /metrics text). */
  contentType?: string;
}

export interface RouteContext {
  c: Coordinator;
  /** Path parameters in pattern order (raw, still URL-encoded as uWS gives them). */
  params: string[];
  query: URLSearchParams;
  /** The request body (read up to the route's maxBodyBytes; empty for GET and DELETE). */
  body: () => Promise<Uint8Array>;
  access: Access;
  metrics: RequestMetrics | undefined;
}

export interface Route {
  method: Method;
  /** uWS pattern: literal segments and :name parameters. */
  path: string;
  /** Accepted query parameter names; any other is refused with 400. */
  query?: readonly string[];
  access: RouteAccess;
  /** Largest body accepted (bytes); default none (a body on such a route is ignored by uWS). */
  maxBodyBytes?: number;
  /** The refusal of a body over maxBodyBytes (`size`: its Content-Length, when that says so); default TRANSACTION_TOO_LARGE. */
  bodyTooLarge?: (maxBytes: number, size?: number) => TxnError;
  /** Counted in the HTTP request metrics as this kind (data routes only). */
  handler?: (ctx: RouteContext) => Promise<Answer>;
  /**
   * A route that answers by itself (e.g. a server-sent event stream): gets the uWS
   * response after the access check; it must call res.onAborted before returning.
   */
  raw?: (res: HttpResponse, req: HttpRequest, ctx: Omit<RouteContext, 'body'>) => void;
}

export interface HttpOptions {
  coordinator: Coordinator;
  tokens: TokenStore;
  /** Require a token for the status page and the extra pages too. */
  protectStatus: boolean;
  status: () => Promise<unknown>;
  /** Extra GET routes (path -> handler returning [contentType, body]), e.g. /metrics and the dashboard. */
  pages?: Record<string, Page>;
  /** Routes of other modules (e.g. change feeds), added to the table. */
  routes?: Route[];
}

export { HttpError } from './http-error.js';

/**
 * HTTP status of each error code. KEY_TOO_LARGE, VALUE_TOO_LARGE and
 * TRANSACTION_TOO_LARGE are all 413: each says a part of the request is over a size
 * limit, which is what 413 means; the code in the body says which.
 */
export const STATUS_OF: Record<TxnErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  PROTOCOL_ERROR: 400,
  UNAUTHORIZED: 401,
  READ_ONLY: 403,
  CONFLICT: 409,
  TOO_OLD: 409,
  FUTURE_VERSION: 409,
  KEY_TOO_LARGE: 413,
  VALUE_TOO_LARGE: 413,
  TRANSACTION_TOO_LARGE: 413,
  THROTTLED: 429,
  RESOURCE_CONSTRAINED: 503,
  UNAVAILABLE: 503,
  MAYBE_COMMITTED: 500,
  NETWORK_ERROR: 502,
  CANCELED: 500,
  TIMEOUT: 504,
  FAILED: 500,
};

const REASON: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  410: 'Gone',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};
export const statusLine = (n: number): string => `${n} ${REASON[n] ?? ''}`.trim();

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes canonical base64url: the alphabet A-Z a-z 0-9 - _, no padding, no bits
 * left over (re-encoding gives the same text). Anything else is refused naming it, so
 * that plain text is not silently taken for bytes (most text is not canonical; a word
 * that happens to be, e.g. "greeting", is echoed back escaped in `keyText`).
 */
export function decodeBase64url(s: unknown, what: string): Uint8Array {
  if (typeof s !== 'string') throw new TxnError('INVALID_ARGUMENT', `${what} must be a base64url string, got ${s === null ? 'null' : typeof s}`);
  const b = Buffer.from(s, 'base64url');
  if (!/^[A-Za-z0-9_-]*$/.test(s) || b.toString('base64url') !== s) {
    const shown = s.length > 80 ? `${s.slice(0, 80)}...` : s;
    throw new TxnError('INVALID_ARGUMENT', `${what} ${JSON.stringify(shown)} is not canonical base64url (RFC 4648 §5: A-Z a-z 0-9 - _, no padding); e.g. the key "greeting" is Z3JlZXRpbmc`);
  }
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}
const enc = (u: Uint8Array): string => Buffer.from(u.buffer, u.byteOffset, u.length).toString('base64url');
/** Keys echoed in responses also as escaped text (\xNN for non-printable bytes), to see what was stored. */
const keyText = (u: Uint8Array): string => printable(u, MAX_KEY_BYTES);

function readKey(param: string, what: string): Uint8Array {
  let text: string;
  try {
    text = decodeURIComponent(param);
  } catch {
    text = param;
  }
  const key = decodeBase64url(text, what);
  if (key.length > MAX_KEY_BYTES) throw new TxnError('KEY_TOO_LARGE', `${what} is ${key.length} bytes; limit ${MAX_KEY_BYTES}`);
  return key;
}

function bodyOverTransactionLimit(maxBytes: number, size?: number): TxnError {
  return new TxnError('TRANSACTION_TOO_LARGE', `request body ${size === undefined ? 'over' : `is ${size} bytes; limit`} ${maxBytes} bytes`);
}

/** How a request ends: aborted by the client; close = its body was refused unread: the answer says `Connection: close`. */
interface RequestState {
  aborted: boolean;
  close: boolean;
}

/**
 * Reads a request body up to maxBytes (uWS delivers it in chunks; must be set up
 * synchronously). A body over the limit is refused as soon as it is known to be: by its
 * Content-Length before a byte of it is read, else at the chunk that passes the limit
 * (a 25 MB POST /v1/txn waited for all of its bytes; one that only declared them waited
 * for ever). See `endAnswer` for what happens to the rest.
 */
function readBody(
  res: HttpResponse,
  contentLength: string,
  maxBytes: number,
  state: RequestState,
  tooLarge: (maxBytes: number, size?: number) => TxnError = bodyOverTransactionLimit,
): Promise<Uint8Array> {
  const declared = /^\d+$/.test(contentLength) ? Number(contentLength) : undefined;
  if (declared !== undefined && declared > maxBytes) {
    state.close = true;
    const refused = Promise.reject(tooLarge(maxBytes, declared));
    refused.catch(() => {});
    return refused;
  }
  const body = new Promise<Uint8Array>((resolve, reject) => {
    let chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      if (state.close) return; // refused: the rest is dropped as it comes
      size += chunk.byteLength;
      if (size > maxBytes) {
        state.close = true;
        chunks = [];
        reject(tooLarge(maxBytes));
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

const EMPTY = Promise.resolve(new Uint8Array(0));

/**
 * Ends an answer. After a refused body the answer says `Connection: close` and the
 * connection stays open, its remaining bytes read and dropped, until the client closes it
 * (or uWS's 10 s idle timeout does). Closing at once, as uWS's `end(body, true)` does, made
 * the kernel reset the connection under a client still sending its body, and a client that
 * stops at a failed write (Node's net socket does) lost the 413 it had been sent: 9 of 40
 * chunked 200 MB posts here. Go's net/http lingers after such an answer for the same reason.
 */
function endAnswer(res: HttpResponse, body: string | Uint8Array, state: RequestState): void {
  if (state.close) res.writeHeader('connection', 'close');
  res.end(body);
}

/** JSON with versions and other bigints as decimal strings. */
export function jsonText(body: unknown): string {
  return JSON.stringify(body, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/**
 * Why a request got no access, for the 401: no header, a header that is not `Bearer <token>`
 * (Basic auth, the token alone, a token with a space), or a token the server does not know.
 * All were "missing or wrong token", which sent a user with a malformed header hunting for a
 * typo in the token. The header's text is never echoed (it may be the token itself).
 */
function noAccessReason(header: string): string {
  if (header === '') return 'no token: this server needs an Authorization: Bearer <token> header';
  if (bearer(header) === undefined) return 'the Authorization header is not of the form "Bearer <token>" (one word after Bearer; Basic and other schemes are not taken)';
  return 'wrong token (Authorization: Bearer <token>): the server has no such token';
}

function requireAccess(access: Access, need: RouteAccess, protectStatus: boolean, header = ''): void {
  if (need === 'public' || (need === 'status' && !protectStatus)) return;
  if (access === 'none') throw new TxnError('UNAUTHORIZED', noAccessReason(header));
  if (need === 'write' && access !== 'write') throw new HttpError('UNAUTHORIZED', 'this token is read-only: writes are refused', 403);
}

function checkQuery(q: URLSearchParams, allowed: readonly string[]): void {
  const seen = new Set<string>();
  for (const name of q.keys()) {
    if (!allowed.includes(name)) {
      throw new TxnError('INVALID_ARGUMENT', `unknown query parameter ${JSON.stringify(name)}; ${allowed.length ? `this endpoint takes ${allowed.join(', ')}` : 'this endpoint takes none'}`);
    }
    if (seen.has(name)) throw new TxnError('INVALID_ARGUMENT', `query parameter ${JSON.stringify(name)} is given twice`);
    seen.add(name);
  }
}

/** What a limit may be, for the message that refuses one (as the SDK, 0 means the default page). */
const badLimit = (what: string, got: unknown): TxnError =>
  new TxnError('INVALID_ARGUMENT', `${what} must be a whole number, 0 or more (0 or absent: the default page of ${DEFAULT_RANGE_LIMIT} rows), got ${JSON.stringify(got)}`);

function parseLimit(s: string | null | undefined): number {
  if (s === null || s === undefined || s === '') return DEFAULT_RANGE_LIMIT;
  if (!/^\d+$/.test(s)) throw badLimit('limit', s);
  const n = Number(s);
  return n === 0 ? DEFAULT_RANGE_LIMIT : n;
}

function parseBool(s: string | null, what: string): boolean {
  if (s === null || s === 'false') return false;
  if (s === 'true') return true;
  throw new TxnError('INVALID_ARGUMENT', `${what} must be true or false, got ${JSON.stringify(s)}`);
}

function pairs(flat: Uint8Array[]): [Uint8Array, Uint8Array][] {
  const out: [Uint8Array, Uint8Array][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

/** End of the user keyspace: the default end of a range (as in the CLI and the shell). */
const KEYSPACE_END = new Uint8Array([0xff]);

/**
 * A range's `end` as given (base64url). The empty string is refused: the empty key is before
 * every key, so a range that ends there holds nothing, and `end=` is what a script with an
 * unset variable sends (`?begin=$B&end=$E`): GET /v1/range answered no rows and hasMore false,
 * and GET /v1/subscribe a feed that never reported anything. Leaving `end` out means the end
 * of the user keyspace. (An empty key in a path is refused for the same reason.)
 */
export function decodeRangeEnd(s: unknown, what: string): Uint8Array {
  if (s === '') {
    throw new TxnError('INVALID_ARGUMENT', `${what} is empty: the empty key is before every key, so a range ending there holds nothing (an unset variable?); leave ${what} out for the end of the keyspace (\\xff)`);
  }
  return decodeBase64url(s, what);
}

/** Range bounds from base64url strings; `end` absent = the end of the user keyspace. */
function rangeOf(begin: unknown, end: unknown, what: string): KeyRange {
  const b = begin === undefined || begin === null ? new Uint8Array(0) : decodeBase64url(begin, `${what}begin`);
  const e = end === undefined || end === null ? KEYSPACE_END : decodeRangeEnd(end, `${what}end`);
  if (b.length > MAX_KEY_BYTES || e.length > MAX_KEY_BYTES) throw new TxnError('KEY_TOO_LARGE', `${what}begin and end are limited to ${MAX_KEY_BYTES} bytes`);
  return { begin: b, end: e };
}

const rows = (kvs: Uint8Array[]): { key: string; value: string }[] => pairs(kvs).map(([k, v]) => ({ key: enc(k), value: enc(v) }));

/** The data routes (the status, metrics and dashboard pages are added from HttpOptions). */
export const ROUTES: Route[] = [
  {
    method: 'GET',
    path: '/v1/kv/:key',
    access: 'read',
    handler: async ({ c, params, metrics }) => {
      const key = readKey(params[0]!, 'key');
      const started = performance.now();
      const value = await c.reads.get(await readVersionOf(c), key);
      metrics?.observeGet(started, key, value);
      return value === null
        ? { status: 404, body: { key: enc(key), keyText: keyText(key), value: null } }
        : { body: { key: enc(key), keyText: keyText(key), value: enc(value) } };
    },
  },
  {
    method: 'PUT',
    path: '/v1/kv/:key',
    access: 'write',
    // the body is one value: past the value limit it is refused unread (it was read up to
    // 10 MB, the transaction limit, then refused by the commit)
    maxBodyBytes: MAX_VALUE_BYTES,
    bodyTooLarge: (maxBytes, size) => new TxnError('VALUE_TOO_LARGE', `value is ${size === undefined ? `over ${maxBytes}` : size} bytes; limit ${MAX_VALUE_BYTES}`),
    handler: async ({ c, params, body, metrics }) => {
      const key = readKey(params[0]!, 'key');
      const mutations: WireMutation[] = [{ type: WireMutationType.Set, key, param: await body(), offset: 0 }];
      return { body: { key: enc(key), keyText: keyText(key), commitVersion: await commit(c, metrics, 0, [], mutations) } };
    },
  },
  {
    method: 'DELETE',
    path: '/v1/kv/:key',
    access: 'write',
    handler: async ({ c, params, metrics }) => {
      const key = readKey(params[0]!, 'key');
      const mutations: WireMutation[] = [{ type: WireMutationType.Clear, key, param: new Uint8Array(0), offset: 0 }];
      return { body: { key: enc(key), keyText: keyText(key), commitVersion: await commit(c, metrics, 0, [], mutations) } };
    },
  },
  {
    method: 'GET',
    path: '/v1/range',
    query: ['begin', 'end', 'limit', 'reverse'],
    access: 'read',
    handler: async ({ c, query, metrics }) => {
      const range = rangeOf(query.get('begin') ?? undefined, query.get('end') ?? undefined, '');
      const limit = parseLimit(query.get('limit'));
      const reverse = parseBool(query.get('reverse'), 'reverse');
      const started = performance.now();
      const r = await c.reads.getRange(await readVersionOf(c), range, limit, reverse);
      metrics?.observeRange(started, range.begin, range.end, r.kvs);
      return { body: { kvs: rows(r.kvs), hasMore: r.hasMore } };
    },
  },
  {
    method: 'POST',
    path: '/v1/txn',
    access: 'read',
    maxBodyBytes: MAX_TRANSACTION_BYTES * 2,
    handler: async ({ c, body, access, metrics }) => ({ body: await txn(c, await body(), access === 'write', metrics) }),
  },
  {
    method: 'POST',
    path: '/v1/snapshots',
    access: 'read',
    handler: async ({ c }) => ({ body: await snapshotsOf(c).create() }),
  },
  {
    method: 'GET',
    path: '/v1/snapshots',
    access: 'read',
    handler: async ({ c }) => ({ body: { snapshots: snapshotsOf(c).list() } }),
  },
  {
    method: 'POST',
    path: '/v1/snapshots/:id/renew',
    access: 'read',
    handler: async ({ c, params }) => ({ body: snapshotsOf(c).renew(params[0]!) }),
  },
  {
    method: 'DELETE',
    path: '/v1/snapshots/:id',
    access: 'read',
    handler: async ({ c, params }) => {
      snapshotsOf(c).release(params[0]!);
      return { body: { id: params[0]!, released: true } };
    },
  },
  {
    method: 'GET',
    path: '/v1/openapi.json',
    access: 'public',
    handler: async () => ({ body: OPENAPI }),
  },
];

/** A fresh read version: the cluster's (leader's) in cluster mode, else this server's. */
async function readVersionOf(c: Coordinator): Promise<number> {
  return c.front ? c.front.readVersion() : c.reads.readVersion();
}

/** One commit through the coordinator (through the cluster front in cluster mode), counted as the binary protocol's commits are. */
async function commit(c: Coordinator, m: RequestMetrics | undefined, readVersion: number, readConflicts: KeyRange[], mutations: WireMutation[], isTransaction = true): Promise<string> {
  const started = performance.now();
  // PUT and DELETE are transactions of their own (no read version); /v1/txn counted its own
  if (m && isTransaction) m.countTransaction();
  try {
    const input = { readVersion, readConflicts, mutations };
    const r = c.front ? await c.front.commit(input) : await c.commits.commit(input);
    m?.commitDone(started, BigInt(readVersion), mutations, r.commitVersion, 'COMMITTED');
    return String(r.commitVersion);
  } catch (err) {
    m?.commitDone(started, BigInt(readVersion), mutations, null, toWireError(err).code);
    throw err; // counted by code where it is answered
  }
}

/** Matches a uWS pattern against a path (for 404 versus 405). */
function matches(pattern: string, url: string): boolean {
  const p = pattern.split('/');
  const u = url.split('/');
  if (p.length !== u.length) return false;
  return p.every((seg, i) => seg.startsWith(':') ? u[i] !== '' : seg === u[i]);
}

/** The route parameter that is empty in `url` when `url` matches `pattern` save for empty parameters (uWS matches no route then). */
function emptyParam(pattern: string, url: string): string | undefined {
  const p = pattern.split('/');
  const u = url.split('/');
  if (p.length !== u.length || !p.every((seg, i) => seg.startsWith(':') || seg === u[i])) return undefined;
  return p.find((seg, i) => seg.startsWith(':') && u[i] === '')?.slice(1);
}

/**
 * The empty key is a key (the spec allows it) but has no path form: its base64url is the
 * empty string, and `/v1/kv/` is also what a script with an unset variable sends, so it
 * is refused saying where the empty key is named ("key": "" in POST /v1/txn).
 */
function emptyParamError(method: string, url: string, param: string): TxnError {
  if (param === 'key') {
    return new TxnError('INVALID_ARGUMENT', `${method} ${url} names no key: the empty key has no path form (its base64url is the empty string); read or write it with POST /v1/txn and "key": "", e.g. {"writes":[{"op":"set","key":"","value":"aGk"}]}`);
  }
  return new TxnError('INVALID_ARGUMENT', `${method} ${url}: the path's {${param}} is empty`);
}

const UWS_METHOD: Record<Method, 'get' | 'put' | 'del' | 'post'> = { GET: 'get', PUT: 'put', DELETE: 'del', POST: 'post' };

export function registerHttpRoutes(app: TemplatedApp, o: HttpOptions): void {
  const c = o.coordinator;
  const table: Route[] = [...ROUTES, ...(o.routes ?? [])];
  table.push({ method: 'GET', path: '/v1/status', access: 'status', handler: async () => ({ body: await o.status() }) });
  for (const [path, page] of Object.entries(o.pages ?? {})) {
    table.push({
      method: 'GET',
      path,
      access: page.public ? 'public' : 'status',
      handler: async () => {
        const [contentType, body] = await page();
        return { contentType, body };
      },
    });
  }
  const httpMetrics = (): RequestMetrics | undefined => requestMetricsOf(c, 'http');

  const answer = (res: HttpResponse, route: string, method: string, work: () => Promise<Answer>, state: RequestState): void => {
    const m = httpMetrics();
    if (m) m.inflight++;
    work().then(
      (a) => {
        if (m) m.inflight--;
        m?.response(method, route, a.status ?? 200);
        if (state.aborted) return;
        res.cork(() => {
          res.writeStatus(statusLine(a.status ?? 200));
          res.writeHeader('content-type', a.contentType ?? 'application/json');
          endAnswer(res, a.contentType ? (a.body as string | Uint8Array) : jsonText(a.body), state);
        });
      },
      (err: unknown) => {
        const e = toWireError(err);
        const status = err instanceof HttpError ? err.status : STATUS_OF[e.code];
        const code = err instanceof HttpError && err.httpCode ? err.httpCode : e.code;
        if (m) m.inflight--;
        m?.response(method, route, status);
        m?.countError(code);
        if (state.aborted) return;
        res.cork(() => {
          res.writeStatus(statusLine(status)).writeHeader('content-type', 'application/json');
          if (err instanceof HttpError) for (const [k, v] of Object.entries(err.headers)) res.writeHeader(k, v);
          endAnswer(res, jsonText({ error: { code, message: e.message } }), state);
        });
      },
    );
  };

  for (const route of table) {
    const nParams = route.path.split('/').filter((s) => s.startsWith(':')).length;
    app[UWS_METHOD[route.method]](route.path, (res, req) => {
      // everything from req is read now: uWS requests are gone once this returns
      const params = Array.from({ length: nParams }, (_, i) => req.getParameter(i) ?? '');
      const query = new URLSearchParams(req.getQuery() ?? '');
      const authorization = req.getHeader('authorization');
      const access = o.tokens.check(bearer(authorization));
      const state: RequestState = { aborted: false, close: false };
      if (route.raw) {
        try {
          requireAccess(access, route.access, o.protectStatus, authorization);
          checkQuery(query, route.query ?? []);
        } catch (err) {
          res.onAborted(() => (state.aborted = true));
          answer(res, route.path, route.method, () => Promise.reject(err), state);
          return;
        }
        route.raw(res, req, { c, params, query, access, metrics: httpMetrics() });
        return;
      }
      res.onAborted(() => (state.aborted = true));
      const body = route.maxBodyBytes ? readBody(res, req.getHeader('content-length'), route.maxBodyBytes, state, route.bodyTooLarge) : EMPTY;
      answer(
        res,
        route.path,
        route.method,
        async () => {
          requireAccess(access, route.access, o.protectStatus, authorization);
          checkQuery(query, route.query ?? []);
          return route.handler!({ c, params, query, body: () => body, access, metrics: httpMetrics() });
        },
        state,
      );
    });
  }

  app.any('/*', (res, req) => {
    const url = req.getUrl();
    const method = req.getCaseSensitiveMethod?.() ?? req.getMethod().toUpperCase();
    const state: RequestState = { aborted: false, close: false };
    res.onAborted(() => (state.aborted = true));
    const allowed = [...new Set(table.filter((r) => matches(r.path, url)).map((r) => r.method))];
    answer(
      res,
      allowed.length ? url : 'unknown',
      method,
      async () => {
        const empty = table.filter((r) => r.method === method).map((r) => emptyParam(r.path, url)).find((p) => p !== undefined);
        if (empty !== undefined) throw emptyParamError(method, url, empty);
        if (allowed.length === 0) throw new HttpError('INVALID_ARGUMENT', `no such endpoint: ${url} (GET /v1/openapi.json lists them)`, 404, 'NOT_FOUND');
        throw new HttpError('INVALID_ARGUMENT', `${method} is not allowed on ${url}; allowed: ${allowed.join(', ')}`, 405, 'METHOD_NOT_ALLOWED', { allow: allowed.join(', ') });
      },
      state,
    );
  });
}

const TXN_FIELDS = ['readVersion', 'reads', 'writes'];
/**
 * Reads in one POST /v1/txn. Each is its own request to a shard, all at once: 100,000 point
 * reads (a 2.6 MB body) held the main thread 49 s (every other client waited as long, RSS
 * +370 MB), 1,000,000 (13 MB, under the body limit) for minutes at 3.8 GB. More reads:
 * several requests at one readVersion.
 */
export const MAX_TXN_READS = 1000;
const READ_KEY_FIELDS = ['key', 'snapshot'];
const READ_RANGE_FIELDS = ['begin', 'end', 'limit', 'reverse', 'snapshot'];
const WRITE_FIELDS: Record<string, string[]> = { set: ['op', 'key', 'value'], clear: ['op', 'key'], clearRange: ['op', 'begin', 'end'] };

function onlyFields(o: Record<string, unknown>, allowed: string[], what: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new TxnError('INVALID_ARGUMENT', `${what}: unknown field ${JSON.stringify(k)}; expected ${allowed.join(', ')}`);
  }
}

const isObject = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x);

/**
 * The first field given twice in one object of `text` (valid JSON), as "writes[0]: field
 * "key"", or undefined. JSON.parse keeps the last of them silently, so {"writes": [a],
 * "writes": [b]} wrote b alone; RFC 8259 §4 leaves such input's meaning open, so it is
 * refused. jsonc-parser's visitor sees every property name (escapes decoded, as JSON.parse
 * does); it costs 0.4-0.8x of JSON.parse (a 13 MB body of 100 KB values: 32-47 ms against
 * 78-112 ms; 15 MB of 150,000 small writes: 216-420 ms against 283-529 ms).
 */
function repeatedField(text: string): string | undefined {
  const objects: Set<string>[] = [];
  let found: string | undefined;
  visitJson(text, {
    onObjectBegin: () => {
      objects.push(new Set());
      return found === undefined; // false: skip what is inside, the answer is known
    },
    onArrayBegin: () => found === undefined,
    onObjectEnd: () => void objects.pop(),
    onObjectProperty: (name, _offset, _length, _line, _column, pathOf) => {
      const names = objects[objects.length - 1]!;
      if (found === undefined && names.has(name)) {
        const at = pathOf().map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
        found = `${at === '' ? 'request body' : at}: field ${JSON.stringify(name)}`;
      }
      names.add(name);
    },
  });
  return found;
}

/**
 * POST /v1/txn: { readVersion?, reads?: [{key, snapshot?} | {begin?, end?, limit?,
 * reverse?, snapshot?}], writes?: [{op:'set',key,value} | {op:'clear',key} |
 * {op:'clearRange',begin,end}] }. Reads run at the read version (a fresh one if
 * absent) and, unless snapshot, guard the commit against conflicts, as get/getRange do
 * in the SDK. Returns { readVersion, results, commitVersion } (versions as decimal
 * strings; commitVersion "-1" when nothing was written). Reads do not see this
 * request's own writes.
 */
async function txn(c: Coordinator, raw: Uint8Array, mayWrite: boolean, m: RequestMetrics | undefined): Promise<unknown> {
  let body: unknown;
  let text: string;
  try {
    text = utf8.decode(raw);
    body = JSON.parse(text);
  } catch (err) {
    throw new TxnError('INVALID_ARGUMENT', `request body must be UTF-8 JSON: ${(err as Error).message}`);
  }
  let repeated: string | undefined;
  try {
    repeated = repeatedField(text);
  } catch (err) {
    // jsonc-parser's visitor recurses per level: 20,000 nested arrays (a 40 KB body JSON.parse
    // takes) overflowed the stack, answered 500 FAILED "Maximum call stack size exceeded"
    if (err instanceof RangeError) throw new TxnError('INVALID_ARGUMENT', 'request body nests too deeply (thousands of arrays or objects inside each other); a txn body is at most 3 levels deep');
    throw err;
  }
  if (repeated !== undefined) throw new TxnError('INVALID_ARGUMENT', `${repeated} is given twice; a field may appear once in an object`);
  if (!isObject(body)) throw new TxnError('INVALID_ARGUMENT', 'request body must be a JSON object');
  onlyFields(body, TXN_FIELDS, 'request body');
  const reads = body.reads ?? [];
  const writes = body.writes ?? [];
  if (!Array.isArray(reads) || !Array.isArray(writes)) throw new TxnError('INVALID_ARGUMENT', 'reads and writes must be arrays');
  if (reads.length > MAX_TXN_READS) {
    throw new TxnError('TRANSACTION_TOO_LARGE', `${reads.length} reads in one request; at most ${MAX_TXN_READS}: split them over several requests that give the same readVersion`);
  }
  // the range reads share one page's bytes (each still answers at least one row), as one
  // range read has: 1,000 range reads of 1 MB pages were a 1 GB reply
  const rangeReads = reads.filter((r) => isObject(r) && !('key' in r)).length;
  const rangeBytes = Math.max(1, Math.floor(RANGE_PAGE_MAX_BYTES / Math.max(1, rangeReads)));
  // every write is checked before anything is read
  const mutations: WireMutation[] = writes.map((w: unknown, i) => {
    const what = `writes[${i}]`;
    if (!isObject(w)) throw new TxnError('INVALID_ARGUMENT', `${what} must be an object with op`);
    const fields = typeof w.op === 'string' ? WRITE_FIELDS[w.op] : undefined;
    if (!fields) throw new TxnError('INVALID_ARGUMENT', `${what}: unknown op ${JSON.stringify(w.op)}; expected set, clear or clearRange`);
    onlyFields(w, fields, what);
    switch (w.op) {
      case 'set':
        return { type: WireMutationType.Set, key: decodeBase64url(w.key, `${what}.key`), param: decodeBase64url(w.value, `${what}.value`), offset: 0 };
      case 'clear':
        return { type: WireMutationType.Clear, key: decodeBase64url(w.key, `${what}.key`), param: new Uint8Array(0), offset: 0 };
      default:
        return { type: WireMutationType.ClearRange, key: decodeBase64url(w.begin, `${what}.begin`), param: decodeBase64url(w.end, `${what}.end`), offset: 0 };
    }
  });
  if (mutations.length > 0 && !mayWrite) throw new HttpError('UNAUTHORIZED', 'this token is read-only: writes are refused', 403);
  let readVersion: number;
  if (body.readVersion !== undefined) {
    // past 2^53 FUTURE_VERSION (409), as on the binary protocol (keys/versions.ts)
    readVersion = decimalVersion(body.readVersion, 'readVersion');
    // as setReadVersion: 0 is no version (it was answered 200 with nothing read, or TOO_OLD)
    if (readVersion <= 0) throw new TxnError('INVALID_ARGUMENT', `readVersion must be positive, got ${JSON.stringify(body.readVersion)}`);
  } else readVersion = await readVersionOf(c);
  m?.countTransaction();
  const conflicts: KeyRange[] = [];
  const results = await Promise.all(
    reads.map(async (r: unknown, i) => {
      const what = `reads[${i}]`;
      if (isObject(r) && 'key' in r) {
        onlyFields(r, READ_KEY_FIELDS, what);
        const key = decodeBase64url(r.key, `${what}.key`);
        if (key.length > MAX_KEY_BYTES) throw new TxnError('KEY_TOO_LARGE', `${what}.key is ${key.length} bytes; limit ${MAX_KEY_BYTES}`);
        if (r.snapshot !== undefined && typeof r.snapshot !== 'boolean') throw new TxnError('INVALID_ARGUMENT', `${what}.snapshot must be true or false`);
        if (r.snapshot !== true) conflicts.push({ begin: key, end: keyAfter(key) });
        const started = performance.now();
        const v = await c.reads.get(readVersion, key);
        m?.observeGet(started, key, v);
        return { key: enc(key), value: v === null ? null : enc(v) };
      }
      if (isObject(r)) {
        onlyFields(r, READ_RANGE_FIELDS, what);
        const range = rangeOf(r.begin, r.end, `${what}.`);
        if (r.limit !== undefined && (typeof r.limit !== 'number' || !Number.isInteger(r.limit) || r.limit < 0)) throw badLimit(`${what}.limit`, r.limit);
        for (const f of ['reverse', 'snapshot'] as const) if (r[f] !== undefined && typeof r[f] !== 'boolean') throw new TxnError('INVALID_ARGUMENT', `${what}.${f} must be true or false`);
        const limit = parseLimit(r.limit === undefined ? undefined : String(r.limit));
        const reverse = r.reverse === true;
        const started = performance.now();
        const got = await c.reads.getRange(readVersion, range, limit, reverse, rangeBytes);
        m?.observeRange(started, range.begin, range.end, got.kvs);
        if (r.snapshot !== true) conflicts.push(conflictRangeOf(range, pairs(got.kvs), got.hasMore, reverse));
        return { kvs: rows(got.kvs), hasMore: got.hasMore };
      }
      throw new TxnError('INVALID_ARGUMENT', `${what} must be {key} or {begin, end}`);
    }),
  );
  const rv = String(readVersion);
  if (mutations.length === 0) return { readVersion: rv, results, commitVersion: '-1' };
  return { readVersion: rv, results, commitVersion: await commit(c, m, readVersion, conflicts, mutations, false) };
}
