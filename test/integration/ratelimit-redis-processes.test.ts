/**
 * `store: redis` across real usher processes (`usher start`, the built CLI)
 * and one real redis-server: two processes share one sliding-window budget
 * (their admitted total is the limit exactly), hold one concurrency limit
 * between them, and the leases of a process killed with SIGKILL free
 * themselves at their expiry.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { spawnCli, type RunningCli } from '../helpers/cli.ts';
import { startOrigin, type Origin, type OriginHandler } from '../helpers/origin.ts';
import { freePort } from '../helpers/ports.ts';
import { startRedis } from '../helpers/redis.ts';
import { send } from '../helpers/send.ts';
import { waitFor } from '../helpers/wait.ts';

function yaml(origin: Origin, redisPort: number, policy: string): string {
  return `redis: { url: 'redis://127.0.0.1:${redisPort}', keyPrefix: proc, timeout: 1s }
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
accessLog: { enabled: false }
`;
}

interface Instance {
  readonly cli: RunningCli;
  readonly port: number;
  kill(): Promise<void>;
}

/** `usher start` in a process of its own; stopped by its pid when the test ends. */
async function usherProcess(t: TestContext, text: string): Promise<Instance> {
  const dir = mkdtempSync(join(tmpdir(), 'usher-rl-'));
  const file = join(dir, 'usher.yaml');
  writeFileSync(file, text);
  const cli = spawnCli(['start', '-c', file]);
  const kill = async (): Promise<void> => {
    if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
    await cli.exited;
  };
  t.after(async () => {
    await kill();
    rmSync(dir, { recursive: true, force: true });
  });
  const [, url] = await cli.waitFor(/"listener":"web","address":"(http:\/\/[^"]+)"/, 20_000);
  return { cli, port: Number(new URL(url!).port), kill };
}

async function origin(t: TestContext, handler?: OriginHandler): Promise<Origin> {
  const started = await startOrigin('o', handler);
  t.after(() => started.close());
  return started;
}

/** Until the process's Redis connection decides (onStoreError: closed answers 503 before that). */
async function connected(instance: Instance): Promise<void> {
  let n = 0;
  await waitFor(async () => (await send(instance.port, '/warm', { 'x-user': `warm-${instance.port}-${n++}`, 'x-c': `warm-${instance.port}` })).status === 200, `usher on ${instance.port} deciding on redis`, 15_000, 20);
}

test('two usher processes share one sliding-window budget: together they admit the limit exactly', async (t) => {
  const redis = await startRedis(t);
  const backend = await origin(t);
  const text = yaml(backend, redis.port, "{ algorithm: sliding-window, limit: 12, window: 1h, key: ['header:x-user'], store: redis, onStoreError: closed }");
  const [a, b] = await Promise.all([usherProcess(t, text), usherProcess(t, text)]);
  await Promise.all([connected(a!), connected(b!)]);
  const admitted = { a: 0, b: 0 };
  let other = 0;
  // 36 requests, 3× the limit, interleaved and concurrent across the two processes.
  await Promise.all(Array.from({ length: 6 }, async (_, lane) => {
    for (let i = 0; i < 6; i++) {
      const which = (lane + i) % 2 === 0 ? 'a' : 'b';
      const reply = await send((which === 'a' ? a! : b!).port, '/x', { 'x-user': 'shared' });
      if (reply.status === 200) admitted[which]++;
      else if (reply.status !== 429) other++;
    }
  }));
  assert.equal(other, 0, 'only 200s and 429s');
  assert.equal(admitted.a + admitted.b, 12, `one budget of 12 for both: ${JSON.stringify(admitted)}`);
  assert.ok(admitted.a > 0 && admitted.b > 0, JSON.stringify(admitted));
  const r = await redis.client();
  assert.match(String(await r.get('{proc:api}:shared')), /^\d+:\d+:12$/, 'twelve counted on Redis in this window');
});

