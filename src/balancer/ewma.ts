/**
 * Peak-EWMA: power of two choices on a latency-times-load cost (Finagle's
 * `PeakEwma`, Linkerd / tower `peak_ewma`, Envoy's contrib `peak_ewma`).
 *
 * Per endpoint we keep a time-weighted EWMA `v` of observed latency and the
 * time `t` of its last sample. Read at time `now`, the estimate is
 * `v × exp(-(now - t) / decay)`: it decays toward zero while the endpoint
 * gets no samples. A new sample `x` at `now`, with `w = exp(-(now - t) / decay)`:
 *
 *     x > v·w  →  v = x                 (the "peak": bad news is believed at once)
 *     else     →  v = v·w + x·(1 − w)   (good news is averaged in over ~decay)
 *
 * Cost = estimate × (inFlight + 1) / weight; of two uniformly drawn accepted
 * endpoints the lower cost wins. Draws are uniform (as Finagle and tower):
 * the weight already divides the cost, a weighted draw would count it twice.
 *
 * No starvation (Traefik's `leasttime` gave one of 5 identical servers 5 of
 * 1500 requests, traefik#12306, because a server that stopped being picked
 * never got a fresh sample): here an endpoint that is not picked sees its
 * estimate decay, so it is retried within about decay × ln(its cost / the
 * others') and its fresh sample is believed immediately.
 *
 * No stampede onto unknown endpoints (Finagle's rule): an endpoint with no
 * sample yet costs `defaultRttMs / weight` while idle (cheap, so it gets
 * probed) but PROBE_PENALTY_MS while its probe is in flight, so it gets one
 * request at a time until its first sample returns. The same holds for an
 * endpoint whose last sample is older than `decayMs` (its estimate may have
 * decayed to near zero, which would otherwise make `× (inFlight + 1)` powerless).
 *
 * Defaults: decay 10 s (Finagle, Envoy, tower), default RTT 10 ms (Envoy's
 * `default_rtt`; low enough that new backends are probed promptly, and the
 * probe penalty makes the exact value matter little).
 *
 * Cost per pick: one `now()`, two or three random numbers, two `Math.exp`,
 * two `accept` calls when all is healthy. State: three typed arrays of n.
 */
import type { Accept, Balancer, BalancerFactory, BalancerOptions, Endpoint, PickContext } from './types.ts';
import { scanAccepted, weightOf } from './common.ts';

/** Tunables of the peak-EWMA balancer. */
export interface EwmaOptions {
  /** Time constant of the EWMA, ms. Default 10 000. */
  readonly decayMs?: number;
  /** Assumed latency of an endpoint with no sample yet, ms. Default 10. */
  readonly defaultRttMs?: number;
}

/** Default decay time constant, ms (Finagle / Envoy / tower). */
export const DEFAULT_DECAY_MS = 10_000;
/** Default latency assumed for unsampled endpoints, ms (Envoy `default_rtt`). */
export const DEFAULT_RTT_MS = 10;
/** Cost added to an endpoint whose probe is in flight: only chosen when both draws are probing. */
const PROBE_PENALTY_MS = 1e12;
/** Draws per choice before falling back to a scan. */
const MAX_DRAWS = 4;

class PeakEwma implements Balancer {
  readonly #endpoints: readonly Endpoint[];
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #decay: number;
  readonly #defaultRtt: number;
  /** EWMA latency, ms, as of `#stamp`. */
  readonly #value: Float64Array;
  /** Time of the last sample, ms. */
  readonly #stamp: Float64Array;
  /** 1 once an endpoint has had a sample. */
  readonly #sampled: Uint8Array;

