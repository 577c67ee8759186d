// hot path: FlatBuffers frames <-> plain messages, for the client and the gateway.
// Browser-safe (no node: imports). Every decode verifies the frame first (verify.ts).
import * as flatbuffers from 'flatbuffers';
import { Body } from './generated/txkv/wire/body.js';
import { CommitReply as FbCommitReply } from './generated/txkv/wire/commit-reply.js';
import { CommitRequest as FbCommitRequest } from './generated/txkv/wire/commit-request.js';
import { Envelope as FbEnvelope } from './generated/txkv/wire/envelope.js';
import { ErrorReply as FbErrorReply } from './generated/txkv/wire/error-reply.js';
import { Frame as FbFrame } from './generated/txkv/wire/frame.js';
import { GetRangeReply as FbGetRangeReply } from './generated/txkv/wire/get-range-reply.js';
import { GetRangeRequest as FbGetRangeRequest } from './generated/txkv/wire/get-range-request.js';
import { GetReadVersionReply as FbGetReadVersionReply } from './generated/txkv/wire/get-read-version-reply.js';
import { GetReadVersionRequest as FbGetReadVersionRequest } from './generated/txkv/wire/get-read-version-request.js';
import { GetReply as FbGetReply } from './generated/txkv/wire/get-reply.js';
import { GetManyReply as FbGetManyReply } from './generated/txkv/wire/get-many-reply.js';
import { GetManyRequest as FbGetManyRequest } from './generated/txkv/wire/get-many-request.js';
import { GetRequest as FbGetRequest } from './generated/txkv/wire/get-request.js';
import { HelloReply as FbHelloReply } from './generated/txkv/wire/hello-reply.js';
import { HelloRequest as FbHelloRequest } from './generated/txkv/wire/hello-request.js';
import { KeyRange as FbKeyRange } from './generated/txkv/wire/key-range.js';
import { KeyValue as FbKeyValue } from './generated/txkv/wire/key-value.js';
import { Mutation as FbMutation } from './generated/txkv/wire/mutation.js';
import { CancelRequest as FbCancelRequest } from './generated/txkv/wire/cancel-request.js';
import { ChangeBatch as FbChangeBatch } from './generated/txkv/wire/change-batch.js';
import { SubscribeAckRequest as FbSubscribeAckRequest } from './generated/txkv/wire/subscribe-ack-request.js';
import { SubscribeRequest as FbSubscribeRequest } from './generated/txkv/wire/subscribe-request.js';
import { VersionChanges as FbVersionChanges } from './generated/txkv/wire/version-changes.js';
import { WatchReply as FbWatchReply } from './generated/txkv/wire/watch-reply.js';
import { WatchRequest as FbWatchRequest } from './generated/txkv/wire/watch-request.js';
import { commitBytesAtLeast, verifyFrame, FrameError, FrameLimitError, frameRefusalMessage, type FrameCaps } from './verify.js';
import { MAX_TRANSACTION_BYTES } from '../keys/limits.js';

export { FrameError, FrameLimitError, frameRefusalMessage };

export const PROTOCOL_VERSION = 1;

/**
 * Envelopes one request frame may hold (docs/protocol.md "Limits"), the default
 * limits.maxInflightPerConnection: a frame past it is refused before it is decoded and its
 * connection closed. Each envelope becomes JS objects on the server before any limit of
 * its own applies: one 10.8 MB frame of 450,000 requests cost ~1 s of the main thread.
 * Clients split their frames (client/connection.ts flush, the C++ client's flush).
 */
export const MAX_FRAME_ENVELOPES = 10_000;
/**
 * Keys one request frame's GetManyRequests may hold together (so one GetManyRequest at
 * most), for the same reason: one GetManyRequest of 2,000,000 empty keys (8 MB) cost 2.8 s
 * and ~850 MB of RSS to decode, read and answer. The SDK cuts its coalesced gets to it.
 */
export const MAX_GET_MANY_KEYS = 10_000;

