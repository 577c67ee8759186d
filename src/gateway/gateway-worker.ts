// hot path: a gateway thread (server.gatewayThreads > 0). Worker thread. The main thread
// keeps the sockets (uWS: accept, TLS, receive, send, Hello, HTTP, watches and feeds) and
// the oracle; a connection's frames after its Hello come here, and this thread does the
// per-request work: frame verification and FlatBuffers decoding, admission of each
// request, point and range reads (straight to the shard workers on ports of its own, with
// its own copy of the shard map), and reply encoding. Read versions and commits go to the
// main thread in one message per event-loop turn (gateway-threads.ts answers them).
// Same decisions, same refusals as socket.ts's single-thread path.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { TxnError, toWireError } from '../errors.js';
import { RANGE_PAGE_MAX_BYTES } from '../keys/ranges.js';
import { decodeRequests, FRAME_ERROR_REQUEST_ID, ReplyEncoder, FrameLimitError, frameRefusalMessage, RESERVED_REQUEST_ID_MESSAGE, type Envelope, type ReplyBody, type RequestBody } from '../protocol/codec.js';
import { ReadRouter, type ReadClock } from '../coordinator/read-router.js';
import { ShardMap } from '../coordinator/shard-map.js';
import type { CommitResult } from '../coordinator/commit-coordinator.js';
import type { CommitInput } from '../coordinator/commit-plan.js';
import type { ClientFront } from '../coordinator/coordinator.js';
import { GATEWAY_ID_SPAN, type ShardReply, type ShardRequest } from '../shard/interface.js';
import { decodeReplies, RequestOutbox, type ShardMessage } from '../shard/wire.js';
import { RequestMetrics, attachRequestMetrics } from '../metrics/request-metrics.js';
import { threadId } from '../metrics/thread-cpu.js';
import { dispatch, FrameGets, freeRangePages, RoundsInFlight, serveGets, type Dispatcher } from './dispatch.js';
import { duplicateIdMessage, holdsId, InflightIds } from './inflight-ids.js';
import { Admission } from './limits.js';
import { idAfter, IdTable } from '../client/id-table.js';
import type { Answer, Call, FromGateway, FrameIn, GatewayWorkerInit, MetricsDelta, ToGateway } from './gateway-protocol.js';

type Outgoing = ShardRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

const init = workerData as GatewayWorkerInit;
const main = parentPort!;

// ---- one message to the main thread per turn ----
let out: FromGateway = {};
let outScheduled = false;
const transfer: ArrayBuffer[] = [];
const flushOut = (): void => {
  outScheduled = false;
  flushReplies();
  const m = out;
  out = {};
  main.postMessage(m, transfer.splice(0));
};
const scheduleOut = (): void => {
  if (!outScheduled) {
    outScheduled = true;
    setImmediate(flushOut);
  }
};

// ---- calls to the main thread (read versions, commits, version waits, the map) ----
let nextCall = 1;
/**
 * Not a Map: one add and one delete per call made V8 rehash its table every few hundred
 * calls and link the old table to the new one, which scavenges keep alive (and promote, with
 * every callback they hold) once one table is in the old generation (src/client/id-table.ts).
 */
const calls = new IdTable<(a: Answer) => void>();
type CallBody = Call extends infer C ? (C extends { id: number } ? Omit<C, 'id'> : never) : never;
function call(c: CallBody): Promise<Answer> {
  const id = nextCall;
  nextCall = idAfter(id);
  (out.calls ??= []).push({ ...c, id } as Call);
  scheduleOut();
  return new Promise((resolve) => calls.set(id, resolve));
}
const failed = (a: Answer): TxnError | null => (a.error ? TxnError.fromWire(a.error) : null);

