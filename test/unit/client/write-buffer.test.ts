import { describe, expect, it } from 'vitest';
import { toBytes } from '../../../src/keys/bytes.js';
import { UNREADABLE, WriteBuffer, applySteps, type AtomicStep } from '../../../src/client/write-buffer.js';
import { mulberry32, randInt, seeds } from '../../support/rng.js';

const t = (u: Uint8Array): string => Buffer.from(u).toString();
const server = (...keys: string[]): Uint8Array[] => keys.flatMap((k) => [toBytes(k), toBytes(`s-${k}`)]);
const show = (rows: [Uint8Array, Uint8Array][]): string[] => rows.map(([k, v]) => `${t(k)}=${t(v)}`);

describe('WriteBuffer (read-your-writes)', () => {
  const buf = (): WriteBuffer => {
    const w = new WriteBuffer();
    w.set(toBytes('k2'), toBytes('t2'));
    w.clear(toBytes('k3'));
    w.set(toBytes('k5'), toBytes('t5'));
    w.set(toBytes('k0'), toBytes('t0'));
    return w;
  };
  const [b, e] = [toBytes('k'), toBytes('l')];

  it('merges sets and clears into server rows in key order', () => {
    expect(show(buf().merge(server('k1', 'k3', 'k5', 'k7'), b, e, false, true))).toEqual(['k0=t0', 'k1=s-k1', 'k2=t2', 'k5=t5', 'k7=s-k7']);
  });

  it('merges in reverse', () => {
    expect(show(buf().merge(server('k7', 'k5', 'k3', 'k1'), b, e, true, true))).toEqual(['k7=s-k7', 'k5=t5', 'k2=t2', 'k1=s-k1', 'k0=t0']);
  });

  it('holds back own rows past the last server row when the server has more', () => {
    expect(show(buf().merge(server('k1'), b, e, false, false))).toEqual(['k0=t0', 'k1=s-k1']);
    expect(show(buf().merge(server('k7'), b, e, true, false))).toEqual(['k7=s-k7']);
  });

  it('clearRange drops earlier sets inside it; later sets survive; mutations reproduce the order', () => {
    const w = new WriteBuffer();
    w.set(toBytes('k25'), toBytes('x'));
    w.clearRange(toBytes('k2'), toBytes('k5'));
    w.set(toBytes('k3'), toBytes('again'));
    expect(w.lookup(toBytes('k25'))).toEqual({ kind: 'value', value: null });
    expect(t((w.lookup(toBytes('k3')) as { value: Uint8Array }).value)).toBe('again');
    expect(w.lookup(toBytes('k5'))).toEqual({ kind: 'none' });
    expect(show(w.merge(server('k1', 'k2', 'k4', 'k5'), b, e, false, true))).toEqual(['k1=s-k1', 'k3=again', 'k5=s-k5']);
    expect(w.mutations().map((m) => [m.type, t(m.key)])).toEqual([
      [2, 'k2'],
      [0, 'k3'],
    ]);
  });

  it('overlapping clearRanges read as their union and are sent in call order', () => {
    const w = new WriteBuffer();
    w.clearRange(toBytes('a'), toBytes('c'));
    w.clearRange(toBytes('b'), toBytes('e'));
    w.clearRange(toBytes('x'), toBytes('y'));
    expect(w.lookup(toBytes('d'))).toEqual({ kind: 'value', value: null });
    expect(w.mutations().map((m) => `${t(m.key)}-${t(m.param)}`)).toEqual(['a-c', 'b-e', 'x-y']);
  });

  it('mutations keep call order, versionstamped ones included (issue 10 item 4)', () => {
    const w = new WriteBuffer();
    w.setVersionstampedKey(toBytes('log/0123456789'), 4, toBytes('v'));
    w.clearRange(toBytes('log/'), toBytes('log0'));
    w.set(toBytes('a'), toBytes('1'));
    w.setVersionstampedValue(toBytes('b'), new Uint8Array(10), 0);
    w.clear(toBytes('c'));
    expect(w.mutations().map((m) => `${m.type}:${t(m.key)}`)).toEqual(['3:log/0123456789', '2:log/', '0:a', '4:b', '1:c']);
  });

  it('a later write of a key drops the earlier one from the request, but not a versionstamped key', () => {
    const w = new WriteBuffer();
    w.set(toBytes('a'), toBytes('1'));
    w.setVersionstampedKey(toBytes('a123456789'), 0, toBytes('v'));
    w.set(toBytes('a'), toBytes('2'));
    w.clearRange(toBytes('a'), toBytes('b'));
    expect(w.mutations().map((m) => `${m.type}:${t(m.key)}`)).toEqual(['3:a123456789', '2:a']);
  });

  it('skipCleared moves range ends out of cleared spans (issue 10 item 6)', () => {
    const w = new WriteBuffer();
    w.clearRange(toBytes('m/0000'), toBytes('m/9999'));
    expect(w.skipCleared(toBytes('m/0003'), toBytes('m0')).map(t)).toEqual(['m/9999', 'm0']);
    expect(w.skipCleared(toBytes('m/'), toBytes('m/5')).map(t)).toEqual(['m/', 'm/0000']);
    const [b, e] = w.skipCleared(toBytes('m/1'), toBytes('m/2'));
    expect(t(b) >= t(e)).toBe(true);
  });

  it('range merge marks keys with a pending versionstamped value as UNREADABLE (issue 10 item 3)', () => {
    const w = new WriteBuffer();
    w.setVersionstampedValue(toBytes('a'), new Uint8Array(10), 0);
    const rows = w.merge(server('a'), toBytes(''), toBytes('b'), false, true);
    expect(rows.length).toBe(1);
    expect(rows[0]![1]).toBe(UNREADABLE);
  });

  it('counts the transaction size', () => {
    const w = new WriteBuffer();
    for (let i = 0; i < 99; i++) w.set(toBytes(`k${i}`), new Uint8Array(100_000));
    expect(() => w.set(toBytes('last'), new Uint8Array(100_000))).toThrow(/limit 10000000/);
  });

  it('a key with a pending versionstamped value is unreadable', () => {
    const w = new WriteBuffer();
    w.setVersionstampedValue(toBytes('k'), new Uint8Array(10), 0);
    expect(w.lookup(toBytes('k')).kind).toBe('unreadable');
  });
});

