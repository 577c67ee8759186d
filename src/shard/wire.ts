// hot path: the coordinator <-> shard message codec (main thread and shard workers).
// A turn's requests to a shard (and a turn's replies from it) travel as ONE ArrayBuffer,
// transferred, not cloned: structured clone costs per object and per property (measured
// on this machine: ~2 µs per flat request object and ~4-6 µs per commit request with its
// typed arrays, per hop, against ~0 for bytes in a transferred buffer), which made
// postMessage the main thread's largest cost under w10, r10 and m90 (bench/profile.ts).
// The hot messages (gets, commit, prepare, decide; ok and gets replies) are encoded
// here; every other message rides along as a structured-clone object in `o`, its
// place in the order kept by a tag. Decoded requests have the shapes of interface.ts;
// byte fields are views into the received buffer. A commit's mutations stay views too
// while it waits in the shard's queue (it then holds its batch's buffer, a few KB, until
// applied: ms): a copy per commit and its objects outlived young-generation scavenges
// (shard.ts Queued.packed). Decision records, kept until applied as well but rare, are
// copied.
import type { MessagePort } from 'node:worker_threads';
import type { DecideRequest, GetsRequest, PackedBytes, PackedMutations, ShardMutation, ShardReply, ShardRequest } from './interface.js';

/**
 * A request as a sender hands it to encodeRequests: a commit's or prepare's mutations may
 * be the list itself, written straight into the batch's buffer (the coordinator packed
 * every commit's mutations into buffers of their own first, then copied those into the
 * batch: two copies and ~10 objects per part on the main thread). A shard always
 * receives PackedMutations.
 */
export type OutgoingRequest = ShardRequest extends infer R ? (R extends { mutations: PackedMutations } ? Omit<R, 'mutations'> & { mutations: PackedMutations | readonly ShardMutation[] } : R) : never;

/** A batch on the wire: the encoded messages, and the ones sent as objects in their order. */
export interface PackedBatch {
  b: ArrayBuffer;
  o: unknown[];
  /** Buffers of `o` to transfer with `b` (not cloned); absent: none. */
  t?: ArrayBuffer[];
}

/** A range page's bytes from this size on are transferred with its batch, not cloned. */
export const TRANSFER_MIN_BYTES = 64 * 1024;

/** What crosses a shard's port: a packed batch, or (older senders, tests) an array of plain messages. */
export type ShardMessage<T> = PackedBatch | T[];

const enum Tag {
  Object = 0,
  Gets = 1,
  Commit = 2,
  Prepare = 3,
  Decide = 4,
  Ok = 5,
  Values = 6,
  Forget = 7,
}

/**
 * A batch's buffer begins with the length of what was written (u32): the buffer handed
 * over may be longer (sized by an estimate, never cut to length: that was a copy of every
 * batch).
 */
const HEADER = 4;

class Writer {
  buf: ArrayBuffer;
  u8: Uint8Array;
  dv: DataView;
  /** Native-order view for lengths (written at 4-byte aligned offsets). */
  i32: Int32Array;
  off = HEADER;

  constructor(size = 1024) {
    this.buf = new ArrayBuffer(Math.max(64, (size + 7) & ~7));
    this.u8 = new Uint8Array(this.buf);
    this.dv = new DataView(this.buf);
    this.i32 = new Int32Array(this.buf, 0, this.buf.byteLength >> 2);
  }

  ensure(n: number): void {
    if (this.off + n <= this.buf.byteLength) return;
    let size = this.buf.byteLength * 2;
    while (size < this.off + n) size *= 2;
    const next = new ArrayBuffer(size);
    const u8 = new Uint8Array(next);
    u8.set(this.u8.subarray(0, this.off));
    this.buf = next;
    this.u8 = u8;
    this.dv = new DataView(next);
    this.i32 = new Int32Array(next, 0, size >> 2);
  }

  u8v(v: number): void {
    this.ensure(1);
    this.u8[this.off++] = v;
  }

  f64(v: number): void {
    this.ensure(8);
    this.dv.setFloat64(this.off, v, true);
    this.off += 8;
  }

  u32(v: number): void {
    this.ensure(4);
    this.dv.setUint32(this.off, v, true);
    this.off += 4;
  }

  /** Pads to a multiple of 4 so an Int32Array can view what follows. */
  align4(): void {
    const pad = (4 - (this.off & 3)) & 3;
    this.ensure(pad);
    this.off += pad;
  }

  /** PackedBytes: count, lengths (native order: both ends are this process), bytes. */
  packed(p: PackedBytes): void {
    const n = p.lens.length;
    this.u32(n);
    this.u32(p.data.length);
    this.align4();
    this.ensure(n * 4 + p.data.length);
    this.i32.set(p.lens, this.off >> 2);
    this.off += n * 4;
    this.u8.set(p.data, this.off);
    this.off += p.data.length;
  }

