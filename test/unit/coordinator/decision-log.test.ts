import { describe, expect, it } from 'vitest';
import { decodeDecision, decisionKey, encodeDecision } from '../../../src/coordinator/decision-log.js';
import { MutationKind } from '../../../src/shard/interface.js';

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
