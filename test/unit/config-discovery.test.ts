/**
 * `pools.<name>.discovery`: what the file may say (dns with `name` and `port`,
 * or `srv`), the resolved config, every wrong combination with its position
 * and message, the warnings a discovered pool no longer gets, and the offline
 * tools: `usher explain` says where the members come from without resolving
 * anything, and `usher status` prints each source's state.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PoolView } from '../../src/admin/views.ts';
import { discoveryLines } from '../../src/cli/status.ts';
import { configJsonSchema, parseConfig } from '../../src/config/index.ts';
import type { JsonSchemaNode } from '../../src/config/json-schema.ts';
import { explainPool } from '../../src/explain/pool.ts';
import type { RouteRequest } from '../../src/route/request.ts';

function yaml(pool: string): string {
  return `listeners:\n  - name: web\n    bind: 127.0.0.1:8080\n    routes: [{ pool: api }]\npools:\n  api:\n${pool.replace(/^/gm, '    ')}\n`;
}

function parsed(pool: string) {
  const result = parseConfig(yaml(pool), 'usher.yaml', {});
  if (!result.ok) assert.fail(result.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  return result;
}

function errors(pool: string): string[] {
  const result = parseConfig(yaml(pool), 'usher.yaml', {});
  if (result.ok) assert.fail('expected errors');
  return result.errors.map((e) => `${e.line}:${e.column} ${e.path}: ${e.message}`);
}

test('discovery.dns resolves to an address or an SRV query with its defaults', () => {
  assert.deepEqual(parsed('discovery: { dns: { name: API.internal., port: 8080 } }').config.pools['api']!.discovery, {
    dns: { type: 'address', name: 'api.internal', port: 8080, family: 'any', holdMs: 30_000, timeoutMs: 2000 },
  });
  assert.deepEqual(parsed('discovery:\n  dns: { srv: _http._tcp.api.internal, family: ipv4, refresh: 10s, hold: 0s, timeout: 500ms, resolvers: [10.0.0.2, "127.0.0.1:5353", "[::1]:53", "fd00::53"] }').config.pools['api']!.discovery, {
    dns: { type: 'srv', name: '_http._tcp.api.internal', family: 'ipv4', refreshMs: 10_000, holdMs: 0, timeoutMs: 500, resolvers: ['10.0.0.2', '127.0.0.1:5353', '[::1]:53', 'fd00::53'] },
  });
});

test('a discovered pool needs no backends, and gets no "no backends" or "no primary" warning; backends beside discovery are fine', () => {
  assert.deepEqual(parsed('discovery: { dns: { name: api.internal, port: 8080 } }').warnings, []);
  assert.deepEqual(parsed('backends: [{ address: "10.0.0.1:80", backup: true }]\ndiscovery: { dns: { name: api.internal, port: 8080 } }').warnings, []);
  assert.equal(parsed('backends: []').warnings.length, 1, 'without discovery the warning stays');
});

test('wrong discovery configs: each problem at its key, with what to write instead', () => {
  assert.deepEqual(errors('discovery: { dns: { name: a.test, srv: _x._tcp.a.test, port: 80 } }'), [
    '7:31 pools.api.discovery.dns.name: give "name" (A/AAAA records, with "port") or "srv" (SRV records), not both, got "a.test"',
    '7:66 pools.api.discovery.dns.port: port does not apply to srv: SRV records carry each target\'s port, got 80',
  ]);
  assert.deepEqual(errors('discovery: { dns: { name: a.test } }'), ['7:23 pools.api.discovery.dns.port: name needs "port": A and AAAA records carry no port']);
  assert.deepEqual(errors('discovery: { dns: { family: ipv4 } }'), ['7:23 pools.api.discovery.dns: give "name" (A/AAAA records, with "port") or "srv" (SRV records)']);
  assert.deepEqual(errors('discovery: {}'), ['7:16 pools.api.discovery: name a discovery source: dns or kubernetes']);
  assert.deepEqual(errors('discovery: { dns: { name: 10.0.0.1, port: 80 } }'), ['7:31 pools.api.discovery.dns.name: an IP address needs no discovery: list it under backends, got "10.0.0.1"']);
  assert.deepEqual(errors('discovery: { dns: { name: "a.test:80", port: 80 } }'), ['7:31 pools.api.discovery.dns.name: expected a DNS name such as "api.internal" (no port here: set "port"), got "a.test:80"']);
  assert.deepEqual(errors('discovery: { dns: { name: a.test, port: 80, refresh: 500ms, hold: 1, resolvers: [dns.internal], family: v4, timeout: 1ms } }'), [
    '7:58 pools.api.discovery.dns.refresh: duration must be at least 1s (it is the shortest TTL usher follows), got "500ms"',
    '7:71 pools.api.discovery.dns.hold: expected a duration such as "500ms", "5s", "1m", "1h" or "1d" (the unit is required), got 1',
    '7:86 pools.api.discovery.dns.resolvers[0]: expected a name server address: an IP address, optionally with ":port" (IPv6 in brackets with a port, "[::1]:53"), got "dns.internal"',
    '7:109 pools.api.discovery.dns.family: expected one of ipv4, ipv6, any (did you mean "ipv4"?), got "v4"',
    '7:122 pools.api.discovery.dns.timeout: duration must be at least 10ms (shorter than any network round trip), got "1ms"',
  ]);
  assert.deepEqual(errors('discovery: { dns: { srv: _x._tcp.a.test, ttl: 5s } }'), ['7:46 pools.api.discovery.dns.ttl: unknown key "ttl"; expected one of: name, port, srv, family, refresh, hold, resolvers, timeout']);
});

test('the JSON Schema describes discovery, open to other kinds of source beside dns', () => {
  const pool = (configJsonSchema() as JsonSchemaNode).properties!['pools']!.additionalProperties as JsonSchemaNode;
  const discovery = pool.properties!['discovery']!;
  assert.deepEqual(Object.keys(discovery.properties!), ['dns', 'kubernetes']);
  assert.deepEqual(Object.keys(discovery.properties!['dns']!.properties!), ['name', 'port', 'srv', 'family', 'refresh', 'hold', 'resolvers', 'timeout']);
});

const request: RouteRequest = { method: 'GET', target: '/', path: '/', query: '', host: 'x', headers: [] } as unknown as RouteRequest;

test('usher explain resolves nothing: from the file it names the DNS query and cannot tell the pick; live it shows what usher found', () => {
  const config = parsed('algorithm: hash\nbackends: [{ address: "10.0.0.1:80" }]\ndiscovery: { dns: { srv: _http._tcp.api.internal } }').config.pools['api']!;
  const file = explainPool('api', config, request, '192.0.2.1', undefined);
  assert.equal(file.discovery, 'members from DNS, SRV _http._tcp.api.internal');
  assert.equal(file.mode, 'unknown');
  assert.equal(file.pick.computable, false);
  assert.match(file.pick.text, /explain does not resolve/);
  const live: PoolView = {
    name: 'api', algorithm: 'hash', mode: 'primary', queued: 0, backends: [],
    discovery: { sources: [{ source: 'dns', query: 'SRV _http._tcp.api.internal', state: 'failing', members: 2, lastSuccessAt: null, lastSuccessAgeMs: 4200, lastError: 'SRV _http._tcp.api.internal: ESERVFAIL', nextLookupInMs: 800, records: [] }] },
  };
  assert.equal(explainPool('api', config, request, '192.0.2.1', [live]).discovery, 'members from DNS, SRV _http._tcp.api.internal: failing, 2 found, last answer 4.2 s ago (SRV _http._tcp.api.internal: ESERVFAIL)');
  assert.deepEqual(discoveryLines([live]), ['api: DNS SRV _http._tcp.api.internal: failing, 2 members, last answer 4.2s ago, next in 0.8s: SRV _http._tcp.api.internal: ESERVFAIL']);
});

test('usher explain --admin in fallback mode: a hash pick lands on a terminating backend that still serves', () => {
  const config = parsed('algorithm: hash\nhashKey: path\ndiscovery: { dns: { name: api.internal, port: 80 } }').config.pools['api']!;
  const backend = (address: string, terminating: boolean, adminState: string) => ({
    address, name: null, state: adminState === 'enabled' ? 'healthy' : adminState, adminState, healthy: true, ejected: false, weight: 1, effectiveWeight: 1, backup: false,
    discovered: true, priority: 0, terminating, inFlight: 0, maxConnections: null, connections: { open: 0, idle: 0 },
    counters: { requests: 0, failures: 0, responses5xx: 0, retriedAway: 0, bytesOut: 0, ejections: 0 }, recent: { windowSeconds: 10, requests: 0, errors: 0, p50Ms: null, p99Ms: null }, outlier: null, checks: [],
  }) as unknown as PoolView['backends'][number];
  const live: PoolView = { name: 'api', algorithm: 'hash', mode: 'fallback', queued: 0, discovery: null, backends: [backend('10.0.0.1:80', true, 'draining'), backend('10.0.0.2:80', true, 'draining'), backend('10.0.0.3:80', false, 'disabled')] };
  const pick = explainPool('api', config, request, '192.0.2.1', [live]).pick;
  assert.equal(pick.computable, true);
  assert.ok(pick.backend === '10.0.0.1:80' || pick.backend === '10.0.0.2:80', String(pick.backend));
});
