// The one seeded PRNG of the tests (mulberry32). The seed goes into test titles and
// failure messages; TXKV_SEED=<n> npx vitest run <file> replays a run.
export type Rng = () => number;

export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seeds for a randomized test: TXKV_SEED if set, else `count` fixed ones. */
export function seeds(count: number, base = 1): number[] {
  const env = process.env.TXKV_SEED;
  if (env) return [Number(env)];
  return Array.from({ length: count }, (_, i) => base + i * 7919);
}

export function randInt(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}
