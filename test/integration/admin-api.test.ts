import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BackendView, PoolView } from '../../src/admin/views.ts';
import { parseConfig } from '../../src/config/index.ts';
import type { Usher } from '../../src/runtime/usher.ts';
import { startOrigins, type Origin, type OriginHandler } from '../helpers/origin.ts';
import { simpleYaml, startUsher, type SimpleBackend } from '../helpers/usher.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKEN = 'admin-test-token-0123456789';

/** Answers with the origin's name and a content-length, after reading the request. */
const answerName: OriginHandler = (req, res, origin) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(origin.name)) }).end(origin.name));
};

/** One listener `web`, one round-robin pool `main` (plus `pool` keys), an admin API on 127.0.0.1:0. */
function yaml(backends: readonly SimpleBackend[], options: { token?: string | null; pool?: Record<string, unknown> } = {}): string {
  const token = options.token === undefined ? TOKEN : options.token;
  const admin = `admin:\n  bind: 127.0.0.1:0\n${token === null ? '' : `  token: "${token}"\n`}`;
  return simpleYaml(backends, { algorithm: 'round-robin', ...options.pool }) + admin;
}

async function origins(t: TestContext, count: number, prefix = 'origin', handler: OriginHandler = answerName): Promise<Origin[]> {
  const started = await startOrigins(count, prefix, handler);
  t.after(() => Promise.all(started.map((o) => o.close())));
  return started;
}

async function usherFor(t: TestContext, text: string, configSource?: () => ReturnType<typeof parseConfig>): Promise<Usher> {
  const usher = await startUsher(text, configSource === undefined ? {} : { configSource });
  t.after(() => usher.stop({ timeoutMs: 500 }));
  return usher;
}

interface Reply<T = unknown> {
  readonly status: number;
  readonly headers: Headers;
  readonly json: T;
}

interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string };
}

