/**
 * How long a stored response stays fresh, how old it is, and whether a
 * request may be answered from it without, or despite failing, validation
 * (RFC 9111 §4.2, RFC 5861).
 *
 * All times are ms since the epoch passed in by the caller; results are in
 * seconds (fractional), the unit HTTP uses. Nothing here reads a clock.
 */
import { dateField, DELTA_SECONDS_MAX, fieldLines, hasField, parseDeltaSeconds, splitList, type Fields } from './fields.ts';
import type { CacheDirectives, ResponsePolicy } from './directives.ts';

/** A stored (or just received) response with the two clock readings §4.2.3 needs. */
export interface TimedResponse {
  readonly status: number;
  readonly fields: Fields;
  /** When the request that produced it was sent (ms), `request_time` of §4.2.3. */
  readonly requestTime: number;
  /** When it was received (ms), `response_time` of §4.2.3. */
  readonly responseTime: number;
}

/** Status codes that are heuristically cacheable (RFC 9110 §15.1 as listed in RFC 9111 §4.2.2). */
export const HEURISTIC_STATUSES: ReadonlySet<number> = new Set([200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501]);

/**
 * The longest lifetime a heuristic may give. §4.2.2 suggests 10% of the
 * time since Last-Modified but sets no cap; usher caps it at one hour so a
 * file untouched for years is not served unchanged for months after it
 * finally changes.
 */
export const HEURISTIC_CAP_SECONDS = 3600;
/** The §4.2.2 fraction of (Date − Last-Modified). */
export const HEURISTIC_FRACTION = 0.1;

export type LifetimeSource = 's-maxage' | 'max-age' | 'expires' | 'heuristic' | 'none';

export interface Lifetime {
  readonly seconds: number;
  readonly source: LifetimeSource;
}

/**
 * Freshness lifetime (§4.2.1): `s-maxage`, else `max-age`, else
 * `Expires − Date`, else a heuristic (§4.2.2), else 0. There is no default
 * TTL: a response with no explicit lifetime and no Last-Modified is stale on
 * arrival (it can still be stored and revalidated).
 *
 * `Expires` is ignored when a targeted field governs (RFC 9213 §2.2) and when
 * `max-age` is present (§5.3). An invalid `Expires`, `0` included, means
 * "already expired" (§5.3); of several `Expires` lines the first is used.
 */
export function freshnessLifetime(response: TimedResponse, policy: ResponsePolicy): Lifetime {
  // A stored response and its policy never change (freshening makes a new response), and a hit asks several times.
  const known = lifetimes.get(response);
  if (known !== undefined && known.policy === policy) return known.lifetime;
  const lifetime = computeLifetime(response, policy);
  lifetimes.set(response, { policy, lifetime });
  return lifetime;
}

const lifetimes = new WeakMap<TimedResponse, { readonly policy: ResponsePolicy; readonly lifetime: Lifetime }>();
const initialAges = new WeakMap<TimedResponse, number>();

function computeLifetime(response: TimedResponse, policy: ResponsePolicy): Lifetime {
  const d = policy.directives;
  if (d.sMaxage !== undefined) return { seconds: d.sMaxage, source: 's-maxage' };
  if (d.maxAge !== undefined) return { seconds: d.maxAge, source: 'max-age' };
  if (!policy.targeted && hasField(response.fields, 'expires')) {
    const expires = dateField(response.fields, 'expires', response.responseTime);
    if (expires === undefined) return { seconds: 0, source: 'expires' };
    const date = dateValue(response);
    return { seconds: Math.min(Math.max(0, (expires - date) / 1000), DELTA_SECONDS_MAX), source: 'expires' };
  }
  if (mayUseHeuristic(response.status, d)) {
    const lastModified = dateField(response.fields, 'last-modified', response.responseTime);
    const date = dateValue(response);
    if (lastModified !== undefined && lastModified <= date) {
      const seconds = Math.min(((date - lastModified) / 1000) * HEURISTIC_FRACTION, HEURISTIC_CAP_SECONDS);
      return { seconds, source: 'heuristic' };
    }
  }
  return { seconds: 0, source: 'none' };
}

/** §4.2.2: a heuristic only for a heuristically cacheable status, or one marked cacheable by `public`. */
export function mayUseHeuristic(status: number, d: CacheDirectives): boolean {
  return HEURISTIC_STATUSES.has(status) || d.public;
}

/** `date_value` of §4.2.3: the Date field, or the time received when it is absent or invalid (RFC 9110 §6.6.1). */
function dateValue(response: TimedResponse): number {
  return dateField(response.fields, 'date', response.responseTime) ?? response.responseTime;
}

/**
 * `age_value` of §4.2.3 from the Age field (§5.1): of a list, or several
 * lines, the first member; an invalid value (negative, decimal, text) is
 * ignored, giving 0; a huge one is clamped to 2^31.
 */
export function ageValue(fields: Fields): number {
  const first = fieldLines(fields, 'age').flatMap(splitList)[0];
  return first === undefined ? 0 : (parseDeltaSeconds(first) ?? 0);
}

/** `current_age` of §4.2.3, in seconds, at `now` (ms). */
export function currentAge(response: TimedResponse, now: number): number {
  let correctedInitialAge = initialAges.get(response);
  if (correctedInitialAge === undefined) {
    const apparentAge = Math.max(0, response.responseTime - dateValue(response)) / 1000;
    const responseDelay = Math.max(0, response.responseTime - response.requestTime) / 1000;
    const correctedAgeValue = ageValue(response.fields) + responseDelay;
    correctedInitialAge = Math.max(apparentAge, correctedAgeValue);
    initialAges.set(response, correctedInitialAge);
  }
  const residentTime = Math.max(0, now - response.responseTime) / 1000;
  return correctedInitialAge + residentTime;
}

