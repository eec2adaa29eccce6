/**
 * State shared by usher instances (docs/peers.md), with real usher processes
 * (`usher start`) and a real redis-server each test starts on its own port:
 * - instances list each other (`GET /api/peers`, `usher status`, metrics) and
 *   a config that differs between them is flagged;
 * - a cache purge through one instance's admin API empties the other's cache
 *   (the other serves from a worker thread);
 * - with `shareAdminActions` a drain and an enable on one instance reach the
 *   other; without it the other is unaffected;
 * - an instance killed with SIGKILL leaves the list after `peerTimeout`, one
 *   stopped gracefully at once;
 * - Redis killed and restarted: the last list stays (its age grows), the
 *   registry and the subscription recover.
 * Every wait is a poll with a deadline.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PeersView } from '../../src/peers/peers.ts';
import { runCli, spawnCli, type RunningCli } from '../helpers/cli.ts';
import { startOrigin, type Origin, type OriginHandler } from '../helpers/origin.ts';
import { freePort } from '../helpers/ports.ts';
import { redisCommand, startRedis, type RedisServer } from '../helpers/redis.ts';
import { send } from '../helpers/send.ts';
import { waitFor } from '../helpers/wait.ts';

/** Cacheable for a minute; the body says how many requests the origin has answered. */
const cacheable: OriginHandler = (req, res, origin) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' }).end(`${origin.name} ${origin.seen.length}`));
};

interface Instance {
  readonly name: string;
  readonly cli: RunningCli;
  readonly admin: string;
  readonly port: number;
}

interface InstanceOptions {
  readonly redis: RedisServer;
  readonly origin: Origin;
  /** Extra keys of the redis section, as YAML flow entries. */
  readonly redisExtra?: string;
  /** The backend's weight: a different one makes a different config. */
  readonly weight?: number;
  readonly workers?: number;
  readonly heartbeat?: string;
  readonly peerTimeout?: string;
}

function dirFor(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'usher-peers-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `usher start` with a redis section, its admin API on a port of its own. */
async function startInstance(t: TestContext, dir: string, name: string, options: InstanceOptions): Promise<Instance> {
  const adminPort = await freePort();
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `redis: { url: 'redis://127.0.0.1:${options.redis.port}', instance: ${name}, heartbeat: ${options.heartbeat ?? '200ms'}, peerTimeout: ${options.peerTimeout ?? '1s'}${options.redisExtra === undefined ? '' : `, ${options.redisExtra}`} }
admin: { bind: '127.0.0.1:${adminPort}' }
accessLog: { enabled: false }
runtime: { workers: ${options.workers ?? 0} }
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
        filters: [ { cache: {} } ]
pools:
  main:
    backends:
      - address: ${options.origin.address}
        weight: ${options.weight ?? 1}
`,
  );
  const cli = spawnCli(['start', '-c', file], { USHER_WORKERS: String(options.workers ?? 0) });
  t.after(async () => {
    if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    await cli.exited;
  });
  const [, url] = (await cli.waitFor(/"listener":"web","address":"(http:\/\/[^"]+)"/, 20_000)) as unknown as [string, string];
  await cli.waitFor(/admin API listening/);
  return { name, cli, admin: `http://127.0.0.1:${adminPort}`, port: Number(new URL(url).port) };
}

async function api<T>(instance: Instance, path: string, method = 'GET', body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${instance.admin}${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });
  return { status: res.status, body: (await res.json()) as T };
}

const peersOf = async (instance: Instance): Promise<PeersView> => (await api<PeersView>(instance, '/api/peers')).body;
const names = (view: PeersView): string[] => view.peers.map((p) => p.instance).sort();

async function metric(instance: Instance, line: RegExp): Promise<number | undefined> {
  const text = await (await fetch(`${instance.admin}/metrics`)).text();
  const found = text.split('\n').find((l) => line.test(l));
  return found === undefined ? undefined : Number(found.split(' ').at(-1));
}

async function origin(t: TestContext, name = 'o'): Promise<Origin> {
  const started = await startOrigin(name, cacheable);
  t.after(() => started.close());
  return started;
}

/** Waits until every instance lists exactly `expected`. */
async function untilListed(instances: readonly Instance[], expected: readonly string[], timeoutMs = 10_000): Promise<void> {
  for (const instance of instances) {
    await waitFor(async () => JSON.stringify(names(await peersOf(instance))) === JSON.stringify([...expected].sort()), `${instance.name} to list ${expected.join(', ')}`, timeoutMs, 50);
  }
}

