// Atomic operations end to end: a real server (RocksDB, shard workers, uWS), real
// clients over loopback. The pure semantics are tabled in test/unit/keys/atomic.test.ts;
// this checks that the shard applies them at the commit version, that they add no read
// conflict but count as writes, across shards, and that read-your-writes sees them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TxnError } from '../../src/index.js';
import { startTestServer, text, type TestServer } from '../support/server.js';
import { onEveryShard } from '../support/keys.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s?.close();
});

const le64 = (n: number): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
};
const readLe64 = (b: Uint8Array | null): number => (b === null ? -1 : Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true)));
const hex = (b: Uint8Array | null): string | null => (b === null ? null : Buffer.from(b).toString('hex'));

describe('atomic operations over the wire', () => {
  it('100 concurrent add(counter, 1) transactions commit with zero conflicts and the counter ends at 100', { timeout: 60_000 }, async () => {
    const key = 'atomic/counter100';
    const txs = Array.from({ length: 100 }, () => s.db.createTransaction());
    // every transaction has a read version before any of them commits: with get+set they would conflict
    await Promise.all(txs.map((tx) => tx.getReadVersion()));
    for (const tx of txs) tx.add(key, le64(1));
    const results = await Promise.allSettled(txs.map((tx) => tx.commit()));
    const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(failed.map((f) => (f.reason as TxnError).code)).toEqual([]);
    expect(readLe64(await s.db.createTransaction().get(key))).toBe(100);
  });

  it('an add conflicts a transaction that read the key (it counts as a write), and adds none itself', async () => {
    const key = 'atomic/read-then-add';
    await s.db.transact(async (tx) => tx.set(key, le64(5)));
    const reader = s.db.createTransaction();
    expect(readLe64(await reader.get(key))).toBe(5);
    reader.set('atomic/elsewhere', 'x');
    const adder = s.db.createTransaction();
    await adder.getReadVersion();
    adder.add(key, le64(1));
    await adder.commit();
    const err = await reader.commit().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TxnError);
    expect((err as TxnError).code).toBe('CONFLICT');
    // the adder itself read nothing: a write of the key after its read version does not conflict it
    const adder2 = s.db.createTransaction();
    await adder2.getReadVersion();
    await s.db.transact(async (tx) => tx.set(key, le64(100)));
    adder2.add(key, le64(1));
    await adder2.commit();
    expect(readLe64(await s.db.createTransaction().get(key))).toBe(101);
  });

  it('get after an atomic op returns the value with it applied (read-your-writes) and adds a read conflict', async () => {
    const key = 'atomic/ryw';
    await s.db.transact(async (tx) => tx.set(key, le64(41)));
    const tx = s.db.createTransaction();
    tx.add(key, le64(1));
    expect(readLe64(await tx.get(key))).toBe(42);
    const range = await tx.getRange({ key: 'atomic/ryw', inclusive: true }, { key: 'atomic/ryx', inclusive: false });
    expect(range.kvs.map((kv) => readLe64(kv.value))).toEqual([42]);
    await s.db.transact(async (t2) => t2.add(key, le64(10)));
    const err = await tx.commit().catch((e: unknown) => e);
    expect((err as TxnError).code).toBe('CONFLICT');
    expect(readLe64(await s.db.createTransaction().get(key))).toBe(51);
  });

  it('every op applies at the commit version against the stored value, missing keys included', async () => {
    const p = 'atomic/ops/';
    await s.db.transact(async (tx) => {
      tx.clearRange(p, 'atomic/ops0');
      tx.set(`${p}and`, Buffer.from('f0f0', 'hex'));
      tx.set(`${p}or`, Buffer.from('f000', 'hex'));
      tx.set(`${p}xor`, Buffer.from('ff00', 'hex'));
      tx.set(`${p}max`, Buffer.from('0001', 'hex'));
      tx.set(`${p}min`, Buffer.from('0001', 'hex'));
      tx.set(`${p}bmax`, 'ab');
      tx.set(`${p}bmin`, 'ab');
      tx.set(`${p}app`, 'ab');
      tx.set(`${p}cac`, 'same');
      tx.set(`${p}cac2`, 'other');
      tx.set(`${p}carry`, Buffer.from('ffff', 'hex'));
    });
    await s.db.transact(async (tx) => {
      tx.atomicOp(`${p}and`, Buffer.from('3c3c', 'hex'), 'bitAnd');
      tx.atomicOp(`${p}or`, Buffer.from('0f0f', 'hex'), 'bitOr');
      tx.atomicOp(`${p}xor`, Buffer.from('0f0f', 'hex'), 'bitXor');
      tx.atomicOp(`${p}max`, Buffer.from('ff00', 'hex'), 'max');
      tx.atomicOp(`${p}min`, Buffer.from('ff00', 'hex'), 'min');
      tx.atomicOp(`${p}bmax`, 'b', 'byteMax');
      tx.atomicOp(`${p}bmin`, 'b', 'byteMin');
      tx.atomicOp(`${p}app`, 'cd', 'appendIfFits');
      tx.atomicOp(`${p}cac`, 'same', 'compareAndClear');
      tx.atomicOp(`${p}cac2`, 'same', 'compareAndClear');
      tx.atomicOp(`${p}carry`, Buffer.from('010000', 'hex'), 'add');
      tx.atomicOp(`${p}missing-min`, Buffer.from('0500', 'hex'), 'min');
      tx.atomicOp(`${p}missing-and`, Buffer.from('0500', 'hex'), 'bitAnd');
      tx.atomicOp(`${p}missing-cac`, 'x', 'compareAndClear');
    });
    const r = s.db.createReadOnlyTransaction();
    const names = ['and', 'or', 'xor', 'max', 'min', 'bmax', 'bmin', 'app', 'cac', 'cac2', 'carry', 'missing-min', 'missing-and', 'missing-cac'];
    const got = Object.fromEntries(await Promise.all(names.map(async (n) => [n, hex(await r.get(`${p}${n}`))])));
    expect(got).toEqual({
      and: '3030',
      or: 'ff0f',
      xor: 'f00f',
      max: '0001',
      min: 'ff00',
      bmax: Buffer.from('b').toString('hex'),
      bmin: Buffer.from('ab').toString('hex'),
      app: Buffer.from('abcd').toString('hex'),
      cac: null,
      cac2: Buffer.from('other').toString('hex'),
      carry: '000001',
      'missing-min': '0500',
      'missing-and': '0500',
      'missing-cac': null,
    });
  });

  it('across shards: one transaction adds on every shard (two-phase), concurrently, and every counter is exact', { timeout: 60_000 }, async () => {
    const keys = onEveryShard('atomic/xs');
    const N = 40;
    await Promise.all(
      Array.from({ length: N }, () =>
        s.db.transact(async (tx) => {
          for (const k of keys) tx.add(k, le64(1));
        }),
      ),
    );
    const r = s.db.createReadOnlyTransaction();
    expect(await Promise.all(keys.map(async (k) => readLe64(await r.get(k))))).toEqual(keys.map(() => N));
  });

  it('mutations keep call order with atomic ops in between (set, add, clearRange, add)', async () => {
    const tx = s.db.createTransaction();
    tx.set('atomic/order/a', le64(10));
    tx.add('atomic/order/a', le64(5));
    tx.add('atomic/order/b', le64(1));
    tx.clearRange('atomic/order/b', 'atomic/order/c');
    tx.add('atomic/order/b', le64(7));
    await tx.commit();
    const r = s.db.createReadOnlyTransaction();
    expect(readLe64(await r.get('atomic/order/a'))).toBe(15);
    expect(readLe64(await r.get('atomic/order/b'))).toBe(7);
  });

  it('bad calls fail with stable codes at the call', () => {
    const tx = s.db.createTransaction();
    expect(() => tx.atomicOp('k', 'p', 'increment' as never)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => tx.add(new Uint8Array([0xff, 0x61]), le64(1))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => tx.add('k', new Uint8Array(100_001))).toThrow(expect.objectContaining({ code: 'VALUE_TOO_LARGE' }));
    expect(() => tx.add('k'.repeat(10_001), le64(1))).toThrow(expect.objectContaining({ code: 'KEY_TOO_LARGE' }));
    expect(text(null)).toBeNull();
  });
});