/** One admin request. `body` is sent as JSON; `raw` as is; `token: null` sends no Authorization header. */
async function admin<T = unknown>(
  usher: Usher,
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; token?: string | null; authorization?: string } = {},
): Promise<Reply<T>> {
  const headers: Record<string, string> = {};
  const token = options.token === undefined ? TOKEN : options.token;
  if (options.authorization !== undefined) headers['authorization'] = options.authorization;
  else if (token !== null) headers['authorization'] = `Bearer ${token}`;
  let body: string | undefined = options.raw;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(`${usher.adminUrl!}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8', `${method} ${path}: ${text}`);
  return { status: res.status, headers: res.headers, json: JSON.parse(text) as T };
}

function backendPath(address: string, suffix = ''): string {
  return `/api/pools/main/backends/${encodeURIComponent(address)}${suffix}`;
}

/** Asserts an admin error reply: status, code and exact message. */
function assertError(reply: Reply, status: number, code: string, message: string | RegExp): void {
  assert.equal(reply.status, status, JSON.stringify(reply.json));
  const { error } = reply.json as ErrorBody;
  assert.equal(error.code, code);
  if (typeof message === 'string') assert.equal(error.message, message);
  else assert.match(error.message, message);
  assert.deepEqual(Object.keys(reply.json as object), ['error']);
}

interface Hit {
  readonly status: number;
  readonly body: string;
  readonly setCookie: string | null;
}

async function hit(usher: Usher, path = '/', headers: Record<string, string> = {}): Promise<Hit> {
  const res = await fetch(`${usher.url('web')}${path}`, { headers });
  return { status: res.status, body: await res.text(), setCookie: res.headers.get('set-cookie') };
}

/** `n` sequential requests; every one must succeed. Returns the origin names that answered, in order. */
async function traffic(usher: Usher, n: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await hit(usher, `/t/${i}`);
    assert.equal(res.status, 200, res.body);
    names.push(res.body);
  }
  return names;
}

function count(names: readonly string[], name: string): number {
  return names.filter((n) => n === name).length;
}


/** Latencies vary from run to run: {@link stable} replaces each one with this, so views compare exactly otherwise. */
const SOME_LATENCY = -1;

function stable<T>(json: T): T {
  return JSON.parse(JSON.stringify(json), (key, value: unknown) =>
    (key === 'p50Ms' || key === 'p99Ms') && typeof value === 'number' ? SOME_LATENCY : value,
  ) as T;
}

function expectedBackend(address: string, requests: number, bytesOut: number, overrides: Partial<BackendView> = {}): BackendView {
  const latency = requests > 0 ? SOME_LATENCY : null;
  return {
    address,
    name: null,
    state: 'healthy',
    adminState: 'enabled',
    healthy: true,
    ejected: false,
    weight: 1,
    effectiveWeight: 1,
    backup: false,
    discovered: false,
    priority: null,
    terminating: false,
    inFlight: 0,
    maxConnections: null,
    connections: { open: 1, idle: 1 },
    counters: { requests, failures: 0, responses5xx: 0, retriedAway: 0, bytesOut, ejections: 0 },
    recent: { windowSeconds: 10, requests, errors: 0, p50Ms: latency, p99Ms: latency },
    outlier: null,
    checks: [],
    ...overrides,
  };
}

// ---- reading -----------------------------------------------------------------------

test('GET /api/pools, one pool and one backend: state, inFlight and counters', async (t) => {
  const [a, b] = await origins(t, 2);
  const usher = await usherFor(t, yaml([a!.address, b!.address]));
  const names = await traffic(usher, 4);
  assert.deepEqual(names, ['origin0', 'origin1', 'origin0', 'origin1']);

  const viewA = expectedBackend(a!.address, 2, 2 * 'origin0'.length);
  const viewB = expectedBackend(b!.address, 2, 2 * 'origin1'.length);
  const pool: PoolView = { name: 'main', algorithm: 'round-robin', mode: 'primary', queued: 0, backends: [viewA, viewB], discovery: null };

  const all = await admin<{ pools: PoolView[] }>(usher, 'GET', '/api/pools');
  assert.equal(all.status, 200);
  assert.equal(all.headers.get('cache-control'), 'no-store');
  assert.deepEqual(stable(all.json), { pools: [pool] });

  const one = await admin<PoolView>(usher, 'GET', '/api/pools/main');
  assert.equal(one.status, 200);
  assert.deepEqual(stable(one.json), pool);

  const list = await admin(usher, 'GET', '/api/pools/main/backends');
  assert.equal(list.status, 200);
  assert.deepEqual(stable(list.json), { backends: [viewA, viewB] });

  // The address may be percent-encoded or not: ':' is allowed in a path segment.
  const encoded = await admin<BackendView>(usher, 'GET', backendPath(b!.address));
  assert.equal(encoded.status, 200);
  assert.deepEqual(stable(encoded.json), viewB);
  const plain = await admin<BackendView>(usher, 'GET', `/api/pools/main/backends/${b!.address}`);
  assert.deepEqual(stable(plain.json), viewB);
});

test('an IPv6 backend [::1]:port is addressed percent-encoded in the path', async (t) => {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-length': '2' }).end('v6'));
  });
  server.listen(0, '::1');
  const listening = await Promise.race([once(server, 'listening').then(() => true), once(server, 'error').then(() => false)]);
  if (!listening) {
    t.skip('::1 is not available on this machine');
    return;
  }
  server.unref();
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const v6 = `[::1]:${(server.address() as AddressInfo).port}`;
  const [v4] = await origins(t, 1);
  const usher = await usherFor(t, yaml([v4!.address, v6]));
  assert.deepEqual(await traffic(usher, 4), ['origin0', 'v6', 'origin0', 'v6']);

  assert.equal(encodeURIComponent(v6), `%5B%3A%3A1%5D%3A${v6.slice(6)}`);
  const view = await admin<BackendView>(usher, 'GET', backendPath(v6));
  assert.equal(view.status, 200);
  assert.deepEqual(stable(view.json), expectedBackend(v6, 2, 4));

  // Actions work on it too, and the listing names it with brackets.
  const drained = await admin<BackendView>(usher, 'POST', backendPath(v6, '/drain'));
  assert.equal(drained.status, 200);
  assert.equal(drained.json.state, 'draining');
  assert.deepEqual(await traffic(usher, 3), ['origin0', 'origin0', 'origin0']);
  const pool = await admin<PoolView>(usher, 'GET', '/api/pools/main');
  assert.deepEqual(pool.json.backends.map((b) => [b.address, b.state]), [[v4!.address, 'healthy'], [v6, 'draining']]);
});

// ---- authorization ---------------------------------------------------------------

test('token: missing or wrong is 401 with www-authenticate and changes nothing; the right one is 200', async (t) => {
  const [a, b] = await origins(t, 2);
  const usher = await usherFor(t, yaml([a!.address, b!.address]));
  const message = 'missing or wrong admin token: send "Authorization: Bearer <token>"';
  const attempts: { token?: string | null; authorization?: string }[] = [
    { token: null },
    { token: 'wrong-token-0123456789' },
    { token: `${TOKEN}x` },
    { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` },
    { authorization: TOKEN },
    { authorization: 'Bearer ' },
  ];
  for (const attempt of attempts) {
    for (const [method, path] of [['GET', '/api/pools'], ['POST', backendPath(a!.address, '/disable')], ['POST', '/api/reload']] as const) {
      const reply = await admin(usher, method, path, attempt);
      assertError(reply, 401, 'unauthorized', message);
      assert.equal(reply.headers.get('www-authenticate'), 'Bearer realm="usher"', `${method} ${path} ${JSON.stringify(attempt)}`);
    }
  }
  // None of the refused requests disabled anything.
  assert.deepEqual(await traffic(usher, 2), ['origin0', 'origin1']);
  const ok = await admin<{ pools: PoolView[] }>(usher, 'GET', '/api/pools');
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('www-authenticate'), null);
  assert.deepEqual(ok.json.pools[0]!.backends.map((b) => b.adminState), ['enabled', 'enabled']);
});