/** The oracle's readable version as last reported by the main thread: reads at or below it go straight to the shards. */
let readable = 0;
const clock: ReadClock = {
  get readableVersion() {
    return readable;
  },
  async waitFor(version: number, timeoutMs: number): Promise<boolean> {
    const a = await call({ k: 'wait', v: version, ms: timeoutMs });
    const e = failed(a);
    if (e) throw e;
    return a.v === 1;
  },
  readVersion: () => readable,
};

let map = ShardMap.fromJSON(init.map);
let mapFetch: Promise<void> | null = null;
/** A shard refused a read routed by our map: fetch the current one before the router retries. */
const refreshMap = (): Promise<void> =>
  (mapFetch ??= call({ k: 'map' }).then((a) => {
    mapFetch = null;
    if (a.map) map = ShardMap.fromJSON(a.map);
  }));

/** A shard worker seen from this thread: requests of a turn in one message; ids negative (shard/worker.ts routes replies by them). */
class ShardPort {
  private seq = 0;
  /** By request sequence number (1..2^32-2, wrapping), an IdTable for the reason `calls` is one. */
  private readonly pending = new IdTable<(r: ShardReply) => void>();
  private readonly outbox: RequestOutbox;
  private closed = false;

  constructor(
    private readonly shardId: number,
    port: MessagePort,
  ) {
    this.outbox = new RequestOutbox(port);
    port.on('message', (m: ShardMessage<ShardReply>) => {
      for (const r of decodeReplies(m)) {
        const seq = (-r.id - init.thread) / GATEWAY_ID_SPAN;
        const cb = this.pending.get(seq);
        if (!cb) continue;
        this.pending.delete(seq);
        if ('error' in r && r.staleMap !== undefined) void refreshMap().then(() => cb(r));
        else cb(r);
      }
    });
    // the shard stopped (server shutting down): what is still asked fails, retryable
    port.on('close', () => {
      this.closed = true;
      this.outbox.close();
      for (const [seq, cb] of this.pending.entries()) cb({ id: -(seq * GATEWAY_ID_SPAN + init.thread), error: { code: 'UNAVAILABLE', message: `shard ${this.shardId} shut down` } });
      this.pending.clear();
    });
  }

  request(req: Outgoing): Promise<ShardReply> {
    if (this.closed) return Promise.reject(new TxnError('UNAVAILABLE', `shard ${this.shardId} is shut down`));
    const seq = (this.seq = idAfter(this.seq));
    const id = -(seq * GATEWAY_ID_SPAN + init.thread);
    (req as ShardRequest).id = id;
    return new Promise((resolve) => {
      this.pending.set(seq, resolve);
      this.outbox.push(req as ShardRequest);
    });
  }
}

const shards = init.shardPorts.map((p, i) => new ShardPort(i, p));
const front: ClientFront = {
  async readVersion() {
    const a = await call({ k: 'grv' });
    const e = failed(a);
    if (e) throw e;
    return a.v!;
  },
  async commit(input: CommitInput): Promise<CommitResult> {
    const a = await call({ k: 'commit', input });
    const e = failed(a);
    if (e) throw e;
    return a.commit!;
  },
};
/** dispatch.ts's view of the coordinator: reads here, read versions and commits on the main thread. */
const here: Dispatcher = {
  front,
  reads: new ReadRouter(clock, shards, () => map),
  // dispatch uses `front` for commits whenever it is set
  commits: null as unknown as Dispatcher['commits'],
};
const metrics = new RequestMetrics(init.slowTransactionMs, {
  warn: (obj, msg) => {
    (out.log ??= []).push({ obj, msg });
    scheduleOut();
  },
});
attachRequestMetrics(here, metrics);
const admission = new Admission(init.limits, init.admission);
const counts = { frames: 0, requests: 0 };

