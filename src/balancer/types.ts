/**
 * The contract every balancing algorithm implements.
 *
 * An algorithm only *picks*. Whether a backend may take the request (healthy,
 * not draining, not already tried, under its connection limit) is decided by the
 * caller's `accept` predicate, so health and retry rules live in one place and
 * every algorithm honours them the same way (Pingora's `select_with`, nginx's
 * per-request `tried` bitmap).
 *
 * Tables (rings, Maglev tables) are built once in the factory, off the hot path;
 * a membership or weight change builds a new balancer and the pool swaps it in.
 */

/** What a balancer may read about a backend. Owned and updated by the pool. */
export interface Endpoint {
  /** Position in the pool's backend list; stable for the life of one balancer. */
  readonly index: number;
  /** Stable identity used for hashing (the backend's `host:port`). */
  readonly key: string;
  /** Effective weight, > 0. May change between picks (slow start). */
  readonly weight: number;
  /** Requests currently in flight to this backend. */
  readonly inFlight: number;
}

/** Per-request input to a pick. One object is reused per request; no allocation per pick. */
export interface PickContext {
  /** 32-bit unsigned hash of the request's hash key; only hash-based algorithms read it. */
  hash: number;
  /** Indexes of backends already tried for this request (retries pick a different one). */
  tried: readonly number[];
}

/** Returns true when the endpoint may take this request. */
export type Accept = (endpoint: Endpoint, ctx: PickContext) => boolean;

export interface Balancer {
  /**
   * The chosen endpoint, or undefined when no endpoint is accepted.
   * Must return an accepted endpoint whenever at least one exists.
   */
  pick(ctx: PickContext, accept: Accept): Endpoint | undefined;
  /** Optional feedback: one finished request and its latency (ms). Latency-aware algorithms learn from it. */
  observe?(endpoint: Endpoint, latencyMs: number, nowMs: number): void;
}

/** Options a factory receives. Randomness and time are injected so tests are deterministic. */
export interface BalancerOptions {
  /** Uniform random in [0, 1). */
  readonly random: () => number;
  /** Monotonic milliseconds. */
  readonly now: () => number;
  /** Bounded-load factor for hash algorithms, in percent (>= 100); undefined = off. */
  readonly hashBalanceFactor?: number | undefined;
}

export type BalancerFactory = (endpoints: readonly Endpoint[], options: BalancerOptions) => Balancer;
