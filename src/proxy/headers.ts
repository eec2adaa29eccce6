/**
 * Header rewriting between the two sides of the proxy (RFC 9110 §7.6.1).
 *
 * Hop-by-hop headers describe one connection and must not be forwarded:
 * Connection and every header it names, Keep-Alive, TE, Trailer,
 * Transfer-Encoding (each side frames its own body: usher writes the framing
 * header itself), Upgrade (outside an upgrade) and the Proxy-* family.
 * Everything else passes through in order and with its original case.
 *
 * Works on flat raw header lists ([name, value, name, value, ...]) and writes
 * the header block straight into one string, so a request allocates no
 * intermediate arrays or objects here.
 */

import { eqLower } from '../http1/chars.ts';

/** Lowercase names that never cross the proxy (HTTP/2 uses the same list: RFC 9113 §8.2.2). */
export const hopByHop: ReadonlySet<string> = new Set([
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

/** What {@link classify} says about a header name. */
const OTHER = 0;
/** Hop-by-hop: Connection, Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-Connection, Proxy-Authenticate, Proxy-Authorization. */
const HOP = 1;
const CONTENT_LENGTH = 2;
const HOST = 3;
const X_FORWARDED_FOR = 4;
/** X-Forwarded-Proto and X-Forwarded-Host: usher sets its own. */
const X_FORWARDED_SET = 5;
/** X-Request-Id: usher writes the request's own, both ways. */
const X_REQUEST_ID = 6;

/**
 * Which of the names this module cares about `name` is, case-insensitively,
 * without lowercasing it: a switch on the length rules out most names at
 * once (Server, Date, Content-Type, Accept...), and the rest are compared in
 * place. `toLowerCase()` allocated a string for every mixed-case name, on
 * every request and response.
 */
function classify(name: string): number {
  const n = name.length;
  switch (n) {
    case 2:
      return eqLower(name, 0, n, 'te') ? HOP : OTHER;
    case 4:
      return eqLower(name, 0, n, 'host') ? HOST : OTHER;
    case 7:
      return eqLower(name, 0, n, 'trailer') || eqLower(name, 0, n, 'upgrade') ? HOP : OTHER;
    case 10:
      return eqLower(name, 0, n, 'connection') || eqLower(name, 0, n, 'keep-alive') ? HOP : OTHER;
    case 12:
      return eqLower(name, 0, n, 'x-request-id') ? X_REQUEST_ID : OTHER;
    case 14:
      return eqLower(name, 0, n, 'content-length') ? CONTENT_LENGTH : OTHER;
    case 15:
      return eqLower(name, 0, n, 'x-forwarded-for') ? X_FORWARDED_FOR : OTHER;
    case 16:
      if (eqLower(name, 0, n, 'proxy-connection')) return HOP;
      return eqLower(name, 0, n, 'x-forwarded-host') ? X_FORWARDED_SET : OTHER;
    case 17:
      if (eqLower(name, 0, n, 'transfer-encoding')) return HOP;
      return eqLower(name, 0, n, 'x-forwarded-proto') ? X_FORWARDED_SET : OTHER;
    case 18:
      return eqLower(name, 0, n, 'proxy-authenticate') ? HOP : OTHER;
    case 19:
      return eqLower(name, 0, n, 'proxy-authorization') ? HOP : OTHER;
    default:
      return OTHER;
  }
}

/** What the proxy knows about the downstream side when forwarding a request. */
export interface ForwardingInfo {
  readonly clientIp: string;
  /** `http` or `https`: the scheme the client used to reach usher. */
  readonly proto: string;
  /** The request's id (request-id.ts): replaces every `x-request-id` the client sent. */
  readonly requestId: string;
}

/** True when some Connection token names an end-to-end-looking header that must be dropped. */
function namesHeaders(connectionTokens: readonly string[]): boolean {
  for (let i = 0; i < connectionTokens.length; i++) {
    const token = connectionTokens[i];
    if (token !== 'keep-alive' && token !== 'close' && token !== 'upgrade') return true;
  }
  return false;
}

/**
 * The header block to send upstream for one request, as `Name: value\r\n`
 * lines: hop-by-hop headers removed, Host kept as the client sent it,
 * X-Forwarded-For appended to, X-Forwarded-Proto and X-Forwarded-Host set by
 * usher (a client's own copies are not trusted), X-Request-Id usher's (which
 * is the client's when it was valid).
 */
export function upstreamRequestHeaderLines(
  raw: readonly string[],
  connectionTokens: readonly string[],
  info: ForwardingInfo,
): string {
  const checkNamed = namesHeaders(connectionTokens);
  let lines = '';
  let forwardedFor: string | undefined;
  let host: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const kind = classify(name);
    if (kind === HOP || kind === CONTENT_LENGTH || (checkNamed && connectionTokens.includes(name.toLowerCase()))) continue;
    if (kind === X_FORWARDED_FOR) {
      forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
      continue;
    }
    if (kind === X_FORWARDED_SET || kind === X_REQUEST_ID) continue;
    if (kind === HOST) host = value;
    lines += `${name}: ${value}\r\n`;
  }
  lines += `x-forwarded-for: ${forwardedFor === undefined ? info.clientIp : `${forwardedFor}, ${info.clientIp}`}\r\n`;
  lines += `x-forwarded-proto: ${info.proto}\r\n`;
  if (host !== undefined) lines += `x-forwarded-host: ${host}\r\n`;
  lines += `x-request-id: ${info.requestId}\r\n`;
  return lines;
}

/**
 * The header block to send downstream for one response, as `Name: value\r\n`
 * lines: hop-by-hop headers removed, and X-Request-Id (the caller writes the
 * request's own, so an echo from the backend would duplicate it). The caller
 * adds framing and Connection; Content-Length passes through only when
 * `keepContentLength` (HEAD and 304 responses, where it describes a body that
 * is not sent).
 */
export function downstreamResponseHeaderLines(
  raw: readonly string[],
  connectionTokens: readonly string[],
  keepContentLength: boolean,
): string {
  const checkNamed = namesHeaders(connectionTokens);
  let lines = '';
  let sawLength = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const kind = classify(name);
    if (kind === HOP || kind === X_REQUEST_ID || (checkNamed && connectionTokens.includes(name.toLowerCase()))) continue;
    if (kind === CONTENT_LENGTH) {
      if (!keepContentLength || sawLength) continue;
      sawLength = true;
    }
    lines += `${name}: ${raw[i + 1]!}\r\n`;
  }
  return lines;
}

/** Client IP as a plain address: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is shown as IPv4. */
export function clientAddress(remote: string | undefined): string {
  if (remote === undefined) return '';
  return remote.startsWith('::ffff:') && remote.includes('.') ? remote.slice(7) : remote;
}

/**
 * The request's transfer codings as one normalised list, for re-framing
 * upstream. The parser already checked that `chunked` is last and every coding
 * is known; codings before it (`gzip, chunked`) are end-to-end and must reach
 * the backend. The common case, plain `chunked`, allocates nothing.
 */
export function transferCodings(rawHeaders: readonly string[]): string {
  let codings = '';
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length !== 17 || rawHeaders[i]!.toLowerCase() !== 'transfer-encoding') continue;
    for (const coding of rawHeaders[i + 1]!.split(',')) {
      const token = coding.trim().toLowerCase();
      if (token !== '') codings = codings === '' ? token : `${codings}, ${token}`;
    }
  }
  return codings === '' ? 'chunked' : codings;
}

/** The first value of header `name` (lowercase) in a raw list, or undefined. */
export function headerValue(raw: readonly string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === name.length && raw[i]!.toLowerCase() === name) return raw[i + 1];
  }
  return undefined;
}
