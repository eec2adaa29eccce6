import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { hashString } from '../balancer/hash-fn.ts';
import type { PickContext } from '../balancer/types.ts';
import { UsherError } from '../errors.ts';
import type { AccessLog } from '../observe/access-log.ts';
import type { Pool } from '../pool/pool.ts';
import { cookiesOf, createRouteRequest } from '../route/request.ts';
import type { CompiledRoute, RouteTable } from '../route/table.ts';
import { Exchange } from './exchange.ts';
import { hashKeyOf } from './hash-key.ts';
import { clientAddress, upstreamRequestHeaders } from './headers.ts';

/**
 * What one HTTP listener serves, compiled from config and swapped as a whole on
 * reload: requests read it once at the start and keep that view to the end.
 */
export interface HttpListenerPlan {
  readonly name: string;
  readonly proto: 'http' | 'https';
  readonly routes: RouteTable;
  /** Pool of each route, by route index: resolved at compile time, not per request. */
  readonly poolOfRoute: readonly Pool[];
  readonly accessLog: AccessLog;
}

const nothingTried: readonly number[] = [];

/**
 * The L7 request path, in fixed phases:
 * route → pick backend (sticky, hash, balancer) → forward upstream → stream
 * the response back (see exchange.ts) → log. Every failure becomes an
 * `UsherError` answered by one function.
 */
export function handleHttpRequest(plan: HttpListenerPlan, req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket;
  const clientIp = clientAddress(socket.remoteAddress);
  const exchange = new Exchange({
    req,
    res,
    listener: plan.name,
    clientIp,
    accessLog: plan.accessLog,
    startedAt: performance.now(),
    bytesReadAtStart: socket.bytesRead,
  });
  const method = req.method ?? 'GET';
  const request = createRouteRequest(method, req.url ?? '/', req.headers);

  // Phase: route.
  const route: CompiledRoute | undefined = plan.routes.match(request);
  if (route === undefined) {
    exchange.fail(new UsherError('USHER_NO_ROUTE', `no route of listener ${plan.name} matches`));
    return;
  }
  const pool = plan.poolOfRoute[route.index]!;
  exchange.route = route.name;
  exchange.pool = pool;

  // Phase: pick a backend. Sticky first, then the pool's algorithm.
  const ctx: PickContext = { hash: 0, tried: nothingTried };
  if (pool.hashKey !== undefined) ctx.hash = hashString(hashKeyOf(pool.hashKey, request, clientIp));
  let backend;
  const sticky = pool.sticky;
  let stickyToken: string | undefined;
  if (sticky !== undefined) {
    stickyToken = cookiesOf(request).get(sticky.name);
    if (stickyToken !== undefined) backend = pool.pinned(stickyToken, ctx);
  }
  backend ??= pool.pick(ctx);
  if (backend === undefined) {
    exchange.fail(new UsherError('USHER_NO_BACKEND', `pool ${pool.name} has no available backend`));
    return;
  }
  if (sticky !== undefined && stickyToken !== backend.stickyToken) {
    exchange.setCookie = sticky.setCookie(backend.stickyToken);
  }

  // Phase: forward.
  const timeouts = pool.config.timeouts;
  const options: Dispatcher.DispatchOptions = {
    method,
    path: route.rewritePath(request.target),
    headers: upstreamRequestHeaders(req.rawHeaders, { clientIp, proto: plan.proto }),
    body: hasBody(req) ? req : null,
    headersTimeout: timeouts.responseMs,
    bodyTimeout: timeouts.responseMs,
  };
  exchange.forward(backend, options);
}

/** RFC 9112 §6.3: a request has a body when it declares one. */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return length !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}
