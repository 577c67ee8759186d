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
export async function dispatch(c: Dispatcher, body: Exclude<RequestBody, { type: 'get' }> | UnknownBody, replyBudget = RANGE_PAGE_MAX_BYTES): Promise<ReplyBody> {
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

/**
 * hot path: the point reads of one frame, together: one request per shard instead of
 * one per key (see ReadRouter.getMany). Answers in the order of `bodies`.
 */
export async function dispatchGets(c: Dispatcher, bodies: Extract<RequestBody, { type: 'get' }>[], replyBudget = Infinity): Promise<ReplyBody[]> {
  const m = requestMetricsOf(c);
  const started = m === undefined ? 0 : performance.now();
  const versions: number[] = [];
  const keys: Uint8Array[] = [];
  const refused: (ReplyBody | null)[] = [];
  for (const b of bodies) {
    if (m) m.begin();
    try {
      versions.push(version(b.readVersion, 'read version'));
      keys.push(readKey(b.key, 'key'));
      refused.push(null);
    } catch (err) {
      const e = toWireError(err);
      refused.push({ type: 'error', code: e.code, message: e.message });
      versions.push(0);
      keys.push(new Uint8Array(0));
    }
  }
  let results: (Uint8Array | null | TxnError)[];
  try {
    results = await c.reads.getMany(versions, keys, replyBudget);
  } catch (err) {
    // every read of the batch fails together (e.g. a shard shut down): count each one
    const e = toWireError(err);
    if (m) for (let i = 0; i < bodies.length; i++) m.failed(refused[i]?.type === 'error' ? (refused[i] as { code: string }).code : e.code);
    return bodies.map((_, i) => refused[i] ?? { type: 'error', code: e.code, message: e.message });
  }
  return results.map((r, i): ReplyBody => {
    const early = refused[i];
    if (early) {
      if (m && early.type === 'error') m.failed(early.code);
      return early;
    }
    if (r instanceof TxnError) {
      if (m) m.failed(r.code);
      return { type: 'error', code: r.code, message: r.message };
    }
    if (m) m.getDone(started, keys[i]!, r);
    return { type: 'get', value: r };
  });
}