  /** An unpacked list of byte strings, written as PackedBytes (null = -1). */
  list(items: readonly (Uint8Array | null)[]): void {
    let size = 0;
    for (const b of items) if (b) size += b.length;
    const n = items.length;
    this.u32(n);
    this.u32(size);
    this.align4();
    this.ensure(n * 4 + size);
    const lens = this.i32;
    const at = this.off >> 2;
    this.off += n * 4;
    for (let i = 0; i < n; i++) {
      const b = items[i];
      if (!b) {
        lens[at + i] = -1;
        continue;
      }
      lens[at + i] = b.length;
      this.u8.set(b, this.off);
      this.off += b.length;
    }
  }

  mutations(m: PackedMutations | readonly ShardMutation[]): void {
    if (isList(m)) {
      this.mutationList(m);
      return;
    }
    const n = m.kinds.length;
    this.u32(n);
    this.ensure(n);
    this.u8.set(m.kinds, this.off);
    this.off += n;
    this.packed(m.bytes);
  }

  /** A mutation list written as PackedMutations (kinds; then key, param of each as PackedBytes). */
  mutationList(ms: readonly ShardMutation[]): void {
    const n = ms.length;
    let size = 0;
    for (let i = 0; i < n; i++) size += ms[i]!.key.length + ms[i]!.param.length;
    this.u32(n);
    this.ensure(n);
    for (let i = 0; i < n; i++) this.u8[this.off++] = ms[i]!.kind;
    this.u32(2 * n);
    this.u32(size);
    this.align4();
    this.ensure(2 * n * 4 + size);
    const lens = this.i32;
    const at = this.off >> 2;
    const u8 = this.u8;
    let o = this.off + 2 * n * 4;
    for (let i = 0; i < n; i++) {
      const { key, param } = ms[i]!;
      lens[at + 2 * i] = key.length;
      u8.set(key, o);
      o += key.length;
      lens[at + 2 * i + 1] = param.length;
      u8.set(param, o);
      o += param.length;
    }
    this.off = o;
  }

  done(objects: unknown[]): PackedBatch {
    // the buffer is transferred whole; the reader stops at the length written here
    this.dv.setUint32(0, this.off, true);
    return { b: this.buf, o: objects };
  }
}

function isList(m: PackedMutations | readonly ShardMutation[]): m is readonly ShardMutation[] {
  return Array.isArray(m);
}

class Reader {
  readonly u8: Uint8Array;
  readonly dv: DataView;
  off = HEADER;
  /** End of what was written (Writer.done). */
  readonly end: number;
  constructor(readonly buf: ArrayBuffer) {
    this.u8 = new Uint8Array(buf);
    this.dv = new DataView(buf);
    this.end = this.dv.getUint32(0, true);
  }
  get more(): boolean {
    return this.off < this.end;
  }
  u8v(): number {
    return this.u8[this.off++]!;
  }
  f64(): number {
    const v = this.dv.getFloat64(this.off, true);
    this.off += 8;
    return v;
  }
  u32(): number {
    const v = this.dv.getUint32(this.off, true);
    this.off += 4;
    return v;
  }
  /** PackedBytes viewing the buffer; `copy`: data and lengths of its own. */
  packed(copy: boolean): PackedBytes {
    const n = this.u32();
    const size = this.u32();
    this.off += (4 - (this.off & 3)) & 3;
    let lens = new Int32Array(this.buf, this.off, n);
    this.off += n * 4;
    let data = new Uint8Array(this.buf, this.off, size);
    this.off += size;
    if (copy) {
      lens = lens.slice();
      data = data.slice();
    }
    return { data, lens };
  }
  /** PackedMutations viewing the buffer (`copy`: bytes of its own). */
  mutations(copy: boolean): PackedMutations {
    const n = this.u32();
    const kinds = copy ? this.u8.slice(this.off, this.off + n) : this.u8.subarray(this.off, this.off + n);
    this.off += n;
    return { kinds, bytes: this.packed(copy) };
  }
}

/**
 * How long decision keys to forget may wait for another request to the same shard to ride
 * with (RequestOutbox.forget), ms.
 */
export const FORGET_DELAY_MS = 10;

/**
 * The requests one thread sends one shard worker: everything queued in an event-loop turn
 * leaves as one message with one transferred buffer (waking a thread costs more than the
 * copy, bench/results/profiles-2026-11-29.md). After `close()` nothing more is sent.
 */