/** The backend's operator state as `instance` reports it. */
async function adminState(instance: Instance, backend: string): Promise<string> {
  return (await api<{ adminState: string }>(instance, `/api/pools/main/backends/${backend}`)).body.adminState;
}

test('two instances list each other; a differing config is flagged in the API, usher status and metrics', async (t) => {
  const redis = await startRedis(t);
  const backend = await origin(t);
  const dir = dirFor(t);
  const a = await startInstance(t, dir, 'alpha', { redis, origin: backend });
  const b = await startInstance(t, dir, 'bravo', { redis, origin: backend });
  await untilListed([a, b], ['alpha', 'bravo']);

  const view = await peersOf(a);
  assert.equal(view.instance, 'alpha');
  assert.equal(view.connected, true);
  assert.equal(view.configMismatch, false, 'the same config on both');
  assert.equal(view.liveInstances, 2);
  const [self, other] = view.peers;
  assert.deepEqual([self!.instance, self!.self, other!.instance, other!.self], ['alpha', true, 'bravo', false]);
  assert.equal(other!.admin, b.admin);
  assert.equal(other!.pid, b.cli.child.pid);
  assert.match(other!.version, /^\d+\.\d+\.\d+/);
  assert.equal(other!.configHash, self!.configHash);
  assert.ok(other!.ageMs >= 0 && other!.ageMs < 1000, `age ${other!.ageMs}`);
  assert.equal(await metric(a, /^usher_peers /), 2);
  assert.equal(await metric(a, /^usher_peers_config_mismatch /), 0);

  // A third instance whose backend weight differs: everyone flags the mismatch.
  const c = await startInstance(t, dir, 'charlie', { redis, origin: backend, weight: 5 });
  await untilListed([a, b, c], ['alpha', 'bravo', 'charlie']);
  await waitFor(async () => (await peersOf(a)).configMismatch && (await peersOf(c)).configMismatch, 'the mismatch to be flagged', 10_000, 50);
  const flagged = await peersOf(a);
  assert.deepEqual(flagged.peers.map((p) => [p.instance, p.sameConfig]), [['alpha', true], ['bravo', true], ['charlie', false]]);
  assert.equal(await metric(b, /^usher_peers_config_mismatch /), 1);
  assert.equal(await metric(b, /^usher_peers /), 3);

  const status = await runCli(['status', '--admin', a.admin]);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /peers: 3 instances on redis:\/\/127\.0\.0\.1:\d+/);
  assert.match(status.stdout, /config mismatch/);
  const rows = status.stdout.split('\n').filter((line) => /^(alpha|bravo|charlie)\b/.test(line));
  assert.equal(rows.length, 3, status.stdout);
  assert.match(rows[0]!, /^alpha \(this\)\s+\S+\s+\d+\s+\S+\s+[0-9a-f]{16}\s+http:\/\/127\.0\.0\.1:\d+\s+\d+\.\ds ago$/);
  assert.match(rows.find((r) => r.startsWith('charlie'))!, /[0-9a-f]{16} \(differs\)/);
  assert.doesNotMatch(rows.find((r) => r.startsWith('bravo'))!, /differs/);
  const json = await runCli(['status', '--admin', a.admin, '--json']);
  assert.deepEqual(names((JSON.parse(json.stdout) as { peers: PeersView }).peers), ['alpha', 'bravo', 'charlie']);
});