const REQUEST_CAPS: FrameCaps = { envelopes: MAX_FRAME_ENVELOPES, getManyKeys: MAX_GET_MANY_KEYS };

/**
 * The request id of replies to frames that cannot be parsed (docs/protocol.md). A request
 * must not use it: its reply could not be told from such a frame-level error, so the
 * server refuses it (PROTOCOL_ERROR under id 0, this message) without running it.
 */
export const FRAME_ERROR_REQUEST_ID = 0;
export const RESERVED_REQUEST_ID_MESSAGE =
  'request id 0 is reserved for replies to frames that cannot be parsed; requests use ids 1 to 4294967295';

export interface KeyRangeMsg {
  begin: Uint8Array;
  end: Uint8Array;
}

export interface MutationMsg {
  /**
   * 0 Set, 1 Clear, 2 ClearRange, 3 SetVersionstampedKey, 4 SetVersionstampedValue,
   * 5..14 atomic operations (Add, BitAnd, BitOr, BitXor, Max, Min, ByteMax, ByteMin,
   * AppendIfFits, CompareAndClear; schemas/txkv.fbs MutationType)
   */
  type: number;
  key: Uint8Array;
  param: Uint8Array;
  offset: number;
}

export type RequestBody =
  | { type: 'hello'; protocolVersion: number; token: string; clientName: string }
  | { type: 'grv' }
  | { type: 'get'; readVersion: bigint; key: Uint8Array }
  /** Point reads at one version, one reply (GetManyReply); servers whose Hello says getMany only. */
  | { type: 'getMany'; readVersion: bigint; keys: Uint8Array[] }
  | {
      type: 'range';
      readVersion: bigint;
      beginKey: Uint8Array;
      beginInclusive: boolean;
      endKey: Uint8Array;
      endInclusive: boolean;
      limit: number;
      reverse: boolean;
    }
  | { type: 'commit'; readVersion: bigint; readConflicts: KeyRangeMsg[]; mutations: MutationMsg[] }
  /** Pending until the key's value differs from { present, value }. */
  | { type: 'watch'; key: Uint8Array; present: boolean; value: Uint8Array }
  /** fromVersion 0n = now; windowBytes = unacknowledged bytes the server may send. */
  | { type: 'subscribe'; begin: Uint8Array; end: Uint8Array; fromVersion: bigint; windowBytes: number }
  /** No reply. */
  | { type: 'subscribeAck'; subscribeRequestId: number; bytes: number }
  /** No reply; the target request is answered CANCELED. */
  | { type: 'cancel'; targetRequestId: number };

/** One committed version of a change feed: Set / Clear / ClearRange mutations (types 0, 1, 2). */
export interface VersionChangesMsg {
  version: bigint;
  mutations: MutationMsg[];
}

export type ReplyBody =
  | { type: 'hello'; protocolVersion: number; serverVersion: string; readOnly: boolean; databaseId: string; getMany: boolean; nodeId?: string }
  | { type: 'grv'; readVersion: bigint }
  | { type: 'get'; value: Uint8Array | null }
  /** Per key of the GetManyRequest, in order: its value (null = absent), or its error in `errors` (null there: answered). */
  | { type: 'getMany'; values: (Uint8Array | null)[]; errors: ({ code: string; message: string } | null)[] | null }
  | { type: 'range'; kvs: Uint8Array[]; hasMore: boolean }
  | { type: 'commit'; commitVersion: bigint; versionstamp: Uint8Array }
  | { type: 'watch'; version: bigint }
  | { type: 'changes'; versions: VersionChangesMsg[]; bytes: number }
  | { type: 'error'; code: string; message: string };

/** An envelope whose body could not be understood (unknown type): answer it with PROTOCOL_ERROR. */
export interface UnknownBody {
  type: 'unknown';
  bodyType: number;
}

/**
 * A request answered with this error without being decoded (decodeRequests): a
 * CommitRequest whose counts alone pass the transaction size limit.
 */
