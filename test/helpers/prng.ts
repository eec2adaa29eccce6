/**
 * mulberry32: a tiny, fast, seeded PRNG (Tommy Ettinger, public domain) for
 * deterministic tests. Not for cryptography.
 *
 * @returns a function giving uniform numbers in [0, 1), like Math.random.
 */
export function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
