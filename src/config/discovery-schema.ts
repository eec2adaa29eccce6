/**
 * The schema of a pool's `discovery` (part of `schema.ts`, kept apart): one
 * key per kind of source, `dns` today. A source's members join the pool's
 * `backends` at run time (src/discovery/); nothing here resolves anything, so
 * `usher check` and `usher explain` stay offline.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import type { DiscoveryConfig, DnsDiscoveryConfig } from './types.ts';
import { documented, duration, integerIn } from './values.ts';
import { kubernetesDiscoverySchema } from './kubernetes-schema.ts';

export const DNS_FAMILIES = ['ipv4', 'ipv6', 'any'] as const;

export const DNS_DEFAULTS = { family: 'any', hold: '30s', timeout: '2s', srvRefresh: '30s', minTtl: '1s', maxTtl: '300s' } as const;

const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
const NAME_EXPECTED = 'expected a DNS name such as "api.internal"';

/** A DNS name to look up, lowercase, without the trailing dot; IP addresses are refused (they need no lookup). */
function dnsName(expected: string, doc: { description: string; examples: readonly unknown[] }) {
  return documented(
    z.string({ error: expected }).transform((text, ctx) => {
      const problem = dnsNameProblem(text);
      if (problem === undefined) return text.replace(/\.$/, '').toLowerCase();
      ctx.issues.push({ code: 'custom', message: problem, input: text });
      return z.NEVER;
    }),
    doc,
  );
}

function dnsNameProblem(text: string): string | undefined {
  if (isIPv4(text) || isIPv6(text.replace(/^\[(.*)\]$/, '$1'))) return 'an IP address needs no discovery: list it under backends';
  if (text.includes(':')) return `${NAME_EXPECTED} (no port here: set "port")`;
  const labels = (text.endsWith('.') ? text.slice(0, -1) : text).split('.');
  if (text.length === 0 || text.length > 253 || !labels.every((label) => LABEL.test(label))) return NAME_EXPECTED;
  return undefined;
}

const RESOLVER_EXPECTED = 'expected a name server address: an IP address, optionally with ":port" (IPv6 in brackets with a port, "[::1]:53")';

/** `ip`, `ip:port`, `[ipv6]:port` or a bare IPv6 address, as `Resolver.setServers` takes it. */
export function parseResolver(text: string): string | undefined {
  if (isIPv4(text) || isIPv6(text)) return text;
  const bracketed = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text);
  const plain = /^([\d.]+):(\d{1,5})$/.exec(text);
  const match = bracketed ?? plain;
  if (match === null) return undefined;
  const [, host, portText] = match;
  const port = Number(portText);
  if (!(port >= 1 && port <= 65535)) return undefined;
  if (bracketed !== null ? !isIPv6(host!) : !isIPv4(host!)) return undefined;
  return text;
}

const resolverSchema = documented(
  z.string({ error: RESOLVER_EXPECTED }).transform((text, ctx) => {
    const resolver = parseResolver(text);
    if (resolver !== undefined) return resolver;
    ctx.issues.push({ code: 'custom', message: RESOLVER_EXPECTED, input: text });
    return z.NEVER;
  }),
  { description: 'A name server: an IP address, optionally with ":port" (default 53).', examples: ['10.0.0.2', '127.0.0.1:5353', '[fd00::53]:53'] },
);

