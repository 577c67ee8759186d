// Bounds checks for untrusted FlatBuffers frames. The JavaScript FlatBuffers runtime
// has no verifier and reads whatever offsets a frame claims: a forged vector length
// can make a decoder loop for billions of elements or read past the buffer. This
// walks every table, vector and string of schemas/txkv.fbs and checks that each lies
// inside the frame before anything is decoded. Browser-safe.

import { MAX_TRANSACTION_BYTES, MUTATION_OVERHEAD_BYTES, RANGE_OVERHEAD_BYTES } from '../keys/limits.js';

type Field =
  | 'u8'
  | 'bool'
  | 'u32'
  | 'i32'
  | 'i64'
  | 'bytes'
  /** A vector of 4-byte scalars (uint, int). */
  | 'words'
  | 'string'
  | { vecOf: string }
  | { union: string; typeField: number };

/** Field kinds by field id (vtable slot), per table of the schema. */
const TABLES: Record<string, Field[]> = {
  KeyRange: ['bytes', 'bytes'],
  Mutation: ['u8', 'bytes', 'bytes', 'i32'],
  KeyValue: ['bytes', 'bytes'],
  HelloRequest: ['u32', 'string', 'string'],
  HelloReply: ['u32', 'string', 'bool', 'string', 'bool', 'string'],
  GetReadVersionRequest: [],
  GetReadVersionReply: ['i64'],
  GetRequest: ['i64', 'bytes'],
  GetReply: ['bool', 'bytes'],
  GetRangeRequest: ['i64', 'bytes', 'bool', 'bytes', 'bool', 'i32', 'bool'],
  GetRangeReply: [{ vecOf: 'KeyValue' }, 'bool'],
  CommitRequest: ['i64', { vecOf: 'KeyRange' }, { vecOf: 'Mutation' }],
  CommitReply: ['i64', 'bytes'],
  ErrorReply: ['string', 'string'],
  WatchRequest: ['bytes', 'bool', 'bytes'],
  WatchReply: ['i64'],
  SubscribeRequest: ['bytes', 'bytes', 'i64', 'u32'],
  VersionChanges: ['i64', { vecOf: 'Mutation' }],
  ChangeBatch: [{ vecOf: 'VersionChanges' }, 'u32'],
  SubscribeAckRequest: ['u32', 'u32'],
  CancelRequest: ['u32'],
  GetManyRequest: ['i64', 'bytes', 'words'],
  GetManyReply: ['bytes', 'words', { vecOf: 'ErrorReply' }],
  Envelope: ['u32', 'u8', { union: 'Body', typeField: 1 }],
  Frame: [{ vecOf: 'Envelope' }],
};

/** Union member tables by type value (index); 0 is NONE. */
const UNIONS: Record<string, (string | null)[]> = {
  Body: [
    null,
    'HelloRequest',
    'HelloReply',
    'GetReadVersionRequest',
    'GetReadVersionReply',
    'GetRequest',
    'GetReply',
    'GetRangeRequest',
    'GetRangeReply',
    'CommitRequest',
    'CommitReply',
    'ErrorReply',
    'WatchRequest',
    'WatchReply',
    'SubscribeRequest',
    'ChangeBatch',
    'SubscribeAckRequest',
    'CancelRequest',
    'GetManyRequest',
    'GetManyReply',
  ],
};

const SCALAR_SIZE = { u8: 1, bool: 1, u32: 4, i32: 4, i64: 8 } as const;
const MAX_DEPTH = 8;
const MAX_TABLES = 1_000_000;

export class FrameError extends Error {}

/**
 * A well-formed request frame past a per-frame limit (MAX_FRAME_ENVELOPES,
 * MAX_GET_MANY_KEYS): found while verifying, before anything is decoded into objects.
 * The gateway answers it PROTOCOL_ERROR under request id 0 and closes the connection
 * (1009), as FoundationDB's transport drops a connection whose packet passes
 * PACKET_LIMIT: its requests are never answered one by one, so the connection cannot go on.
 */
export class FrameLimitError extends FrameError {}

/** What a PROTOCOL_ERROR under request id 0 says of a frame decodeRequests threw on (both gateway modes). */
export function frameRefusalMessage(err: unknown): string {
  return err instanceof FrameError ? err.message : `undecodable frame: ${(err as Error).message}`;
}

