/**
 * `ipAllow` and `ipDeny`: CIDR lists on the client's address, 403
 * `forbidden` otherwise (Traefik IPAllowList, nginx `allow`/`deny`, Envoy
 * RBAC on `remote_ip`). The address is the one the client connection
 * reports (`FilterRequest.clientIp`), never a header. http and https
 * listeners do not read PROXY protocol headers yet (tcp and tls-passthrough
 * ones do), so today it is the peer's; when they do, the connection will
 * report the client's and this filter needs no change.
 * Matching is `l4/cidr.ts`'s (IPv4 also matches as IPv4-mapped IPv6).
 */
import { UsherError } from '../errors.ts';
import { compileCidrs } from '../l4/cidr.ts';
import type { InternalFilter } from './chain.ts';
import type { FilterRequest } from './filter.ts';

/** `allow`: only listed addresses pass. `deny`: listed addresses are refused. */
export function ipFilter(kind: 'ipAllow' | 'ipDeny', cidrs: readonly string[]): InternalFilter {
  const listed = compileCidrs(cidrs);
  const allow = kind === 'ipAllow';
  return Object.freeze({
    name: kind,
    onRequest(request: FilterRequest): UsherError | undefined {
      if (listed(request.clientIp) === allow) return undefined;
      return new UsherError('USHER_FORBIDDEN', `client ${request.clientIp} is ${allow ? 'not in ipAllow' : 'in ipDeny'} of route ${request.route}`);
    },
  });
}
