/**
 * `stripPrefix`: remove a leading path prefix before forwarding, keeping the
 * query string (Traefik `StripPrefix`, nginx `proxy_pass http://b/;` in
 * `location /api/`).
 *
 * Unlike Traefik, the prefix is only stripped at a segment boundary: with
 * prefix `/api`, `/api/users?x=1` → `/users?x=1`, `/api` → `/`, `/api?x=1` →
 * `/?x=1`, but `/apix` is forwarded unchanged. A trailing slash in the config
 * (`/api/`) is ignored, so `/api/` and `/api` behave the same; `/` strips
 * nothing. The result always starts with `/`. Matching is on the raw path:
 * `/%61pi/x` is not stripped (see the note on encoding in `matchers.ts`).
 *
 * Not handled: `/api//x` becomes `//x`, which some backends read as a
 * scheme-relative reference when they build redirects; slash merging belongs
 * to the path-normalisation hardening work.
 */

import { RouteConfigError } from './errors.ts';

/**
 * Normalises a configured prefix: must start with `/`; trailing slashes are
 * removed. Returns `undefined` when nothing is left to strip (`/`).
 */
export function compileStripPrefix(prefix: string, field: string): string | undefined {
  if (!prefix.startsWith('/')) {
    throw new RouteConfigError('invalid-strip-prefix', field, `stripPrefix must start with "/", got ${JSON.stringify(prefix)}`);
  }
  let end = prefix.length;
  while (end > 0 && prefix.charCodeAt(end - 1) === 0x2f) end--;
  return end === 0 ? undefined : prefix.slice(0, end);
}

/**
 * Strips a compiled `prefix` (no trailing slash) from an origin-form `target`
 * (`path?query`). Returns `target` itself when the prefix does not apply.
 */
export function stripPrefix(prefix: string, target: string): string {
  if (!target.startsWith(prefix)) return target;
  const n = prefix.length;
  if (n === target.length) return '/';
  const next = target.charCodeAt(n);
  if (next === 0x2f /* / */) return target.slice(n);
  if (next === 0x3f /* ? */) return `/${target.slice(n)}`;
  return target;
}