export class RequestOutbox {
  private queued: OutgoingRequest[] = [];
  private scheduled = false;
  private closed = false;
  /** Decision keys to forget, not yet sent (forget()). */
  private forgets: Uint8Array[] = [];
  private forgetTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly port: MessagePort) {}

  push(req: OutgoingRequest): void {
    this.queued.push(req);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /**
   * Asks the shard to delete a decision record whose parts are all applied. Nothing waits
   * on it (until then the record only costs its row; recovery skips records of applied
   * commits), so it rides with the next message this shard gets anyway, or leaves on its
   * own after FORGET_DELAY_MS. Under w10 on 2 shards nearly every commit is cross-shard,
   * and its forget, sent in the turn its last part was applied, was a message (a
   * structured-cloned object) to the primary of its own in about one turn out of three.
   */
  forget(key: Uint8Array): void {
    this.forgets.push(key);
    if (this.forgetTimer === null) {
      this.forgetTimer = setTimeout(this.flushForgets, FORGET_DELAY_MS);
      this.forgetTimer.unref?.();
    }
  }

  private readonly flushForgets = (): void => {
    this.forgetTimer = null;
    if (this.forgets.length > 0) this.push({ t: 'forget', id: 0, keys: [] });
  };

  /** Sends what is queued now (also called by the turn's scheduled flush), with any decision keys to forget. */
  readonly flush = (): void => {
    this.scheduled = false;
    const batch = this.queued;
    this.queued = [];
    if (batch.length > 0 && !this.closed) {
      if (this.forgets.length > 0) {
        const last = batch[batch.length - 1]!;
        // the timer's placeholder (keys: []) takes them, else they ride at the end
        if (last.t === 'forget' && last.keys.length === 0) last.keys = this.forgets;
        else batch.push({ t: 'forget', id: 0, keys: this.forgets });
        this.forgets = [];
        if (this.forgetTimer !== null) {
          clearTimeout(this.forgetTimer);
          this.forgetTimer = null;
        }
      }
      const packed = encodeRequests(batch);
      this.port.postMessage(packed, [packed.b]);
    }
  };

  /** Sends what is queued, decision keys to forget included (a shutdown, a gateway thread's read version). */
  flushAll(): void {
    if (this.forgets.length > 0 && this.queued.length === 0) this.queued.push({ t: 'forget', id: 0, keys: [] });
    this.flush();
  }

  close(): void {
    this.closed = true;
    if (this.forgetTimer !== null) clearTimeout(this.forgetTimer);
    this.forgetTimer = null;
  }
}

/** Encodes a turn's requests to one shard (the buffer is to be transferred). */
export function encodeRequests(reqs: readonly OutgoingRequest[]): PackedBatch {
  const w = new Writer(requestsSize(reqs));
  const objects: unknown[] = [];
  for (const r of reqs) {
    switch (r.t) {
      case 'gets':
        w.u8v(Tag.Gets);
        w.f64(r.id);
        w.f64(r.maxBytes ?? -1);
        w.u32(r.readVersions.length);
        for (const v of r.readVersions) w.f64(v);
        w.packed(r.keys);
        break;
      case 'commit':
      case 'prepare':
        w.u8v(r.t === 'commit' ? Tag.Commit : Tag.Prepare);
        w.f64(r.id);
        w.f64(r.commitVersion);
        w.u8v(r.t === 'commit' && r.sync ? 1 : 0);
        w.mutations(r.mutations);
        break;
      case 'decide':
        w.u8v(Tag.Decide);
        w.f64(r.id);
        w.f64(r.commitVersion);
        w.u8v((r.commit ? 1 : 0) | (r.sync ? 2 : 0) | (r.decision ? 4 : 0));
        if (r.decision) w.list([r.decision.key, r.decision.value]);
        break;
      case 'forget':
        w.u8v(Tag.Forget);
        w.list(r.keys);
        break;
      default:
        w.u8v(Tag.Object);
        objects.push(r);
    }
  }
  return w.done(objects);
}

/** About the bytes encodeRequests writes for `reqs` (the buffer grows if it is short). */
function requestsSize(reqs: readonly OutgoingRequest[]): number {
  let n = HEADER;
  for (const r of reqs) {
    switch (r.t) {
      case 'gets':
        n += 40 + 8 * r.readVersions.length + 4 * r.keys.lens.length + r.keys.data.length;
        break;
      case 'commit':
      case 'prepare': {
        const m = r.mutations;
        if (isList(m)) {
          n += 40 + 9 * m.length;
          for (let i = 0; i < m.length; i++) n += m[i]!.key.length + m[i]!.param.length;
        } else n += 40 + m.kinds.length + 4 * m.bytes.lens.length + m.bytes.data.length;
        break;
      }
      case 'decide':
        n += 40 + (r.decision ? r.decision.key.length + r.decision.value.length : 0);
        break;
      case 'forget':
        n += 16;
        for (const k of r.keys) n += 4 + k.length;
        break;
      default:
        n += 1;
    }
  }
  return n;
}

