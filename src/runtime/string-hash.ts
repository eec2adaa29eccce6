/**
 * The seeded string hash of the tables kept in shared memory (the cache
 * store's index, the rate-limit tables): cyrb53's mixing, both 32-bit halves
 * kept. Seeded per table, so keys chosen to collide in one process do not
 * collide in another.
 */

/** Mixes `key` with `seed1`/`seed2` into `out[0]` (low half) and `out[1]` (high half); `out` is the caller's, so a hash allocates nothing. */
export function cyrb53(key: string, seed1: number, seed2: number, out: Int32Array): void {
  let h1 = 0xdeadbeef ^ seed1;
  let h2 = 0x41c6ce57 ^ seed2;
  for (let i = 0; i < key.length; i++) {
    const ch = key.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  out[0] = h1;
  out[1] = h2;
}
