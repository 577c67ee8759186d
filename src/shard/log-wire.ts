// hot path: a shard's batch on its way to the log writer (shard/log-writer.ts), as ONE
// transferred ArrayBuffer. As an object ({ id, ops: { kinds, bytes: { data, lens } },
// sync, sentAt, direct }) with three transferred buffers, structured clone cost ~8-11 µs
// on each side per batch (measured on this machine: a 2-op batch posted 20,000 times,
// CPU of the sender and of the receiver), against ~2.5-4.5 for one buffer. Under w1 the
// shard -> log writer hop is on every commit's path before its fsync.
//
// Layout (native byte order; every section starts at a multiple of 8):
//   f64[HEAD]   id, sentAt, sync (0/1), direct count D, kinds count K, parts count P
//   f64[D]      the coordinator request ids the log writer answers itself (LogWrite.direct)
//   i32[P]      each part's length, padded to 8 bytes
//   u8[K]       op kinds (storage.ts OpKind), padded to 8 bytes
//   u8[...]     the parts' bytes, one after the other
import type { PackedOps, WriteOps } from './storage.js';

/** A shard's request to the log writer (decoded; on the wire it is one buffer). */
export interface LogWrite {
  id: number;
  ops: PackedOps;
  sync: boolean;
  /** Coordinator request ids this thread answers (ok) once the batch is written; absent: the shard answers. */
  direct?: number[];
  /** performance.timeOrigin + performance.now() when the shard sent it (the WAL latency is measured to the end of the write). */
  sentAt: number;
}

const HEAD = 6;

const pad8 = (n: number): number => (n + 7) & ~7;

/** The batch `ops` (a shard's WriteOps) with its header, in one buffer to transfer. */
export function encodeLogWrite(id: number, ops: WriteOps, sync: boolean, sentAt: number, direct?: readonly number[]): ArrayBuffer {
  const { kinds, lens: partLens } = ops;
  const data = ops.bytes;
  const d = direct?.length ?? 0;
  const lensAt = (HEAD + d) * 8;
  const kindsAt = lensAt + pad8(partLens.length * 4);
  const dataAt = kindsAt + pad8(kinds.length);
  const buf = new ArrayBuffer(dataAt + data.length);
  const head = new Float64Array(buf, 0, HEAD + d);
  head[0] = id;
  head[1] = sentAt;
  head[2] = sync ? 1 : 0;
  head[3] = d;
  head[4] = kinds.length;
  head[5] = partLens.length;
  for (let i = 0; i < d; i++) head[HEAD + i] = direct![i]!;
  const lens = new Int32Array(buf, lensAt, partLens.length);
  for (let i = 0; i < partLens.length; i++) lens[i] = partLens[i]!;
  const u8 = new Uint8Array(buf);
  for (let i = 0; i < kinds.length; i++) u8[kindsAt + i] = kinds[i]!;
  // the parts are one buffer already (WriteOps): one copy
  u8.set(data, dataAt);
  return buf;
}

/** The batch as the log writer takes it: views into `buf`, no copies. */
export function decodeLogWrite(buf: ArrayBuffer): LogWrite {
  const first = new Float64Array(buf, 0, HEAD);
  const d = first[3]!;
  const k = first[4]!;
  const p = first[5]!;
  const lensAt = (HEAD + d) * 8;
  const kindsAt = lensAt + pad8(p * 4);
  const dataAt = kindsAt + pad8(k);
  const req: LogWrite = {
    id: first[0]!,
    ops: { kinds: new Uint8Array(buf, kindsAt, k), bytes: { data: new Uint8Array(buf, dataAt), lens: new Int32Array(buf, lensAt, p) } },
    sync: first[2] === 1,
    sentAt: first[1]!,
  };
  if (d > 0) req.direct = Array.from(new Float64Array(buf, HEAD * 8, d));
  return req;
}