// ---- connections ----
interface Conn {
  id: number;
  closed: boolean;
  inflight: number;
  /** Reply bytes granted to this connection and not yet handed to the main thread. */
  replyBytes: number;
  outbox: Envelope<ReplyBody>[];
  outboxBytes: number;
  /** Bytes uWS holds unsent for this connection: from each frame, then from the main thread's `unsent` updates. */
  unsent: number;
  /** It sent a frame past a per-frame limit: the main thread closes it (1009, this reason) after sending the outbox. */
  closeWith: string | null;
  /** Rounds of point reads out for this connection (dispatch.ts serveGets). */
  rounds: RoundsInFlight;
  /** Ids of its requests in flight, watches and feeds (until the main thread's liveDone) among them. */
  ids: InflightIds;
}
const conns = new Map<number, Conn>();
const dirty = new Set<Conn>();

function connOf(id: number): Conn {
  let c = conns.get(id);
  if (!c) conns.set(id, (c = { id, closed: false, inflight: 0, replyBytes: 0, outbox: [], outboxBytes: 0, unsent: 0, closeWith: null, rounds: new RoundsInFlight(), ids: new InflightIds() }));
  return c;
}

const encoder = new ReplyEncoder();

/** Encodes each connection's replies of the turn into one frame; the main thread sends it and releases its bytes. */
function flushReplies(): void {
  for (const c of dirty) {
    if (c.outbox.length === 0) continue;
    const frame = encoder.encode(c.outbox);
    // a copy of just the frame (the encoder's buffer is reused); transferred, not cloned
    const buf = frame.buffer.slice(frame.byteOffset, frame.byteOffset + frame.byteLength) as ArrayBuffer;
    freeRangePages(c.outbox);
    (out.frames ??= []).push(c.closeWith === null ? { conn: c.id, buf, bytes: c.outboxBytes } : { conn: c.id, buf, bytes: c.outboxBytes, close: c.closeWith });
    transfer.push(buf);
    c.replyBytes -= c.outboxBytes;
    c.outbox = [];
    c.outboxBytes = 0;
    if (c.closed && c.inflight === 0) conns.delete(c.id);
  }
  dirty.clear();
}

function reply(c: Conn, requestId: number, body: ReplyBody, bytes = 0): void {
  if (c.closed) {
    admission.release(bytes);
    c.replyBytes -= bytes;
    if (c.inflight === 0) conns.delete(c.id);
    return;
  }
  c.outbox.push({ requestId, body });
  c.outboxBytes += bytes;
  dirty.add(c);
  scheduleOut();
}

const settleBytes = (c: Conn, grant: number, actual: number): void => {
  if (grant === 0 && actual === 0) return;
  admission.settleReply(grant, actual);
  c.replyBytes += actual - grant;
};
const settle = (c: Conn, grant: number, body: ReplyBody | null): number => {
  if (grant === 0) return 0;
  let actual = 0;
  if (body && body.type === 'range') for (const b of body.kvs) actual += b.length;
  settleBytes(c, grant, actual);
  return actual;
};
const errorBody = (err: unknown): ReplyBody => {
  const e = err instanceof TxnError ? err : new TxnError('FAILED', String(err));
  return { type: 'error', code: e.code, message: e.message };
};