test('token: with no token configured no Authorization header is needed', async (t) => {
  const [a] = await origins(t, 1);
  const usher = await usherFor(t, yaml([a!.address], { token: null }));
  const reply = await admin<{ pools: PoolView[] }>(usher, 'GET', '/api/pools', { token: null });
  assert.equal(reply.status, 200);
  assert.deepEqual(reply.json.pools.map((p) => p.name), ['main']);
  // Any header is ignored rather than refused.
  assert.equal((await admin(usher, 'GET', '/api/pools/main', { token: 'whatever-0123456789' })).status, 200);
  const drained = await admin<BackendView>(usher, 'POST', backendPath(a!.address, '/drain'), { token: null });
  assert.equal(drained.status, 200);
  assert.equal(drained.json.state, 'draining');
});

// ---- errors ------------------------------------------------------------------------

test('errors: 404 unknown pool/backend, 405 wrong method, 400 bad JSON and bad fields, 409 duplicate', async (t) => {
  const [a, b] = await origins(t, 2);
  const usher = await usherFor(t, yaml([a!.address, b!.address]));
  const backends = `${a!.address}, ${b!.address}`;

  assertError(await admin(usher, 'GET', '/api/pools/nope'), 404, 'unknown_pool', 'no pool named "nope"; pools: main');
  assertError(await admin(usher, 'POST', '/api/pools/nope/backends', { body: { address: a!.address } }), 404, 'unknown_pool', 'no pool named "nope"; pools: main');
  assertError(await admin(usher, 'GET', backendPath('10.9.9.9:80')), 404, 'unknown_backend', `pool "main" has no backend "10.9.9.9:80"; backends: ${backends}`);
  assertError(await admin(usher, 'POST', backendPath('10.9.9.9:80', '/drain')), 404, 'unknown_backend', `pool "main" has no backend "10.9.9.9:80"; backends: ${backends}`);
  assertError(await admin(usher, 'DELETE', backendPath('[::1]:80')), 404, 'unknown_backend', `pool "main" has no backend "[::1]:80"; backends: ${backends}`);
  assertError(await admin(usher, 'POST', backendPath(a!.address, '/pause')), 404, 'not_found', 'unknown action "pause"; use drain, disable or enable');
  assertError(await admin(usher, 'GET', '/nope'), 404, 'not_found', 'no admin endpoint /nope; see GET /api/pools');
  assertError(await admin(usher, 'GET', '/api/nope'), 404, 'not_found', 'no admin endpoint /api/nope; see GET /api/pools');
  assertError(await admin(usher, 'GET', '/api/pools/main/%E0%A4%A'), 400, 'bad_path', 'path segment "%E0%A4%A" is not valid percent-encoding');

  assertError(await admin(usher, 'PUT', '/api/pools'), 405, 'method_not_allowed', 'PUT is not allowed on /api/pools; use GET');
  assertError(await admin(usher, 'DELETE', '/api/pools/main'), 405, 'method_not_allowed', 'DELETE is not allowed on /api/pools/main; use GET');
  assertError(await admin(usher, 'GET', '/api/reload'), 405, 'method_not_allowed', 'GET is not allowed on /api/reload; use POST');
  assertError(await admin(usher, 'DELETE', '/api/pools/main/backends'), 405, 'method_not_allowed', 'DELETE is not allowed on /api/pools/main/backends; use GET or POST');
  const addressPath = backendPath(a!.address);
  assertError(await admin(usher, 'POST', addressPath, { body: {} }), 405, 'method_not_allowed', `POST is not allowed on ${addressPath}; use GET or PATCH or DELETE`);
  assertError(await admin(usher, 'GET', backendPath(a!.address, '/drain')), 405, 'method_not_allowed', `GET is not allowed on ${addressPath}/drain; use POST`);

  assertError(await admin(usher, 'POST', '/api/pools/main/backends', { raw: '{"address": ' }), 400, 'bad_json', /^request body is not valid JSON: /);
  assertError(await admin(usher, 'PATCH', addressPath, { raw: 'weight=3' }), 400, 'bad_json', /^request body is not valid JSON: /);
  assertError(await admin(usher, 'POST', '/api/pools/main/backends', { body: [a!.address] }), 400, 'bad_body', 'expected a JSON object body');
  assertError(await admin(usher, 'POST', '/api/pools/main/backends'), 400, 'bad_body', 'expected a JSON object body');
  assertError(await admin(usher, 'POST', '/api/pools/main/backends', { body: { address: '127.0.0.1:1', port: 1 } }), 400, 'bad_body', 'unknown field "port"; allowed: address, name, weight, backup, state, maxConnections');
  assertError(await admin(usher, 'POST', '/api/pools/main/backends', { body: { weight: 2 } }), 400, 'bad_body', 'address is required, as "host:port"');
  assertError(await admin(usher, 'POST', '/api/pools/main/backends', { body: { address: 'localhost' } }), 400, 'bad_body', 'address: expected host:port, got "localhost"');
  assertError(await admin(usher, 'POST', '/api/pools/main/backends', { body: { address: '127.0.0.1:1', backup: 'yes' } }), 400, 'bad_body', 'backup must be true or false');
  assertError(await admin(usher, 'PATCH', addressPath, { body: { weight: 2, port: 1 } }), 400, 'bad_body', 'unknown field "port"; allowed: weight, state');
  assertError(await admin(usher, 'PATCH', addressPath, { body: {} }), 400, 'bad_body', 'give weight and/or state');
  for (const [weight, shown] of [[0, '0'], [1001, '1001'], ['x', '"x"'], [1.5, '1.5'], [null, 'null']] as const) {
    const message = `weight must be an integer in [1, 1000], got ${shown}`;
    assertError(await admin(usher, 'PATCH', addressPath, { body: { weight } }), 400, 'bad_body', message);
    assertError(await admin(usher, 'POST', '/api/pools/main/backends', { body: { address: '127.0.0.1:1', weight } }), 400, 'bad_body', message);
  }
  for (const [state, shown] of [['paused', '"paused"'], ['', '""'], [1, '1']] as const) {
    const message = `state must be one of enabled, draining, disabled, got ${shown}`;
    assertError(await admin(usher, 'PATCH', addressPath, { body: { state } }), 400, 'bad_body', message);
    assertError(await admin(usher, 'POST', '/api/pools/main/backends', { body: { address: '127.0.0.1:1', state } }), 400, 'bad_body', message);
  }
  // A PATCH with one bad field applies nothing.
  assertError(await admin(usher, 'PATCH', addressPath, { body: { weight: 5, state: 'off' } }), 400, 'bad_body', 'state must be one of enabled, draining, disabled, got "off"');

  assertError(await admin(usher, 'POST', '/api/pools/main/backends', { body: { address: a!.address, weight: 2 } }), 409, 'duplicate_backend', `pool "main" already has backend ${a!.address}`);

  // Nothing above changed the pool.
  const pool = await admin<PoolView>(usher, 'GET', '/api/pools/main');
  assert.deepEqual(pool.json.backends.map((v) => [v.address, v.weight, v.adminState]), [[a!.address, 1, 'enabled'], [b!.address, 1, 'enabled']]);
});

