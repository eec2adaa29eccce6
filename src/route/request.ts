/**
 * The view of a request the route table matches against, built once per
 * request by the proxy. Query and cookie maps are parsed lazily, only when a
 * route needs them, and memoised on the request so that later phases (hash
 * keys, sticky sessions) reuse the same parse.
 */

import { parseCookies } from './cookies.ts';
import { parseQuery } from './query.ts';

/** Request headers as node:http gives them: lowercase names. `IncomingHttpHeaders` is assignable. */
export type RouteHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * What routing reads from a request. Build it with {@link createRouteRequest}
 * so that the object always has the same shape (V8 hidden class) and the memo
 * slots exist from the start.
 */
export interface RouteRequest {
  /** As received; node:http only accepts upper-case method names. */
  readonly method: string;
  /** The Host header (or the absolute-form authority) as received: may carry a port and any case. */
  readonly host: string | undefined;
  /** Origin-form request target, `path?query`; what `CompiledRoute.rewritePath` takes. */
  readonly target: string;
  /** Raw path before `?`, not percent-decoded, not normalised. */
  readonly path: string;
  /** Raw query after `?`, without the `?`; `''` when there is none. */
  readonly query: string;
  readonly headers: RouteHeaders;
  /** Memo slot for {@link queryParamsOf}; leave `undefined`. */
  parsedQuery: ReadonlyMap<string, string> | undefined;
  /** Memo slot for {@link cookiesOf}; leave `undefined`. */
  parsedCookies: ReadonlyMap<string, string> | undefined;
}

/**
 * Builds a {@link RouteRequest} from node:http's `req.method`, `req.url` and
 * `req.headers`. (The proxy uses {@link createRouteRequestFromRaw}.)
 *
 * An absolute-form target (`GET http://a.example/x HTTP/1.1`, RFC 9112 §3.2.2)
 * takes its host from the target and ignores the Host header, as the RFC
 * requires of origin servers; otherwise a client could route on one host while
 * the backend trusts another. Userinfo (`user@`) is dropped. `target` is then
 * the origin-form `path?query` to forward. Any other target (origin-form,
 * `*`) is used as is.
 *
 * Allocation: the object, plus two slices when the target has a query string.
 */
export function createRouteRequest(method: string, url: string, headers: RouteHeaders): RouteRequest {
  const hostHeader = headers['host'];
  return new Request(method, url, typeof hostHeader === 'string' ? hostHeader : undefined, headers, NO_RAW_HEADERS);
}

/**
 * Builds a {@link RouteRequest} from a parsed head: `host` is its single Host
 * value (or undefined), `rawHeaders` its `[name, value, ...]` list. The
 * lowercase `headers` record is only built if something reads it (a header
 * or cookie match, a header or cookie hash key, a sticky cookie): most routes
 * match on host and path alone, and then a request allocates no record.
 */
export function createRouteRequestFromRaw(method: string, url: string, host: string | undefined, rawHeaders: readonly string[]): RouteRequest {
  return new Request(method, url, host, undefined, rawHeaders);
}

const NO_RAW_HEADERS: readonly string[] = Object.freeze([]);

/** The one implementation of RouteRequest, so routing code always sees one object shape (V8 hidden class). */
class Request implements RouteRequest {
  readonly method: string;
  readonly host: string | undefined;
  readonly target: string;
  readonly path: string;
  readonly query: string;
  parsedQuery: ReadonlyMap<string, string> | undefined = undefined;
  parsedCookies: ReadonlyMap<string, string> | undefined = undefined;
  #headers: RouteHeaders | undefined;
  readonly #rawHeaders: readonly string[];

  constructor(method: string, url: string, hostHeader: string | undefined, headers: RouteHeaders | undefined, rawHeaders: readonly string[]) {
    let host = hostHeader;
    let target = url;
    if (url.charCodeAt(0) !== 0x2f /* / */) {
      const authorityStart = schemeEnd(url);
      if (authorityStart !== -1) {
        let authorityEnd = authorityStart;
        while (authorityEnd < url.length && !isAuthorityEnd(url.charCodeAt(authorityEnd))) authorityEnd++;
        const authority = url.slice(authorityStart, authorityEnd);
        host = authority.slice(authority.lastIndexOf('@') + 1);
        const rest = url.slice(authorityEnd);
        target = rest.charCodeAt(0) === 0x2f ? rest : `/${rest}`;
      }
    }
    const q = target.indexOf('?');
    this.method = method;
    this.host = host;
    this.target = target;
    this.path = q === -1 ? target : target.slice(0, q);
    this.query = q === -1 ? '' : target.slice(q + 1);
    this.#headers = headers;
    this.#rawHeaders = rawHeaders;
  }

  get headers(): RouteHeaders {
    return (this.#headers ??= headerRecord(this.#rawHeaders));
  }
}

/** Lowercase-name view of raw headers for routing and hash keys; repeated names are joined as arrays. */
export function headerRecord(raw: readonly string[]): Record<string, string | string[]> {
  const record: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    const existing = record[name];
    if (existing === undefined) record[name] = value;
    else if (typeof existing === 'string') record[name] = [existing, value];
    else existing.push(value);
  }
  return record;
}

/** Decoded query parameters of `req` (first value per key), parsed on first use. */
export function queryParamsOf(req: RouteRequest): ReadonlyMap<string, string> {
  return (req.parsedQuery ??= parseQuery(req.query));
}

/** Cookies of `req` (first value per name), parsed from the Cookie header on first use. */
export function cookiesOf(req: RouteRequest): ReadonlyMap<string, string> {
  return (req.parsedCookies ??= parseCookies(req.headers['cookie']));
}

/** Index just past `http://` or `https://` (scheme case-insensitive), or -1. */
function schemeEnd(url: string): number {
  const colon = url.indexOf('://');
  if (colon !== 4 && colon !== 5) return -1;
  const scheme = url.slice(0, colon).toLowerCase();
  return scheme === 'http' || scheme === 'https' ? colon + 3 : -1;
}

function isAuthorityEnd(c: number): boolean {
  return c === 0x2f /* / */ || c === 0x3f /* ? */ || c === 0x23 /* # */;
}