/** One frame: the same steps as socket.ts's message handler after the Hello. */
function onFrame(f: FrameIn): void {
  counts.frames++;
  const c = connOf(f.conn);
  c.unsent = f.backpressure;
  const buf = new Uint8Array(f.buf);
  let envelopes;
  try {
    envelopes = decodeRequests(buf);
  } catch (err) {
    admission.release(f.held);
    const why = frameRefusalMessage(err);
    reply(c, FRAME_ERROR_REQUEST_ID, { type: 'error', code: 'PROTOCOL_ERROR', message: why });
    if (err instanceof FrameLimitError) {
      // as socket.ts frameRefused: answered, then closed by the main thread; nothing more is read
      c.closeWith = why;
      c.closed = true;
    }
    return;
  }
  let pendingInFrame = 1;
  const done = (): void => {
    if (--pendingInFrame === 0 && f.held > 0) admission.release(f.held);
  };
  let gets: FrameGets | null = null;
  for (const env of envelopes) {
    if (c.closed) break;
    if (env.requestId === FRAME_ERROR_REQUEST_ID) {
      reply(c, FRAME_ERROR_REQUEST_ID, { type: 'error', code: 'PROTOCOL_ERROR', message: RESERVED_REQUEST_ID_MESSAGE });
      continue;
    }
    const body = env.body as RequestBody;
    // as socket.ts: an id in flight is refused under id 0, the first request untouched
    if (holdsId(body.type) && c.ids.has(env.requestId)) {
      reply(c, FRAME_ERROR_REQUEST_ID, { type: 'error', code: 'PROTOCOL_ERROR', message: duplicateIdMessage(env.requestId, body.type) });
      continue;
    }
    if (body.type === 'watch' || body.type === 'subscribe' || body.type === 'subscribeAck' || body.type === 'cancel') {
      // connection-bound: the main thread keeps these (live-requests.ts) and says when one ends (liveDone)
      if (body.type === 'watch' || body.type === 'subscribe') c.ids.add(env.requestId);
      (out.live ??= []).push({ conn: c.id, requestId: env.requestId, body });
      scheduleOut();
      continue;
    }
    counts.requests++;
    const refusal = admission.admitRequest(c.inflight, c.unsent);
    if (refusal) {
      reply(c, env.requestId, { type: 'error', code: refusal.code, message: refusal.message });
      continue;
    }
    if (f.access === 'read' && body.type === 'commit' && body.mutations.length > 0) {
      reply(c, env.requestId, { type: 'error', code: 'UNAUTHORIZED', message: 'this token is read-only: commits that write are refused' });
      continue;
    }
    if (body.type === 'get' || body.type === 'getMany') {
      (gets ??= new FrameGets()).add(env.requestId, body);
      c.inflight++;
      c.ids.add(env.requestId);
      continue;
    }
    let grant = 0;
    if (body.type === 'range') {
      grant = admission.grantReply(RANGE_PAGE_MAX_BYTES, c.replyBytes, c.unsent);
      if (grant === 0) {
        const r = admission.replyRefusal(c.replyBytes, c.unsent);
        reply(c, env.requestId, { type: 'error', code: r.code, message: r.message });
        continue;
      }
      c.replyBytes += grant;
    }
    c.inflight++;
    pendingInFrame++;
    const requestId = env.requestId;
    c.ids.add(requestId);
    dispatch(here, env.body as Exclude<RequestBody, { type: 'get' | 'getMany' }>, grant || undefined).then(
      (b) => {
        c.inflight--;
        c.ids.delete(requestId);
        done();
        reply(c, requestId, b, settle(c, grant, b));
      },
      (err: unknown) => {
        c.inflight--;
        c.ids.delete(requestId);
        done();
        reply(c, requestId, errorBody(err), settle(c, grant, null));
      },
    );
  }
  if (gets) {
    // in rounds of reply bytes, as socket.ts does (dispatch.ts serveGets); the bytes uWS
    // holds unsent for this connection are what the main thread last said (c.unsent)
    pendingInFrame++;
    void serveGets(here, gets, {
      grant: (want) => {
        const g = admission.grantReply(want, c.replyBytes, c.unsent);
        c.replyBytes += g;
        return g;
      },
      settle: (grant, actual) => settleBytes(c, grant, actual),
      refusal: () => admission.replyRefusal(c.replyBytes, c.unsent),
      reply: (id, body, bytes) => {
        c.inflight--;
        c.ids.delete(id);
        reply(c, id, body, bytes);
      },
      closed: () => c.closed,
      rounds: c.rounds,
    }).then(done);
  }
  done();
}

