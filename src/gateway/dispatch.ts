// hot path: one decoded request -> the coordinator -> one reply body. Main thread.
// The gateway never talks to shards; it converts wire types (bigint versions,
// selectors) into the coordinator's and back.
import { TxnError, toWireError } from '../errors.js';
import { MAX_KEY_BYTES } from '../keys/limits.js';
import { DEFAULT_RANGE_LIMIT, RANGE_PAGE_MAX_BYTES, selectorsToRange } from '../keys/ranges.js';
import type { Coordinator } from '../coordinator/coordinator.js';
import type { WireMutation } from '../coordinator/commit-plan.js';
import type { Envelope, RefusedBody, ReplyBody, RequestBody, UnknownBody } from '../protocol/codec.js';
import { requestMetricsOf } from '../metrics/request-metrics.js';
import { GET_REPLY_SHARE } from './limits.js';
import { freeBuffers } from '../shard/free-buffers.js';
import { clientVersion as version } from '../keys/versions.js';

/** What dispatch needs: the coordinator on the main thread; a gateway thread's stand-in (gateway-worker.ts) there. */
export type Dispatcher = Pick<Coordinator, 'front' | 'reads' | 'commits'>;


function readKey(k: Uint8Array, what: string): Uint8Array {
  if (k.length > MAX_KEY_BYTES) throw new TxnError('KEY_TOO_LARGE', `${what} is ${k.length} bytes; limit ${MAX_KEY_BYTES}`);
  return k;
}

/** One request that is not a point read (those go through dispatchGets, a frame's worth at a time). */
export async function dispatch(c: Dispatcher, body: Exclude<RequestBody, { type: 'get' | 'getMany' }> | UnknownBody | RefusedBody, replyBudget = RANGE_PAGE_MAX_BYTES): Promise<ReplyBody> {
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
      case 'refused':
        // a commit the decoder refused without decoding it (codec.ts decodeRequests)
        throw new TxnError(body.code, body.message);
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
 * one per key (see ReadRouter.getMany). Answers in the order of `keys`. `again`: reads
 * refused past the grant (RESOURCE_CONSTRAINED) are asked again (serveGets), so they are
 * not counted as errors.
 */
export async function dispatchGets(c: Dispatcher, readVersions: bigint[], keys: Uint8Array[], replyBudget = Infinity, again = false): Promise<GetResult[]> {
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
      if (m) {
        if (again && r.code === 'RESOURCE_CONSTRAINED') m.end();
        else m.failed(r.code);
      }
      out[i] = { code: r.code, message: r.message };
      continue;
    }
    if (m) m.getDone(started, checked[i]!, r);
    out[i] = r;
  }
  return out;
}

const EMPTY = new Uint8Array(0);
/** No key pending (shared: never written). */
const NONE: number[] = [];

/** A shard's refusal of a point read past its share of the reply grant (the only RESOURCE_CONSTRAINED of a point read). */
function isGrantRefusal(r: GetResult): boolean {
  return r !== null && !(r instanceof Uint8Array) && r.code === 'RESOURCE_CONSTRAINED';
}

/** One reply of a frame's point reads and the value bytes it holds. */
export interface GetReply {
  requestId: number;
  body: ReplyBody;
  bytes: number;
}

/**
 * The point reads of one frame, GetRequests and GetManyRequests alike, flattened for
 * dispatchGets. Reads a shard refused past the reply's grant stay pending and go again in
 * the next round (serveGets); a request is answered once all its reads are.
 */
export class FrameGets {
  readonly versions: bigint[] = [];
  readonly keys: Uint8Array[] = [];
  /** Per request: its id, its first key, its number of keys, and whether it is a GetManyRequest. */
  private readonly requests: { requestId: number; start: number; count: number; many: boolean }[] = [];
  /** After a round with refusals: every key's result so far (undefined = still pending). */
  private results: (GetResult | undefined)[] | null = null;
  /** After a round with refusals: the keys still to ask, ascending; per request, its keys still pending. */
  private pending: number[] | null = null;
  private left: number[] | null = null;

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

  /** Keys of the next round (all of them in the first). */
  get pendingCount(): number {
    return this.pending === null ? this.keys.length : this.pending.length;
  }

  /** Read versions and keys of the next round, in the order absorb() expects their results. */
  ask(): { versions: bigint[]; keys: Uint8Array[] } {
    if (this.pending === null) return { versions: this.versions, keys: this.keys };
    const versions: bigint[] = new Array(this.pending.length);
    const keys: Uint8Array[] = new Array(this.pending.length);
    for (let j = 0; j < this.pending.length; j++) {
      versions[j] = this.versions[this.pending[j]!]!;
      keys[j] = this.keys[this.pending[j]!]!;
    }
    return { versions, keys };
  }

