/**
 * The request `usher explain` reasons about, from its command line:
 * `METHOD URL` and `-H 'name: value'` headers, read the way curl sends them.
 * An absolute URL (`http://api.example.com:8080/x?y=1`) becomes the
 * origin-form target `/x?y=1` with `Host: api.example.com:8080`, unless a
 * `-H 'Host: …'` overrides it; a bare target (`/x?y=1`) has only the Host
 * given with `-H`.
 */
import { isIP } from 'node:net';
import { createRouteRequest, type RouteRequest } from '../route/request.ts';

/** A request to explain, checked. */
export interface ExplainRequest {
  readonly method: string;
  /** The URL as given. */
  readonly url: string;
  /** `path?query`, what usher routes on and rewrites. */
  readonly target: string;
  /** The Host header the request carries (port included), or undefined. */
  readonly host: string | undefined;
  /** The URL's scheme, for an absolute URL. */
  readonly scheme: 'http' | 'https' | undefined;
  /** The URL's port (written, or the scheme's default), for an absolute URL. */
  readonly port: number | undefined;
  /** Header values by lower-case name, Host included; a repeated header is a list. */
  readonly headers: Readonly<Record<string, string | readonly string[]>>;
  /** The client address `hashKey: client-ip` hashes. */
  readonly clientIp: string;
}

/** A malformed `METHOD URL`, `-H` or `--client-ip`; the CLI turns it into exit code 2. */
export class ExplainInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExplainInputError';
  }
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const ABSOLUTE = /^(https?):\/\/([^/?#]*)([^#]*)/i;
const DEFAULT_PORTS = { http: 80, https: 443 } as const;

/**
 * Reads `METHOD URL`, the `-H` values and the client address.
 * @throws ExplainInputError naming what is wrong and what was expected.
 */
export function readExplainRequest(method: string, url: string, headerArgs: readonly string[], clientIp = '127.0.0.1'): ExplainRequest {
  if (!TOKEN.test(method)) throw new ExplainInputError(`METHOD must be an HTTP method such as GET, got ${JSON.stringify(method)}`);
  if (isIP(clientIp) === 0) throw new ExplainInputError(`--client-ip takes an IPv4 or IPv6 address, got ${JSON.stringify(clientIp)}`);
  const headers: Record<string, string | string[]> = {};
  for (const arg of headerArgs) {
    const colon = arg.indexOf(':');
    const name = colon === -1 ? '' : arg.slice(0, colon).trim().toLowerCase();
    if (!TOKEN.test(name)) throw new ExplainInputError(`-H takes 'name: value', got ${JSON.stringify(arg)}`);
    const value = arg.slice(colon + 1).trim();
    const existing = headers[name];
    headers[name] = existing === undefined ? value : [...(typeof existing === 'string' ? [existing] : existing), value];
  }
  let target: string;
  let scheme: 'http' | 'https' | undefined;
  let port: number | undefined;
  const absolute = ABSOLUTE.exec(url);
  if (absolute !== null) {
    scheme = absolute[1]!.toLowerCase() as 'http' | 'https';
    const authority = absolute[2]!.slice(absolute[2]!.lastIndexOf('@') + 1);
    if (authority === '') throw new ExplainInputError(`URL has no host: ${JSON.stringify(url)}`);
    port = portOf(authority) ?? DEFAULT_PORTS[scheme];
    target = absolute[3]!.startsWith('/') ? absolute[3]! : `/${absolute[3]!}`;
    // As curl: the URL's authority is the Host, unless -H gives one.
    headers['host'] ??= authority;
  } else if (url.startsWith('/')) {
    target = url.split('#')[0]!;
  } else {
    throw new ExplainInputError(`URL must be absolute (http://host/path) or a path starting with "/", got ${JSON.stringify(url)}`);
  }
  if (/[\s\u0000-\u001f\u007f]/.test(target)) throw new ExplainInputError(`URL must not contain spaces or control characters, got ${JSON.stringify(url)}`);
  const host = headers['host'];
  if (Array.isArray(host)) throw new ExplainInputError('give at most one Host header');
  return { method, url, target, host: host as string | undefined, scheme, port, headers, clientIp };
}

/** The view the route table matches, built the way the proxy builds it. */
export function routeRequestOf(request: ExplainRequest): RouteRequest {
  return createRouteRequest(request.method, request.target, request.headers as Record<string, string | string[]>);
}

/** The port written in `host:port` or `[v6]:port`, if any. */
function portOf(authority: string): number | undefined {
  const colon = authority.lastIndexOf(':');
  if (colon === -1 || authority.lastIndexOf(']') > colon) return undefined;
  const text = authority.slice(colon + 1);
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text) || port < 1 || port > 65535) throw new ExplainInputError(`URL port must be 1-65535, got ${JSON.stringify(text)}`);
  return port;
}
