import { describe, expect, it } from 'vitest';
import { decodeDecision, decisionKey, encodeDecision } from '../../../src/coordinator/decision-log.js';
import { MutationKind, decodeVersion, encodeVersion, writeVersion } from '../../../src/shard/interface.js';

describe('decision records', () => {
  it('round-trip and sort by version', () => {
    const d = {
      commitVersion: 1_795_000_000_000_123,
      parts: [
        { shardId: 2, mutations: [{ kind: MutationKind.Set, key: new Uint8Array([1, 2]), param: new Uint8Array([3]) }] },
        { shardId: 3, mutations: [{ kind: MutationKind.ClearRange, key: new Uint8Array([5]), param: new Uint8Array([6]) }, { kind: MutationKind.Clear, key: new Uint8Array([7]), param: new Uint8Array(0) }] },
      ],
    };
    expect(decodeDecision(encodeDecision(d))).toEqual(d);
    expect(Buffer.compare(decisionKey(5), decisionKey(300))).toBeLessThan(0);
  });
  it('refuse truncated records', () => {
    const b = encodeDecision({ commitVersion: 1, parts: [{ shardId: 0, mutations: [{ kind: MutationKind.Set, key: new Uint8Array(4), param: new Uint8Array(4) }] }] });
    expect(() => decodeDecision(b.subarray(0, b.length - 2))).toThrow(/truncated/);
  });
});

describe('versions as bytes', () => {
  it('writes 8 big-endian bytes that read back, at every magnitude up to 2^53 - 1', () => {
    const values = [0, 1, 255, 256, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_0001, 1_795_000_000_000_123, Number.MAX_SAFE_INTEGER];
    for (const v of values) {
      const b = encodeVersion(v);
      expect(decodeVersion(b)).toBe(v);
      expect(Buffer.from(b).toString('hex')).toBe(BigInt(v).toString(16).padStart(16, '0'));
      const at = new Uint8Array(12).fill(7);
      writeVersion(at, 3, v);
      expect([...at.subarray(0, 3), ...at.subarray(11)]).toEqual([7, 7, 7, 7]);
      expect(decodeVersion(at.subarray(3, 11))).toBe(v);
    }
    expect(decodeDecision(encodeDecision({ commitVersion: Number.MAX_SAFE_INTEGER, parts: [] })).commitVersion).toBe(Number.MAX_SAFE_INTEGER);
    expect(Buffer.from(decisionKey(0x1_0000_0000)).subarray(-8).toString('hex')).toBe('0000000100000000');
  });
});