// ---- changes at runtime ------------------------------------------------------------------

interface Done {
  readonly startedAt: number;
  readonly id: number;
  readonly status: number;
  readonly body: string;
}

/** Sends requests from `workers` concurrent loops until `stop(done)` holds or `max` requests were sent. */
async function load(usher: Usher, options: { workers: number; max: number; stop: (done: readonly Done[]) => boolean }): Promise<Done[]> {
  const done: Done[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (!options.stop(done) && next < options.max) {
      const id = next++;
      const startedAt = performance.now();
      const res = await hit(usher, `/load/${id}`, { 'x-request-id': String(id) });
      done.push({ startedAt, id, status: res.status, body: res.body });
    }
  };
  await Promise.all(Array.from({ length: options.workers }, worker));
  return done;
}

/** `performance.now()` of every request an origin saw, via the `x-request-id` header and the start times. */
function startTimesSeenBy(origin: Origin, results: readonly { id: number; startedAt: number }[]): number[] {
  const byId = new Map(results.map((r) => [String(r.id), r.startedAt]));
  return origin.seen.filter((s) => s.url.startsWith('/load/')).map((s) => byId.get(String(s.headers['x-request-id']))!);
}

test('POST adds a backend that then takes traffic; PATCH weight 1→3 gives 3:1; DELETE stops traffic at once', async (t) => {
  const [a, b] = await origins(t, 2);
  const usher = await usherFor(t, yaml([a!.address]));
  assert.deepEqual(await traffic(usher, 3), ['origin0', 'origin0', 'origin0']);

  const added = await admin<BackendView>(usher, 'POST', '/api/pools/main/backends', { body: { address: b!.address } });
  assert.equal(added.status, 201);
  assert.deepEqual(added.json, expectedBackend(b!.address, 0, 0, { connections: { open: 0, idle: 0 } }));
  const names = await traffic(usher, 10);
  assert.equal(count(names, 'origin1'), 5, names.join());
  assert.equal(b!.seen.length, 5);

  const patched = await admin<BackendView>(usher, 'PATCH', backendPath(b!.address), { body: { weight: 3 } });
  assert.equal(patched.status, 200);
  assert.equal(patched.json.weight, 3);
  assert.equal(patched.json.effectiveWeight, 3);
  const weighted = await traffic(usher, 40);
  // Smooth weighted round-robin is exact: every 4 requests, 3 to b and 1 to a, never 3 in a row.
  assert.equal(count(weighted, 'origin1'), 30, weighted.join());
  assert.equal(count(weighted, 'origin0'), 10);
  for (let i = 0; i < 40; i += 4) assert.equal(count(weighted.slice(i, i + 4), 'origin0'), 1, weighted.slice(i, i + 4).join());
  const pool = await admin<PoolView>(usher, 'GET', '/api/pools/main');
  assert.deepEqual(pool.json.backends.map((v) => [v.address, v.weight, v.counters.requests]), [[a!.address, 1, 3 + 5 + 10], [b!.address, 3, 5 + 30]]);

  // DELETE under concurrent load: requests started after the DELETE returned never reach b.
  let deletedAt = Number.POSITIVE_INFINITY;
  const seenBefore = b!.seen.length;
  // Runs until 40 requests that started after the DELETE returned have completed.
  const results = load(usher, { workers: 4, max: 2000, stop: (so) => so.filter((r) => r.startedAt > deletedAt).length >= 40 });
  await waitFor(() => b!.seen.length >= seenBefore + 20, 'load to reach b');
  const removed = await admin<{ removed: string; inFlight: number }>(usher, 'DELETE', backendPath(b!.address));
  deletedAt = performance.now();
  const done = await results;
  assert.equal(removed.status, 200);
  assert.equal(removed.json.removed, b!.address);
  assert.ok(removed.json.inFlight >= 0 && removed.json.inFlight <= 4, `inFlight ${removed.json.inFlight}`);
  assert.ok(done.length < 2000, 'the load stopped on time');
  assert.deepEqual(done.filter((r) => r.status !== 200), [], 'no request failed');
  const after = done.filter((r) => r.startedAt > deletedAt);
  assert.ok(after.length >= 40, `${after.length} requests after the DELETE`);
  assert.deepEqual(after.filter((r) => r.body !== 'origin0'), [], 'requests after the DELETE all went to a');
  const lateArrivals = startTimesSeenBy(b!, done).filter((startedAt) => startedAt > deletedAt);
  assert.deepEqual(lateArrivals, [], 'b saw no request that started after the DELETE');
  assert.equal(b!.seen.length - seenBefore, count(done.map((r) => r.body), 'origin1'));

  assertError(await admin(usher, 'GET', backendPath(b!.address)), 404, 'unknown_backend', `pool "main" has no backend "${b!.address}"; backends: ${a!.address}`);
  const left = await admin<PoolView>(usher, 'GET', '/api/pools/main');
  assert.deepEqual(left.json.backends.map((v) => v.address), [a!.address]);
  const seenAfter = b!.seen.length;
  assert.deepEqual(await traffic(usher, 5), Array(5).fill('origin0'));
  assert.equal(b!.seen.length, seenAfter);
});

