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
