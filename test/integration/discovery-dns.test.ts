/**
 * DNS discovery end to end: a real usher whose pools find their members in
 * a DNS server written for the tests (test/helpers/dns-server.ts: real UDP on
 * loopback, any rcode, TTL or silence), real backends on 127.0.0.2, .3, …
 * (one port for all: A records carry none), real clients. Numbered as in the
 * research (shared/research/cores-and-discovery.md, B7): D1 TTLs, D2 SRV
 * priority groups and weights, D3 failures keep the last answer, D4 NXDOMAIN
 * and NODATA held then emptied, D5 a removed address drains, D6 no request
 * lost in a change; then worker threads, start-up, reloads and what operators
 * see. The schedules themselves are unit-tested on a fake clock in
 * test/unit/discovery-dns.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test, type TestContext } from 'node:test';
import type { PoolView } from '../../src/admin/views.ts';
import type { DnsSourceStatus } from '../../src/discovery/dns-source.ts';
import type { Usher } from '../../src/runtime/usher.ts';
import { runCli } from '../helpers/cli.ts';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.ts';
import { steadyLoad } from '../helpers/load.ts';
import { getOnConnection } from '../helpers/one-shot.ts';
import { answerWithName, startOrigin, startOriginsOnOnePort, type Origin, type OriginHandler } from '../helpers/origin.ts';
import { send } from '../helpers/send.ts';
import { configFromYaml, startUsher } from '../helpers/usher.ts';
import { waitFor } from '../helpers/wait.ts';

async function dnsServer(t: TestContext): Promise<DnsServer> {
  const dns = await startDnsServer();
  t.after(() => dns.close());
  return dns;
}

/** `count` origins on 127.0.0.2, 127.0.0.3, … sharing one port, each named by its address (the `x-origin` header and the body say which answered). */
async function originsOnOnePort(t: TestContext, count: number, handler: OriginHandler = answerWithName): Promise<Origin[]> {
  const all = await startOriginsOnOnePort(Array.from({ length: count }, (_, i) => `127.0.0.${i + 2}`), handler);
  t.after(() => Promise.all(all.map((o) => o.close())));
  return all;
}

/** An usher with an admin API and one listener routing `/<pool>/…` to each pool (the first pool also takes the rest). */
async function usherWith(t: TestContext, pools: Record<string, string>, top = ''): Promise<{ usher: Usher; port: number }> {
  const usher = await startUsher(yamlWith(pools, top));
  t.after(() => usher.stop({ timeoutMs: 1000 }));
  return { usher, port: usher.address('web').port };
}

function yamlWith(pools: Record<string, string>, top = ''): string {
  const names = Object.keys(pools);
  return `admin: { bind: 127.0.0.1:0 }
${top}
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
${names.map((name) => `      - { match: { pathPrefix: /${name} }, pool: ${name} }`).join('\n')}
      - { pool: ${names[0]} }
pools:
${names.map((name) => `  ${name}:\n${pools[name]!.replace(/^/gm, '    ')}`).join('\n')}
`;
}

function dnsSource(usher: Usher, pool: string): DnsSourceStatus {
  const view = usher.snapshot.pools.get(pool)!.discovery.view();
  assert.ok(view !== undefined, `pool ${pool} discovers`);
  return view.sources[0]! as DnsSourceStatus; // these pools discover from DNS only
}

function members(usher: Usher, pool: string): string[] {
  return usher.snapshot.pools.get(pool)!.control.discovered.map((b) => b.key).sort();
}

/** Times between consecutive queries for `name` of `type`, ms. */
function gaps(dns: DnsServer, name: string, type = 'A'): number[] {
  const times = dns.queries.filter((q) => q.name === name && q.type === type).map((q) => q.at);
  return times.slice(1).map((at, i) => Math.round(at - times[i]!));
}

