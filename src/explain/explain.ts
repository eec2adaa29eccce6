/**
 * `usher explain`: which listener and route a request would take and why,
 * what the route does with it, and where it would go, computed from the
 * config (and, with `--admin`, the running usher's pool state) without
 * sending anything. Pure: the CLI reads the files and the admin API.
 *
 * The route table compiled from the config decides the match, exactly as in
 * the proxy; `route/explain.ts` puts each condition into words. If the two
 * ever disagreed, explain throws rather than print a wrong reason.
 */
import type { PoolView } from '../admin/views.ts';
import { formatHostPort } from '../config/hostport.ts';
import { sourceOf } from '../config/load.ts';
import type { ListenerConfig, RouteConfig, UsherConfig } from '../config/types.ts';
import { redirectLocation } from '../proxy/redirect.ts';
import { explainRouteMatch, type ConditionResult } from '../route/explain.ts';
import { compileRoutes } from '../route/table.ts';
import { explainPool, type PoolExplanation } from './pool.ts';
import { routeRequestOf, type ExplainRequest } from './request.ts';

/** How the listener was chosen, in words. */
export interface ListenerChoice {
  readonly name: string;
  readonly protocol: 'http' | 'https';
  readonly bind: string;
  readonly chosenBy: string;
}

/** A route that was tried: matched, or the first condition that stopped it. */
export interface RouteVerdict {
  readonly index: number;
  readonly name: string;
  readonly matched: boolean;
  /** The first failed condition in words; for the matching route, its conditions joined (or "catch-all"). */
  readonly reason: string;
  readonly conditions: readonly ConditionResult[];
}

/** What the matching route does with the request. */
export interface RouteAction {
  readonly index: number;
  readonly name: string;
  readonly action: 'proxy' | 'redirect';
  readonly pool: string | null;
  /** The request line the backend would see (after `stripPrefix`), for a proxy route. */
  readonly upstream: { readonly method: string; readonly target: string } | null;
  readonly stripPrefix: string | null;
  /** For a redirect route: the status and the Location (null when the request has no usable Host). */
  readonly redirect: { readonly code: number; readonly location: string | null } | null;
  /** The route's filters by name, as the file lists them; null when it has no `filters` key. */
  readonly filters: readonly string[] | null;
}

export interface Explanation {
  readonly request: { readonly method: string; readonly url: string; readonly host: string | null; readonly target: string };
  readonly listener: ListenerChoice;
  /** Routes in order, up to and including the one that matched. */
  readonly routes: readonly RouteVerdict[];
  /** Null when no route matches (usher answers 404). */
  readonly match: RouteAction | null;
  readonly pool: PoolExplanation | null;
}

/** What `usher explain` is given besides the config. */
export interface ExplainOptions {
  /** `--listener NAME`. */
  readonly listener?: string | undefined;
  /** Live pools from `GET /api/pools` (`--admin`). */
  readonly livePools?: readonly PoolView[] | undefined;
}

/** No listener to explain against: `--listener` names none that takes requests (`usage`), or the config has none (`config`). */
export class ListenerChoiceError extends Error {
  readonly kind: 'usage' | 'config';

  constructor(kind: 'usage' | 'config', message: string) {
    super(message);
    this.name = 'ListenerChoiceError';
    this.kind = kind;
  }
}

/**
 * Explains `request` against `config`.
 * @throws ListenerChoiceError when `--listener` names no http/https listener,
 *   or the config has none.
 */
