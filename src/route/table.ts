/**
 * The compiled route table: routes from one listener's config, compiled once
 * when the config snapshot is built, then matched per request.
 *
 * The first route whose keys all hold wins, in file order, as in Envoy's
 * route list and nginx's regex locations (not Traefik's rule-length priority). A route
 * without `match` (or with an empty one) is a catch-all. No match → `undefined`;
 * the proxy answers 404 (`USHER_NO_ROUTE`).
 *
 * Cost: O(routes) per request. Checks run cheap-first: method, host, path,
 * prefix, exact headers, then regexes, then query and cookies (parsed lazily,
 * at most once per request, memoised on the request). With no query or cookie
 * keys, matching allocates nothing.
 */

import type { MatchConfig, RedirectConfig, RouteConfig } from '../config/types.ts';
import { RouteConfigError } from './errors.ts';
import {
  compileHost,
  compileNamed,
  compileRegex,
  matchHeader,
  matchHost,
  matchNamed,
  matchPathPrefix,
  type HostMatcher,
  type NamedMatcher,
} from './matchers.ts';
import { cookiesOf, queryParamsOf, type RouteRequest } from './request.ts';
import { compileStripPrefix, stripPrefix } from './strip-prefix.ts';

/** A route ready for the data plane. */
export interface CompiledRoute {
  /** Position in the listener's `routes` list, from 0. */
  readonly index: number;
  /**
   * `name` from the config, else `route-<index>`. Unique per table. The default
   * changes when routes are reordered, so set `name` for stable metric labels.
   */
  readonly name: string;
  /** The pool requests on this route go to; `undefined` when the route redirects instead. */
  readonly pool: string | undefined;
  /** The redirect this route answers with instead of proxying; `undefined` when it has a pool. */
  readonly redirect: RedirectConfig | undefined;
  /** Normalised `stripPrefix` (no trailing slash), or `undefined` when none. */
  readonly stripPrefix: string | undefined;
  /** True when the route has no match keys. */
  readonly catchAll: boolean;
  /** True when the route matches on `host`: only such routes accept absolute-form targets. */
  readonly namesHost: boolean;
  /** True when `methods` lists CONNECT: only such routes accept CONNECT requests. */
  readonly allowsConnect: boolean;
  /** Whether every match key holds for `req`. */
  matches(req: RouteRequest): boolean;
  /** The origin-form target (`path?query`) to send upstream; `target` itself when nothing changes. */
  rewritePath(target: string): string;
}

const EMPTY: readonly never[] = Object.freeze([]);

class Route implements CompiledRoute {
  readonly index: number;
  readonly name: string;
  readonly pool: string | undefined;
  readonly redirect: RedirectConfig | undefined;
  readonly stripPrefix: string | undefined;
  readonly catchAll: boolean;
  readonly namesHost: boolean;
  readonly allowsConnect: boolean;
  readonly #methods: ReadonlySet<string> | undefined;
  readonly #host: HostMatcher | undefined;
  readonly #path: string | undefined;
  readonly #pathPrefix: string | undefined;
  readonly #pathRegex: RegExp | undefined;
  readonly #headers: readonly NamedMatcher[];
  readonly #query: readonly NamedMatcher[];
  readonly #cookies: readonly NamedMatcher[];

  constructor(config: RouteConfig, index: number, name: string) {
    const field = `routes[${index}]`;
    const match: MatchConfig = config.match ?? {};
    this.index = index;
    this.name = name;
    this.pool = config.pool;
    this.redirect = config.redirect;
    this.stripPrefix =
      config.stripPrefix === undefined ? undefined : compileStripPrefix(config.stripPrefix, `${field}.stripPrefix`);
    this.#methods = match.methods === undefined ? undefined : compileMethods(match.methods, `${field}.match.methods`);
    this.#host = match.host === undefined ? undefined : compileHost(match.host, `${field}.match.host`, match.hostOneLabel === true);
    this.#path = match.path;
    this.#pathPrefix = match.pathPrefix;
    this.#pathRegex =
      match.pathRegex === undefined ? undefined : compileRegex(match.pathRegex, `${field}.match.pathRegex`);
    this.#headers = match.headers === undefined ? EMPTY : compileNamed(match.headers, `${field}.match.headers`, true);
    this.#query = match.query === undefined ? EMPTY : compileNamed(match.query, `${field}.match.query`, false);
    this.#cookies = match.cookies === undefined ? EMPTY : compileNamed(match.cookies, `${field}.match.cookies`, false);
    this.namesHost = this.#host !== undefined;
    this.allowsConnect = this.#methods?.has('CONNECT') ?? false;
    this.catchAll =
      this.#methods === undefined &&
      this.#host === undefined &&
      this.#path === undefined &&
      this.#pathPrefix === undefined &&
      this.#pathRegex === undefined &&
      this.#headers.length === 0 &&
      this.#query.length === 0 &&
      this.#cookies.length === 0;
    Object.freeze(this);
  }

  matches(req: RouteRequest): boolean {
    if (this.#methods !== undefined && !this.#methods.has(req.method)) return false;
    if (this.#host !== undefined && !matchHost(this.#host, req.host)) return false;
    if (this.#path !== undefined && req.path !== this.#path) return false;
    if (this.#pathPrefix !== undefined && !matchPathPrefix(this.#pathPrefix, req.path)) return false;
    const headers = this.#headers;
    for (let i = 0; i < headers.length; i++) {
      if (!matchHeader(headers[i] as NamedMatcher, req.headers)) return false;
    }
    if (this.#pathRegex !== undefined && !this.#pathRegex.test(req.path)) return false;
    if (this.#query.length > 0 && !matchNamed(this.#query, queryParamsOf(req))) return false;
    if (this.#cookies.length > 0 && !matchNamed(this.#cookies, cookiesOf(req))) return false;
    return true;
  }

  rewritePath(target: string): string {
    return this.stripPrefix === undefined ? target : stripPrefix(this.stripPrefix, target);
  }
}

/** A frozen, ordered list of compiled routes. Build with {@link compileRoutes}. */
export class RouteTable {
  /** The routes in config order. */
  readonly routes: readonly CompiledRoute[];
  readonly #routes: readonly Route[];

  constructor(routes: readonly Route[]) {
    this.#routes = Object.freeze([...routes]);
    this.routes = this.#routes;
    Object.freeze(this);
  }

  /** The first route whose keys all hold, or `undefined` (the proxy answers 404). */
  match(req: RouteRequest): CompiledRoute | undefined {
    const routes = this.#routes;
    for (let i = 0; i < routes.length; i++) {
      const route = routes[i] as Route;
      if (route.matches(req)) return route;
    }
    return undefined;
  }
}

/**
 * Compiles one listener's routes. Throws {@link RouteConfigError} for an
 * invalid regex, host pattern, empty `methods`, a `stripPrefix` not starting
 * with `/`, or two routes with the same (explicit or default) name.
 */
export function compileRoutes(routes: readonly RouteConfig[]): RouteTable {
  const names = new Set<string>();
  const compiled = routes.map((config, index) => {
    const name = config.name ?? `route-${index}`;
    if (names.has(name)) {
      throw new RouteConfigError('duplicate-name', `routes[${index}].name`, `route name ${JSON.stringify(name)} is already used`);
    }
    names.add(name);
    return new Route(config, index, name);
  });
  return new RouteTable(compiled);
}

function compileMethods(methods: readonly string[], field: string): ReadonlySet<string> {
  if (methods.length === 0) {
    throw new RouteConfigError('invalid-methods', field, 'methods must list at least one method (omit it to match any)');
  }
  return new Set(methods.map((method) => method.toUpperCase()));
}