/**
 * The fewest bytes a CommitRequest of `mutations` mutations and `ranges` read-conflict ranges
 * counts against MAX_TRANSACTION_BYTES (keys/limits.ts: each mutation at least its 40 + 32
 * bytes of overhead, each range 32), whatever its keys and values: past the limit, the
 * commit fails TRANSACTION_TOO_LARGE before its mutations need to be walked or decoded.
 */
export function commitBytesAtLeast(mutations: number, ranges: number): number {
  return mutations * (MUTATION_OVERHEAD_BYTES + RANGE_OVERHEAD_BYTES) + ranges * RANGE_OVERHEAD_BYTES;
}

/** Per-frame limits of request frames (docs/protocol.md "Limits"); replies have none. */
export interface FrameCaps {
  /** Envelopes in one frame. */
  envelopes: number;
  /** Keys of all GetManyRequests of one frame together. */
  getManyKeys: number;
}

/**
 * What a check is about, for its message ("CommitRequest field 2[7] length"): built only when
 * a check fails, so verifying a well-formed frame allocates nothing per field (the eager
 * strings were a tenth of the main thread's allocation under w10).
 */
function describe(name: string, id: number, index: number, suffix: string): string {
  return `${name}${id < 0 ? '' : ` field ${id}`}${index < 0 ? '' : `[${index}]`}${suffix}`;
}