export function explain(config: UsherConfig, request: ExplainRequest, options: ExplainOptions = {}): Explanation {
  const { listener, index: listenerIndex, chosenBy } = chooseListener(config.listeners, request, options.listener);
  const table = compileRoutes(listener.routes);
  const routeRequest = routeRequestOf(request);
  const routes: RouteVerdict[] = [];
  let matched: RouteConfig | undefined;
  let matchedIndex = -1;
  for (const [index, route] of listener.routes.entries()) {
    const compiled = table.routes[index]!;
    const explained = explainRouteMatch(route, routeRequest, `listeners[${listenerIndex}].routes[${index}]`);
    if (explained.matched !== compiled.matches(routeRequest)) {
      throw new Error(`usher explain disagrees with the route table on route ${compiled.name}: a bug, please report it`);
    }
    const reason = explained.matched
      ? explained.conditions.length === 0 ? 'catch-all (no match conditions)' : explained.conditions.map((c) => c.text).join('; ')
      : explained.firstFailure!.text;
    routes.push({ index, name: compiled.name, matched: explained.matched, reason, conditions: explained.conditions });
    if (explained.matched) {
      matched = route;
      matchedIndex = index;
      break;
    }
  }
  const base = {
    request: { method: request.method, url: request.url, host: request.host ?? null, target: request.target },
    listener: { name: listener.name, protocol: listener.protocol as 'http' | 'https', bind: formatHostPort(listener.bind), chosenBy },
    routes,
  };
  if (matched === undefined) return { ...base, match: null, pool: null };
  const compiled = table.routes[matchedIndex]!;
  const filters = filterNames(at(sourceOf(config)?.tree.value, ['listeners', listenerIndex, 'routes', matchedIndex, 'filters']));
  if (compiled.pool === undefined) {
    const redirect = compiled.redirect!;
    const location = redirectLocation(redirect, { host: request.host, target: request.target }, listener.protocol === 'https' ? 'https' : 'http');
    return {
      ...base,
      match: { index: matchedIndex, name: compiled.name, action: 'redirect', pool: null, upstream: null, stripPrefix: null, redirect: { code: redirect.code, location: location ?? null }, filters },
      pool: null,
    };
  }
  const poolName = compiled.pool;
  return {
    ...base,
    match: {
      index: matchedIndex,
      name: compiled.name,
      action: 'proxy',
      pool: poolName,
      upstream: { method: request.method, target: compiled.rewritePath(request.target) },
      stripPrefix: matched.stripPrefix ?? null,
      redirect: null,
      filters,
    },
    pool: explainPool(poolName, config.pools[poolName]!, routeRequest, request.clientIp, options.livePools),
  };
}

/** `--listener`, else the http/https listener bound to the URL's port, else the first http/https listener. */
function chooseListener(
  listeners: readonly ListenerConfig[],
  request: ExplainRequest,
  wanted: string | undefined,
): { listener: ListenerConfig; index: number; chosenBy: string } {
  const http = listeners.map((listener, index) => ({ listener, index })).filter(({ listener }) => listener.protocol === 'http' || listener.protocol === 'https');
  if (wanted !== undefined) {
    const named = listeners.findIndex((listener) => listener.name === wanted);
    if (named === -1) throw new ListenerChoiceError('usage', `no listener is named ${JSON.stringify(wanted)}; listeners: ${listeners.map((l) => l.name).join(', ')}`);
    const listener = listeners[named]!;
    if (listener.protocol !== 'http' && listener.protocol !== 'https') {
      throw new ListenerChoiceError('usage', `listener ${wanted} is a ${listener.protocol} listener; explain takes http and https listeners (routes that match requests)`);
    }
    return { listener, index: named, chosenBy: '--listener' };
  }
  if (http.length === 0) throw new ListenerChoiceError('config', 'the config has no http or https listener');
  if (request.port !== undefined) {
    const onPort = http.filter(({ listener }) => listener.bind.port === request.port);
    const best = onPort.find(({ listener }) => listener.protocol === request.scheme) ?? onPort[0];
    if (best !== undefined) return { ...best, chosenBy: `it is bound to the URL's port ${request.port}` };
  }
  const first = http[0]!;
  const why = request.port === undefined ? 'the first http/https listener' : `the first http/https listener (none is bound to the URL's port ${request.port})`;
  return { ...first, chosenBy: why };
}

/**
 * A route's filters, by name, from its `filters` key as written in the file:
 * read from the source rather than the resolved config, so this works
 * whatever shape the key takes. A string is a name; a mapping names itself
 * with `name`, else `module`, else its single key (`{ setHeaders: … }`).
 * Null when the route has no `filters` key.
 */
export function filterNames(raw: unknown): string[] | null {
  if (raw === undefined || raw === null) return null;
  if (!Array.isArray(raw)) return [String(raw)];
  return raw.map((entry: unknown, i) => {
    if (typeof entry === 'string') return entry;
    if (typeof entry === 'object' && entry !== null) {
      const record = entry as Record<string, unknown>;
      if (typeof record['name'] === 'string') return record['name'];
      if (typeof record['module'] === 'string') return record['module'];
      const keys = Object.keys(record);
      if (keys.length === 1) return keys[0]!;
    }
    return `filters[${i}]`;
  });
}

function at(value: unknown, path: readonly (string | number)[]): unknown {
  let current = value;
  for (const part of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string | number, unknown>)[part];
  }
  return current;
}
