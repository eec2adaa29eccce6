import type { ListenerConfig } from '../config/types.ts';
import type { Logger } from '../observe/logger.ts';
import type { PoolRuntime } from '../pool/pool-runtime.ts';
import { compileHost, matchHost, type HostMatcher } from '../route/matchers.ts';
import { compileCidrs } from './cidr.ts';
import { L4Metrics, type L4RouteMetrics } from './metrics.ts';

/**
 * What one L4 listener (`tcp` or `tls-passthrough`) serves, compiled once from
 * config and swapped as a whole on reload; a connection keeps the plan it
 * started with to its end.
 */
export interface TcpListenerPlan {
  readonly name: string;
  readonly protocol: 'tcp' | 'tls-passthrough';
  /**
   * In order; the first match wins. A `tcp` listener has exactly one route
   * (without `sni`). On `tls-passthrough`, a route without `sni` is a catch-all
   * that also takes ClientHellos without SNI.
   */
  readonly routes: readonly L4Route[];
  /** Read a PROXY v1/v2 header first from peers `isTrustedProxy` accepts. */
  readonly acceptProxyProtocol: boolean;
  readonly isTrustedProxy: (ip: string) => boolean;
  /** A tunnel with no byte either way for this long is closed (ListenerTimeoutsConfig.tunnelIdleMs). */
  readonly tunnelIdleMs: number;
  /** The PROXY header and the ClientHello must arrive within this long of the accept. */
  readonly preludeTimeoutMs: number;
  readonly logger: Logger;
  /** Where connections closed before a route was chosen are counted. */
  readonly unrouted: L4RouteMetrics;
}

/** One compiled L4 route. */
export interface L4Route {
  /** The route's name, or `#<index>`; for logs. */
  readonly name: string;
  /** SNI pattern (exact or `*.suffix`); undefined matches every connection. */
  readonly sni: HostMatcher | undefined;
  readonly pool: PoolRuntime;
  readonly metrics: L4RouteMetrics;
}

/**
 * How long a client may take to send its PROXY header and ClientHello: 10 s,
 * nginx's `preread_timeout` is 30 s and HAProxy's `tcp-request inspect-delay`
 * is usually set to 5 s; a real client sends both in its first packet.
 */
export const DEFAULT_PRELUDE_TIMEOUT_MS = 10_000;

/**
 * Compiles an L4 listener's config. SNI patterns follow the HTTP `host`
 * matcher (route/matchers.ts): exact and case-insensitive, `*.example.com`
 * matching one or more labels before `.example.com` but not `example.com`.
 *
 * @param poolOf - the live pool for a pool name.
 * @param options - `metrics`: where the routes record (the runtime keeps one
 *   across reloads); a store of its own when left out.
 * @throws Error when the listener is not an L4 one or a route cannot be
 *   served at L4 (no pool, a redirect, an HTTP match key, `sni` on `tcp`);
 *   the config schema should refuse these first.
 */
export function compileTcpPlan(
  listener: ListenerConfig,
  poolOf: (name: string) => PoolRuntime | undefined,
  logger: Logger,
  options: { readonly preludeTimeoutMs?: number; readonly metrics?: L4Metrics } = {},
): TcpListenerPlan {
  const metrics = options.metrics ?? new L4Metrics();
  const protocol = listener.protocol;
  if (protocol !== 'tcp' && protocol !== 'tls-passthrough') {
    throw new Error(`listener ${listener.name}: protocol ${protocol} is not an L4 protocol`);
  }
  const routes: L4Route[] = [];
  for (const [i, route] of listener.routes.entries()) {
    const where = `listener ${listener.name} routes[${i}]`;
    if (route.pool === undefined || route.redirect !== undefined) throw new Error(`${where}: an L4 route needs a pool and no redirect`);
    const pool = poolOf(route.pool);
    if (pool === undefined) throw new Error(`${where}: unknown pool ${route.pool}`);
    const { sni, ...rest } = route.match ?? {};
    const httpKeys = Object.entries(rest).filter(([, value]) => value !== undefined).map(([key]) => key);
    if (httpKeys.length > 0) throw new Error(`${where}: ${httpKeys.join(', ')} cannot be matched at L4`);
    if (sni !== undefined && protocol === 'tcp') throw new Error(`${where}: sni needs a tls-passthrough listener`);
    const routeName = route.name ?? `#${i}`;
    routes.push({
      name: routeName,
      sni: sni === undefined ? undefined : compileHost(sni, `${where}.match.sni`),
      pool,
      metrics: metrics.route(listener.name, routeName, pool.name),
    });
  }
  if (routes.length === 0) throw new Error(`listener ${listener.name}: no routes`);
  if (protocol === 'tcp' && routes.length > 1) throw new Error(`listener ${listener.name}: a tcp listener has exactly one route`);
  return {
    name: listener.name,
    protocol,
    routes,
    acceptProxyProtocol: listener.acceptProxyProtocol,
    isTrustedProxy: compileCidrs(listener.trustedProxies),
    tunnelIdleMs: listener.timeouts.tunnelIdleMs,
    preludeTimeoutMs: options.preludeTimeoutMs ?? DEFAULT_PRELUDE_TIMEOUT_MS,
    logger,
    unrouted: metrics.route(listener.name, '', ''),
  };
}

/** The route for a ClientHello's server name (undefined when it sent none); undefined when none matches. */
export function routeForServerName(plan: TcpListenerPlan, serverName: string | undefined): L4Route | undefined {
  for (const route of plan.routes) {
    if (route.sni === undefined || (serverName !== undefined && matchHost(route.sni, serverName))) return route;
  }
  return undefined;
}