async function metric(usher: Usher, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const text = await usher.renderMetrics();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

test('D1: a pool of the name\'s A records; TTL 1 is asked about every second, TTL 0 clamps to 1 s, TTL 3600 to 300 s', async (t) => {
  const dns = await dnsServer(t);
  const [o2, o3] = await originsOnOnePort(t, 2);
  dns.set('one.test', { a: ['127.0.0.2', '127.0.0.3'], ttl: 1 });
  dns.set('zero.test', { a: ['127.0.0.2'], ttl: 0 });
  dns.set('hour.test', { a: ['127.0.0.3'], ttl: 3600 });
  const dnsOf = (name: string): string => `discovery: { dns: { name: ${name}, port: ${o2!.port}, family: ipv4, resolvers: ["${dns.address}"] } }`;
  const { usher, port } = await usherWith(t, { one: `algorithm: round-robin\n${dnsOf('one.test')}`, zero: dnsOf('zero.test'), hour: dnsOf('hour.test') });
  // Start waited for the first answers: the pools serve from the first request.
  const served = [];
  for (let i = 0; i < 4; i++) served.push((await send(port, '/one/x')).body);
  assert.deepEqual(served.sort(), ['127.0.0.2', '127.0.0.2', '127.0.0.3', '127.0.0.3']);
  assert.equal((await send(port, '/zero/x')).body, '127.0.0.2');
  assert.equal((await send(port, '/hour/x')).body, '127.0.0.3');
  await waitFor(() => dns.count('one.test') >= 5 && dns.count('zero.test') >= 5, 'four TTLs of 1 s', 10_000, 50);
  for (const name of ['one.test', 'zero.test']) {
    for (const gap of gaps(dns, name)) assert.ok(gap >= 950 && gap < 2500, `${name}: asked again after ${gap} ms, expected about 1000 (${gaps(dns, name).join(', ')})`);
  }
  assert.equal(dns.count('hour.test'), 1, 'TTL 3600: not asked again yet');
  const hour = dnsSource(usher, 'hour');
  assert.ok(hour.nextLookupInMs! > 290_000 && hour.nextLookupInMs! <= 300_000, `next lookup in ${hour.nextLookupInMs} ms: 300 s after the answer`);
  assert.equal(hour.records[0]!.ttlSeconds, 3600);
  assert.equal(o3!.seen.length > 0, true);
});

test('D2: SRV weights are honoured by a weighted balancer; the lowest group with a healthy member takes the traffic, and gives it back', async (t) => {
  const dns = await dnsServer(t);
  const healthy = new Map<string, boolean>();
  const handler: OriginHandler = (req, res, origin) => {
    if (req.url === '/health') return void res.writeHead(healthy.get(origin.name) === false ? 503 : 200).end();
    answerWithName(req, res, origin);
  };
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((name) => startOrigin(name, handler)));
  t.after(() => Promise.all([a, b, c].map((o) => o!.close())));
  dns.set('_http._tcp.svc.test', {
    srv: [
      { priority: 10, weight: 30, port: a!.port, target: 'a.svc.test' },
      { priority: 10, weight: 10, port: b!.port, target: 'b.svc.test' },
      { priority: 20, weight: 10, port: c!.port, target: 'c.svc.test' },
    ],
  });
  for (const name of ['a', 'b', 'c']) dns.set(`${name}.svc.test`, { a: ['127.0.0.1'] });
  const { usher, port } = await usherWith(t, {
    svc: `algorithm: round-robin
healthCheck: { path: /health, interval: 200ms, fastInterval: 100ms, timeout: 500ms, rise: 1, fall: 1 }
discovery: { dns: { srv: _http._tcp.svc.test, family: ipv4, resolvers: ["${dns.address}"] } }`,
  });
  const pool = usher.snapshot.pools.get('svc')!;
  const tally = async (n: number): Promise<Record<string, number>> => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const reply = await send(port, `/svc/${i}`);
      assert.equal(reply.status, 200, reply.body);
      counts[reply.body] = (counts[reply.body] ?? 0) + 1;
    }
    return counts;
  };
  const byName = <T extends { name: string | null | undefined }>(list: readonly T[]): T[] => [...list].sort((x, y) => String(x.name).localeCompare(String(y.name)));
  assert.deepEqual(byName(pool.control.backends).map((m) => [m.name, m.priority, m.configuredWeight, m.backup]), [
    ['a.svc.test', 10, 30, false],
    ['b.svc.test', 10, 10, false],
    ['c.svc.test', 20, 10, true],
  ]);
  assert.deepEqual(await tally(40), { a: 30, b: 10 }, 'weights 30:10, group 20 stands by');
  healthy.set('a', false);
  healthy.set('b', false);
  await waitFor(() => pool.control.find(`127.0.0.1:${c!.port}`)!.backup === false, 'group 20 takes over', 5000);
  assert.equal(pool.control.mode, 'primary');
  assert.deepEqual(await tally(10), { c: 10 }, 'every member of group 10 fails its health check: group 20 serves');
  healthy.set('b', true);
  await waitFor(() => pool.control.find(`127.0.0.1:${c!.port}`)!.backup, 'group 10 back', 5000);
  assert.deepEqual(await tally(10), { b: 10 });
  healthy.set('a', true);
  await waitFor(() => pool.control.find(`127.0.0.1:${a!.port}`)!.available, 'a back', 5000);
  assert.deepEqual(await tally(8), { a: 6, b: 2 });
  const view = (await (await fetch(`${usher.adminUrl}/api/pools/svc`)).json()) as PoolView;
  assert.deepEqual(byName(view.backends).map((m) => [m.name, m.discovered, m.priority, m.backup]), [
    ['a.svc.test', true, 10, false],
    ['b.svc.test', true, 10, false],
    ['c.svc.test', true, 20, true],
  ]);
});

