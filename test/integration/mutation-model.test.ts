// Issue 10: one transaction mixing every mutation kind (set, clear, clearRange,
// setVersionstampedKey, setVersionstampedValue, atomic add) with reads, against an
// in-memory model of FoundationDB's rules, seeded (TXKV_SEED=<n> replays):
// - mutations take effect in call order at commit, versionstamped ones included
//   (a clearRange after a setVersionstampedKey clears it when the final key falls inside);
// - reads inside the transaction see its own sets, clears and atomic operations;
//   versionstamped keys are invisible until commit; a key with a pending versionstamped
//   value is unreadable: a get of it, or a range read whose result would include it,
//   fails INVALID_ARGUMENT;
// - after commit the database equals the model with the versionstamp substituted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TxnError } from '../../src/index.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { SHARD_PREFIXES } from '../support/keys.js';
import { mulberry32, randInt, seeds, type Rng } from '../support/rng.js';

const enc = new TextEncoder();
const L = (b: Uint8Array): string => String.fromCharCode(...b); // latin-1: JS order = byte order
const B = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

type Db = Map<string, Uint8Array>;
type Op =
  | { t: 'set'; k: string; v: Uint8Array }
  | { t: 'clear'; k: string }
  | { t: 'clearRange'; b: string; e: string }
  | { t: 'vsk'; k: string; offset: number; v: Uint8Array }
  | { t: 'vsv'; k: string; v: Uint8Array; offset: number }
  | { t: 'add'; k: string; p: Uint8Array };

/** FoundationDB's add (fdbclient/Atomic.h doLittleEndianAdd): the parameter's length wins. */
function addLE(existing: Uint8Array | undefined, p: Uint8Array): Uint8Array {
  if (!existing || existing.length === 0) return p.slice();
  const out = new Uint8Array(p.length);
  let carry = 0;
  for (let i = 0; i < p.length; i++) {
    const s = (i < existing.length ? existing[i]! : 0) + p[i]! + carry;
    out[i] = s & 0xff;
    carry = s >> 8;
  }
  return out;
}

function stampInto(b: Uint8Array, offset: number, stamp: Uint8Array): Uint8Array {
  const out = b.slice();
  out.set(stamp, offset);
  return out;
}

/** Applies one mutation to `db`; `stamp` null = during the transaction (reads' view). */
function apply(db: Db, unreadable: Set<string>, op: Op, stamp: Uint8Array | null): void {
  switch (op.t) {
    case 'set':
      db.set(op.k, op.v);
      unreadable.delete(op.k);
      return;
    case 'clear':
      db.delete(op.k);
      unreadable.delete(op.k);
      return;
    case 'clearRange':
      for (const k of [...db.keys()]) if (k >= op.b && k < op.e) db.delete(k);
      for (const k of [...unreadable]) if (k >= op.b && k < op.e) unreadable.delete(k);
      return;
    case 'vsk':
      if (stamp) db.set(L(stampInto(B(op.k), op.offset, stamp)), op.v);
      return; // invisible inside the transaction
    case 'vsv':
      if (stamp) db.set(op.k, stampInto(op.v, op.offset, stamp));
      else {
        db.set(op.k, op.v); // a row exists, but it cannot be read
        unreadable.add(op.k);
      }
      return;
    case 'add':
      db.set(op.k, addLE(db.get(op.k), op.p));
      return;
  }
}

const hex = (u: Uint8Array | null | undefined): string | null => (u ? Buffer.from(u).toString('hex') : null);

let s: TestServer;