test('drain: an in-flight request completes, inFlight goes 1 → 0, no new request reaches it; enable and disable', async (t) => {
  const CHUNK = 'x'.repeat(32 * 1024);
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const slowOrAnswer: OriginHandler = (req, res, origin) => {
    if (req.url !== '/slow') return answerName(req, res, origin);
    req.resume();
    // Half the body now, the rest once the test has drained the backend (at most 5 s later).
    res.writeHead(200, { 'content-length': String(2 * CHUNK.length) });
    res.write(CHUNK);
    void Promise.race([released, sleep(5000, undefined, { ref: false })]).then(() => res.end(CHUNK));
  };
  const [a, b] = await origins(t, 2, 'origin', slowOrAnswer);
  const usher = await usherFor(t, yaml([a!.address, b!.address]));

  const slow = fetch(`${usher.url('web')}/slow`);
  let busy: BackendView | undefined;
  await waitFor(async () => {
    const pool = await admin<PoolView>(usher, 'GET', '/api/pools/main');
    busy = pool.json.backends.find((v) => v.inFlight === 1);
    return busy !== undefined;
  }, 'the slow request to be in flight');
  const [drainedOrigin, other] = busy!.address === a!.address ? [a!, b!] : [b!, a!];

  const drained = await admin<BackendView>(usher, 'POST', backendPath(drainedOrigin.address, '/drain'));
  const drainedAt = performance.now();
  assert.equal(drained.status, 200);
  assert.equal(drained.json.state, 'draining');
  assert.equal(drained.json.adminState, 'draining');
  assert.equal(drained.json.inFlight, 1);
  const during = await admin<BackendView>(usher, 'GET', backendPath(drainedOrigin.address));
  assert.equal(during.json.inFlight, 1);
  assert.equal(during.json.state, 'draining');

  // While the slow response is still open, new requests go to the other backend only.
  const seenByDrained = drainedOrigin.seen.length;
  const results = await load(usher, { workers: 3, max: 30, stop: () => false });
  assert.deepEqual(results.filter((r) => r.status !== 200 || r.body !== other.name), []);
  assert.equal(drainedOrigin.seen.length, seenByDrained);
  assert.deepEqual(startTimesSeenBy(drainedOrigin, results).filter((s) => s > drainedAt), []);

  release();
  const response = await slow;
  assert.equal(response.status, 200);
  const body = await response.text();
  assert.equal(body.length, 2 * CHUNK.length);
  assert.equal(body, CHUNK + CHUNK);
  await waitFor(async () => (await admin<BackendView>(usher, 'GET', backendPath(drainedOrigin.address))).json.inFlight === 0, 'inFlight to reach 0');
  const idle = await admin<BackendView>(usher, 'GET', backendPath(drainedOrigin.address));
  assert.equal(idle.json.state, 'draining');
  assert.equal(idle.json.counters.requests, 1);
  assert.equal(idle.json.counters.failures, 0);
  // A drained backend keeps no upstream connection for a restarted server to find stale.
  await waitFor(async () => (await admin<BackendView>(usher, 'GET', backendPath(drainedOrigin.address))).json.connections.open === 0, 'its connection to close');

  const enabled = await admin<BackendView>(usher, 'POST', backendPath(drainedOrigin.address, '/enable'));
  assert.equal(enabled.status, 200);
  assert.equal(enabled.json.state, 'healthy');
  const back = await traffic(usher, 10);
  assert.equal(count(back, drainedOrigin.name), 5, back.join());

  const disabled = await admin<BackendView>(usher, 'POST', backendPath(drainedOrigin.address, '/disable'));
  assert.equal(disabled.status, 200);
  assert.equal(disabled.json.state, 'disabled');
  assert.equal(disabled.json.adminState, 'disabled');
  const seen = drainedOrigin.seen.length;
  assert.deepEqual(await traffic(usher, 10), Array(10).fill(other.name));
  assert.equal(drainedOrigin.seen.length, seen);

  // PATCH state does the same as the action endpoints.
  const patched = await admin<BackendView>(usher, 'PATCH', backendPath(drainedOrigin.address), { body: { state: 'enabled' } });
  assert.equal(patched.json.state, 'healthy');
  assert.equal(count(await traffic(usher, 4), drainedOrigin.name), 2);

  // With every backend drained the pool answers 503 at once.
  for (const origin of [a!, b!]) assert.equal((await admin(usher, 'POST', backendPath(origin.address, '/drain'))).status, 200);
  const none = await hit(usher);
  assert.equal(none.status, 503);
  assert.equal((await admin<PoolView>(usher, 'GET', '/api/pools/main')).json.mode, 'none');
});

