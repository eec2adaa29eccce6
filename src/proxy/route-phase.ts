/**
 * The route phase, one function for both fronts (HTTP/1.1 `downstream.ts`,
 * HTTP/2 `h2/session.ts`), so their clients get the same answers from the
 * same code:
 *
 * 1. **match**: the first route whose keys all hold (`route/table.ts`);
 * 2. **refusals**: CONNECT (usher does not tunnel), what the front found
 *    malformed, an absolute-form target that disagrees with Host or that a
 *    catch-all route would serve (421), an HTTP/1.1 client routed to an h2c
 *    pool, a declared body over `maxBodyBytes`;
 * 3. **filters**: the route's chain (`filter/run.ts`): `stripPrefix`, the
 *    route's `filters` in file order, `redirect`;
 * 4. **pick inputs**: the pool's hash key and sticky cookie, read once from
 *    the request as the filters left it, so a retry or a queued request picks
 *    again without re-reading it.
 *
 * A route without filters costs one length check over what routing cost
 * before filters existed, and allocates the same one result object.
 */
import { hashString } from '../balancer/hash-fn.ts';
import { UsherError } from '../errors.ts';
import { FilterRun, type RequestOutcome } from '../filter/run.ts';
import type { PoolRuntime } from '../pool/pool-runtime.ts';
import { cookiesOf, type RouteRequest } from '../route/request.ts';
import type { CompiledRoute } from '../route/table.ts';
import { hashKeyOf } from './hash-key.ts';
import { pickSplit, type Answer, type DownstreamSettings, type Forward, type HttpListenerPlan, type Refusal, type RequestFacts, type RouteOutcome, type Suspended } from './plan.ts';

/**
 * Runs the route phase for one request. `plan` undefined: the listener was
 * removed under the connection (404). The outcome is final, except
 * `suspended` (a filter returned a promise), whose `settled` gives it.
 */
export function routeRequest(plan: HttpListenerPlan | undefined, request: RouteRequest, facts: RequestFacts): RouteOutcome {
  if (plan === undefined) return refusal(undefined, undefined, new UsherError('USHER_NO_ROUTE', 'listener removed'));
  const route = plan.routes.match(request);
  if (route === undefined) {
    const error = request.method === 'CONNECT'
      ? new UsherError('USHER_DOWNSTREAM_CONNECT_REFUSED', 'no route allows CONNECT')
      : new UsherError('USHER_NO_ROUTE', `no route of listener ${plan.name} matches`);
    return refusal(undefined, undefined, error);
  }
  const split = plan.splitOfRoute?.[route.index];
  const pool = split === undefined ? plan.poolOfRoute[route.index] : pickSplit(split);
  // Gateway API: a request sent to a backendRef that cannot be resolved (missing Service, a cross-namespace reference no ReferenceGrant allows) is answered 500.
  if (split !== undefined && pool === undefined) return refusal(route, undefined, new UsherError('USHER_BACKEND_INVALID', `route ${route.name} of listener ${plan.name}: the backend picked could not be resolved`));
  const refused = refuse(route, pool, request, facts, plan.settings);
  if (refused !== undefined) return refusal(route, pool, refused);
  const chain = plan.filtersOfRoute[route.index]!;
  if (chain.length === 0) {
    if (pool === undefined) return refusal(route, pool, new UsherError('USHER_INTERNAL', `route ${route.name} of listener ${plan.name} has neither a pool nor a redirect`));
    return forward(route, pool, request, facts.clientIp, request.target, undefined);
  }
  const run = new FilterRun(chain, plan, route, request, facts, pool);
  const outcome = run.start();
  if (outcome instanceof Promise) {
    // Never rejects: a bug after the filters settled must fail this request, not reach the process as an unhandled rejection.
    const failed = (error: unknown): Refusal => {
      plan.logger.error({ err: error, listener: plan.name, route: route.name }, 'internal error after an asynchronous filter; request failed');
      return refusal(route, pool, new UsherError('USHER_INTERNAL', `route phase of route ${route.name} failed`, { cause: error }));
    };
    const settled = outcome.then((result) => decided(plan, route, pool, request, facts, run, result)).catch(failed);
    return new Suspension(route, pool, run, settled);
  }
  return decided(plan, route, pool, request, facts, run, outcome);
}

/** The outcome once the filters are done with the request. */
function decided(plan: HttpListenerPlan, route: CompiledRoute, pool: PoolRuntime | undefined, request: RouteRequest, facts: RequestFacts, run: FilterRun, outcome: RequestOutcome): Forward | Answer | Refusal {
  // Answered or refused here: nothing of the request outlives this answer (a forwarded one ends when its exchange logs it).
  if (outcome !== undefined || pool === undefined) run.ended();
  if (outcome instanceof UsherError) return refusal(route, pool, outcome);
  if (outcome !== undefined) return { kind: 'answer', route, pool, status: outcome.status, headers: outcome.headers, body: outcome.body, stream: outcome.stream };
  if (pool === undefined) return refusal(route, pool, new UsherError('USHER_INTERNAL', `route ${route.name} of listener ${plan.name} has neither a pool nor a redirect`));
  const needsView = pool.hashKey !== undefined || pool.sticky !== undefined;
  return forward(route, pool, needsView ? run.routeView(request) : request, facts.clientIp, run.target, run);
}