describe.each(seeds(3, 501))('one transaction mixing every mutation kind and reads, against a model (seed %i)', (seed) => {
  beforeAll(async () => {
    s = await startTestServer(); // a fresh database per seed: full-range reads see only the model's keys
  });
  afterAll(async () => {
    await s?.close();
  });

  it('reads inside the transaction and the committed state match the model', { timeout: 120_000 }, async () => {
    const rng: Rng = mulberry32(seed);
    const keys = SHARD_PREFIXES.flatMap((p) => ['a', 'b', 'c', 'd'].map((x) => L(enc.encode(`${p}${x}`)))).sort();
    const templates = SHARD_PREFIXES.map((p) => L(enc.encode(`${p}v`)));
    const pick = <T>(xs: readonly T[]): T => xs[randInt(rng, xs.length)]!;
    const bound = (): string => (rng() < 0.25 ? pick(keys) + '\x01' : rng() < 0.1 ? '' : pick(keys));
    const value = (): Uint8Array => enc.encode(`v${randInt(rng, 1000)}`);
    let committed: Db = new Map();
    let checkedReads = 0;
    let unreadableReads = 0;
    for (let t = 0; t < 25; t++) {
      const tx = s.db.createTransaction();
      const ops: Op[] = [];
      const view: Db = new Map(committed);
      const unreadable = new Set<string>();
      const steps = 2 + randInt(rng, 12);
      for (let o = 0; o < steps; o++) {
        const r = rng();
        let op: Op | null = null;
        if (r < 0.2) op = { t: 'set', k: pick(keys), v: value() };
        else if (r < 0.28) op = { t: 'clear', k: pick(keys) };
        else if (r < 0.36) {
          let [b, e] = [bound(), bound()];
          if (b > e) [b, e] = [e, b];
          op = { t: 'clearRange', b, e };
        } else if (r < 0.44) {
          const tpl = pick(templates);
          op = { t: 'vsk', k: tpl + '\0'.repeat(10), offset: tpl.length, v: value() };
        } else if (r < 0.52) op = { t: 'vsv', k: pick(keys), v: new Uint8Array(12).fill(0x61), offset: randInt(rng, 3) };
        else if (r < 0.62) {
          const p = new Uint8Array(1 + randInt(rng, 4));
          p[0] = 1 + randInt(rng, 200);
          op = { t: 'add', k: pick(keys), p };
        }
        if (op) {
          ops.push(op);
          apply(view, unreadable, op, null);
          if (op.t === 'set') tx.set(B(op.k), op.v);
          else if (op.t === 'clear') tx.clear(B(op.k));
          else if (op.t === 'clearRange') tx.clearRange(B(op.b), B(op.e));
          else if (op.t === 'vsk') tx.setVersionstampedKey(B(op.k), op.offset, op.v);
          else if (op.t === 'vsv') tx.setVersionstampedValue(B(op.k), op.v, op.offset);
          else tx.add(B(op.k), op.p);
          continue;
        }
        // a read: a get or a range read, snapshot or not, forward or reverse
        const what = `seed ${seed} tx ${t} step ${o}`;
        if (rng() < 0.4) {
          const k = pick(keys);
          const got = await (rng() < 0.5 ? tx.get(B(k)) : tx.snapshotGet(B(k))).then(
            (v) => ({ v }),
            (e: unknown) => ({ e }),
          );
          if (unreadable.has(k)) {
            expect((got as { e: TxnError }).e?.code, `${what}: get of an unreadable key`).toBe('INVALID_ARGUMENT');
            unreadableReads++;
          } else {
            expect('v' in got, `${what}: get failed: ${String((got as { e: unknown }).e)}`).toBe(true);
            expect(hex((got as { v: Uint8Array | null }).v), `${what}: get ${hex(B(k))}`).toBe(hex(view.get(k)));
          }
        } else {
          let [b, e] = [bound(), bound()];
          if (b > e) [b, e] = [e, b];
          const limit = 1 + randInt(rng, 6);
          const reverse = rng() < 0.5;
          const rows = [...view.keys()].filter((k) => k >= b && k < e).sort();
          if (reverse) rows.reverse();
          const page = rows.slice(0, limit);
          const read = rng() < 0.5 ? tx.getRange.bind(tx) : tx.snapshotGetRange.bind(tx);
          const got = await read({ key: B(b), inclusive: true }, { key: B(e), inclusive: false }, { limit, reverse }).then(
            (r) => ({ r }),
            (err: unknown) => ({ err }),
          );
          if (page.some((k) => unreadable.has(k))) {
            expect((got as { err: TxnError }).err?.code, `${what}: range over an unreadable key`).toBe('INVALID_ARGUMENT');
            unreadableReads++;
          } else {
            expect('r' in got, `${what}: range failed: ${String((got as { err: unknown }).err)}`).toBe(true);
            const r = (got as { r: { kvs: { key: Uint8Array; value: Uint8Array }[]; hasMore: boolean } }).r;
            expect(
              r.kvs.map((kv) => [hex(kv.key), hex(kv.value)]),
              `${what}: range [${hex(B(b))}, ${hex(B(e))}) limit ${limit}${reverse ? ' reverse' : ''}`,
            ).toEqual(page.map((k) => [hex(B(k)), hex(view.get(k))]));
            expect(r.hasMore, `${what}: hasMore`).toBe(rows.length > limit);
          }
        }
        checkedReads++;
      }
      await tx.commit();
      const next: Db = new Map(committed);
      if (ops.length > 0) {
        const stamp = await tx.getVersionstamp();
        for (const op of ops) apply(next, new Set(), op, stamp);
      }
      committed = next;
      // the whole database equals the model
      const all = await s.db.createTransaction().getRange({ key: '', inclusive: true }, { key: B('\xff'), inclusive: false }, { limit: 1000 });
      const want = [...committed.keys()].sort().map((k) => [hex(B(k)), hex(committed.get(k))]);
      expect(all.kvs.map((kv) => [hex(kv.key), hex(kv.value)]), `seed ${seed} after commit ${t}: ${JSON.stringify(ops.map((x) => x.t))}`).toEqual(want);
    }
    expect(checkedReads).toBeGreaterThan(50);
    expect(unreadableReads).toBeGreaterThan(0);
  });
});
