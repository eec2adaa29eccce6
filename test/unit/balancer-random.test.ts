import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createRandom } from '../../src/balancer/random.ts';
import type { Accept } from '../../src/balancer/types.ts';
import { countPicks, makeEndpoints, makeOptions, shares } from './balancer-fixtures.ts';

it('chooses in proportion to weight', () => {
  const endpoints = makeEndpoints([1, 2, 3, 4]);
  const got = shares(countPicks(createRandom(endpoints, makeOptions(3)), endpoints, 40_000));
  got.forEach((s, i) => assert.ok(Math.abs(s - (i + 1) / 10) < 0.015, `shares ${got}`));
});

it('keeps weighted shares among the accepted endpoints', () => {
  const endpoints = makeEndpoints([1, 2, 3, 4]);
  const accept: Accept = (e) => e.index !== 3;
  const got = shares(countPicks(createRandom(endpoints, makeOptions(4)), endpoints, 30_000, accept));
  assert.equal(got[3], 0);
  [1 / 6, 2 / 6, 3 / 6].forEach((want, i) => assert.ok(Math.abs(got[i]! - want) < 0.015, `shares ${got}`));
});

it('maps the injected random onto cumulative weights', () => {
  const endpoints = makeEndpoints([1, 2, 3, 4]);
  const pickWith = (r: number): number =>
    createRandom(endpoints, { random: () => r, now: () => 0 }).pick({ hash: 0, tried: [] }, () => true)!.index;
  assert.deepEqual([0, 0.09, 0.1, 0.29, 0.3, 0.59, 0.6, 0.999].map(pickWith), [0, 0, 1, 1, 2, 2, 3, 3]);
});

it('follows live weight changes', () => {
  const endpoints = makeEndpoints([1, 1]);
  const b = createRandom(endpoints, makeOptions(5));
  endpoints[0]!.weight = 9;
  const got = shares(countPicks(b, endpoints, 20_000));
  assert.ok(Math.abs(got[0]! - 0.9) < 0.015, `shares ${got}`);
});
