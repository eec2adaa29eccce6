import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createRingHash } from '../../src/balancer/hash.ts';
import type { Accept } from '../../src/balancer/types.ts';
import { acceptAll, keyHash, makeCtx, makeEndpoints, makeOptions } from './balancer-fixtures.ts';
import { consistentHashingSuite } from './balancer-hashing-suite.ts';

// A ring moves only the removed endpoint's keys.
consistentHashingSuite(createRingHash, { survivorMoveLimit: 0 });

it('fails over exactly as a ring rebuilt without the refused endpoint would map', () => {
  const endpoints = makeEndpoints(8);
  const b = createRingHash(endpoints, makeOptions());
  const rebuilt = createRingHash(
    endpoints.filter((e) => e.index !== 5).map((e, index) => ({ ...e, index })),
    makeOptions(),
  );
  const not5: Accept = (e) => e.index !== 5;
  for (let i = 0; i < 5000; i++) {
    const hash = keyHash(i);
    assert.equal(b.pick(makeCtx(hash), not5)!.key, rebuilt.pick(makeCtx(hash), acceptAll)!.key);
  }
});

it('wraps around the top of the ring', () => {
  const endpoints = makeEndpoints(3);
  const b = createRingHash(endpoints, makeOptions());
  assert.equal(b.pick(makeCtx(0xffffffff), acceptAll), b.pick(makeCtx(0), acceptAll));
});

it('caps a heavily weighted ring without losing consistency', () => {
  // 20 × 160 × 1000 = 3.2M points: halved 4 times to 200k.
  const endpoints = makeEndpoints(new Array<number>(20).fill(1000));
  const b = createRingHash(endpoints, makeOptions());
  const smaller = createRingHash(
    endpoints.filter((e) => e.index !== 7).map((e, index) => ({ ...e, index })),
    makeOptions(),
  );
  const gone = endpoints[7]!.key;
  const counts = new Map<string, number>();
  for (let i = 0; i < 10_000; i++) {
    const before = b.pick(makeCtx(keyHash(i)), acceptAll)!.key;
    const after = smaller.pick(makeCtx(keyHash(i)), acceptAll)!.key;
    if (before !== gone) assert.equal(after, before);
    counts.set(before, (counts.get(before) ?? 0) + 1);
  }
  for (const c of counts.values()) assert.ok(c > 400 && c < 600, `counts ${[...counts.values()]}`);
});
