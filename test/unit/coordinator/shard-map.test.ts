import { describe, expect, it } from 'vitest';
import { keyString, toBytes } from '../../../src/keys/bytes.js';
import { ShardMap, defaultSplitPoints } from '../../../src/coordinator/shard-map.js';
import { mulberry32, randInt } from '../../support/rng.js';

const le64 = (n: number): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
};
const key3fs = (prefix: string, id: number, rest = ''): Uint8Array => new Uint8Array([...toBytes(prefix), ...le64(id), ...toBytes(rest)]);

describe('ShardMap routing', () => {
  const map = new ShardMap(1, [toBytes('g'), toBytes('p')]);
  it.each([
    ['', 0],
    ['a', 0],
    ['f\xff', 0],
    ['g', 1],
    ['o', 1],
    ['p', 2],
    ['\xff\xff', 2],
  ])('key %j goes to shard %i', (k, shard) => expect(map.shardOf(k)).toBe(shard));

  it('splits a range along shard boundaries', () => {
    const parts = map.split({ begin: toBytes('c'), end: toBytes('q') });
    expect(parts.map((p) => [p.shardId, Buffer.from(p.begin).toString(), Buffer.from(p.end).toString()])).toEqual([
      [0, 'c', 'g'],
      [1, 'g', 'p'],
      [2, 'p', 'q'],
    ]);
    expect(map.split({ begin: toBytes('h'), end: toBytes('i') }).map((p) => p.shardId)).toEqual([1]);
    expect(map.split({ begin: toBytes('z'), end: toBytes('a') })).toEqual([]);
    // a range ending exactly at a boundary does not touch the next shard
    expect(map.split({ begin: toBytes('a'), end: toBytes('g') }).map((p) => p.shardId)).toEqual([0]);
  });

  it('refuses unsorted split points', () => {
    expect(() => new ShardMap(1, [toBytes('p'), toBytes('g')])).toThrow(/increasing/);
  });
});

describe('default split points', () => {
  it.each([1, 2, 4, 8])('%i shards give one split point fewer, increasing', (n) => {
    const points = defaultSplitPoints(n);
    expect(points.length).toBe(n - 1);
    new ShardMap(1, points); // throws unless strictly increasing
  });

  it('are the quantiles of the prior\'s cells made and sorted one by one (defaultSplitPoints walks them in key order instead)', () => {
    // the prior as the doc comment states it: 2-byte binary cells, 2-byte printable text
    // cells, 3FS cells (4-byte prefix + one byte); sorted by key (stable: binary before text)
    const cells: { key: string; mass: number }[] = [];
    for (let b = 0; b < 256; b++) for (let s = 0; s < 256; s++) cells.push({ key: String.fromCharCode(b, s), mass: 0.3 / 65536 });
    for (let b = 0x21; b < 0x7f; b++) for (let s = 0x20; s < 0x7f; s++) cells.push({ key: String.fromCharCode(b, s), mass: 0.3 / (94 * 95) });
    for (const [p, w] of [['DENT', 0.4], ['INOD', 0.4], ['INOS', 0.1], ['META', 0.1]] as const) {
      for (let s = 0; s < 256; s++) cells.push({ key: p + String.fromCharCode(s), mass: (0.4 * w) / 256 });
    }
    cells.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
    const quantiles = (n: number): string[] => {
      const out: string[] = [];
      let acc = 0;
      let next = 1;
      for (const c of cells) {
        if (next >= n) break;
        if (acc + c.mass > next / n + 1e-12) {
          if (out.length === 0 || out[out.length - 1]! < c.key) out.push(c.key);
          next++;
        }
        acc += c.mass;
      }
      return out;
    };
    for (const n of [1, 2, 3, 4, 5, 7, 8, 16, 64, 1000]) expect(defaultSplitPoints(n).map(keyString), `${n} shards`).toEqual(quantiles(n));
    expect(defaultSplitPoints(4).map(keyString)).toEqual(['DENT[', 'INOD\xc7', 'hD']);
  });

  it('spread 3FS inode and directory-entry keys over all 4 shards, and random keys too', () => {
    const map = new ShardMap(1, defaultSplitPoints(4));
    const rng = mulberry32(42);
    const count = (keys: Uint8Array[]): number[] => {
      const c = [0, 0, 0, 0];
      for (const k of keys) c[map.shardOfKey(k)]!++;
      return c;
    };
    const threeFs = Array.from({ length: 4000 }, (_, i) => (i % 2 ? key3fs('INOD', i + 1000) : key3fs('DENT', randInt(rng, 1e6), `file${i}`)));
    const random = Array.from({ length: 4000 }, () => new Uint8Array(Array.from({ length: 16 }, () => randInt(rng, 256))));
    const mixed = count([...threeFs, ...random]);
    for (const c of mixed) expect(c).toBeGreaterThan(8000 * 0.1); // every shard gets >10% of a mixed load
    const only3fs = count(threeFs);
    expect(only3fs.filter((c) => c > 400).length).toBeGreaterThanOrEqual(3); // 3FS keys alone use 3+ shards
    const onlyRandom = count(random);
    expect(onlyRandom.filter((c) => c > 400).length).toBeGreaterThanOrEqual(2);
  });

  // issue 12 fault 6: the old prior put every ASCII key on shard 2 of 4
  it('spread text keys: a random printable first byte uses every shard, and the common shapes do not share one', () => {
    const map = new ShardMap(1, defaultSplitPoints(4));
    const rng = mulberry32(7);
    const text = Array.from({ length: 8000 }, () => {
      const len = 4 + randInt(rng, 12);
      return toBytes(Array.from({ length: len }, () => String.fromCharCode(0x21 + randInt(rng, 94))).join(''));
    });
    const c = [0, 0, 0, 0];
    for (const k of text) c[map.shardOfKey(k)]!++;
    for (const n of c) expect(n).toBeGreaterThan(text.length * 0.02);
    for (const n of c) expect(n).toBeLessThan(text.length * 0.5);
    const shapes = ['k000123', 'acct/42', 'user:alice', '0001', 'Order-17', 'zebra'].map((k) => map.shardOfKey(toBytes(k)));
    expect(new Set(shapes).size).toBeGreaterThanOrEqual(3);
  });
});

