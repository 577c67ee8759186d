import { describe, expect, it } from 'vitest';
import { TxnError } from '../../../src/errors.js';
import { toBytes } from '../../../src/keys/bytes.js';
import { planCommit, validateCommit, versionstampOf, writesOf, WireMutationType, type CommitInput } from '../../../src/coordinator/commit-plan.js';
import { ShardMap } from '../../../src/coordinator/shard-map.js';

const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');
const map = new ShardMap(1, [toBytes('m')]);
const input = (mutations: CommitInput['mutations'], reads: [string, string][] = []): CommitInput => ({
  readVersion: 1,
  readConflicts: reads.map(([b, e]) => ({ begin: toBytes(b), end: toBytes(e) })),
  mutations,
});

describe('versionstamps', () => {
  it('are 8 bytes of commit version big-endian + 2 zero bytes', () => {
    expect(hex(versionstampOf(0x0001020304050607))).toBe('00010203040506070000');
  });

  it('replace the 10 bytes at the offset of a key or value, and the key is routed after substitution', () => {
    const stamp = versionstampOf(0x1122334455);
    const tmpl = new Uint8Array([0x61, ...new Array(10).fill(0), 0x7a]); // 'a' + 10 placeholder + 'z'
    const plans = planCommit(
      input([
        { type: WireMutationType.SetVersionstampedKey, key: tmpl, param: toBytes('v'), offset: 1 },
        { type: WireMutationType.SetVersionstampedValue, key: toBytes('x'), param: new Uint8Array(12), offset: 2 },
      ]),
      map,
      stamp,
    );
    expect(plans.map((p) => p.shardId)).toEqual([0, 1]);
    expect(hex(plans[0]!.mutations[0]!.key)).toBe('61' + hex(stamp) + '7a');
    expect(hex(plans[1]!.mutations[0]!.param)).toBe('0000' + hex(stamp));
    expect(hex(tmpl)).toBe('61' + '00'.repeat(10) + '7a'); // the template is not modified
  });
});

describe('planCommit', () => {
  it('splits clearRanges at shard boundaries; reads make no plan (the resolver checks them)', () => {
    const plans = planCommit(
      input([{ type: WireMutationType.ClearRange, key: toBytes('a'), param: toBytes('z'), offset: 0 }], [['k', 'n']]),
      map,
      versionstampOf(1),
    );
    expect(plans.map((p) => [p.shardId, p.mutations.map((m) => [Buffer.from(m.key).toString(), Buffer.from(m.param).toString()])])).toEqual([
      [0, [['a', 'm']]],
      [1, [['m', 'z']]],
    ]);
    const readOnly = planCommit(input([{ type: WireMutationType.Set, key: toBytes('a'), param: toBytes('v'), offset: 0 }], [['n', 'z']]), map, versionstampOf(1));
    expect(readOnly.map((p) => p.shardId)).toEqual([0]);
  });

  it('writesOf: final keys (versionstamps substituted, atomic operations included) and cleared ranges, as the resolver records them', () => {
    const stamp = versionstampOf(0x0102030405);
    const plans = planCommit(
      input([
        { type: WireMutationType.SetVersionstampedKey, key: new Uint8Array([0x61, ...new Array<number>(10).fill(0)]), param: toBytes('v'), offset: 1 },
        { type: 5, key: toBytes('ctr'), param: new Uint8Array([1]), offset: 0 },
        { type: WireMutationType.Clear, key: toBytes('x'), param: new Uint8Array(0), offset: 0 },
        { type: WireMutationType.ClearRange, key: toBytes('a'), param: toBytes('z'), offset: 0 },
      ]),
      map,
      stamp,
    );
    const w = writesOf(plans);
    expect(w.keys.map((k) => (typeof k === 'string' ? Buffer.from(k, 'latin1') : Buffer.from(k)).toString('hex')).sort()).toEqual(['61' + hex(stamp), Buffer.from('ctr').toString('hex'), Buffer.from('x').toString('hex')].sort());
    expect(w.ranges).toEqual([
      ['a', 'm'],
      ['m', 'z'],
    ]);
  });
});

