// Issue 12 fault 6: every key of the benchmarks landed on one shard, so the shard sweep
// measured nothing about sharding. The bench now gives txkv split points for its keyspace.
import { describe, expect, it } from 'vitest';
import { benchSplitPoints, kvKey } from '../../bench/data.js';
import { ShardMap, defaultSplitPoints } from '../../src/coordinator/shard-map.js';
import { parseEscapedBytes } from '../../src/config/server-config.js';

describe("the bench's keys", () => {
  it.each([2, 4, 8])('land on every one of %i shards, evenly', (shards) => {
    const rows = 100_000;
    const map = new ShardMap(1, benchSplitPoints(rows, shards).map(parseEscapedBytes));
    const counts = new Array<number>(shards).fill(0);
    for (let i = 0; i < rows; i += 7) counts[map.shardOfKey(kvKey(i))]!++;
    const total = counts.reduce((a, b) => a + b, 0);
    for (const c of counts) expect(c / total).toBeGreaterThan(0.9 / shards);
  });

  it('share one shard under the default split points (why the bench passes its own)', () => {
    const map = new ShardMap(1, defaultSplitPoints(4));
    const shards = new Set<number>();
    for (let i = 0; i < 100_000; i += 101) shards.add(map.shardOfKey(kvKey(i)));
    expect(shards.size).toBe(1);
  });
});