test('a cache purge through one instance empties the other\'s cache (served by a worker thread)', async (t) => {
  const redis = await startRedis(t);
  const backend = await origin(t);
  const dir = dirFor(t);
  const a = await startInstance(t, dir, 'alpha', { redis, origin: backend });
  const b = await startInstance(t, dir, 'bravo', { redis, origin: backend, workers: 1 });
  await untilListed([a, b], ['alpha', 'bravo']);
  await waitFor(async () => (await peersOf(b)).bus.subscribed, 'bravo subscribed', 10_000, 50);

  // The cache key's authority is the Host field: the same on both instances.
  const get = (instance: Instance) => send(instance.port, '/obj', { host: 'shop.test' });
  const first = await get(b);
  assert.match(String(first.headers['cache-status']), /stored/);
  const served = backend.seen.length;
  assert.match(String((await get(b)).headers['cache-status']), /usher; hit/, 'bravo serves it from its cache');
  assert.equal(backend.seen.length, served);

  const purge = await api<{ purged: number; peers: { shared: boolean; receivers: number } }>(a, '/api/cache/purge', 'POST', { key: 'http://shop.test/obj' });
  assert.equal(purge.status, 200);
  assert.deepEqual(purge.body.peers, { shared: true, receivers: 1 });
  await waitFor(async () => (await peersOf(b)).bus.received['cache.purge'] === 1, 'bravo to apply the purge', 5000, 10);
  const after = await get(b);
  assert.doesNotMatch(String(after.headers['cache-status']), /hit/, 'bravo went to the origin again');
  assert.equal(backend.seen.length, served + 1);
  assert.equal(await metric(a, /^usher_peers_messages_published_total\{type="cache.purge"\}/), 1);
  assert.equal(await metric(b, /^usher_peers_messages_received_total\{type="cache.purge"\}/), 1);
  // Alpha ignores its own message: applied once, before publishing.
  assert.equal((await peersOf(a)).bus.received['cache.purge'], 0);

  // A message that is not one is counted and dropped; the instance keeps serving.
  assert.match(await redisCommand(redis.port, 'PUBLISH usher:events "{\\"v\\":1,\\"type\\":\\"cache.purge\\"}"'), /^:2/);
  assert.match(await redisCommand(redis.port, 'PUBLISH usher:events "{\\"v\\":99}"'), /^:2/);
  await waitFor(async () => {
    const rejected = (await peersOf(b)).bus.rejected;
    return rejected.malformed === 1 && rejected.version === 1;
  }, 'bravo to reject both', 5000, 10);
  assert.equal((await get(b)).status, 200);
});

test('with shareAdminActions a drain and an enable reach the other instance; without it they do not', async (t) => {
  const redis = await startRedis(t);
  const backend = await origin(t);
  const dir = dirFor(t);
  const a = await startInstance(t, dir, 'alpha', { redis, origin: backend, redisExtra: 'shareAdminActions: true' });
  const b = await startInstance(t, dir, 'bravo', { redis, origin: backend, redisExtra: 'shareAdminActions: true' });
  await untilListed([a, b], ['alpha', 'bravo']);
  await waitFor(async () => (await peersOf(b)).bus.subscribed, 'bravo subscribed', 10_000, 50);

  const drained = await api<{ adminState: string; peers: unknown }>(a, `/api/pools/main/backends/${backend.address}/drain`, 'POST');
  assert.equal(drained.body.adminState, 'draining');
  assert.deepEqual(drained.body.peers, { shared: true, receivers: 1 });
  await waitFor(async () => (await adminState(b, backend.address)) === 'draining', 'bravo to drain the backend', 5000, 10);
  await api(a, `/api/pools/main/backends/${backend.address}/enable`, 'POST');
  await waitFor(async () => (await adminState(b, backend.address)) === 'enabled', 'bravo to enable it again', 5000, 10);
  // PATCH with a state is shared too.
  await api(b, `/api/pools/main/backends/${backend.address}`, 'PATCH', { state: 'disabled' });
  await waitFor(async () => (await adminState(a, backend.address)) === 'disabled', 'alpha to disable it', 5000, 10);
  assert.equal((await peersOf(a)).bus.received['backend.state'], 1);

  // Two more instances without shareAdminActions (their own prefix, so they do not see the first two).
  const c = await startInstance(t, dir, 'charlie', { redis, origin: backend, redisExtra: 'keyPrefix: other' });
  const d = await startInstance(t, dir, 'delta', { redis, origin: backend, redisExtra: 'keyPrefix: other' });
  await untilListed([c, d], ['charlie', 'delta']);
  await waitFor(async () => (await peersOf(d)).bus.subscribed, 'delta subscribed', 10_000, 50);
  const local = await api<{ adminState: string; peers: unknown }>(c, `/api/pools/main/backends/${backend.address}/drain`, 'POST');
  assert.equal(local.body.adminState, 'draining');
  assert.deepEqual(local.body.peers, { shared: false, reason: 'redis.shareAdminActions is off' });
  // A purge published after the drain is a barrier: pub/sub keeps order, so once delta has the purge it would have had the drain.
  await api(c, '/api/cache/purge', 'POST', { prefix: 'http://nothing.test/' });
  await waitFor(async () => (await peersOf(d)).bus.received['cache.purge'] === 1, 'delta to get the purge', 5000, 10);
  assert.equal(await adminState(d, backend.address), 'enabled', 'delta is unaffected');
  assert.equal((await peersOf(c)).bus.published['backend.state'], 0);
  assert.equal((await peersOf(d)).bus.rejected.not_shared, 0);
});

