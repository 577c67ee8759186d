// hot path: one WebSocket to a txkv server, multiplexed. Requests made during one
// event-loop turn go out together in one frame; replies are matched by request id.
// Works with the browser's WebSocket, or the `ws` package in Node (the only module
// that imports it). When the socket drops, in-flight commits fail MAYBE_COMMITTED
// (they may have been applied) and everything else NETWORK_ERROR.
import { TxnError } from '../errors.js';
import { idAfter, IdTable } from './id-table.js';
import { decodeReplies, encodeRequests, MAX_FRAME_ENVELOPES, MAX_GET_MANY_KEYS, PROTOCOL_VERSION, type Envelope, type ReplyBody, type RequestBody, type UnknownBody } from '../protocol/codec.js';

export interface TlsOptions {
  /** PEM certificate(s) of the CA that signed the server's certificate (Node only). */
  ca?: string | Uint8Array;
}

interface Pending {
  resolve: (r: ReplyBody) => void;
  reject: (e: TxnError) => void;
  isCommit: boolean;
  /** A change feed: every non-error reply goes to resolve, the request stays pending. */
  stream?: boolean;
  /**
   * A GetManyRequest made of the queued gets with these request ids (answered one by one
   * from its reply), with their keys (in members' order) and read version, to ask again for
   * reads it refused (answerMembers).
   */
  many?: { members: number[]; keys: Uint8Array[]; readVersion: bigint };
}

const NOOP = (): void => {};

/**
 * Request bytes past which a turn's requests go out in more than one frame (as the C++
 * client's kMaxBatchedFrameBytes): the server closes a connection whose frame passes its
 * maxFrameBytes (16 MiB by default, 1009), and a turn of many large commits did. One
 * request larger than this still goes, alone in its frame.
 */
export const MAX_BATCHED_FRAME_BYTES = 2 * 1024 * 1024;

/** About what a request adds to its frame (bytes), for cutting a turn into frames. */
function approximateBytes(body: RequestBody): number {
  switch (body.type) {
    case 'commit': {
      let n = 64;
      for (const r of body.readConflicts) n += r.begin.length + r.end.length + 16;
      for (const m of body.mutations) n += m.key.length + m.param.length + 24;
      return n;
    }
    case 'get':
      return 64 + body.key.length;
    case 'getMany': {
      let n = 64;
      for (const k of body.keys) n += 4 + k.length;
      return n;
    }
    case 'range':
      return 64 + body.beginKey.length + body.endKey.length;
    case 'watch':
      return 64 + body.key.length + body.value.length;
    case 'subscribe':
      return 64 + body.begin.length + body.end.length;
    default:
      return 64;
  }
}

/** The subset of the WebSocket API used here (browser WebSocket and `ws` both have it). */
interface SocketLike {
  binaryType: string;
  readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code?: number; reason?: string }) => void) | null;
  onerror: ((ev: { message?: string; error?: unknown }) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  // `ws` (Node) only: WebSocket pings; a browser's WebSocket has no ping API
  ping?(): void;
  on?(event: 'pong', listener: () => void): void;
  terminate?(): void;
}

/** How often a connection pings its server (Node), and after how long without any answer it is given up. */
export const PING_INTERVAL_MS = 2000;
export const DEAD_AFTER_MS = 10_000;

type SocketCtor = new (url: string, protocols?: string | string[], options?: object) => SocketLike;

let socketCtor: Promise<SocketCtor> | null = null;
function getSocketCtor(): Promise<SocketCtor> {
  const native = (globalThis as { WebSocket?: SocketCtor }).WebSocket;
  // Node's built-in WebSocket (22+) is fine too, but `ws` lets us turn compression off
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  if (native && !isNode) return Promise.resolve(native);
  return (socketCtor ??= import('ws').then((m) => (m.default ?? m) as unknown as SocketCtor));
}