describe('ShardMap with ranges as the unit', () => {
  const base = new ShardMap(1, [toBytes('g'), toBytes('p')]);
  it('a split adds a boundary and keeps owners; a merge removes it', () => {
    const m = base.withSplit('k');
    expect(m.version).toBe(2);
    expect(m.ranges.map((r) => [r.begin, r.end, r.owner])).toEqual([
      ['', 'g', 0],
      ['g', 'k', 1],
      ['k', 'p', 1],
      ['p', null, 2],
    ]);
    // neighbours on one worker are still one part
    expect(m.split({ begin: toBytes('h'), end: toBytes('m') }).map((p) => p.shardId)).toEqual([1]);
    expect(() => m.withSplit('k')).toThrow(/already begins/);
    expect(m.withMerge('k').ranges.length).toBe(3);
    expect(() => base.withMerge('g')).toThrow(/different owners/);
  });

  it('after a move, reads below the switch version go to the previous owner, everything else to the new one', () => {
    const m = base.withSplit('k').withOwner(2, 0, 1000);
    expect(m.shardOf('l')).toBe(0);
    expect(m.shardOf('l', 999)).toBe(1);
    expect(m.shardOf('l', 1000)).toBe(0);
    expect(m.split({ begin: toBytes('h'), end: toBytes('m') }, 999).map((p) => p.shardId)).toEqual([1]);
    expect(m.split({ begin: toBytes('h'), end: toBytes('m') }, 1000).map((p) => p.shardId)).toEqual([1, 0]);
    expect(() => m.withMerge('k')).toThrow(/different owners/);
    const back = ShardMap.fromJSON(JSON.parse(JSON.stringify(m.toJSON())));
    expect(back.ranges).toEqual(m.ranges);
    expect(m.withoutPrev(2).ranges[2]!.prev).toBeUndefined();
  });
});

describe('shardOfKey (bytes, no key string)', () => {
  it('names the same worker as shardOf of the key string, for keys at, around and between split points of any bytes', () => {
    const rng = mulberry32(12);
    const randomKey = (): Uint8Array => Uint8Array.from({ length: randInt(rng, 6) }, () => (rng() < 0.3 ? [0, 0x7f, 0x80, 0xff][randInt(rng, 4)]! : randInt(rng, 256)));
    for (let m = 0; m < 50; m++) {
      const points = [...new Set(Array.from({ length: 1 + randInt(rng, 6) }, () => keyString(randomKey())).filter((p) => p !== ''))].sort();
      if (points.length === 0) continue;
      const map = new ShardMap(points.length + 1, points.map((p) => Uint8Array.from(p, (c) => c.charCodeAt(0))));
      const keys: Uint8Array[] = [new Uint8Array(0)];
      for (const p of points) {
        const b = Uint8Array.from(p, (c) => c.charCodeAt(0));
        keys.push(b, b.subarray(0, b.length - 1), Uint8Array.from([...b, 0]), Uint8Array.from([...b, 0xff]));
        if (b[b.length - 1]! > 0) keys.push(Uint8Array.from([...b.subarray(0, -1), b[b.length - 1]! - 1, 0xff]));
      }
      for (let i = 0; i < 200; i++) keys.push(randomKey());
      for (const k of keys) expect(map.shardOfKey(k), `${Buffer.from(k).toString('hex')} in ${JSON.stringify(points)}`).toBe(map.shardOf(keyString(k)));
    }
  });
});
