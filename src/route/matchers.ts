/**
 * One small matcher per route match key. Everything that can be decided from
 * the config is decided by a `compile*` function at config time; the `match*`
 * functions run per request and do not allocate.
 *
 * Semantics (see also docs on `MatchConfig` in `config/types.ts`):
 * - host: exact and case-insensitive (RFC 9110 §4.2.3), port ignored, one
 *   trailing dot ignored (`example.com.` is the same FQDN; nginx strips it too).
 *   `*.example.com` matches one or more non-empty labels before
 *   `.example.com` (`a.example.com`, `a.b.example.com`) but not `example.com`
 *   itself, as nginx `server_name *.example.com` and Envoy `domains` do. Only
 *   this leading form is supported (no `www.example.*`, no `*` alone: omit
 *   `host` to match any host). A request without a host never matches a host key.
 * - path: exact and case-sensitive on the raw path as received: no percent-
 *   decoding, no dot-segment removal, no slash merging. `/%61dmin` and
 *   `/x/../admin` do not match `/admin` here but a backend may read them as
 *   `/admin`; do not use routes as an access-control list until path
 *   normalisation (Envoy `normalize_path`, `merge_slashes`) lands in the
 *   hardening work.
 * - pathPrefix: segment-aware, like Envoy's `path_separated_prefix`: `/api`
 *   matches `/api`, `/api/` and `/api/x`, not `/apix`. A prefix ending in `/`
 *   (`/api/`) matches paths starting with it, so `/` matches every path.
 * - pathRegex and `~regex` values: JavaScript regexes that must match the WHOLE
 *   value, like Envoy's `safe_regex` (compiled as `^(?:re)$`); write `.*foo.*`
 *   to search. No flags; use `(?i:...)` for case-insensitivity. JS regexes
 *   backtrack (Envoy uses RE2 to avoid this): config is trusted, but avoid
 *   nested quantifiers on client-controlled values.
 * - methods: exact, case-sensitive (RFC 9110 §9.1); config names are
 *   upper-cased at compile time. `HEAD` is not implied by `GET`.
 * - values (headers, query, cookies): exact and case-sensitive, or `~regex`.
 *   A value starting with `~` literally is written `~~...` (regex `~...`).
 *   An absent header/parameter/cookie never matches, not even `~.*`; the
 *   empty value `''` matches a present-but-empty one.
 */

import { RouteConfigError } from './errors.ts';
import type { RouteHeaders } from './request.ts';

/** A compiled host key: exact lowercase name, or a lowercase `.suffix` for `*.suffix`. */
export type HostMatcher =
  | { readonly kind: 'exact'; readonly name: string }
  | { readonly kind: 'wildcard'; readonly suffix: string; readonly oneLabel?: boolean };

/** A compiled match value: exact string, or an anchored regex. */
export type ValueMatcher =
  | { readonly kind: 'exact'; readonly value: string }
  | { readonly kind: 'regex'; readonly regex: RegExp };

/** A compiled header, query or cookie key: name and value matcher. */
export interface NamedMatcher {
  readonly name: string;
  readonly value: ValueMatcher;
}

/**
 * Compiles a `host` key; throws {@link RouteConfigError} on an unsupported
 * pattern (`*`, `www.example.*`, nginx's `.example.com`) or a port.
 */
export function compileHost(pattern: string, field: string, oneLabel = false): HostMatcher {
  let name = pattern.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  const wildcard = name.startsWith('*.');
  const rest = wildcard ? name.slice(1) : name;
  if (rest === '' || rest === '.' || rest.includes('*') || (!wildcard && rest.startsWith('.'))) {
    throw new RouteConfigError(
      'invalid-host',
      field,
      `host must be a name or "*.name" (omit host to match any host), got ${JSON.stringify(pattern)}`,
    );
  }
  if (hostEnd(rest) !== rest.length) {
    throw new RouteConfigError('invalid-host', field, `host must not include a port, got ${JSON.stringify(pattern)}`);
  }
  return wildcard ? { kind: 'wildcard', suffix: rest, ...(oneLabel ? { oneLabel: true } : {}) } : { kind: 'exact', name: rest };
}

