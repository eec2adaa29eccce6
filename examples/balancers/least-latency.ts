/**
 * Weighted least-latency: a custom balancer for usher, loaded from the config.
 *
 * ```yaml
 * pools:
 *   api:
 *     algorithm:
 *       module: ./balancers/least-latency.ts   # relative to the config file
 *       options: { explore: 0.05 }
 * ```
 *
 * Each request goes to the accepted backend with the lowest expected cost:
 * its average response time (an exponentially weighted moving average,
 * time-weighted so a sample `decayMs` old counts 1/e as much), times its
 * requests in flight plus one, divided by its weight. A backend without a
 * sample yet costs 0, so every backend is measured before any is preferred.
 * A share `explore` of requests goes to a weighted-random accepted backend
 * instead, so a backend that was slow once is measured again.
 *
 * Cost: O(backends) per pick (a scan), O(1) per response. Fine for the
 * dozens of backends a pool has; use `ewma` (power of two choices, O(1)) for
 * hundreds.
 *
 * Health, draining, limits and "already tried" are the `accept` predicate's
 * business: like every balancer, this one only ranks the candidates it is
 * offered, and returns one whenever `accept` approves any. Randomness and time
 * come from `context`, so it is reproducible in tests.
 */
import { z } from 'zod';
import { defineBalancer, type Accept, type Endpoint, type PickContext } from 'usher';

const options = z.strictObject({
  /** Share of requests sent to a weighted-random backend, to keep measuring them all. */
  explore: z.number().min(0).max(1).default(0.1),
  /** How fast the average forgets, in milliseconds: a sample this old counts 1/e as much as a new one. */
  decayMs: z.number().int().positive().default(10_000),
});

export default defineBalancer({
  name: 'least-latency',
  options,
  create(endpoints, { explore, decayMs }, { random }) {
    const n = endpoints.length;
    // Per endpoint, by position: the average (ms; NaN before the first sample) and when it was last updated.
    const average = new Float64Array(n).fill(Number.NaN);
    const updatedAt = new Float64Array(n);
    const slots = new Map<Endpoint, number>(endpoints.map((endpoint, i) => [endpoint, i]));

    const cost = (i: number): number => {
      const e = endpoints[i]!;
      const latency = average[i]!;
      if (Number.isNaN(latency)) return 0;
      return (latency * (e.inFlight + 1)) / weightOf(e);
    };

    return {
      pick(ctx: PickContext, accept: Accept): Endpoint | undefined {
        if (explore > 0 && random() < explore) return weightedRandom(endpoints, ctx, accept, random());
        let best = -1;
        let bestCost = Number.POSITIVE_INFINITY;
        for (let i = 0; i < n; i++) {
          const e = endpoints[i]!;
          if (!accept(e, ctx)) continue;
          const c = cost(i);
          if (c < bestCost) {
            best = i;
            bestCost = c;
          }
        }
        return best === -1 ? undefined : endpoints[best];
      },

      observe(endpoint: Endpoint, latencyMs: number, nowMs: number): void {
        const i = slots.get(endpoint);
        if (i === undefined || !(latencyMs >= 0)) return;
        const previous = average[i]!;
        if (Number.isNaN(previous)) {
          average[i] = latencyMs;
        } else {
          const w = Math.exp(-Math.max(0, nowMs - updatedAt[i]!) / decayMs);
          average[i] = previous * w + latencyMs * (1 - w);
        }
        updatedAt[i] = nowMs;
      },
    };
  },
});

/** Weights as the pool gives them may be 0 or NaN during slow start; never divide by them raw. */
function weightOf(e: Endpoint): number {
  return e.weight > 1e-3 ? e.weight : 1e-3;
}

/** A weighted draw among the accepted endpoints (`r` uniform in [0, 1)); undefined when none is accepted. */
function weightedRandom(endpoints: readonly Endpoint[], ctx: PickContext, accept: Accept, r: number): Endpoint | undefined {
  let total = 0;
  for (const e of endpoints) if (accept(e, ctx)) total += weightOf(e);
  if (total === 0) return undefined;
  let x = r * total;
  let last: Endpoint | undefined;
  for (const e of endpoints) {
    if (!accept(e, ctx)) continue;
    x -= weightOf(e);
    last = e;
    if (x < 0) return e;
  }
  return last; // float rounding: r * total landed on the very end
}
