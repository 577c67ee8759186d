// Atomic operations: the value a key gets when an atomic mutation is applied to the
// value it has (null = absent). Pure and browser-safe: the shard applies them at the
// commit version, recovery replays them, and the SDK's read-your-writes applies them
// to the value a transaction read, so all three agree by construction.
//
// Semantics are FoundationDB's (fdbclient/Atomic.h, API version >= 510), written from
// its documentation and behaviour:
// - add, bitOr, bitXor, max: an absent or empty existing value yields the parameter.
//   The parameter's length wins: the existing value is cut or zero-padded to it.
//   An empty parameter yields an empty value.
// - bitAnd, min, byteMin, byteMax: an absent value yields the parameter (an *empty*
//   present value is an operand like any other).
// - add/max/min read the bytes as little-endian unsigned integers; add's carry out of
//   the last byte is dropped (wrap-around, so two's complement subtraction works).
// - byteMax/byteMin compare bytes as memcmp does (a prefix is smaller).
// - appendIfFits: existing + parameter, unless that passes the value limit
//   (100,000 bytes), in which case the existing value stays.
// - compareAndClear: the key is cleared when its value equals the parameter (an absent
//   key stays absent); otherwise nothing changes.

import { MAX_VALUE_BYTES } from './limits.js';

export const ATOMIC_OPS = [
  'add',
  'bitAnd',
  'bitOr',
  'bitXor',
  'max',
  'min',
  'byteMax',
  'byteMin',
  'appendIfFits',
  'compareAndClear',
] as const;

export type AtomicOp = (typeof ATOMIC_OPS)[number];

/** Wire MutationType of the first atomic operation (schemas/txkv.fbs: Add = 5 ... CompareAndClear = 14). */
export const FIRST_ATOMIC_TYPE = 5;
export const LAST_ATOMIC_TYPE = FIRST_ATOMIC_TYPE + ATOMIC_OPS.length - 1;

export function isAtomicType(type: number): boolean {
  return type >= FIRST_ATOMIC_TYPE && type <= LAST_ATOMIC_TYPE;
}

/** Wire type of an op name; undefined for a name that is not an atomic operation. */
export function atomicTypeOf(op: string): number | undefined {
  const i = (ATOMIC_OPS as readonly string[]).indexOf(op);
  return i < 0 ? undefined : FIRST_ATOMIC_TYPE + i;
}

export function atomicOpName(type: number): AtomicOp {
  return ATOMIC_OPS[type - FIRST_ATOMIC_TYPE]!;
}

/** `existing` cut or zero-padded to n bytes. */
function fit(existing: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n);
  out.set(existing.length > n ? existing.subarray(0, n) : existing);
  return out;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0;
}

/**
 * Little-endian unsigned comparison of `existing` taken at param's length (zero-padded
 * or cut) with `param`: < 0 when the fitted existing value is smaller.
 */
function compareLittleEndian(existing: Uint8Array, param: Uint8Array): number {
  for (let i = param.length - 1; i >= 0; i--) {
    const e = i < existing.length ? existing[i]! : 0;
    if (e !== param[i]!) return e - param[i]!;
  }
  return 0;
}

/**
 * The value after applying `type` (wire MutationType 5..14) with `param` to `existing`
 * (null = the key is absent). Returns null when the key ends up absent (compareAndClear).
 */
export function applyAtomic(type: number, existing: Uint8Array | null, param: Uint8Array): Uint8Array | null {
  switch (atomicOpName(type)) {
    case 'add': {
      if (!existing || existing.length === 0 || param.length === 0) return param;
      const out = new Uint8Array(param.length);
      let carry = 0;
      for (let i = 0; i < param.length; i++) {
        const sum = (i < existing.length ? existing[i]! : 0) + param[i]! + carry;
        out[i] = sum & 0xff;
        carry = sum >> 8;
      }
      return out;
    }
    case 'bitAnd': {
      if (!existing) return param;
      const out = fit(existing, param.length);
      for (let i = 0; i < param.length; i++) out[i]! &= param[i]!;
      return out;
    }
    case 'bitOr':
    case 'bitXor': {
      if (!existing || existing.length === 0 || param.length === 0) return param;
      const out = fit(existing, param.length);
      const xor = atomicOpName(type) === 'bitXor';
      for (let i = 0; i < param.length; i++) out[i] = xor ? out[i]! ^ param[i]! : out[i]! | param[i]!;
      return out;
    }
    case 'max': {
      if (!existing || existing.length === 0 || param.length === 0) return param;
      return compareLittleEndian(existing, param) > 0 ? fit(existing, param.length) : param;
    }
    case 'min': {
      if (!existing || param.length === 0) return param;
      return compareLittleEndian(existing, param) < 0 ? fit(existing, param.length) : param;
    }
    case 'byteMax':
      if (!existing) return param;
      return compareBytes(existing, param) > 0 ? existing : param;
    case 'byteMin':
      if (!existing) return param;
      return compareBytes(existing, param) < 0 ? existing : param;
    case 'appendIfFits': {
      if (!existing || existing.length === 0) return param;
      if (param.length === 0) return existing;
      if (existing.length + param.length > MAX_VALUE_BYTES) return existing;
      const out = new Uint8Array(existing.length + param.length);
      out.set(existing);
      out.set(param, existing.length);
      return out;
    }
    case 'compareAndClear':
      if (!existing || equalBytes(existing, param)) return null;
      return existing;
    default:
      throw new Error(`mutation type ${type} is not an atomic operation`);
  }
}