/** Decodes what a shard's port received into requests of interface.ts's shapes. */
export function decodeRequests(m: ShardMessage<ShardRequest>): ShardRequest[] {
  if (Array.isArray(m)) return m;
  const r = new Reader(m.b);
  const out: ShardRequest[] = [];
  let next = 0;
  while (r.more) {
    const tag = r.u8v() as Tag;
    switch (tag) {
      case Tag.Gets: {
        const id = r.f64();
        const maxBytes = r.f64();
        const n = r.u32();
        const readVersions: number[] = new Array(n);
        for (let i = 0; i < n; i++) readVersions[i] = r.f64();
        const req: GetsRequest = { t: 'gets', id, readVersions, keys: r.packed(false) };
        if (maxBytes >= 0) req.maxBytes = maxBytes;
        out.push(req);
        break;
      }
      case Tag.Commit:
      case Tag.Prepare: {
        const id = r.f64();
        const commitVersion = r.f64();
        const sync = r.u8v() === 1;
        // views: the shard unpacks and copies what it keeps (window, cache, change log) when it applies them
        const mutations = r.mutations(false);
        out.push(tag === Tag.Commit ? { t: 'commit', id, commitVersion, mutations, sync } : { t: 'prepare', id, commitVersion, mutations });
        break;
      }
      case Tag.Decide: {
        const id = r.f64();
        const commitVersion = r.f64();
        const flags = r.u8v();
        const req: DecideRequest = { t: 'decide', id, commitVersion, commit: (flags & 1) !== 0, sync: (flags & 2) !== 0 };
        if (flags & 4) {
          const p = r.packed(true);
          req.decision = { key: p.data.subarray(0, p.lens[0]!), value: p.data.subarray(p.lens[0]!) };
        }
        out.push(req);
        break;
      }
      case Tag.Forget: {
        // copied: the shard keeps the keys until its next batch
        const p = r.packed(true);
        const keys: Uint8Array[] = new Array(p.lens.length);
        for (let i = 0, o = 0; i < keys.length; i++) {
          keys[i] = p.data.subarray(o, o + p.lens[i]!);
          o += p.lens[i]!;
        }
        out.push({ t: 'forget', id: 0, keys });
        break;
      }
      case Tag.Object:
        out.push(m.o[next++] as ShardRequest);
        break;
      default:
        throw new Error(`shard wire: unknown request tag ${tag as number}`);
    }
  }
  return out;
}

/** Encodes a turn's replies of a shard (the buffer is to be transferred). */
export function encodeReplies(replies: readonly ShardReply[]): PackedBatch {
  const w = new Writer();
  const objects: unknown[] = [];
  let transfer: ArrayBuffer[] | undefined;
  for (const r of replies) {
    if ('ok' in r && r.busy === undefined) {
      w.u8v(Tag.Ok);
      w.f64(r.id);
    } else if ('values' in r && r.errors === null) {
      w.u8v(Tag.Values);
      w.f64(r.id);
      w.packed(r.values);
    } else {
      w.u8v(Tag.Object);
      objects.push(r);
      // A range page (up to 1 MB, a buffer of its own: packBytes) moves to the main thread
      // instead of being cloned: a clone copied it twice (into the message, then into a
      // new buffer there) and left the page itself to this thread's collector, which
      // under slow readers held 55-100 MB of dead pages.
      const data = 'kvs' in r ? r.kvs.data : null;
      if (data && data.byteLength >= TRANSFER_MIN_BYTES && data.byteOffset === 0 && data.buffer.byteLength === data.byteLength) (transfer ??= []).push(data.buffer as ArrayBuffer);
    }
  }
  const batch = w.done(objects);
  if (transfer) batch.t = transfer;
  return batch;
}

/** Decodes a shard's replies (values are views into the received buffer). */
export function decodeReplies(m: ShardMessage<ShardReply>): ShardReply[] {
  if (Array.isArray(m)) return m;
  const r = new Reader(m.b);
  const out: ShardReply[] = [];
  let next = 0;
  while (r.more) {
    const tag = r.u8v() as Tag;
    switch (tag) {
      case Tag.Ok:
        out.push({ id: r.f64(), ok: true });
        break;
      case Tag.Values: {
        const id = r.f64();
        out.push({ id, values: r.packed(false), errors: null });
        break;
      }
      case Tag.Object:
        out.push(m.o[next++] as ShardReply);
        break;
      default:
        throw new Error(`shard wire: unknown reply tag ${tag as number}`);
    }
  }
  return out;
}