describe('validateCommit', () => {
  const bad = (m: CommitInput['mutations'][number], code: string): void => {
    let err: unknown;
    try {
      validateCommit(input([m]));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TxnError);
    expect((err as TxnError).code).toBe(code);
  };
  it('enforces the limits and the system keyspace', () => {
    bad({ type: WireMutationType.Set, key: new Uint8Array(10_001), param: new Uint8Array(0), offset: 0 }, 'KEY_TOO_LARGE');
    bad({ type: WireMutationType.Set, key: toBytes('k'), param: new Uint8Array(100_001), offset: 0 }, 'VALUE_TOO_LARGE');
    bad({ type: WireMutationType.Set, key: new Uint8Array([0xff, 1]), param: new Uint8Array(0), offset: 0 }, 'INVALID_ARGUMENT');
    bad({ type: WireMutationType.SetVersionstampedKey, key: new Uint8Array(9), param: new Uint8Array(0), offset: 0 }, 'INVALID_ARGUMENT');
    bad({ type: WireMutationType.SetVersionstampedValue, key: toBytes('k'), param: new Uint8Array(12), offset: 3 }, 'INVALID_ARGUMENT');
    bad({ type: 15 as WireMutationType, key: toBytes('k'), param: new Uint8Array(0), offset: 0 }, 'INVALID_ARGUMENT');
    // atomic operations (5..14): the same key, operand and system-keyspace rules as a set
    bad({ type: 5, key: new Uint8Array([0xff, 1]), param: new Uint8Array(8), offset: 0 }, 'INVALID_ARGUMENT');
    bad({ type: 13, key: toBytes('k'), param: new Uint8Array(100_001), offset: 0 }, 'VALUE_TOO_LARGE');
    bad({ type: 14, key: new Uint8Array(10_001), param: new Uint8Array(1), offset: 0 }, 'KEY_TOO_LARGE');
    validateCommit(input([{ type: 9, key: toBytes('k'), param: new Uint8Array(8), offset: 0 }]));
    bad({ type: WireMutationType.ClearRange, key: toBytes('b'), param: toBytes('a'), offset: 0 }, 'INVALID_ARGUMENT');
    // \xff/metadataVersion through a versionstamped value is the one allowed system write
    validateCommit(input([{ type: WireMutationType.SetVersionstampedValue, key: new Uint8Array([0xff, ...toBytes('/metadataVersion')]), param: new Uint8Array(10), offset: 0 }]));
  });

  it('counts the transaction size', () => {
    const big = Array.from({ length: 101 }, (_, i) => ({ type: WireMutationType.Set, key: toBytes(`k${i}`), param: new Uint8Array(100_000), offset: 0 }));
    expect(() => validateCommit(input(big))).toThrow(/limit 10000000/);
  });

  it('counts each mutation and conflict range with FoundationDB\'s overheads, not only its bytes', () => {
    // a one-byte clear: 1 + 40 (MutationRef) + 32 (KeyRangeRef) + 3 (its conflict range [k, k + 0x00)) = 76 bytes
    const clears = (n: number): CommitInput['mutations'] => Array.from({ length: n }, () => ({ type: WireMutationType.Clear, key: toBytes('k'), param: new Uint8Array(0), offset: 0 }));
    validateCommit(input(clears(131_578))); // 9,999,928 bytes
    expect(() => validateCommit(input(clears(131_579)))).toThrow(/transaction is 10000004 bytes; limit 10000000/);
    // a clearRange [a, bb): 3 + 40, and its conflict range 3 + 32; a read-conflict range [a, b): 2 + 32
    const ranges: CommitInput['mutations'] = Array.from({ length: 131_578 }, () => ({ type: WireMutationType.ClearRange, key: toBytes('a'), param: toBytes('bb'), offset: 0 }));
    expect(() => validateCommit(input(ranges))).toThrow(/transaction is 10263084 bytes/);
    const reads = Array.from({ length: 294_118 }, (): [string, string] => ['a', 'b']);
    expect(() => validateCommit(input([], reads))).toThrow(/transaction is 10000012 bytes/);
    validateCommit(input([], reads.slice(1)));
  });
});
