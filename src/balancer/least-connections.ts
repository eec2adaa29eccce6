/**
 * Weighted least connections: the accepted endpoint with the fewest requests
 * in flight relative to its weight (nginx `least_conn`, HAProxy `leastconn`).
 *
 * Loads are compared as `a.inFlight × w_b < b.inFlight × w_a`
 * (cross-multiplication: no division, no float surprises for integer
 * counters). Ties are broken by rotation, as HAProxy round-robins within equal
 * load: the scan starts just after the previous winner, and the first
 * endpoint with the lowest load in scan order wins. Without that, list order
 * would break ties and the first backend would take every request of an idle
 * pool.
 *
 * Note: at zero load every endpoint ties, so idle traffic rotates evenly and
 * weights only act once requests overlap; use `round-robin` or `p2c` where
 * weights must hold at low concurrency.
 *
 * Cost per pick: O(n) comparisons and one `accept` call per endpoint. State:
 * one integer.
 */
import type { Accept, Balancer, BalancerFactory, BalancerOptions, Endpoint, PickContext } from './types.ts';
import { weightOf } from './common.ts';

class LeastConnections implements Balancer {
  readonly #endpoints: readonly Endpoint[];
  #start = 0;

  constructor(endpoints: readonly Endpoint[]) {
    this.#endpoints = endpoints;
  }

  pick(ctx: PickContext, accept: Accept): Endpoint | undefined {
    const endpoints = this.#endpoints;
    const n = endpoints.length;
    let best = -1;
    let bestLoad = 0;
    let bestWeight = 1;
    let i = this.#start;
    for (let k = 0; k < n; k++) {
      const e = endpoints[i]!;
      if (accept(e, ctx)) {
        const w = weightOf(e);
        const load = e.inFlight;
        if (best < 0 || load * bestWeight < bestLoad * w) {
          best = i;
          bestLoad = load;
          bestWeight = w;
        }
      }
      if (++i === n) i = 0;
    }
    if (best < 0) return undefined;
    this.#start = best + 1 === n ? 0 : best + 1;
    return endpoints[best];
  }
}

/** Factory for weighted least connections with rotating tie-break. Registered as `least-connections`. */
export const createLeastConnections: BalancerFactory = (
  endpoints: readonly Endpoint[],
  _options: BalancerOptions,
): Balancer => new LeastConnections(endpoints);