  constructor(endpoints: readonly Endpoint[], options: BalancerOptions, ewma: EwmaOptions) {
    this.#endpoints = endpoints;
    this.#random = options.random;
    this.#now = options.now;
    this.#decay = ewma.decayMs ?? DEFAULT_DECAY_MS;
    this.#defaultRtt = ewma.defaultRttMs ?? DEFAULT_RTT_MS;
    if (!(this.#decay > 0)) throw new RangeError(`ewma decayMs must be > 0, got ${String(ewma.decayMs)}`);
    if (!(this.#defaultRtt >= 0)) throw new RangeError(`ewma defaultRttMs must be >= 0, got ${String(ewma.defaultRttMs)}`);
    this.#value = new Float64Array(endpoints.length);
    this.#stamp = new Float64Array(endpoints.length);
    this.#sampled = new Uint8Array(endpoints.length);
  }

  /** Current cost of the endpoint in slot `i`. */
  #cost(i: number, now: number): number {
    const e = this.#endpoints[i]!;
    const load = (e.inFlight + 1) / weightOf(e);
    if (this.#sampled[i] === 0) {
      return e.inFlight > 0 ? PROBE_PENALTY_MS + this.#defaultRtt * load : this.#defaultRtt * load;
    }
    const age = now - this.#stamp[i]!;
    const estimate = age > 0 ? this.#value[i]! * Math.exp(-age / this.#decay) : this.#value[i]!;
    const cost = estimate * load;
    return e.inFlight > 0 && age > this.#decay ? PROBE_PENALTY_MS + cost : cost;
  }

  /** One uniform choice among accepted endpoints other than `exclude`; -1 when none. */
  #choose(exclude: number, ctx: PickContext, accept: Accept): number {
    const endpoints = this.#endpoints;
    const n = endpoints.length;
    const range = exclude < 0 ? n : n - 1;
    for (let t = 0; t < MAX_DRAWS; t++) {
      let i = Math.floor(this.#random() * range);
      if (exclude >= 0 && i >= exclude) i++;
      if (accept(endpoints[i]!, ctx)) return i;
    }
    return scanAccepted(endpoints, Math.floor(this.#random() * n), exclude, ctx, accept);
  }

  pick(ctx: PickContext, accept: Accept): Endpoint | undefined {
    const endpoints = this.#endpoints;
    const n = endpoints.length;
    if (n === 0) return undefined;
    const a = this.#choose(-1, ctx, accept);
    if (a < 0) return undefined;
    if (n === 1) return endpoints[a];
    const b = this.#choose(a, ctx, accept);
    if (b < 0) return endpoints[a];
    const now = this.#now();
    return this.#cost(b, now) < this.#cost(a, now) ? endpoints[b] : endpoints[a];
  }

  observe(endpoint: Endpoint, latencyMs: number, nowMs: number): void {
    const i = this.#slotOf(endpoint);
    if (i < 0 || !(latencyMs >= 0)) return; // unknown endpoint, or NaN / negative latency
    if (this.#sampled[i] === 0) {
      this.#sampled[i] = 1;
      this.#value[i] = latencyMs;
      this.#stamp[i] = nowMs;
      return;
    }
    const age = nowMs - this.#stamp[i]!;
    const w = age > 0 ? Math.exp(-age / this.#decay) : 1;
    const decayed = this.#value[i]! * w;
    this.#value[i] = latencyMs > decayed ? latencyMs : decayed + latencyMs * (1 - w);
    if (age > 0) this.#stamp[i] = nowMs;
  }

  /** Slot of `endpoint`: its index when that matches, else a search by key. */
  #slotOf(endpoint: Endpoint): number {
    const endpoints = this.#endpoints;
    const i = endpoint.index;
    if (endpoints[i]?.key === endpoint.key) return i;
    for (let j = 0; j < endpoints.length; j++) if (endpoints[j]!.key === endpoint.key) return j;
    return -1;
  }
}

/** Builds a peak-EWMA balancer with explicit tunables (the registry uses the defaults). */
export function createEwmaBalancer(
  endpoints: readonly Endpoint[],
  options: BalancerOptions,
  ewma: EwmaOptions = {},
): Balancer {
  return new PeakEwma(endpoints, options, ewma);
}

/** Factory for peak-EWMA with default tunables. Registered as `ewma`. */
export const createEwma: BalancerFactory = (endpoints: readonly Endpoint[], options: BalancerOptions): Balancer =>
  new PeakEwma(endpoints, options, {});
