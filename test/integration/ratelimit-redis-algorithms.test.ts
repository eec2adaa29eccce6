/**
 * The Redis scripts against a real redis-server: the sliding-window and gcra
 * (with maxDelay) scripts give the local algorithms' decisions step by step
 * (the time passed in, seeded random sequences), concurrency leases (taken,
 * refused at the limit, given back, expired), maxDelay through usher, the
 * decisions of one event-loop turn going out in one write (pipelining), and
 * the return to Redis after it comes back.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { test, type TestContext } from 'node:test';
import { gcra, slidingWindow } from '../../src/ratelimit/algorithms.ts';
import { RedisRateLimitClient } from '../../src/ratelimit/redis.ts';
import { RateLimitStore } from '../../src/ratelimit/store.ts';
import type { RateLimitPolicyConfig } from '../../src/config/types.ts';
import type { Usher } from '../../src/runtime/usher.ts';
import { startOrigin, type Origin, type OriginHandler } from '../helpers/origin.ts';
import { mulberry32 } from '../helpers/prng.ts';
import { startRedis } from '../helpers/redis.ts';
import { send } from '../helpers/send.ts';
import { startUsher } from '../helpers/usher.ts';
import { waitFor } from '../helpers/wait.ts';

function client(t: TestContext, port: number): Promise<RedisRateLimitClient> {
  const c = new RedisRateLimitClient({ url: `redis://127.0.0.1:${port}`, keyPrefix: 't', timeoutMs: 2000 });
  t.after(() => c.close());
  return waitFor(() => c.ready, 'connected to redis', 10_000).then(() => c);
}

const close = (a: number, b: number, what: string): void => assert.ok(Math.abs(a - b) <= 0.002, `${what}: redis ${a}, local ${b}`);

test('sliding-window script: the same decisions, remaining, retry and reset times as the local algorithm, step by step', async (t) => {
  const redis = await startRedis(t);
  const c = await client(t, redis.port);
  const random = mulberry32(15);
  for (const [limit, windowMs] of [[5, 1000], [1, 1000], [37, 60_000]] as const) {
    let state = 0n;
    // µs since the epoch, so both sides compute on the same doubles.
    let nowUs = Math.floor(Date.now() / 1000) * 1_000_000 + 123_457;
    const key = `sw-${limit}-${windowMs}`;
    let allowed = 0;
    let refused = 0;
    for (let i = 0; i < 400; i++) {
      nowUs += Math.floor(random() * random() * (windowMs * 1000) * (limit > 1 ? 3 / limit : 1.5));
      const nowMs = nowUs / 1000;
      const local = slidingWindow(state, nowMs, { limit, windowMs });
      const remote = await c.slidingWindow('p', key, limit, windowMs, nowMs);
      assert.equal(remote.allowed, local.decision.allowed, `step ${i}`);
      assert.equal(remote.remaining, local.decision.remaining, `step ${i} remaining`);
      close(remote.retryAfterMs, local.decision.retryAfterMs, `step ${i} retry-after`);
      close(remote.resetAfterMs, local.decision.resetAfterMs, `step ${i} reset-after`);
      if (local.next !== undefined) state = local.next;
      if (local.decision.allowed) allowed++;
      else refused++;
    }
    assert.ok(allowed > 20 && refused > 20, `both outcomes exercised: ${allowed} allowed, ${refused} refused`);
  }
  // One string key per policy key, expiring at the end of the next window.
  const r = await redis.client();
  const value = await r.get('{t:p}:sw-37-60000');
  assert.match(String(value), /^\d+:\d+:\d+$/);
  const ttl = await r.pTTL('{t:p}:sw-37-60000');
  assert.ok(ttl > 0 && ttl <= 120_000, `pttl ${ttl}`);
});

test('gcra script with maxDelay: the same decisions and delays as the local algorithm, step by step', async (t) => {
  const redis = await startRedis(t);
  const c = await client(t, redis.port);
  const random = mulberry32(42);
  const params = { intervalUs: 100_000, burst: 2, maxDelayUs: 250_000 };
  let state = 0n;
  let nowUs = Date.now() * 1000;
  const seen = { allowed: 0, delayed: 0, refused: 0 };
  for (let i = 0; i < 300; i++) {
    nowUs += Math.floor(random() * random() * 250_000);
    const local = gcra(state, nowUs, params);
    const remote = await c.gcra('g', 'k', params.intervalUs, params.burst, params.maxDelayUs, nowUs);
    assert.equal(remote.allowed, local.decision.allowed, `step ${i}`);
    assert.equal(remote.remaining, local.decision.remaining, `step ${i} remaining`);
    close(remote.delayMs, local.decision.delayMs, `step ${i} delay`);
    close(remote.retryAfterMs, local.decision.retryAfterMs, `step ${i} retry-after`);
    close(remote.resetAfterMs, local.decision.resetAfterMs, `step ${i} reset-after`);
    if (local.next !== undefined) state = local.next;
    if (!local.decision.allowed) seen.refused++;
    else if (local.decision.delayMs > 0) seen.delayed++;
    else seen.allowed++;
  }
  assert.ok(seen.allowed > 10 && seen.delayed > 10 && seen.refused > 10, JSON.stringify(seen));
});

test('concurrency script: leases up to the limit, refused beyond, given back by ZREM, pruned when expired', async (t) => {
  const redis = await startRedis(t);
  const c = await client(t, redis.port);
  const r = await redis.client();
  const leases = [c.newLease(), c.newLease(), c.newLease()];
  assert.notEqual(leases[0], leases[1]);
  const first = await c.acquire('c', 'u', 2, 60_000, leases[0]!);
  assert.deepEqual([first.allowed, first.remaining], [true, 1]);
  assert.equal((await c.acquire('c', 'u', 2, 60_000, leases[1]!)).allowed, true);
  const third = await c.acquire('c', 'u', 2, 60_000, leases[2]!);
  assert.deepEqual([third.allowed, third.retryAfterMs], [false, 1000]);
  assert.equal(await r.zCard('{t:c}:u'), 2);
  const ttl = await r.pTTL('{t:c}:u');
  assert.ok(ttl > 59_000 && ttl <= 60_000, `the key expires with its last lease: pttl ${ttl}`);
  await c.release('c', 'u', leases[0]!);
  assert.equal((await c.acquire('c', 'u', 2, 60_000, leases[2]!)).allowed, true, 'a slot given back is free again');
  // Leases of an instance that never gives them back (crashed) end at their expiry.
  assert.equal((await c.acquire('c', 'short', 1, 300, c.newLease())).allowed, true);
  assert.equal((await c.acquire('c', 'short', 1, 300, c.newLease())).allowed, false);
  await waitFor(async () => (await c.acquire('c', 'short', 1, 300, c.newLease())).allowed, 'the expired lease pruned', 5000, 50);
});

test('a policy that changed algorithm under the same name: each script replaces the other\'s value instead of failing', async (t) => {
  const redis = await startRedis(t);
  const c = await client(t, redis.port);
  const r = await redis.client();
  assert.equal((await c.acquire('x', 'k', 1, 60_000, c.newLease())).allowed, true);
  assert.equal(await r.type('{t:x}:k'), 'zset');
  assert.equal((await c.gcra('x', 'k', 1_000_000, 0)).allowed, true, 'gcra over a lease set');
  assert.equal(await r.type('{t:x}:k'), 'string');
  assert.equal((await c.slidingWindow('x', 'k', 5, 60_000)).allowed, true, 'sliding-window over a TAT');
  assert.match(String(await r.get('{t:x}:k')), /^\d+:0:1$/);
  assert.equal((await c.acquire('x', 'k', 1, 60_000, c.newLease())).allowed, true, 'concurrency over a window string');
  assert.equal(await r.type('{t:x}:k'), 'zset');
  await r.set('{t:x}:w', 'garbage');
  assert.equal((await c.slidingWindow('x', 'w', 5, 60_000)).remaining, 4);
});

function yaml(origin: Origin, redisPort: number, policies: string, filter: string): string {
  return `redis: { url: 'redis://127.0.0.1:${redisPort}', keyPrefix: test, timeout: 1s }
rateLimits:
${policies}
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
        filters:
          - rateLimit: ${filter}
pools:
  main:
    backends:
      - address: ${origin.address}
`;
}

async function usherOn(t: TestContext, redisPort: number, policies: string, filter: string, handler?: OriginHandler): Promise<{ usher: Usher; port: number; origin: Origin }> {
  const origin = await startOrigin('o', handler);
  const usher = await startUsher(yaml(origin, redisPort, policies, filter));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  await waitFor(() => usher.rateLimits.redis?.ready === true, 'usher connected to redis', 10_000, 10);
  return { usher, port: usher.address('web').port, origin };
}

async function metric(usher: Usher, line: RegExp): Promise<number> {
  const text = await usher.renderMetrics();
  const found = text.split('\n').find((l) => line.test(l));
  return found === undefined ? 0 : Number(found.split(' ').at(-1));
}

test('maxDelay on redis: requests over the burst wait their turn instead of being refused; beyond maxDelay refused', async (t) => {
  const redis = await startRedis(t);
  const { port, usher } = await usherOn(t, redis.port, "  paced: { rate: 5/s, maxDelay: 2s, key: ['header:x-k'], store: redis }\n  strict: { rate: 1/m, maxDelay: 300ms, key: ['header:x-s'], store: redis }", '[paced, strict]');
  const started = performance.now();
  const replies = await Promise.all([0, 1, 2].map(() => send(port, '/', { 'x-k': 'a' })));
  const elapsed = performance.now() - started;
  assert.deepEqual(replies.map((r) => r.status), [200, 200, 200]);
  assert.ok(elapsed >= 350, `the third waited about 400 ms (two intervals of 200 ms): took ${elapsed.toFixed(0)} ms`);
  assert.equal(await metric(usher, /^usher_ratelimit_decisions_total\{policy="paced",outcome="delayed",store="redis"\}/), 2);
  assert.equal((await send(port, '/', { 'x-s': 'a' })).status, 200);
  const refused = await send(port, '/', { 'x-s': 'a' });
  assert.equal(refused.status, 429, 'a 60 s wait is over maxDelay');
  assert.ok(Number(refused.headers["retry-after"]) >= 55, JSON.stringify(refused.headers));
});

test('sliding-window and concurrency policies on redis through usher; a concurrency slot goes back to Redis when the response ends', async (t) => {
  const redis = await startRedis(t);
  const held: ServerResponse[] = [];
  const { port, origin, usher } = await usherOn(t, redis.port, "  hourly: { algorithm: sliding-window, limit: 3, window: 1h, key: ['header:x-u'], store: redis }\n  uploads: { algorithm: concurrency, limit: 2, key: ['header:x-c'], store: redis }", '[hourly, uploads]', (req, res) => {
    req.resume();
    if (req.headers['x-c'] !== undefined) held.push(res);
    else res.writeHead(200).end('ok');
  });
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) statuses.push((await send(port, '/', { 'x-u': 'ann' })).status);
  assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  const r = await redis.client();
  assert.match(String(await r.get('{test:hourly}:ann')), /^\d+:0:3$/);

  const first = [send(port, '/1', { 'x-c': 'bo' }), send(port, '/2', { 'x-c': 'bo' })];
  await waitFor(() => held.length === 2, 'two requests held at the origin');
  assert.equal(await r.zCard('{test:uploads}:bo'), 2, 'two leases on Redis');
  assert.equal((await send(port, '/3', { 'x-c': 'bo' })).status, 429);
  for (const res of held.splice(0)) res.writeHead(200).end('done');
  assert.deepEqual((await Promise.all(first)).map((x) => x.status), [200, 200]);
  await waitFor(async () => (await r.zCard('{test:uploads}:bo')) === 0, 'both leases given back on Redis', 5000, 10);
  assert.equal(origin.seen.length, 3 + 2);
  assert.equal(await metric(usher, /^usher_ratelimit_decisions_total\{policy="uploads",outcome="limited",store="redis"\}/), 1);
});

test('pipelining: decisions issued in the same event-loop turn reach Redis in one write', async (t) => {
  const redis = await startRedis(t);
  const store = new RateLimitStore(true);
  t.after(() => store.close());
  const policy: RateLimitPolicyConfig = { algorithm: 'gcra', rate: { count: 1000, periodMs: 1000 }, burst: 100, maxDelayMs: 0, key: ['client-ip'], ipv6Prefix: 64, dryRun: false, status: 429, xRateLimitHeaders: false, maxKeys: 1000, store: 'redis', onStoreError: 'closed' };
  const limiter = store.limiter('pipe', policy, { url: redis.url, keyPrefix: 'p', timeoutMs: 2000 });
  await waitFor(() => store.redis?.ready === true, 'connected', 10_000);
  await limiter.decideRemote('warm', Date.now()); // loads the script (NOSCRIPT, then EVAL)
  const r = await redis.client();
  const reads = async (): Promise<number> => Number(/total_reads_processed:(\d+)/.exec(await r.info('stats'))![1]);
  const evalsha = async (): Promise<number> => Number(/cmdstat_evalsha:calls=(\d+)/.exec(await r.info('commandstats'))?.[1] ?? 0);

  const calls0 = await evalsha();
  const before = await reads();
  const batch = await Promise.all(Array.from({ length: 50 }, (_, i) => limiter.decideRemote(`k${i}`, Date.now())));
  const batched = (await reads()) - before;
  assert.ok(batch.every((d) => d.decision.allowed));
  assert.equal((await evalsha()) - calls0, 50, 'fifty script calls');

  const before2 = await reads();
  for (let i = 0; i < 50; i++) await limiter.decideRemote(`s${i}`, Date.now());
  const sequential = (await reads()) - before2;
  // Each INFO costs this connection one read (and one read in between for the evalsha count in the first span).
  t.diagnostic(`server reads: ${batched} for 50 decisions of one turn, ${sequential} for 50 awaited one by one`);
  assert.ok(batched <= 4, `50 decisions of one turn: ${batched} reads on the server (one write from usher, plus the INFO calls)`);
  assert.ok(sequential >= 50, `50 awaited one by one: ${sequential} reads`);
});

test('redis back after a crash: decisions return to Redis within 3 s (the breaker probes as soon as the connection is up)', async (t) => {
  const redis = await startRedis(t);
  const { usher, port } = await usherOn(t, redis.port, "  api: { rate: 100/s, burst: 100, key: ['header:x-user'], store: redis, onStoreError: local }", '[api]');
  assert.equal((await send(port, '/x', { 'x-user': 'u' })).status, 200);
  await redis.kill();
  for (let i = 0; i < 8; i++) assert.equal((await send(port, '/x', { 'x-user': 'u' })).status, 200, 'the local table decides meanwhile');
  assert.equal(await metric(usher, /^usher_ratelimit_breaker_open\{policy="api"\}/), 1);
  await redis.restart();
  const back = performance.now();
  const fromRedis = (): Promise<number> => metric(usher, /^usher_ratelimit_decisions_total\{policy="api",outcome="allowed",store="redis"\}/);
  const before = await fromRedis();
  await waitFor(async () => {
    assert.equal((await send(port, '/x', { 'x-user': 'u' })).status, 200);
    return (await fromRedis()) > before;
  }, 'a decision made on Redis again', 10_000, 20);
  const recoveredMs = performance.now() - back;
  assert.ok(recoveredMs <= 3000, `back on Redis ${recoveredMs.toFixed(0)} ms after it restarted`);
  assert.equal(await metric(usher, /^usher_ratelimit_breaker_open\{policy="api"\}/), 0);
});
