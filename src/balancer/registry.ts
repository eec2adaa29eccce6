/**
 * The balancer registry: algorithms by name. The config names an algorithm
 * (`balancer: p2c`); the pool asks the registry for a balancer over its
 * backends whenever membership or weights change.
 *
 * This is the public TypeScript API for custom balancing. A custom algorithm
 * is a {@link BalancerFactory}: it receives the endpoints and
 * {@link BalancerOptions} and returns a {@link Balancer} whose `pick` returns
 * an endpoint the caller's `accept` approves, or `undefined` when there is
 * none. Build any tables in the factory, not in `pick`, and take randomness
 * and time from `options` so behaviour is reproducible in tests.
 *
 * @example
 * ```ts
 * import { registerBalancer } from 'usher';
 *
 * // Always the first accepted backend in list order (active/passive failover).
 * registerBalancer('first', (endpoints) => ({
 *   pick(ctx, accept) {
 *     for (const e of endpoints) if (accept(e, ctx)) return e;
 *     return undefined;
 *   },
 * }));
 * ```
 */
import type { Balancer, BalancerFactory, BalancerOptions, Endpoint } from './types.ts';
import { createEwma } from './ewma.ts';
import { createRingHash } from './hash.ts';
import { createLeastConnections } from './least-connections.ts';
import { createMaglev } from './maglev.ts';
import { createP2C } from './p2c.ts';
import { createRandom } from './random.ts';
import { createRoundRobin } from './round-robin.ts';

/** Name of the algorithm used when the config names none. */
export const DEFAULT_BALANCER = 'p2c';

/** Names of the algorithms usher ships with. */
export const BUILTIN_BALANCERS = ['round-robin', 'least-connections', 'random', 'p2c', 'ewma', 'hash', 'maglev'] as const;

/** One of the built-in algorithm names. */
export type BuiltinBalancerName = (typeof BUILTIN_BALANCERS)[number];

const NAME_PATTERN = /^[a-z][a-z0-9-]{0,63}$/;

/** Thrown by {@link createBalancer} for a name nobody registered. */
export class UnknownBalancerError extends Error {
  readonly code = 'USHER_UNKNOWN_BALANCER';
  /** The name that was asked for. */
  readonly balancer: string;
  /** Names that are registered. */
  readonly known: readonly string[];

  constructor(name: string, known: readonly string[]) {
    super(`unknown balancer "${name}"; known balancers: ${known.join(', ')}`);
    this.name = 'UnknownBalancerError';
    this.balancer = name;
    this.known = known;
  }
}

const factories = new Map<string, BalancerFactory>();

/**
 * Registers a balancing algorithm under `name`, making it available to
 * {@link createBalancer} and to the config's `balancer:` field.
 *
 * @param name - lower-case letters, digits and dashes, starting with a letter
 *   (at most 64 characters), e.g. `"first"` or `"my-weighted-hash"`.
 * @param factory - builds a balancer over a list of endpoints. Called off the
 *   hot path, whenever the pool's membership or weights change.
 * @throws TypeError when the name is malformed, the factory is not a
 *   function, or the name is already registered (built-ins included): names
 *   are never silently replaced.
 */
export function registerBalancer(name: string, factory: BalancerFactory): void {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw new TypeError(
      `balancer name must match ${String(NAME_PATTERN)} (lower-case letters, digits, dashes), got ${JSON.stringify(name)}`,
    );
  }
  if (typeof factory !== 'function') {
    throw new TypeError(`balancer "${name}": factory must be a function, got ${typeof factory}`);
  }
  if (factories.has(name)) throw new TypeError(`balancer "${name}" is already registered`);
  factories.set(name, factory);
}

/**
 * Builds a balancer of the algorithm registered as `name`.
 *
 * @param name - a registered name, see {@link balancerNames}.
 * @param endpoints - the pool's backends; the balancer keeps the reference and
 *   reads `weight` and `inFlight` live.
 * @param options - injected randomness and clock, and `hashBalanceFactor` for
 *   the hash algorithms.
 * @throws UnknownBalancerError (code `USHER_UNKNOWN_BALANCER`) when no
 *   algorithm is registered under `name`; the message lists the known ones.
 */
export function createBalancer(name: string, endpoints: readonly Endpoint[], options: BalancerOptions): Balancer {
  const factory = factories.get(name);
  if (factory === undefined) throw new UnknownBalancerError(name, balancerNames());
  return factory(endpoints, options);
}

/** Whether an algorithm is registered under `name`. */
export function hasBalancer(name: string): boolean {
  return factories.has(name);
}

/** Registered names, built-ins first in the order of {@link BUILTIN_BALANCERS}, then custom ones in registration order. */
export function balancerNames(): string[] {
  return [...factories.keys()];
}

registerBalancer('round-robin', createRoundRobin);
registerBalancer('least-connections', createLeastConnections);
registerBalancer('random', createRandom);
registerBalancer('p2c', createP2C);
registerBalancer('ewma', createEwma);
registerBalancer('hash', createRingHash);
registerBalancer('maglev', createMaglev);
