import type { RedirectConfig } from '../config/types.ts';
import { STATUS_REASONS } from '../http1/serialize.ts';

/** What a redirect reads from the request, and how the connection continues after it. */
export interface RedirectRequest {
  /** The Host header (or the absolute-form authority) as received, port included; undefined when absent. */
  readonly host: string | undefined;
  /** Origin-form target, `path?query`, kept unchanged in the new URL. */
  readonly target: string;
  /** Whether the connection stays open after this response; false adds `connection: close`. */
  readonly keepAlive: boolean;
  /** HTTP/1.0 clients only keep the connection when told `connection: keep-alive`. */
  readonly minorVersion: 0 | 1;
  /** The request's `x-request-id`, returned with the redirect. */
  readonly requestId?: string | undefined;
}

/** A Host usher will copy into a Location: a reg-name or IPv4 address, or a bracketed IPv6 address, with an optional port. */
const VALID_HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::[0-9]*)?$/;

const DEFAULT_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443 };

/**
 * The complete HTTP/1.1 redirect response for a route's `redirect`: the
 * status, {@link redirectLocation}, an empty body, and `connection: close`
 * only when the connection will not carry another request.
 *
 * Returns undefined when there is no Location to send (see {@link redirectLocation}).
 */
export function redirectResponse(redirect: RedirectConfig, request: RedirectRequest, listenerProto: 'http' | 'https'): string | undefined {
  const location = redirectLocation(redirect, request, listenerProto);
  if (location === undefined) return undefined;
  const connection = !request.keepAlive ? 'connection: close\r\n' : request.minorVersion === 0 ? 'connection: keep-alive\r\n' : '';
  return (
    `HTTP/1.1 ${redirect.code} ${STATUS_REASONS[redirect.code] ?? 'Redirect'}\r\n` +
    `location: ${location}\r\n` +
    'content-length: 0\r\n' +
    (request.requestId === undefined ? '' : `x-request-id: ${request.requestId}\r\n`) +
    connection +
    '\r\n'
  );
}

/**
 * The new URL: `scheme://host[:port]` followed by the request's path and query,
 * unchanged. The scheme defaults to the listener's, the host to the request's
 * without its port, and the port to none (the scheme's default port is never
 * written).
 *
 * Returns undefined when the request has no usable host (no Host header, or
 * one that is not a host name) and the redirect names none: there is no URL
 * to send the client to, and a Host is never copied into a header unchecked.
 */
export function redirectLocation(redirect: RedirectConfig, request: Pick<RedirectRequest, 'host' | 'target'>, listenerProto: 'http' | 'https'): string | undefined {
  const scheme = redirect.scheme ?? listenerProto;
  let host = redirect.host;
  if (host === undefined) {
    const received = request.host;
    if (received === undefined || !VALID_HOST.test(received)) return undefined;
    host = withoutPort(received).toLowerCase();
    if (host === '') return undefined;
  }
  const port = redirect.port === undefined || redirect.port === DEFAULT_PORTS[scheme] ? '' : `:${redirect.port}`;
  const path = request.target.charCodeAt(0) === 0x2f /* / */ ? request.target : '/';
  return `${scheme}://${host}${port}${path}`;
}

/** `example.com:8080` → `example.com`; `[::1]:8080` → `[::1]`. */
function withoutPort(authority: string): string {
  const colon = authority.lastIndexOf(':');
  return colon === -1 || authority.lastIndexOf(']') > colon ? authority : authority.slice(0, colon);
}
