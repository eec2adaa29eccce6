/**
 * `host:port` addresses. The host is an IPv4 address, a bracketed IPv6 address
 * (`[::1]:8080`, stored without brackets) or a hostname (RFC 1123 labels;
 * `_` is also accepted for container service names).
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { HostPort } from './types.ts';
import { failed, parsed, type Parsed } from './parsed.ts';

/** Options for {@link parseHostPort}. */
export interface HostPortOptions {
  /** Accept port 0 (an ephemeral port). Only meaningful for a listener's `bind`. */
  readonly allowPortZero?: boolean;
}

const HOSTNAME_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
const EXPECTED = 'expected host:port';

/**
 * Parse `host:port`.
 *
 * @example parseHostPort('[::1]:8080') // { ok: true, value: { host: '::1', port: 8080 } }
 * @example parseHostPort('localhost')  // { ok: false, message: 'expected host:port' }
 */
export function parseHostPort(text: string, options: HostPortOptions = {}): Parsed<HostPort> {
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) return failed(`${EXPECTED} (missing "]" after the IPv6 address)`);
    host = text.slice(1, close);
    if (!isIPv6(host)) return failed(`${EXPECTED} with a valid IPv6 address inside the brackets`);
    if (text[close + 1] !== ':') return failed(`${EXPECTED} (a port is required after "]")`);
    portText = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon === -1) return failed(EXPECTED);
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) {
      return failed(isIPv6(host) || isIPv6(text) ? `${EXPECTED}; write IPv6 addresses in brackets, e.g. "[::1]:8080"` : EXPECTED);
    }
    if (host === '') return failed(`${EXPECTED} (the host is missing; use 0.0.0.0 for all interfaces)`);
    const hostProblem = checkHost(host);
    if (hostProblem !== undefined) return failed(hostProblem);
  }
  const min = options.allowPortZero === true ? 0 : 1;
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
  if (!(port >= min && port <= 65535)) return failed(`port must be an integer in [${min}, 65535]`);
  return parsed({ host, port });
}

const HOST_HEADER_EXPECTED = 'expected a host name such as "health.internal", optionally with ":port"';

/**
 * Check a Host header value: a hostname, IPv4 address or bracketed IPv6
 * address, optionally followed by `:port`. Returns the text unchanged.
 *
 * @example parseHostHeader('health.internal:9000') // { ok: true, value: 'health.internal:9000' }
 */
export function parseHostHeader(text: string): Parsed<string> {
  if (text.startsWith('[') && text.endsWith(']')) {
    return isIPv6(text.slice(1, -1)) ? parsed(text) : failed(`${HOST_HEADER_EXPECTED} (with a valid IPv6 address inside the brackets)`);
  }
  if (text.includes('/')) return failed(`${HOST_HEADER_EXPECTED} (a name, not a URL)`);
  if (text.includes(':')) {
    const address = parseHostPort(text);
    if (address.ok) return parsed(text);
    // Only a numeric port gets the port message; "a:b:c" is not a host with a bad port.
    return failed(/:\d+$/.test(text) && address.message.startsWith('port') ? address.message : HOST_HEADER_EXPECTED);
  }
  if (text === '' || checkHost(text) !== undefined) return failed(HOST_HEADER_EXPECTED);
  return parsed(text);
}

const HOSTNAME_EXPECTED = 'expected a host name such as "www.example.com", an IPv4 address or an IPv6 address in brackets';

/**
 * Check a host for a URL: a hostname, IPv4 address or bracketed IPv6 address,
 * without a port. Returns it lowercase, IPv6 still in brackets (ready for a URL).
 *
 * @example parseHostname('WWW.example.com') // { ok: true, value: 'www.example.com' }
 * @example parseHostname('[::1]')           // { ok: true, value: '[::1]' }
 */
export function parseHostname(text: string): Parsed<string> {
  if (text.startsWith('[') && text.endsWith(']')) {
    return isIPv6(text.slice(1, -1)) ? parsed(text.toLowerCase()) : failed(`${HOSTNAME_EXPECTED} (with a valid IPv6 address inside the brackets)`);
  }
  if (isIPv6(text)) return failed(`${HOSTNAME_EXPECTED}; write IPv6 addresses in brackets, e.g. "[::1]"`);
  if (text.includes('/')) return failed(`${HOSTNAME_EXPECTED} (a name, not a URL)`);
  if (text.includes(':')) return failed(`${HOSTNAME_EXPECTED} (no port here: set "port")`);
  if (text === '' || checkHost(text) !== undefined) return failed(HOSTNAME_EXPECTED);
  return parsed(text.toLowerCase());
}

/** Format a {@link HostPort} back to `host:port`, bracketing IPv6. */
export function formatHostPort(address: HostPort): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

function checkHost(host: string): string | undefined {
  if (isIPv4(host)) return undefined;
  if (/^[\d.]+$/.test(host)) return `${EXPECTED} with a valid IPv4 address`;
  const labels = host.endsWith('.') ? host.slice(0, -1).split('.') : host.split('.');
  if (host.length > 253 || !labels.every((label) => HOSTNAME_LABEL.test(label))) {
    return `${EXPECTED} with a valid IPv4 address, [IPv6] address or hostname`;
  }
  return undefined;
}