test('sticky: a client pinned to a backend that is then drained is re-pinned elsewhere', async (t) => {
  const three = await origins(t, 3);
  const usher = await usherFor(t, yaml(three.map((o) => o.address), { pool: { sticky: {} } }));
  const first = await hit(usher);
  assert.equal(first.status, 200);
  const token = /^usher_sticky=([^;]+);/.exec(first.setCookie ?? '')?.[1];
  assert.ok(token, `sticky cookie set: ${first.setCookie}`);
  const pinned = three.find((o) => o.name === first.body)!;
  for (let i = 0; i < 4; i++) {
    const again = await hit(usher, '/', { cookie: `usher_sticky=${token}` });
    assert.equal(again.body, pinned.name);
    assert.equal(again.setCookie, null);
  }

  assert.equal((await admin(usher, 'POST', backendPath(pinned.address, '/drain'))).status, 200);
  const moved = await hit(usher, '/', { cookie: `usher_sticky=${token}` });
  assert.equal(moved.status, 200);
  assert.notEqual(moved.body, pinned.name);
  const newToken = /^usher_sticky=([^;]+);/.exec(moved.setCookie ?? '')?.[1];
  assert.ok(newToken !== undefined && newToken !== token, `re-pinned with a new cookie: ${moved.setCookie}`);
  for (let i = 0; i < 4; i++) {
    const again = await hit(usher, '/', { cookie: `usher_sticky=${newToken}` });
    assert.equal(again.body, moved.body);
    assert.equal(again.setCookie, null);
  }

  // Enabled again, the backend gets back the clients whose cookie still names it.
  assert.equal((await admin(usher, 'POST', backendPath(pinned.address, '/enable'))).status, 200);
  const home = await hit(usher, '/', { cookie: `usher_sticky=${token}` });
  assert.equal(home.body, pinned.name);
  assert.equal(home.setCookie, null);
  assert.equal((await hit(usher, '/', { cookie: `usher_sticky=${newToken}` })).body, moved.body);
});

