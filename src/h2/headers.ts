/**
 * Header translation between HTTP/2 and HTTP/1.1 (RFC 9113 §8.2-8.3, RFC 9110 §7.6.1).
 *
 * HTTP/2 has no connection-specific fields: Connection, Keep-Alive,
 * Proxy-Connection, Transfer-Encoding and Upgrade must never appear in an
 * HTTP/2 message (nghttp2 rejects requests that carry them, and node:http2
 * throws when asked to send one), and TE may only be `trailers`. So a request
 * from an HTTP/2 client needs no Connection-token parsing; a response from an
 * HTTP/1.1 backend does, and everything hop-by-hop is dropped before it is
 * handed to `stream.respond()`. nghttp2 does let `http2-settings` and names
 * with `_` through: the first is hop-by-hop here too, and underscore
 * look-alikes of special fields are dropped on the way up (proxy/headers.ts).
 *
 * Header lists stay flat raw arrays (`[name, value, name, value, ...]`) as
 * node:http2 gives and takes them, so repeated fields (Set-Cookie) survive
 * without joining and nothing is copied into objects per request.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { TARGET, isFieldValue, isToken } from '../http1/chars.ts';
import { hopByHop, isUnderscoreLookalike, type RequestEdits } from '../proxy/headers.ts';

/**
 * Fields that must not be sent as HTTP/2 trailers: framing, routing and
 * content metadata decided by the head (RFC 9110 §6.5.1), plus the hop-by-hop set.
 */
const notTrailers: ReadonlySet<string> = new Set([
  ...hopByHop,
  'content-length',
  'content-encoding',
  'content-type',
  'content-range',
  'host',
  'set-cookie',
]);

/** What routing and the HTTP/1.1 request head need from an HTTP/2 request's header list. */
export interface H2RequestFields {
  /** Header fields without pseudo-headers, Host first (from `:authority`), Cookie fields joined. */
  readonly raw: string[];
  /** `:authority`, else the Host field; undefined when the request has neither. */
  readonly host: string | undefined;
  /** True when both `:authority` and Host were sent and name different hosts. */
  readonly hostMismatch: boolean;
  /**
   * False when a name is not a token or a value holds a control character.
   * nghttp2 only rejects NUL, CR and LF (RFC 9113 §8.2.1); usher's HTTP/1.1
   * parser rejects the rest, and these fields are about to become HTTP/1.1.
   */
  readonly valid: boolean;
}

/**
 * The request's fields in HTTP/1.1 terms: `:authority` becomes Host (RFC 9113
 * §8.3.1 makes it the authoritative one), and the crumbs of a split Cookie
 * field are joined with `; ` (§8.2.3), since an HTTP/1.1 backend expects one.
 */
export function requestFields(rawHeaders: readonly string[]): H2RequestFields {
  const raw: string[] = [];
  let authority: string | undefined;
  let hostField: string | undefined;
  let cookie: string | undefined;
  let valid = true;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    if (!isFieldValue(value)) valid = false;
    if (name.charCodeAt(0) === 0x3a /* : */) {
      if (name === ':authority') authority = value;
      continue;
    }
    if (!isToken(name)) valid = false;
    if (name === 'host') {
      hostField ??= value;
      continue;
    }
    if (name === 'cookie') {
      cookie = cookie === undefined ? value : `${cookie}; ${value}`;
      continue;
    }
    raw.push(name, value);
  }
  const host = authority ?? hostField;
  if (host !== undefined) raw.unshift('host', host);
  if (cookie !== undefined) raw.push('cookie', cookie);
  const hostMismatch = authority !== undefined && hostField !== undefined && authority.toLowerCase() !== hostField.toLowerCase();
  return { raw, host, hostMismatch, valid };
}

/** Whether `:path` can go into an HTTP/1.1 request line: visible ASCII only (nghttp2 allows spaces). */
export function isTarget(path: string): boolean {
  for (let i = 0; i < path.length; i++) if (TARGET[path.charCodeAt(i)] !== 1) return false;
  return path.length > 0;
}

/**
 * The response header list for `stream.respond()` from an HTTP/1.1 response:
 * `:status` first, lowercase names, hop-by-hop fields and those the
 * Connection header names removed, and X-Request-Id (the caller adds the
 * request's own). Content-Length is kept only when
 * `keepContentLength` (a length-framed body, or HEAD where it describes
 * a body not sent); a de-chunked body has none, and neither has a 204 or 304
 * (RFC 9110 §8.6, §15.3.5, §15.4.5: the parser keeps their connection out of
 * the pool when the backend sent one).
 */
export function responseHeaders(
  status: number,
  raw: readonly string[],
  connectionTokens: readonly string[],
  keepContentLength: boolean,
): string[] {
  const out: string[] = [':status', String(status)];
  const lengthAllowed = keepContentLength && status !== 204 && status !== 304;
  let sawLength = false;
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (hopByHop.has(lower) || (connectionTokens.length > 0 && connectionTokens.includes(lower)) || lower === 'x-request-id') continue;
    if (lower === 'content-length') {
      if (!lengthAllowed || sawLength) continue;
      sawLength = true;
    }
    out.push(lower, raw[i + 1]!);
  }
  return out;
}

