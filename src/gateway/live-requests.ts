// Connection-bound requests: watches and change feeds (docs/protocol.md, "Watches and
// change feeds"). Main thread. They live as long as their connection; socket.ts calls
// closeLive() when it closes. They do not count as requests in flight (a watch may
// wait for hours); their own limits are maxWatchesPerConnection and, per feed, the
// consumer's window plus maxFeedBufferBytes held for it.
import { TxnError } from '../errors.js';
import { MAX_KEY_BYTES } from '../keys/limits.js';
import { clientVersion } from '../keys/versions.js';
import { requestMetricsOf } from '../metrics/request-metrics.js';
import type { Coordinator } from '../coordinator/coordinator.js';
import type { FeedVersion } from '../coordinator/live-hub.js';
import type { MutationMsg, ReplyBody, RequestBody, VersionChangesMsg } from '../protocol/codec.js';

export interface LiveLimits {
  maxWatchesPerConnection: number;
  maxFeedBufferBytes: number;
}

interface FeedState {
  feedId: number | null;
  window: number;
  /** Sent and not acknowledged. */
  unacked: number;
  held: FeedVersion[];
  heldBytes: number;
  ended: boolean;
}

/** A connection's watches (request id -> watch id) and feeds (request id -> state). */
export interface LiveConn {
  watches: Map<number, number>;
  feeds: Map<number, FeedState>;
}

export function newLiveConn(): LiveConn {
  return { watches: new Map(), feeds: new Map() };
}

type Reply = (requestId: number, body: ReplyBody) => void;

const DEFAULT_WINDOW = 1024 * 1024;
const EMPTY = new Uint8Array(0);

function versionBytes(v: FeedVersion): number {
  let n = 16;
  for (const m of v.mutations) n += 16 + m.key.length + m.param.length;
  return n;
}

/**
 * The ErrorReply that ends a watch or a feed, counted in the binary protocol's errors by
 * code (txkv_errors_total) as every other request's is; a CANCELED the client asked for
 * (CancelRequest) is an answer, not an error, and is not counted.
 */
function errorBody(c: Coordinator, err: unknown): ReplyBody {
  const e = err instanceof TxnError ? err : new TxnError('FAILED', String(err));
  requestMetricsOf(c)?.countError(e.code);
  return { type: 'error', code: e.code, message: e.message };
}

/** Handles a watch, subscribe, subscribeAck or cancel request; false for any other request. */
export function handleLive(c: Coordinator, limits: LiveLimits, st: LiveConn, requestId: number, body: RequestBody, reply: Reply): boolean {
  switch (body.type) {
    case 'watch': {
      if (body.key.length > MAX_KEY_BYTES) {
        reply(requestId, errorBody(c, new TxnError('KEY_TOO_LARGE', `watched key is ${body.key.length} bytes; limit ${MAX_KEY_BYTES}`)));
        return true;
      }
      if (st.watches.size >= limits.maxWatchesPerConnection) {
        reply(
          requestId,
          errorBody(c, new TxnError('RESOURCE_CONSTRAINED', `this connection has ${st.watches.size} watches pending; limit ${limits.maxWatchesPerConnection} (limits.maxWatchesPerConnection)`)),
        );
        return true;
      }
      if (st.watches.has(requestId)) {
        reply(requestId, errorBody(c, new TxnError('PROTOCOL_ERROR', `request id ${requestId} already names a pending watch`)));
        return true;
      }
      // copies: the request's buffer is the frame's, released after the frame
      const watchId = c.live.watch(
        body.key.slice(),
        body.present,
        body.value.slice(),
        (v) => {
          if (st.watches.get(requestId) !== watchId) return;
          st.watches.delete(requestId);
          reply(requestId, { type: 'watch', version: BigInt(v) });
        },
        (err) => {
          if (st.watches.get(requestId) !== watchId) return;
          st.watches.delete(requestId);
          reply(requestId, errorBody(c, err));
        },
      );
      st.watches.set(requestId, watchId);
      return true;
    }
    case 'subscribe': {
      subscribe(c, limits, st, requestId, body, reply);
      return true;
    }
    case 'subscribeAck': {
      const f = st.feeds.get(body.subscribeRequestId);
      if (f) {
        f.unacked = Math.max(0, f.unacked - body.bytes);
        pump(f, body.subscribeRequestId, reply);
      }
      return true;
    }
    case 'cancel': {
      const watchId = st.watches.get(body.targetRequestId);
      if (watchId !== undefined) {
        st.watches.delete(body.targetRequestId);
        c.live.cancelWatches([watchId]);
        reply(body.targetRequestId, { type: 'error', code: 'CANCELED', message: 'watch canceled' });
        return true;
      }
      const f = st.feeds.get(body.targetRequestId);
      if (f) {
        endFeed(c, st, body.targetRequestId);
        reply(body.targetRequestId, { type: 'error', code: 'CANCELED', message: 'subscription canceled' });
      }
      return true;
    }
    default:
      return false;
  }
}