// ---- metrics: deltas every REPORT_MS, added into the server's counters on the main thread ----
const REPORT_MS = 250;
type Hist = RequestMetrics['getLatency'];
const last = {
  get: { counts: new Float64Array(metrics.getLatency.counts.length), sum: 0, count: 0 },
  range: { counts: new Float64Array(metrics.rangeLatency.counts.length), sum: 0, count: 0 },
  commit: { counts: new Float64Array(metrics.commitLatency.counts.length), sum: 0, count: 0 },
  transactionsStarted: 0,
  bytesIn: 0,
  bytesOut: 0,
  inflight: 0,
  errors: {} as Record<string, number>,
};
function histDelta(h: Hist, l: { counts: Float64Array; sum: number; count: number }): MetricsDelta['get'] {
  const counts: number[] = new Array(h.counts.length);
  for (let i = 0; i < h.counts.length; i++) {
    counts[i] = h.counts[i]! - l.counts[i]!;
    l.counts[i] = h.counts[i]!;
  }
  const d = { counts, sum: h.sum - l.sum, count: h.count - l.count };
  l.sum = h.sum;
  l.count = h.count;
  return d;
}
function report(): void {
  const errors: Record<string, number> = {};
  for (const [code, n] of Object.entries(metrics.errors)) {
    if (n !== (last.errors[code] ?? 0)) errors[code] = n - (last.errors[code] ?? 0);
    last.errors[code] = n;
  }
  out.metrics = {
    get: histDelta(metrics.getLatency, last.get),
    range: histDelta(metrics.rangeLatency, last.range),
    commit: histDelta(metrics.commitLatency, last.commit),
    transactionsStarted: metrics.transactionsStarted - last.transactionsStarted,
    bytesIn: metrics.bytesIn - last.bytesIn,
    bytesOut: metrics.bytesOut - last.bytesOut,
    inflight: metrics.inflight - last.inflight,
    errors,
  };
  last.transactionsStarted = metrics.transactionsStarted;
  last.bytesIn = metrics.bytesIn;
  last.bytesOut = metrics.bytesOut;
  last.inflight = metrics.inflight;
  out.counts = { ...counts };
  scheduleOut();
}
const reporter = setInterval(report, REPORT_MS);

// ---- from the main thread ----
let draining = false;
main.on('message', (m: ToGateway) => {
  if (m.readable !== undefined && m.readable > readable) readable = m.readable;
  if (m.map) map = ShardMap.fromJSON(m.map);
  if (m.answers) {
    for (const a of m.answers) {
      const cb = calls.get(a.id);
      if (cb) {
        calls.delete(a.id);
        cb(a);
      }
    }
  }
  if (m.closed) {
    for (const id of m.closed) {
      const c = conns.get(id);
      if (!c) continue;
      c.closed = true;
      // replies that will never be sent leave the budget now
      admission.release(c.outboxBytes);
      c.replyBytes -= c.outboxBytes;
      c.outbox = [];
      c.outboxBytes = 0;
      dirty.delete(c);
      if (c.inflight === 0) conns.delete(id);
    }
  }
  if (m.unsent) {
    for (const [id, bytes] of m.unsent) {
      const c = conns.get(id);
      if (c) c.unsent = bytes;
    }
  }
  if (m.liveDone) {
    for (const [id, requestId] of m.liveDone) conns.get(id)?.ids.delete(requestId);
  }
  if (m.frames) for (const f of m.frames) onFrame(f);
  if (m.report) {
    report();
    out.reported = true;
  }
  if (m.drain && !draining) {
    draining = true;
    void drain();
  }
});

/** Shutdown: the requests in flight are answered (at most DRAIN_MS), the last counters and replies go out, then 'drained'. */
const DRAIN_MS = 2000;
async function drain(): Promise<void> {
  const deadline = Date.now() + DRAIN_MS;
  const busy = (): boolean => {
    for (const c of conns.values()) if (c.inflight > 0 && !c.closed) return true;
    return false;
  };
  while (busy() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  clearInterval(reporter);
  report();
  flushOut();
  main.postMessage({ drained: true } satisfies FromGateway);
}

main.postMessage({ tid: threadId() } satisfies FromGateway);
