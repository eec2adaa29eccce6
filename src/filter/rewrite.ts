/**
 * `rewrite` (Gateway API URLRewrite, Traefik ReplacePath / ReplacePathRegex,
 * nginx `rewrite ... break`): change the path sent upstream (the whole path,
 * a prefix, or a regex with `$1` captures) and the Host. The query string is
 * kept. Also the internal form of a route's `stripPrefix`.
 */
import type { RewriteFilterConfig } from '../config/types.ts';
import { stripPrefix } from '../route/strip-prefix.ts';
import type { Filter, FilterRequest } from './filter.ts';

/** `/api/` and `/api` name the same prefix: trailing slashes are dropped (`/` becomes ''). */
function normalise(prefix: string): string {
  let end = prefix.length;
  while (end > 0 && prefix.charCodeAt(end - 1) === 0x2f) end--;
  return prefix.slice(0, end);
}

/**
 * Replaces prefix `from` (normalised) of `path` by `to` at a segment boundary,
 * as `stripPrefix` does: with `/api` → `/v2`, `/api/x` becomes `/v2/x` and
 * `/api` becomes `/v2`; `/apix` is left alone. Returns `path` itself when the prefix does not apply.
 */
export function replacePrefix(path: string, from: string, to: string): string {
  if (!path.startsWith(from)) return path;
  if (path.length !== from.length && path.charCodeAt(from.length) !== 0x2f) return path;
  const rest = path.slice(from.length);
  if (to === '') return rest === '' ? '/' : rest;
  return to + rest;
}

/** The `rewrite` filter of one route. */
export function rewriteFilter(config: RewriteFilterConfig): Filter {
  const { path, prefix, regex, host } = config;
  const from = prefix === undefined ? '' : normalise(prefix.from);
  const to = prefix === undefined ? '' : normalise(prefix.to);
  const pattern = regex === undefined ? undefined : new RegExp(regex.pattern);
  return Object.freeze({
    name: 'rewrite',
    onRequest(request: FilterRequest): undefined {
      if (path !== undefined) request.setPath(path);
      else if (prefix !== undefined) {
        const next = replacePrefix(request.path, from, to);
        if (next !== request.path) request.setPath(next);
      } else if (pattern !== undefined && regex !== undefined) {
        const next = request.path.replace(pattern, regex.replacement);
        if (next !== request.path) request.setPath(next);
      }
      if (host !== undefined) request.setHost(host);
      return undefined;
    },
  });
}

/** A route's `stripPrefix` (compiled, no trailing slash), run as the first filter of its chain. */
export function stripPrefixFilter(prefix: string): Filter {
  return Object.freeze({
    name: 'stripPrefix',
    onRequest(request: FilterRequest): undefined {
      const path = request.path;
      const stripped = stripPrefix(prefix, path);
      if (stripped !== path) request.setPath(stripped);
      return undefined;
    },
  });
}
