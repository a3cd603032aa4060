/**
 * A seeded source of randomness (mulberry32): the same seed gives the same numbers, so a demo, a
 * chaos schedule or a simulated run can be repeated. Anything that takes a `random` option can
 * take one.
 */

/**
 * Numbers in [0, 1), the same sequence for the same seed.
 *
 * @example const random = seededRandom(42); random() // 0.6011037519201636
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
