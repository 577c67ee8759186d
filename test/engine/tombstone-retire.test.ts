// Retiring the range tombstones of a commit with 20,000 range clears (issue 12: "a
// clearRange ... stalls nothing else"). When the MVCC window passes such a commit, the
// shard deletes the tombstones' rows (DeleteRange each), puts back the keys written since
// and forgets the tombstones. Done in one synchronous step this held the shard thread for
// ~1 s of CPU (3.5 s of wall time at load 8) and every read and commit of the shard waited;
// now it runs in slices of ~2 ms between requests (shard/retire.ts). Measured here: the
// longest point read and the longest small commit on that shard while the tombstones are
// retired (wall time, with a margin for a loaded machine), the largest slice's CPU time
// (the shard's own measure; on a shared VM it includes stolen time, so the bound is partly relative), and the rows after.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';

interface StatusShard {
  shardId: number;
  tombstones?: number;
  tombstonesRetiring?: number;
  tombstonesRetired?: number;
  retireSlices?: number;
  retireCpuMs?: number;
  retireCpuMaxMs?: number;
  deleteRanges?: number;
}

const N = 20_000;
const k = (i: number): string => `dir/${String(i).padStart(6, '0')}`;

describe.each(['fsync', 'buffered'] as const)('retiring the tombstones of %s commit with 20,000 range clears', (durability) => {
  let s: TestServer;
  let base: string;
  beforeAll(async () => {
    s = await startTestServer({ shards: 1, durability, distribution: { enabled: false } });
    base = `http://127.0.0.1:${s.server.port}`;
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  const shard = async (): Promise<StatusShard> => {
    const st = (await (await fetch(`${base}/v1/status`)).json()) as { shards: StatusShard[] };
    return st.shards[0]!;
  };

  it('no point read or small commit on the shard waits 600 ms (or 3x the worst just before) while they are retired; no slice takes 50 ms of CPU (or a quarter of all the retirement\'s CPU); the rows are right', { timeout: 100_000 }, async () => {
    // rows under every range, so that each DeleteRange deletes one
    for (let i = 0; i < N; i += 5000) {
      await s.db.transact(async (tx) => {
        for (let j = i; j < i + 5000; j++) tx.set(`${k(j)}/old`, 'x');
      });
    }
    let n = 0;
    /** One point read and one small commit, back to back, while `go()`: the longest of each (ms). */
    const probe = async (go: () => boolean): Promise<{ read: number; commit: number }> => {
      const worst = { read: 0, commit: 0 };
      while (go()) {
        const t0 = performance.now();
        await s.db.createReadOnlyTransaction().get('other');
        const t1 = performance.now();
        await s.db.transact(async (t) => {
          t.set('other', String(++n));
        });
        const t2 = performance.now();
        worst.read = Math.max(worst.read, t1 - t0);
        worst.commit = Math.max(worst.commit, t2 - t1);
      }
      return worst;
    };
    const tx = s.db.createTransaction();
    for (let i = 0; i < N; i++) {
      tx.clearRange(k(i), `${k(i)}/\xff`);
      tx.set(`${k(i)}/new`, String(i));
    }
    await tx.commit();
    const committed = Date.now();
    const live = (await shard()).tombstones;
    // the same probe before the retirement begins (the window is 5 s), once the commit's own
    // aftermath has passed (this process is client and server: collecting the garbage of
    // building, sending and applying 40,000 mutations made 300-450 ms of the probe at load
    // 15-20 without any retirement): what this machine's load alone costs the probe
    // (at least 5 rounds: at load 18 the commit and the pause had used up the 3.5 s and the
    // probe before took none, so the bound fell to its floor)
    await new Promise((r) => setTimeout(r, Math.max(0, Math.min(2000, committed + 2500 - Date.now()))));
    let rounds = 0;
    const before = await probe(() => rounds++ < 5 || Date.now() < committed + 3500);
    // (x3, at least 600 ms: at load 9-18 one small commit during took 823 ms against 200-282
    // before; the fault stalled the shard ~1 s of CPU at once, 3.5 s of wall time at load 8)
    const bound = Math.max(600, 3 * Math.max(before.read, before.commit));

    let retired = false;
    // the retirement takes ~0.3 s of shard CPU (more wall time on a loaded machine: it runs
    // one ~2 ms slice per turn, only between this shard's writes, and the probe below keeps a
    // fsync'd write in flight most of the time; at load 18 not one tombstone of the round was
    // retired within 15 s, 220 slices and 420 ms of CPU in)
    const deadline = Date.now() + 45_000;
    const nBefore = n;
    // back to back until every tombstone is retired
    const during = probe(() => !retired && Date.now() < deadline);
    let st = await shard();
    while (Date.now() < deadline) {
      st = await shard();
      if ((st.tombstonesRetired ?? 0) >= N && st.tombstones === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    retired = true;
    const worst = await during;
    const show = `during ${JSON.stringify(worst)}, before ${JSON.stringify(before)}, bound ${bound}`;
    expect(worst.read, `longest point read during the retirement, ms: ${show}`).toBeLessThan(bound);
    expect(worst.commit, `longest small commit during the retirement, ms: ${show}`).toBeLessThan(bound);
    expect(live, 'live tombstones after the commit').toBe(N);
    expect(st.tombstonesRetired, `tombstones retired within 45 s: ${JSON.stringify(st)}`).toBe(N);
    expect(st.tombstones).toBe(0);
    expect(st.tombstonesRetiring).toBe(0);
    expect(n - nBefore, 'small commits during the retirement').toBeGreaterThan(3);
    // tombstones of one commit with no rows between them share DeleteRanges
    expect(st.deleteRanges!).toBeLessThan(N / 20);
    // many slices, none of them long (thread CPU time, which a shared VM inflates by what it steals: see the bound)
    expect(st.retireSlices).toBeGreaterThan(10);
    // (a slice ends ~2 ms of wall time after it starts, but one step on a vCPU the host took
    // away counts that time as thread CPU on a shared VM: CI inflated 0.3-0.8 ms slices to 3 ms
    // on average in census-slices. So: 50 ms, or a quarter of the whole retirement's CPU; the
    // retirement in one step was all of it)
    expect(st.retireCpuMaxMs, `largest retirement slice, ms of shard thread CPU (of ${st.retireCpuMs} ms in ${st.retireSlices} slices)`).toBeLessThan(Math.max(50, (st.retireCpuMs ?? 0) / 4));

    // the old rows are gone, the new ones (written under the clears) kept
    const rows: string[] = [];
    const rtx = s.db.createReadOnlyTransaction();
    for (let from = 'dir/'; ; ) {
      const page = await rtx.getRange({ key: from, inclusive: true }, { key: 'dir0', inclusive: false }, { limit: 5000 });
      for (const r of page.kvs) rows.push(`${Buffer.from(r.key).toString()}=${Buffer.from(r.value).toString()}`);
      if (!page.hasMore || page.kvs.length === 0) break;
      from = `${Buffer.from(page.kvs[page.kvs.length - 1]!.key).toString()}\0`;
    }
    expect(rows.length).toBe(N);
    expect(rows.every((r, i) => r === `${k(i)}/new=${i}`)).toBe(true);
    expect(Buffer.from((await s.db.createReadOnlyTransaction().get('other'))!).toString()).toBe(String(n));
  });
});