export interface RefusedBody {
  type: 'refused';
  code: 'TRANSACTION_TOO_LARGE';
  message: string;
}

export interface Envelope<T> {
  requestId: number;
  body: T;
}

const EMPTY = new Uint8Array(0);

function bytes(b: flatbuffers.Builder, v: Uint8Array): number {
  return b.createByteVector(v);
}

function buildMutation(b: flatbuffers.Builder, m: MutationMsg): number {
  const k = bytes(b, m.key);
  const p = bytes(b, m.param);
  FbMutation.startMutation(b);
  FbMutation.addType(b, m.type);
  FbMutation.addKey(b, k);
  FbMutation.addParam(b, p);
  FbMutation.addOffset(b, m.offset);
  return FbMutation.endMutation(b);
}

function buildBody(b: flatbuffers.Builder, body: RequestBody | ReplyBody, isReply: boolean): [Body, number] {
  switch (body.type) {
    case 'watch':
      if (!isReply) {
        const rb = body as Extract<RequestBody, { type: 'watch' }>;
        const k = bytes(b, rb.key);
        const v = bytes(b, rb.value);
        FbWatchRequest.startWatchRequest(b);
        FbWatchRequest.addKey(b, k);
        FbWatchRequest.addPresent(b, rb.present);
        FbWatchRequest.addValue(b, v);
        return [Body.WatchRequest, FbWatchRequest.endWatchRequest(b)];
      } else {
        const rb = body as Extract<ReplyBody, { type: 'watch' }>;
        FbWatchReply.startWatchReply(b);
        FbWatchReply.addVersion(b, rb.version);
        return [Body.WatchReply, FbWatchReply.endWatchReply(b)];
      }
    case 'subscribe': {
      const k = bytes(b, body.begin);
      const e = bytes(b, body.end);
      FbSubscribeRequest.startSubscribeRequest(b);
      FbSubscribeRequest.addBegin(b, k);
      FbSubscribeRequest.addEnd(b, e);
      FbSubscribeRequest.addFromVersion(b, body.fromVersion);
      FbSubscribeRequest.addWindowBytes(b, body.windowBytes);
      return [Body.SubscribeRequest, FbSubscribeRequest.endSubscribeRequest(b)];
    }
    case 'subscribeAck':
      return [Body.SubscribeAckRequest, FbSubscribeAckRequest.createSubscribeAckRequest(b, body.subscribeRequestId, body.bytes)];
    case 'cancel':
      return [Body.CancelRequest, FbCancelRequest.createCancelRequest(b, body.targetRequestId)];
    case 'changes': {
      const vs = body.versions.map((v) => {
        const ms = FbVersionChanges.createMutationsVector(b, v.mutations.map((m) => buildMutation(b, m)));
        return FbVersionChanges.createVersionChanges(b, v.version, ms);
      });
      const vv = FbChangeBatch.createVersionsVector(b, vs);
      return [Body.ChangeBatch, FbChangeBatch.createChangeBatch(b, vv, body.bytes)];
    }
    case 'hello':
      if (!isReply) {
        const rb = body as Extract<RequestBody, { type: 'hello' }>;
        const token = b.createString(rb.token);
        const name = b.createString(rb.clientName);
        FbHelloRequest.startHelloRequest(b);
        FbHelloRequest.addProtocolVersion(b, rb.protocolVersion);
        FbHelloRequest.addToken(b, token);
        FbHelloRequest.addClientName(b, name);
        return [Body.HelloRequest, FbHelloRequest.endHelloRequest(b)];
      } else {
        const rb = body as Extract<ReplyBody, { type: 'hello' }>;
        const sv = b.createString(rb.serverVersion);
        // absent when empty, so the bytes of a reply without an id stay what they were
        const dbId = rb.databaseId === '' ? 0 : b.createString(rb.databaseId);
        const nodeId = rb.nodeId ? b.createString(rb.nodeId) : 0;
        FbHelloReply.startHelloReply(b);
        FbHelloReply.addProtocolVersion(b, rb.protocolVersion);
        FbHelloReply.addServerVersion(b, sv);
        FbHelloReply.addReadOnly(b, rb.readOnly);
        if (dbId !== 0) FbHelloReply.addDatabaseId(b, dbId);
        if (rb.getMany) FbHelloReply.addGetMany(b, true);
        if (nodeId !== 0) FbHelloReply.addNodeId(b, nodeId);
        return [Body.HelloReply, FbHelloReply.endHelloReply(b)];
      }
    case 'grv':
      if (!isReply) {
        FbGetReadVersionRequest.startGetReadVersionRequest(b);
        return [Body.GetReadVersionRequest, FbGetReadVersionRequest.endGetReadVersionRequest(b)];
      } else {
        const rb = body as Extract<ReplyBody, { type: 'grv' }>;
        FbGetReadVersionReply.startGetReadVersionReply(b);
        FbGetReadVersionReply.addReadVersion(b, rb.readVersion);
        return [Body.GetReadVersionReply, FbGetReadVersionReply.endGetReadVersionReply(b)];
      }
    case 'get':
      if (!isReply) {
        const rb = body as Extract<RequestBody, { type: 'get' }>;
        const key = bytes(b, rb.key);
        FbGetRequest.startGetRequest(b);
        FbGetRequest.addReadVersion(b, rb.readVersion);
        FbGetRequest.addKey(b, key);
        return [Body.GetRequest, FbGetRequest.endGetRequest(b)];
      } else {
        const rb = body as Extract<ReplyBody, { type: 'get' }>;
        const value = rb.value ? bytes(b, rb.value) : 0;
        FbGetReply.startGetReply(b);
        FbGetReply.addPresent(b, rb.value !== null);
        if (value) FbGetReply.addValue(b, value);
        return [Body.GetReply, FbGetReply.endGetReply(b)];
      }
    case 'getMany':
      if (!isReply) {
        const rb = body as Extract<RequestBody, { type: 'getMany' }>;
        const lengths: number[] = new Array(rb.keys.length);
        let total = 0;
        for (let i = 0; i < rb.keys.length; i++) total += lengths[i] = rb.keys[i]!.length;
        const packed = new Uint8Array(total);
        let at = 0;
        for (const k of rb.keys) {
          packed.set(k, at);
          at += k.length;
        }
        const kv = bytes(b, packed);
        const lv = FbGetManyRequest.createKeyLengthsVector(b, lengths);
        FbGetManyRequest.startGetManyRequest(b);
        FbGetManyRequest.addReadVersion(b, rb.readVersion);
        FbGetManyRequest.addKeys(b, kv);
        FbGetManyRequest.addKeyLengths(b, lv);
        return [Body.GetManyRequest, FbGetManyRequest.endGetManyRequest(b)];
      } else {
        const rb = body as Extract<ReplyBody, { type: 'getMany' }>;
        const n = rb.values.length;
        const lengths: number[] = new Array(n);
        const errs: number[] = [];
        let total = 0;
        for (let i = 0; i < n; i++) {
          const e = rb.errors?.[i];
          if (e) {
            lengths[i] = -2;
            errs.push(FbErrorReply.createErrorReply(b, b.createString(e.code), b.createString(e.message)));
            continue;
          }
          const v = rb.values[i];
          lengths[i] = v ? v.length : -1;
          if (v) total += v.length;
        }
        const packed = new Uint8Array(total);
        let at = 0;
        for (let i = 0; i < n; i++) {
          const v = rb.values[i];
          if (lengths[i]! >= 0 && v) {
            packed.set(v, at);
            at += v.length;
          }
        }
        const vv = bytes(b, packed);
        const lv = FbGetManyReply.createValueLengthsVector(b, lengths);
        const ev = errs.length > 0 ? FbGetManyReply.createErrorsVector(b, errs) : 0;
        FbGetManyReply.startGetManyReply(b);
        FbGetManyReply.addValues(b, vv);
        FbGetManyReply.addValueLengths(b, lv);
        if (ev) FbGetManyReply.addErrors(b, ev);
        return [Body.GetManyReply, FbGetManyReply.endGetManyReply(b)];
      }
    case 'range':
      if (!isReply) {
        const rb = body as Extract<RequestBody, { type: 'range' }>;
        const bk = bytes(b, rb.beginKey);
        const ek = bytes(b, rb.endKey);
        FbGetRangeRequest.startGetRangeRequest(b);
        FbGetRangeRequest.addReadVersion(b, rb.readVersion);
        FbGetRangeRequest.addBeginKey(b, bk);
        FbGetRangeRequest.addBeginInclusive(b, rb.beginInclusive);
        FbGetRangeRequest.addEndKey(b, ek);
        FbGetRangeRequest.addEndInclusive(b, rb.endInclusive);
        FbGetRangeRequest.addLimit(b, rb.limit);
        FbGetRangeRequest.addReverse(b, rb.reverse);
        return [Body.GetRangeRequest, FbGetRangeRequest.endGetRangeRequest(b)];
      } else {
        const rb = body as Extract<ReplyBody, { type: 'range' }>;
        const offs: number[] = [];
        for (let i = 0; i + 1 < rb.kvs.length; i += 2) {
          const k = bytes(b, rb.kvs[i]!);
          const v = bytes(b, rb.kvs[i + 1]!);
          offs.push(FbKeyValue.createKeyValue(b, k, v));
        }
        const vec = FbGetRangeReply.createKvsVector(b, offs);
        FbGetRangeReply.startGetRangeReply(b);
        FbGetRangeReply.addKvs(b, vec);
        FbGetRangeReply.addHasMore(b, rb.hasMore);
        return [Body.GetRangeReply, FbGetRangeReply.endGetRangeReply(b)];
      }
    case 'commit':
      if (!isReply) {
        const rb = body as Extract<RequestBody, { type: 'commit' }>;
        const rcs = rb.readConflicts.map((r) => FbKeyRange.createKeyRange(b, bytes(b, r.begin), bytes(b, r.end)));
        const ms = rb.mutations.map((m) => buildMutation(b, m));
        const rcv = FbCommitRequest.createReadConflictsVector(b, rcs);
        const mv = FbCommitRequest.createMutationsVector(b, ms);
        FbCommitRequest.startCommitRequest(b);
        FbCommitRequest.addReadVersion(b, rb.readVersion);
        FbCommitRequest.addReadConflicts(b, rcv);
        FbCommitRequest.addMutations(b, mv);
        return [Body.CommitRequest, FbCommitRequest.endCommitRequest(b)];
      } else {
        const rb = body as Extract<ReplyBody, { type: 'commit' }>;
        const vs = bytes(b, rb.versionstamp);
        FbCommitReply.startCommitReply(b);
        FbCommitReply.addCommitVersion(b, rb.commitVersion);
        FbCommitReply.addVersionstamp(b, vs);
        return [Body.CommitReply, FbCommitReply.endCommitReply(b)];
      }
    case 'error': {
      // shared within the frame: refusals repeat (a frame past the in-flight limit gets one
      // THROTTLED per request): 450,000 of them took 48.6 MB and 0.85 s to encode, 14.4 MB
      // and 0.16 s shared
      const code = b.createSharedString(body.code);
      const msg = b.createSharedString(body.message);
      FbErrorReply.startErrorReply(b);
      FbErrorReply.addCode(b, code);
      FbErrorReply.addMessage(b, msg);
      return [Body.ErrorReply, FbErrorReply.endErrorReply(b)];
    }
  }
}

