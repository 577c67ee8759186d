// Pure parts of a commit: validation of what a client sent, versionstamp
// substitution, and the split of writes over the shards (reads stay with the resolver,
// resolver.ts: no shard checks them).
import { TxnError } from '../errors.js';
import { compareKeys, keyString } from '../keys/bytes.js';
import {
  MAX_KEY_BYTES,
  MAX_TRANSACTION_BYTES,
  mutationBytes,
  readConflictBytes,
  VERSIONSTAMP_BYTES,
  checkKeySize,
  checkValueSize,
  checkVersionstampOffset,
  checkWritableKey,
  checkWritableRange,
} from '../keys/limits.js';
import type { KeyRange } from '../keys/ranges.js';
import { MutationKind, writeVersion, type ShardMutation } from '../shard/interface.js';
import { isAtomicType } from '../keys/atomic.js';
import type { ShardMap } from './shard-map.js';
import type { CommitWrites } from './resolver.js';

/** Mutation types of the wire (schemas/txkv.fbs MutationType). */
export const enum WireMutationType {
  Set = 0,
  Clear = 1,
  ClearRange = 2,
  SetVersionstampedKey = 3,
  SetVersionstampedValue = 4,
}

export interface WireMutation {
  /** A WireMutationType, or an atomic operation (5..14, keys/atomic.ts). */
  type: WireMutationType | number;
  key: Uint8Array;
  param: Uint8Array;
  offset: number;
}

export interface CommitInput {
  readVersion: number;
  readConflicts: KeyRange[];
  mutations: WireMutation[];
}

export interface ShardPlan {
  shardId: number;
  mutations: ShardMutation[];
}

/** Checks every limit and keyspace rule of the spec; throws the matching TxnError. */
export function validateCommit(input: CommitInput): void {
  let bytes = 0;
  for (const m of input.mutations) {
    switch (m.type) {
      case WireMutationType.Set:
        checkKeySize(m.key);
        checkValueSize(m.param);
        checkWritableKey(m.key);
        break;
      case WireMutationType.Clear:
        checkKeySize(m.key);
        checkWritableKey(m.key);
        break;
      case WireMutationType.ClearRange:
        checkKeySize(m.key, 'clearRange begin');
        checkKeySize(m.param, 'clearRange end');
        if (compareKeys(m.key, m.param) > 0) throw new TxnError('INVALID_ARGUMENT', 'clearRange begin is after its end');
        checkWritableRange(m.key, m.param);
        break;
      case WireMutationType.SetVersionstampedKey:
        checkKeySize(m.key);
        checkValueSize(m.param);
        checkVersionstampOffset(m.offset, m.key.length, 'key');
        checkWritableKey(m.key);
        break;
      case WireMutationType.SetVersionstampedValue:
        checkKeySize(m.key);
        checkValueSize(m.param);
        checkVersionstampOffset(m.offset, m.param.length, 'value');
        checkWritableKey(m.key, true);
        break;
      default:
        if (!isAtomicType(m.type)) throw new TxnError('INVALID_ARGUMENT', `unknown mutation type ${m.type as number}`);
        checkKeySize(m.key);
        checkValueSize(m.param);
        checkWritableKey(m.key);
    }
    bytes += mutationBytes(m.key.length, m.param.length, m.type === WireMutationType.ClearRange);
  }
  for (const r of input.readConflicts) {
    // a read of a legal 10,000-byte key k conflicts on [k, k + 0x00): one byte more is legal here
    checkConflictKeySize(r.begin, 'read conflict begin');
    checkConflictKeySize(r.end, 'read conflict end');
    if (compareKeys(r.begin, r.end) > 0) throw new TxnError('INVALID_ARGUMENT', 'a read conflict range begins after its end (inverted range)');
    bytes += readConflictBytes(r.begin.length, r.end.length);
  }
  if (bytes > MAX_TRANSACTION_BYTES) {
    throw new TxnError('TRANSACTION_TOO_LARGE', `transaction is ${bytes} bytes; limit ${MAX_TRANSACTION_BYTES}`);
  }
}

