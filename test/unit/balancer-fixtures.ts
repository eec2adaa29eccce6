/** Shared fixtures for the balancer tests (not a test file itself). */
import type { Accept, Balancer, BalancerOptions, Endpoint, PickContext } from '../../src/balancer/types.ts';
import { hashString } from '../../src/balancer/hash-fn.ts';
import { mulberry32 } from '../helpers/prng.ts';

/** An endpoint whose weight and in-flight count a test can change, as the pool does. */
export interface TestEndpoint extends Endpoint {
  index: number;
  key: string;
  weight: number;
  inFlight: number;
}

/** Endpoints `10.0.0.<i+1>:8080` with the given weights (a number means that many of weight 1). */
export function makeEndpoints(weights: number | readonly number[], keyPrefix = '10.0.0.'): TestEndpoint[] {
  const list = typeof weights === 'number' ? Array.from({ length: weights }, () => 1) : weights;
  return list.map((weight, index) => ({ index, key: `${keyPrefix}${index + 1}:8080`, weight, inFlight: 0 }));
}

/** Endpoints with the given keys, indexed in list order. */
export function endpointsFromKeys(keys: readonly string[], weights?: readonly number[]): TestEndpoint[] {
  return keys.map((key, index) => ({ index, key, weight: weights?.[index] ?? 1, inFlight: 0 }));
}

/** A controllable clock. */
export interface Clock {
  now: number;
}

/** Options with a seeded random and a controllable clock. */
export function makeOptions(seed = 1, clock: Clock = { now: 0 }, hashBalanceFactor?: number): BalancerOptions {
  return { random: mulberry32(seed), now: () => clock.now, hashBalanceFactor };
}

export const acceptAll: Accept = () => true;

/** Accepts endpoints not yet tried, as the proxy's accept does. */
export const acceptUntried: Accept = (e, ctx) => !ctx.tried.includes(e.index);

export function makeCtx(hash = 0, tried: readonly number[] = []): PickContext {
  return { hash, tried };
}

/** The request hash of test key i. */
export function keyHash(i: number): number {
  return hashString(`user-${i}`);
}

/** Picks `count` times; returns how often each index was chosen. */
export function countPicks(
  balancer: Balancer,
  endpoints: readonly Endpoint[],
  count: number,
  accept: Accept = acceptAll,
  ctx: PickContext = makeCtx(),
): number[] {
  const counts = endpoints.map(() => 0);
  for (let i = 0; i < count; i++) {
    const e = balancer.pick(ctx, accept);
    if (e === undefined) throw new Error('pick returned undefined');
    counts[e.index]!++;
  }
  return counts;
}

/** Shares (fractions) from counts. */
export function shares(counts: readonly number[]): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map((c) => c / total);
}

/**
 * Closed-loop load: keeps `concurrency` requests in flight; each pick
 * increments the chosen endpoint's inFlight and a random in-flight request
 * completes before the next pick once the limit is reached. Returns pick counts.
 */
export function closedLoop(
  balancer: Balancer,
  endpoints: TestEndpoint[],
  picks: number,
  concurrency: number,
  random: () => number,
): number[] {
  const counts = endpoints.map(() => 0);
  const active: number[] = [];
  const ctx = makeCtx();
  for (let i = 0; i < picks; i++) {
    while (active.length >= concurrency) {
      const j = Math.floor(random() * active.length);
      const done = active[j]!;
      active[j] = active[active.length - 1]!;
      active.pop();
      endpoints[done]!.inFlight--;
    }
    const e = balancer.pick(ctx, acceptAll);
    if (e === undefined) throw new Error('pick returned undefined');
    endpoints[e.index]!.inFlight++;
    counts[e.index]!++;
    active.push(e.index);
  }
  for (const i of active) endpoints[i]!.inFlight--;
  return counts;
}