  /**
   * Takes a round's results (in the order of ask()). Returns the replies of the requests
   * now fully answered, the value bytes the round answered (replied now or held for a
   * GetManyRequest with reads still pending), and how many reads it answered; reads
   * refused past the grant stay pending.
   */
  absorb(round: readonly GetResult[]): { replies: GetReply[]; bytes: number; answered: number } {
    if (this.pending === null) {
      let refused = false;
      for (let i = 0; i < round.length; i++) {
        if (isGrantRefusal(round[i]!)) {
          refused = true;
          break;
        }
      }
      // the common case: one round answers everything
      if (!refused) {
        this.pending = NONE;
        const replies = this.replies(round);
        let bytes = 0;
        for (const r of replies) bytes += r.bytes;
        return { replies, bytes, answered: round.length };
      }
      this.results = new Array<GetResult | undefined>(this.keys.length);
      this.pending = Array.from({ length: this.keys.length }, (_, i) => i);
      this.left = this.requests.map((q) => q.count);
    }
    const asked = this.pending;
    const results = this.results!;
    const left = this.left!;
    const still: number[] = [];
    let bytes = 0;
    let answered = 0;
    const done: number[] = [];
    let q = 0;
    for (let j = 0; j < asked.length; j++) {
      const i = asked[j]!;
      const r = round[j]!;
      if (isGrantRefusal(r)) {
        still.push(i);
        continue;
      }
      results[i] = r;
      answered++;
      if (r instanceof Uint8Array) bytes += r.length;
      // keys ascend, so the request owning key i is found by walking forward
      while (this.requests[q]!.start + this.requests[q]!.count <= i) q++;
      if (--left[q]! === 0) done.push(q);
    }
    this.pending = still;
    return { replies: done.map((d) => this.replyOf(d, results as readonly GetResult[])), bytes, answered };
  }

  /** Answers every read still pending with `err`: the replies of the requests that completes. */
  refuseRest(err: { code: string; message: string }): GetReply[] {
    const round: GetResult[] = new Array(this.pendingCount).fill(err);
    if (this.pending === null) {
      this.pending = NONE;
      return this.replies(round);
    }
    const asked = this.pending;
    const results = this.results!;
    const left = this.left!;
    const done: number[] = [];
    let q = 0;
    for (const i of asked) {
      results[i] = err;
      while (this.requests[q]!.start + this.requests[q]!.count <= i) q++;
      if (--left[q]! === 0) done.push(q);
    }
    this.pending = [];
    return done.map((d) => this.replyOf(d, results as readonly GetResult[]));
  }

  /** Each request's reply and the value bytes it holds, in arrival order. */
  replies(results: readonly GetResult[]): GetReply[] {
    const out: GetReply[] = new Array(this.requests.length);
    for (let q = 0; q < this.requests.length; q++) out[q] = this.replyOf(q, results);
    return out;
  }

  private replyOf(q: number, results: readonly GetResult[]): GetReply {
    const { requestId, start, count, many } = this.requests[q]!;
    if (!many) {
      const r = results[start]!;
      return isError(r) ? { requestId, body: { type: 'error', code: r.code, message: r.message }, bytes: 0 } : { requestId, body: { type: 'get', value: r }, bytes: r ? r.length : 0 };
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
    return { requestId, body: { type: 'getMany', values, errors }, bytes };
  }

  /** The same reply (an error) for every request held. */
  each(f: (requestId: number) => void): void {
    for (const r of this.requests) f(r.requestId);
  }
}

/** What serveGets needs of a connection (socket.ts on the main thread, gateway-worker.ts on a gateway thread). */
export interface GetsHost {
  /**
   * Reply bytes for a round that wants `want` (limits.ts grantReply against what the
   * connection holds and has unsent, and the server's budget), added to what the
   * connection holds; 0 = none left.
   */
  grant(want: number): number;
  /** A round's grant turned out to hold `actual` value bytes (the rest goes back). */
  settle(grant: number, actual: number): void;
  /** The error for reads left when a round gets no grant (limits.ts replyRefusal). */
  refusal(): { code: string; message: string };
  /** A request answered; `bytes` of its values are held until its frame is handed on. */
  reply(requestId: number, body: ReplyBody, bytes: number): void;
  /** The connection closed: nothing more is asked. */
  closed(): boolean;
  /** The connection's rounds being read (every frame's): a round without a grant waits for one of them. */
  rounds: RoundsInFlight;
}

/**
 * A connection's rounds of point reads that hold a grant and are being read by the shards
 * (serveGets), across its frames. A round of another frame that gets no grant while one of
 * these is out waits for it to settle instead of being refused: the grant it holds comes
 * back then. Without this, clients that split a turn's gets over frames (MAX_GET_MANY_KEYS)
 * had their second frame refused RESOURCE_CONSTRAINED outright: each round asks up to half
 * the connection's backpressure limit (16 KiB per read), and the first frame's round held it.
 */
export class RoundsInFlight {
  private out = 0;
  private waiting: (() => void)[] = [];