function checkConflictKeySize(k: Uint8Array, what: string): void {
  if (k.length > MAX_KEY_BYTES + 1) throw new TxnError('KEY_TOO_LARGE', `${what} is ${k.length} bytes; limit ${MAX_KEY_BYTES + 1} (a ${MAX_KEY_BYTES}-byte key + 0x00)`);
}

/** 8 bytes commit version (big-endian) + 2 bytes order within the version (always 0: one transaction per version). */
export function versionstampOf(commitVersion: number): Uint8Array {
  const s = new Uint8Array(VERSIONSTAMP_BYTES);
  writeVersion(s, 0, commitVersion);
  return s;
}

function stamped(template: Uint8Array, offset: number, stamp: Uint8Array): Uint8Array {
  const out = template.slice();
  out.set(stamp, offset);
  return out;
}

/**
 * Final mutations (stamps substituted) per shard, in shard order; only shards with writes.
 * Hot path (every commit, main thread): no map, closure or spread per commit; a commit
 * writes few shards, so a plan is found by a scan of those (the last one first).
 */
export function planCommit(input: CommitInput, map: ShardMap, stamp: Uint8Array): ShardPlan[] {
  const plans: ShardPlan[] = [];
  let last: ShardPlan | null = null;
  const add = (shardId: number, m: ShardMutation): void => {
    if (last === null || last.shardId !== shardId) last = planOf(plans, shardId);
    last.mutations.push(m);
  };
  for (const m of input.mutations) {
    switch (m.type) {
      case WireMutationType.Set:
        add(map.shardOfKey(m.key), { kind: MutationKind.Set, key: m.key, param: m.param });
        break;
      case WireMutationType.Clear:
        add(map.shardOfKey(m.key), { kind: MutationKind.Clear, key: m.key, param: EMPTY });
        break;
      case WireMutationType.ClearRange:
        for (const part of map.split({ begin: m.key, end: m.param })) {
          add(part.shardId, { kind: MutationKind.ClearRange, key: part.begin, param: part.end });
        }
        break;
      case WireMutationType.SetVersionstampedKey: {
        const key = stamped(m.key, m.offset, stamp);
        add(map.shardOfKey(key), { kind: MutationKind.Set, key, param: m.param });
        break;
      }
      case WireMutationType.SetVersionstampedValue:
        add(map.shardOfKey(m.key), { kind: MutationKind.Set, key: m.key, param: stamped(m.param, m.offset, stamp) });
        break;
      default:
        // atomic operations (validated above) keep their type: the shard applies them
        add(map.shardOfKey(m.key), { kind: m.type, key: m.key, param: m.param });
    }
  }
  if (plans.length > 1) plans.sort(byShard);
  return plans;
}

function planOf(plans: ShardPlan[], shardId: number): ShardPlan {
  for (let i = 0; i < plans.length; i++) if (plans[i]!.shardId === shardId) return plans[i]!;
  const p: ShardPlan = { shardId, mutations: [] };
  plans.push(p);
  return p;
}

const byShard = (a: ShardPlan, b: ShardPlan): number => a.shardId - b.shardId;

const NO_RANGES: readonly (readonly [string, string])[] = Object.freeze([]);

/** A commit's final writes as the resolver records them (resolver.ts): point-written keys, cleared ranges. */
export function writesOf(plans: readonly ShardPlan[]): CommitWrites {
  let points = 0;
  let clears = 0;
  for (const p of plans) for (const m of p.mutations) if (m.kind === MutationKind.ClearRange) clears++;
  for (const p of plans) points += p.mutations.length;
  points -= clears;
  // sized up front: no array growth per commit
  const keys: Uint8Array[] = new Array<Uint8Array>(points);
  const ranges: [string, string][] | readonly (readonly [string, string])[] = clears === 0 ? NO_RANGES : new Array<[string, string]>(clears);
  let k = 0;
  let r = 0;
  for (const p of plans) {
    for (const m of p.mutations) {
      // atomic operations are writes (the shard computes their value), never reads
      if (m.kind === MutationKind.ClearRange) (ranges as [string, string][])[r++] = [keyString(m.key), keyString(m.param)];
      else keys[k++] = m.key;
    }
  }
  return { keys, ranges };
}

const EMPTY = new Uint8Array(0);
