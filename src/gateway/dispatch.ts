// hot path: one decoded request -> the coordinator -> one reply body. Main thread.
// The gateway never talks to shards; it converts wire types (bigint versions,
// selectors) into the coordinator's and back.
import { TxnError, toWireError } from '../errors.js';
import { MAX_KEY_BYTES } from '../keys/limits.js';
import { DEFAULT_RANGE_LIMIT, RANGE_PAGE_MAX_BYTES, selectorsToRange } from '../keys/ranges.js';
import type { Coordinator } from '../coordinator/coordinator.js';
import type { WireMutation } from '../coordinator/commit-plan.js';
import type { ReplyBody, RequestBody, UnknownBody } from '../protocol/codec.js';
import { requestMetricsOf } from '../metrics/request-metrics.js';

/** What dispatch needs: the coordinator on the main thread; a gateway thread's stand-in (gateway-worker.ts) there. */
export type Dispatcher = Pick<Coordinator, 'front' | 'reads' | 'commits'>;

function version(v: bigint, what: string): number {
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new TxnError('INVALID_ARGUMENT', `${what} ${v} is out of range`);
  return Number(v);
}

function readKey(k: Uint8Array, what: string): Uint8Array {
  if (k.length > MAX_KEY_BYTES) throw new TxnError('KEY_TOO_LARGE', `${what} is ${k.length} bytes; limit ${MAX_KEY_BYTES}`);
  return k;
}

/** One request that is not a point read (those go through dispatchGets, a frame's worth at a time). */
export async function dispatch(c: Dispatcher, body: Exclude<RequestBody, { type: 'get' | 'getMany' }> | UnknownBody, replyBudget = RANGE_PAGE_MAX_BYTES): Promise<ReplyBody> {
  // latency and byte counters (src/metrics/request-metrics.ts): plain fields, no allocation
  const m = requestMetricsOf(c);
  const started = m === undefined ? 0 : m.begin();
  try {
    switch (body.type) {
      case 'grv':
        if (m) m.transactionStarted();
        return { type: 'grv', readVersion: BigInt(c.front ? await c.front.readVersion() : c.reads.readVersion()) };
      case 'range': {
        const range = selectorsToRange(
          { key: readKey(body.beginKey, 'begin key'), inclusive: body.beginInclusive },
          { key: readKey(body.endKey, 'end key'), inclusive: body.endInclusive },
        );
        const limit = body.limit > 0 ? body.limit : DEFAULT_RANGE_LIMIT;
        // a page holds at most the reply bytes the gateway granted (after its first row; hasMore says the rest)
        const r = await c.reads.getRange(version(body.readVersion, 'read version'), range, limit, body.reverse, Math.min(replyBudget, RANGE_PAGE_MAX_BYTES));
        if (m) m.rangeDone(started, body.beginKey, body.endKey, r.kvs);
        return { type: 'range', kvs: r.kvs, hasMore: r.hasMore };
      }
      case 'commit': {
        if (body.mutations.length === 0) {
          if (m) m.end();
          return { type: 'commit', commitVersion: -1n, versionstamp: new Uint8Array(0) };
        }
        // a write-only transaction takes no read version: it starts (and is counted) here
        if (m && body.readVersion === 0n) m.countTransaction();
        const input = {
          readVersion: version(body.readVersion, 'read version'),
          readConflicts: body.readConflicts,
          mutations: body.mutations as WireMutation[],
        };
        const r = c.front ? await c.front.commit(input) : await c.commits.commit(input);
        if (m) {
          m.end();
          m.commitDone(started, body.readVersion, body.mutations, r.commitVersion, 'COMMITTED');
        }
        return { type: 'commit', commitVersion: BigInt(r.commitVersion), versionstamp: r.versionstamp };
      }
      case 'hello':
        throw new TxnError('PROTOCOL_ERROR', 'HelloRequest may only be sent once, as the first request');
      case 'watch':
      case 'subscribe':
      case 'subscribeAck':
      case 'cancel':
        // connection-bound requests: the gateway (socket.ts) answers them itself
        throw new TxnError('PROTOCOL_ERROR', `${body.type} requests are not served by this gateway`);
      case 'unknown':
        throw new TxnError('PROTOCOL_ERROR', `unknown message type ${body.bodyType}`);
    }
  } catch (err) {
    const e = toWireError(err);
    if (m) {
      m.failed(e.code);
      if (body.type === 'commit') m.commitDone(started, body.readVersion, body.mutations, null, e.code);
    }
    return { type: 'error', code: e.code, message: e.message };
  }
}

/** One point read's outcome: its value (null = absent) or its error. */
export type GetResult = Uint8Array | null | { code: string; message: string };

