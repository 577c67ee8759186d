// Keys and values are bytes compared as unsigned bytes (memcmp order). Browser-safe.
import { TxnError } from '../errors.js';

export type Bytes = Uint8Array | string;

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** What a bad argument was, for messages: its type, and the value when short. */
export function describeArg(x: unknown): string {
  if (x === null) return 'null';
  if (x === undefined) return 'undefined';
  if (typeof x === 'number' || typeof x === 'boolean') return `${typeof x} ${String(x)}`;
  if (typeof x === 'bigint') return `bigint ${x}n`;
  if (typeof x === 'string') return `string ${JSON.stringify(x.length > 40 ? x.slice(0, 40) + '...' : x)}`;
  if (Array.isArray(x)) return 'an array';
  if (ArrayBuffer.isView(x)) return `a ${x.constructor.name}`;
  return typeof x === 'object' ? `an object (${(x as object).constructor?.name ?? 'no prototype'})` : typeof x;
}

/**
 * A string is UTF-8 encoded; bytes are returned as they are (not copied). Anything
 * else fails INVALID_ARGUMENT naming `what` (the argument) and what it got.
 */
export function toBytes(b: Bytes, what = 'key'): Uint8Array {
  if (typeof b === 'string') return b.length === 0 ? EMPTY : encoder.encode(b);
  if (b instanceof Uint8Array) return b;
  throw new TxnError('INVALID_ARGUMENT', `${what} must be a string or Uint8Array, got ${describeArg(b)}`);
}

/** memcmp order; a proper prefix sorts first. */
export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** The smallest key greater than `k`: k + 0x00. */
export function keyAfter(k: Uint8Array): Uint8Array {
  const out = new Uint8Array(k.length + 1);
  out.set(k);
  return out;
}

/** The first key after every key that starts with `prefix` (3FS's prefixListEndKey); empty = no end. */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  let n = prefix.length;
  while (n > 0 && prefix[n - 1] === 0xff) n--;
  if (n === 0) return EMPTY;
  const out = prefix.slice(0, n);
  out[n - 1]!++;
  return out;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Printable form of a key for messages and the shell: ASCII as is, the rest as \xNN. */
export function printable(k: Uint8Array, max = 64): string {
  let s = '';
  const n = Math.min(k.length, max);
  for (let i = 0; i < n; i++) {
    const c = k[i]!;
    if (c >= 0x20 && c < 0x7f && c !== 0x5c) s += String.fromCharCode(c);
    else s += '\\x' + c.toString(16).padStart(2, '0');
  }
  return k.length > max ? `${s}... (${k.length} bytes)` : s;
}

/**
 * Latin-1 string of the bytes: one UTF-16 unit per byte, so JavaScript string
 * comparison equals memcmp order. The server uses these as Map keys and for
 * ordering in hot paths; they never leave the process.
 */
export function keyString(k: Uint8Array): string {
  // String.fromCharCode.apply on large keys would blow the stack; chunk it.
  if (k.length <= 4096) return String.fromCharCode.apply(null, k as unknown as number[]);
  let s = '';
  for (let i = 0; i < k.length; i += 4096) s += String.fromCharCode.apply(null, k.subarray(i, i + 4096) as unknown as number[]);
  return s;
}

export function keyFromString(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
