import { hashString } from '../balancer/hash-fn.ts';
import type { RedirectConfig } from '../config/types.ts';
import { UsherError } from '../errors.ts';
import type { AccessLog } from '../observe/access-log.ts';
import type { DownstreamSettings } from './downstream.ts';
import type { PoolRuntime } from '../pool/pool-runtime.ts';
import { cookiesOf, type RouteRequest } from '../route/request.ts';
import type { CompiledRoute, RouteTable } from '../route/table.ts';
import { hashKeyOf } from './hash-key.ts';
import type { ListenerMetrics } from './metrics.ts';

/**
 * What one HTTP listener serves, compiled from config and swapped as a whole on
 * reload: a request reads it once at its start and keeps that view to the end.
 */
export interface HttpListenerPlan {
  readonly name: string;
  readonly proto: 'http' | 'https';
  readonly routes: RouteTable;
  /** The data plane of each route's pool, by route index: resolved at compile time, not per request. `undefined` for redirect routes. */
  readonly poolOfRoute: readonly (PoolRuntime | undefined)[];
  readonly accessLog: AccessLog;
  /** What requests record into: by route index, resolved at compile time like `poolOfRoute`. */
  readonly metrics: ListenerMetrics;
  /** The listener's client-side limits and timeouts. */
  readonly settings: DownstreamSettings;
}

/**
 * The outcome of the route phase: where the request goes and what the pick
 * phase needs, or, for a redirect route, the redirect to answer with (no pool).
 */
export type Decision = ProxyDecision | RedirectDecision;

/** The request goes to a pool. */
export interface ProxyDecision {
  readonly route: CompiledRoute;
  readonly pool: PoolRuntime;
  readonly redirect: undefined;
  /** Hash of the pool's hash key (0 when the pool does not hash). */
  readonly hash: number;
  /** The client's sticky cookie value, if the pool is sticky and the client sent one. */
  readonly stickyToken: string | undefined;
}

/** The route answers with a redirect; no pool is involved. */
export interface RedirectDecision {
  readonly route: CompiledRoute;
  readonly pool: undefined;
  readonly redirect: RedirectConfig;
  readonly hash: 0;
  readonly stickyToken: undefined;
}

/**
 * Route phase: the first matching route names a pool (or a redirect); the
 * request features the pick phase needs (hash key, sticky cookie) are read
 * here, once, so a retry or a queued request picks again without re-reading
 * the request.
 */
export function decide(plan: HttpListenerPlan, request: RouteRequest, clientIp: string): Decision | UsherError {
  const route = plan.routes.match(request);
  if (route === undefined) return new UsherError('USHER_NO_ROUTE', `no route of listener ${plan.name} matches`);
  const pool = plan.poolOfRoute[route.index];
  if (pool === undefined) {
    if (route.redirect === undefined) return new UsherError('USHER_INTERNAL', `route ${route.name} of listener ${plan.name} has neither a pool nor a redirect`);
    return { route, pool: undefined, redirect: route.redirect, hash: 0, stickyToken: undefined };
  }
  const hash = pool.hashKey === undefined ? 0 : hashString(hashKeyOf(pool.hashKey, request, clientIp));
  const sticky = pool.sticky;
  const stickyToken = sticky === undefined ? undefined : cookiesOf(request).get(sticky.name);
  return { route, pool, redirect: undefined, hash, stickyToken };
}
