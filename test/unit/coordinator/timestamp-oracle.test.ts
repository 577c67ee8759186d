import { describe, expect, it } from 'vitest';
import { TimestampOracle } from '../../../src/coordinator/timestamp-oracle.js';

describe('TimestampOracle', () => {
  it('commit versions strictly increase even when the clock stands still or goes back', () => {
    let now = 1000;
    const o = new TimestampOracle(5000, () => now);
    const a = o.assignCommitVersion();
    now = 10;
    const b = o.assignCommitVersion();
    expect(a).toBe(5001);
    expect(b).toBe(5002);
  });

  it('the read version stays below the oldest unfinished commit', () => {
    let now = 100;
    const o = new TimestampOracle(0, () => now);
    const v1 = o.assignCommitVersion(); // 100
    now = 200;
    const v2 = o.assignCommitVersion(); // 200
    o.finish(v2);
    expect(o.readVersion()).toBe(v1 - 1); // v1 still in flight
    o.finish(v1);
    now = 300;
    expect(o.committedVersion).toBe(v2);
    expect(o.readVersion()).toBe(300); // idle: moves up to the clock
    expect(o.assignCommitVersion()).toBe(301);
  });

  it('waitFor resolves when the version commits and fails past the last assigned one', async () => {
    const o = new TimestampOracle(0, () => 10);
    const v = o.assignCommitVersion();
    const waiting = o.waitFor(v, 1000);
    o.finish(v);
    expect(await waiting).toBe(true);
    expect(await o.waitFor(v + 100, 10)).toBe(false);
  });

  it('waiters wake in version order, each once its version is committed', async () => {
    let now = 10;
    const o = new TimestampOracle(0, () => now++);
    const [a, b, c] = [o.assignCommitVersion(), o.assignCommitVersion(), o.assignCommitVersion()];
    const woke: number[] = [];
    const waits = [c, a, b].map((v) => o.waitFor(v, Infinity).then(() => woke.push(v)));
    o.finish(b); // a still in flight: nobody wakes
    await Promise.resolve();
    expect(woke).toEqual([]);
    o.finish(a); // a and b committed
    await new Promise((r) => setTimeout(r, 0));
    expect(woke.sort()).toEqual([a, b].sort());
    o.finish(c);
    await Promise.all(waits);
    expect(woke).toHaveLength(3);
  });
});
