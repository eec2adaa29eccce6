import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { dashboardSnapshot, MAX_STREAMS, streamEvents, type DashboardSnapshot } from '../../src/admin/events.ts';
import type { ListenerView } from '../../src/admin/views.ts';
import { SseParser } from '../../src/dashboard/sse.ts';
import type { Usher } from '../../src/runtime/usher.ts';
import { startOrigins, type Origin } from '../helpers/origin.ts';
import { startUsher } from '../helpers/usher.ts';

/** The admin listener's side of the dashboard: static assets, GET /api/listeners and the event stream. */

const TOKEN = 'dashboard-token-0123456789';

async function setup(t: TestContext, token: string | null = TOKEN): Promise<{ usher: Usher; origins: Origin[] }> {
  const origins = await startOrigins(2);
  t.after(() => Promise.all(origins.map((o) => o.close())));
  const usher = await startUsher(`listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - name: api
        match: { host: api.example.com, pathPrefix: /v1, methods: [GET, POST], headers: { x-env: canary } }
        pool: main
        stripPrefix: /v1
      - match: { pathPrefix: /old }
        redirect: { scheme: https, port: 8443, code: 301 }
      - pool: main
  - name: db
    bind: 127.0.0.1:0
    protocol: tcp
    routes:
      - pool: main
pools:
  main:
    algorithm: round-robin
    backends:
${origins.map((o) => `      - address: ${o.address}\n`).join('')}admin:
  bind: 127.0.0.1:0
${token === null ? '' : `  token: ${token}\n`}`);
  t.after(() => usher.stop({ timeoutMs: 500 }));
  return { usher, origins };
}

function auth(token = TOKEN): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

test('dashboard assets: served without a token, with a strict content security policy; data still needs the token', async (t) => {
  const { usher } = await setup(t);
  const admin = usher.adminUrl!;
  for (const [path, type, marker] of [
    ['/', 'text/html; charset=utf-8', '<script src="app.js"'],
    ['/index.html', 'text/html; charset=utf-8', '<dialog id="token"'],
    ['/app.js', 'text/javascript; charset=utf-8', '/api/events'],
    ['/app.css', 'text/css; charset=utf-8', '.backend'],
  ] as const) {
    const res = await fetch(`${admin}${path}`);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get('content-type'), type, path);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'.*frame-ancestors 'none'/, path);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    const body = await res.text();
    assert.ok(body.includes(marker), `${path} contains ${marker}`);
    // Offline: nothing is loaded from elsewhere.
    assert.doesNotMatch(body, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, `${path} refers to no other origin`);
  }
  // Anything else is the API: the token is checked first.
  for (const path of ['/app.ts', '/../package.json', '/api/pools', '/api/listeners', '/api/workers', '/api/events']) {
    assert.equal((await fetch(`${admin}${path}`)).status, 401, path);
  }
  assert.equal((await fetch(`${admin}/`, { method: 'POST', headers: auth() })).status, 404);
});

test('GET /api/listeners: each listener, its bound address and its routes in order', async (t) => {
  const { usher, origins } = await setup(t);
  const res = await fetch(`${usher.adminUrl}/api/listeners`, { headers: auth() });
  assert.equal(res.status, 200);
  const { listeners } = (await res.json()) as { listeners: ListenerView[] };
  const web = `127.0.0.1:${usher.address('web').port}`;
  const db = `127.0.0.1:${usher.address('db').port}`;
  assert.deepEqual(listeners, [
    {
      name: 'web',
      protocol: 'http',
      bind: '127.0.0.1:0',
      address: web,
      routes: [
        { name: 'api', match: ['host api.example.com', 'pathPrefix /v1', 'methods GET,POST', 'header x-env=canary'], pool: 'main', redirect: null, stripPrefix: '/v1' },
        { name: 'route-1', match: ['pathPrefix /old'], pool: null, redirect: '301: scheme https, port 8443', stripPrefix: null },
        { name: 'route-2', match: [], pool: 'main', redirect: null, stripPrefix: null },
      ],
    },
    { name: 'db', protocol: 'tcp', bind: '127.0.0.1:0', address: db, routes: [{ name: '#0', match: [], pool: 'main', redirect: null, stripPrefix: null }] },
  ]);
  assert.equal(origins.length, 2);
});

test('backend views carry the last ten seconds: attempts, errors, p50 and p99', async (t) => {
  const { usher, origins } = await setup(t);
  for (let i = 0; i < 6; i++) assert.equal((await fetch(`${usher.url('web')}/x`)).status, 200);
  const res = await fetch(`${usher.adminUrl}/api/pools/main`, { headers: auth() });
  const pool = (await res.json()) as { backends: { address: string; recent: { requests: number; errors: number; p50Ms: number; p99Ms: number } }[] };
  for (const [i, backend] of pool.backends.entries()) {
    assert.equal(backend.address, origins[i]!.address);
    assert.equal(backend.recent.requests, 3);
    assert.equal(backend.recent.errors, 0);
    assert.ok(backend.recent.p50Ms > 0 && backend.recent.p50Ms <= backend.recent.p99Ms, JSON.stringify(backend.recent));
  }
});

/** Reads `count` events from an open event stream. */
async function readEvents(body: ReadableStream<Uint8Array>, count: number): Promise<{ at: number; type: string; data: DashboardSnapshot }[]> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  const events: { at: number; type: string; data: DashboardSnapshot }[] = [];
  while (events.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    for (const event of parser.push(decoder.decode(value, { stream: true }))) {
      events.push({ at: performance.now(), type: event.type, data: JSON.parse(event.data) as DashboardSnapshot });
    }
  }
  reader.releaseLock();
  return events;
}

