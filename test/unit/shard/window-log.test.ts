// The window's write log off the JS heap (src/shard/byte-ring.ts, mvcc.ts): before-images
// are bytes in large chunks written and released in version order. Checked here: the ring
// keeps every live value intact while chunks are released and reused, its memory follows
// what is live (not what was ever written), and the window's log (typed arrays moved to
// the front or doubled as it fills) answers every read like a plain per-key history.
import { describe, expect, it } from 'vitest';
import { ByteRing } from '../../../src/shard/byte-ring.js';
import { VersionWindow } from '../../../src/shard/mvcc.js';
import { mulberry32, randInt, seeds } from '../../support/rng.js';

const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill & 0xff);

describe('ByteRing', () => {
  it('live values stay intact while older chunks are released and reused; memory follows what is live', () => {
    const ring = new ByteRing(1024, 1);
    const live: { pos: number; len: number; fill: number }[] = [];
    let maxHeld = 0;
    for (let i = 0; i < 20_000; i++) {
      // values of 0..300 bytes, a few larger than a chunk
      const len = i % 997 === 0 ? 3000 : i % 301;
      const pos = ring.append(bytes(len, i));
      if (live.length > 0) expect(pos).toBeGreaterThanOrEqual(live[live.length - 1]!.pos + live[live.length - 1]!.len);
      live.push({ pos, len, fill: i });
      // keep the last 40 values (~6 KB) live
      if (live.length > 40) {
        live.shift();
        ring.release(live[0]!.pos);
      }
      maxHeld = Math.max(maxHeld, ring.heldBytes);
      if (i % 50 === 0) {
        for (const v of live) {
          const got = ring.view(v.pos, v.len);
          if (got.length !== v.len || got.some((x) => x !== (v.fill & 0xff))) expect.fail(`value ${v.fill} at ${v.pos} changed (now ${i})`);
        }
      }
    }
    // 40 live values of <= 3 KB span at most ~13 chunks of 1 KB, plus the big ones' own and a spare
    expect(maxHeld).toBeLessThanOrEqual(20 * 1024);
    ring.release(ring.position);
    // nothing live: the current chunk and one spare at most
    expect(ring.heldBytes).toBeLessThanOrEqual(2 * 3000);
  });

  it('a zero-length value and a release past the end are fine', () => {
    const ring = new ByteRing(64, 0);
    const a = ring.append(new Uint8Array(0));
    expect(ring.view(a, 0).length).toBe(0);
    const b = ring.append(bytes(64, 7));
    ring.release(b + 1000);
    const c = ring.append(bytes(10, 9));
    expect(c).toBeGreaterThan(b);
    expect(ring.view(c, 10)).toEqual(bytes(10, 9));
  });
});

describe('VersionWindow write log against a plain per-key history', () => {
  for (const seed of seeds(3)) {
    it(`seed ${seed}: reads at every version of the window match; memory stays bounded`, () => {
      const rng = mulberry32(seed);
      const w = new VersionWindow(0);
      // model: every write of every key, [version, before-image]
      const hist = new Map<string, [number, Uint8Array | null][]>();
      const current = new Map<string, Uint8Array | null>();
      const keys = Array.from({ length: 60 }, (_, i) => `k${String(i).padStart(3, '0')}`);
      const winLen = 400;
      let maxValueBytes = 0;
      let maxWrites = 0;
      for (let ver = 1; ver <= 12_000; ver++) {
        const c = new Map<string, Uint8Array | null>();
        const n = 1 + randInt(rng, 4);
        for (let j = 0; j < n; j++) {
          const k = keys[randInt(rng, keys.length)]!;
          if (c.has(k)) continue;
          const prev = current.get(k) ?? null;
          c.set(k, prev);
          let h = hist.get(k);
          if (!h) hist.set(k, (h = []));
          h.push([ver, prev]);
          // 1 in 8 writes deletes; some values are large
          const len = randInt(rng, 8) === 0 ? -1 : randInt(rng, 20) === 0 ? 5000 + randInt(rng, 20000) : randInt(rng, 120);
          current.set(k, len < 0 ? null : bytes(len, ver * 31 + j));
        }
        w.record(ver, c);
        if (ver % 37 === 0) w.prune(ver - winLen);
        maxValueBytes = Math.max(maxValueBytes, w.held.valueBytes);
        maxWrites = Math.max(maxWrites, w.held.writes);
        if (ver % 501 === 0 || ver === 12_000) {
          for (let q = 0; q < 200; q++) {
            const k = keys[randInt(rng, keys.length)]!;
            const rv = Math.max(w.horizon, ver - randInt(rng, winLen + 50));
            const h = hist.get(k) ?? [];
            // the first write after rv gives the value at rv; none: the current one
            const after = h.find(([v]) => v > rv);
            const want = after ? after[1] : (current.get(k) ?? null);
            const got = w.valueAt(k, rv, current.get(k) ?? null);
            expect(got === null ? null : Buffer.from(got).toString('hex'), `${k} at ${rv} (now ${ver})`).toBe(want === null ? null : Buffer.from(want).toString('hex'));
            const last = h.length > 0 ? h[h.length - 1]![0] : 0;
            expect(w.lastWrite(k)).toBe(last > w.horizon ? last : 0);
          }
        }
      }
      // ~440 versions x ~2.5 writes x (~5% of ~15 KB + ~60 B) live: ~1 MB, a few 1 MiB
      // chunks with their unused tails and a spare, not the ~24 MB written over the run
      expect(maxValueBytes).toBeLessThanOrEqual(4 * 2 ** 20);
      expect(w.held.writes).toBeLessThanOrEqual(4 * (winLen + 37));
      // the log doubles only when more than half of it is live
      expect(w.held.logSlots).toBeLessThanOrEqual(Math.max(1024, 4 * maxWrites));
    });
  }
});
