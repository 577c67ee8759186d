// Workload named by its invariant (FoundationDB's Cycle idea): concurrent transfers
// between accounts spread over every shard never change the total, and audits that
// read every account in one transaction always see exactly the total. Seeded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TxnError } from '../../src/index.js';
import { startTestServer, text, type TestServer } from '../support/server.js';
import { mulberry32, randInt, seeds } from '../support/rng.js';
import { SHARD_PREFIXES } from '../support/keys.js';

const ACCOUNTS = 12;
const INITIAL = 100;
// account keys spread over the shards: 3FS-shaped and plain keys alike
const account = (i: number): string => SHARD_PREFIXES[i % 4] + 'acct' + String(i).padStart(3, '0');

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s?.close();
});

describe.each(seeds(3))('bank transfers across shards (seed %i)', (seed) => {
  it('keep the total and never show a partial transfer', { timeout: 60_000 }, async () => {
    const rng = mulberry32(seed);
    const ns = `s${seed}/`;
    await s.db.transact(async (tx) => {
      for (let i = 0; i < ACCOUNTS; i++) tx.set(ns + account(i), String(INITIAL));
    });
    let conflicts = 0;
    let transfers = 0;
    let audits = 0;
    const transfer = async (): Promise<void> => {
      for (let n = 0; n < 25; n++) {
        const from = randInt(rng, ACCOUNTS);
        const to = (from + 1 + randInt(rng, ACCOUNTS - 1)) % ACCOUNTS;
        const amount = 1 + randInt(rng, 10);
        for (;;) {
          const tx = s.db.createTransaction();
          try {
            const [a, b] = await Promise.all([tx.get(ns + account(from)), tx.get(ns + account(to))]);
            tx.set(ns + account(from), String(Number(text(a)) - amount));
            tx.set(ns + account(to), String(Number(text(b)) + amount));
            await tx.commit();
            transfers++;
            break;
          } catch (e) {
            if (e instanceof TxnError && e.code === 'CONFLICT') conflicts++;
            else throw e;
          }
        }
      }
    };
    const audit = async (): Promise<void> => {
      for (let n = 0; n < 15; n++) {
        const tx = s.db.createReadOnlyTransaction();
        // half the audits read by point gets, half by one range read over the whole keyspace
        let values: number[];
        if (n % 2 === 0) values = (await Promise.all(Array.from({ length: ACCOUNTS }, (_, i) => tx.get(ns + account(i))))).map((v) => Number(text(v)));
        else {
          const r = await tx.getRange({ key: new Uint8Array([0]), inclusive: true }, { key: new Uint8Array([0xfe]), inclusive: false }, { limit: 10_000 });
          values = r.kvs.filter((kv) => Buffer.from(kv.key).includes(Buffer.from(ns))).map((kv) => Number(text(kv.value)));
          expect(values).toHaveLength(ACCOUNTS);
        }
        expect(values.reduce((x, y) => x + y, 0), `seed ${seed}: audit saw a partial transfer`).toBe(ACCOUNTS * INITIAL);
        audits++;
      }
    };
    await Promise.all([transfer(), transfer(), transfer(), transfer(), audit(), audit()]);
    expect(transfers).toBe(100);
    expect(audits).toBe(30);
    expect(conflicts, `seed ${seed}: 4 writers on ${ACCOUNTS} accounts should collide sometimes`).toBeGreaterThan(0);
    const final = s.db.createReadOnlyTransaction();
    const total = (await Promise.all(Array.from({ length: ACCOUNTS }, (_, i) => final.get(ns + account(i))))).reduce((x, v) => x + Number(text(v)), 0);
    expect(total).toBe(ACCOUNTS * INITIAL);
  });
});