test('D2: a group whose members refuse connections hands over to the next group without a failed request, and takes it back when they return', async (t) => {
  const dns = await dnsServer(t);
  const [primary, standby] = await Promise.all([startOrigin('primary'), startOrigin('standby')]);
  t.after(() => standby!.close());
  dns.set('_http._tcp.svc.test', { srv: [{ priority: 10, weight: 1, port: primary!.port, target: 'p.svc.test' }, { priority: 20, weight: 1, port: standby!.port, target: 's.svc.test' }] });
  dns.set('p.svc.test', { a: ['127.0.0.1'] });
  dns.set('s.svc.test', { a: ['127.0.0.1'] });
  const { usher, port } = await usherWith(t, { svc: `unreachable: { backoff: 300ms, maxBackoff: 300ms }\ndiscovery: { dns: { srv: _http._tcp.svc.test, family: ipv4, resolvers: ["${dns.address}"] } }` });
  const pool = usher.snapshot.pools.get('svc')!;
  assert.equal((await send(port, '/svc/1')).body, 'primary');
  await primary!.close();
  const bodies: string[] = [];
  for (let i = 0; i < 10; i++) {
    const reply = await send(port, `/svc/${i}`);
    assert.equal(reply.status, 200, `request ${i}: ${reply.body}`);
    bodies.push(reply.body);
  }
  assert.deepEqual(bodies, Array(10).fill('standby'), 'the refused connection is retried on group 20, which then takes everything');
  assert.equal(pool.control.find(`127.0.0.1:${standby!.port}`)!.backup, false);
  const back = await startOrigin('primary', answerWithName, { port: primary!.port });
  t.after(() => back.close());
  await waitFor(async () => (await send(port, '/svc/again')).body === 'primary', 'group 10 back after its backoff', 5000, 50);
  for (let i = 0; i < 5; i++) assert.equal((await send(port, `/svc/p${i}`)).body, 'primary');
});