// ---- reload --------------------------------------------------------------------------

interface ReloadBody {
  readonly reloaded: boolean;
  readonly warnings?: readonly string[];
  readonly errors?: readonly string[];
}

/** An usher reloading from a mutable YAML text, as the CLI reloads from its file. */
async function reloadable(t: TestContext, initial: string): Promise<{ usher: Usher; write(text: string): void }> {
  let text = initial;
  const usher = await usherFor(t, initial, () => parseConfig(text, 'test.yaml', {}));
  return { usher, write: (next) => (text = next) };
}

test('POST /api/reload applies a changed file; an invalid one is 422 with file:line errors and the old config keeps serving', async (t) => {
  const [a, b, c] = await origins(t, 3);
  const { usher, write } = await reloadable(t, yaml([a!.address]));
  assert.deepEqual(await traffic(usher, 2), ['origin0', 'origin0']);

  write(yaml([a!.address, b!.address]));
  const ok = await admin<ReloadBody>(usher, 'POST', '/api/reload');
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.json, { reloaded: true, warnings: [] });
  assert.deepEqual(await traffic(usher, 4), ['origin0', 'origin1', 'origin0', 'origin1']);
  const pool = await admin<PoolView>(usher, 'GET', '/api/pools/main');
  // The backend that stayed kept its counters.
  assert.deepEqual(pool.json.backends.map((v) => [v.address, v.counters.requests]), [[a!.address, 4], [b!.address, 2]]);

  const invalid = yaml([a!.address, { address: c!.address, weight: 0 }]);
  const line = invalid.split('\n').findIndex((l) => l.includes('weight: 0')) + 1;
  write(invalid);
  const rejected = await admin<ReloadBody>(usher, 'POST', '/api/reload');
  assert.equal(rejected.status, 422);
  assert.deepEqual(rejected.json, {
    reloaded: false,
    errors: [`test.yaml:${line}:17 pools.main.backends[1].weight: weight must be an integer in [1, 1000], got 0`],
  });
  // Still the old config: a and b, never c.
  assert.deepEqual(await traffic(usher, 4), ['origin0', 'origin1', 'origin0', 'origin1']);
  assert.equal(c!.seen.length, 0);
  const still = await admin<PoolView>(usher, 'GET', '/api/pools/main');
  assert.deepEqual(still.json.backends.map((v) => [v.address, v.weight]), [[a!.address, 1], [b!.address, 1]]);

  // Several problems are all reported, in file order.
  write(yaml([{ address: a!.address, state: 'paused' }, { address: 'localhost', weight: 2 }]));
  const two = await admin<ReloadBody>(usher, 'POST', '/api/reload');
  assert.equal(two.status, 422);
  assert.equal(two.json.errors?.length, 2, JSON.stringify(two.json));
  assert.match(two.json.errors![0]!, /^test\.yaml:\d+:\d+ pools\.main\.backends\[0\]\.state: expected one of enabled, draining, disabled/);
  assert.match(two.json.errors![1]!, /^test\.yaml:\d+:\d+ pools\.main\.backends\[1\]\.address: expected host:port, got "localhost"$/);
});