export interface Freshness {
  readonly lifetime: Lifetime;
  /** current_age, seconds. */
  readonly age: number;
  /** lifetime − age: positive while fresh, the staleness (negated) after; the `ttl` of Cache-Status. */
  readonly ttl: number;
  readonly fresh: boolean;
}

/** Freshness of a stored response at `now` (§4.2): fresh while lifetime > age. */
export function freshness(response: TimedResponse, policy: ResponsePolicy, now: number): Freshness {
  const lifetime = freshnessLifetime(response, policy);
  const age = currentAge(response, now);
  return { lifetime, age, ttl: lifetime.seconds - age, fresh: lifetime.seconds > age };
}

/**
 * True when the response forbids serving it stale in any circumstance
 * (§4.2.4): `must-revalidate` (§5.2.2.2), `proxy-revalidate` (§5.2.2.8) and
 * `s-maxage` (§5.2.2.10, which implies proxy-revalidate in a shared cache),
 * and an unqualified `no-cache`.
 */
export function forbidsStale(d: CacheDirectives): boolean {
  return d.mustRevalidate || d.proxyRevalidate || d.sMaxage !== undefined || d.noCache === true;
}

/**
 * How a request may use a stored response:
 * - `fresh`: serve it;
 * - `stale-while-revalidate`: serve it and revalidate in the background (RFC 5861 §3);
 * - `stale-allowed`: serve it stale because the request's `max-stale` allows it (§5.2.1.2);
 * - `revalidate`: validate with the origin first (and on failure see `mayServeStaleOnError`).
 */
export type Reuse =
  | { readonly kind: 'fresh' }
  | { readonly kind: 'stale-while-revalidate' }
  | { readonly kind: 'stale-allowed' }
  | { readonly kind: 'revalidate'; readonly reason: RevalidateReason };

export type RevalidateReason =
  /** The response carries an unqualified `no-cache` (§5.2.2.4): validate on every use. */
  | 'response-no-cache'
  /** The request carries `no-cache` (§5.2.1.4) or `max-age=0`. */
  | 'request-no-cache'
  /** The request's `max-age` or `min-fresh` rule this response out (§5.2.1.1, §5.2.1.3). */
  | 'request-freshness'
  /** The entry was soft-purged. */
  | 'invalidated'
  | 'stale';

export interface ReuseOptions {
  /** The entry was soft-purged: treat it as stale whatever its lifetime. */
  readonly invalidated?: boolean;
}

/**
 * Decides whether a request may be answered from a stored response without
 * contacting the origin (§4: "fresh, or allowed to be served stale, or
 * successfully validated"). Most restrictive wins: any directive asking for
 * validation beats any directive allowing reuse.
 */
export function reuseDecision(
  response: TimedResponse,
  policy: ResponsePolicy,
  request: CacheDirectives,
  now: number,
  options: ReuseOptions = {},
): Reuse {
  const d = policy.directives;
  if (d.noCache === true) return { kind: 'revalidate', reason: 'response-no-cache' };
  if (request.noCache !== undefined) return { kind: 'revalidate', reason: 'request-no-cache' };
  const f = freshness(response, policy, now);
  if (request.maxAge !== undefined && f.age > request.maxAge) {
    return { kind: 'revalidate', reason: request.maxAge === 0 ? 'request-no-cache' : 'request-freshness' };
  }
  const staleness = options.invalidated ? Math.max(0, -f.ttl) : -f.ttl;
  const fresh = !options.invalidated && f.fresh;
  if (fresh) {
    if (request.minFresh !== undefined && f.ttl < request.minFresh) return { kind: 'revalidate', reason: 'request-freshness' };
    return { kind: 'fresh' };
  }
  const reason: RevalidateReason = options.invalidated ? 'invalidated' : 'stale';
  if (forbidsStale(d)) return { kind: 'revalidate', reason };
  // max-stale: the client accepts this much staleness (any, without an argument).
  if (request.maxStale !== undefined && request.minFresh === undefined) {
    if (request.maxStale === true || staleness <= request.maxStale) return { kind: 'stale-allowed' };
  }
  if (d.staleWhileRevalidate !== undefined && staleness <= d.staleWhileRevalidate) return { kind: 'stale-while-revalidate' };
  return { kind: 'revalidate', reason };
}

/**
 * May a stale response be served because the origin could not be reached or
 * answered 500, 502, 503 or 504 (RFC 5861 §4)? Allowed within the larger of
 * the response's and the request's `stale-if-error` windows, never when the
 * response forbids stale (`must-revalidate` etc.: §5.2.2.2 requires a 504
 * instead). An unqualified `no-cache` also forbids it: the response was never
 * to be used without validation.
 */
export function mayServeStaleOnError(
  response: TimedResponse,
  policy: ResponsePolicy,
  request: CacheDirectives,
  now: number,
): boolean {
  const d = policy.directives;
  if (forbidsStale(d)) return false;
  const window = Math.max(d.staleIfError ?? -1, request.staleIfError ?? -1);
  if (window < 0) return false;
  const f = freshness(response, policy, now);
  return -f.ttl <= window;
}

/** Status codes RFC 5861 §4 counts as an error for `stale-if-error`. */
export function isStaleIfErrorStatus(status: number): boolean {
  return status === 500 || status === 502 || status === 503 || status === 504;
}