/**
 * An HTTP/2 response header list passed on between two HTTP/2 peers (h2c
 * upstream): pseudo-headers other than `:status` are dropped (the caller
 * writes its own), and so is anything connection-specific an HTTP/2 peer
 * should not have sent, and X-Request-Id (the caller adds the request's own).
 * `te: trailers` survives: gRPC requires it (RFC 9113 §8.2.2 allows exactly that value).
 */
export function passHeaders(raw: readonly string[], out: string[]): string[] {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) === 0x3a /* : */) {
      if (name === ':status') out.push(name, raw[i + 1]!);
      continue;
    }
    if (name === 'te') {
      if (raw[i + 1]!.toLowerCase() === 'trailers') out.push(name, 'trailers');
      continue;
    }
    if (hopByHop.has(name) || name === 'x-request-id') continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}

/** What the proxy adds to a request it forwards (as `proxy/headers.ts` does for HTTP/1.1). */
export interface Forwarding {
  readonly clientIp: string;
  readonly proto: string;
  /** The request's id; replaces every `x-request-id` the client sent. */
  readonly requestId: string;
}

/**
 * The header list for an HTTP/2 backend (h2c), pseudo-headers first; the
 * `:authority` value at index 5 is filled in per attempt when the client sent
 * none. Fields pass as the client sent them (split Cookie crumbs too, which
 * HTTP/2 allows), minus Host, anything connection-specific and underscore
 * look-alikes of the fields usher treats specially (as `proxy/headers.ts`
 * does for HTTP/1.1 backends); X-Forwarded-For is appended to,
 * X-Forwarded-Proto, X-Forwarded-Host and X-Request-Id are usher's own.
 */
export function h2cRequestHeaders(rawHeaders: readonly string[], method: string, path: string, info: Forwarding, edits?: RequestEdits): { list: string[]; authority: string | undefined } {
  const drops = edits !== undefined && edits.headers.removed.length > 0;
  let authority: string | undefined;
  let forwardedFor: string | undefined;
  const list: string[] = [':method', method, ':scheme', 'http', ':authority', '', ':path', path];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    if (name.charCodeAt(0) === 0x3a /* : */) {
      if (name === ':authority') authority = value;
      continue;
    }
    if (name === 'host') {
      authority ??= value;
      continue;
    }
    if (name.startsWith('x-forwarded-')) {
      if (name === 'x-forwarded-for') {
        forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
        continue;
      }
      if (name === 'x-forwarded-proto' || name === 'x-forwarded-host') continue;
    }
    if (name === 'te') {
      if (value.toLowerCase() === 'trailers') list.push(name, 'trailers');
      continue;
    }
    if (hopByHop.has(name) || name === 'x-request-id' || (name.includes('_') && isUnderscoreLookalike(name))) continue;
    if (drops && edits.headers.drops(name)) continue;
    list.push(name, value);
  }
  if (edits !== undefined) {
    const added = edits.headers.added;
    for (let i = 0; i < added.length; i += 2) list.push(added[i]!.toLowerCase(), added[i + 1]!);
  }
  list.push('x-forwarded-for', forwardedFor === undefined ? info.clientIp : `${forwardedFor}, ${info.clientIp}`);
  list.push('x-forwarded-proto', info.proto);
  if (authority !== undefined) {
    list[5] = authority;
    list.push('x-forwarded-host', authority);
  }
  list.push('x-request-id', info.requestId);
  // A filter's new Host is the backend's :authority; X-Forwarded-Host keeps the client's.
  if (edits?.hostEdited === true && edits.host !== undefined) {
    list[5] = edits.host;
    return { list, authority: edits.host };
  }
  return { list, authority };
}

/**
 * Trailer fields as `sendTrailers()` takes them (it accepts no raw list):
 * repeated names become arrays. Fields that may not be trailers are dropped.
 */
export function trailerObject(raw: readonly string[]): OutgoingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name.charCodeAt(0) === 0x3a || notTrailers.has(name)) continue;
    const value = raw[i + 1]!;
    const existing = out[name];
    if (existing === undefined) out[name] = value;
    else if (typeof existing === 'string') out[name] = [existing, value];
    else existing.push(value);
  }
  return out;
}

/** `:status` of an HTTP/2 response header object, as a number (node:http2 gives a number). */
export function statusOf(headers: IncomingHttpHeaders): number {
  const status = headers[':status'] as unknown;
  return typeof status === 'number' ? status : Number(status);
}

/** A raw header list as an object, for the node:http2 calls that take no list (`additionalHeaders`). */
export function headerObject(list: readonly string[]): OutgoingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!;
    const value = list[i + 1]!;
    const existing = out[name];
    if (existing === undefined) out[name] = value;
    else if (typeof existing === 'string') out[name] = [existing, value];
    else existing.push(value);
  }
  return out;
}