  started(): void {
    this.out++;
  }

  /** A round settled: the rounds waiting try again once its replies are handed on (setImmediate, as serveGets' rounds). */
  settled(): void {
    this.out--;
    if (this.waiting.length === 0) return;
    const wake = this.waiting;
    this.waiting = [];
    setImmediate(() => {
      for (const f of wake) f();
    });
  }

  /** Resolves when a round now out settles; null when none is out (nothing will free a grant: refuse). */
  next(): Promise<void> | null {
    if (this.out === 0) return null;
    return new Promise((resolve) => this.waiting.push(resolve));
  }
}

/** Reply bytes a round of `n` point reads asks for (at least a range page's worth). */
export function getsWant(n: number): number {
  return Math.max(RANGE_PAGE_MAX_BYTES, n * GET_REPLY_SHARE);
}

/**
 * Serves a frame's point reads in rounds. Each round gets a grant of reply bytes, and each
 * shard asked answers at least one read and refuses those past its share of the grant; the
 * requests a round completes are answered at once (so their bytes leave as the next round
 * is read), and the refused reads are asked again with a new grant. So a batch is answered
 * completely, whatever its values weigh, unless a round gets no grant: the connection holds
 * half its backpressure limit unsent or the server's budget is spent, and then the reads
 * left are answered RESOURCE_CONSTRAINED (retryable), as before. A GetManyRequest keeps the
 * values of earlier rounds (counted in the connection's grant) until its last read is
 * answered. Resolves once every request has its reply; never rejects.
 */
export async function serveGets(c: Dispatcher, batch: FrameGets, host: GetsHost): Promise<void> {
  for (;;) {
    if (host.closed()) {
      // the connection's reply() releases the bytes of values already held
      for (const r of batch.refuseRest({ code: 'NETWORK_ERROR', message: 'connection closed' })) host.reply(r.requestId, r.body, r.bytes);
      return;
    }
    const grant = host.grant(getsWant(batch.pendingCount));
    if (grant === 0) {
      // another frame's round of this connection holds the grant: wait for it to come back
      const other = host.rounds.next();
      if (other !== null) {
        await other;
        continue;
      }
      for (const r of batch.refuseRest(host.refusal())) host.reply(r.requestId, r.body, r.bytes);
      return;
    }
    const { versions, keys } = batch.ask();
    let round: { replies: GetReply[]; bytes: number; answered: number };
    host.rounds.started();
    try {
      round = batch.absorb(await dispatchGets(c, versions, keys, grant, true));
    } catch (err) {
      host.settle(grant, 0);
      host.rounds.settled();
      const e = toWireError(err);
      for (const r of batch.refuseRest({ code: e.code, message: e.message })) host.reply(r.requestId, r.body, r.bytes);
      return;
    }
    host.settle(grant, round.bytes);
    host.rounds.settled();
    for (const r of round.replies) host.reply(r.requestId, r.body, r.bytes);
    if (batch.pendingCount === 0) return;
    if (round.answered === 0) {
      // cannot happen (every shard asked answers its first read), but a round without
      // progress must not repeat forever
      for (const r of batch.refuseRest(host.refusal())) host.reply(r.requestId, r.body, r.bytes);
      return;
    }
    // the next grant is judged once this round's replies have left (socket.ts hands them to
    // uWS at the end of the turn, a gateway thread posts them then): what the client has
    // not read by then counts against the connection
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/**
 * Frees the range pages of replies just encoded into a frame (both gateway modes): each
 * page's rows view a buffer the shard moved to this thread for that reply alone
 * (shard/wire.ts encodeReplies), now copied into the frame, so it is freed at once
 * (shard/free-buffers.ts) instead of waiting for this thread's collector with up to ~64 MB
 * of others.
 */
export function freeRangePages(sent: readonly Envelope<ReplyBody>[]): void {
  for (const e of sent) if (e.body.type === 'range' && e.body.kvs.length > 0) freeBuffers(e.body.kvs);
}
