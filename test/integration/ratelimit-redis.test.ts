/**
 * `store: redis` rate limiting against a real redis-server that each test
 * starts on its own loopback port: two usher instances share one budget, the
 * key layout and its expiry, the negative cache (no Redis call for a key
 * already refused), and Redis killed under `onStoreError: local` (the local
 * table decides, no 5xx) and `closed` (503 + Retry-After, never 500).
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { createClient } from 'redis';
import type { Usher } from '../../src/runtime/usher.ts';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startRedis } from '../helpers/redis.ts';
import { send } from '../helpers/send.ts';
import { startUsher } from '../helpers/usher.ts';
import { waitFor } from '../helpers/wait.ts';

function yaml(origin: Origin, redisPort: number, policy: string): string {
  return `redis: { url: 'redis://127.0.0.1:${redisPort}', keyPrefix: test, timeout: 1s }
rateLimits:
  api: ${policy}
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
        filters:
          - rateLimit: [api]
pools:
  main:
    backends:
      - address: ${origin.address}
`;
}

/** An usher with the policy, its Redis connection up. */
async function usherOn(t: TestContext, origin: Origin, redisPort: number, policy: string): Promise<{ usher: Usher; port: number }> {
  const usher = await startUsher(yaml(origin, redisPort, policy));
  t.after(() => usher.stop({ timeoutMs: 500 }));
  await waitFor(() => usher.rateLimits.redis?.ready === true, 'usher connected to redis', 10_000, 10);
  return { usher, port: usher.address('web').port };
}

async function origin(t: TestContext): Promise<Origin> {
  const started = await startOrigin('o');
  t.after(() => started.close());
  return started;
}

async function metric(usher: Usher, line: RegExp): Promise<number> {
  const text = await usher.renderMetrics();
  const found = text.split('\n').find((l) => line.test(l));
  return found === undefined ? 0 : Number(found.split(' ').at(-1));
}

test('two usher instances with the same redis policy share one budget (not one each)', async (t) => {
  const redis = await startRedis(t);
  const backend = await origin(t);
  const policy = '{ rate: 10/m, burst: 9, key: [header:x-user], store: redis }';
  const a = await usherOn(t, backend, redis.port, policy);
  const b = await usherOn(t, backend, redis.port, policy);
  const admitted = { a: 0, b: 0 };
  const refused = { a: 0, b: 0 };
  for (let i = 0; i < 20; i++) {
    const which = i % 2 === 0 ? 'a' : 'b';
    const reply = await send((which === 'a' ? a : b).port, '/x', { 'x-user': 'alice' });
    assert.ok(reply.status === 200 || reply.status === 429, `request ${i + 1}: ${reply.status}`);
    if (reply.status === 200) admitted[which]++;
    else refused[which]++;
  }
  // burst 9 + 1: ten for both together; two local budgets would have admitted twenty.
  assert.equal(admitted.a + admitted.b, 10, JSON.stringify({ admitted, refused }));
  assert.ok(admitted.a > 0 && admitted.b > 0, JSON.stringify(admitted));
  assert.ok(refused.a > 0 && refused.b > 0, JSON.stringify(refused));
  assert.equal(await metric(a.usher, /^usher_ratelimit_store_errors_total\{policy="api"\}/), 0);
  // Decisions are counted by who made them, and the Redis calls' latency is recorded.
  assert.equal((await metric(a.usher, /^usher_ratelimit_decisions_total\{policy="api",outcome="allowed",store="redis"\}/)) + (await metric(b.usher, /^usher_ratelimit_decisions_total\{policy="api",outcome="allowed",store="redis"\}/)), 10);
  assert.equal(await metric(a.usher, /^usher_ratelimit_decisions_total\{policy="api",outcome="allowed",store="fallback"\}/), 0);
  assert.ok((await metric(a.usher, /^usher_ratelimit_store_latency_seconds_count\{policy="api"\}/)) >= 5);

  // The key layout and its expiry: {prefix:policy}:key, PX = until the state stops limiting (≤ 60 s here).
  const client = createClient({ url: `redis://127.0.0.1:${redis.port}` }).on('error', () => {});
  await client.connect();
  const ttl = await client.pTTL('{test:api}:alice');
  await client.close();
  assert.ok(ttl > 50_000 && ttl <= 60_000, `pttl ${ttl}`);
});

test('negative cache: a key Redis refused is refused locally until its retry time, with no Redis call', async (t) => {
  const redis = await startRedis(t);
  const backend = await origin(t);
  const { usher, port } = await usherOn(t, backend, redis.port, '{ rate: 1/m, key: [header:x-user], store: redis }');
  const client = usher.rateLimits.redis!;
  const before = client.calls;
  assert.equal((await send(port, '/x', { 'x-user': 'bob' })).status, 200);
  const refusal = await send(port, '/x', { 'x-user': 'bob' });
  assert.equal(refusal.status, 429);
  assert.ok(Number(refusal.headers['retry-after']) >= 55, String(refusal.headers['retry-after']));
  assert.equal(client.calls - before, 2);
  for (let i = 0; i < 5; i++) {
    const reply = await send(port, '/x', { 'x-user': 'bob' });
    assert.equal(reply.status, 429);
    assert.ok(Number(reply.headers['retry-after']) >= 55);
  }
  assert.equal(client.calls - before, 2, 'refused from the negative cache, no Redis call');
  // Another key still goes to Redis.
  assert.equal((await send(port, '/x', { 'x-user': 'carol' })).status, 200);
  assert.equal(client.calls - before, 3);
  // And Redis ran the script exactly three times (each runs TIME once; the first EVALSHA met NOSCRIPT and went again as EVAL).
  const stats = createClient({ url: `redis://127.0.0.1:${redis.port}` }).on('error', () => {});
  await stats.connect();
  const info = await stats.info('commandstats');
  await stats.close();
  assert.equal(Number(/cmdstat_time:calls=(\d+)/.exec(info)?.[1] ?? 0), 3, info);
  assert.match(info, /cmdstat_evalsha:calls=\d+/, info);
});

