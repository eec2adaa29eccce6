/**
 * The primary cache key (RFC 9111 §2: "the request method and target URI"),
 * normalised so that requests for the same resource share an entry.
 *
 * A key reads `scheme://host[:port]path[?query]`, then, only when configured,
 * a newline and the extra request headers and cookies. The URI part first
 * makes purge-by-prefix on a URL prefix work. The path is kept byte for byte:
 * decoding `%2F` or resolving `..` could merge resources the origin keeps
 * apart.
 */
import { fieldLines, type Fields } from './fields.ts';

export interface KeyRequest {
  readonly method: string;
  /** `http` or `https`. */
  readonly scheme: string;
  /** The Host header / :authority, with port when present. */
  readonly authority: string;
  /** The request target in origin-form: path and optional query. */
  readonly target: string;
  readonly fields: Fields;
}

export interface KeyOptions {
  /** Keep only these query parameters (by raw name); all when undefined. */
  readonly includeQuery?: readonly string[];
  /** Drop these query parameters (e.g. `utm_source`); applied after `includeQuery`. */
  readonly excludeQuery?: readonly string[];
  /** Request headers (lower-case) whose values become part of the key. */
  readonly headers?: readonly string[];
  /** Cookie names whose values become part of the key. */
  readonly cookies?: readonly string[];
}

const DEFAULT_PORTS: Readonly<Record<string, string>> = { http: '80', https: '443' };

/**
 * The primary key of a request. HEAD shares GET's key (a HEAD can be answered
 * from a stored GET, §4.3.5's converse); other methods are never stored, but
 * get a distinct key so that a caller's mistake cannot serve a POST from a GET.
 */
export function primaryKey(request: KeyRequest, options: KeyOptions = {}): string {
  const scheme = request.scheme.toLowerCase();
  let key = `${scheme}://${normalizeAuthority(scheme, request.authority)}`;
  const q = request.target.indexOf('?');
  const path = q < 0 ? request.target : request.target.slice(0, q);
  key += path === '' ? '/' : path;
  const query = q < 0 ? '' : normalizeQuery(request.target.slice(q + 1), options);
  if (query !== '') key += `?${query}`;
  const extras: string[] = [];
  for (const name of options.headers ?? []) {
    const lines = fieldLines(request.fields, name);
    extras.push(`${name}:${lines.length === 0 ? '' : JSON.stringify(lines.join(', '))}`);
  }
  if (options.cookies !== undefined && options.cookies.length > 0) {
    const jar = parseCookies(request.fields);
    for (const name of options.cookies) {
      const v = jar.get(name);
      extras.push(`cookie:${name}=${v === undefined ? '' : JSON.stringify(v)}`);
    }
  }
  const method = request.method.toUpperCase();
  if (method !== 'GET' && method !== 'HEAD') extras.push(`method:${method}`);
  return extras.length === 0 ? key : `${key}\n${extras.join('\n')}`;
}

/** Host lower-cased (RFC 3986 §6.2.2.1), the default port of the scheme removed (§6.2.3), an empty port removed. */
export function normalizeAuthority(scheme: string, authority: string): string {
  const a = authority.toLowerCase();
  let host: string;
  let port: string | undefined;
  if (a.startsWith('[')) {
    // IP-literal: the colons inside the brackets are not a port separator.
    const end = a.indexOf(']');
    host = a.slice(0, end + 1);
    const rest = a.slice(end + 1);
    port = rest.startsWith(':') ? rest.slice(1) : undefined;
  } else {
    const colon = a.lastIndexOf(':');
    host = colon < 0 ? a : a.slice(0, colon);
    port = colon < 0 ? undefined : a.slice(colon + 1);
  }
  if (port === undefined || port === '' || port === DEFAULT_PORTS[scheme]) return host;
  const trimmed = port.replace(/^0+(?=\d)/, '');
  return trimmed === DEFAULT_PORTS[scheme] ? host : `${host}:${trimmed}`;
}

/**
 * Sorts query parameters by name so that `?b=1&a=2` and `?a=2&b=1` share an
 * entry. The sort is stable, so repeated names keep their relative order:
 * `a=1&a=2` and `a=2&a=1` stay different, since many applications read them
 * as ordered lists. Empty parameters (`a=1&&b=2`) are dropped.
 */
export function normalizeQuery(query: string, options: KeyOptions = {}): string {
  const include = options.includeQuery === undefined ? undefined : new Set(options.includeQuery);
  const exclude = new Set(options.excludeQuery ?? []);
  const params = query
    .split('&')
    .filter((p) => p !== '')
    .map((p) => ({ p, name: p.split('=', 1)[0]! }))
    .filter(({ name }) => (include === undefined || include.has(name)) && !exclude.has(name));
  params.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  return params.map(({ p }) => p).join('&');
}

/** Cookie name → value (the first of a repeated name), from every Cookie line (RFC 6265 §5.4). */
export function parseCookies(fields: Fields): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of fieldLines(fields, 'cookie')) {
    for (const pair of line.split(';')) {
      const eq = pair.indexOf('=');
      if (eq < 0) continue;
      const name = pair.slice(0, eq).trim();
      if (name !== '' && !out.has(name)) out.set(name, pair.slice(eq + 1).trim());
    }
  }
  return out;
}
