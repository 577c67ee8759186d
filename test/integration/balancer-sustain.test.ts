// The balancer acts on a load skew only once it has lasted (coordinator/balancer.ts,
// SUSTAIN_ROUNDS): a bulk load in key order, hot on one worker for a second or two and then
// on the next, leaves a map of even ranges alone (it used to split it at the load's passing
// quantiles and then move the fragments back and forth into the runs that followed: p99
// commit latency at half of peak, issue 12), while a skew that lasts is still split and
// moved. Real server, real shards' load counters; checkIntervalMs 2 s (the default is 1 s),
// so that the halves of the load stay under SUSTAIN_ROUNDS rounds on a loaded machine too.
import { afterEach, describe, expect, it } from 'vitest';
import { SUSTAIN_ROUNDS } from '../../src/coordinator/balancer.js';
import { startTestServer, type TestServer } from '../support/server.js';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const key = (i: number): string => `k${String(i).padStart(6, '0')}`;
const ROWS = 40_000;

interface Status {
  distribution: { splits: number; moves: number; merges: number; history: { kind: string; reason: string; detail?: string }[] };
}

async function distribution(ts: TestServer): Promise<Status['distribution']> {
  const res = await fetch(ts.server.url.replace('ws://', 'http://') + '/v1/status');
  return ((await res.json()) as Status).distribution;
}

/** Writes keys [from, to) in key order, `per` keys a transaction, spread over `ms` milliseconds. */
async function writeInOrder(ts: TestServer, from: number, to: number, per: number, ms: number): Promise<void> {
  const started = Date.now();
  const txs = Math.ceil((to - from) / per);
  for (let k = 0; k < txs; k++) {
    const b = from + k * per;
    await ts.db.transact(async (tx) => {
      for (let i = b; i < Math.min(to, b + per); i++) tx.set(key(i), 'v'.repeat(20));
    });
    const due = started + ((k + 1) * ms) / txs;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
  }
}

/** Random single-key writes over [from, to) for `ms` milliseconds, `clients` at a time. */
async function writeRandom(ts: TestServer, from: number, to: number, ms: number, clients = 4): Promise<void> {
  const until = Date.now() + ms;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < until) {
        await ts.db.transact(async (tx) => {
          for (let j = 0; j < 10; j++) tx.set(key(from + Math.floor(Math.random() * (to - from))), 'w');
        });
      }
    }),
  );
}

describe('balancer: a skew must last before ranges split or move', () => {
  it(`a bulk load in key order over two even ranges (each half hot for ~1.5 s, under ${SUSTAIN_ROUNDS} rounds of 2 s) and a uniform load after it: no split, no move; a skew that lasts is still split`, async () => {
    t = await startTestServer({ shards: 2, durability: 'buffered', splitPoints: [key(ROWS / 2)], distribution: { enabled: true, checkIntervalMs: 2000 } });
    // the preload: first half (worker 0), then second half (worker 1), in key order
    await writeInOrder(t, 0, ROWS / 2, 200, 1500);
    await writeInOrder(t, ROWS / 2, ROWS, 200, 1500);
    // then the uniform load of a benchmark
    await writeRandom(t, 0, ROWS, 4000);
    const d = await distribution(t);
    expect(d.splits + d.moves, JSON.stringify(d.history)).toBe(0);
    // a lasting skew: every write on worker 0's range; split (and moved) within a few rounds
    const deadline = Date.now() + 30_000;
    let acted = d;
    while (Date.now() < deadline) {
      await writeRandom(t, 0, ROWS / 2, 1000);
      acted = await distribution(t);
      if (acted.splits > 0) break;
    }
    expect(acted.splits, 'a lasting skew was not split').toBeGreaterThan(0);
    expect(acted.history.some((e) => e.reason === 'balancer: load')).toBe(true);
  }, 60_000);

  it('a burst on one worker shorter than a round, then a light uniform load (bench/compare\'s preload, then w1): no split, although the smoothed rates stay skewed for several rounds', async () => {
    // 1 s rounds (the default): the burst's smoothed memory (2 s time constant) outweighs a
    // light load for ~9 rounds, while the shards' counts of each round show it for 1-2
    // 20,000 rows in ~0.7 s, all on worker 1: in at most two rounds' counts. On a loaded
    // machine the burst can last SUSTAIN_ROUNDS rounds (3.1 s at load 12), a lasting skew
    // that is rightly split: such an attempt is no test of a short burst, so it starts over
    // on a new server, up to 4 times
    const bursts: number[] = [];
    for (;;) {
      t = await startTestServer({ shards: 2, durability: 'buffered', splitPoints: [key(ROWS / 2)], distribution: { enabled: true, checkIntervalMs: 1000 } });
      const b0 = Date.now();
      await writeInOrder(t, ROWS / 2, ROWS, 500, 700);
      bursts.push(Date.now() - b0);
      if (bursts.at(-1)! <= 1000) break;
      expect(bursts.length, `the burst took ${bursts.join(', ')} ms: over one 1 s round each time`).toBeLessThan(4);
      await t.close();
    }
    // light uniform load: one client, one key a transaction
    const until = Date.now() + 9000;
    while (Date.now() < until) {
      await t.db.transact(async (tx) => {
        tx.set(key(Math.floor(Math.random() * ROWS)), 'w');
      });
      await new Promise((r) => setTimeout(r, 2));
    }
    const d = await distribution(t);
    expect(d.splits + d.moves, `${JSON.stringify(d.history)} (burst ms: ${bursts.join(', ')})`).toBe(0);
  }, 60_000);
});
