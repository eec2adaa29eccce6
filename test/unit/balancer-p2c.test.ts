import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createP2C } from '../../src/balancer/p2c.ts';
import type { Accept } from '../../src/balancer/types.ts';
import { mulberry32 } from '../helpers/prng.ts';
import { closedLoop, countPicks, makeEndpoints, makeOptions, shares } from './balancer-fixtures.ts';

it('follows weights on an idle pool', () => {
  const endpoints = makeEndpoints([1, 2, 3, 4]);
  const got = shares(countPicks(createP2C(endpoints, makeOptions(1)), endpoints, 40_000));
  got.forEach((s, i) => assert.ok(Math.abs(s - (i + 1) / 10) < 0.015, `shares ${got}`));
});

it('follows weights under concurrent load', () => {
  // Not at concurrency 2: there the idle backend wins each time, as with any least-loaded rule.
  for (const concurrency of [4, 8, 64]) {
    const endpoints = makeEndpoints([3, 1]);
    const b = createP2C(endpoints, makeOptions(2));
    const got = shares(closedLoop(b, endpoints, 20_000, concurrency, mulberry32(concurrency)));
    assert.ok(Math.abs(got[0]! - 0.75) < 0.05, `concurrency ${concurrency}: shares ${got}`);
  }
});

it('draws two distinct endpoints: the most loaded one never wins', () => {
  const endpoints = makeEndpoints(5);
  endpoints[2]!.inFlight = 10;
  const counts = countPicks(createP2C(endpoints, makeOptions(3)), endpoints, 2000);
  assert.equal(counts[2], 0, `counts ${counts}`);
  // With only two endpoints both are always compared.
  const pair = makeEndpoints(2);
  pair[0]!.inFlight = 1;
  assert.deepEqual(countPicks(createP2C(pair, makeOptions(4)), pair, 500), [0, 500]);
});

it('prefers less loaded endpoints, relative to weight', () => {
  const endpoints = makeEndpoints([1, 1, 1, 1]);
  endpoints.forEach((e, i) => (e.inFlight = i * 2)); // 0, 2, 4, 6
  const counts = countPicks(createP2C(endpoints, makeOptions(5)), endpoints, 12_000);
  // Endpoint i wins when it is the less loaded of a uniform pair: (3 - i) of its 3 pairings.
  [0.5, 1 / 3, 1 / 6, 0].forEach((want, i) => assert.ok(Math.abs(counts[i]! / 12_000 - want) < 0.02, `counts ${counts}`));
  // A weight-4 backend with 4 in flight is as loaded as a weight-1 backend with 1.
  const weighted = makeEndpoints([4, 1]);
  weighted[0]!.inFlight = 5; // 5/4 > 1/1
  weighted[1]!.inFlight = 1;
  assert.deepEqual(countPicks(createP2C(weighted, makeOptions(6)), weighted, 200), [0, 200]);
});

it('balances in-flight load across identical backends', () => {
  const endpoints = makeEndpoints(8);
  const b = createP2C(endpoints, makeOptions(7));
  const got = shares(closedLoop(b, endpoints, 40_000, 80, mulberry32(8)));
  for (const s of got) assert.ok(Math.abs(s - 1 / 8) < 0.01, `shares ${got}`);
});

it('falls back to a scan when draws keep missing', () => {
  const endpoints = makeEndpoints([1000, 1000, 1000, 1]);
  const only: Accept = (e) => e.index === 3;
  assert.deepEqual(countPicks(createP2C(endpoints, makeOptions(9)), endpoints, 300, only), [0, 0, 0, 300]);
  // Two accepted among heavy refused ones: both compared, the less loaded wins.
  const five = makeEndpoints([1000, 1000, 1000, 1, 1]);
  five[3]!.inFlight = 1;
  const two: Accept = (e) => e.index >= 3;
  assert.deepEqual(countPicks(createP2C(five, makeOptions(10)), five, 300, two), [0, 0, 0, 0, 300]);
});
