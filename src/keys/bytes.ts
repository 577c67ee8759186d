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
 * Whether a string is well-formed UTF-16 (no lone surrogate: half of a pair, e.g. from
 * slicing an emoji in two, which has no UTF-8 form). String.prototype.isWellFormed where the
 * engine has it (Node 20, current browsers), else a u-flag regex, in which a pair is one code point.
 */
const wellFormed: (s: string) => boolean =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function'
    ? (s) => (s as string & { isWellFormed(): boolean }).isWellFormed()
    : (s) => !/\p{Surrogate}/u.test(s);

/** Index of the first lone surrogate of `s` (for the message). */
function loneSurrogateAt(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++;
    else if ((c & 0xf800) === 0xd800) return i;
  }
  return -1;
}

/**
 * A string is UTF-8 encoded; bytes are copied. Anything
 * else fails INVALID_ARGUMENT naming `what` (the argument) and what it got. The copy is
 * FoundationDB's (its client copies keys and values into the transaction at the call): the
 * bytes were kept by reference, so a caller that reused one buffer for several set() calls
 * committed the last contents under every key, a key changed after set() was written under
 * the new bytes while read-your-writes still answered the old one, and a read-conflict range
 * changed after get() guarded the wrong key (a missed conflict). A string
 * with a lone surrogate fails too: TextEncoder writes U+FFFD for it, so 'a\uD800' and
 * 'a\uDC00' were one key (the second read the first's value) and such a value came back
 * changed.
 */
export function toBytes(b: Bytes, what = 'key'): Uint8Array {
  if (typeof b === 'string') {
    if (b.length === 0) return EMPTY;
    if (!wellFormed(b)) {
      const at = loneSurrogateAt(b);
      throw new TxnError(
        'INVALID_ARGUMENT',
        `${what} ${describeArg(b)} is not valid Unicode: it has a lone surrogate (UTF-16 code unit 0x${b.charCodeAt(at).toString(16)} at index ${at}), which has no UTF-8 form; pass bytes (a Uint8Array) for binary data`,
      );
    }
    return encoder.encode(b);
  }
  // TypedArray#slice copies (a memcpy; new Uint8Array(view) was 6x slower on 100 KB here);
  // called from Uint8Array.prototype because Buffer#slice is a view, not a copy
  if (b instanceof Uint8Array) return b.length === 0 ? EMPTY : Uint8Array.prototype.slice.call(b);
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
