import type { UsherConfig } from '../config/types.ts';
import type { AccessLog } from '../observe/access-log.ts';
import { Pool, type PoolOptions } from '../pool/pool.ts';
import type { HttpListenerPlan } from '../proxy/pick.ts';
import { compileRoutes } from '../route/table.ts';

/**
 * Everything the data plane needs, compiled from one config: route tables,
 * pools with their balancers and connection pools. Built off the request path;
 * requests only read it.
 */
export interface Snapshot {
  readonly config: UsherConfig;
  readonly pools: ReadonlyMap<string, Pool>;
  readonly listeners: ReadonlyMap<string, HttpListenerPlan>;
}

export function buildSnapshot(config: UsherConfig, accessLog: AccessLog, poolOptions: PoolOptions = {}): Snapshot {
  const pools = new Map<string, Pool>();
  for (const [name, poolConfig] of Object.entries(config.pools)) {
    pools.set(name, new Pool(name, poolConfig, poolOptions));
  }
  const listeners = new Map<string, HttpListenerPlan>();
  for (const listener of config.listeners) {
    const routes = compileRoutes(listener.routes);
    const poolOfRoute = routes.routes.map((route) => {
      const pool = pools.get(route.pool);
      // The config validator rejects unknown pools; this guards embedders who build configs by hand.
      if (pool === undefined) throw new Error(`listener ${listener.name}: route ${route.name} names unknown pool ${route.pool}`);
      return pool;
    });
    listeners.set(listener.name, { name: listener.name, proto: 'http', routes, poolOfRoute, accessLog });
  }
  return { config, pools, listeners };
}