function encodeFrame(envelopes: Envelope<RequestBody | ReplyBody>[], isReply: boolean, b = new flatbuffers.Builder(256)): Uint8Array {
  const offs: number[] = [];
  for (const e of envelopes) {
    const [type, body] = buildBody(b, e.body, isReply);
    FbEnvelope.startEnvelope(b);
    FbEnvelope.addRequestId(b, e.requestId);
    FbEnvelope.addBodyType(b, type);
    FbEnvelope.addBody(b, body);
    offs.push(FbEnvelope.endEnvelope(b));
  }
  const vec = FbFrame.createEnvelopesVector(b, offs);
  const root = FbFrame.createFrame(b, vec);
  FbFrame.finishFrameBuffer(b, root);
  return b.asUint8Array();
}

export function encodeRequests(envelopes: Envelope<RequestBody>[]): Uint8Array {
  return encodeFrame(envelopes, false);
}

export function encodeReplies(envelopes: Envelope<ReplyBody>[]): Uint8Array {
  return encodeFrame(envelopes, true);
}

/** A ReplyEncoder keeps its buffer between frames up to this size (bytes); a larger one is dropped at the next frame. */
export const REPLY_ENCODER_KEEP_BYTES = 4 * 1024 * 1024;

/**
 * Encodes reply frames into one buffer kept from frame to frame. The frame returned is a
 * view into that buffer, valid only until the next encode(): send it (uWS's send copies
 * it) or copy it at once. Why: a builder per frame starts at 256 bytes and doubles, so a
 * frame with a 1 MB range page allocated ~4 MB (every step of the doubling, the last one
 * 2 MB) that lived until a GC; under slow readers that garbage, and the malloc arena
 * space it left behind, took the server's RSS well past limits.maxBufferedBytes.
 */
