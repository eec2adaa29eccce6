/**
 * Smooth weighted round-robin, as nginx does it
 * (`ngx_http_upstream_get_peer()` in `ngx_http_upstream_round_robin.c`).
 *
 * Each pick, every accepted endpoint adds its weight to its `current` value;
 * the largest `current` wins (ties: first in list order) and the winner
 * subtracts the sum of the weights that took part. Weights 5,1,1 give
 * `a a b a c a a` (interleaved, never five in a row, unlike Caddy's or
 * Pingora's expanded-list variants); equal weights give an exact cycle.
 *
 * Endpoints that are not accepted sit the pick out: their `current` does not
 * move. Weights are read at every pick, so slow start (a weight that changes
 * over time) takes effect immediately; there is no table to rebuild.
 *
 * Cost per pick: O(n) additions and one `accept` call per endpoint. State: one
 * Float64Array of n numbers.
 */
import type { Accept, Balancer, BalancerFactory, BalancerOptions, Endpoint, PickContext } from './types.ts';
import { weightOf } from './common.ts';

class SmoothRoundRobin implements Balancer {
  readonly #endpoints: readonly Endpoint[];
  readonly #current: Float64Array;

  constructor(endpoints: readonly Endpoint[]) {
    this.#endpoints = endpoints;
    this.#current = new Float64Array(endpoints.length);
  }

  pick(ctx: PickContext, accept: Accept): Endpoint | undefined {
    const endpoints = this.#endpoints;
    const current = this.#current;
    let best = -1;
    let bestCurrent = 0;
    let total = 0;
    for (let i = 0; i < endpoints.length; i++) {
      const e = endpoints[i]!;
      if (!accept(e, ctx)) continue;
      const w = weightOf(e);
      const c = current[i]! + w;
      current[i] = c;
      total += w;
      if (best < 0 || c > bestCurrent) {
        best = i;
        bestCurrent = c;
      }
    }
    if (best < 0) return undefined;
    current[best] = bestCurrent - total;
    return endpoints[best];
  }
}

/** Factory for nginx-style smooth weighted round-robin. Registered as `round-robin`. */
export const createRoundRobin: BalancerFactory = (
  endpoints: readonly Endpoint[],
  _options: BalancerOptions,
): Balancer => new SmoothRoundRobin(endpoints);
