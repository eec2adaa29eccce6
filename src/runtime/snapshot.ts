import type { ListenerConfig, PoolConfig, UsherConfig } from '../config/types.ts';
import type { PoolRuntime } from '../pool/pool-runtime.ts';
import type { AccessLog } from '../observe/access-log.ts';
import { Pool, type PoolOptions } from '../pool/pool.ts';
import type { DownstreamSettings } from '../proxy/plan.ts';
import type { HttpListenerPlan, RouteSplit } from '../proxy/plan.ts';
import { compileTcpPlan, type TcpListenerPlan } from '../l4/plan.ts';
import { L4Metrics } from '../l4/metrics.ts';
import { HttpMetrics } from '../proxy/metrics.ts';
import { silentLogger, type Logger } from '../observe/logger.ts';
import { compileFilterChain } from '../filter/compile.ts';
import { ResponseCache } from '../cache/response-cache.ts';
import type { Limiter } from '../ratelimit/limiter.ts';
import { RateLimitStore } from '../ratelimit/store.ts';
import type { CacheConfig } from '../config/types.ts';
import type { FilterChain } from '../filter/chain.ts';
import { compileRoutes, type RouteTable } from '../route/table.ts';

/**
 * Everything the data plane needs, compiled from one config: route tables
 * and the pools they point at. Requests read it; only the control plane (start,
 * reload, admin API) changes it.
 *
 * Pools are long-lived objects carried from one snapshot to the next, because
 * their backends hold state a reload must keep (health, counters, pooled
 * connections); route tables and plans are rebuilt and swapped whole. Plans
 * point at each pool's data-plane side (`Pool.runtime`); the admin API and
 * reloads work on its control side (`Pool.control`).
 */
export interface Snapshot<P extends ServedPool = Pool> {
  readonly config: UsherConfig;
  readonly pools: ReadonlyMap<string, P>;
  /** Plans of http and https listeners. */
  readonly listeners: ReadonlyMap<string, HttpListenerPlan>;
  /** Plans of tcp and tls-passthrough listeners. */
  readonly tcpListeners: ReadonlyMap<string, TcpListenerPlan>;
}

/**
 * A pool as a snapshot holds it: its data plane, which plans point at, and how
 * a reloaded config reaches it. A {@link Pool} in a single-threaded usher; a
 * mirror of the main thread's control plane in a worker thread.
 */
export interface ServedPool {
  readonly name: string;
  readonly runtime: PoolRuntime;
  reconfigure(config: PoolConfig): void;
  close(): void;
}

/** Route tables and filter chains compiled from a config: the part of a reload that can fail, done before anything changes. */
export interface CompiledRoutes {
  readonly config: UsherConfig;
  readonly tables: ReadonlyMap<string, RouteTable>;
  /** Each HTTP listener's filter chains, by route index. */
  readonly filters: ReadonlyMap<string, readonly FilterChain[]>;
}

/**
 * Compiles route tables and filter chains; throws on a route that names no
 * pool, a filter module that was not loaded, or a filter's `create()` that
 * throws. `logger` is where filters log (forwardAuth's failures).
 */
/** The response cache's limits when the file has no top-level `cache`. */
const DEFAULT_CACHE: CacheConfig = { maxBytes: 256 * 1024 * 1024, maxObjectSize: 8 * 1024 * 1024, maxVariants: 16 };

export function compileSnapshotRoutes(config: UsherConfig, logger: Logger = silentLogger(), responseCache: ResponseCache = new ResponseCache(), rateLimits: RateLimitStore = new RateLimitStore(true)): CompiledRoutes {
  const rateLimiters = new Map<string, Limiter>();
  for (const [name, policy] of Object.entries(config.rateLimits ?? {})) rateLimiters.set(name, rateLimits.limiter(name, policy, config.redis));
  const caching = config.listeners.some((listener) => listener.routes.some((route) => route.filters?.some((filter) => filter.kind === 'cache') === true));
  if (caching) responseCache.configure(config.cache ?? DEFAULT_CACHE);
  else responseCache.enabled = false;
  const tables = new Map<string, RouteTable>();
  const filters = new Map<string, readonly FilterChain[]>();
  for (const listener of config.listeners) {
    const routes = compileRoutes(listener.routes);
    for (const route of routes.routes) {
      // The config validator rejects these; this guards embedders who build configs by hand.
      const split = listener.routes[route.index]!.split;
      for (const entry of split ?? []) if (entry.pool !== undefined && config.pools[entry.pool] === undefined) throw new Error(`listener ${listener.name}: route ${route.name} names unknown pool ${entry.pool}`);
      if (route.pool === undefined) {
        if (route.redirect === undefined && split === undefined) throw new Error(`listener ${listener.name}: route ${route.name} has neither a pool nor a redirect`);
      } else if (config.pools[route.pool] === undefined) {
        throw new Error(`listener ${listener.name}: route ${route.name} names unknown pool ${route.pool}`);
      }
    }
    tables.set(listener.name, routes);
    if (listener.protocol === 'http' || listener.protocol === 'https') {
      const context = { listener: listener.name, proto: listener.protocol, logger, responseCache, rateLimiters } as const;
      filters.set(listener.name, routes.routes.map((route) => compileFilterChain(listener.routes[route.index]!, route, context)));
    }
  }
  return { config, tables, filters };
}

