import type { UsherConfig } from '../config/types.ts';

/**
 * The config as it can travel to a worker thread: loaded modules (balancers,
 * filters) hold functions, which do not cross threads, so they are left out
 * and each worker loads them again from the same absolute paths
 * (`resolveModules`). Everything else is plain data.
 */
export function portableConfig(config: UsherConfig): UsherConfig {
  const pools = Object.fromEntries(
    Object.entries(config.pools).map(([name, pool]) => [name, typeof pool.algorithm === 'string' ? pool : { ...pool, algorithm: { ...pool.algorithm, loaded: undefined } }]),
  );
  const listeners = config.listeners.map((listener) => ({
    ...listener,
    routes: listener.routes.map((route) =>
      route.filters === undefined ? route : { ...route, filters: route.filters.map((filter) => (filter.kind === 'module' ? { ...filter, loaded: undefined } : filter)) },
    ),
  }));
  return { ...config, pools, listeners };
}
