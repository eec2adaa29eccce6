/**
 * A Service's EndpointSlices → a pool's members. Pure, so every rule is
 * table-tested (test/unit/kubernetes-endpoints.test.ts):
 *
 *  - every slice of the Service counts (a Service has one per 100 endpoints,
 *    and one per address family); an endpoint listed twice (allowed while
 *    slices are rebalanced) is one member, the most usable report winning;
 *  - only `IPv4` and `IPv6` slices (FQDN slices are deprecated);
 *  - the port is found by the Service port's name, or by number (the
 *    endpoints' port); a slice without it contributes nothing; TCP only;
 *  - conditions, read as the API says: `ready` nil ⇒ true, `serving` nil ⇒
 *    `ready`, `terminating` nil ⇒ false. Ready → active; serving and
 *    terminating → draining (`terminating: true`: sticky clients only, and
 *    the whole pool when nothing is ready, as kube-proxy does); anything else
 *    (not serving, or gone) → not a member;
 *  - of an endpoint's addresses only the first is used (the API says they are
 *    fungible and consumers may do so).
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { DiscoveredBackend } from '../pool/pool-control.ts';
import type { Endpoint, EndpointPort, EndpointSlice } from './types.ts';

/** The label linking an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** What an endpoint is to the pool. */
export type EndpointUse = 'active' | 'draining' | 'out';

/** The conditions as the API defines their absence (see the module comment). */
export function endpointUse(endpoint: Endpoint): EndpointUse {
  const conditions = endpoint.conditions ?? {};
  const ready = conditions.ready ?? true;
  const serving = conditions.serving ?? ready;
  const terminating = conditions.terminating ?? false;
  if (ready && !terminating) return 'active';
  if (serving && terminating) return 'draining';
  // Not ready and not terminating: a pod failing its readiness probe. Terminating and not serving: on its way out.
  return 'out';
}

/** The slice's port for `port` (a name, or the endpoints' port number), TCP only. */
export function slicePort(slice: EndpointSlice, port: string | number): number | undefined {
  const found = (slice.ports ?? []).find((p: EndpointPort) => (p.protocol ?? 'TCP') === 'TCP' && (typeof port === 'number' ? p.port === port : (p.name ?? '') === port));
  const number = found?.port;
  return typeof number === 'number' && number >= 1 && number <= 65535 ? number : undefined;
}

/** The members the slices describe for `port`, in a stable order (by address). */
export function membersFromSlices(slices: Iterable<EndpointSlice>, port: string | number): DiscoveredBackend[] {
  const members = new Map<string, DiscoveredBackend>();
  for (const slice of slices) {
    const family = slice.addressType;
    if (family !== 'IPv4' && family !== 'IPv6') continue;
    const number = slicePort(slice, port);
    if (number === undefined) continue;
    for (const endpoint of slice.endpoints ?? []) {
      const use = endpointUse(endpoint);
      if (use === 'out') continue;
      const raw = endpoint.addresses?.[0];
      if (raw === undefined) continue;
      const host = family === 'IPv4' ? (isIPv4(raw) ? raw : undefined) : isIPv6(raw) ? raw.toLowerCase() : undefined;
      if (host === undefined) continue;
      const key = family === 'IPv6' ? `[${host}]:${number}` : `${host}:${number}`;
      const terminating = use === 'draining';
      const known = members.get(key);
      if (known !== undefined && !known.terminating) continue; // an active report wins over a draining one
      const name = endpoint.targetRef?.name ?? endpoint.hostname;
      members.set(key, { address: { host, port: number }, weight: 1, terminating, ...(name === undefined ? {} : { name }) });
    }
  }
  return [...members.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, member]) => member);
}