/** Where plans record their metrics; kept by the runtime across reloads. */
export interface SnapshotMetrics {
  readonly http: HttpMetrics;
  readonly l4: L4Metrics;
}

/**
 * Applies compiled routes: pools that stay are reconfigured in place, new ones
 * are created, and those no longer named are returned for the caller to close
 * once nothing uses them. Route metrics of routes that stay are carried over;
 * without `metrics` the plans record into stores no one reads.
 */
export function applySnapshot<P extends ServedPool = Pool>(
  compiled: CompiledRoutes,
  previous: Snapshot<P> | undefined,
  accessLog: AccessLog,
  poolOptions: PoolOptions,
  metrics: SnapshotMetrics = { http: new HttpMetrics(), l4: new L4Metrics() },
  makePool: (name: string, config: PoolConfig) => P = (name, config) => new Pool(name, config, poolOptions) as unknown as P,
): { snapshot: Snapshot<P>; retiredPools: P[] } {
  const { config, tables } = compiled;
  const pools = new Map<string, P>();
  for (const [name, poolConfig] of Object.entries(config.pools)) {
    const existing = previous?.pools.get(name);
    if (existing !== undefined) existing.reconfigure(poolConfig);
    pools.set(name, existing ?? makePool(name, poolConfig));
  }
  const retiredPools = previous === undefined ? [] : [...previous.pools.values()].filter((pool) => pools.get(pool.name) !== pool);
  const listeners = new Map<string, HttpListenerPlan>();
  const tcpListeners = new Map<string, TcpListenerPlan>();
  const logger = poolOptions.logger ?? silentLogger();
  metrics.http.begin();
  metrics.l4.begin();
  for (const listener of config.listeners) {
    if (listener.protocol === 'tcp' || listener.protocol === 'tls-passthrough') {
      tcpListeners.set(listener.name, compileTcpPlan(listener, (name) => pools.get(name)?.runtime, logger, { metrics: metrics.l4 }));
    } else {
      listeners.set(listener.name, planOf(listener, tables.get(listener.name)!, compiled.filters.get(listener.name)!, pools, accessLog, metrics.http, logger));
    }
  }
  metrics.http.commit();
  metrics.l4.commit();
  return { snapshot: { config, pools, listeners, tcpListeners }, retiredPools };
}

function planOf(listener: ListenerConfig, routes: RouteTable, filters: readonly FilterChain[], pools: ReadonlyMap<string, ServedPool>, accessLog: AccessLog, metrics: HttpMetrics, logger: Logger): HttpListenerPlan {
  // Redirect routes have no pool: their slot stays undefined so indexes still line up.
  const poolOfRoute = routes.routes.map((route) => (route.pool === undefined ? undefined : pools.get(route.pool)!.runtime));
  const proto = listener.protocol === 'https' ? 'https' : 'http';
  const splitOfRoute = routes.routes.map((route): RouteSplit | undefined => {
    const split = listener.routes[route.index]?.split;
    if (split === undefined) return undefined;
    let total = 0;
    const cumulative: number[] = [];
    for (const entry of split) cumulative.push((total += entry.weight));
    return { pools: split.map((entry) => (entry.pool === undefined ? undefined : pools.get(entry.pool)!.runtime)), cumulative, total };
  });
  return {
    name: listener.name,
    proto,
    routes,
    poolOfRoute,
    ...(splitOfRoute.some((s) => s !== undefined) ? { splitOfRoute } : {}),
    filtersOfRoute: filters,
    accessLog,
    metrics: metrics.listener(listener.name, routes.routes),
    settings: downstreamSettings(listener),
    logger,
  };
}

/** The client-side settings of a listener, resolved once per config. */
export function downstreamSettings(listener: ListenerConfig): DownstreamSettings {
  const { limits, timeouts } = listener;
  return {
    limits: { maxHeadBytes: limits.maxHeaderBytes, maxHeaders: limits.maxHeaders, maxTargetBytes: limits.maxUriBytes },
    keepAliveTimeoutMs: timeouts.keepAliveMs,
    headerTimeoutMs: timeouts.headerMs,
    bodyIdleTimeoutMs: timeouts.bodyIdleMs,
    sendTimeoutMs: timeouts.sendMs,
    tunnelIdleTimeoutMs: timeouts.tunnelIdleMs,
    maxBodyBytes: limits.maxBodyBytes,
    maxRequestsPerConnection: limits.maxRequestsPerConnection,
    maxConnections: limits.maxConnections,
    maxConnectionsPerClient: limits.maxConnectionsPerClient,
  };
}