test('GET /api/events: a snapshot at once and then every second, as text/event-stream', async (t) => {
  const { usher, origins } = await setup(t);
  assert.equal((await fetch(`${usher.adminUrl}/api/events`, { headers: auth('wrong') })).status, 401);
  const controller = new AbortController();
  t.after(() => controller.abort());
  const started = performance.now();
  const res = await fetch(`${usher.adminUrl}/api/events`, { headers: auth(), signal: controller.signal });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  assert.equal(res.headers.get('cache-control'), 'no-store');
  const events = await readEvents(res.body!, 3);
  assert.equal(events.length, 3);
  assert.ok(events[0]!.at - started < 500, 'the first snapshot comes at once');
  const gaps = [events[1]!.at - events[0]!.at, events[2]!.at - events[1]!.at];
  assert.ok(gaps.every((gap) => gap > 500 && gap < 2000), `about a second apart: ${gaps.map((g) => g.toFixed(0)).join(', ')} ms`);

  const snapshot = events[2]!.data;
  assert.equal(events[2]!.type, 'snapshot');
  assert.ok(Date.parse(snapshot.at) > Date.now() - 5000);
  assert.deepEqual(snapshot.listeners.map((l) => l.name), ['web', 'db']);
  assert.deepEqual(snapshot.pools.map((p) => [p.name, p.algorithm, p.mode, p.queued]), [['main', 'round-robin', 'primary', 0]]);
  const backends = snapshot.pools[0]!.backends;
  assert.deepEqual(backends.map((b) => [b.address, b.state, b.requestsPerSecond.length]), origins.map((o) => [o.address, 'healthy', 60]));
  // The main thread serves (workers: 0): no worker threads, here and in the API.
  assert.deepEqual(snapshot.workers, []);
  assert.deepEqual(await (await fetch(`${usher.adminUrl}/api/workers`, { headers: auth() })).json(), { workers: [] });
  // The same data as the API, plus the per-second series.
  const { requestsPerSecond, ...view } = backends[0]!;
  const api = (await (await fetch(`${usher.adminUrl}/api/pools/main/backends/${encodeURIComponent(origins[0]!.address)}`, { headers: auth() })).json()) as object;
  assert.deepEqual(Object.keys(view), Object.keys(api));
  assert.ok(requestsPerSecond.every((n) => n === 0));
});

test('GET /api/events: at most MAX_STREAMS open at once; a stream that ends frees its place', async (t) => {
  const { usher } = await setup(t, null);
  const open: AbortController[] = [];
  // The responses are kept: an unread fetch body that is garbage-collected is cancelled, which would close its stream early.
  const streams: Response[] = [];
  t.after(() => open.forEach((c) => c.abort()));
  for (let i = 0; i < MAX_STREAMS; i++) {
    const controller = new AbortController();
    open.push(controller);
    const res = await fetch(`${usher.adminUrl}/api/events`, { signal: controller.signal });
    streams.push(res);
    assert.equal(res.status, 200);
  }
  const refused = await fetch(`${usher.adminUrl}/api/events`);
  assert.equal(refused.status, 503);
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'too_many_streams');
  open.pop()!.abort();
  // The server frees the place when it sees the abort; under a loaded CI machine that can take a while.
  let status = 503;
  const deadline = performance.now() + 10_000;
  while (status === 503 && performance.now() < deadline) {
    await sleep(20);
    const controller = new AbortController();
    const res = await fetch(`${usher.adminUrl}/api/events`, { signal: controller.signal });
    status = res.status;
    if (status === 200) {
      open.push(controller);
      streams.push(res);
    } else await res.body?.cancel();
  }
  assert.equal(status, 200);
});

/** A response whose socket never drains: `write` reports a full buffer until `drain` is emitted. */
class StuckResponse extends EventEmitter {
  writes = 0;
  writableEnded = false;
  full = true;
  writeHead(): this {
    return this;
  }
  write(): boolean {
    this.writes++;
    return !this.full;
  }
  destroy(): void {
    this.writableEnded = true;
  }
}

test('streamEvents: a client that does not read is skipped, not buffered; nothing is written after it leaves', async (t) => {
  const { usher } = await setup(t);
  const req = { socket: { setNoDelay: () => {} } } as unknown as IncomingMessage;
  const res = new StuckResponse();
  streamEvents(req, res as unknown as ServerResponse, usher, 20);
  assert.equal(res.writes, 1, 'the first snapshot is written at once');
  await sleep(150);
  assert.equal(res.writes, 1, 'no snapshot is queued behind one the client has not read');
  res.full = false;
  res.emit('drain');
  await sleep(150);
  assert.ok(res.writes >= 4, `writes resume after drain: ${res.writes}`);
  res.emit('close');
  const after = res.writes;
  await sleep(100);
  assert.equal(res.writes, after, 'the timer stops when the client leaves');
});

test('dashboardSnapshot: requestsPerSecond counts the attempts of each complete second', async (t) => {
  const { usher } = await setup(t);
  // Send 4 requests within one second (from its start; again if a slow machine spills into the next),
  // then read the series in the next second.
  let sent = 0;
  let second = -1;
  while (second === -1) {
    await sleep(1000 - (performance.now() % 1000) + 5);
    const before = Math.floor(performance.now() / 1000);
    for (let i = 0; i < 4; i++) await fetch(`${usher.url('web')}/`).then((r) => r.text());
    sent += 4;
    if (Math.floor(performance.now() / 1000) === before) second = before;
  }
  await sleep((second + 1) * 1000 - performance.now() + 5);
  const backends = dashboardSnapshot(usher).pools[0]!.backends;
  assert.deepEqual(backends.map((b) => b.requestsPerSecond.at(-1)), [2, 2]);
  assert.deepEqual(backends.map((b) => b.requestsPerSecond.reduce((a, n) => a + n)), [sent / 2, sent / 2]);
});