function subscribe(c: Coordinator, limits: LiveLimits, st: LiveConn, requestId: number, body: Extract<RequestBody, { type: 'subscribe' }>, reply: Reply): void {
  const f: FeedState = { feedId: null, window: body.windowBytes > 0 ? body.windowBytes : DEFAULT_WINDOW, unacked: 0, held: [], heldBytes: 0, ended: false };
  try {
    if (body.begin.length > MAX_KEY_BYTES || body.end.length > MAX_KEY_BYTES) throw new TxnError('KEY_TOO_LARGE', `subscribed range bounds are limited to ${MAX_KEY_BYTES} bytes`);
    if (st.feeds.has(requestId)) throw new TxnError('PROTOCOL_ERROR', `request id ${requestId} already names a feed`);
    // 0 is "now" on the wire; a negative version is a client bug, not "now"
    if (body.fromVersion < 0n) throw new TxnError('INVALID_ARGUMENT', `fromVersion ${body.fromVersion} is out of range (0 = now, else a version)`);
    const from = body.fromVersion > 0n ? clientVersion(body.fromVersion, 'fromVersion') : undefined;
    st.feeds.set(requestId, f);
    c.live
      .subscribe(body.begin.slice(), body.end.slice(), from, {
        deliver: (versions) => {
          if (f.ended) return;
          for (const v of versions) {
            f.held.push(v);
            f.heldBytes += versionBytes(v);
          }
          pump(f, requestId, reply);
          if (f.heldBytes > limits.maxFeedBufferBytes) {
            endFeed(c, st, requestId);
            reply(
              requestId,
              errorBody(c, new TxnError('RESOURCE_CONSTRAINED', `subscriber too slow: ${f.heldBytes} bytes of changes held unacknowledged; limit ${limits.maxFeedBufferBytes} (limits.maxFeedBufferBytes)`)),
            );
          }
        },
        fail: (err) => {
          if (f.ended) return;
          endFeed(c, st, requestId);
          reply(requestId, errorBody(c, err));
        },
      })
      .then(
        (feedId) => {
          f.feedId = feedId;
          if (f.ended) c.live.unsubscribe(feedId);
        },
        (err: unknown) => {
          if (f.ended) return;
          f.ended = true;
          st.feeds.delete(requestId);
          reply(requestId, errorBody(c, err));
        },
      );
  } catch (err) {
    st.feeds.delete(requestId);
    reply(requestId, errorBody(c, err));
  }
}

/** Sends held versions while the consumer's window has room (at least one version at a time). */
function pump(f: FeedState, requestId: number, reply: Reply): void {
  while (!f.ended && f.held.length > 0 && f.unacked < f.window) {
    const versions: VersionChangesMsg[] = [];
    let bytes = 0;
    while (f.held.length > 0 && (versions.length === 0 || f.unacked + bytes + versionBytes(f.held[0]!) <= f.window)) {
      const v = f.held.shift()!;
      const n = versionBytes(v);
      bytes += n;
      versions.push({
        version: BigInt(v.version),
        mutations: v.mutations.map((m): MutationMsg => ({ type: m.kind, key: m.key, param: m.kind === 1 ? EMPTY : m.param, offset: 0 })),
      });
    }
    f.heldBytes -= bytes;
    f.unacked += bytes;
    reply(requestId, { type: 'changes', versions, bytes });
  }
}

function endFeed(c: Coordinator, st: LiveConn, requestId: number): void {
  const f = st.feeds.get(requestId);
  if (!f) return;
  f.ended = true;
  f.held = [];
  f.heldBytes = 0;
  st.feeds.delete(requestId);
  if (f.feedId !== null) c.live.unsubscribe(f.feedId);
}

/** The connection closed: drop its watches and feeds on the server (nobody is left to answer). */
export function closeLive(c: Coordinator, st: LiveConn): void {
  c.live.cancelWatches(st.watches.values());
  st.watches.clear();
  for (const id of [...st.feeds.keys()]) endFeed(c, st, id);
}