export class ReplyEncoder {
  private b = new flatbuffers.Builder(64 * 1024);

  encode(envelopes: Envelope<ReplyBody>[]): Uint8Array {
    // a buffer grown past KEEP (one very large frame) is left to the collector
    if (this.b.dataBuffer().capacity() > REPLY_ENCODER_KEEP_BYTES) this.b = new flatbuffers.Builder(64 * 1024);
    else this.b.clear();
    return encodeFrame(envelopes, true, this.b);
  }
}

function frameOf(buf: Uint8Array, caps: FrameCaps | null): FbFrame {
  verifyFrame(buf, caps);
  return FbFrame.getRootAsFrame(new flatbuffers.ByteBuffer(buf));
}

/**
 * Views into `buf` (no copies): callers keep `buf` alive while they use the keys. Throws
 * FrameError for a frame that is not well-formed, FrameLimitError for one past
 * MAX_FRAME_ENVELOPES or MAX_GET_MANY_KEYS (nothing decoded).
 */
export function decodeRequests(buf: Uint8Array): Envelope<RequestBody | UnknownBody | RefusedBody>[] {
  const frame = frameOf(buf, REQUEST_CAPS);
  const out: Envelope<RequestBody | UnknownBody | RefusedBody>[] = [];
  const n = frame.envelopesLength();
  for (let i = 0; i < n; i++) {
    const e = frame.envelopes(i)!;
    const requestId = e.requestId();
    const t = e.bodyType();
    let body: RequestBody | UnknownBody | RefusedBody;
    switch (t) {
      case Body.HelloRequest: {
        const h = e.body(new FbHelloRequest()) as FbHelloRequest;
        body = { type: 'hello', protocolVersion: h.protocolVersion(), token: h.token() ?? '', clientName: h.clientName() ?? '' };
        break;
      }
      case Body.GetReadVersionRequest:
        body = { type: 'grv' };
        break;
      case Body.GetRequest: {
        const g = e.body(new FbGetRequest()) as FbGetRequest;
        body = { type: 'get', readVersion: g.readVersion(), key: g.keyArray() ?? EMPTY };
        break;
      }
      case Body.GetManyRequest: {
        const g = e.body(new FbGetManyRequest()) as FbGetManyRequest;
        const packed = g.keysArray() ?? EMPTY;
        const n = g.keyLengthsLength();
        const keys: Uint8Array[] = new Array(n);
        let at = 0;
        for (let j = 0; j < n; j++) {
          const len = g.keyLengths(j)!;
          if (len > packed.length - at) throw new FrameError(`GetManyRequest: key lengths add up to more than its ${packed.length} key bytes`);
          keys[j] = packed.subarray(at, at + len);
          at += len;
        }
        body = { type: 'getMany', readVersion: g.readVersion(), keys };
        break;
      }
      case Body.GetRangeRequest: {
        const g = e.body(new FbGetRangeRequest()) as FbGetRangeRequest;
        body = {
          type: 'range',
          readVersion: g.readVersion(),
          beginKey: g.beginKeyArray() ?? EMPTY,
          beginInclusive: g.beginInclusive(),
          endKey: g.endKeyArray() ?? EMPTY,
          endInclusive: g.endInclusive(),
          limit: g.limit(),
          reverse: g.reverse(),
        };
        break;
      }
      case Body.CommitRequest: {
        const c = e.body(new FbCommitRequest()) as FbCommitRequest;
        const nm = c.mutationsLength();
        const nr = c.readConflictsLength();
        const atLeast = commitBytesAtLeast(nm, nr);
        if (atLeast > MAX_TRANSACTION_BYTES) {
          // not decoded (verifyFrame did not walk its tables either)
          body = {
            type: 'refused',
            code: 'TRANSACTION_TOO_LARGE',
            message: `transaction is at least ${atLeast} bytes (${nm} mutations, ${nr} read conflict ranges, before their keys and values); limit ${MAX_TRANSACTION_BYTES}`,
          };
          break;
        }
        const readConflicts: KeyRangeMsg[] = [];
        for (let j = 0; j < c.readConflictsLength(); j++) {
          const r = c.readConflicts(j)!;
          readConflicts.push({ begin: r.beginArray() ?? EMPTY, end: r.endArray() ?? EMPTY });
        }
        const mutations: MutationMsg[] = [];
        for (let j = 0; j < c.mutationsLength(); j++) {
          const m = c.mutations(j)!;
          mutations.push({ type: m.type(), key: m.keyArray() ?? EMPTY, param: m.paramArray() ?? EMPTY, offset: m.offset() });
        }
        body = { type: 'commit', readVersion: c.readVersion(), readConflicts, mutations };
        break;
      }
      case Body.WatchRequest: {
        const w = e.body(new FbWatchRequest()) as FbWatchRequest;
        body = { type: 'watch', key: w.keyArray() ?? EMPTY, present: w.present(), value: w.valueArray() ?? EMPTY };
        break;
      }
      case Body.SubscribeRequest: {
        const r = e.body(new FbSubscribeRequest()) as FbSubscribeRequest;
        body = { type: 'subscribe', begin: r.beginArray() ?? EMPTY, end: r.endArray() ?? EMPTY, fromVersion: r.fromVersion(), windowBytes: r.windowBytes() };
        break;
      }
      case Body.SubscribeAckRequest: {
        const r = e.body(new FbSubscribeAckRequest()) as FbSubscribeAckRequest;
        body = { type: 'subscribeAck', subscribeRequestId: r.subscribeRequestId(), bytes: r.bytes() };
        break;
      }
      case Body.CancelRequest:
        body = { type: 'cancel', targetRequestId: (e.body(new FbCancelRequest()) as FbCancelRequest).targetRequestId() };
        break;
      default:
        body = { type: 'unknown', bodyType: t };
    }
    out.push({ requestId, body });
  }
  return out;
}

