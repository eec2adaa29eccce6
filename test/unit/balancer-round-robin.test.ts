import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createRoundRobin } from '../../src/balancer/round-robin.ts';
import type { Accept, Balancer } from '../../src/balancer/types.ts';
import { acceptAll, countPicks, makeCtx, makeEndpoints, makeOptions } from './balancer-fixtures.ts';
import type { TestEndpoint } from './balancer-fixtures.ts';

function sequence(b: Balancer, count: number, accept: Accept = acceptAll): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(b.pick(makeCtx(), accept)!.index);
  return out;
}

function letters(indexes: readonly number[]): string {
  return indexes.map((i) => 'abcdefgh'[i]).join(' ');
}

it('cycles exactly through equal weights', () => {
  const b = createRoundRobin(makeEndpoints(4), makeOptions());
  assert.deepEqual(sequence(b, 12), [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
});

it('interleaves weights 5,1,1 as a a b a c a a, every cycle', () => {
  const b = createRoundRobin(makeEndpoints([5, 1, 1]), makeOptions());
  const expected = 'a a b a c a a';
  assert.equal(letters(sequence(b, 7)), expected);
  assert.equal(letters(sequence(b, 7)), expected);
  assert.equal(letters(sequence(b, 7)), expected);
});

it('gives exact weighted shares over whole cycles', () => {
  const endpoints = makeEndpoints([3, 1, 2, 4]);
  const b = createRoundRobin(endpoints, makeOptions());
  assert.deepEqual(countPicks(b, endpoints, 100), [30, 10, 20, 40]);
});

it('skips a non-accepted endpoint and does not advance its current weight', () => {
  const endpoints = makeEndpoints(3);
  const b = createRoundRobin(endpoints, makeOptions());
  const notB: Accept = (e) => e.index !== 1;
  assert.deepEqual(sequence(b, 10, notB), [0, 2, 0, 2, 0, 2, 0, 2, 0, 2]);
  // Had b's current weight grown while it sat out, it would now get a burst.
  const after = sequence(b, 12);
  assert.deepEqual(
    [0, 1, 2].map((i) => after.filter((x) => x === i).length),
    [4, 4, 4],
    `after re-admitting b: ${letters(after)}`,
  );
  for (let i = 1; i < after.length; i++) assert.notEqual(after[i], after[i - 1], letters(after));
});

it('reads weights at every pick (slow start)', () => {
  const endpoints: TestEndpoint[] = makeEndpoints([1, 1]);
  const b = createRoundRobin(endpoints, makeOptions());
  assert.deepEqual(countPicks(b, endpoints, 10), [5, 5]);
  endpoints[1]!.weight = 3;
  const counts = countPicks(b, endpoints, 400);
  assert.ok(Math.abs(counts[1]! - 300) <= 2, `counts ${counts}`);
  endpoints[1]!.weight = 0.5; // mid-ramp fractional weight
  const ramp = countPicks(b, endpoints, 300);
  assert.ok(Math.abs(ramp[1]! - 100) <= 2, `counts ${ramp}`);
});