class Verifier {
  private tables = 0;
  private readonly dv: DataView;
  /** The element count of the vector the last vector() call checked (its start is returned). */
  private vectorLength = 0;
  /** Keys of the GetManyRequests verified so far (against caps.getManyKeys). */
  private getManyKeys = 0;
  constructor(
    private readonly b: Uint8Array,
    private readonly caps: FrameCaps | null,
  ) {
    this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  private fail(what: string): never {
    throw new FrameError(what);
  }

  /** The u32 at pos; name/id/index/suffix say what it is (describe()). */
  private u32(pos: number, name: string, id: number, index: number, suffix: string): number {
    if (pos < 0 || pos + 4 > this.b.length || pos % 4 !== 0) this.fail(`${describe(name, id, index, suffix)}: offset ${pos} outside the ${this.b.length}-byte frame or unaligned`);
    return this.dv.getUint32(pos, true);
  }

  /** Follows the uoffset stored at pos; returns the target position. */
  private follow(pos: number, name: string, id: number, index: number): number {
    const target = pos + this.u32(pos, name, id, index, '');
    if (target >= this.b.length) this.fail(`${describe(name, id, index, '')}: points past the end of the frame`);
    return target;
  }

  /** Checks the vector whose uoffset is at pos; returns its first element's position (its length in vectorLength). */
  private vector(pos: number, elemSize: number, name: string, id: number): number {
    const v = this.follow(pos, name, id, -1);
    const length = this.u32(v, name, id, -1, ' length');
    const start = v + 4;
    if (length * elemSize > this.b.length - start) this.fail(`${describe(name, id, -1, '')}: ${length} elements of ${elemSize} bytes do not fit in the frame`);
    this.vectorLength = length;
    return start;
  }

  /** CommitRequest at `pos`: whether its read conflicts (field 1) and mutations (field 2) alone pass MAX_TRANSACTION_BYTES. */
  private commitTooLarge(pos: number, vt: number, slots: number, tableSize: number): boolean {
    const length = (id: number): number => {
      const off = id < slots ? this.dv.getUint16(vt + 4 + id * 2, true) : 0;
      if (off === 0) return 0;
      if (off + 4 > tableSize) this.fail(`${describe('CommitRequest', id, -1, '')}: offset outside its table`);
      this.vector(pos + off, 4, 'CommitRequest', id);
      return this.vectorLength;
    };
    return commitBytesAtLeast(length(2), length(1)) > MAX_TRANSACTION_BYTES;
  }

  table(pos: number, name: string, depth: number): void {
    if (depth > MAX_DEPTH) this.fail(`${name}: nested too deeply`);
    if (++this.tables > MAX_TABLES) this.fail('too many tables in one frame');
    const fields = TABLES[name]!;
    if (pos < 0 || pos + 4 > this.b.length || pos % 4 !== 0) this.fail(`${name}: table at ${pos} outside the frame or unaligned`);
    const vt = pos - this.dv.getInt32(pos, true);
    if (vt < 0 || vt + 4 > this.b.length || vt % 2 !== 0) this.fail(`${name}: vtable outside the frame`);
    const vtSize = this.dv.getUint16(vt, true);
    const tableSize = this.dv.getUint16(vt + 2, true);
    if (vtSize < 4 || vtSize % 2 !== 0 || vt + vtSize > this.b.length) this.fail(`${name}: bad vtable size ${vtSize}`);
    if (tableSize < 4 || pos + tableSize > this.b.length) this.fail(`${name}: bad table size ${tableSize}`);
    const slots = (vtSize - 4) / 2;
    // a request frame's commit whose counts alone pass the transaction size limit: its
    // vectors are checked, not their tables (decodeRequests answers it TRANSACTION_TOO_LARGE
    // without reading them; 590,000 empty mutations took ~1.4 s to verify and decode)
    const skipTables = this.caps !== null && name === 'CommitRequest' && this.commitTooLarge(pos, vt, slots, tableSize);
    for (let id = 0; id < fields.length && id < slots; id++) {
      const off = this.dv.getUint16(vt + 4 + id * 2, true);
      if (off === 0) continue;
      const f = fields[id]!;
      const fpos = pos + off;
      if (typeof f === 'string' && f in SCALAR_SIZE) {
        if (off + SCALAR_SIZE[f as keyof typeof SCALAR_SIZE] > tableSize) this.fail(`${describe(name, id, -1, '')}: scalar outside its table`);
        continue;
      }
      if (off + 4 > tableSize) this.fail(`${describe(name, id, -1, '')}: offset outside its table`);
      if (f === 'bytes') this.vector(fpos, 1, name, id);
      else if (f === 'words') {
        this.vector(fpos, 4, name, id);
        // GetManyRequest.key_lengths: one key each, counted before any is decoded
        if (this.caps !== null && name === 'GetManyRequest' && (this.getManyKeys += this.vectorLength) > this.caps.getManyKeys) {
          throw new FrameLimitError(
            `the GetManyRequests of this frame hold at least ${this.getManyKeys} keys; limit ${this.caps.getManyKeys} per frame (MAX_GET_MANY_KEYS): split them over several requests and frames`,
          );
        }
      }
      else if (f === 'string') {
        const start = this.vector(fpos, 1, name, id);
        const length = this.vectorLength;
        if (start + length >= this.b.length || this.b[start + length] !== 0) this.fail(`${describe(name, id, -1, '')}: string not NUL-terminated inside the frame`);
      } else if (typeof f === 'object' && 'vecOf' in f) {
        const start = this.vector(fpos, 4, name, id);
        const length = this.vectorLength;
        if (skipTables) continue;
        // checked before the envelopes are walked: 450,000 of them cost ~1 s of the main thread to decode and answer
        if (this.caps !== null && name === 'Frame' && length > this.caps.envelopes) {
          throw new FrameLimitError(`frame holds ${length} requests; limit ${this.caps.envelopes} per frame (MAX_FRAME_ENVELOPES): split them over several frames`);
        }
        for (let i = 0; i < length; i++) this.table(this.follow(start + i * 4, name, id, i), f.vecOf, depth + 1);
      } else if (typeof f === 'object' && 'union' in f) {
        const toff = this.dv.getUint16(vt + 4 + f.typeField * 2, true);
        const type = toff === 0 ? 0 : this.b[pos + toff]!;
        const member = UNIONS[f.union]![type];
        // an unknown member is left for the dispatcher to refuse (PROTOCOL_ERROR for that envelope)
        if (member) this.table(this.follow(fpos, name, id, -1), member, depth + 1);
      }
    }
  }
}

/**
 * Throws FrameError (with a message saying what is wrong) unless `b` is a well-formed Frame;
 * FrameLimitError when it is one but passes `caps` (request frames; null = no caps).
 */
export function verifyFrame(b: Uint8Array, caps: FrameCaps | null = null): void {
  if (b.length < 12) throw new FrameError(`frame of ${b.length} bytes is too short to be a FlatBuffers Frame`);
  if (b[4] !== 0x54 || b[5] !== 0x58 || b[6] !== 0x4b || b[7] !== 0x56) throw new FrameError('frame lacks the TXKV file identifier');
  const v = new Verifier(b, caps);
  const root = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, true);
  v.table(root, 'Frame', 0);
}