test('D3: SERVFAIL, REFUSED and silence keep the last members serving; retried with growing backoff; counted and shown', async (t) => {
  const dns = await dnsServer(t);
  const [o2] = await originsOnOnePort(t, 1);
  const names = { s: 'servfail.test', r: 'refused.test', q: 'silent.test' } as const;
  for (const name of Object.values(names)) dns.set(name, { a: ['127.0.0.2'], ttl: 1 });
  const pool = (name: string): string => `discovery: { dns: { name: ${name}, port: ${o2!.port}, family: ipv4, timeout: 300ms, resolvers: ["${dns.address}"] } }`;
  const { usher, port } = await usherWith(t, { s: pool(names.s), r: pool(names.r), q: pool(names.q) });
  const url = `http://127.0.0.1:${port}`;
  const loads = (['s', 'r', 'q'] as const).map((p) => steadyLoad(url, { concurrency: 1, path: `/${p}/load`, maxMs: 15_000 }));
  await waitFor(() => loads.every((load) => load.completed() > 5), 'traffic on every pool', 5000);
  const changedAt = performance.now();
  dns.set(names.s, { rcode: 'SERVFAIL' });
  dns.set(names.r, { rcode: 'REFUSED' });
  dns.set(names.q, { silent: true });
  // c-ares may ask a silent server twice within one lookup's timeout: count lookups, not packets.
  const lookups = (name: string): number[] => {
    const times = dns.queries.filter((q) => q.name === name && q.at > changedAt).map((q) => q.at);
    return times.filter((at, i) => i === 0 || at - times[i - 1]! > 400);
  };
  // The TTL's lookup fails, then retries at about 1 s and 2 s more.
  await waitFor(() => Object.values(names).every((name) => lookups(name).length >= 3), 'three failed lookups of each name', 12_000, 50);
  const results = await Promise.all(loads.map((load) => load.stop()));
  for (const result of results) {
    assert.deepEqual(result.failures, [], 'no request failed');
    assert.ok(result.ok > 0);
  }
  for (const [p, name] of Object.entries(names)) {
    assert.deepEqual(members(usher, p), [o2!.address], `${p}: the last answer stays`);
    const source = dnsSource(usher, p);
    assert.equal(source.state, 'failing');
    assert.equal(source.members, 1);
    const at = lookups(name);
    const [first, second] = [at[1]! - at[0]!, at[2]! - at[1]!];
    assert.ok(second > first * 1.25, `${name}: backoff grows (${Math.round(first)} ms, then ${Math.round(second)} ms)`);
  }
  assert.match(dnsSource(usher, 's').lastError!, /ESERVFAIL/);
  assert.match(dnsSource(usher, 'r').lastError!, /EREFUSED/);
  assert.match(dnsSource(usher, 'q').lastError!, /ETIMEOUT/);
  assert.ok((await metric(usher, 'usher_discovery_resolutions_total', { pool: 's', result: 'servfail' }))! >= 2);
  assert.ok((await metric(usher, 'usher_discovery_resolutions_total', { pool: 'r', result: 'refused' }))! >= 2);
  assert.ok((await metric(usher, 'usher_discovery_resolutions_total', { pool: 'q', result: 'timeout' }))! >= 2);
  assert.ok((await metric(usher, 'usher_discovery_resolutions_total', { pool: 'q', result: 'ok' }))! >= 1);
  assert.equal(await metric(usher, 'usher_discovery_members', { pool: 'q' }), 1);
  const last = await metric(usher, 'usher_discovery_last_success_timestamp_seconds', { pool: 'q' });
  assert.ok(last !== undefined && last * 1000 <= Date.now() && last * 1000 > Date.now() - 15_000);
  // The name answers again: back to its TTL.
  dns.set(names.s, { a: ['127.0.0.2'], ttl: 1 });
  await waitFor(() => dnsSource(usher, 's').state === 'ok', 'servfail.test answers again', 10_000, 50);
});

