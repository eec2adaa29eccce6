import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createLeastConnections } from '../../src/balancer/least-connections.ts';
import type { Accept } from '../../src/balancer/types.ts';
import { mulberry32 } from '../helpers/prng.ts';
import { closedLoop, countPicks, makeCtx, makeEndpoints, makeOptions, shares } from './balancer-fixtures.ts';

it('picks the fewest in flight relative to weight', () => {
  const endpoints = makeEndpoints([1, 2, 4]);
  const b = createLeastConnections(endpoints, makeOptions());
  const set = (...loads: number[]): void => loads.forEach((l, i) => (endpoints[i]!.inFlight = l));
  set(1, 1, 1); // 1/1, 1/2, 1/4
  assert.equal(b.pick(makeCtx(), () => true), endpoints[2]);
  set(1, 3, 5); // 1, 1.5, 1.25
  assert.equal(b.pick(makeCtx(), () => true), endpoints[0]);
  set(3, 3, 5); // 3, 1.5, 1.25
  assert.equal(b.pick(makeCtx(), () => true), endpoints[2]);
  set(3, 2, 5); // 3, 1, 1.25
  assert.equal(b.pick(makeCtx(), () => true), endpoints[1]);
});

it('compares exactly: 7/3 vs 14/6 is a tie, broken by rotation', () => {
  const endpoints = makeEndpoints([3, 6]);
  endpoints[0]!.inFlight = 7;
  endpoints[1]!.inFlight = 14;
  const b = createLeastConnections(endpoints, makeOptions());
  assert.deepEqual(countPicks(b, endpoints, 10), [5, 5]);
});

it('rotates among ties instead of favouring list order', () => {
  const endpoints = makeEndpoints(4);
  const b = createLeastConnections(endpoints, makeOptions());
  const order: number[] = [];
  for (let i = 0; i < 8; i++) order.push(b.pick(makeCtx(), () => true)!.index);
  assert.deepEqual(order, [0, 1, 2, 3, 0, 1, 2, 3]);
});

it('rotates evenly among the tied accepted endpoints', () => {
  const endpoints = makeEndpoints(6);
  endpoints[4]!.inFlight = 1; // not tied
  const b = createLeastConnections(endpoints, makeOptions());
  const accept: Accept = (e) => e.index !== 1;
  assert.deepEqual(countPicks(b, endpoints, 300, accept), [75, 0, 75, 75, 0, 75]);
});

it('never picks a more loaded endpoint while a less loaded one is accepted', () => {
  const random = mulberry32(5);
  const endpoints = makeEndpoints([1, 2, 3, 1, 5]);
  const b = createLeastConnections(endpoints, makeOptions());
  for (let i = 0; i < 500; i++) {
    for (const e of endpoints) e.inFlight = Math.floor(random() * 10);
    const picked = b.pick(makeCtx(), () => true)!;
    for (const e of endpoints) assert.ok(picked.inFlight / picked.weight <= e.inFlight / e.weight + 1e-12);
  }
});

it('splits concurrent load in proportion to weight', () => {
  const endpoints = makeEndpoints([1, 2, 3]);
  const b = createLeastConnections(endpoints, makeOptions());
  const got = shares(closedLoop(b, endpoints, 30_000, 60, mulberry32(9)));
  const want = [1 / 6, 2 / 6, 3 / 6];
  got.forEach((s, i) => assert.ok(Math.abs(s - want[i]!) < 0.03, `shares ${got}`));
});