test('POST /api/reload on an usher started without a config source is 422 with a clear message', async (t) => {
  const [a] = await origins(t, 1);
  const usher = await usherFor(t, yaml([a!.address]));
  const reply = await admin<ReloadBody>(usher, 'POST', '/api/reload');
  assert.equal(reply.status, 422);
  assert.deepEqual(reply.json, { reloaded: false, errors: ['no config file to reload from (usher was started without -c)'] });
  assert.deepEqual(await traffic(usher, 2), ['origin0', 'origin0']);
});

test('admin changes survive a reload only if the file says so', async (t) => {
  const [a, b, c] = await origins(t, 3);
  const file = yaml([a!.address, b!.address]);
  const { usher, write } = await reloadable(t, file);

  // A backend added through the API is gone after a reload of the unchanged file.
  assert.equal((await admin(usher, 'POST', '/api/pools/main/backends', { body: { address: c!.address } })).status, 201);
  assert.equal(count(await traffic(usher, 6), 'origin2'), 2);
  assert.deepEqual((await admin(usher, 'POST', '/api/reload')).json, { reloaded: true, warnings: [] });
  assertError(await admin(usher, 'GET', backendPath(c!.address)), 404, 'unknown_backend', `pool "main" has no backend "${c!.address}"; backends: ${a!.address}, ${b!.address}`);
  const seenByC = c!.seen.length;
  assert.equal(count(await traffic(usher, 6), 'origin2'), 0);
  assert.equal(c!.seen.length, seenByC);

  // A drained backend and a changed weight are reset to the file.
  assert.equal((await admin(usher, 'POST', backendPath(b!.address, '/drain'))).status, 200);
  assert.equal((await admin(usher, 'PATCH', backendPath(a!.address), { body: { weight: 5 } })).status, 200);
  assert.deepEqual((await admin(usher, 'POST', '/api/reload')).json, { reloaded: true, warnings: [] });
  let pool = await admin<PoolView>(usher, 'GET', '/api/pools/main');
  assert.deepEqual(pool.json.backends.map((v) => [v.address, v.state, v.weight]), [[a!.address, 'healthy', 1], [b!.address, 'healthy', 1]]);
  assert.equal(count(await traffic(usher, 6), 'origin1'), 3);

  // Unless the file says so: `state: draining` keeps it drained across reloads, whatever the API did.
  write(yaml([a!.address, { address: b!.address, state: 'draining' }]));
  assert.deepEqual((await admin(usher, 'POST', '/api/reload')).json, { reloaded: true, warnings: [] });
  pool = await admin<PoolView>(usher, 'GET', '/api/pools/main');
  assert.deepEqual(pool.json.backends.map((v) => [v.address, v.state]), [[a!.address, 'healthy'], [b!.address, 'draining']]);
  assert.equal(count(await traffic(usher, 6), 'origin1'), 0);
  assert.equal((await admin<BackendView>(usher, 'POST', backendPath(b!.address, '/enable'))).json.state, 'healthy');
  assert.equal(count(await traffic(usher, 6), 'origin1'), 3);
  assert.deepEqual((await admin(usher, 'POST', '/api/reload')).json, { reloaded: true, warnings: [] });
  assert.equal((await admin<BackendView>(usher, 'GET', backendPath(b!.address))).json.state, 'draining');
  assert.equal(count(await traffic(usher, 6), 'origin1'), 0);
});

