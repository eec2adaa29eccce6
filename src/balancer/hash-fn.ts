/**
 * MurmurHash3 x86_32 over the UTF-8 bytes of a string.
 *
 * Used for request hash keys (`PickContext.hash`), ring points and Maglev
 * permutations. Written from Austin Appleby's reference description
 * (SMHasher, `MurmurHash3.cpp`, public domain): 4-byte little-endian blocks,
 * constants c1 = 0xcc9e2d51, c2 = 0x1b873593, the `fmix32` finaliser. It passes
 * SMHasher's avalanche tests, which FNV-1a does not, so ring points spread
 * evenly without an extra mixing step.
 *
 * Cost: O(length). ASCII strings (the common case: addresses, cookies, header
 * values) are hashed straight from their char codes; other strings are UTF-8
 * encoded into a reused module-level buffer first. No allocation per call
 * except when a key is longer than any seen before.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

let scratch = new Uint8Array(256);

/** Mixes one 4-byte block into the running hash. */
function mixBlock(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** Mixes the last 1 to 3 bytes (already packed little-endian into `k`). */
function mixTail(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  return h ^ k;
}

/** The `fmix32` finaliser: forces every input bit to affect every output bit. */
function finalize(h: number, length: number): number {
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function murmurBytes(bytes: Uint8Array, length: number, seed: number): number {
  let h = seed | 0;
  const blocks = length & ~3;
  let i = 0;
  for (; i < blocks; i += 4) {
    const k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    h = mixBlock(h, k);
  }
  const rest = length - blocks;
  if (rest > 0) {
    let k = bytes[i]!;
    if (rest > 1) k |= bytes[i + 1]! << 8;
    if (rest > 2) k |= bytes[i + 2]! << 16;
    h = mixTail(h, k);
  }
  return finalize(h, length);
}

/**
 * Encodes `s` as UTF-8 into the scratch buffer and returns the byte length.
 * Lone surrogates become U+FFFD, as `Buffer.from(s, 'utf8')` does.
 */
function encodeUtf8(s: string): number {
  if (scratch.length < s.length * 3) scratch = new Uint8Array(s.length * 3);
  const out = scratch;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out[n++] = c;
    } else if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 0x3f);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
          out[n++] = 0xf0 | (c >> 18);
          out[n++] = 0x80 | ((c >> 12) & 0x3f);
          out[n++] = 0x80 | ((c >> 6) & 0x3f);
          out[n++] = 0x80 | (c & 0x3f);
          continue;
        }
        c = 0xfffd;
      }
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    }
  }
  return n;
}

/** Slow path for non-ASCII strings. */
function hashUtf8(s: string, seed: number): number {
  const length = encodeUtf8(s); // may replace `scratch`: read it after
  return murmurBytes(scratch, length, seed);
}

/**
 * MurmurHash3 x86_32 of the UTF-8 encoding of `s`.
 *
 * @param s - the key (any string; hashed as UTF-8, so equal to hashing `Buffer.from(s)`).
 * @param seed - 32-bit seed; different seeds give independent hash families.
 * @returns an unsigned 32-bit integer.
 */
export function hashString(s: string, seed = 0): number {
  const length = s.length;
  const blocks = length & ~3;
  let h = seed | 0;
  let i = 0;
  for (; i < blocks; i += 4) {
    const c0 = s.charCodeAt(i);
    const c1 = s.charCodeAt(i + 1);
    const c2 = s.charCodeAt(i + 2);
    const c3 = s.charCodeAt(i + 3);
    if ((c0 | c1 | c2 | c3) > 0x7f) return hashUtf8(s, seed);
    h = mixBlock(h, c0 | (c1 << 8) | (c2 << 16) | (c3 << 24));
  }
  const rest = length - blocks;
  if (rest > 0) {
    let k = 0;
    for (let j = rest - 1; j >= 0; j--) {
      const c = s.charCodeAt(i + j);
      if (c > 0x7f) return hashUtf8(s, seed);
      k = (k << 8) | c;
    }
    h = mixTail(h, k);
  }
  return finalize(h, length);
}

/**
 * MurmurHash3 x86_32 of raw bytes (for keys that are already binary, such as
 * a packed client address).
 */
export function hashBytes(bytes: Uint8Array, seed = 0): number {
  return murmurBytes(bytes, bytes.length, seed);
}