/** Matches a Host header value (any case, optional port, optional trailing dot). */
export function matchHost(matcher: HostMatcher, host: string | undefined): boolean {
  if (host === undefined) return false;
  let end = hostEnd(host);
  if (end > 0 && host.charCodeAt(end - 1) === 0x2e /* . */) end--;
  if (matcher.kind === 'exact') {
    return end === matcher.name.length && equalsLowerAscii(host, 0, matcher.name);
  }
  const start = end - matcher.suffix.length;
  // start > 0: at least one character before the suffix's leading dot.
  if (!(start > 0 && equalsLowerAscii(host, start, matcher.suffix))) return false;
  if (matcher.oneLabel === true) {
    for (let i = 0; i < start; i++) if (host.charCodeAt(i) === 0x2e /* . */) return false;
  }
  return true;
}

/** Segment-aware prefix test; see the module comment. */
export function matchPathPrefix(prefix: string, path: string): boolean {
  if (!path.startsWith(prefix)) return false;
  return (
    path.length === prefix.length ||
    prefix.charCodeAt(prefix.length - 1) === 0x2f /* / */ ||
    path.charCodeAt(prefix.length) === 0x2f
  );
}

/** Compiles a regex so that it must match the whole input; throws {@link RouteConfigError}. */
export function compileRegex(source: string, field: string): RegExp {
  try {
    // Validate the source alone first: `a)|(b` is invalid, but `^(?:a)|(b)$` would compile.
    new RegExp(source);
    return new RegExp(`^(?:${source})$`);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new RouteConfigError('invalid-regex', field, `invalid regular expression: ${reason}`, { cause: error });
  }
}

/** Compiles a match value: `~regex` or an exact string. */
export function compileValue(value: string, field: string): ValueMatcher {
  return value.startsWith('~')
    ? { kind: 'regex', regex: compileRegex(value.slice(1), field) }
    : { kind: 'exact', value };
}

/** Tests one value; `undefined` (absent) never matches. */
export function matchValue(matcher: ValueMatcher, value: string | undefined): boolean {
  if (value === undefined) return false;
  return matcher.kind === 'exact' ? value === matcher.value : matcher.regex.test(value);
}

/**
 * Tests a header. node:http joins most repeated headers into one string
 * (`a, b`), which is what the value must match; when the header is an array
 * (e.g. built by hand), any element may match.
 */
export function matchHeader(matcher: NamedMatcher, headers: RouteHeaders): boolean {
  const value = headers[matcher.name];
  if (typeof value === 'string' || value === undefined) return matchValue(matcher.value, value);
  for (let i = 0; i < value.length; i++) {
    if (matchValue(matcher.value, value[i])) return true;
  }
  return false;
}

/**
 * Compiles `headers` (names lower-cased), `query` or `cookies` (names kept as
 * written: both are case-sensitive). Exact values are ordered before regexes.
 */
export function compileNamed(
  entries: Readonly<Record<string, string>>,
  field: string,
  lowerCaseNames: boolean,
): readonly NamedMatcher[] {
  const compiled = Object.entries(entries).map(([name, value]) => ({
    name: lowerCaseNames ? name.toLowerCase() : name,
    value: compileValue(value, `${field}.${name}`),
  }));
  return Object.freeze(compiled.sort((a, b) => rank(a.value) - rank(b.value)));
}

/** Whether every matcher holds on `values` (a parsed query or cookie map). */
export function matchNamed(matchers: readonly NamedMatcher[], values: ReadonlyMap<string, string>): boolean {
  for (let i = 0; i < matchers.length; i++) {
    const matcher = matchers[i] as NamedMatcher;
    if (!matchValue(matcher.value, values.get(matcher.name))) return false;
  }
  return true;
}

function rank(matcher: ValueMatcher): number {
  return matcher.kind === 'exact' ? 0 : 1;
}

/** End of the host part of `host[:port]` or `[v6]:port`. */
function hostEnd(host: string): number {
  if (host.charCodeAt(0) === 0x5b /* [ */) {
    const close = host.indexOf(']');
    return close === -1 ? host.length : close + 1;
  }
  const colon = host.indexOf(':');
  return colon === -1 ? host.length : colon;
}

/** Whether `source` at `offset` equals `lower` (already lower-case), ASCII case-insensitively. */
function equalsLowerAscii(source: string, offset: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    let c = source.charCodeAt(offset + i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20; // A-Z
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}
