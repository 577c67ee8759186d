import { describe, expect, it } from 'vitest';
import { InflightIds } from '../../../src/gateway/inflight-ids.js';
import { mulberry32 } from '../../support/rng.js';

describe('InflightIds', () => {
  it('agrees with a Set under random adds and deletes: sequential ids, ids equal in their low 16 bits, ids near 2^32 (seed 12)', () => {
    const r = mulberry32(12);
    const kinds: [string, (i: number) => number][] = [
      ['sequential', (i) => i + 1],
      ['multiples of 65,536', (i) => ((i % 5000) + 1) * 65_536],
      ['near 2^32', (i) => 0xffffffff - (i % 3000)],
    ];
    for (const [kind, pick] of kinds) {
      const ids = new InflightIds();
      const model = new Set<number>();
      // plain comparisons in the loop (an expect() each made the test take seconds)
      const wrong: string[] = [];
      for (let i = 0; i < 40_000; i++) {
        // a window of ids that moves forward, as requests in flight do
        const id = pick(Math.floor(r() * 4000) + (i >> 3));
        if (r() < 0.55) {
          if (ids.add(id) === model.has(id)) wrong.push(`add ${id} at ${i}`);
          model.add(id);
        } else {
          ids.delete(id);
          model.delete(id);
        }
        if (ids.has(id) !== model.has(id)) wrong.push(`has ${id} at ${i}`);
      }
      for (const id of model) if (!ids.has(id)) wrong.push(`lost ${id}`);
      expect(wrong.slice(0, 5), kind).toEqual([]);
      expect(ids.size, kind).toBe(model.size);
    }
  });
});
