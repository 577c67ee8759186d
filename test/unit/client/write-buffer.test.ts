import { describe, expect, it } from 'vitest';
import { toBytes } from '../../../src/keys/bytes.js';
import { WriteBuffer } from '../../../src/client/write-buffer.js';

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

  it('overlapping clearRanges merge', () => {
    const w = new WriteBuffer();
    w.clearRange(toBytes('a'), toBytes('c'));
    w.clearRange(toBytes('b'), toBytes('e'));
    w.clearRange(toBytes('x'), toBytes('y'));
    expect(w.mutations().map((m) => `${t(m.key)}-${t(m.param)}`)).toEqual(['a-e', 'x-y']);
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
