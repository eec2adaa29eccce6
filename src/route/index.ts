/**
 * Request routing: compile a listener's routes into a {@link RouteTable} at
 * config time; match a {@link RouteRequest} against it per request.
 */

export { compileRoutes, RouteTable, type CompiledRoute } from './table.ts';
export { cookiesOf, createRouteRequest, queryParamsOf, type RouteHeaders, type RouteRequest } from './request.ts';
export { RouteConfigError, type RouteConfigErrorKind } from './errors.ts';
export { parseQuery, decodeFormComponent } from './query.ts';
export { parseCookies } from './cookies.ts';
export { stripPrefix, compileStripPrefix } from './strip-prefix.ts';
