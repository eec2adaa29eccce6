/**
 * Weighted random: each endpoint is chosen with probability weight / total
 * weight of the accepted endpoints (HAProxy `random(1)`, nginx `random`).
 *
 * The first draw is over all endpoints; when it lands on an accepted one (the
 * usual case) the pick is done with one `accept` call. Otherwise a single
 * weighted reservoir pass over the accepted endpoints draws again. Together
 * the two steps give exactly weight / accepted-total for every accepted
 * endpoint: P(e) = w/W + (W - A)/W × w/A = w/A.
 *
 * Envoy's docs note random beats round-robin when there are no active health
 * checks: it has no bias toward the endpoint after a failed one.
 *
 * Cost per pick: O(n) additions and one random number; O(n) `accept` calls
 * and random numbers only when the first draw is not accepted.
 */
import type { Accept, Balancer, BalancerFactory, BalancerOptions, Endpoint, PickContext } from './types.ts';
import { drawWeighted, totalWeight, weightOf } from './common.ts';

class WeightedRandom implements Balancer {
  readonly #endpoints: readonly Endpoint[];
  readonly #random: () => number;

  constructor(endpoints: readonly Endpoint[], random: () => number) {
    this.#endpoints = endpoints;
    this.#random = random;
  }

  pick(ctx: PickContext, accept: Accept): Endpoint | undefined {
    const endpoints = this.#endpoints;
    if (endpoints.length === 0) return undefined;
    const first = endpoints[drawWeighted(endpoints, totalWeight(endpoints), this.#random(), -1)]!;
    if (accept(first, ctx)) return first;

    // Weighted reservoir sampling over the accepted endpoints.
    let chosen: Endpoint | undefined;
    let seen = 0;
    for (let i = 0; i < endpoints.length; i++) {
      const e = endpoints[i]!;
      if (!accept(e, ctx)) continue;
      const w = weightOf(e);
      seen += w;
      if (this.#random() * seen < w) chosen = e;
    }
    return chosen;
  }
}

/** Factory for weighted random. Registered as `random`. */
export const createRandom: BalancerFactory = (endpoints: readonly Endpoint[], options: BalancerOptions): Balancer =>
  new WeightedRandom(endpoints, options.random);
