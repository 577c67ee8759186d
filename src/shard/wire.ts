// hot path: the coordinator <-> shard message codec (main thread and shard workers).
// A turn's requests to a shard (and a turn's replies from it) travel as ONE ArrayBuffer,
// transferred, not cloned: structured clone costs per object and per property (measured
// on this machine: ~2 µs per flat request object and ~4-6 µs per commit request with its
// typed arrays, per hop, against ~0 for bytes in a transferred buffer), which made
// postMessage the main thread's largest cost under w10, r10 and m90 (bench/profile.ts).
// The hot messages (gets, commit, prepare, decide; ok and gets replies) are encoded
// here; every other message rides along as a structured-clone object in `o`, its
// place in the order kept by a tag. Decoded requests have the shapes of interface.ts;
// byte fields are views into the received buffer, except those a shard keeps beyond
// the turn (mutations, decision records), which are copied out so that a queued or
// recorded commit does not pin its whole batch.
import type { MessagePort } from 'node:worker_threads';
import type { DecideRequest, GetsRequest, PackedBytes, PackedMutations, ShardReply, ShardRequest } from './interface.js';

/** A batch on the wire: the encoded messages, and the ones sent as objects in their order. */
export interface PackedBatch {
  b: ArrayBuffer;
  o: unknown[];
}

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
}

class Writer {
  buf = new ArrayBuffer(1024);
  u8 = new Uint8Array(this.buf);
  dv = new DataView(this.buf);
  off = 0;

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
    new Int32Array(this.buf, this.off, n).set(p.lens);
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
    const lens = new Int32Array(this.buf, this.off, n);
    this.off += n * 4;
    for (let i = 0; i < n; i++) {
      const b = items[i];
      if (!b) {
        lens[i] = -1;
        continue;
      }
      lens[i] = b.length;
      this.u8.set(b, this.off);
      this.off += b.length;
    }
  }

  mutations(m: PackedMutations): void {
    const n = m.kinds.length;
    this.u32(n);
    this.ensure(n);
    this.u8.set(m.kinds, this.off);
    this.off += n;
    this.packed(m.bytes);
  }

  done(objects: unknown[]): PackedBatch {
    // the buffer is transferred: hand over exactly the bytes written
    const b = this.off === this.buf.byteLength ? this.buf : this.buf.slice(0, this.off);
    return { b, o: objects };
  }
}

class Reader {
  readonly u8: Uint8Array;
  readonly dv: DataView;
  off = 0;
  constructor(readonly buf: ArrayBuffer) {
    this.u8 = new Uint8Array(buf);
    this.dv = new DataView(buf);
  }
  get more(): boolean {
    return this.off < this.buf.byteLength;
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
  mutations(copy: boolean): PackedMutations {
    const n = this.u32();
    const kinds = this.u8.slice(this.off, this.off + n);
    this.off += n;
    return { kinds, bytes: this.packed(copy) };
  }
}

/**
 * The requests one thread sends one shard worker: everything queued in an event-loop turn
 * leaves as one message with one transferred buffer (waking a thread costs more than the
 * copy, bench/results/profiles-2026-11-29.md). After `close()` nothing more is sent.
 */
export class RequestOutbox {
  private queued: ShardRequest[] = [];
  private scheduled = false;
  private closed = false;

  constructor(private readonly port: MessagePort) {}

  push(req: ShardRequest): void {
    this.queued.push(req);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Sends what is queued now (also called by the turn's scheduled flush). */
  readonly flush = (): void => {
    this.scheduled = false;
    const batch = this.queued;
    this.queued = [];
    if (batch.length > 0 && !this.closed) {
      const packed = encodeRequests(batch);
      this.port.postMessage(packed, [packed.b]);
    }
  };

  close(): void {
    this.closed = true;
  }
}

/** Encodes a turn's requests to one shard (the buffer is to be transferred). */
export function encodeRequests(reqs: readonly ShardRequest[]): PackedBatch {
  const w = new Writer();
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
      default:
        w.u8v(Tag.Object);
        objects.push(r);
    }
  }
  return w.done(objects);
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
        // kept in the shard's queue (and by feeds) past this turn: bytes of their own
        const mutations = r.mutations(true);
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
    }
  }
  return w.done(objects);
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
