// hot path: the WebSocket gateway (uWS). Main thread; the only module that touches
// uWS. Owns connection lifecycle and framing: binary frames only, Hello first,
// replies of one event-loop turn batched into one frame per connection. A frame that
// cannot be decoded is answered with PROTOCOL_ERROR and never reaches the coordinator.
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Logger } from 'pino';
import { TxnError } from '../errors.js';
import { RANGE_PAGE_MAX_BYTES } from '../keys/ranges.js';
import type { Coordinator } from '../coordinator/coordinator.js';
import { decodeRequests, encodeReplies, FRAME_ERROR_REQUEST_ID, ReplyEncoder, FrameLimitError, frameRefusalMessage, PROTOCOL_VERSION, RESERVED_REQUEST_ID_MESSAGE, type Envelope, type RefusedBody, type ReplyBody, type RequestBody, type UnknownBody } from '../protocol/codec.js';
import { dispatch, FrameGets, freeRangePages, RoundsInFlight, serveGets } from './dispatch.js';
import { duplicateIdMessage, holdsId, InflightIds } from './inflight-ids.js';
import { registerHttpRoutes, type HttpOptions } from './http.js';
import { DISTRIBUTION_ROUTES } from './distribution-routes.js';
import { bearer, type Access, type TokenStore } from './auth.js';
import { ADMISSION_SHARED_BYTES, Admission } from './limits.js';
import { GatewayThreads, type GatewayThreadStats } from './gateway-threads.js';
import type { LimitsConfig, TlsConfig } from '../config/server-config.js';
import { loadUws } from './uws.js';
import { closeLive, handleLive, newLiveConn, type LiveConn } from './live-requests.js';
import { subscribeRoute } from './sse-subscribe.js';
import { listenFailure } from '../server/startup-errors.js';

export interface GatewayOptions {
  host: string;
  port: number;
  maxFrameBytes: number;
  idleTimeoutSec: number;
  readonly: boolean;
  serverVersion: string;
  /** Reported in the Hello reply: clients refuse endpoints of different databases. */
  databaseId: string;
  /** Cluster mode: this node's id, reported in the Hello reply (absent on a single server). */
  nodeId?: string;
  logger: Logger;
  /** JSON for GET /v1/status. */
  status: () => Promise<unknown>;
  /** Extra GET pages (e.g. /metrics, the dashboard). */
  pages?: HttpOptions['pages'];
  tokens: TokenStore;
  protectStatus: boolean;
  tls: TlsConfig;
  limits: LimitsConfig;
  /**
   * Gateway threads (gateway-threads.ts): 0 = this thread decodes, dispatches and encodes
   * every request; n > 0 = connections past their Hello are spread over n threads that do.
   */
  gatewayThreads?: number;
  /** Log lines of SlowTransaction (gateway threads report their commits' latency here). */
  slowTransactionMs?: number;
  /** A gateway thread failed (the server must stop). */
  onFatal?: (err: Error) => void;
}

/** How long a connection may leave its unsent replies unread before it is closed (1008). */
export const SLOW_READER_CLOSE_MS = 10_000;
/**
 * How long a connection may stay open without its HelloRequest (closed 1008 after it).
 * Without a deadline, connections that never say Hello held their slots in
 * limits.maxConnections for the whole idle timeout (120 s), or forever with idleTimeoutSec
 * = 0, also on a server that requires a token they do not have.
 */
export const HELLO_DEADLINE_MS = 10_000;