const dnsSchema = documented(
  z.strictObject({
    name: dnsName(NAME_EXPECTED, { description: 'Look up the A/AAAA records of this name: each address is a member, on `port`. Give `name` or `srv`.', examples: ['api.internal'] }).optional(),
    port: integerIn('port', 1, 65535, { description: 'With `name`: the port every address serves on (A and AAAA records carry none). Not with `srv`: SRV records carry each target\'s port.', examples: [8080] }).optional(),
    srv: dnsName('expected an SRV name such as "_http._tcp.api.internal"', { description: 'Look up the SRV records of this name, then each target\'s A/AAAA records: members are target addresses on the record\'s port, weighted by its weight; only the lowest priority group with an available member takes requests, the others stand by as backups. Give `name` or `srv`.', examples: ['_http._tcp.api.internal'] }).optional(),
    family: documented(z.enum(DNS_FAMILIES, { error: `expected one of ${DNS_FAMILIES.join(', ')}` }), { description: 'Address records to ask for: `ipv4` (A), `ipv6` (AAAA) or `any` (both; a name with only one kind is fine). Use `ipv4` when the machine running usher has no IPv6 route.', examples: ['ipv4'] }).default(DNS_DEFAULTS.family),
    refresh: duration({ description: 'Ask again this long after each answer, whatever its TTL. Unset: A/AAAA records are asked again when their TTL ends (at least 1s, at most 300s after the answer), SRV records every 30s.', examples: ['10s'] }, { ms: 1000, why: 'it is the shortest TTL usher follows' }).optional(),
    hold: duration({ description: 'After NXDOMAIN or an answer without records, keep the last members this long (HAProxy `hold nx`), then remove them. `0s` removes them at once. Failures (SERVFAIL, REFUSED, no answer) never remove members: the last good answer stays until a lookup succeeds.', examples: ['10s', '0s'] }, { ms: 0, why: 'it is a time to wait' }).prefault(DNS_DEFAULTS.hold),
    resolvers: documented(z.array(resolverSchema, { error: 'expected a list of name server addresses' }).min(1, { error: 'list at least one name server, or leave out "resolvers" to use the system\'s' }), { description: 'Name servers to ask, in order. Unset: the system\'s (/etc/resolv.conf).', examples: [['10.0.0.2', '127.0.0.1:5353']] }).optional(),
    timeout: duration({ description: 'A lookup that has no answer after this long fails as a timeout (the query is sent again once within it).', examples: ['1s'] }, { ms: 10, why: 'shorter than any network round trip' }).prefault(DNS_DEFAULTS.timeout),
  }, { error: 'expected a dns mapping with "name" (and "port") or "srv"' }).transform((dns, ctx): DnsDiscoveryConfig => {
    const settings = {
      family: dns.family,
      ...(dns.refresh === undefined ? {} : { refreshMs: dns.refresh }),
      holdMs: dns.hold,
      ...(dns.resolvers === undefined ? {} : { resolvers: dns.resolvers }),
      timeoutMs: dns.timeout,
    };
    if (dns.srv !== undefined) {
      let bad = false;
      if (dns.name !== undefined) {
        ctx.issues.push({ code: 'custom', message: 'give "name" (A/AAAA records, with "port") or "srv" (SRV records), not both', input: dns.name, path: ['name'] });
        bad = true;
      }
      if (dns.port !== undefined) {
        ctx.issues.push({ code: 'custom', message: 'port does not apply to srv: SRV records carry each target\'s port', input: dns.port, path: ['port'] });
        bad = true;
      }
      return bad ? z.NEVER : { ...settings, type: 'srv', name: dns.srv };
    }
    if (dns.name === undefined) {
      ctx.issues.push({ code: 'custom', message: 'give "name" (A/AAAA records, with "port") or "srv" (SRV records)', input: dns });
      return z.NEVER;
    }
    if (dns.port === undefined) {
      ctx.issues.push({ code: 'custom', message: 'name needs "port": A and AAAA records carry no port', input: dns, path: ['port'] });
      return z.NEVER;
    }
    return { ...settings, type: 'address', name: dns.name, port: dns.port };
  }),
  {
    description: 'Members from DNS: the A/AAAA records of `name` (on `port`), or the SRV records of `srv`. Looked up by the main thread only, never blocking a request; see docs/discovery.md.',
    examples: [{ name: 'api.internal', port: 8080 }, { srv: '_http._tcp.api.internal', hold: '10s' }],
  },
);

/** A pool's `discovery`: a mapping with one key per kind of source. */
export const discoverySchema = documented(
  z.strictObject({
    dns: dnsSchema.optional(),
    kubernetes: kubernetesDiscoverySchema.optional(),
  }, { error: 'expected a discovery mapping, e.g. { dns: { name: api.internal, port: 8080 } }' }).transform((discovery, ctx): DiscoveryConfig => {
    if (Object.values(discovery).every((source) => source === undefined)) {
      ctx.issues.push({ code: 'custom', message: 'name a discovery source: dns or kubernetes', input: discovery });
      return z.NEVER;
    }
    return { ...(discovery.dns === undefined ? {} : { dns: discovery.dns }), ...(discovery.kubernetes === undefined ? {} : { kubernetes: discovery.kubernetes }) };
  }),
  {
    description: 'Members found at run time, besides (or instead of) `backends`: they join and leave as the source changes, while a member whose address stays keeps its health, counters and connections. The file\'s `backends` are never changed by discovery. See docs/discovery.md (DNS) and docs/kubernetes.md.',
    examples: [{ dns: { name: 'api.internal', port: 8080 } }, { dns: { srv: '_http._tcp.api.internal' } }, { kubernetes: { namespace: 'prod', service: 'api', port: 'http' } }],
  },
);
