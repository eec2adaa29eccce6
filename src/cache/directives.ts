/**
 * Cache directives: `Cache-Control` (RFC 9111 §5.2) and the targeted fields
 * of RFC 9213 (`CDN-Cache-Control`, and usher's own `Usher-Cache-Control`),
 * and which of them governs a response in a shared cache.
 *
 * **Duplicates.** RFC 9111 §4.2.1 allows "the first occurrence" or "stale"
 * for a repeated directive; usher takes the first occurrence of a directive
 * with an argument (`max-age=60, max-age=0` is 60). Conflicting directives
 * are resolved where they are used, always towards the most restrictive
 * (`max-age=60, no-cache` revalidates). Field-name lists of `private` and
 * `no-cache` are merged, and an unqualified one absorbs the lists.
 *
 * **Invalid arguments.** A `max-age` or `s-maxage` that is not delta-seconds
 * (`-1`, `1.5`, `""`) makes the response stale (lifetime 0), as §4.2.1
 * encourages; an invalid `stale-*` window or request directive argument is
 * ignored, the safe reading for each.
 */
import { fieldLines, parseDeltaSeconds, splitList, unquote, type Fields } from './fields.ts';
import { parseDictionary, Token, StructuredFieldError, type DictMember } from './structured-field.ts';

/** Directives of one message, requests and responses alike; each field names the section that defines it. */
export interface CacheDirectives {
  /** §5.2.1.1 / §5.2.2.1 seconds; 0 when the response's argument was invalid. */
  readonly maxAge?: number;
  /** §5.2.2.10, shared caches only; 0 when invalid. */
  readonly sMaxage?: number;
  /** §5.2.1.2 request: `true` for any staleness, else seconds. */
  readonly maxStale?: number | true;
  /** §5.2.1.3 request. */
  readonly minFresh?: number;
  /** §5.2.1.4 / §5.2.2.4: `true` unqualified, else the lower-case field names listed. */
  readonly noCache?: true | readonly string[];
  /** §5.2.1.5 / §5.2.2.5 */
  readonly noStore: boolean;
  /** §5.2.1.6 / §5.2.2.6 */
  readonly noTransform: boolean;
  /** §5.2.1.7 request. */
  readonly onlyIfCached: boolean;
  /** §5.2.2.2 */
  readonly mustRevalidate: boolean;
  /** §5.2.2.3 */
  readonly mustUnderstand: boolean;
  /** §5.2.2.7: `true` unqualified, else the lower-case field names listed. */
  readonly private?: true | readonly string[];
  /** §5.2.2.8 */
  readonly proxyRevalidate: boolean;
  /** §5.2.2.9 */
  readonly public: boolean;
  /** RFC 8246 */
  readonly immutable: boolean;
  /** RFC 5861 §3 seconds. */
  readonly staleWhileRevalidate?: number;
  /** RFC 5861 §4 seconds (request or response). */
  readonly staleIfError?: number;
}

type MutableDirectives = { -readonly [K in keyof CacheDirectives]: CacheDirectives[K] };

function emptyDirectives(): MutableDirectives {
  return {
    noStore: false, noTransform: false, onlyIfCached: false, mustRevalidate: false, mustUnderstand: false,
    proxyRevalidate: false, public: false, immutable: false,
  };
}

/** One directive as read from either syntax: its argument, or `true` when it has none. */
type RawArgument = string | number | true | { readonly invalid: true };

/**
 * Parses `Cache-Control` field lines (RFC 9111 §5.2): `token [ "=" ( token /
 * quoted-string ) ]`, names case-insensitive, both argument forms accepted
 * for every directive as §5.2 asks of recipients. A member that is not of
 * that shape is ignored, so one bad directive does not void the others.
 */
export function parseCacheControl(lines: readonly string[]): CacheDirectives {
  const d = emptyDirectives();
  const seen = new Set<string>();
  for (const line of lines) {
    for (const member of splitList(line)) {
      const eq = member.indexOf('=');
      const name = (eq < 0 ? member : member.slice(0, eq)).trim().toLowerCase();
      if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) continue;
      let arg: RawArgument = true;
      if (eq >= 0) {
        const raw = member.slice(eq + 1).trim();
        const q = raw.startsWith('"') ? unquote(raw) : raw;
        arg = q === undefined ? { invalid: true } : q;
      }
      apply(d, seen, name, arg);
    }
  }
  return d;
}

/**
 * Parses a targeted field (RFC 9213 §2.1), a Structured Field Dictionary.
 * Returns undefined when the field should be ignored: absent, empty, or not
 * valid Dictionary syntax (§2.1: "that field MUST be ignored"). Arguments of
 * the wrong type (`max-age=1.5`, `max-age="60"`, `no-store=?0`) are ignored
 * per directive, as §2.1 says consumers SHOULD NOT coerce them.
 */
