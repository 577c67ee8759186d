// shard/free-buffers.ts: large buffers freed at once (range pages and RocksDB rows under slow
// readers), small ones and shared memory left alone.
import { describe, expect, it } from 'vitest';
import { FREE_MIN_BYTES, freeBuffers } from '../../../src/shard/free-buffers.js';

describe('freeBuffers', () => {
  it('detaches and frees buffers of FREE_MIN_BYTES or more (each once, however many views), not smaller or shared ones', () => {
    const big = new Uint8Array(4 << 20).fill(1);
    const views = [big.subarray(0, 10), big.subarray(10, 20), new Uint8Array(big.buffer, 100, 5)];
    const small = new Uint8Array(FREE_MIN_BYTES - 1).fill(2);
    const shared = new Uint8Array(new SharedArrayBuffer(FREE_MIN_BYTES * 2)).fill(3);
    const held = process.memoryUsage().arrayBuffers;
    freeBuffers([...views, small, shared, big]);
    // the memory is gone now, not at a collection
    expect(held - process.memoryUsage().arrayBuffers).toBeGreaterThanOrEqual(4 << 20);
    expect(big.byteLength).toBe(0);
    expect(big.buffer.byteLength).toBe(0);
    for (const v of views) expect(v.byteLength).toBe(0);
    expect(small.byteLength).toBe(FREE_MIN_BYTES - 1);
    expect(small[0]).toBe(2);
    expect(shared[0]).toBe(3);
    freeBuffers([]);
    freeBuffers([big]); // already detached: nothing happens
  });
});