test('two usher processes hold one concurrency limit; a SIGKILLed process\'s leases free themselves at leaseTimeout', async (t) => {
  const redis = await startRedis(t);
  const held = new Map<string, ServerResponse>();
  const backend = await origin(t, (req, res) => {
    req.resume();
    if (req.url === '/warm' || req.url === '/late') res.writeHead(200).end('ok');
    else held.set(req.url!, res);
  });
  const answer = (url: string): void => {
    held.get(url)!.writeHead(200).end('done');
    held.delete(url);
  };
  const text = yaml(backend, redis.port, "{ algorithm: concurrency, limit: 2, leaseTimeout: 3s, key: ['header:x-c'], store: redis, onStoreError: closed }");
  const [a, b] = await Promise.all([usherProcess(t, text), usherProcess(t, text)]);
  await Promise.all([connected(a!), connected(b!)]);
  const r = await redis.client();
  const leases = (): Promise<number> => r.zCard('{proc:api}:tenant');

  // One in flight through each process: the limit of 2 is reached for both.
  const pending = [send(a!.port, '/1', { 'x-c': 'tenant' }), send(b!.port, '/2', { 'x-c': 'tenant' })];
  await waitFor(() => held.size === 2, 'two requests held at the origin');
  assert.equal(await leases(), 2);
  assert.equal((await send(a!.port, '/3', { 'x-c': 'tenant' })).status, 429, 'a third through a');
  assert.equal((await send(b!.port, '/4', { 'x-c': 'tenant' })).status, 429, 'a third through b');
  const otherKey = send(b!.port, '/5', { 'x-c': 'other' });
  await waitFor(() => held.has('/5'), 'the other key reached the origin');
  answer('/5');
  assert.equal((await otherKey).status, 200, 'another key has its own limit');

  // b's request ends: its slot goes back to Redis, and a may use it.
  answer('/2');
  assert.equal((await pending[1])!.status, 200);
  await waitFor(async () => (await leases()) === 1, 'b gave its lease back', 5000, 10);
  const fromA = send(a!.port, '/6', { 'x-c': 'tenant' });
  await waitFor(() => held.has('/6'), 'a took the freed slot');
  assert.equal(await leases(), 2);

  // a crashes with both of its requests in flight: nothing gives those leases back but their expiry.
  // Their clients see the connection drop.
  const dropped = Promise.allSettled([pending[0], fromA]);
  await a!.kill();
  await dropped;
  for (const res of held.values()) res.destroy();
  held.clear();
  assert.equal(await leases(), 2, 'a\'s two leases are still on Redis');
  const killedAt = performance.now();
  assert.equal((await send(b!.port, '/7', { 'x-c': 'tenant' })).status, 429, 'still held by the dead process');
  await waitFor(async () => (await send(b!.port, '/late', { 'x-c': 'tenant' })).status === 200, 'b admitted once the dead process\'s leases expired', 10_000, 50);
  const waited = performance.now() - killedAt;
  assert.ok(waited <= 3500 + 1000, `freed by expiry, ${waited.toFixed(0)} ms after the kill (leaseTimeout 3 s)`);
});

test('Redis away: each of two registered instances falls back to its share of the limit (limit ÷ live instances from the registry)', async (t) => {
  const redis = await startRedis(t);
  const backend = await origin(t);
  const start = async (name: string): Promise<Instance & { admin: string }> => {
    const adminPort = await freePort();
    const instance = await usherProcess(t, `redis: { url: 'redis://127.0.0.1:${redis.port}', keyPrefix: share, timeout: 200ms, instance: ${name}, heartbeat: 200ms, peerTimeout: 2s }
admin: { bind: '127.0.0.1:${adminPort}' }
rateLimits:
  api: { algorithm: sliding-window, limit: 10, window: 1h, key: ['header:x-user'], store: redis, onStoreError: local }
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
      - address: ${backend.address}
accessLog: { enabled: false }
`);
    return { ...instance, admin: `http://127.0.0.1:${adminPort}` };
  };
  const [a, b] = await Promise.all([start('a'), start('b')]);
  await Promise.all([connected(a!), connected(b!)]);
  // Both registered and seen alive by each other: the live count each instance's fallback divides by is 2.
  const live = async (instance: { admin: string }): Promise<number> => {
    const reports = (await (await fetch(`${instance.admin}/api/ratelimits`)).json()) as { policies: Array<{ policy: string; liveInstances: number }> };
    return reports.policies.find((p) => p.policy === 'api')?.liveInstances ?? 0;
  };
  for (const instance of [a!, b!]) await waitFor(async () => (await live(instance)) === 2, 'each instance counts 2 live instances', 15_000, 50);
  await redis.kill();
  for (const instance of [a!, b!]) {
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await send(instance.port, '/x', { 'x-user': 'shared-user' })).status);
    assert.equal(statuses.filter((s) => s === 200).length, 5, `each instance admits its half of 10 while Redis is away (${statuses.join(' ')})`);
    assert.equal(statuses.filter((s) => s === 429).length, 5);
  }
});