describe('WriteBuffer atomic operations (read-your-writes)', () => {
  const ADD = 5;
  const APPEND = 13;
  const CAC = 14;
  const le = (n: number): Uint8Array => new Uint8Array([n, 0, 0, 0]);

  it('stack on an unknown value in call order and are sent in call order', () => {
    const w = new WriteBuffer();
    w.atomic(toBytes('c'), ADD, le(1));
    w.atomic(toBytes('c'), ADD, le(2));
    const l = w.lookup(toBytes('c'));
    expect(l.kind).toBe('atomic');
    expect([...applySteps(le(10), (l as { ops: AtomicStep[] }).ops)!]).toEqual([13, 0, 0, 0]);
    expect(w.mutations().map((m) => [m.type, [...m.param]])).toEqual([
      [ADD, [1, 0, 0, 0]],
      [ADD, [2, 0, 0, 0]],
    ]);
  });

  it('fold into a value the buffer knows (set, clear, cleared range) and become a set or clear', () => {
    const w = new WriteBuffer();
    w.set(toBytes('a'), toBytes('x'));
    w.atomic(toBytes('a'), APPEND, toBytes('y'));
    w.clearRange(toBytes('m'), toBytes('n'));
    w.atomic(toBytes('m1'), ADD, le(7));
    w.set(toBytes('z'), toBytes('q'));
    w.atomic(toBytes('z'), CAC, toBytes('q'));
    expect(t((w.lookup(toBytes('a')) as { value: Uint8Array }).value)).toBe('xy');
    expect([...(w.lookup(toBytes('m1')) as { value: Uint8Array }).value]).toEqual([7, 0, 0, 0]);
    expect(w.lookup(toBytes('z'))).toEqual({ kind: 'value', value: null });
    expect(w.mutations().map((m) => [m.type, t(m.key)])).toEqual([
      [0, 'a'],
      [2, 'm'],
      [0, 'm1'],
      [1, 'z'],
    ]);
  });

  it('a later set or clearRange replaces pending atomic operations', () => {
    const w = new WriteBuffer();
    w.atomic(toBytes('k1'), ADD, le(1));
    w.atomic(toBytes('k2'), ADD, le(1));
    w.set(toBytes('k1'), toBytes('v'));
    w.clearRange(toBytes('k2'), toBytes('k3'));
    expect(w.mutations().map((m) => [m.type, t(m.key)])).toEqual([
      [0, 'k1'],
      [2, 'k2'],
    ]);
  });

  it('range reads apply them to the server row, or to an absent key', () => {
    const w = new WriteBuffer();
    w.atomic(toBytes('k1'), APPEND, toBytes('+'));
    w.atomic(toBytes('k4'), APPEND, toBytes('new'));
    w.atomic(toBytes('k6'), CAC, toBytes('s-k6'));
    expect(show(w.merge(server('k1', 'k3', 'k6'), toBytes('k'), toBytes('l'), false, true))).toEqual(['k1=s-k1+', 'k3=s-k3', 'k4=new']);
    expect(show(w.merge(server('k6', 'k3', 'k1'), toBytes('k'), toBytes('l'), true, true))).toEqual(['k4=new', 'k3=s-k3', 'k1=s-k1+']);
  });

  it('after a pending versionstamped value the key stays unreadable and both are sent in order', () => {
    const w = new WriteBuffer();
    w.setVersionstampedValue(toBytes('v'), new Uint8Array(10), 0);
    w.atomic(toBytes('v'), APPEND, toBytes('!'));
    expect(w.lookup(toBytes('v'))).toEqual({ kind: 'unreadable' });
    expect(w.mutations().map((m) => m.type)).toEqual([4, APPEND]);
  });
});

