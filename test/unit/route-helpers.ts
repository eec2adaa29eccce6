/** Shared helpers for the route unit tests (not a test file itself). */

import type { RouteConfig } from '../../src/config/types.ts';
import { compileRoutes, createRouteRequest, type RouteHeaders, type RouteRequest } from '../../src/route/index.ts';

/** Builds a request the way the proxy does, from method, url and headers. */
export function req(url: string, options: { method?: string; host?: string; headers?: RouteHeaders } = {}): RouteRequest {
  const headers: RouteHeaders = {
    ...(options.host === undefined ? {} : { host: options.host }),
    ...options.headers,
  };
  return createRouteRequest(options.method ?? 'GET', url, headers);
}

/** Compiles a single route with `match` and returns whether `request` matches it. */
export function matches(match: RouteConfig['match'], request: RouteRequest): boolean {
  return compileRoutes([{ match, pool: 'p' }]).match(request) !== undefined;
}