function forward(route: CompiledRoute, pool: PoolRuntime, request: RouteRequest, clientIp: string, target: string, filters: FilterRun | undefined): Forward {
  const hash = pool.hashKey === undefined ? 0 : hashString(hashKeyOf(pool.hashKey, request, clientIp));
  const sticky = pool.sticky;
  const stickyToken = sticky === undefined ? undefined : cookiesOf(request).get(sticky.name);
  return { kind: 'forward', route, pool, hash, stickyToken, target, filters };
}

function refusal(route: CompiledRoute | undefined, pool: PoolRuntime | undefined, error: UsherError): Refusal {
  return { kind: 'fail', route, pool, error };
}

/** A request waiting for an asynchronous filter. */
class Suspension implements Suspended {
  readonly kind = 'suspended';
  readonly route: CompiledRoute;
  readonly pool: PoolRuntime | undefined;
  readonly settled: Promise<Forward | Answer | Refusal>;
  readonly #run: FilterRun;

  constructor(route: CompiledRoute, pool: PoolRuntime | undefined, run: FilterRun, settled: Promise<Forward | Answer | Refusal>) {
    this.route = route;
    this.pool = pool;
    this.#run = run;
    this.settled = settled;
  }

  cancel(): void {
    this.#run.cancel();
  }
}

/**
 * Refuses requests that would make usher an open proxy, that the front found
 * malformed, or that the route's pool cannot take:
 *
 *  - CONNECT reaches only a route whose `methods` list CONNECT; usher does not
 *    tunnel yet, so even then the answer is 501 (never a blind tunnel).
 *  - An absolute-form target (`GET http://a.example/ HTTP/1.1`) must agree with
 *    a Host header when both are present (400), and is served only by a route
 *    that names a `host`: a catch-all route never serves a foreign host (421).
 *  - An HTTP/1.1 client cannot reach an h2c pool (502 `h2c_requires_h2`).
 *  - A declared body over `maxBodyBytes` is refused before any filter runs
 *    (413); a redirect route (no pool) never reads a body, so it is not checked.
 */
function refuse(route: CompiledRoute, pool: PoolRuntime | undefined, request: RouteRequest, facts: RequestFacts, settings: DownstreamSettings): UsherError | undefined {
  if (request.method === 'CONNECT') {
    return route.allowsConnect
      ? new UsherError('USHER_DOWNSTREAM_CONNECT_UNSUPPORTED', 'CONNECT tunnels are not supported')
      : new UsherError('USHER_DOWNSTREAM_CONNECT_REFUSED', `CONNECT ${facts.rawTarget}: no route allows CONNECT`);
  }
  if (facts.malformed !== undefined) return facts.malformed;
  if (facts.absoluteForm) {
    // request.host is the target's authority.
    const hostHeader = facts.hostHeader;
    if (hostHeader !== undefined && !sameAuthority(request.host ?? '', hostHeader, facts.rawTarget)) {
      return new UsherError('USHER_DOWNSTREAM_HOST_MISMATCH', `absolute-form target host ${request.host ?? ''} disagrees with Host ${hostHeader}`);
    }
    if (!route.namesHost) return new UsherError('USHER_DOWNSTREAM_MISDIRECTED', `absolute-form target for ${request.host ?? ''}: no route names that host`);
  }
  if (pool === undefined) return undefined;
  if (pool.config.protocol === 'h2c' && facts.protocol !== 'HTTP/2') {
    return new UsherError('USHER_H2C_REQUIRES_H2', `pool ${pool.name} speaks h2c: use an HTTP/2 client (an https listener with ALPN h2)`);
  }
  const maxBody = settings.maxBodyBytes;
  if (maxBody > 0 && facts.contentLength > maxBody) {
    return new UsherError('USHER_DOWNSTREAM_BODY_TOO_LARGE', `content-length ${facts.contentLength} exceeds maxBodyBytes ${maxBody}`);
  }
  return undefined;
}

/** Case-insensitive authority equality, treating the scheme's default port as absent. */
function sameAuthority(fromTarget: string, fromHeader: string, target: string): boolean {
  const defaultPort = target.charCodeAt(4) === 0x73 || target.charCodeAt(4) === 0x53 ? ':443' : ':80';
  const a = stripPort(fromTarget.toLowerCase(), defaultPort);
  const b = stripPort(fromHeader.toLowerCase(), defaultPort);
  return a === b;
}

function stripPort(authority: string, defaultPort: string): string {
  return authority.endsWith(defaultPort) ? authority.slice(0, -defaultPort.length) : authority;
}