interface Conn {
  id: number;
  /** What this connection's token allows; 'none' until a valid token is seen (header or Hello). */
  access: Access;
  helloDone: boolean;
  /** Date.now() at the upgrade, for HELLO_DEADLINE_MS. */
  openedAt: number;
  closed: boolean;
  outbox: Envelope<ReplyBody>[];
  /** Reply bytes of the outbox, held in the admission budget until handed to uWS. */
  outboxBytes: number;
  /** Reply bytes granted to this connection and not yet handed to uWS (in flight + outbox). */
  replyBytes: number;
  /**
   * Bytes uWS holds for this connection because the client has not read them yet
   * (getBufferedAmount after the last send or drain), also held in the admission budget:
   * without it every slow reader could keep up to its own backpressure limit, and the
   * server's memory grew with the number of slow connections, not with maxBufferedBytes.
   */
  unsentBytes: number;
  /** Since when (Date.now()) unsentBytes has been above 0 without going down; 0 = nothing unsent. */
  stalledSince: number;
  flushScheduled: boolean;
  inflight: number;
  /** The gateway thread serving this connection's frames after its Hello; -1 = this thread. */
  thread: number;
  /** Watches and change feeds of this connection (live-requests.ts). */
  live: LiveConn;
  /** Rounds of point reads out for this connection (dispatch.ts serveGets). */
  rounds: RoundsInFlight;
  /** Ids of its requests in flight (watches and feeds: in `live`); a second request under one is refused. */
  ids: InflightIds;
}


type WS = import('@trufflesuite/uws-js-unofficial').WebSocket<Conn>;

export interface Gateway {
  port: number;
  native: boolean;
  tls: boolean;
  connections: () => number;
  admission: Admission;
  /** Stop accepting new connections. */
  stopListening(): void;
  /** Close every open connection (after the coordinator drained). */
  closeAll(): void;
  /** Gateway threads: answer what they hold (bounded) and send it; nothing without threads. */
  drain(): Promise<void>;
  /** Gateway threads: their counters added into the server's now (before /v1/status, /metrics). */
  syncThreads(): Promise<void>;
  /** Stops the gateway threads (after closeAll). */
  stopThreads(): Promise<void>;
  /** Per gateway thread counters and CPU; empty without threads. */
  threadStats(): GatewayThreadStats[];
}

/**
 * The certificate and key read and parsed before uWS gets them: its own failure is only
 * "App construction failed", naming neither the file nor the problem.
 */
function checkTlsFiles(t: TlsConfig): void {
  const read = (what: string, file: string): Buffer => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new TxnError('INVALID_ARGUMENT', `tls.${what} ${file} cannot be read: ${(err as Error).message}`);
    }
  };
  const certPem = read('cert', t.cert);
  const keyPem = read('key', t.key);
  let cert: crypto.X509Certificate;
  let key: crypto.KeyObject;
  try {
    cert = new crypto.X509Certificate(certPem);
  } catch (err) {
    throw new TxnError('INVALID_ARGUMENT', `tls.cert ${t.cert} is not a PEM certificate: ${(err as Error).message}`);
  }
  try {
    key = crypto.createPrivateKey(keyPem);
  } catch (err) {
    throw new TxnError('INVALID_ARGUMENT', `tls.key ${t.key} is not an unencrypted PEM private key: ${(err as Error).message}`);
  }
  if (!cert.checkPrivateKey(key)) throw new TxnError('INVALID_ARGUMENT', `tls.key ${t.key} is not the private key of the certificate in tls.cert ${t.cert}`);
}