test('D4: NXDOMAIN keeps the members for hold, then the pool answers 503 no_backend; they come back with the name; NODATA alike', async (t) => {
  const dns = await dnsServer(t);
  const [o2, o3] = await originsOnOnePort(t, 2);
  dns.set('gone.test', { a: ['127.0.0.2'], ttl: 1 });
  const { usher, port } = await usherWith(t, { api: `discovery: { dns: { name: gone.test, port: ${o2!.port}, family: ipv4, hold: 2s, refresh: 1s, resolvers: ["${dns.address}"] } }` });
  assert.equal((await send(port, '/api/x')).status, 200);
  dns.delete('gone.test');
  const deletedAt = performance.now();
  await waitFor(() => dnsSource(usher, 'api').state === 'holding', 'the NXDOMAIN', 3000, 20);
  const firstNx = dns.queries.filter((q) => q.name === 'gone.test' && q.at > deletedAt)[0]!.at;
  assert.equal((await send(port, '/api/x')).status, 200, 'held: still served');
  let emptyAt = 0;
  await waitFor(async () => {
    const reply = await send(port, '/api/x');
    if (reply.status === 200) return false;
    assert.equal(reply.status, 503);
    assert.equal(reply.headers['x-usher-error'], 'no_backend');
    emptyAt = performance.now();
    return true;
  }, 'the pool to empty', 6000, 50);
  const held = emptyAt - firstNx;
  assert.ok(held >= 1950 && held < 4500, `emptied ${Math.round(held)} ms after the first NXDOMAIN (hold 2 s, asked every 1 s)`);
  assert.equal(dnsSource(usher, 'api').state, 'empty');
  assert.equal(usher.snapshot.pools.get('api')!.control.mode, 'none');
  dns.set('gone.test', { a: ['127.0.0.3'], ttl: 1 });
  await waitFor(async () => (await send(port, '/api/x')).body === '127.0.0.3', 'the name is back', 4000, 50);
  // NODATA: the name exists, without A records.
  dns.set('gone.test', { aaaa: ['fd00::1'], ttl: 1 });
  await waitFor(() => dnsSource(usher, 'api').state === 'holding', 'the NODATA', 3000, 20);
  assert.equal((await send(port, '/api/x')).body, '127.0.0.3');
  await waitFor(async () => (await send(port, '/api/x')).status === 503, 'the pool to empty after NODATA', 6000, 50);
  assert.ok((await metric(usher, 'usher_discovery_resolutions_total', { pool: 'api', result: 'nxdomain' }))! >= 2);
  assert.ok((await metric(usher, 'usher_discovery_resolutions_total', { pool: 'api', result: 'nodata' }))! >= 2);
  assert.ok(o3!.seen.length > 0);
});

test('D5: a removed address drains: the request in flight to it completes, new ones go to the new address', async (t) => {
  const dns = await dnsServer(t);
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  const handler: OriginHandler = (req: IncomingMessage, res: ServerResponse, origin) => {
    if (req.url === '/slow') return void released.then(() => res.writeHead(200, { 'x-origin': origin.name }).end(`${origin.name} slow`));
    answerWithName(req, res, origin);
  };
  const [o2, o3] = await originsOnOnePort(t, 2, handler);
  dns.set('drain.test', { a: ['127.0.0.2'], ttl: 1 });
  const { usher, port } = await usherWith(t, { api: `discovery: { dns: { name: drain.test, port: ${o2!.port}, family: ipv4, resolvers: ["${dns.address}"] } }` });
  const slow = send(port, '/slow');
  await waitFor(() => o2!.seen.some((r) => r.url === '/slow'), 'the slow request at 127.0.0.2', 3000);
  const old = usher.snapshot.pools.get('api')!.control.find(o2!.address)!;
  dns.set('drain.test', { a: ['127.0.0.3'], ttl: 1 });
  await waitFor(() => members(usher, 'api').join() === o3!.address, 'the new address', 4000, 20);
  assert.equal(old.removed, true);
  assert.equal(old.inFlight, 1, 'the removed backend still carries its request');
  for (let i = 0; i < 5; i++) assert.equal((await send(port, `/new${i}`)).body, '127.0.0.3');
  release();
  const reply = await slow;
  assert.equal(reply.status, 200);
  assert.equal(reply.body, '127.0.0.2 slow');
  await waitFor(() => old.inFlight === 0, 'the old backend idle', 2000);
});

