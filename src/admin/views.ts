import { algorithmName } from '../balancer/algorithm.ts';
import type { ListenerConfig, ListenerProtocol, MatchConfig, RedirectConfig, RouteConfig } from '../config/types.ts';
import { formatHostPort } from '../config/hostport.ts';
import type { DiscoveryView } from '../discovery/pool-discovery.ts';
import type { BackendControl, BackendCounters, BackendState } from '../pool/backend-control.ts';
import type { Pool } from '../pool/pool.ts';
import type { PoolMode } from '../pool/pool-mode.ts';
import type { TrafficSummary } from '../pool/recent-traffic.ts';

/** A backend as the admin API shows it. Addresses are shown: the admin API is for operators. */
export interface BackendView {
  readonly address: string;
  /** The backend's `name` from the config; null when it has none. */
  readonly name: string | null;
  readonly state: BackendState;
  readonly adminState: string;
  readonly healthy: boolean;
  readonly ejected: boolean;
  readonly weight: number;
  /** The weight balancers use now (lower during slow start). */
  readonly effectiveWeight: number;
  readonly backup: boolean;
  /** Found by discovery (DNS), not listed in the file: discovery adds and removes it. */
  readonly discovered: boolean;
  /** A discovered member's priority group (SRV priority), null for the file's backends. */
  readonly priority: number | null;
  /** Discovery says it is terminating but still serving (Kubernetes): drained, used only in the pool's `fallback` mode. */
  readonly terminating: boolean;
  readonly inFlight: number;
  readonly maxConnections: number | null;
  readonly connections: { readonly open: number; readonly idle: number };
  readonly counters: BackendCounters;
  /** The last `windowSeconds`: attempts, errors (failures and 5xx) and latency p50/p99 to response headers. */
  readonly recent: TrafficSummary;
  readonly outlier: { readonly consecutiveFailures: number; readonly ejections: number; readonly ejectedUntil: string | null } | null;
  readonly checks: readonly { readonly at: string; readonly ok: boolean; readonly detail: string; readonly durationMs: number }[];
}

export interface PoolView {
  readonly name: string;
  readonly algorithm: string;
  readonly mode: PoolMode;
  readonly queued: number;
  readonly backends: readonly BackendView[];
  /** The pool's discovery sources and their state (last answer, its age, the last error); null without `discovery`. */
  readonly discovery: DiscoveryView | null;
}

/** A pool as operators see it: control state, and the data plane's queue. */
export function poolView(pool: Pool): PoolView {
  const control = pool.control;
  return {
    name: pool.name,
    algorithm: algorithmName(control.config.algorithm),
    mode: control.mode,
    queued: pool.runtime.queueLength,
    backends: control.backends.map((backend) => backendView(pool, backend)),
    discovery: pool.discovery.view() ?? null,
  };
}

/**
 * A backend as operators see it: its control state, and what the data planes
 * did with it as the control plane sums it (in-flight, connections,
 * counters, recent traffic).
 */
export function backendView(pool: Pool, backend: BackendControl): BackendView {
  const health = pool.control.health;
  const outlier = health.outlierState(backend);
  return {
    address: backend.key,
    name: backend.name ?? null,
    state: backend.state,
    adminState: backend.adminState,
    healthy: backend.healthy,
    ejected: backend.ejected,
    weight: backend.configuredWeight,
    effectiveWeight: Math.round(backend.weight * 1000) / 1000,
    backup: backend.backup,
    discovered: backend.discovered,
    priority: backend.discovered ? backend.priority : null,
    terminating: backend.terminating,
    inFlight: backend.inFlight,
    maxConnections: Number.isFinite(backend.maxConnections) ? backend.maxConnections : null,
    connections: backend.connections,
    counters: backend.counters,
    recent: backend.recent(performance.now()),
    outlier:
      outlier === undefined
        ? null
        : {
            consecutiveFailures: outlier.consecutiveFailures,
            ejections: outlier.ejections,
            ejectedUntil: outlier.ejectedUntil > 0 && backend.ejected ? new Date(outlier.ejectedUntil).toISOString() : null,
          },
    checks: health.recentChecks(backend).map((check) => ({
      at: new Date(check.at).toISOString(),
      ok: check.ok,
      detail: check.detail,
      durationMs: Math.round(check.durationMs * 10) / 10,
    })),
  };
}

/** A listener as the admin API shows it: where it listens and where each route goes. */
export interface ListenerView {
  readonly name: string;
  readonly protocol: ListenerProtocol;
  /** The configured `host:port`. */
  readonly bind: string;
  /** The address bound now (differs from `bind` with port 0); null when not bound. */
  readonly address: string | null;
  readonly routes: readonly RouteView[];
}

export interface RouteView {
  readonly name: string;
  /** Match keys as `key value` strings (`pathPrefix /api`, `header x-env=canary`); empty for a catch-all. */
  readonly match: readonly string[];
  readonly pool: string | null;
  /** The redirect's status and what it changes (`308: scheme https, port 443`); null when the route has a pool. */
  readonly redirect: string | null;
  readonly stripPrefix: string | null;
}

/**
 * @param routeNames - each route's name as the data plane knows it (defaults such as `route-0` included).
 * @param address - the bound address, when known.
 */
export function listenerView(listener: ListenerConfig, routeNames: readonly string[], address: string | null): ListenerView {
  return {
    name: listener.name,
    protocol: listener.protocol,
    bind: formatHostPort(listener.bind),
    address,
    routes: listener.routes.map((route, i) => routeView(route, routeNames[i] ?? route.name ?? `route-${i}`)),
  };
}

function routeView(route: RouteConfig, name: string): RouteView {
  const redirect = route.redirect;
  return {
    name,
    match: route.match === undefined ? [] : matchSummary(route.match),
    pool: route.pool ?? null,
    redirect: redirect === undefined ? null : redirectSummary(redirect),
    stripPrefix: route.stripPrefix ?? null,
  };
}

function matchSummary(match: MatchConfig): string[] {
  const out: string[] = [];
  if (match.sni !== undefined) out.push(`sni ${match.sni}`);
  if (match.host !== undefined) out.push(`host ${match.host}`);
  if (match.path !== undefined) out.push(`path ${match.path}`);
  if (match.pathPrefix !== undefined) out.push(`pathPrefix ${match.pathPrefix}`);
  if (match.pathRegex !== undefined) out.push(`pathRegex ${match.pathRegex}`);
  if (match.methods !== undefined) out.push(`methods ${match.methods.join(',')}`);
  for (const [kind, values] of [['header', match.headers], ['query', match.query], ['cookie', match.cookies]] as const) {
    for (const [key, value] of Object.entries(values ?? {})) out.push(`${kind} ${key}=${value}`);
  }
  return out;
}

function redirectSummary(redirect: RedirectConfig): string {
  const changes: string[] = [];
  if (redirect.scheme !== undefined) changes.push(`scheme ${redirect.scheme}`);
  if (redirect.host !== undefined) changes.push(`host ${redirect.host}`);
  if (redirect.port !== undefined) changes.push(`port ${redirect.port}`);
  return changes.length === 0 ? String(redirect.code) : `${redirect.code}: ${changes.join(', ')}`;
}
