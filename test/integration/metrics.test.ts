/**
 * GET /metrics on the admin listener, scraped from a real usher after real
 * traffic: HTTP/1.1 and HTTP/2 requests by route, backend and status class,
 * durations, bytes, listener, pool and backend gauges, health checks, L4
 * connections; series of removed routes and backends leaving after a reload;
 * one registry per usher.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { request } from 'undici';
import type { Usher } from '../../src/runtime/usher.ts';
import { startOrigin, type Origin, type OriginHandler } from '../helpers/origin.ts';
import { generateCertificate } from '../helpers/tls.ts';
import { configFromYaml, startUsher } from '../helpers/usher.ts';

const TOKEN = 'metrics-test-token-0123456789';

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The samples of a Prometheus text exposition. */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-z_:][a-z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match !== null, `a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the one series `name` whose labels are exactly `labels`; undefined when there is none. */
function value(samples: readonly Sample[], name: string, labels: Record<string, string>): number | undefined {
  const keys = Object.keys(labels);
  const found = samples.filter(
    (s) => s.name === name && Object.keys(s.labels).length === keys.length && keys.every((key) => s.labels[key] === labels[key]),
  );
  assert.ok(found.length <= 1, `one series ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

function series(samples: readonly Sample[], name: string): Sample[] {
  return samples.filter((s) => s.name === name);
}

async function scrape(usher: Usher): Promise<Sample[]> {
  const res = await request(`${usher.adminUrl!}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  return parse(await res.body.text());
}

async function get(url: string): Promise<number> {
  const res = await request(url);
  await res.body.text();
  return res.statusCode;
}

/** Answers 500 on /api/fail, else its name. */
const failOnRequest: OriginHandler = (req, res, origin) => {
  req.resume();
  req.on('end', () => (req.url === '/api/fail' ? res.writeHead(500).end('no') : res.writeHead(200).end(origin.name)));
};

function httpYaml(backends: readonly Origin[], routeName = 'api'): string {
  return `listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - name: ${routeName}
        match: { pathPrefix: /api }
        pool: main
      - name: old
        match: { pathPrefix: /old }
        redirect: { scheme: https }
pools:
  main:
    algorithm: round-robin
    healthCheck: { path: /health, interval: 50ms, fastInterval: 50ms }
    backends:
${backends.map((b) => `      - address: ${b.address}\n`).join('')}admin:
  bind: 127.0.0.1:0
  token: ${TOKEN}
`;
}

async function originsFor(t: TestContext, count: number): Promise<Origin[]> {
  const origins = await Promise.all(Array.from({ length: count }, (_, i) => startOrigin(`o${i}`, failOnRequest)));
  t.after(() => Promise.all(origins.map((origin) => origin.close())));
  return origins;
}

test('HTTP/1.1 traffic: requests by route, backend and class; durations; bytes; listener, pool and backend gauges; checks', async (t) => {
  const [a, b] = await originsFor(t, 2);
  const usher = await startUsher(httpYaml([a!, b!]));
  t.after(() => usher.stop({ timeoutMs: 500 }));
  const base = usher.url('web');

  const unauthorized = await request(`${usher.adminUrl!}/metrics`);
  await unauthorized.body.text();
  assert.equal(unauthorized.statusCode, 401, 'the token guards /metrics like the rest of the admin API');

  for (let i = 0; i < 6; i++) assert.equal(await get(`${base}/api/ok`), 200);
  for (let i = 0; i < 2; i++) assert.equal(await get(`${base}/api/fail`), 500);
  assert.equal(await get(`${base}/nowhere`), 404);
  assert.equal(await get(`${base}/old/x`), 308);
  // Let the health checks run a few times.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const samples = await scrape(usher);

  const requests = (backend: string, statusClass: string): number | undefined =>
    value(samples, 'usher_http_requests_total', { listener: 'web', route: 'api', pool: 'main', backend, class: statusClass });
  // Round-robin: each backend took 3 of the 200s and one 500.
  assert.equal(requests(a!.address, '2xx'), 3);
  assert.equal(requests(b!.address, '2xx'), 3);
  assert.equal(requests(a!.address, '5xx'), 1);
  assert.equal(requests(b!.address, '5xx'), 1);
  assert.equal(value(samples, 'usher_http_requests_total', { listener: 'web', route: '', pool: '', backend: '', class: '4xx' }), 1);
  assert.equal(value(samples, 'usher_http_requests_total', { listener: 'web', route: 'old', pool: '', backend: '', class: '3xx' }), 1);

  assert.equal(value(samples, 'usher_http_request_duration_seconds_count', { listener: 'web', route: 'api' }), 8);
  assert.equal(value(samples, 'usher_http_request_duration_seconds_bucket', { listener: 'web', route: 'api', le: '+Inf' }), 8);
  const sum = value(samples, 'usher_http_request_duration_seconds_sum', { listener: 'web', route: 'api' })!;
  assert.ok(sum > 0 && sum < 8 * 5, `duration sum ${sum}`);
  const buckets = series(samples, 'usher_http_request_duration_seconds_bucket').filter((s) => s.labels['route'] === 'api');
  assert.equal(buckets.length, 16, '15 bounds and +Inf');
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, 'cumulative buckets');
  for (const backend of [a!, b!]) {
    assert.equal(value(samples, 'usher_upstream_duration_seconds_count', { pool: 'main', backend: backend.address }), 4);
    assert.equal(value(samples, 'usher_backend_attempts_total', { pool: 'main', backend: backend.address }), 4);
    assert.equal(value(samples, 'usher_backend_responses_5xx_total', { pool: 'main', backend: backend.address }), 1);
    assert.equal(value(samples, 'usher_backend_failures_total', { pool: 'main', backend: backend.address }), 0);
    assert.equal(value(samples, 'usher_backend_in_flight', { pool: 'main', backend: backend.address }), 0);
    assert.equal(value(samples, 'usher_backend_weight', { pool: 'main', backend: backend.address }), 1);
    assert.equal(value(samples, 'usher_backend_state', { pool: 'main', backend: backend.address, state: 'healthy' }), 1);
    assert.equal(value(samples, 'usher_backend_state', { pool: 'main', backend: backend.address, state: 'disabled' }), 0);
    assert.ok(value(samples, 'usher_backend_connections_open', { pool: 'main', backend: backend.address })! >= 1);
    assert.ok(value(samples, 'usher_backend_health_checks_total', { pool: 'main', backend: backend.address, result: 'pass' })! >= 2);
    assert.equal(value(samples, 'usher_backend_health_checks_total', { pool: 'main', backend: backend.address, result: 'fail' }), 0);
    assert.ok(value(samples, 'usher_backend_bytes_in_total', { pool: 'main', backend: backend.address })! > 0);
    assert.ok(value(samples, 'usher_backend_bytes_out_total', { pool: 'main', backend: backend.address })! > 0);
  }
  assert.equal(value(samples, 'usher_pool_mode', { pool: 'main', mode: 'primary' }), 1);
  assert.equal(value(samples, 'usher_pool_mode', { pool: 'main', mode: 'none' }), 0);
  assert.equal(value(samples, 'usher_pool_queue_length', { pool: 'main' }), 0);
  assert.ok(value(samples, 'usher_http_bytes_in_total', { listener: 'web', route: 'api' })! > 8 * 30, 'request heads counted');
  assert.ok(value(samples, 'usher_http_bytes_out_total', { listener: 'web', route: 'api' })! >= 6 * 'o0'.length);
  assert.ok(value(samples, 'usher_listener_connections_accepted_total', { listener: 'web' })! >= 1);
  assert.ok(value(samples, 'usher_listener_connections', { listener: 'web' })! >= 0);
  assert.equal(value(samples, 'usher_listener_requests_in_flight', { listener: 'web' }), 0);

  // Labels are only names and addresses of the config: no path ever becomes a label value.
  for (const sample of samples) for (const label of Object.values(sample.labels)) assert.doesNotMatch(label, /nowhere|\/api/);
});

test('a backend being drained shows its state; an ejected one counts its ejection', async (t) => {
  const [a, b] = await originsFor(t, 2);
  const usher = await startUsher(
    httpYaml([a!, b!]).replace('    healthCheck: { path: /health, interval: 50ms, fastInterval: 50ms }\n', '    outlier: { consecutiveFailures: 1, ejectionTime: 30s }\n'),
  );
  t.after(() => usher.stop({ timeoutMs: 500 }));
  const pool = usher.snapshot.pools.get('main')!;
  pool.control.setAdminState(pool.control.find(b!.address)!, 'draining');
  assert.equal(await get(`${usher.url('web')}/api/fail`), 500); // a's only request fails: ejected
  const samples = await scrape(usher);
  assert.equal(value(samples, 'usher_backend_state', { pool: 'main', backend: b!.address, state: 'draining' }), 1);
  assert.equal(value(samples, 'usher_backend_state', { pool: 'main', backend: a!.address, state: 'ejected' }), 1);
  assert.equal(value(samples, 'usher_backend_ejections_total', { pool: 'main', backend: a!.address }), 1);
  assert.equal(value(samples, 'usher_pool_mode', { pool: 'main', mode: 'none' }), 1);
});

test('after a reload, removed routes and backends leave the output; routes that stay keep their counts', async (t) => {
  const [a, b] = await originsFor(t, 2);
  let yaml = httpYaml([a!, b!]);
  const usher = await startUsher(yaml, { configSource: () => ({ ok: true, config: configFromYaml(yaml), warnings: [] }) });
  t.after(() => usher.stop({ timeoutMs: 500 }));
  const base = usher.url('web');
  for (let i = 0; i < 4; i++) await get(`${base}/api/ok`);
  const before = await scrape(usher);
  assert.equal(value(before, 'usher_backend_attempts_total', { pool: 'main', backend: b!.address }), 2);
  assert.equal(value(before, 'usher_http_requests_total', { listener: 'web', route: 'old', pool: '', backend: '', class: '3xx' }), undefined, 'no series before a request');

  // b leaves the pool; the redirect route is renamed.
  yaml = httpYaml([a!]).replace('name: old', 'name: legacy');
  const reloaded = await usher.reload();
  assert.ok(reloaded.ok, JSON.stringify(reloaded));
  await get(`${base}/api/ok`);
  await get(`${base}/old/x`);
  const after = await scrape(usher);
  const mentionsB = after.filter((sample) => sample.labels['backend'] === b!.address);
  assert.deepEqual(mentionsB, [], 'no series of the removed backend');
  assert.equal(value(after, 'usher_http_requests_total', { listener: 'web', route: 'api', pool: 'main', backend: a!.address, class: '2xx' }), 3, 'kept across the reload');
  assert.equal(value(after, 'usher_http_request_duration_seconds_count', { listener: 'web', route: 'api' }), 5);
  assert.equal(value(after, 'usher_http_requests_total', { listener: 'web', route: 'legacy', pool: '', backend: '', class: '3xx' }), 1);
  assert.equal(series(after, 'usher_http_request_duration_seconds_count').filter((s) => s.labels['route'] === 'old').length, 0, 'the renamed route is gone');
});

test('HTTP/2 requests count like HTTP/1.1 ones', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'usher-metrics-'));
  const cert = generateCertificate(['localhost']);
  writeFileSync(join(dir, 'cert.pem'), cert.cert);
  writeFileSync(join(dir, 'key.pem'), cert.key);
  const [a] = await originsFor(t, 1);
  const usher = await startUsher(`listeners:
  - name: secure
    bind: 127.0.0.1:0
    protocol: https
    tls:
      certificates: [{ cert: ${join(dir, 'cert.pem')}, key: ${join(dir, 'key.pem')} }]
    routes:
      - name: api
        pool: main
pools:
  main:
    backends: [{ address: ${a!.address} }]
admin:
  bind: 127.0.0.1:0
  token: ${TOKEN}
`);
  const session = h2connect(`https://localhost:${usher.address('secure').port}`, { ca: cert.cert });
  session.on('error', () => {});
  t.after(async () => {
    session.close();
    await usher.stop({ timeoutMs: 500 });
    rmSync(dir, { recursive: true, force: true });
  });
  for (const path of ['/api/ok', '/api/ok', '/api/fail']) {
    const stream = session.request({ ':path': path });
    stream.resume();
    stream.end();
    await once(stream, 'close');
  }
  const samples = await scrape(usher);
  const labels = { listener: 'secure', route: 'api', pool: 'main', backend: a!.address };
  assert.equal(value(samples, 'usher_http_requests_total', { ...labels, class: '2xx' }), 2);
  assert.equal(value(samples, 'usher_http_requests_total', { ...labels, class: '5xx' }), 1);
  assert.equal(value(samples, 'usher_http_request_duration_seconds_count', { listener: 'secure', route: 'api' }), 3);
  assert.equal(value(samples, 'usher_upstream_duration_seconds_count', { pool: 'main', backend: a!.address }), 3);
  assert.equal(value(samples, 'usher_listener_connections', { listener: 'secure' }), 1, 'the open HTTP/2 session');
});

test('L4: connections, bytes and duration per route; the backend\'s bytes and attempts', async (t) => {
  const echo: Server = createServer((socket) => socket.pipe(socket));
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  const echoPort = (echo.address() as AddressInfo).port;
  const usher = await startUsher(`listeners:
  - name: db
    bind: 127.0.0.1:0
    protocol: tcp
    routes:
      - name: primary
        pool: db
pools:
  db:
    backends: [{ address: 127.0.0.1:${echoPort} }]
admin:
  bind: 127.0.0.1:0
  token: ${TOKEN}
`);
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    echo.close();
  });
  for (let i = 0; i < 2; i++) {
    const socket = connect(usher.address('db').port, '127.0.0.1');
    socket.write('hello');
    await once(socket, 'data');
    socket.end();
    await once(socket, 'close');
  }
  // The session ends when both directions have closed; give usher a moment to account for it.
  let samples = await scrape(usher);
  for (let i = 0; i < 50 && value(samples, 'usher_l4_connections_total', { listener: 'db', route: 'primary', pool: 'db' }) !== 2; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    samples = await scrape(usher);
  }
  const route = { listener: 'db', route: 'primary', pool: 'db' };
  assert.equal(value(samples, 'usher_l4_connections_total', route), 2);
  assert.equal(value(samples, 'usher_l4_bytes_in_total', route), 10);
  assert.equal(value(samples, 'usher_l4_bytes_out_total', route), 10);
  assert.equal(value(samples, 'usher_l4_connection_duration_seconds_count', route), 2);
  const backend = { pool: 'db', backend: `127.0.0.1:${echoPort}` };
  assert.equal(value(samples, 'usher_backend_attempts_total', backend), 2);
  assert.equal(value(samples, 'usher_backend_bytes_in_total', backend), 10);
  assert.equal(value(samples, 'usher_backend_bytes_out_total', backend), 10);
  assert.equal(value(samples, 'usher_backend_in_flight', backend), 0);
  assert.equal(value(samples, 'usher_listener_connections_accepted_total', { listener: 'db' }), 2);
});

test('each usher has its own registry', async (t) => {
  const [a, b] = await originsFor(t, 2);
  const first = await startUsher(httpYaml([a!]));
  const second = await startUsher(httpYaml([b!]));
  t.after(() => Promise.all([first.stop({ timeoutMs: 500 }), second.stop({ timeoutMs: 500 })]));
  await get(`${first.url('web')}/api/ok`);
  const samples = await scrape(second);
  assert.deepEqual(samples.filter((sample) => sample.labels['backend'] === a!.address), []);
  assert.equal(series(samples, 'usher_http_requests_total').length, 0);
});
