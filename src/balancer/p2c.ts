/**
 * Power of two choices (the default algorithm): draw two distinct endpoints
 * at random, weighted, and send the request to the less loaded one
 * (Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing",
 * 2001; HAProxy `random(2)`, its default since 3.3; nginx `random two
 * least_conn`; Envoy `LEAST_REQUEST` with choice_count 2).
 *
 * Load is in-flight relative to weight, compared by cross-multiplication:
 * B wins when `B.inFlight × w_A < A.inFlight × w_B`; on a tie the first draw
 * wins. Like nginx and HAProxy we compare `inFlight / weight`, not
 * `(inFlight + 1) / weight`: with weighted draws the `+ 1` would count the
 * weight twice, and an idle pool weighted 3:1 would send 100% of requests
 * to the heavier backend instead of 75% (measured in a closed-loop
 * simulation; at 16+ concurrent requests both forms give 75/25). Without it,
 * ties at zero load fall to the weighted first draw, so an idle pool gets
 * exactly weighted shares and a busy one converges to them. In between, as
 * with any least-loaded rule, an idle backend beats a busy heavier one (3:1
 * with two requests in flight splits about 50/50).
 *
 * Draws that land on a non-accepted endpoint are redrawn up to MAX_DRAWS
 * times, then a linear scan from a random offset finds one, so an accepted
 * endpoint is returned whenever one exists; the second choice is only
 * skipped when just one endpoint is accepted.
 *
 * Cost per pick: O(n) additions for the weighted draws (weights are read
 * live, for slow start), 2 random numbers and 2 `accept` calls when all is
 * healthy.
 */
import type { Accept, Balancer, BalancerFactory, BalancerOptions, Endpoint, PickContext } from './types.ts';
import { drawWeighted, scanAccepted, totalWeight, weightOf } from './common.ts';

/** Draws per choice before falling back to a scan: 4 misses in a row are rare unless most endpoints are out. */
const MAX_DRAWS = 4;

class PowerOfTwoChoices implements Balancer {
  readonly #endpoints: readonly Endpoint[];
  readonly #random: () => number;

  constructor(endpoints: readonly Endpoint[], random: () => number) {
    this.#endpoints = endpoints;
    this.#random = random;
  }

  /** One weighted choice among the accepted endpoints other than `exclude`; -1 when none. */
  #choose(total: number, exclude: number, ctx: PickContext, accept: Accept): number {
    const endpoints = this.#endpoints;
    for (let t = 0; t < MAX_DRAWS; t++) {
      const i = drawWeighted(endpoints, total, this.#random(), exclude);
      if (accept(endpoints[i]!, ctx)) return i;
    }
    const start = Math.floor(this.#random() * endpoints.length);
    return scanAccepted(endpoints, start, exclude, ctx, accept);
  }

  pick(ctx: PickContext, accept: Accept): Endpoint | undefined {
    const endpoints = this.#endpoints;
    const n = endpoints.length;
    if (n === 0) return undefined;
    const total = totalWeight(endpoints);
    const a = this.#choose(total, -1, ctx, accept);
    if (a < 0) return undefined;
    const first = endpoints[a]!;
    if (n === 1) return first;
    const b = this.#choose(total - weightOf(first), a, ctx, accept);
    if (b < 0) return first;
    const second = endpoints[b]!;
    return second.inFlight * weightOf(first) < first.inFlight * weightOf(second) ? second : first;
  }
}

/** Factory for weighted power of two choices. Registered as `p2c`, the default. */
export const createP2C: BalancerFactory = (endpoints: readonly Endpoint[], options: BalancerOptions): Balancer =>
  new PowerOfTwoChoices(endpoints, options.random);
