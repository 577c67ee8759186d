import { describe, expect, it } from 'vitest';
import { TimestampOracle, versionClock } from '../../../src/coordinator/timestamp-oracle.js';

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
    expect(o.finishedVersion).toBe(v2);
    expect(o.readVersion()).toBe(300); // idle: moves up to the clock
    expect(o.assignCommitVersion()).toBe(301);
  });

  it('finished in any order, through compactions: the finished version is just below the oldest unfinished; unknown and repeated finishes change nothing', () => {
    let now = 0;
    const o = new TimestampOracle(0, () => now);
    const open: number[] = [];
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 20_000; i++) {
      now += 2;
      open.push(o.assignCommitVersion());
      // finish a random open one (often not the oldest), sometimes a version never assigned or one finished already
      while (open.length > 0 && rnd(3) !== 0) {
        const [v] = open.splice(rnd(Math.min(open.length, 40)), 1);
        o.finish(v!);
        if (rnd(4) === 0) o.finish(v!);
        if (rnd(4) === 0) o.finish(v! + 1);
        // (the finished version moves on finish() only)
        expect(o.finishedVersion).toBe(open.length > 0 ? Math.min(...open) - 1 : o.lastAssignedVersion);
      }
      expect(o.allFinishedBelow(open.length > 0 ? Math.min(...open) : now + 1)).toBe(true);
      if (open.length > 0) expect(o.allFinishedBelow(Math.min(...open) + 1)).toBe(false);
    }
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

  it('capReads (a cluster leader at its grant): reads above the cap are not readable and wait, past the clock too; a raised cap or follow() lets them through', async () => {
    let now = 1000;
    const o = new TimestampOracle(0, () => now);
    o.capReads(1500);
    now = 2000;
    expect(o.readVersion()).toBe(2000); // the idle counter still follows the clock...
    expect(o.readableVersion).toBe(1500); // ...but reads are served only up to the cap
    expect(await o.waitFor(1400, 10)).toBe(true);
    expect(await o.waitFor(1800, 10)).toBe(false); // a later leader's read version: not here
    const raised = o.waitFor(1800, 1000);
    o.capReads(1900);
    expect(await raised).toBe(true);
    const followed = o.waitFor(1950, 1000);
    o.follow(2000); // a follower reads what the log brought: no cap
    expect(await followed).toBe(true);
    expect(o.readableVersion).toBe(2000);
  });

  it('issue 10 item 7: after a restart with the clock stepped back, new versions are above every read version handed out', () => {
    let stored = 0;
    const bound = { ahead: 1000, persist: (v: number) => void (stored = v) };
    let now = 1_000_000;
    const o1 = new TimestampOracle(now, () => now, bound);
    const handedOut: number[] = [];
    for (let i = 0; i < 50; i++) {
      now += 37;
      handedOut.push(o1.readVersion()); // handed out, never committed, so on disk only via the bound
    }
    expect(stored).toBeGreaterThanOrEqual(Math.max(...handedOut));
    // restart: the clock went back 10 minutes; start as the coordinator does
    now -= 600_000_000;
    const o2 = new TimestampOracle(Math.max(stored, now), () => now, bound);
    expect(o2.assignCommitVersion()).toBeGreaterThan(Math.max(...handedOut));
    expect(o2.readVersion()).toBeGreaterThan(Math.max(...handedOut));
  });

  it('the bound is persisted once per half margin, before a version passes it', () => {
    const writes: number[] = [];
    let now = 0;
    const o = new TimestampOracle(0, () => now, { ahead: 1000, persist: (v) => void writes.push(v) });
    for (now = 1; now <= 2000; now++) {
      const v = o.readVersion();
      expect(v).toBeLessThanOrEqual(writes[writes.length - 1]!);
    }
    expect(writes.length).toBeLessThanOrEqual(5);
  });

  it('versionClock follows elapsed monotonic time from its start, about 1,000,000 versions a second', async () => {
    const c = versionClock(5_000_000);
    const a = c();
    await new Promise((r) => setTimeout(r, 50));
    const d = c() - a;
    expect(a).toBeGreaterThanOrEqual(5_000_000);
    expect(d).toBeGreaterThan(40_000);
    expect(d).toBeLessThan(2_000_000);
  });
});
