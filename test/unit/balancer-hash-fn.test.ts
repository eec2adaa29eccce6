import { it } from 'node:test';
import assert from 'node:assert/strict';
import { hashBytes, hashString } from '../../src/balancer/hash-fn.ts';
import { mulberry32 } from '../helpers/prng.ts';

it('matches the MurmurHash3 x86_32 reference vectors', () => {
  const vectors: [string, number, number][] = [
    ['', 0, 0],
    ['', 1, 0x514e28b7],
    ['', 0xffffffff, 0x81f16f39],
    ['\0\0\0\0', 0, 0x2362f9de],
    ['a', 0x9747b28c, 0x7fa09ea6],
    ['aa', 0x9747b28c, 0x5d211726],
    ['aaa', 0x9747b28c, 0x283e0130],
    ['aaaa', 0x9747b28c, 0x5a97808a],
    ['abc', 0, 0xb3dd93fa],
    ['hello', 0, 0x248bfa47],
    ['Hello, world!', 0x9747b28c, 0x24884cba],
    ['The quick brown fox jumps over the lazy dog', 0, 0x2e4ff723],
    ['The quick brown fox jumps over the lazy dog', 0x9747b28c, 0x2fa826cd],
  ];
  for (const [s, seed, want] of vectors) {
    assert.equal(hashString(s, seed), want, `${JSON.stringify(s)} seed ${seed}`);
    assert.equal(hashBytes(Buffer.from(s), seed), want, `bytes ${JSON.stringify(s)}`);
  }
});

it('hashes non-ASCII strings as their UTF-8 bytes', () => {
  for (const s of ['héllo', '日本語のキー', '😀 emoji', 'abc\u00e9', 'lone \ud800 surrogate', 'x\udc00', 'é'.repeat(300)]) {
    assert.equal(hashString(s, 7), hashBytes(Buffer.from(s, 'utf8'), 7), JSON.stringify(s));
  }
});

it('returns unsigned 32-bit integers that avalanche', () => {
  const random = mulberry32(1);
  let flipped = 0;
  const trials = 2000;
  for (let i = 0; i < trials; i++) {
    const key = `10.0.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}:${i}`;
    const h = hashString(key);
    assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff);
    // Flip one character: about half of the output bits should change.
    const other = hashString(key.slice(0, -1) + String.fromCharCode(key.charCodeAt(key.length - 1) ^ 1));
    let x = (h ^ other) >>> 0;
    while (x !== 0) {
      flipped += x & 1;
      x >>>= 1;
    }
  }
  const mean = flipped / trials;
  assert.ok(mean > 15 && mean < 17, `mean flipped bits ${mean}`);
});

it('spreads sequential keys evenly over buckets', () => {
  const buckets = new Array<number>(64).fill(0);
  for (let i = 0; i < 64_000; i++) buckets[hashString(`user-${i}`) % 64]!++;
  for (const b of buckets) assert.ok(b > 850 && b < 1150, `bucket ${b}`);
});
