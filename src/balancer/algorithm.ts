/**
 * A pool's `algorithm` as the resolved config holds it (a registered name, or
 * a balancer module), turned into what the pool needs: a display name,
 * whether it hashes, and balancers. The only place that tells the two forms
 * apart.
 */
import type { AlgorithmConfig } from '../config/types.ts';
import { balancerHashes, createBalancer } from './registry.ts';
import type { Balancer, BalancerOptions, Endpoint } from './types.ts';

/** Thrown when a pool is built from a config whose balancer module was never loaded. */
export class BalancerNotLoadedError extends Error {
  readonly code = 'USHER_BALANCER_NOT_LOADED';

  constructor(module: string) {
    super(`balancer module ${module} is not loaded: pass the config through resolveModules() (or loadConfig) before starting usher`);
    this.name = 'BalancerNotLoadedError';
  }
}

/** The name to show: the registered name, or the module's definition name (its path until it is loaded). */
export function algorithmName(algorithm: AlgorithmConfig): string {
  if (typeof algorithm === 'string') return algorithm;
  return algorithm.loaded?.name ?? algorithm.module;
}

/** Whether the algorithm reads `ctx.hash`, so the pool must hash its `hashKey`. */
export function algorithmHashes(algorithm: AlgorithmConfig): boolean {
  return typeof algorithm === 'string' ? balancerHashes(algorithm) : algorithm.loaded?.hashes === true;
}

/** Whether every balancer module of this algorithm is loaded (a name always is). */
export function algorithmLoaded(algorithm: AlgorithmConfig): boolean {
  return typeof algorithm === 'string' || algorithm.loaded !== undefined;
}

/**
 * Builds a balancer of `algorithm` over `endpoints`.
 * @throws UnknownBalancerError for a name nobody registered;
 *   {@link BalancerNotLoadedError} for a module `resolveModules` did not load.
 */
export function createAlgorithm(algorithm: AlgorithmConfig, endpoints: readonly Endpoint[], options: BalancerOptions): Balancer {
  if (typeof algorithm === 'string') return createBalancer(algorithm, endpoints, options);
  if (algorithm.loaded === undefined) throw new BalancerNotLoadedError(algorithm.module);
  return algorithm.loaded.factory(endpoints, options);
}
