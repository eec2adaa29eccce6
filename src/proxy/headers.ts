/**
 * Header rewriting between the two sides of the proxy (RFC 9110 §7.6.1).
 *
 * Hop-by-hop headers describe one connection and must not be forwarded:
 * Connection and every header it names, Keep-Alive, TE, Trailer,
 * Transfer-Encoding (each side frames its own body), Upgrade (outside an
 * upgrade) and the Proxy-* family. Everything else passes through in order and
 * with its original case.
 *
 * Works on Node's flat `rawHeaders` arrays ([name, value, name, value, ...]) so
 * nothing is re-parsed and nothing is lowercased twice.
 */

/** Lowercase names that never cross the proxy. */
const hopByHop: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
]);

/** Headers usher sets itself on the way up; a client's copies are dropped (except X-Forwarded-For, which is appended to). */
const replacedUpstream: ReadonlySet<string> = new Set(['x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-for']);

/** What the proxy knows about the downstream side when forwarding a request. */
export interface ForwardingInfo {
  readonly clientIp: string;
  /** `http` or `https`: the scheme the client used to reach usher. */
  readonly proto: string;
}

/**
 * Tokens listed in Connection headers, lowercased, excluding the common
 * `keep-alive`/`close` which are hop-by-hop anyway. Empty in the usual case.
 */
function namedByConnection(raw: readonly string[]): readonly string[] {
  let named: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== 10 || name.toLowerCase() !== 'connection') continue;
    for (const part of raw[i + 1]!.split(',')) {
      const token = part.trim().toLowerCase();
      if (token === '' || token === 'keep-alive' || token === 'close') continue;
      (named ??= []).push(token);
    }
  }
  return named ?? noTokens;
}
const noTokens: readonly string[] = [];

/**
 * The headers to send upstream for one request: hop-by-hop headers removed,
 * Host kept as the client sent it, X-Forwarded-For appended to, and
 * X-Forwarded-Proto / X-Forwarded-Host set by usher.
 */
export function upstreamRequestHeaders(raw: readonly string[], info: ForwardingInfo): string[] {
  const named = namedByConnection(raw);
  const out: string[] = [];
  let forwardedFor: string | undefined;
  let host: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if (hopByHop.has(lower) || (named.length > 0 && named.includes(lower))) continue;
    if (replacedUpstream.has(lower)) {
      if (lower === 'x-forwarded-for') forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
      continue;
    }
    if (lower === 'host') host = value;
    out.push(name, value);
  }
  out.push('x-forwarded-for', forwardedFor === undefined ? info.clientIp : `${forwardedFor}, ${info.clientIp}`);
  out.push('x-forwarded-proto', info.proto);
  if (host !== undefined) out.push('x-forwarded-host', host);
  return out;
}

/** Response headers as undici parses them: lowercase names, repeated headers as arrays. */
export type ParsedHeaders = Record<string, string | string[] | undefined>;

/**
 * The headers to send downstream for one response, as a flat list for
 * `res.writeHead`: hop-by-hop headers removed. Node's http server frames the
 * body again (Content-Length kept, chunked when absent).
 */
export function downstreamResponseHeaders(headers: ParsedHeaders): string[] {
  const connection = headers['connection'];
  const named = connection === undefined ? noTokens : namedByConnection(['connection', String(connection)]);
  const out: string[] = [];
  for (const name in headers) {
    if (hopByHop.has(name) || (named.length > 0 && named.includes(name))) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const item of value) out.push(name, item);
  }
  return out;
}

/** Client IP as a plain address: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is shown as IPv4. */
export function clientAddress(remote: string | undefined): string {
  if (remote === undefined) return '';
  return remote.startsWith('::ffff:') && remote.includes('.') ? remote.slice(7) : remote;
}
