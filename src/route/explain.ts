/**
 * Why a route matches a request or not, in words: the slow twin of
 * `Route.matches` (table.ts), used only by `usher explain`. The request path
 * keeps its allocation-free matchers; this file compiles the same config
 * with the same `compile*` functions and checks the keys in the same order,
 * so the first failure it names is the one that stopped the route.
 * `usher explain` also asks the compiled table and refuses to answer if the
 * two ever disagree.
 */
import type { MatchConfig, RouteConfig } from '../config/types.ts';
import { compileHost, compileRegex, compileValue, matchHost, matchPathPrefix, matchValue, type ValueMatcher } from './matchers.ts';
import { cookiesOf, queryParamsOf, type RouteRequest } from './request.ts';

/** A route's match key, as the config names it. */
export type MatchKey = 'methods' | 'host' | 'path' | 'pathPrefix' | 'headers' | 'pathRegex' | 'query' | 'cookies';

/** One condition of a route and whether the request meets it. */
export interface ConditionResult {
  readonly key: MatchKey;
  readonly ok: boolean;
  /** In words: `path /api/x does not start with /admin/`, `header x-canary is missing`. */
  readonly text: string;
}

/** Every condition of a route, in the order the request path checks them. */
export interface RouteMatchExplanation {
  readonly matched: boolean;
  /** Empty for a catch-all route. */
  readonly conditions: readonly ConditionResult[];
  /** The first condition that failed, when the route does not match. */
  readonly firstFailure: ConditionResult | undefined;
}

/**
 * Explains whether `route` matches `request`. Throws `RouteConfigError` on a
 * match key the route table would refuse too (an invalid regex, a host with a port).
 */
export function explainRouteMatch(route: RouteConfig, request: RouteRequest, field = 'route'): RouteMatchExplanation {
  const match: MatchConfig = route.match ?? {};
  const conditions: ConditionResult[] = [];
  // The order of Route.matches: methods, host, path, pathPrefix, headers (exact ones first), pathRegex, query, cookies.
  if (match.methods !== undefined) conditions.push(explainMethod(match.methods, request.method));
  if (match.host !== undefined) conditions.push(explainHost(match.host, request.host, `${field}.match.host`));
  if (match.path !== undefined) conditions.push(explainPath(match.path, request.path));
  if (match.pathPrefix !== undefined) conditions.push(explainPathPrefix(match.pathPrefix, request.path));
  for (const [name, value] of exactFirst(match.headers)) conditions.push(explainHeader(name, value, request, `${field}.match.headers.${name}`));
  if (match.pathRegex !== undefined) conditions.push(explainPathRegex(match.pathRegex, request.path, `${field}.match.pathRegex`));
  for (const [name, value] of exactFirst(match.query)) {
    conditions.push(explainNamed('query', `query parameter ${name}`, value, queryParamsOf(request).get(name), `${field}.match.query.${name}`));
  }
  for (const [name, value] of exactFirst(match.cookies)) {
    conditions.push(explainNamed('cookies', `cookie ${name}`, value, cookiesOf(request).get(name), `${field}.match.cookies.${name}`));
  }
  const firstFailure = conditions.find((condition) => !condition.ok);
  return { matched: firstFailure === undefined, conditions, firstFailure };
}

function explainMethod(methods: readonly string[], method: string): ConditionResult {
  const allowed = methods.map((m) => m.toUpperCase());
  const ok = allowed.includes(method);
  return { key: 'methods', ok, text: `method ${method} ${ok ? 'in' : 'not in'} [${allowed.join(', ')}]` };
}

function explainHost(pattern: string, host: string | undefined, field: string): ConditionResult {
  const matcher = compileHost(pattern, field);
  if (host === undefined) return { key: 'host', ok: false, text: `the request has no Host; the route needs host ${pattern}` };
  const ok = matchHost(matcher, host);
  return { key: 'host', ok, text: `host ${host} ${ok ? 'matches' : 'does not match'} ${pattern}` };
}

function explainPath(path: string, requestPath: string): ConditionResult {
  const ok = requestPath === path;
  return { key: 'path', ok, text: `path ${requestPath} ${ok ? 'is' : 'is not'} ${path}` };
}

function explainPathPrefix(prefix: string, path: string): ConditionResult {
  if (matchPathPrefix(prefix, path)) return { key: 'pathPrefix', ok: true, text: `path ${path} starts with ${prefix}` };
  // Segment-aware: `/apix` starts with the characters of `/api` but not with the segment.
  const text = path.startsWith(prefix)
    ? `path ${path} starts with ${prefix} but not at a segment boundary (${prefix}/… or ${prefix} itself)`
    : `path ${path} does not start with ${prefix}`;
  return { key: 'pathPrefix', ok: false, text };
}

function explainPathRegex(source: string, path: string, field: string): ConditionResult {
  const ok = compileRegex(source, field).test(path);
  return { key: 'pathRegex', ok, text: `path ${path} ${ok ? 'matches' : 'does not match'} the regex ${source} (whole path)` };
}

/** A header condition; a repeated header (an array) matches when any of its values does, as `matchHeader`. */
function explainHeader(name: string, expected: string, request: RouteRequest, field: string): ConditionResult {
  const lower = name.toLowerCase();
  const value = request.headers[lower];
  if (value === undefined || typeof value === 'string') return explainNamed('headers', `header ${lower}`, expected, value, field);
  const matcher = compileValue(expected, field);
  const ok = value.some((one) => matchValue(matcher, one));
  const shown = value.map((one) => JSON.stringify(one)).join(', ');
  return { key: 'headers', ok, text: `header ${lower} (${shown}) ${ok ? 'has a value that matches' : 'has no value that matches'} ${describeExpected(matcher, expected)}` };
}

/** A header, query parameter or cookie condition: `cookie plan is missing`, `header x-v is "1", not "2"`. */
function explainNamed(key: MatchKey, what: string, expected: string, value: string | undefined, field: string): ConditionResult {
  const matcher = compileValue(expected, field);
  if (value === undefined) return { key, ok: false, text: `${what} is missing` };
  const ok = matchValue(matcher, value);
  if (matcher.kind === 'exact') return { key, ok, text: ok ? `${what} is ${JSON.stringify(value)}` : `${what} is ${JSON.stringify(value)}, not ${JSON.stringify(expected)}` };
  return { key, ok, text: `${what} ${JSON.stringify(value)} ${ok ? 'matches' : 'does not match'} ${describeExpected(matcher, expected)}` };
}

/** `"1"`, or the regex as written: `~v[23]`. */
function describeExpected(matcher: ValueMatcher, written: string): string {
  return matcher.kind === 'exact' ? JSON.stringify(written) : written;
}

/** Entries with exact values before regexes, as `compileNamed` orders them (stable otherwise). */
function exactFirst(entries: Readonly<Record<string, string>> | undefined): readonly (readonly [string, string])[] {
  if (entries === undefined) return [];
  const all = Object.entries(entries);
  return [...all.filter(([, value]) => !value.startsWith('~')), ...all.filter(([, value]) => value.startsWith('~'))];
}
