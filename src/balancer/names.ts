/**
 * The names of the built-in balancing algorithms: the one list the config
 * schema, the resolved config types, the CLI help, docs/config.md and the
 * registry read. Kept apart from `registry.ts` so that reading a name does not
 * load the algorithms.
 */

/** Names of the algorithms usher ships with; the first is the default. */
export const BUILTIN_BALANCERS = ['p2c', 'round-robin', 'least-connections', 'random', 'ewma', 'hash', 'maglev'] as const;

/** One of the built-in algorithm names. */
export type BuiltinBalancerName = (typeof BUILTIN_BALANCERS)[number];

/** Name of the algorithm used when the config names none. */
export const DEFAULT_BALANCER = BUILTIN_BALANCERS[0];

/** Built-ins that read the request's hash (`hashKey`, `hashBalanceFactor`). */
export const HASHING_BUILTINS: readonly BuiltinBalancerName[] = ['hash', 'maglev'];

/** What each built-in does, in one line (docs/config.md and `usher start --help`). */
export const BUILTIN_BALANCER_SUMMARIES: Readonly<Record<BuiltinBalancerName, string>> = {
  p2c: 'two random backends, the one with fewer requests in flight per weight',
  'round-robin': 'smooth weighted round-robin, as nginx',
  'least-connections': 'fewest requests in flight per weight',
  random: 'weighted random',
  ewma: 'peak-EWMA latency times load, of two random backends',
  hash: 'consistent hashing of `hashKey` on a ketama ring',
  maglev: 'Maglev hashing of `hashKey`',
};

/** Registered names: lower-case letters, digits and dashes, starting with a letter, at most 64 characters. */
export const BALANCER_NAME_PATTERN = /^[a-z][a-z0-9-]{0,63}$/;
