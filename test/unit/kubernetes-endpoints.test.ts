/**
 * EndpointSlices → pool members (src/kubernetes/endpoints.ts): conditions as
 * the API defines their absence, ports by name or number, address families,
 * slices merged and endpoints deduplicated.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { endpointUse, membersFromSlices, slicePort } from '../../src/kubernetes/endpoints.ts';
import type { Endpoint, EndpointSlice } from '../../src/kubernetes/types.ts';

const endpoint = (ip: string, conditions?: Endpoint['conditions'], pod?: string): Endpoint => ({ addresses: [ip], ...(conditions === undefined ? {} : { conditions }), ...(pod === undefined ? {} : { targetRef: { kind: 'Pod', name: pod } }) });
const slice = (endpoints: Endpoint[], ports: EndpointSlice['ports'] = [{ name: 'http', port: 8080, protocol: 'TCP' }], addressType = 'IPv4'): EndpointSlice => ({ addressType, endpoints, ports });
const keys = (members: ReturnType<typeof membersFromSlices>): string[] => members.map((m) => `${m.address.host.includes(':') ? `[${m.address.host}]` : m.address.host}:${m.address.port}${m.terminating ? ' draining' : ''}`);

test('conditions: ready nil means true, serving nil means ready, terminating nil means false', () => {
  const cases: [Endpoint['conditions'], string][] = [
    [undefined, 'active'],
    [{}, 'active'],
    [{ ready: null, serving: null, terminating: null }, 'active'],
    [{ ready: true }, 'active'],
    [{ ready: false }, 'out'], // serving follows ready: not serving
    [{ ready: false, serving: true }, 'out'], // serving but not terminating: failing readiness, not draining
    [{ ready: false, serving: true, terminating: true }, 'draining'],
    [{ ready: false, terminating: true }, 'out'], // serving nil ⇒ ready (false)
    [{ ready: false, serving: false, terminating: true }, 'out'],
    [{ ready: true, terminating: true }, 'draining'], // inconsistent, but terminating wins: serving nil ⇒ ready ⇒ true
    [{ ready: true, serving: false, terminating: true }, 'out'],
    [{ terminating: true }, 'draining'],
  ];
  for (const [conditions, expected] of cases) assert.equal(endpointUse(endpoint('10.0.0.1', conditions)), expected, JSON.stringify(conditions));
});

test('the port is found by name or by the endpoints\' number, TCP only; a slice without it gives nothing', () => {
  const ports: EndpointSlice['ports'] = [{ name: 'http', port: 8080 }, { name: 'metrics', port: 9090, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }, { name: '', port: 7000 }];
  const s = slice([endpoint('10.0.0.1')], ports);
  assert.equal(slicePort(s, 'http'), 8080, 'protocol absent means TCP');
  assert.equal(slicePort(s, 'metrics'), 9090);
  assert.equal(slicePort(s, 9090), 9090);
  assert.equal(slicePort(s, 'dns'), undefined, 'UDP ports are not usable');
  assert.equal(slicePort(s, 53), undefined);
  assert.equal(slicePort(s, ''), 7000, 'a Service\'s unnamed single port has the empty name');
  assert.equal(slicePort(s, 80), undefined, 'numbers are the endpoints\' ports, not the Service\'s');
  assert.equal(slicePort(slice([endpoint('10.0.0.1')], [{ name: 'http', port: null }]), 'http'), undefined, 'a port without a number is not usable');
  assert.deepEqual(membersFromSlices([slice([endpoint('10.0.0.1')], [{ name: 'grpc', port: 9000 }])], 'http'), []);
});

test('slices merge; an endpoint in two slices is one member, an active report winning over a draining one; order is stable', () => {
  const a = slice([endpoint('10.0.0.3', { ready: false, serving: true, terminating: true }), endpoint('10.0.0.1', {}, 'pod-1')]);
  const b = slice([endpoint('10.0.0.2'), endpoint('10.0.0.3', { ready: true })]);
  const c = slice([endpoint('10.0.0.1', { ready: false, serving: true, terminating: true })]);
  const members = membersFromSlices([a, b, c], 'http');
  assert.deepEqual(keys(members), ['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080']);
  assert.equal(members[0]!.name, 'pod-1', 'named after the pod');
  assert.deepEqual(keys(membersFromSlices([c, b, a], 'http')), keys(members), 'slice order does not matter');
  assert.ok(members.every((m) => m.weight === 1));
});

test('terminating endpoints that serve are draining members; the rest leave', () => {
  const members = membersFromSlices([slice([
    endpoint('10.0.0.1', { ready: true }),
    endpoint('10.0.0.2', { ready: false, serving: true, terminating: true }),
    endpoint('10.0.0.3', { ready: false, serving: false, terminating: true }),
    endpoint('10.0.0.4', { ready: false, serving: false, terminating: false }),
  ])], 'http');
  assert.deepEqual(keys(members), ['10.0.0.1:8080', '10.0.0.2:8080 draining']);
});

test('IPv4 and IPv6 slices only; an address that is not of the slice\'s family is skipped; only the first address counts', () => {
  const v6 = slice([endpoint('2001:DB8::1'), { addresses: ['2001:db8::2', '2001:db8::99'] }], undefined, 'IPv6');
  const fqdn = slice([endpoint('pod.example.com')], undefined, 'FQDN');
  const wrong = slice([endpoint('2001:db8::5'), endpoint('not-an-ip')]);
  const members = membersFromSlices([v6, fqdn, wrong, slice([endpoint('10.0.0.1')])], 'http');
  assert.deepEqual(keys(members), ['10.0.0.1:8080', '[2001:db8::1]:8080', '[2001:db8::2]:8080'], 'IPv6 lowercased; FQDN and mismatched families ignored');
  assert.deepEqual(membersFromSlices([{ addressType: 'IPv4', endpoints: null, ports: null }], 'http'), [], 'null lists are empty');
});
