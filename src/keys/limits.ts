// Limits and system-keyspace rules of the spec (section "Semantics" 9), checked by the
// client at the call and again by the server at commit. Browser-safe.
import { TxnError } from '../errors.js';
import { describeArg, printable } from './bytes.js';

export const MAX_KEY_BYTES = 10_000;
export const MAX_VALUE_BYTES = 100_000;
export const MAX_TRANSACTION_BYTES = 10_000_000;
export const VERSIONSTAMP_BYTES = 10;

/**
 * A transaction's size, as FoundationDB counts it against MAX_TRANSACTION_BYTES
 * (ReadYourWritesTransaction's approximate size; NativeAPI's getSize): each mutation is
 * its key and parameter plus sizeof(MutationRef), 40 bytes, and each write- or
 * read-conflict range its bounds plus sizeof(KeyRangeRef), 32. The overheads bound a
 * transaction of many tiny mutations by what it costs to hold, not only by its payload
 * (1,000,000 one-byte clears were 1 MB; they are 108 MB).
 */
export const MUTATION_OVERHEAD_BYTES = 40;
export const RANGE_OVERHEAD_BYTES = 32;

/**
 * Bytes a mutation adds to its transaction's size: `key` and `param` are lengths (a
 * clearRange: begin and end); its write-conflict range is [begin, end) for a clearRange
 * (`range`), else [key, key + 0x00).
 */
export function mutationBytes(key: number, param: number, range = false): number {
  return key + param + MUTATION_OVERHEAD_BYTES + RANGE_OVERHEAD_BYTES + (range ? key + param : 2 * key + 1);
}

/** Bytes a read-conflict range [begin, end) adds to its transaction's size (lengths). */
export function readConflictBytes(begin: number, end: number): number {
  return begin + end + RANGE_OVERHEAD_BYTES;
}

/** `\xff/metadataVersion`: the only system key a client may write (through setVersionstampedValue). */
export const METADATA_VERSION_KEY = new Uint8Array([0xff, ...Array.from('/metadataVersion', (c) => c.charCodeAt(0))]);

export function checkKeySize(key: Uint8Array, what = 'key'): void {
  if (key.length > MAX_KEY_BYTES) throw new TxnError('KEY_TOO_LARGE', `${what} is ${key.length} bytes; limit ${MAX_KEY_BYTES}`);
}

export function checkValueSize(value: Uint8Array, what = 'value'): void {
  if (value.length > MAX_VALUE_BYTES) throw new TxnError('VALUE_TOO_LARGE', `${what} is ${value.length} bytes; limit ${MAX_VALUE_BYTES}`);
}

export function isSystemKey(key: Uint8Array): boolean {
  return key.length > 0 && key[0] === 0xff;
}

function isMetadataVersionKey(key: Uint8Array): boolean {
  if (key.length !== METADATA_VERSION_KEY.length) return false;
  for (let i = 0; i < key.length; i++) if (key[i] !== METADATA_VERSION_KEY[i]) return false;
  return true;
}

/** Refuses writes into the system keyspace (first byte 0xff). */
export function checkWritableKey(key: Uint8Array, viaVersionstampedValue = false): void {
  if (!isSystemKey(key)) return;
  if (viaVersionstampedValue && isMetadataVersionKey(key)) return;
  throw new TxnError(
    'INVALID_ARGUMENT',
    `key ${printable(key)} is in the system keyspace (first byte 0xff); only \\xff/metadataVersion may be written, through setVersionstampedValue`,
  );
}

/** A clearRange may not reach into the system keyspace: its end must be <= 0xff. */
export function checkWritableRange(begin: Uint8Array, end: Uint8Array): void {
  if (isSystemKey(begin) || (end.length > 1 && end[0] === 0xff)) {
    throw new TxnError('INVALID_ARGUMENT', `clearRange [${printable(begin)}, ${printable(end)}) reaches into the system keyspace (first byte 0xff)`);
  }
}

export function checkVersionstampOffset(offset: number, length: number, what: string): void {
  // not a whole number (the string '1', 1.5, undefined from a swapped argument): said so; it
  // was 'offset 1 does not fit a 10-byte stamp in a 12-byte key', which it does
  if (typeof offset !== 'number' || !Number.isInteger(offset)) {
    throw new TxnError('INVALID_ARGUMENT', `versionstamp offset must be a whole number (the byte position of the 10-byte stamp in the ${what}), got ${describeArg(offset)}`);
  }
  if (offset < 0 || offset + VERSIONSTAMP_BYTES > length) {
    throw new TxnError(
      'INVALID_ARGUMENT',
      `versionstamp offset ${offset} does not fit a ${VERSIONSTAMP_BYTES}-byte stamp in a ${length}-byte ${what}`,
    );
  }
}