export function parseTargetedField(lines: readonly string[]): CacheDirectives | undefined {
  if (lines.length === 0 || lines.every((l) => l.trim() === '')) return undefined;
  let dict: Map<string, DictMember>;
  try {
    dict = parseDictionary(lines);
  } catch (err) {
    if (err instanceof StructuredFieldError) return undefined;
    throw err;
  }
  if (dict.size === 0) return undefined;
  const d = emptyDirectives();
  const seen = new Set<string>();
  for (const [name, member] of dict) {
    const v = member.value;
    let arg: RawArgument;
    if (v === true) arg = true;
    else if (typeof v === 'number' && Number.isInteger(v)) arg = v;
    else if (typeof v === 'string') arg = v;
    else if (v instanceof Token) arg = v.value;
    else continue;
    if (typeof arg === 'string' && SECONDS_DIRECTIVES.has(name)) continue;
    if (typeof arg === 'number' && !SECONDS_DIRECTIVES.has(name)) continue;
    apply(d, seen, name, typeof arg === 'number' ? String(arg) : arg);
  }
  return d;
}

/** Directives whose argument is delta-seconds (an sf-integer in a targeted field). */
const SECONDS_DIRECTIVES = new Set(['max-age', 's-maxage', 'max-stale', 'min-fresh', 'stale-while-revalidate', 'stale-if-error']);

function apply(d: MutableDirectives, seen: Set<string>, name: string, arg: RawArgument): void {
  const first = !seen.has(name);
  seen.add(name);
  const text = typeof arg === 'string' ? arg : typeof arg === 'number' ? String(arg) : undefined;
  const seconds = text === undefined ? undefined : parseDeltaSeconds(text);
  switch (name) {
    case 'max-age':
      // Invalid means stale (§4.2.1); a missing argument is invalid too.
      if (first) d.maxAge = seconds ?? 0;
      return;
    case 's-maxage':
      if (first) d.sMaxage = seconds ?? 0;
      return;
    case 'max-stale':
      if (first) d.maxStale = arg === true ? true : seconds;
      return;
    case 'min-fresh':
      if (first && seconds !== undefined) d.minFresh = seconds;
      return;
    case 'stale-while-revalidate':
      if (first && seconds !== undefined) d.staleWhileRevalidate = seconds;
      return;
    case 'stale-if-error':
      if (first && seconds !== undefined) d.staleIfError = seconds;
      return;
    case 'no-cache':
      d.noCache = mergeQualified(d.noCache, arg);
      return;
    case 'private':
      d.private = mergeQualified(d.private, arg);
      return;
    case 'no-store': d.noStore = true; return;
    case 'no-transform': d.noTransform = true; return;
    case 'only-if-cached': d.onlyIfCached = true; return;
    case 'must-revalidate': d.mustRevalidate = true; return;
    case 'must-understand': d.mustUnderstand = true; return;
    case 'proxy-revalidate': d.proxyRevalidate = true; return;
    case 'public': d.public = true; return;
    case 'immutable': d.immutable = true; return;
    default:
      // Unrecognised extensions are ignored (§5.2.3).
      return;
  }
}

/** Merges a `no-cache`/`private` occurrence: unqualified (or unreadable) wins, as the most restrictive. */
function mergeQualified(prev: true | readonly string[] | undefined, arg: RawArgument): true | readonly string[] {
  if (prev === true || typeof arg !== 'string') return true;
  const names = splitList(arg).map((n) => n.toLowerCase());
  if (names.length === 0) return true;
  return prev === undefined ? names : [...new Set([...prev, ...names])];
}

/** The targeted fields usher honours, most specific first (RFC 9213 §2.2 "target list"); Surrogate-Control (Edge Architecture 1.0, Fastly) is the older form of the same idea. */
export const DEFAULT_TARGETS: readonly string[] = ['usher-cache-control', 'cdn-cache-control', 'surrogate-control'];

/** The directives that govern a response in usher's cache, and where they came from. */
export interface ResponsePolicy {
  readonly directives: CacheDirectives;
  /** The lower-case name of the field the directives came from. */
  readonly source: string;
  /**
   * True when a targeted field governs: RFC 9213 §2.2 then makes the cache
   * ignore `Cache-Control` *and* `Expires` for its own caching.
   */
  readonly targeted: boolean;
}

/**
 * Picks the governing directives (RFC 9213 §2.2): the first field in
 * `targets` that is present, non-empty and valid; otherwise `Cache-Control`.
 * `targets` lets an operator drop `usher-cache-control`, rename it, or
 * ignore `cdn-cache-control` when usher sits behind a CDN that uses it.
 */
export function responsePolicy(fields: Fields, targets: readonly string[] = DEFAULT_TARGETS): ResponsePolicy {
  // Stored fields never change (a 304 makes new ones): a hit reads the policy parsed when it was first asked.
  if (targets !== DEFAULT_TARGETS) return computePolicy(fields, targets);
  let policy = policies.get(fields);
  if (policy === undefined) {
    policy = computePolicy(fields, targets);
    policies.set(fields, policy);
  }
  return policy;
}

const policies = new WeakMap<Fields, ResponsePolicy>();

function computePolicy(fields: Fields, targets: readonly string[]): ResponsePolicy {
  for (const name of targets) {
    const directives = parseTargetedField(fieldLines(fields, name));
    if (directives !== undefined) return { directives, source: name, targeted: true };
  }
  return { directives: parseCacheControl(fieldLines(fields, 'cache-control')), source: 'cache-control', targeted: false };
}

/** Request directives: only `Cache-Control` applies; targeted fields are response-only (RFC 9213 §2). */
export function requestDirectives(fields: Fields): CacheDirectives {
  return parseCacheControl(fieldLines(fields, 'cache-control'));
}
