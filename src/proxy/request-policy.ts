import { UsherError } from '../errors.ts';
import type { RequestHead } from '../http1/types.ts';
import type { RouteRequest } from '../route/request.ts';
import type { CompiledRoute } from '../route/table.ts';

/**
 * Refuses requests that would make usher an open proxy or let a client route
 * on one host while the backend trusts another. Runs after the route phase.
 *
 *  - CONNECT reaches only a route whose `methods` list CONNECT; usher does not
 *    tunnel yet, so even then the answer is 501 (never a blind tunnel).
 *  - An absolute-form target (`GET http://a.example/ HTTP/1.1`) must agree with
 *    a Host header when both are present (400), and is served only by a route
 *    that names a `host`: a catch-all route never serves a foreign host (421).
 */
export function refuseRequest(head: RequestHead, request: RouteRequest, route: CompiledRoute): UsherError | undefined {
  if (head.method === 'CONNECT') {
    return route.allowsConnect
      ? new UsherError('USHER_DOWNSTREAM_CONNECT_UNSUPPORTED', 'CONNECT tunnels are not supported')
      : new UsherError('USHER_DOWNSTREAM_CONNECT_REFUSED', `CONNECT ${head.target}: no route allows CONNECT`);
  }
  const target = head.target;
  if (target.charCodeAt(0) === 0x2f /* / */ || target === '*') return undefined;
  // Absolute-form: request.host is the target's authority.
  const hostHeader = head.host;
  if (hostHeader !== undefined && !sameAuthority(request.host ?? '', hostHeader, target)) {
    return new UsherError('USHER_DOWNSTREAM_HOST_MISMATCH', `absolute-form target host ${request.host ?? ''} disagrees with Host ${hostHeader}`);
  }
  if (!route.namesHost) {
    return new UsherError('USHER_DOWNSTREAM_MISDIRECTED', `absolute-form target for ${request.host ?? ''}: no route names that host`);
  }
  return undefined;
}

/** Case-insensitive authority equality, treating the scheme's default port as absent. */
function sameAuthority(fromTarget: string, fromHeader: string, target: string): boolean {
  const defaultPort = target.charCodeAt(4) === 0x73 || target.charCodeAt(4) === 0x53 ? ':443' : ':80';
  const a = stripPort(fromTarget.toLowerCase(), defaultPort);
  const b = stripPort(fromHeader.toLowerCase(), defaultPort);
  return a === b;
}

function stripPort(authority: string, defaultPort: string): string {
  return authority.endsWith(defaultPort) ? authority.slice(0, -defaultPort.length) : authority;
}
