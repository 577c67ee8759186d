// The change log kept for feeds holds each commit's values for the MVCC window only:
// a pruned entry must not keep its values until the array is next compacted (issue
// 17 item 1: the server grew ~1.5 MiB per MiB committed with 100 KB values).
import { describe, expect, it } from 'vitest';
import { ShardLive, type CommitWrites } from '../../../src/shard/live.js';
import { keyString, toBytes } from '../../../src/keys/bytes.js';

describe('ShardLive change log', () => {
  it('pruned entries release their values at once', () => {
    const live = new (ShardLive as unknown as new () => ShardLive)();
    const value = new Uint8Array(100_000);
    for (let v = 1; v <= 500; v++) {
      const key = toBytes(`k${v % 7}`);
      const writes: CommitWrites = {
        writeCount: 1,
        writeValue: () => value,
        writeKeyData: () => key,
        writeKeyAt: () => 0,
        writeKeyLength: () => key.length,
        writeKeyString: () => keyString(key),
        writeKeyInRange: (_i, b, e) => keyString(key) >= b && keyString(key) < e,
        get: (s: string) => (s === keyString(key) ? value : null),
      };
      live.commit(v, [], writes);
      // one or two commits per batch here (the shard seals at the end of each batch, beginApply)
      if (v % 5 !== 0) live.seal();
    }
    live.prune(490);
    // the log packs each batch's changes into one buffer, kept while any of its commits is
    const log = (live as unknown as { logBatch: (Uint8Array | null)[] }).logBatch;
    const buffers = new Set(log.filter((b) => b !== null));
    const held = [...buffers].reduce((n, b) => n + b.byteLength, 0);
    // only the 10 commits above the horizon keep their values (491 shares a batch with 490):
    // 11 changes of a 2-byte key and a 100,000-byte value, each with its 9 bytes of lengths and kind,
    // and one 4-byte count per batch buffer
    expect(held).toBe(11 * (100_000 + 2 + 9) + 4 * buffers.size);
    expect(live.history(0, toBytes('k'), toBytes('l')).length).toBe(10);
  });
});