function isError(r: GetResult): r is { code: string; message: string } {
  return r !== null && !(r instanceof Uint8Array);
}

/**
 * hot path: the point reads of one frame, together: one request per shard instead of
 * one per key (see ReadRouter.getMany). Answers in the order of `keys`.
 */
export async function dispatchGets(c: Dispatcher, readVersions: bigint[], keys: Uint8Array[], replyBudget = Infinity): Promise<GetResult[]> {
  const m = requestMetricsOf(c);
  const started = m === undefined ? 0 : performance.now();
  const n = keys.length;
  const versions: number[] = new Array(n);
  const checked: Uint8Array[] = new Array(n);
  let refused: (GetResult | undefined)[] | null = null;
  for (let i = 0; i < n; i++) {
    if (m) m.begin();
    try {
      versions[i] = version(readVersions[i]!, 'read version');
      checked[i] = readKey(keys[i]!, 'key');
    } catch (err) {
      const e = toWireError(err);
      (refused ??= new Array<GetResult | undefined>(n))[i] = { code: e.code, message: e.message };
      versions[i] = 0;
      checked[i] = EMPTY;
    }
  }
  let results: (Uint8Array | null | TxnError)[];
  try {
    results = await c.reads.getMany(versions, checked, replyBudget);
  } catch (err) {
    // every read of the batch fails together (e.g. a shard shut down): count each one
    const e = toWireError(err);
    const out: GetResult[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const early = refused?.[i];
      out[i] = early ?? { code: e.code, message: e.message };
      if (m) m.failed(early && isError(early) ? early.code : e.code);
    }
    return out;
  }
  const out: GetResult[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const early = refused?.[i];
    if (early !== undefined) {
      if (m && isError(early)) m.failed(early.code);
      out[i] = early;
      continue;
    }
    const r = results[i]!;
    if (r instanceof TxnError) {
      if (m) m.failed(r.code);
      out[i] = { code: r.code, message: r.message };
      continue;
    }
    if (m) m.getDone(started, checked[i]!, r);
    out[i] = r;
  }
  return out;
}

const EMPTY = new Uint8Array(0);

/**
 * The point reads of one frame, GetRequests and GetManyRequests alike, flattened for one
 * dispatchGets; replies() turns the per-key results back into one reply per request.
 */
export class FrameGets {
  readonly versions: bigint[] = [];
  readonly keys: Uint8Array[] = [];
  /** Per request: its id, its first key, its number of keys, and whether it is a GetManyRequest. */
  private readonly requests: { requestId: number; start: number; count: number; many: boolean }[] = [];

  add(requestId: number, body: Extract<RequestBody, { type: 'get' | 'getMany' }>): void {
    if (body.type === 'get') {
      this.requests.push({ requestId, start: this.keys.length, count: 1, many: false });
      this.versions.push(body.readVersion);
      this.keys.push(body.key);
      return;
    }
    this.requests.push({ requestId, start: this.keys.length, count: body.keys.length, many: true });
    for (const k of body.keys) {
      this.versions.push(body.readVersion);
      this.keys.push(k);
    }
  }

  /** Requests held. */
  get requestCount(): number {
    return this.requests.length;
  }

  /** Each request's reply and the value bytes it holds, in arrival order. */
  replies(results: readonly GetResult[]): { requestId: number; body: ReplyBody; bytes: number }[] {
    const out: { requestId: number; body: ReplyBody; bytes: number }[] = new Array(this.requests.length);
    for (let q = 0; q < this.requests.length; q++) {
      const { requestId, start, count, many } = this.requests[q]!;
      if (!many) {
        const r = results[start]!;
        out[q] = isError(r) ? { requestId, body: { type: 'error', code: r.code, message: r.message }, bytes: 0 } : { requestId, body: { type: 'get', value: r }, bytes: r ? r.length : 0 };
        continue;
      }
      const values: (Uint8Array | null)[] = new Array(count);
      let errors: ({ code: string; message: string } | null)[] | null = null;
      let bytes = 0;
      for (let j = 0; j < count; j++) {
        const r = results[start + j]!;
        if (isError(r)) {
          (errors ??= new Array<{ code: string; message: string } | null>(count).fill(null))[j] = r;
          values[j] = null;
        } else {
          values[j] = r;
          if (r) bytes += r.length;
        }
      }
      out[q] = { requestId, body: { type: 'getMany', values, errors }, bytes };
    }
    return out;
  }

  /** The same reply (an error) for every request held. */
  each(f: (requestId: number) => void): void {
    for (const r of this.requests) f(r.requestId);
  }
}
