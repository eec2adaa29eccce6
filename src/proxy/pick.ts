import { hashString } from '../balancer/hash-fn.ts';
import type { PickContext } from '../balancer/types.ts';
import { UsherError } from '../errors.ts';
import type { AccessLog } from '../observe/access-log.ts';
import type { Backend } from '../pool/backend.ts';
import type { Pool } from '../pool/pool.ts';
import { cookiesOf, type RouteRequest } from '../route/request.ts';
import type { CompiledRoute, RouteTable } from '../route/table.ts';
import { hashKeyOf } from './hash-key.ts';

/**
 * What one HTTP listener serves, compiled from config and swapped as a whole on
 * reload: a request reads it once at its start and keeps that view to the end.
 */
export interface HttpListenerPlan {
  readonly name: string;
  readonly proto: 'http' | 'https';
  readonly routes: RouteTable;
  /** Pool of each route, by route index: resolved at compile time, not per request. */
  readonly poolOfRoute: readonly Pool[];
  readonly accessLog: AccessLog;
}

/** The outcome of the route and pick phases for one request. */
export interface Decision {
  readonly route: CompiledRoute;
  readonly pool: Pool;
  readonly backend: Backend;
  /** A `Set-Cookie` value to add to the response (sticky sessions), or undefined. */
  readonly setCookie: string | undefined;
}

const nothingTried: readonly number[] = [];

/**
 * Route phase then pick phase: the first matching route names a pool; the
 * sticky cookie, else the pool's balancer, names a backend. Returns the
 * decision or the error to answer with (404 no route, 503 no backend).
 */
export function decide(plan: HttpListenerPlan, request: RouteRequest, clientIp: string): Decision | UsherError {
  const route = plan.routes.match(request);
  if (route === undefined) return new UsherError('USHER_NO_ROUTE', `no route of listener ${plan.name} matches`);
  const pool = plan.poolOfRoute[route.index]!;
  const ctx: PickContext = { hash: 0, tried: nothingTried };
  if (pool.hashKey !== undefined) ctx.hash = hashString(hashKeyOf(pool.hashKey, request, clientIp));

  const sticky = pool.sticky;
  let backend: Backend | undefined;
  let token: string | undefined;
  if (sticky !== undefined) {
    token = cookiesOf(request).get(sticky.name);
    if (token !== undefined) backend = pool.pinned(token, ctx);
  }
  backend ??= pool.pick(ctx);
  if (backend === undefined) return new UsherError('USHER_NO_BACKEND', `pool ${pool.name} has no available backend`);
  const setCookie = sticky !== undefined && token !== backend.stickyToken ? sticky.setCookie(backend.stickyToken) : undefined;
  return { route, pool, backend, setCookie };
}
