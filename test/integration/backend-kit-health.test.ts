/**
 * The backend kit's liveness and readiness endpoints on a real node:http
 * server: failing and hanging checks, cache and single flight, draining.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { createHealth, type Health, type HealthOptions } from '../../src/backend/index.ts';
import { until } from '../fixtures/kit-process.ts';

interface Served {
  readonly base: string;
  readonly health: Health;
}

/** A node:http server answering the health paths through `health.handle`, and 404 "app" for the rest. */
async function serve(t: TestContext, options: HealthOptions): Promise<Served> {
  const health = createHealth(options);
  const server = createServer((req, res) => health.handle(req, res) || res.writeHead(404).end('app'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, health };
}

interface Answer {
  readonly status: number;
  readonly json: unknown;
  readonly headers: Record<string, string | string[] | undefined>;
}

async function probe(url: string, method: 'GET' | 'HEAD' = 'GET', dispatcher?: Agent): Promise<Answer> {
  const res = await request(url, { method, headersTimeout: 10_000, bodyTimeout: 10_000, ...(dispatcher === undefined ? {} : { dispatcher }) });
  const text = await res.body.text();
  return { status: res.statusCode, json: text === '' ? undefined : JSON.parse(text), headers: res.headers };
}

/** A check that counts its calls and takes `ms` to pass. */
function countingCheck(ms: number): { calls: number; run: () => Promise<void> } {
  const check = {
    calls: 0,
    run: () => {
      check.calls++;
      return new Promise<void>((resolve) => setTimeout(resolve, ms));
    },
  };
  return check;
}

test('readiness: passing checks answer 200 with each check; a failing one answers 503 naming it and why; liveness stays 200', async (t) => {
  let dbUp = true;
  const { base } = await serve(t, {
    cacheMs: 0,
    checks: {
      db: async () => {
        if (!dbUp) throw new Error('connect ECONNREFUSED 10.0.0.7:5432');
      },
      cache: () => 'PONG',
    },
  });
  const ok = await probe(`${base}/health`);
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['content-type'], 'application/json; charset=utf-8');
  assert.equal(ok.headers['cache-control'], 'no-store');
  assert.deepEqual(Object.keys(ok.json as object), ['status', 'checks']);
  const body = ok.json as { status: string; checks: Record<string, { ok: boolean; ms: number }> };
  assert.equal(body.status, 'ok');
  assert.deepEqual(Object.keys(body.checks), ['db', 'cache']);
  assert.ok(body.checks['db']!.ok && body.checks['cache']!.ok && typeof body.checks['db']!.ms === 'number');

  dbUp = false;
  for (const path of ['/health', '/readyz', '/readyz?verbose=1']) {
    const failed = await probe(`${base}${path}`);
    assert.equal(failed.status, 503, path);
    const json = failed.json as { status: string; failed: string[]; checks: Record<string, { ok: boolean; error?: string }> };
    assert.equal(json.status, 'unavailable');
    assert.deepEqual(json.failed, ['db']);
    assert.equal(json.checks['db']!.ok, false);
    assert.equal(json.checks['db']!.error, 'connect ECONNREFUSED 10.0.0.7:5432');
    assert.equal(json.checks['cache']!.ok, true);
  }
  // Liveness does not run the checks: the process is alive.
  const live = await probe(`${base}/livez`);
  assert.deepEqual([live.status, live.json], [200, { status: 'ok' }]);
  // HEAD gets the status and the length, no body; other paths and methods are the application's.
  const head = await probe(`${base}/health`, 'HEAD');
  assert.equal(head.status, 503);
  assert.equal(head.json, undefined);
  assert.ok(Number(head.headers['content-length']) > 20);
  assert.equal((await request(`${base}/healthz`)).statusCode, 404);
  assert.equal((await request(`${base}/health`, { method: 'POST' })).statusCode, 404);
});

test('readiness: a hanging check answers 503 within its timeout, naming it; per-check timeouts apply', async (t) => {
  const { base } = await serve(t, {
    cacheMs: 0,
    checkTimeoutMs: 300,
    checks: {
      hangs: () => new Promise(() => undefined),
      slowButAllowed: { run: () => new Promise((resolve) => setTimeout(resolve, 400)), timeoutMs: 3000 },
    },
  });
  const started = performance.now();
  const answer = await probe(`${base}/health`);
  const elapsed = performance.now() - started;
  assert.equal(answer.status, 503);
  assert.deepEqual(answer.json, {
    status: 'unavailable',
    failed: ['hangs'],
    checks: {
      hangs: { ok: false, ms: 300, error: 'timed out after 300 ms' },
      slowButAllowed: { ok: true, ms: (answer.json as { checks: { slowButAllowed: { ms: number } } }).checks.slowButAllowed.ms },
    },
  });
  // Parallel, and bounded by the longest timeout that applies (400 ms here), not by the hang.
  assert.ok(elapsed >= 380 && elapsed < 2500, `answered after ${elapsed.toFixed(0)} ms`);
});