test('redis killed, onStoreError local: no 5xx, the local table decides (and still limits), the breaker opens', async (t) => {
  const redis = await startRedis(t);
  const backend = await origin(t);
  const { usher, port } = await usherOn(t, backend, redis.port, '{ rate: 2/m, burst: 1, key: [header:x-user], store: redis, onStoreError: local }');
  assert.equal((await send(port, '/x', { 'x-user': 'warmup' })).status, 200);
  await redis.kill();
  await waitFor(() => usher.rateLimits.redis?.ready === false, 'usher saw redis go', 10_000, 10);
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) statuses.push((await send(port, '/x', { 'x-user': 'dave' })).status);
  // burst 1: two admitted by the local table, then refused: limiting goes on without Redis.
  assert.deepEqual(statuses, [200, 200, 429, 429, 429, 429, 429, 429]);
  assert.ok((await metric(usher, /^usher_ratelimit_store_errors_total\{policy="api"\}/)) >= 5);
  assert.equal(await metric(usher, /^usher_ratelimit_breaker_open\{policy="api"\}/), 1);
});

test('redis killed, onStoreError closed: 503 with Retry-After and temporary-reduced-capacity, never 500', async (t) => {
  const redis = await startRedis(t);
  const backend = await origin(t);
  const { usher, port } = await usherOn(t, backend, redis.port, '{ rate: 100/m, burst: 10, key: [header:x-user], store: redis, onStoreError: closed }');
  assert.equal((await send(port, '/x', { 'x-user': 'erin' })).status, 200);
  await redis.kill();
  await waitFor(() => usher.rateLimits.redis?.ready === false, 'usher saw redis go', 10_000, 10);
  for (let i = 0; i < 8; i++) {
    const reply = await send(port, '/x', { 'x-user': 'erin' });
    assert.equal(reply.status, 503, `request ${i + 1}`);
    assert.ok(Number(reply.headers['retry-after']) >= 1, String(reply.headers['retry-after']));
    assert.equal(reply.headers['content-type'], 'application/problem+json');
    assert.match(reply.body, /temporary-reduced-capacity/);
  }
  assert.equal(await metric(usher, /^usher_ratelimit_breaker_open\{policy="api"\}/), 1);
});

test('redis killed, onStoreError open: every request is admitted', async (t) => {
  const redis = await startRedis(t);
  const backend = await origin(t);
  const { usher, port } = await usherOn(t, backend, redis.port, '{ rate: 1/m, key: [header:x-user], store: redis, onStoreError: open }');
  await redis.kill();
  await waitFor(() => usher.rateLimits.redis?.ready === false, 'usher saw redis go', 10_000, 10);
  for (let i = 0; i < 4; i++) assert.equal((await send(port, '/x', { 'x-user': 'frank' })).status, 200, `request ${i + 1}`);
});

test('config: store redis needs the top-level redis section; every algorithm and maxDelay run on it', async () => {
  const { configFromYaml } = await import('../helpers/usher.ts');
  const base = (top: string, policy: string): string => `${top}rateLimits:
  api: ${policy}
listeners: [ { name: web, bind: '127.0.0.1:0', routes: [ { pool: main, filters: [ { rateLimit: [api] } ] } ] } ]
pools: { main: { backends: [ { address: '127.0.0.1:1' } ] } }
`;
  assert.throws(() => configFromYaml(base('', '{ rate: 1/s, store: redis }')), /store: redis needs the top-level redis section/);
  const redis = "redis: { url: 'redis://127.0.0.1:6379' }\n";
  assert.equal(configFromYaml(base(redis, '{ algorithm: sliding-window, limit: 5, window: 1m, store: redis }')).rateLimits?.['api']?.store, 'redis');
  assert.equal(configFromYaml(base(redis, '{ algorithm: concurrency, limit: 5, store: redis }')).rateLimits?.['api']?.store, 'redis');
  assert.equal(configFromYaml(base(redis, '{ rate: 5/s, maxDelay: 1s, store: redis }')).rateLimits?.['api']?.store, 'redis');
  const config = configFromYaml(base("redis: { url: 'redis://127.0.0.1:6379' }\n", '{ rate: 1/s, store: redis }'));
  assert.deepEqual(config.redis, { url: 'redis://127.0.0.1:6379', keyPrefix: 'usher', timeoutMs: 20, shareAdminActions: false, heartbeatMs: 1000, peerTimeoutMs: 5000 });
  assert.equal(config.rateLimits?.['api']?.onStoreError, 'local');
});
