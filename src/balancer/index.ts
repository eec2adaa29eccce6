/**
 * Balancing algorithms: the contract, the registry and the built-ins.
 * See `registry.ts` for how to add a custom algorithm.
 */
export type { Accept, Balancer, BalancerFactory, BalancerOptions, Endpoint, PickContext } from './types.ts';
export {
  balancerNames,
  BUILTIN_BALANCERS,
  createBalancer,
  DEFAULT_BALANCER,
  hasBalancer,
  registerBalancer,
  UnknownBalancerError,
} from './registry.ts';
export type { BuiltinBalancerName, RegisterOptions } from './registry.ts';
export { defineBalancer, type BalancerDefinition } from './define.ts';
export { hashBytes, hashString } from './hash-fn.ts';
export { createRoundRobin } from './round-robin.ts';
export { createLeastConnections } from './least-connections.ts';
export { createRandom } from './random.ts';
export { createP2C } from './p2c.ts';
export { createEwma, createEwmaBalancer, DEFAULT_DECAY_MS, DEFAULT_RTT_MS } from './ewma.ts';
export type { EwmaOptions } from './ewma.ts';
export { createRingHash, MAX_POINTS, POINTS_PER_WEIGHT } from './hash.ts';
export { createMaglev, MAGLEV_TABLE_SIZE } from './maglev.ts';