/** Reply frames have no per-frame caps: one frame carries every reply of a server's turn. */
export function decodeReplies(buf: Uint8Array): Envelope<ReplyBody | UnknownBody>[] {
  const frame = frameOf(buf, null);
  const out: Envelope<ReplyBody | UnknownBody>[] = [];
  const n = frame.envelopesLength();
  for (let i = 0; i < n; i++) {
    const e = frame.envelopes(i)!;
    const requestId = e.requestId();
    const t = e.bodyType();
    let body: ReplyBody | UnknownBody;
    switch (t) {
      case Body.HelloReply: {
        const h = e.body(new FbHelloReply()) as FbHelloReply;
        body = { type: 'hello', protocolVersion: h.protocolVersion(), serverVersion: h.serverVersion() ?? '', readOnly: h.readOnly(), databaseId: h.databaseId() ?? '', getMany: h.getMany(), nodeId: h.nodeId() ?? '' };
        break;
      }
      case Body.GetReadVersionReply:
        body = { type: 'grv', readVersion: (e.body(new FbGetReadVersionReply()) as FbGetReadVersionReply).readVersion() };
        break;
      case Body.GetReply: {
        const g = e.body(new FbGetReply()) as FbGetReply;
        body = { type: 'get', value: g.present() ? (g.valueArray() ?? EMPTY).slice() : null };
        break;
      }
      case Body.GetManyReply: {
        const g = e.body(new FbGetManyReply()) as FbGetManyReply;
        const packed = g.valuesArray() ?? EMPTY;
        const n = g.valueLengthsLength();
        const values: (Uint8Array | null)[] = new Array(n);
        let errors: ({ code: string; message: string } | null)[] | null = null;
        let at = 0;
        let nextError = 0;
        for (let j = 0; j < n; j++) {
          const len = g.valueLengths(j)!;
          values[j] = null;
          if (len === -1) continue;
          if (len === -2) {
            const er = nextError < g.errorsLength() ? g.errors(nextError++) : null;
            errors ??= new Array<{ code: string; message: string } | null>(n).fill(null);
            errors[j] = { code: er?.code() ?? 'FAILED', message: er?.message() ?? 'no error in the reply for a failed read' };
            continue;
          }
          if (len < 0 || len > packed.length - at) throw new FrameError(`GetManyReply: value lengths do not match its ${packed.length} value bytes`);
          // each value its own copy, as GetReply's: a caller may keep one without the rest
          values[j] = packed.slice(at, at + len);
          at += len;
        }
        body = { type: 'getMany', values, errors };
        break;
      }
      case Body.GetRangeReply: {
        const g = e.body(new FbGetRangeReply()) as FbGetRangeReply;
        const kvs: Uint8Array[] = [];
        const kv = new FbKeyValue();
        for (let j = 0; j < g.kvsLength(); j++) {
          g.kvs(j, kv);
          kvs.push((kv.keyArray() ?? EMPTY).slice(), (kv.valueArray() ?? EMPTY).slice());
        }
        body = { type: 'range', kvs, hasMore: g.hasMore() };
        break;
      }
      case Body.CommitReply: {
        const c = e.body(new FbCommitReply()) as FbCommitReply;
        body = { type: 'commit', commitVersion: c.commitVersion(), versionstamp: (c.versionstampArray() ?? EMPTY).slice() };
        break;
      }
      case Body.ErrorReply: {
        const er = e.body(new FbErrorReply()) as FbErrorReply;
        body = { type: 'error', code: er.code() ?? 'FAILED', message: er.message() ?? '' };
        break;
      }
      case Body.WatchReply:
        body = { type: 'watch', version: (e.body(new FbWatchReply()) as FbWatchReply).version() };
        break;
      case Body.ChangeBatch: {
        const c = e.body(new FbChangeBatch()) as FbChangeBatch;
        const versions: VersionChangesMsg[] = [];
        for (let j = 0; j < c.versionsLength(); j++) {
          const v = c.versions(j)!;
          const mutations: MutationMsg[] = [];
          for (let k = 0; k < v.mutationsLength(); k++) {
            const m = v.mutations(k)!;
            mutations.push({ type: m.type(), key: (m.keyArray() ?? EMPTY).slice(), param: (m.paramArray() ?? EMPTY).slice(), offset: m.offset() });
          }
          versions.push({ version: v.version(), mutations });
        }
        body = { type: 'changes', versions, bytes: c.bytes() };
        break;
      }
      default:
        body = { type: 'unknown', bodyType: t };
    }
    out.push({ requestId, body });
  }
  return out;
}