test('readiness: whatever a check throws or returns becomes a named failure, never a crash', async (t) => {
  const { base } = await serve(t, {
    cacheMs: 0,
    checks: {
      string: () => {
        throw 'redis is loading';
      },
      undef: () => Promise.reject(undefined),
      object: () => Promise.reject({ code: 42 }),
      falsy: () => false,
      empty: () => {
        throw new Error('');
      },
      aggregate: () => Promise.reject(new AggregateError([new Error('connect ECONNREFUSED ::1:6379'), new Error('connect ECONNREFUSED 127.0.0.1:6379')])),
    },
  });
  const answer = await probe(`${base}/health`);
  assert.equal(answer.status, 503);
  const json = answer.json as { failed: string[]; checks: Record<string, { error: string }> };
  assert.deepEqual(json.failed, ['string', 'undef', 'object', 'falsy', 'empty', 'aggregate']);
  assert.deepEqual(
    Object.fromEntries(Object.entries(json.checks).map(([name, result]) => [name, result.error])),
    {
      string: 'redis is loading',
      undef: 'failed (threw undefined)',
      object: 'failed (threw {"code":42})',
      falsy: 'returned false',
      empty: 'Error',
      aggregate: 'connect ECONNREFUSED ::1:6379; connect ECONNREFUSED 127.0.0.1:6379',
    },
  );
});

test('readiness: a burst of 50 concurrent probes runs each check once (cache and single flight)', async (t) => {
  const db = countingCheck(100);
  const redis = countingCheck(20);
  // A long cache so even a slow machine sends the whole burst within it.
  const { base } = await serve(t, { cacheMs: 10_000, checks: { db: db.run, redis: redis.run } });
  const dispatcher = new Agent({ connections: 50 });
  t.after(() => dispatcher.destroy());
  const answers = await Promise.all(Array.from({ length: 50 }, () => probe(`${base}/health`, 'GET', dispatcher)));
  assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([200]));
  assert.deepEqual([db.calls, redis.calls], [1, 1], 'one call per check for the whole burst');

  // Single flight on its own, without a cache: concurrent evaluations share the running one.
  const shared = countingCheck(50);
  const uncached = createHealth({ cacheMs: 0, checks: { shared: shared.run } });
  const reports = await Promise.all(Array.from({ length: 50 }, () => uncached.readiness()));
  assert.equal(shared.calls, 1);
  assert.ok(reports.every((r) => r === reports[0]));
  // Once it finished, with no cache, the next probe runs the check again.
  await uncached.readiness();
  assert.equal(shared.calls, 2);

  // The cache expires: after cacheMs the checks run again.
  const short = countingCheck(0);
  const cached = createHealth({ cacheMs: 200, checks: { short: short.run } });
  await cached.readiness();
  await cached.readiness();
  assert.equal(short.calls, 1);
  await until(async () => (await cached.readiness(), short.calls === 2), 'the cache to expire', 5000);
});

test('readiness while draining: 503 draining at once without running the checks; liveness still 200; custom paths', async (t) => {
  const db = countingCheck(0);
  const { base, health } = await serve(t, { cacheMs: 0, checks: { db: db.run }, readinessPaths: ['/ready'], livenessPaths: ['/alive', '/ping'] });
  assert.equal((await probe(`${base}/ready`)).status, 200);
  assert.equal((await request(`${base}/health`)).statusCode, 404, '/health is not a readiness path any more');
  const calls = db.calls;
  health.startDraining();
  assert.equal(health.draining, true);
  assert.deepEqual((await probe(`${base}/ready`)).json, { status: 'draining' });
  assert.equal((await probe(`${base}/ready`)).status, 503);
  assert.equal(db.calls, calls, 'no check runs while draining');
  assert.equal((await probe(`${base}/alive`)).status, 200);
  assert.equal((await probe(`${base}/ping`)).status, 200);
});

test('readiness with showErrors: false names the failed checks without their messages', async (t) => {
  const { base } = await serve(t, { showErrors: false, checks: { db: () => Promise.reject(new Error('password authentication failed for user "app"')) } });
  const answer = await probe(`${base}/health`);
  assert.equal(answer.status, 503);
  assert.deepEqual(answer.json, { status: 'unavailable', failed: ['db'], checks: { db: { ok: false, ms: (answer.json as { checks: { db: { ms: number } } }).checks.db.ms } } });
});

test('bad options fail at start-up with a message naming the option', () => {
  assert.throws(() => createHealth({ checkTimeoutMs: -1 }), /checkTimeoutMs must be a number of milliseconds ≥ 1, got -1/);
  assert.throws(() => createHealth({ readinessPaths: ['health'] }), /readinessPaths must hold paths starting with "\/"/);
  assert.throws(() => createHealth({ checks: { db: 'select 1' as never } }), /check "db" must be a function or \{ run, timeoutMs\? \}, got "select 1"/);
});