export async function startGateway(coordinator: Coordinator, o: GatewayOptions): Promise<Gateway> {
  const { uws, native, detail } = loadUws();
  if (native) o.logger.info({ event: 'UwsLoaded', native: true, binary: detail }, 'uWebSockets.js native binary in use');
  else o.logger.warn({ event: 'UwsLoaded', native: false, detail }, 'uWebSockets.js JavaScript fallback in use: performance will be degraded');

  const sockets = new Set<WS>();
  let nextConnId = 1;
  const tls = Boolean(o.tls.cert && o.tls.key);
  if (tls) checkTlsFiles(o.tls);
  const app = tls ? uws.SSLApp({ cert_file_name: o.tls.cert, key_file_name: o.tls.key }) : uws.App();
  const threadCount = o.gatewayThreads ?? 0;
  // with gateway threads every thread admits against one budget (limits.ts)
  const shared = threadCount > 0 ? new SharedArrayBuffer(ADMISSION_SHARED_BYTES) : undefined;
  const admission = new Admission(o.limits, shared);
  const threads =
    threadCount > 0
      ? await GatewayThreads.start(coordinator, {
          count: threadCount,
          limits: o.limits,
          admission: shared!,
          slowTransactionMs: o.slowTransactionMs ?? 0,
          logger: o.logger,
          onFatal: o.onFatal ?? ((err) => o.logger.error({ event: 'GatewayThreadFailed', err: err.message }, err.message)),
        })
      : null;
  const byId = new Map<number, WS>();
  if (threads) {
    threads.onFrame = (f) => {
      const ws = byId.get(f.conn);
      if (!ws || ws.getUserData().closed) {
        admission.release(f.bytes);
        return;
      }
      ws.send(f.buf, true);
      admission.release(f.bytes);
      const conn = ws.getUserData();
      holdUnsent(ws, conn);
      // the thread refused a frame past a per-frame limit (frameRefused): its answer is sent, then the close
      if (f.close) {
        conn.closed = true;
        ws.end(1009, f.close.slice(0, 120));
      }
    };
    threads.onLive = (l) => {
      const ws = byId.get(l.conn);
      if (!ws) return;
      const conn = ws.getUserData();
      if (conn.closed) return;
      handleLive(coordinator, o.limits, conn.live, l.requestId, l.body, (id, body) => {
        // every reply but a feed's batch of changes ends its watch or feed: the thread may take its id again
        if (body.type !== 'changes') threads.liveDone(conn.thread, conn.id, id);
        reply(ws, conn, id, body);
      });
    };
  }
  let nextThread = 0;

  /** What uWS could not send yet stays in the budget until the client reads it (the drain handler). */
  function holdUnsent(ws: WS, conn: Conn): void {
    const unsent = ws.getBufferedAmount();
    if (unsent === conn.unsentBytes) return;
    if (unsent === 0) conn.stalledSince = 0;
    else if (conn.stalledSince === 0 || unsent < conn.unsentBytes) conn.stalledSince = Date.now();
    admission.holdUnsent(unsent - conn.unsentBytes);
    conn.unsentBytes = unsent;
    // the connection's gateway thread grants reply bytes against it (later rounds of a frame's point reads)
    if (conn.thread >= 0 && threads) threads.unsent(conn.thread, conn.id, unsent);
  }
  // A client that reads none of its unsent replies for SLOW_READER_CLOSE_MS is closed (as
  // Redis's client-output-buffer soft limit closes one), so stalled readers cannot hold the
  // server's budget, and with it other clients' reads, for the whole idle timeout. A slow
  // reader that makes progress is kept.
  const slowSweep = setInterval(() => {
    const now = Date.now();
    for (const ws of sockets) {
      const conn = ws.getUserData();
      if (!conn.helloDone && !conn.closed && now - conn.openedAt >= HELLO_DEADLINE_MS) {
        conn.closed = true;
        ws.end(1008, `no HelloRequest within ${HELLO_DEADLINE_MS / 1000} s of connecting`);
        continue;
      }
      if (conn.closed || conn.stalledSince === 0 || now - conn.stalledSince < SLOW_READER_CLOSE_MS) continue;
      o.logger.warn({ event: 'SlowReaderClosed', conn: conn.id, unsentBytes: conn.unsentBytes }, 'closing a connection that does not read its replies');
      ws.end(1008, `not reading replies: ${conn.unsentBytes} bytes unread for ${SLOW_READER_CLOSE_MS / 1000} s`);
    }
  }, 1_000);
  slowSweep.unref();
  /** Granted reply bytes leave the grant once uWS has them (what it cannot send yet: holdUnsent). */
  const releaseReplies = (conn: Conn, bytes: number): void => {
    if (bytes === 0) return;
    admission.release(bytes);
    conn.replyBytes -= bytes;
  };
  // One buffer for every connection's frames: the native uWS copies in send() what it
  // cannot send at once. The JavaScript fallback (ws) may keep the buffer queued on the
  // socket, so it gets a frame of its own.
  const encoder = native ? new ReplyEncoder() : null;
  const send = (ws: WS, conn: Conn): void => {
    conn.flushScheduled = false;
    if (conn.closed || conn.outbox.length === 0) return;
    const sent = conn.outbox;
    const frame = encoder ? encoder.encode(sent) : encodeReplies(sent);
    conn.outbox = [];
    const bytes = conn.outboxBytes;
    conn.outboxBytes = 0;
    ws.send(frame, true);
    freeRangePages(sent);
    releaseReplies(conn, bytes);
    holdUnsent(ws, conn);
  };
  /**
   * Queues a reply; `bytes` = its granted reply bytes (held until sent). The connection's
   * replies leave at the end of the current turn: process.nextTick runs once the turn's
   * microtasks have drained (a uWS callback's too), so every reply one message resolved
   * (a log writer's batch of commits, a shard's reads) goes in one frame, as with
   * setImmediate, but without waiting behind the rest of the loop's poll phase (other
   * sockets, other ports) for the check phase: at half of peak w10 that wait was
   * 0.45 ms on average and 4-5 ms at p99 of a commit's latency (bench/README.md).
   */
  const reply = (ws: WS, conn: Conn, requestId: number, body: ReplyBody, bytes = 0): void => {
    if (conn.closed) {
      releaseReplies(conn, bytes);
      return;
    }
    conn.outboxBytes += bytes;
    conn.outbox.push({ requestId, body });
    if (!conn.flushScheduled) {
      conn.flushScheduled = true;
      process.nextTick(send, ws, conn);
    }
  };
  /** A grant of reply bytes became `actual` bytes: the rest goes back at once. */
  const settleBytes = (conn: Conn, grant: number, actual: number): void => {
    if (grant === 0 && actual === 0) return;
    admission.settleReply(grant, actual);
    conn.replyBytes += actual - grant;
  };
  /** Settles a range page's grant; returns the bytes the reply holds. */
  const settle = (conn: Conn, grant: number, body: ReplyBody | null): number => {
    if (grant === 0) return 0;
    let actual = 0;
    if (body && body.type === 'range') for (const b of body.kvs) actual += b.length;
    settleBytes(conn, grant, actual);
    return actual;
  };
  const protocolError = (ws: WS, conn: Conn, requestId: number, message: string): void =>
    reply(ws, conn, requestId, { type: 'error', code: 'PROTOCOL_ERROR', message });

  /**
   * A frame that could not be decoded: PROTOCOL_ERROR under request id 0. One past a
   * per-frame limit (FrameLimitError) also closes the connection (1009): its requests
   * will never be answered one by one, and the client must not wait for them.
   */
  const frameRefused = (ws: WS, conn: Conn, err: unknown): void => {
    const why = frameRefusalMessage(err);
    protocolError(ws, conn, FRAME_ERROR_REQUEST_ID, why);
    if (!(err instanceof FrameLimitError)) return;
    send(ws, conn);
    conn.closed = true;
    ws.end(1009, why.slice(0, 120));
  };

  const refuseFrame = (ws: WS, conn: Conn, view: Uint8Array, refusal: NonNullable<ReturnType<Admission['admitBytes']>>): void => {
    let envelopes;
    try {
      envelopes = decodeRequests(view);
    } catch (err) {
      frameRefused(ws, conn, err);
      return;
    }
    for (const env of envelopes) reply(ws, conn, env.requestId, { type: 'error', code: refusal.code, message: refusal.message });
  };

  const hello = (ws: WS, conn: Conn, env: Envelope<RequestBody | UnknownBody | RefusedBody>): void => {
    // a refused handshake is answered, then the connection is closed (docs/protocol.md)
    const refuse = (message: string): void => {
      protocolError(ws, conn, env.requestId, message);
      send(ws, conn);
      conn.closed = true;
      ws.end(1002, message.slice(0, 120));
    };
    if (env.body.type !== 'hello') {
      refuse('the first request on a connection must be HelloRequest');
      return;
    }
    if (env.requestId === FRAME_ERROR_REQUEST_ID) {
      refuse(RESERVED_REQUEST_ID_MESSAGE);
      return;
    }
    if (env.body.protocolVersion !== PROTOCOL_VERSION) {
      refuse(`protocol version ${env.body.protocolVersion} is not supported; this server speaks ${PROTOCOL_VERSION}`);
      return;
    }
    if (conn.access === 'none') conn.access = o.tokens.check(env.body.token);
    if (conn.access === 'none') {
      reply(ws, conn, env.requestId, { type: 'error', code: 'UNAUTHORIZED', message: env.body.token ? 'wrong token' : 'this server requires a token' });
      send(ws, conn);
      conn.closed = true;
      ws.end(1008, 'unauthorized');
      return;
    }
    conn.helloDone = true;
    reply(ws, conn, env.requestId, { type: 'hello', protocolVersion: PROTOCOL_VERSION, serverVersion: o.serverVersion, readOnly: o.readonly || conn.access === 'read', databaseId: o.databaseId, getMany: true, nodeId: o.nodeId });
  };

  app.ws<Conn>('/*', {
    // frames up to twice the limit are read and refused with a clean close (1009 and a
    // reason); uWS drops anything larger without one, so the budget stays bounded
    maxPayloadLength: o.maxFrameBytes * 2,
    idleTimeout: o.idleTimeoutSec > 0 ? Math.max(8, o.idleTimeoutSec) : 0,
    // a reader that leaves this much unsent is closed rather than buffered without bound
    maxBackpressure: o.limits.maxBackpressureBytes,
    closeOnBackpressureLimit: 1,
    upgrade: (res, req, context) => {
      const header = req.getHeader('authorization');
      const access = header ? o.tokens.check(bearer(header)) : o.tokens.enabled ? 'none' : 'write';
      if (header && access === 'none') {
        res.writeStatus('401 Unauthorized').end(JSON.stringify({ error: { code: 'UNAUTHORIZED', message: 'wrong token' } }), true);
        return;
      }
      if (!admission.admitConnection()) {
        // closeConnection: a refused client must not keep its descriptor (keep-alive)
        res
          .writeStatus('503 Service Unavailable')
          .end(JSON.stringify({ error: { code: 'RESOURCE_CONSTRAINED', message: `connection limit ${o.limits.maxConnections} reached` } }), true);
        return;
      }
      const thread = threads ? nextThread++ % threads.count : -1;
      const conn: Conn = { id: nextConnId++, access, helloDone: false, openedAt: Date.now(), closed: false, outbox: [], outboxBytes: 0, replyBytes: 0, unsentBytes: 0, stalledSince: 0, flushScheduled: false, inflight: 0, thread, live: newLiveConn(), rounds: new RoundsInFlight(), ids: new InflightIds() };
      res.upgrade(conn, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
    },
    open: (ws) => {
      sockets.add(ws);
      byId.set(ws.getUserData().id, ws);
    },
    message: (ws, message, isBinary) => {
      const conn = ws.getUserData();
      if (!isBinary) {
        conn.closed = true;
        ws.end(1003, 'txkv speaks binary FlatBuffers frames only');
        return;
      }
      if (message.byteLength > o.maxFrameBytes) {
        conn.closed = true;
        ws.end(1009, `frame of ${message.byteLength} bytes exceeds the limit of ${o.maxFrameBytes}`);
        return;
      }
      // over the memory budget: answer every request of the frame from the uWS buffer
      // itself (read synchronously, never copied) and hold nothing
      const budget = conn.helloDone ? admission.admitBytes(message.byteLength) : null;
      if (budget) {
        refuseFrame(ws, conn, new Uint8Array(message), budget);
        return;
      }
      if (threads && conn.helloDone) {
        // a gateway thread decodes, dispatches and encodes (gateway-worker.ts); the copy is transferred, not cloned
        threads.frame(conn.thread, {
          conn: conn.id,
          access: conn.access === 'read' ? 'read' : 'write',
          backpressure: ws.getBufferedAmount(),
          buf: message.slice(0),
          held: message.byteLength,
        });
        return;
      }
      let envelopes;
      let buf: Uint8Array;
      try {
        // uWS reuses the message buffer after this callback returns: copy it
        buf = new Uint8Array(message.slice(0));
        envelopes = decodeRequests(buf);
      } catch (err) {
        if (conn.helloDone) admission.release(message.byteLength);
        frameRefused(ws, conn, err);
        return;
      }
      // the frame's bytes count against the budget until its last request is answered
      let pendingInFrame = 1;
      let gets: FrameGets | null = null;
      const held = conn.helloDone ? buf.length : 0;
      const done = (): void => {
        if (--pendingInFrame === 0 && held > 0) admission.release(held);
      };
      for (const env of envelopes) {
        if (conn.closed) break;
        if (!conn.helloDone) {
          hello(ws, conn, env);
          continue;
        }
        if (env.requestId === FRAME_ERROR_REQUEST_ID) {
          protocolError(ws, conn, FRAME_ERROR_REQUEST_ID, RESERVED_REQUEST_ID_MESSAGE);
          continue;
        }
        // an id in flight (a request, a watch, a feed): a reply under it could not be told
        // from the first request's, so the refusal goes under id 0 and the first is untouched
        if (holdsId(env.body.type) && (conn.ids.has(env.requestId) || conn.live.watches.has(env.requestId) || conn.live.feeds.has(env.requestId))) {
          protocolError(ws, conn, FRAME_ERROR_REQUEST_ID, duplicateIdMessage(env.requestId, env.body.type));
          continue;
        }
        // watches and feeds are long-lived: not requests in flight (live-requests.ts has their limits)
        if (handleLive(coordinator, o.limits, conn.live, env.requestId, env.body as RequestBody, (id, body) => reply(ws, conn, id, body))) continue;
        const refusal = admission.admitRequest(conn.inflight, ws.getBufferedAmount());
        if (refusal) {
          reply(ws, conn, env.requestId, { type: 'error', code: refusal.code, message: refusal.message });
          continue;
        }
        if (conn.access === 'read' && env.body.type === 'commit' && env.body.mutations.length > 0) {
          reply(ws, conn, env.requestId, { type: 'error', code: 'UNAUTHORIZED', message: 'this token is read-only: commits that write are refused' });
          continue;
        }
        if (env.body.type === 'get' || env.body.type === 'getMany') {
          // point reads of the frame go out together after the loop
          (gets ??= new FrameGets()).add(env.requestId, env.body);
          conn.inflight++;
          conn.ids.add(env.requestId);
          continue;
        }
        // a range page's reply bytes are granted before it is read (at most one page's worth)
        let grant = 0;
        if (env.body.type === 'range') {
          grant = admission.grantReply(RANGE_PAGE_MAX_BYTES, conn.replyBytes, ws.getBufferedAmount());
          if (grant === 0) {
            const r = admission.replyRefusal(conn.replyBytes, ws.getBufferedAmount());
            reply(ws, conn, env.requestId, { type: 'error', code: r.code, message: r.message });
            continue;
          }
          conn.replyBytes += grant;
        }
        conn.inflight++;
        pendingInFrame++;
        const requestId = env.requestId;
        conn.ids.add(requestId);
        dispatch(coordinator, env.body as Exclude<RequestBody, { type: 'get' | 'getMany' }>, grant || undefined).then(
          (body) => {
            conn.inflight--;
            conn.ids.delete(requestId);
            done();
            if (body.type === 'error' && body.code === 'FAILED') o.logger.error({ event: 'RequestFailed', conn: conn.id, requestId, message: body.message });
            reply(ws, conn, requestId, body, settle(conn, grant, body));
          },
          (err: unknown) => {
            conn.inflight--;
            conn.ids.delete(requestId);
            done();
            const e = err instanceof TxnError ? err : new TxnError('FAILED', String(err));
            reply(ws, conn, requestId, { type: 'error', code: e.code, message: e.message }, settle(conn, grant, null));
          },
        );
      }
      if (gets) {
        // the frame's point reads, in rounds of reply bytes granted against what this
        // connection holds and has unsent and the server's budget (dispatch.ts serveGets)
        pendingInFrame++;
        void serveGets(coordinator, gets, {
          grant: (want) => {
            const g = admission.grantReply(want, conn.replyBytes, ws.getBufferedAmount());
            conn.replyBytes += g;
            return g;
          },
          settle: (grant, actual) => settleBytes(conn, grant, actual),
          refusal: () => admission.replyRefusal(conn.replyBytes, ws.getBufferedAmount()),
          reply: (id, body, bytes) => {
            conn.inflight--;
            conn.ids.delete(id);
            reply(ws, conn, id, body, bytes);
          },
          closed: () => conn.closed,
      rounds: conn.rounds,
        }).then(done);
      }
      done(); // the frame's own reference
    },
    drain: (ws) => holdUnsent(ws, ws.getUserData()),
    close: (ws) => {
      const conn = ws.getUserData();
      conn.closed = true;
      admission.holdUnsent(-conn.unsentBytes);
      conn.unsentBytes = 0;
      closeLive(coordinator, conn.live);
      // replies that will never be sent leave the budget now (those still being read do when they arrive)
      const unsent = conn.outboxBytes;
      conn.outboxBytes = 0;
      conn.outbox = [];
      releaseReplies(conn, unsent);
      byId.delete(conn.id);
      if (conn.thread >= 0) threads?.connClosed(conn.thread, conn.id);
      if (sockets.delete(ws)) admission.releaseConnection();
    },
  });

  registerHttpRoutes(app, {
    coordinator,
    status: o.status,
    pages: o.pages,
    tokens: o.tokens,
    protectStatus: o.protectStatus,
    // the change feed as Server-Sent Events (sse-subscribe.ts)
    routes: [subscribeRoute(o.limits.maxFeedBufferBytes), ...DISTRIBUTION_ROUTES],
  });

  // LIBUS_LISTEN_EXCLUSIVE_PORT: uWS otherwise binds with SO_REUSEPORT, and a second
  // server on the same port would start and take a share of the connections. uWS
  // gives no reason for a failed listen; listenFailure() asks the kernel for one.
  const LIBUS_LISTEN_EXCLUSIVE_PORT = 1;
  let listenSocket: unknown;
  try {
    listenSocket = await new Promise<unknown>((resolve, reject) => {
      // the typings lack the (host, port, options, cb) form that the binary and the fallback both accept
      const listen = app as unknown as { listen(host: string, port: number, options: number, cb: (s: unknown) => void): void };
      listen.listen(o.host, o.port, LIBUS_LISTEN_EXCLUSIVE_PORT, (s) =>
        s ? resolve(s) : listenFailure(o.host, o.port).then(reject, reject),
      );
    });
  } catch (err) {
    clearInterval(slowSweep);
    await threads?.close();
    throw err;
  }
  const port = uws.us_socket_local_port(listenSocket as never);
  let listening = true;
  return {
    port,
    native,
    tls,
    admission,
    connections: () => sockets.size,
    stopListening: () => {
      if (listening) uws.us_listen_socket_close(listenSocket as never);
      listening = false;
    },
    closeAll: () => {
      clearInterval(slowSweep);
      for (const ws of [...sockets]) {
        const conn = ws.getUserData();
        if (conn.closed) continue;
        send(ws, conn);
        conn.closed = true;
        ws.end(1001, 'server shutting down');
      }
      sockets.clear();
      byId.clear();
      admission.connections = 0;
    },
    drain: async () => {
      await threads?.drain();
    },
    syncThreads: async () => {
      await threads?.sync();
    },
    stopThreads: async () => {
      await threads?.close();
    },
    threadStats: () => threads?.stats() ?? [],
  };
}