test('D6: addresses changing under load drop no request', async (t) => {
  const dns = await dnsServer(t);
  const origins = await originsOnOnePort(t, 3);
  dns.set('move.test', { a: ['127.0.0.2'], ttl: 1 });
  const { usher, port } = await usherWith(t, { api: `discovery: { dns: { name: move.test, port: ${origins[0]!.port}, family: ipv4, resolvers: ["${dns.address}"] } }` });
  const load = steadyLoad(`http://127.0.0.1:${port}`, { concurrency: 4, maxMs: 20_000, maxRequests: 50_000, path: '/api/load' });
  const steps = [['127.0.0.3'], ['127.0.0.2', '127.0.0.4'], ['127.0.0.4'], ['127.0.0.2']];
  for (const step of steps) {
    dns.set('move.test', { a: step, ttl: 1 });
    await waitFor(() => members(usher, 'api').join() === step.map((ip) => `${ip}:${origins[0]!.port}`).join(), `members ${step.join(', ')}`, 4000, 20);
    const before = load.completed();
    await waitFor(() => load.completed() > before + 50, 'traffic on the new members', 4000, 10);
  }
  const result = await load.stop();
  assert.deepEqual(result.failures, [], `${result.failures.length} of ${result.ok + result.failures.length} requests failed`);
  assert.deepEqual([...result.byOrigin.keys()].sort(), ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
});

test('with two worker threads, a DNS change reaches both: new connections all reach the new backend', async (t) => {
  const dns = await dnsServer(t);
  const [o2, o3] = await originsOnOnePort(t, 2);
  dns.set('w.test', { a: ['127.0.0.2'], ttl: 1 });
  const { usher, port } = await usherWith(t, { api: `discovery: { dns: { name: w.test, port: ${o2!.port}, family: ipv4, resolvers: ["${dns.address}"] } }` }, 'runtime: { workers: 2 }');
  const before = await Promise.all(Array.from({ length: 20 }, () => getOnConnection(port, '/api/a')));
  assert.deepEqual(new Set(before.map((r) => r.body)), new Set(['127.0.0.2']));
  dns.set('w.test', { a: ['127.0.0.3'], ttl: 1 });
  await waitFor(() => members(usher, 'api').join() === o3!.address, 'the control plane sees the change', 4000, 20);
  await usher.settled(); // every worker applied it
  await usher.refresh();
  const served = usher.workers.map((w) => w.requests);
  const replies = [];
  for (let i = 0; i < 40; i++) replies.push(await getOnConnection(port, `/api/b${i}`));
  assert.deepEqual(replies.map((r) => r.body), Array(40).fill('127.0.0.3'), 'no worker still sends to the old address');
  await usher.refresh();
  const each = usher.workers.map((w, i) => w.requests - served[i]!);
  assert.ok(each.length === 2 && each.every((n) => n > 0), `both workers served some of the 40: ${each.join(', ')}`);
});

test('start-up: a name that does not answer delays start by at most its timeout, then the pool answers 503 no_backend until it does', async (t) => {
  const dns = await dnsServer(t);
  const [o2] = await originsOnOnePort(t, 1);
  dns.set('late.test', { silent: true });
  const started = performance.now();
  const { usher, port } = await usherWith(t, { api: `discovery: { dns: { name: late.test, port: ${o2!.port}, family: ipv4, timeout: 400ms, resolvers: ["${dns.address}"] } }` });
  const took = performance.now() - started;
  assert.ok(took >= 350 && took < 3000, `start took ${Math.round(took)} ms`);
  const reply = await send(port, '/api/x');
  assert.equal(reply.status, 503);
  assert.equal(reply.headers['x-usher-error'], 'no_backend');
  assert.equal(dnsSource(usher, 'api').state, 'failing');
  dns.set('late.test', { a: ['127.0.0.2'], ttl: 5 });
  await waitFor(async () => (await send(port, '/api/x')).status === 200, 'the first answer', 5000, 50);
});

test('reloads: the same discovery keeps the loop and the members (same backends, same counters); a changed name replaces them; no discovery removes them', async (t) => {
  const dns = await dnsServer(t);
  const [o2, o3] = await originsOnOnePort(t, 2);
  dns.set('r1.test', { a: ['127.0.0.2'], ttl: 60 });
  dns.set('r2.test', { a: ['127.0.0.3'], ttl: 60 });
  const file = await startOrigin('file');
  t.after(() => file.close());
  const pool = (name: string | undefined, extra = ''): Record<string, string> => ({
    api: `algorithm: round-robin\n${extra}backends: [{ address: "${file.address}" }]\n${name === undefined ? '' : `discovery: { dns: { name: ${name}, port: ${o2!.port}, family: ipv4, resolvers: ["${dns.address}"] } }`}`,
  });
  const { usher, port } = await usherWith(t, pool('r1.test'));
  for (let i = 0; i < 4; i++) assert.equal((await send(port, `/api/${i}`)).status, 200);
  const control = usher.snapshot.pools.get('api')!.control;
  const discovered = control.find(o2!.address)!;
  const requests = discovered.counters.requests;
  assert.equal(requests, 2);
  const reloaded = await usher.reload(configFromYaml(yamlWith(pool('r1.test', 'queueSize: 7\n'))));
  assert.equal(reloaded.ok, true);
  assert.equal(control.find(o2!.address), discovered, 'the same backend');
  assert.equal(discovered.counters.requests, requests);
  await new Promise((resolve) => setTimeout(resolve, 100)); // a restarted loop would ask at once
  assert.equal(dns.count('r1.test'), 1, 'the loop kept its schedule (TTL 60): no new lookup');
  assert.equal((await usher.reload(configFromYaml(yamlWith(pool('r2.test'))))).ok, true);
  await waitFor(() => members(usher, 'api').join() === o3!.address, 'r2.test\'s members', 3000, 20);
  assert.deepEqual(control.backends.map((b) => b.key), [file.address, o3!.address]);
  assert.equal((await usher.reload(configFromYaml(yamlWith(pool(undefined))))).ok, true);
  assert.deepEqual(control.backends.map((b) => b.key), [file.address], 'the file\'s backend stays, the discovered one goes');
  assert.equal(usher.snapshot.pools.get('api')!.discovery.view(), undefined);
  const count = dns.queries.length;
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(dns.queries.length, count, 'nothing asks any more');
  const view = (await (await fetch(`${usher.adminUrl}/api/pools/api`)).json()) as PoolView;
  assert.equal(view.discovery, null);
});

test('the admin API shows each pool\'s discovery: query, state, members, last answer and its age, error, next lookup', async (t) => {
  const dns = await dnsServer(t);
  const [o2] = await originsOnOnePort(t, 1);
  dns.set('seen.test', { a: ['127.0.0.2'], aaaa: [], ttl: 30 });
  const { usher } = await usherWith(t, { api: `discovery: { dns: { name: seen.test, port: ${o2!.port}, resolvers: ["${dns.address}"] } }` });
  const view = (await (await fetch(`${usher.adminUrl}/api/pools/api`)).json()) as PoolView;
  const source = view.discovery!.sources[0]!;
  assert.equal(source.source, 'dns');
  assert.equal(source.query, `A/AAAA seen.test port ${o2!.port}`);
  assert.equal(source.state, 'ok', 'NODATA for AAAA beside A records is normal');
  assert.equal(source.members, 1);
  assert.equal(source.lastError, null);
  assert.ok(source.lastSuccessAgeMs! >= 0 && source.lastSuccessAgeMs! < 5000);
  assert.ok(source.nextLookupInMs! > 0 && source.nextLookupInMs! <= 30_000);
  assert.deepEqual(source.records.map((r) => [r.type, r.result, r.answer]), [['A', 'ok', ['127.0.0.2']], ['AAAA', 'nodata', []]]);
  assert.deepEqual(view.backends.map((b) => [b.address, b.discovered, b.state]), [[o2!.address, true, 'healthy']]);
});

test('usher check and usher explain resolve nothing: the DNS server gets no query', async (t) => {
  const dns = await dnsServer(t);
  dns.set('api.test', { a: ['127.0.0.2'] });
  const dir = mkdtempSync(join(tmpdir(), 'usher-discovery-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'usher.yaml');
  writeFileSync(file, yamlWith({ api: `discovery: { dns: { name: api.test, port: 8080, resolvers: ["${dns.address}"] } }` }).replace('    bind: 127.0.0.1:0', '    bind: 127.0.0.1:18080'));
  const check = await runCli(['check', '-c', file]);
  assert.equal(check.code, 0, check.stderr);
  const explained = await runCli(['explain', '-c', file, 'GET', 'http://127.0.0.1:18080/api/x']);
  assert.equal(explained.code, 0, explained.stderr);
  assert.match(explained.stdout, /^  discovery: members from DNS, A\/AAAA api\.test port 8080$/m);
  assert.match(explained.stdout, /^pick: the pool's members also come from DNS, which explain does not resolve/m);
  assert.equal(dns.queries.length, 0);
});