const defer: (f: () => void) => void =
  typeof setImmediate === 'function' ? (f) => setImmediate(f) : (f) => setTimeout(f, 0);

export class Connection {
  private socket: SocketLike | null = null;
  private readonly pending = new IdTable<Pending>();
  private outbox: Envelope<RequestBody>[] = [];
  private scheduled = false;
  private nextId = 1;
  private dead = false;
  private queuedGrv: Promise<ReplyBody> | null = null;
  /** Last time anything (a reply, a pong) came from the server. */
  private lastHeard = Date.now();
  private pinger: ReturnType<typeof setInterval> | null = null;
  readOnlyServer = false;
  /** The server's database id from the handshake ('' from servers that predate it). */
  databaseId = '';
  /** The server answers GetManyRequest (from the handshake): a turn's gets at one read version go as one. */
  getMany = false;
  /** Cluster mode: the id of the node that answered ('' from a single server or an older one). */
  nodeId = '';

  private constructor(readonly url: string) {}

  get alive(): boolean {
    return !this.dead;
  }

  get inflight(): number {
    return this.pending.size;
  }

  /** Opens the socket and completes the Hello handshake; rejects NETWORK_ERROR (or the server's refusal). */
  static async open(url: string, token: string | undefined, timeoutMs: number, tls: TlsOptions = {}): Promise<Connection> {
    const c = new Connection(url);
    const Ctor = await getSocketCtor();
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (why: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        c.dead = true;
        try {
          ws.close();
        } catch {
          /* already closed */
        }
        reject(new TxnError('NETWORK_ERROR', `cannot connect to ${url}: ${why}`));
      };
      const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
      let ws: SocketLike;
      try {
        // Node (`ws`) also sends the token at the upgrade, where the server checks it first;
        // a browser cannot set headers, so the Hello carries it too
        ws = new Ctor(url, undefined, {
          perMessageDeflate: false,
          maxPayload: 256 * 1024 * 1024,
          headers: token ? { authorization: `Bearer ${token}` } : undefined,
          ca: tls.ca,
        });
      } catch (err) {
        clearTimeout(timer);
        reject(new TxnError('NETWORK_ERROR', `cannot connect to ${url}: ${(err as Error).message}`));
        return;
      }
      ws.binaryType = 'arraybuffer';
      c.socket = ws;
      ws.onerror = (ev) => {
        const why = ev.message ?? String(ev.error ?? 'socket error');
        // `ws` reports an HTTP refusal of the upgrade this way: keep the server's meaning
        const status = /Unexpected server response: (\d+)/.exec(why)?.[1];
        if (status === '401' || status === '503') {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          c.dead = true;
          reject(status === '401' ? new TxnError('UNAUTHORIZED', `${url} refused the token`) : new TxnError('RESOURCE_CONSTRAINED', `${url} is at its connection limit`));
          return;
        }
        fail(why);
      };
      ws.onclose = (ev) => {
        if (!settled) fail(`closed (${ev.code ?? ''} ${ev.reason ?? ''})`);
        else c.onClosed(`connection to ${url} closed (${ev.code ?? ''} ${ev.reason ?? ''})`);
      };
      ws.onmessage = (ev) => c.onMessage(ev.data);
      ws.onopen = () => {
        c.request({ type: 'hello', protocolVersion: PROTOCOL_VERSION, token: token ?? '', clientName: 'txkv-ts' }, false).then(
          (r) => {
            if (settled) return;
            if (r.type !== 'hello') return fail(`unexpected handshake reply ${r.type}`);
            settled = true;
            clearTimeout(timer);
            c.readOnlyServer = r.readOnly;
            c.databaseId = r.databaseId;
            c.getMany = r.getMany;
            c.nodeId = r.nodeId ?? '';
            ws.onerror = () => {};
            c.startPinging();
            resolve();
          },
          (err: TxnError) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            c.dead = true;
            ws.close();
            // the server's own refusal (UNAUTHORIZED, PROTOCOL_ERROR) keeps its code
            reject(err.code === 'MAYBE_COMMITTED' || err.code === 'NETWORK_ERROR' ? new TxnError('NETWORK_ERROR', err.message) : err);
          },
        );
      };
    });
    return c;
  }

  /** Sends one request (batched with the others of this turn); resolves with its reply body, rejects with the server's error (as a TxnError). */
  request(body: RequestBody, isCommit: boolean): Promise<ReplyBody> {
    if (this.dead) {
      return Promise.reject(new TxnError('NETWORK_ERROR', `connection to ${this.url} is closed`));
    }
    // read-version requests not yet sent are shared (FoundationDB batches them too): the
    // reply still covers every commit acknowledged before any of the callers asked
    if (body.type === 'grv' && this.queuedGrv) return this.queuedGrv;
    const id = this.takeId();
    const p = new Promise<ReplyBody>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, isCommit });
      this.outbox.push({ requestId: id, body });
      if (!this.scheduled) {
        this.scheduled = true;
        defer(this.flush);
      }
    });
    if (body.type === 'grv') this.queuedGrv = p;
    return p;
  }

  /**
   * A request answered many times (a change feed): `onReply` gets each reply, `onError`
   * the error that ends it (the server's, or the connection's when it drops). Returns
   * the request id (for post()ed acknowledgements and cancels).
   */
  stream(body: RequestBody, onReply: (r: ReplyBody) => void, onError: (e: TxnError) => void): number {
    if (this.dead) {
      onError(new TxnError('NETWORK_ERROR', `connection to ${this.url} is closed`));
      return 0;
    }
    const id = this.takeId();
    this.pending.set(id, { resolve: onReply, reject: onError, isCommit: false, stream: true });
    this.send({ requestId: id, body });
    return id;
  }

  /** A request with no reply of its own (SubscribeAckRequest, CancelRequest). */
  post(body: RequestBody): void {
    if (this.dead) return;
    const id = this.takeId();
    this.send({ requestId: id, body });
  }

  /**
   * The next request id: 1..2^32-2, skipping ids still pending (after 2^32 requests a
   * watch or feed may still hold one, and the server refuses an id in flight).
   */
  private takeId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = idAfter(id);
      if (this.pending.get(id) === undefined) return id;
    }
  }

  /** Stops routing replies of a request to its caller (after a cancel or a finished stream). */
  forget(requestId: number): void {
    this.pending.delete(requestId);
  }

  /** Queues an envelope for this turn's frame. */
  private send(env: Envelope<RequestBody>): void {
    this.outbox.push(env);
    if (!this.scheduled) {
      this.scheduled = true;
      defer(this.flush);
    }
  }

  /**
   * Sends the turn's requests: in one frame, or in several when they pass a server's
   * per-frame limits (MAX_FRAME_ENVELOPES envelopes, MAX_GET_MANY_KEYS keys of
   * GetManyRequests; a frame past them closes the connection) or MAX_BATCHED_FRAME_BYTES.
   * Frames go in order, so the server still sees the requests in the order they were made.
   */
  private readonly flush = (): void => {
    this.scheduled = false;
    this.queuedGrv = null;
    if (this.dead || !this.socket || this.outbox.length === 0) return;
    if (this.getMany) this.coalesceGets();
    const outbox = this.outbox;
    this.outbox = [];
    let start = 0;
    let keys = 0;
    let bytes = 0;
    for (let i = 0; i < outbox.length; i++) {
      const body = outbox[i]!.body;
      const k = body.type === 'getMany' ? body.keys.length : 0;
      const b = approximateBytes(body);
      if (i > start && (i - start === MAX_FRAME_ENVELOPES || keys + k > MAX_GET_MANY_KEYS || bytes + b > MAX_BATCHED_FRAME_BYTES)) {
        this.socket.send(encodeRequests(start === 0 ? outbox.slice(0, i) : outbox.slice(start, i)));
        start = i;
        keys = 0;
        bytes = 0;
      }
      keys += k;
      bytes += b;
    }
    this.socket.send(encodeRequests(start === 0 ? outbox : outbox.slice(start)));
  };

  /**
   * The turn's gets that share a read version (the gets of a transaction, and of every
   * transaction that took the turn's shared read version) become one GetManyRequest:
   * one envelope to encode, decode and answer instead of one per key. Each get keeps its
   * own request id and promise; the GetManyReply is handed out to them in order.
   */
  private coalesceGets(): void {
    let groups: Map<bigint, Envelope<RequestBody>[]> | null = null;
    let gets = 0;
    for (const env of this.outbox) {
      if (env.body.type !== 'get') continue;
      gets++;
      groups ??= new Map();
      const g = groups.get(env.body.readVersion);
      if (g) g.push(env);
      else groups.set(env.body.readVersion, [env]);
    }
    if (groups === null || gets === groups.size) return; // no two gets share a version
    const out: Envelope<RequestBody>[] = [];
    for (const env of this.outbox) if (env.body.type !== 'get') out.push(env);
    for (const [readVersion, g] of groups) {
      // at most MAX_GET_MANY_KEYS keys per GetManyRequest (the server's per-frame limit; flush cuts frames at it too)
      for (let from = 0; from < g.length; from += MAX_GET_MANY_KEYS) {
        const n = Math.min(MAX_GET_MANY_KEYS, g.length - from);
        if (n === 1) {
          out.push(g[from]!);
          continue;
        }
        const id = this.takeId();
        const members: number[] = new Array(n);
        const keys: Uint8Array[] = new Array(n);
        for (let i = 0; i < n; i++) {
          members[i] = g[from + i]!.requestId;
          keys[i] = (g[from + i]!.body as Extract<RequestBody, { type: 'get' }>).key;
        }
        this.pending.set(id, { resolve: NOOP, reject: NOOP, isCommit: false, many: { members, keys, readVersion } });
        out.push({ requestId: id, body: { type: 'getMany', readVersion, keys } });
      }
    }
    this.outbox = out;
  }

  /**
   * Answers the gets of a GetManyRequest from its reply (or its error). The server asks
   * its shards again past each ~1 MB grant of reply bytes itself (gateway/dispatch.ts
   * serveGets), but one GetManyReply holds at most what the connection may hold unsent
   * (half of limits.maxBackpressureBytes), and a server before that refused the reads past
   * one grant RESOURCE_CONSTRAINED. So, as a fallback: when the reply answered some reads,
   * those refused are asked again in the next frame (each round answers at least one, so it
   * ends); a reply that answered none (the server's budget is spent) rejects them.
   */
  private answerMembers({ members, keys, readVersion }: NonNullable<Pending['many']>, body: ReplyBody | UnknownBody): void {
    let answered = 0;
    if (body.type === 'getMany') for (let i = 0; i < members.length && i < body.values.length; i++) if (!body.errors?.[i]) answered++;
    for (let i = 0; i < members.length; i++) {
      const p = this.pending.get(members[i]!);
      if (!p) continue;
      const e = body.type === 'getMany' ? body.errors?.[i] : null;
      if (e?.code === 'RESOURCE_CONSTRAINED' && answered > 0 && !this.dead) {
        this.send({ requestId: members[i]!, body: { type: 'get', readVersion, key: keys[i]! } });
        continue;
      }
      this.pending.delete(members[i]!);
      if (body.type === 'getMany') {
        if (e) p.reject(TxnError.fromWire(e));
        else if (i < body.values.length) p.resolve({ type: 'get', value: body.values[i]! });
        else p.reject(new TxnError('PROTOCOL_ERROR', `the server answered ${body.values.length} of ${members.length} reads of a GetManyRequest`));
      } else if (body.type === 'error') p.reject(TxnError.fromWire(body));
      else if (body.type === 'unknown') p.reject(new TxnError('PROTOCOL_ERROR', `server replied with unknown message type ${body.bodyType}`));
      else p.reject(new TxnError('PROTOCOL_ERROR', `server replied ${body.type} to a GetManyRequest`));
    }
  }

  /**
   * Pings the server every PING_INTERVAL_MS; with no answer of any kind for
   * DEAD_AFTER_MS the connection is given up as if it had closed (pending commits
   * MAYBE_COMMITTED, other calls NETWORK_ERROR), so a frozen or unreachable server
   * whose TCP connection stays up does not hold calls forever. Node (`ws`) only.
   *
   * Silence is only counted while this process runs: a tick that comes more than two
   * intervals late means this process was stalled (a long synchronous task, a stopped or
   * starved process), and an answer that came meanwhile may still wait in its own event
   * queue. Such a tick starts the count again, so a busy client does not give up a live
   * server and turn its commits in flight into MAYBE_COMMITTED (a CI run at load 12: a
   * test process encoding 400 MB of frames gave up its server after 12.9 s).
   */
  private startPinging(): void {
    const ws = this.socket;
    if (!ws?.ping || !ws.on) return;
    ws.on('pong', () => (this.lastHeard = Date.now()));
    this.lastHeard = Date.now();
    let lastTick = Date.now();
    this.pinger = setInterval(() => {
      const now = Date.now();
      if (now - lastTick > 2 * PING_INTERVAL_MS) this.lastHeard = now;
      lastTick = now;
      const silent = now - this.lastHeard;
      if (silent > DEAD_AFTER_MS) {
        this.onClosed(`no answer from ${this.url} for ${silent} ms (pings unanswered): the server is frozen or unreachable`);
        if (ws.terminate) ws.terminate();
        else ws.close();
        return;
      }
      try {
        ws.ping!();
      } catch {
        /* closing: onclose reports it */
      }
    }, PING_INTERVAL_MS);
    (this.pinger as { unref?: () => void }).unref?.();
  }

  private onMessage(data: unknown): void {
    this.lastHeard = Date.now();
    let buf: Uint8Array;
    if (data instanceof ArrayBuffer) buf = new Uint8Array(data);
    else if (data instanceof Uint8Array) buf = data;
    else return; // text frames are not part of the protocol
    let envelopes;
    try {
      envelopes = decodeReplies(buf);
    } catch (err) {
      this.onClosed(`server sent an undecodable frame: ${(err as Error).message}`);
      this.socket?.close(1002, 'undecodable frame');
      return;
    }
    for (const env of envelopes) {
      const p = this.pending.get(env.requestId);
      if (!p) continue;
      if (p.stream && env.body.type !== 'error' && env.body.type !== 'unknown') {
        p.resolve(env.body);
        continue;
      }
      this.pending.delete(env.requestId);
      if (p.many) {
        this.answerMembers(p.many, env.body);
        continue;
      }
      if (env.body.type === 'unknown') p.reject(new TxnError('PROTOCOL_ERROR', `server replied with unknown message type ${env.body.bodyType}`));
      else if (env.body.type === 'error') p.reject(TxnError.fromWire(env.body));
      else p.resolve(env.body);
    }
  }

  private onClosed(why: string): void {
    if (this.pinger) clearInterval(this.pinger);
    this.pinger = null;
    if (this.dead && this.pending.size === 0) return;
    this.dead = true;
    for (const p of this.pending.values()) {
      p.reject(
        p.isCommit
          ? new TxnError('MAYBE_COMMITTED', `${why} while a commit was in flight: it may or may not have been applied`)
          : new TxnError('NETWORK_ERROR', why),
      );
    }
    this.pending.clear();
  }

  close(): void {
    if (this.dead) return;
    this.flush();
    this.onClosed(`connection to ${this.url} closed by the client`);
    this.socket?.close(1000, 'client closed');
  }
}
