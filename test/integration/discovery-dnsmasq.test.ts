/**
 * The cross-check of DNS discovery against a real DNS server: Debian's
 * dnsmasq (2.90), started by the test on a free loopback port
 * (test/helpers/dnsmasq.ts), instead of the scripted server of
 * discovery-dns.test.ts. What it covers: A and AAAA answers with dnsmasq's
 * TTLs (`--local-ttl=1`), NODATA for the family a name lacks, changes picked
 * up at the TTL (the hosts file re-read on SIGHUP) under load without a failed
 * request, NXDOMAIN held then emptied; SRV records (`--srv-host`) with
 * priorities and weights, the targets' `--host-record`s, and a changed SRV
 * set after a dnsmasq restart (which the resolver sees as failed lookups in
 * between: the last answer keeps serving).
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { DnsSourceStatus } from '../../src/discovery/dns-source.ts';
import type { Usher } from '../../src/runtime/usher.ts';
import { DNSMASQ, startDnsmasq } from '../helpers/dnsmasq.ts';
import { steadyLoad } from '../helpers/load.ts';
import { startOrigin, startOriginsOnOnePort, type Origin } from '../helpers/origin.ts';
import { send } from '../helpers/send.ts';
import { startUsher } from '../helpers/usher.ts';
import { waitFor } from '../helpers/wait.ts';

const skip = DNSMASQ === undefined ? 'dnsmasq is not installed: .ci/run installs it (apt-get install dnsmasq)' : false;

async function usherFor(t: TestContext, discovery: string, pool = ''): Promise<{ usher: Usher; port: number }> {
  const usher = await startUsher(`listeners:
  - name: web
    bind: 127.0.0.1:0
    routes: [{ pool: api }]
pools:
  api:
${pool}    discovery: { dns: ${discovery} }
`);
  t.after(() => usher.stop({ timeoutMs: 1000 }));
  return { usher, port: usher.address('web').port };
}

function members(usher: Usher): string[] {
  return usher.snapshot.pools.get('api')!.control.discovered.map((b) => b.key).sort();
}

test('dnsmasq, A/AAAA: both families with their TTL, a change under load loses no request, NXDOMAIN held then emptied', { skip }, async (t) => {
  const origins = await startOriginsOnOnePort(['127.0.0.2', '127.0.0.3', '127.0.0.4', '::1']);
  t.after(() => Promise.all(origins.map((o) => o.close())));
  const port = origins[0]!.port;
  const dnsmasq = await startDnsmasq(t, [], ['127.0.0.2 web.test', '127.0.0.3 web.test', '::1 web.test', '127.0.0.4 four.test']);
  const { usher, port: web } = await usherFor(t, `{ name: web.test, port: ${port}, hold: 1s, resolvers: ["${dnsmasq.address}"] }`, '    algorithm: round-robin\n');
  assert.deepEqual(members(usher), [`127.0.0.2:${port}`, `127.0.0.3:${port}`, `[::1]:${port}`]);
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) seen.add((await send(web, `/${i}`)).body);
  assert.deepEqual([...seen].sort(), ['127.0.0.2', '127.0.0.3', '::1']);
  const records = (usher.snapshot.pools.get('api')!.discovery.view()!.sources[0] as DnsSourceStatus).records;
  assert.deepEqual(records.map((r) => [r.type, r.result, r.ttlSeconds]), [['A', 'ok', 1], ['AAAA', 'ok', 1]], 'dnsmasq\'s --local-ttl');

  const load = steadyLoad(`http://127.0.0.1:${web}`, { concurrency: 4, maxMs: 15_000 });
  await dnsmasq.setHosts(['127.0.0.4 web.test', '127.0.0.4 four.test'], { name: 'web.test', addresses: ['127.0.0.4'] });
  await waitFor(() => members(usher).join() === `127.0.0.4:${port}`, 'the new address, at the next TTL', 5000, 20);
  const changed = load.completed();
  await waitFor(() => load.completed() > changed + 50, 'traffic after the change', 5000, 10);
  const result = await load.stop();
  assert.deepEqual(result.failures, []);
  assert.ok((result.byOrigin.get('127.0.0.4') ?? 0) > 0);
  const aaaa = (usher.snapshot.pools.get('api')!.discovery.view()!.sources[0] as DnsSourceStatus).records.find((r) => r.type === 'AAAA')!;
  assert.equal(aaaa.error, 'ENODATA', 'the name is known without AAAA: NODATA, not an error');

  await dnsmasq.setHosts(['127.0.0.4 four.test'], { name: 'web.test', addresses: [] });
  await waitFor(async () => (await send(web, '/gone')).status === 503, 'NXDOMAIN past hold: no backend', 8000, 50);
  const source = usher.snapshot.pools.get('api')!.discovery.view()!.sources[0] as DnsSourceStatus;
  assert.equal(source.state, 'empty');
  assert.equal(source.records.find((r) => r.type === 'A')!.error, 'ENOTFOUND');
});

test('dnsmasq, SRV: priorities and weights, the targets\' addresses; a changed SRV set after a restart', { skip }, async (t) => {
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((name) => startOrigin(name)));
  t.after(() => Promise.all([a, b, c].map((o: Origin | undefined) => o!.close())));
  const records = (entries: readonly (readonly [string, Origin, number, number])[]): string[] => [
    ...entries.map(([target, origin, priority, weight]) => `--srv-host=_http._tcp.svc.test,${target},${origin.port},${priority},${weight}`),
    '--host-record=a.svc.test,127.0.0.1',
    '--host-record=b.svc.test,127.0.0.1',
    '--host-record=c.svc.test,127.0.0.1',
  ];
  const dnsmasq = await startDnsmasq(t, records([['a.svc.test', a!, 10, 30], ['b.svc.test', b!, 10, 10], ['c.svc.test', c!, 20, 10]]));
  const { usher, port } = await usherFor(t, `{ srv: _http._tcp.svc.test, family: ipv4, refresh: 1s, timeout: 300ms, resolvers: ["${dnsmasq.address}"] }`, '    algorithm: round-robin\n');
  const control = usher.snapshot.pools.get('api')!.control;
  const summary = (): string[] => control.discovered.map((m) => `${m.name} ${m.priority} ${m.configuredWeight} ${m.backup ? 'backup' : 'primary'}`).sort();
  assert.deepEqual(summary(), ['a.svc.test 10 30 primary', 'b.svc.test 10 10 primary', 'c.svc.test 20 10 backup']);
  const counts: Record<string, number> = {};
  for (let i = 0; i < 40; i++) {
    const reply = await send(port, `/${i}`);
    counts[reply.body] = (counts[reply.body] ?? 0) + 1;
  }
  assert.deepEqual(counts, { a: 30, b: 10 });

  const load = steadyLoad(`http://127.0.0.1:${port}`, { concurrency: 2, maxMs: 15_000 });
  // Group 10 goes; b moves to group 5. A lookup made while dnsmasq restarts fails: the last answer serves meanwhile.
  await dnsmasq.restart(records([['b.svc.test', b!, 5, 10], ['c.svc.test', c!, 20, 10]]));
  await waitFor(() => summary().join() === ['b.svc.test 5 10 primary', 'c.svc.test 20 10 backup'].join(), 'the new SRV set', 6000, 20);
  const changed = load.completed();
  await waitFor(() => load.completed() > changed + 30, 'traffic after the change', 5000, 10);
  const result = await load.stop();
  assert.deepEqual(result.failures, []);
  const after = await send(port, '/after');
  assert.equal(after.body, 'b');
});
