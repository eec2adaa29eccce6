import type { RedirectConfig } from '../config/types.ts';

/** What a redirect reads from the request. */
export interface RedirectRequest {
  /** The Host header (or the absolute-form authority) as received, port included; undefined when absent. */
  readonly host: string | undefined;
  /** Origin-form target, `path?query`, kept unchanged in the new URL. */
  readonly target: string;
}

/** A Host usher will copy into a Location: a reg-name or IPv4 address, or a bracketed IPv6 address, with an optional port. */
const VALID_HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::[0-9]*)?$/;

const DEFAULT_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443 };

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
export function redirectLocation(redirect: RedirectConfig, request: RedirectRequest, listenerProto: 'http' | 'https'): string | undefined {
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
