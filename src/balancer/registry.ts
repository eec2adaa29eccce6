/**
 * The balancer registry: algorithms by name. The config names an algorithm
 * (`algorithm: p2c`); the pool asks the registry for a balancer over its
 * backends whenever membership or weights change.
 *
 * This is the TypeScript API for custom balancing when usher is embedded: a
 * name registered before the config is loaded can be written in
 * `algorithm:`. (Without embedding, name a module instead:
 * `algorithm: { module: ./x.ts }`, see `define.ts`.) A custom algorithm
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
import { BALANCER_NAME_PATTERN, BUILTIN_BALANCERS, HASHING_BUILTINS, type BuiltinBalancerName } from './names.ts';
import { createEwma } from './ewma.ts';
import { createRingHash } from './hash.ts';
import { createLeastConnections } from './least-connections.ts';
import { createMaglev } from './maglev.ts';
import { createP2C } from './p2c.ts';
import { createRandom } from './random.ts';
import { createRoundRobin } from './round-robin.ts';

export { BUILTIN_BALANCERS, DEFAULT_BALANCER, type BuiltinBalancerName } from './names.ts';

/** How a registered algorithm is used, beyond its factory. */
export interface RegisterOptions {
  /**
   * True when its `pick` reads `ctx.hash`: pools using it hash their
   * `hashKey` per request, and the config allows `hashKey` and
   * `hashBalanceFactor` with it. Default false.
   */
  readonly hashes?: boolean | undefined;
}

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

const factories = new Map<string, { readonly factory: BalancerFactory; readonly hashes: boolean }>();

/**
 * Registers a balancing algorithm under `name`, making it available to
 * {@link createBalancer} and to the config's `algorithm:` key (for configs
 * loaded after this call).
 *
 * @param name - lower-case letters, digits and dashes, starting with a letter
 *   (at most 64 characters), e.g. `"first"` or `"my-weighted-hash"`.
 * @param factory - builds a balancer over a list of endpoints. Called off the
 *   hot path, whenever the pool's membership or weights change.
 * @param options - whether the algorithm reads `ctx.hash` (see {@link RegisterOptions}).
 * @throws TypeError when the name is malformed, the factory is not a
 *   function, or the name is already registered (built-ins included): names
 *   are never silently replaced.
 */
export function registerBalancer(name: string, factory: BalancerFactory, options: RegisterOptions = {}): void {
  if (typeof name !== 'string' || !BALANCER_NAME_PATTERN.test(name)) {
    throw new TypeError(
      `balancer name must match ${String(BALANCER_NAME_PATTERN)} (lower-case letters, digits, dashes), got ${JSON.stringify(name)}`,
    );
  }
  if (typeof factory !== 'function') {
    throw new TypeError(`balancer "${name}": factory must be a function, got ${typeof factory}`);
  }
  if (factories.has(name)) throw new TypeError(`balancer "${name}" is already registered`);
  factories.set(name, { factory, hashes: options.hashes === true });
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
  const registered = factories.get(name);
  if (registered === undefined) throw new UnknownBalancerError(name, balancerNames());
  return registered.factory(endpoints, options);
}

/** Whether the algorithm registered as `name` reads `ctx.hash` (false for unknown names). */
export function balancerHashes(name: string): boolean {
  return factories.get(name)?.hashes === true;
}

/** Whether an algorithm is registered under `name`. */
export function hasBalancer(name: string): boolean {
  return factories.has(name);
}

/** Registered names, built-ins first in the order of {@link BUILTIN_BALANCERS}, then custom ones in registration order. */
export function balancerNames(): string[] {
  return [...factories.keys()];
}

/** Every built-in, by name: a name added to BUILTIN_BALANCERS without a factory does not compile. */
const BUILTINS: Readonly<Record<BuiltinBalancerName, BalancerFactory>> = {
  p2c: createP2C,
  'round-robin': createRoundRobin,
  'least-connections': createLeastConnections,
  random: createRandom,
  ewma: createEwma,
  hash: createRingHash,
  maglev: createMaglev,
};

for (const name of BUILTIN_BALANCERS) registerBalancer(name, BUILTINS[name], { hashes: HASHING_BUILTINS.includes(name) });