// clearRange merges into the sorted cleared list and drops the covered point writes in
// place (it used to rebuild and sort both per call: 20,000 clearRange + set pairs took
// longer than a transaction's timeout): what reads see, against a brute-force model.
describe.each(seeds(3, 31))('WriteBuffer with many clears and sets (seed %i)', (seed) => {
  it('lookup and merge agree with a model of the calls', () => {
    const r = mulberry32(seed);
    const key = (): string => `k${String(randInt(r, 400)).padStart(3, '0')}`;
    const w = new WriteBuffer();
    const model = new Map<string, string | null>(); // buffered value (null: cleared)
    const clears: [string, string][] = [];
    for (let i = 0; i < 3000; i++) {
      const p = r();
      if (p < 0.4) {
        const k = key();
        w.set(toBytes(k), toBytes(`v${i}`));
        model.set(k, `v${i}`);
      } else if (p < 0.5) {
        const k = key();
        w.clear(toBytes(k));
        model.set(k, null);
      } else {
        let [a, b] = [key(), key()];
        if (a > b) [a, b] = [b, a];
        w.clearRange(toBytes(a), toBytes(b));
        if (a < b) clears.push([a, b]);
        for (let n = 0; n < 400; n++) {
          const k = `k${String(n).padStart(3, '0')}`;
          if (k >= a && k < b) model.set(k, null);
        }
      }
      if (i % 100 === 0 || i === 2999) {
        for (let n = 0; n < 400; n++) {
          const k = `k${String(n).padStart(3, '0')}`;
          const l = w.lookup(toBytes(k));
          const want = model.has(k) ? model.get(k)! : undefined;
          if (want === undefined) expect(l.kind, k).toBe('none');
          else expect(l.kind === 'value' ? (l.value === null ? null : t(l.value)) : l.kind, k).toBe(want);
        }
        const rows = w.merge(server('k050', 'k150', 'k250', 'k350'), toBytes('k'), toBytes('l'), false, true);
        const expected = [...new Set([...model.keys(), 'k050', 'k150', 'k250', 'k350'])]
          .sort()
          .flatMap((k) => {
            const v = model.has(k) ? model.get(k)! : `s-${k}`;
            return v === null ? [] : [`${k}=${v}`];
          });
        expect(show(rows)).toEqual(expected);
      }
    }
  });
});

describe('WriteBuffer: the transaction size', () => {
  it('counts each call as FoundationDB does (bytes + 40 per mutation + its conflict range with 32), at the call', () => {
    const w = new WriteBuffer();
    const k = toBytes('k');
    // a one-byte clear costs 76 bytes: 131,578 of them fit in 10,000,000
    for (let i = 0; i < 131_578; i++) w.clear(k);
    expect(w.size).toBe(9_999_928);
    expect(() => w.clear(k)).toThrow(/transaction would be 10000004 bytes; limit 10000000/);
  });
});