test('an instance killed with SIGKILL leaves the list after peerTimeout; one stopped gracefully at once', async (t) => {
  const redis = await startRedis(t);
  const backend = await origin(t);
  const dir = dirFor(t);
  const a = await startInstance(t, dir, 'alpha', { redis, origin: backend });
  const b = await startInstance(t, dir, 'bravo', { redis, origin: backend });
  // A long timeout: only its own goodbye can take charlie out of the list quickly.
  const c = await startInstance(t, dir, 'charlie', { redis, origin: backend, peerTimeout: '60s' });
  await untilListed([a, b, c], ['alpha', 'bravo', 'charlie']);

  b.cli.child.kill('SIGKILL');
  await b.cli.exited;
  const bravoKey = '{usher:peers}:bravo';
  assert.match(await redisCommand(redis.port, `EXISTS ${bravoKey}`), /^:1/, 'the entry outlives a killed process');
  await untilListed([a], ['alpha', 'charlie'], 5000);
  assert.match(await redisCommand(redis.port, `EXISTS ${bravoKey}`), /^:0/, 'it expired');

  c.cli.child.kill('SIGTERM');
  assert.equal(await c.cli.exited, 0);
  // With a 60 s TTL, the entry is gone now only because charlie deleted it.
  assert.match(await redisCommand(redis.port, 'EXISTS {usher:peers}:charlie'), /^:0/);
  assert.match(await redisCommand(redis.port, 'SISMEMBER {usher:peers} charlie'), /^:0/);
  await untilListed([a], ['alpha'], 5000);
  assert.equal(await metric(a, /^usher_peers /), 1);
});

test('Redis stopped: the last list stays with its age; Redis back: the registry and the subscription recover', async (t) => {
  const redis = await startRedis(t);
  const backend = await origin(t);
  const dir = dirFor(t);
  const a = await startInstance(t, dir, 'alpha', { redis, origin: backend });
  const b = await startInstance(t, dir, 'bravo', { redis, origin: backend });
  await untilListed([a, b], ['alpha', 'bravo']);
  await waitFor(async () => (await peersOf(b)).bus.subscribed, 'bravo subscribed', 10_000, 50);

  await redis.kill();
  await waitFor(async () => !(await peersOf(a)).connected, 'alpha to notice', 5000, 20);
  const away = await peersOf(a);
  assert.deepEqual(names(away), ['alpha', 'bravo'], 'the last known list');
  assert.equal(away.liveInstances, 2);
  assert.ok(away.error !== null && away.error.length > 0);
  await waitFor(async () => ((await peersOf(a)).listAgeMs ?? 0) > 300, 'the list to age', 5000, 50);
  assert.equal(await metric(a, /^usher_peers_redis_up /), 0);
  assert.equal(await metric(a, /^usher_peers /), 2);
  const status = await runCli(['status', '--admin', a.admin]);
  assert.match(status.stdout, /redis unreachable: .+; peers as of \d+\.\ds ago/);
  // A purge while Redis is away is applied here only, and says so.
  const purge = await api<{ peers: { shared: boolean; reason: string } }>(a, '/api/cache/purge', 'POST', { prefix: 'http://x.test/' });
  assert.equal(purge.status, 200);
  assert.equal(purge.body.peers.shared, false);
  assert.equal((await send(a.port, '/', { host: 'x.test' })).status, 200, 'still serving');
  // One warning per outage, not one per heartbeat.
  await sleep(500);
  assert.equal(a.cli.stderr.split('\n').filter((line) => line.includes('peer registry: redis unreachable')).length, 1, a.cli.stderr);

  await redis.restart();
  await untilListed([a, b], ['alpha', 'bravo']);
  await waitFor(async () => (await peersOf(a)).connected, 'alpha to reconnect', 10_000, 50);
  assert.match(a.cli.stderr, /redis reachable again/);
  // node-redis subscribes again after the reconnect: a purge reaches bravo.
  await waitFor(async () => {
    await api(a, '/api/cache/purge', 'POST', { prefix: 'http://after.test/' });
    return (await peersOf(b)).bus.received['cache.purge'] >= 1;
  }, 'a purge to reach bravo after the restart', 10_000, 200);
});
