// Keys and values of the benchmark keyspaces. Pure: no I/O.
// Values carry a checksum over (key, payload), so any read can be verified: a value
// that is truncated, corrupted or stored under another key fails checkValue().

import type { Rng } from './rng.js';

export const KEY_BYTES = 16;
export const MIN_VALUE_BYTES = 8;
export const MAX_VALUE_BYTES = 100;

const KEY_PREFIX = 0x6b; // 'k'
const KEY_DIGITS = KEY_BYTES - 1;

/** The i-th key of the flat keyspace: 'k' + 15 decimal digits, so byte order = numeric order. */
export function kvKey(i: number): Uint8Array {
  const out = new Uint8Array(KEY_BYTES);
  out[0] = KEY_PREFIX;
  let x = i;
  for (let p = KEY_BYTES - 1; p >= 1; p--) {
    out[p] = 0x30 + (x % 10);
    x = Math.floor(x / 10);
  }
  return out;
}

/**
 * Split points for txkv that give each of `shards` shards an equal part of the flat
 * keyspace (kvKey(0..rows-1)). Its keys share a long prefix ('k' + leading zeros), which
 * no default can split; without these every bench key landed on one shard. Strings
 * (the keys are ASCII), as startServer's splitPoints takes them.
 */
export function benchSplitPoints(rows: number, shards: number): string[] {
  const out: string[] = [];
  for (let i = 1; i < shards; i++) out.push(Buffer.from(kvKey(Math.floor((rows * i) / shards))).toString('latin1'));
  return out;
}

/** Inverse of kvKey, or -1 when `key` is not a flat-keyspace key. */
export function kvIndex(key: Uint8Array): number {
  if (key.length !== KEY_BYTES || key[0] !== KEY_PREFIX) return -1;
  let x = 0;
  for (let p = 1; p <= KEY_DIGITS; p++) {
    const d = (key[p] ?? 0) - 0x30;
    if (d < 0 || d > 9) return -1;
    x = x * 10 + d;
  }
  return x;
}

/** FNV-1a over key then body[from..]. */
function checksum(key: Uint8Array, body: Uint8Array, from: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ (key[i] as number), 0x01000193);
  for (let i = from; i < body.length; i++) h = Math.imul(h ^ (body[i] as number), 0x01000193);
  return h >>> 0;
}

function writeU32(out: Uint8Array, at: number, x: number): void {
  out[at] = x & 0xff;
  out[at + 1] = (x >>> 8) & 0xff;
  out[at + 2] = (x >>> 16) & 0xff;
  out[at + 3] = x >>> 24;
}

function readU32(b: Uint8Array, at: number): number {
  return ((b[at] as number) | ((b[at + 1] as number) << 8) | ((b[at + 2] as number) << 16) | ((b[at + 3] as number) << 24)) >>> 0;
}

/** A random value of 8-100 bytes for `key`: 4-byte checksum + random payload. */
export function makeValue(rng: Rng, key: Uint8Array): Uint8Array {
  const len = rng.range(MIN_VALUE_BYTES, MAX_VALUE_BYTES);
  const out = rng.fill(new Uint8Array(len), 4);
  writeU32(out, 0, checksum(key, out, 4));
  return out;
}

/** A value for `key` whose payload after the checksum is `payload` (used by the meta workload). */
export function sealValue(key: Uint8Array, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  out.set(payload, 4);
  writeU32(out, 0, checksum(key, out, 4));
  return out;
}

/** The payload of a value made by makeValue/sealValue (no copy). */
export function payloadOf(value: Uint8Array): Uint8Array {
  return value.subarray(4);
}

/** True when `value` is one that makeValue/sealValue produced for `key`. */
export function checkValue(key: Uint8Array, value: Uint8Array): boolean {
  return value.length >= 4 && readU32(value, 0) === checksum(key, value, 4);
}

/** Bytewise (memcmp) comparison, the order of every system benchmarked. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** The first key after every key that starts with `prefix` (prefix + 1 at the last non-0xff byte). */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i] !== 0xff) {
      const out = new Uint8Array(prefix.subarray(0, i + 1)); // a copy even when prefix is a Buffer
      out[i] = (out[i] as number) + 1;
      return out;
    }
  }
  return new Uint8Array([0xff]);
}

// keyAfter and concatBytes are the server's own (src/keys/bytes.ts)
export { keyAfter, concatBytes } from '../src/keys/bytes.js';

export function bytesToHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
