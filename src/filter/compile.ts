/**
 * Builds each route's {@link FilterChain} from its config, once per config
 * (start and reload), so nothing about a filter is decided per request. The
 * chain is `stripPrefix` (when set), the route's `filters` in file order, then
 * `redirect` (when set): a redirect answers whatever reaches it, so it is last.
 */
import type { FilterConfig, RouteConfig } from '../config/types.ts';
import type { Logger } from '../observe/logger.ts';
import type { CompiledRoute } from '../route/table.ts';
import { DEFAULT_FILTER_TIMEOUT_MS, FilterChain, NO_FILTERS, type CompiledFilter } from './chain.ts';
import { cacheFilter } from '../cache/filter.ts';
import { DEFAULT_TARGETS } from '../cache/directives.ts';
import type { ResponseCache } from '../cache/response-cache.ts';
import { compressFilter } from '../compress/filter.ts';
import { rateLimitFilter } from '../ratelimit/filter.ts';
import type { Limiter } from '../ratelimit/limiter.ts';
import { forwardAuthFilter } from './forward-auth.ts';
import { headersFilter } from './headers.ts';
import { ipFilter } from './ip.ts';
import { redirectFilter } from './redirect.ts';
import { rewriteFilter, stripPrefixFilter } from './rewrite.ts';

/** What compiling a listener's filters needs besides the route. */
export interface FilterCompileContext {
  readonly listener: string;
  readonly proto: 'http' | 'https';
  readonly logger: Logger;
  /** This thread's response cache, for `cache` filters. */
  readonly responseCache: ResponseCache;
  /** The config's rate-limit policies on this process's tables, for `rateLimit` filters. */
  readonly rateLimiters: ReadonlyMap<string, Limiter>;
}

/** A forwardAuth call is bounded by its own timeout; the chain's bound is a safety net behind it. */
const SAFETY_MARGIN_MS = 1000;

/**
 * The chain of one route. Throws when a module filter was not loaded (the
 * config came from the synchronous `parseConfig`) or its `create` throws.
 */
export function compileFilterChain(config: RouteConfig, route: CompiledRoute, context: FilterCompileContext): FilterChain {
  const filters: CompiledFilter[] = [];
  if (route.stripPrefix !== undefined) filters.push({ filter: stripPrefixFilter(route.stripPrefix), timeoutMs: DEFAULT_FILTER_TIMEOUT_MS });
  for (const entry of config.filters ?? []) filters.push(compileOne(entry, route, context));
  if (route.redirect !== undefined) filters.push({ filter: redirectFilter(route.redirect, context.proto), timeoutMs: DEFAULT_FILTER_TIMEOUT_MS });
  return filters.length === 0 ? NO_FILTERS : new FilterChain(filters);
}

function compileOne(entry: FilterConfig, route: CompiledRoute, context: FilterCompileContext): CompiledFilter {
  switch (entry.kind) {
    case 'headers':
      return { filter: headersFilter(entry), timeoutMs: DEFAULT_FILTER_TIMEOUT_MS };
    case 'rewrite':
      return { filter: rewriteFilter(entry), timeoutMs: DEFAULT_FILTER_TIMEOUT_MS };
    case 'ipAllow':
    case 'ipDeny':
      return { filter: ipFilter(entry.kind, entry.cidrs), timeoutMs: DEFAULT_FILTER_TIMEOUT_MS };
    case 'forwardAuth':
      return { filter: forwardAuthFilter(entry, { logger: context.logger, listener: context.listener, route: route.name }), timeoutMs: entry.timeoutMs + SAFETY_MARGIN_MS };
    case 'cache':
      // The wait for another request's fill has its own bound; the chain's must not cut it first.
      return { filter: cacheFilter(context.responseCache, { lockTimeoutMs: entry.lockTimeoutMs, staleIfErrorS: entry.staleIfErrorS, key: entry.key, targets: DEFAULT_TARGETS, name: 'usher' }), timeoutMs: entry.lockTimeoutMs + SAFETY_MARGIN_MS };
    case 'compress':
      return { filter: compressFilter(entry), timeoutMs: DEFAULT_FILTER_TIMEOUT_MS };
    case 'rateLimit': {
      const limiters = entry.policies.map((name) => {
        const limiter = context.rateLimiters.get(name);
        if (limiter === undefined) throw new Error(`listener ${context.listener}, route ${route.name}: unknown rate-limit policy ${name}`);
        return limiter;
      });
      // A delayed request waits in the request phase: the chain's bound must not cut it first.
      const delay = Math.max(0, ...limiters.map((limiter) => (limiter.config.algorithm === 'gcra' ? limiter.config.maxDelayMs : 0)));
      return { filter: rateLimitFilter(limiters), timeoutMs: delay + SAFETY_MARGIN_MS };
    }
    case 'module': {
      const loaded = entry.loaded;
      if (loaded === undefined) {
        throw new Error(`listener ${context.listener}, route ${route.name}: filter module ${entry.module} was not loaded; load the config with loadConfig or parseConfigAsync (or pass it to resolveModules)`);
      }
      const { definition, options } = loaded;
      let made;
      try {
        made = definition.create(options as never);
      } catch (error) {
        throw new Error(`listener ${context.listener}, route ${route.name}: filter ${definition.name} (${entry.module}): create() threw: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      }
      return { filter: Object.freeze({ ...made, name: definition.name }), timeoutMs: definition.timeoutMs ?? DEFAULT_FILTER_TIMEOUT_MS };
    }
    default: {
      const unreachable: never = entry;
      throw new Error(`unknown filter ${JSON.stringify(unreachable)}`);
    }
  }
}
