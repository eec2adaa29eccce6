/**
 * Active health checks at work inside a running usher: a backend killed with
 * SIGKILL under load, a backend restarted on its port (with slow start),
 * backups, an all-down pool (503 at once, or panic mode), and health checks
 * that do not queue behind a pool's connection limit.
 *
 * Check settings used throughout: interval 100ms, fastInterval 50ms,
 * timeout 200ms, rise 2, fall 3.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDemoBackends, type DemoBackend } from '../../src/demo/demo.ts';
import type { Pool } from '../../src/pool/pool.ts';
import { backendAt, clientFor, HOST, load, poolYaml, send, switchableOrigins, usherWithPool, waitFor, type Reply } from '../fixtures/health.ts';

const INTERVAL = 100;
const FAST_INTERVAL = 50;
const TIMEOUT = 200;
const RISE = 2;
const FALL = 3;
const CHECK = `healthCheck: { type: http, path: /health, interval: ${INTERVAL}ms, fastInterval: ${FAST_INTERVAL}ms, timeout: ${TIMEOUT}ms, rise: ${RISE}, fall: ${FALL}, expectStatus: "200-399" }`;

/**
 * Slack on top of the protocol bounds: the ±10% check jitter (≤ 10 ms per
 * interval here), SIGKILL delivery, 5 ms polling, and above all event-loop lag:
 * usher, four load clients and the check timers share one process, and CI runs
 * two such test files on two cores. 250 ms keeps the bound meaningful: it
 * still fails when a backend needs more than ~2 extra check rounds to leave.
 */
const TOLERANCE = 250;

async function demoBackends(t: TestContext, names: string[]): Promise<DemoBackend[]> {
  const backends = await startDemoBackends(names);
  t.after(() => {
    for (const b of backends) if (b.process.exitCode === null && b.process.signalCode === null) b.process.kill('SIGKILL');
  });
  return backends;
}

interface KillRun {
  readonly replies: Reply[];
  readonly killedAt: number;
  readonly unhealthyAt: number;
  readonly attemptsAtUnhealthy: number;
  readonly pool: Pool;
  readonly victimKey: string;
}

/** Three backend processes, four keep-alive clients for ≤ 3 s; the middle backend gets SIGKILL after 1 s. */
async function killUnderLoad(t: TestContext, extraPoolLines: string): Promise<KillRun> {
  const backends = await demoBackends(t, ['k0', 'k1', 'k2']);
  const { pool, url } = await usherWithPool(t, poolYaml(`${CHECK}\n${extraPoolLines}`, backends.map((b) => `${HOST}:${b.port}`)));
  const victim = backends[1]!;
  const victimKey = `${HOST}:${victim.port}`;
  const victimBackend = backendAt(pool, victimKey);
  let killedAt = 0;
  let unhealthyAt = 0;
  let attemptsAtUnhealthy = 0;
  const replies = await load(t, url, { workers: 4, durationMs: 3000, maxRequests: 30_000 }, async () => {
    await sleep(1000);
    assert.ok(victimBackend.counters.requests > 0, 'the victim served traffic before the kill');
    killedAt = performance.now();
    victim.process.kill('SIGKILL');
    await waitFor(() => victimBackend.state === 'unhealthy', 'the killed backend to turn unhealthy', 2500);
    unhealthyAt = performance.now();
    attemptsAtUnhealthy = victimBackend.counters.requests;
  });
  return { replies, killedAt, unhealthyAt, attemptsAtUnhealthy, pool, victimKey };
}

test('SIGKILL of one of three backends under load: with retries no request fails', async (t) => {
  const run = await killUnderLoad(t, 'retry: { attempts: 2, on: [connect-failure, reset, timeout, "502", "503", "504"], budget: 20% }');
  const victim = backendAt(run.pool, run.victimKey);
  const failed = run.replies.filter((r) => r.status !== 200);
  t.diagnostic(`requests ${run.replies.length}, victim attempts ${victim.counters.requests}, failed attempts ${victim.counters.failures}, retried away ${victim.counters.retriedAway}, unhealthy after ${(run.unhealthyAt - run.killedAt).toFixed(0)} ms`);
  assert.ok(run.replies.length >= 200, `enough load: ${run.replies.length} requests`);
  assert.deepEqual(failed.map((r) => `${r.status} ${r.reason}`), [], 'no client saw a failure');
  // The kill did hit traffic: attempts on the dead backend failed and were moved elsewhere.
  assert.ok(victim.counters.failures > 0, 'attempts on the killed backend failed');
  assert.equal(victim.counters.retriedAway, victim.counters.failures, 'every failed attempt was retried on another backend');
  assert.equal(victim.state, 'unhealthy');
  assert.equal(victim.counters.requests, run.attemptsAtUnhealthy, 'no attempt reached the dead backend once it was unhealthy');
});

test('SIGKILL of one of three backends under load: without retries or passive ejection, failures stop within fall × interval + timeout', async (t) => {
  // What the active check alone does: the defaults that hide the kill (retries, unreachable) are off.
  const run = await killUnderLoad(t, 'retry: { attempts: 0 }\nunreachable: false');
  const victim = backendAt(run.pool, run.victimKey);
  const failed = run.replies.filter((r) => r.status !== 200);
  const bound = FALL * INTERVAL + TIMEOUT + TOLERANCE;
  const lastFailure = Math.max(...failed.map((r) => r.end)) - run.killedAt;
  const inWindow = run.replies.filter((r) => r.end >= run.killedAt && r.start <= run.killedAt + lastFailure).length;
  t.diagnostic(`requests ${run.replies.length}, failed ${failed.length} of ${inWindow} in the window, last failure ${lastFailure.toFixed(0)} ms after the kill, unhealthy after ${(run.unhealthyAt - run.killedAt).toFixed(0)} ms (bound ${bound})`);
  assert.ok(run.replies.length >= 200, `enough load: ${run.replies.length} requests`);
  assert.ok(failed.length > 0, 'without retries the kill is visible to clients');
  // Only the dead backend's share fails (one in three by round-robin), plus what was in flight on it.
  assert.ok(failed.length <= inWindow / 2 + 4, `${failed.length} failures of ${inWindow} requests in the window`);
  for (const r of failed) assert.ok(r.status === 502 && (r.reason === 'connect_refused' || r.reason === 'upstream_reset'), `${r.status} ${r.reason}`);
  assert.ok(Math.min(...failed.map((r) => r.end)) >= run.killedAt, 'no failure before the kill');
  assert.ok(lastFailure <= bound, `last failure ${lastFailure.toFixed(0)} ms after the kill, bound ${bound} ms`);
  assert.ok(run.unhealthyAt - run.killedAt <= bound, `unhealthy after ${(run.unhealthyAt - run.killedAt).toFixed(0)} ms`);
  assert.equal(victim.state, 'unhealthy');
  assert.equal(victim.counters.requests, run.attemptsAtUnhealthy, 'no attempt reached the dead backend once it was unhealthy');
  // Requests after the last failure all succeeded on the two survivors.
  const after = run.replies.filter((r) => r.start > run.unhealthyAt);
  assert.ok(after.length >= 50, `${after.length} requests after the backend was marked unhealthy`);
  assert.ok(after.every((r) => r.status === 200));
});

test('a restarted backend returns within rise × interval, then ramps from 10% to full weight over slowStart', async (t) => {
  const SLOW_START = 2000;
  const origins = await switchableOrigins(t, 3);
  const { pool, url } = await usherWithPool(t, poolYaml(`${CHECK}\nslowStart: ${SLOW_START}ms`, origins.map((o) => o.address)));
  const victim = origins[2]!;
  const backend = backendAt(pool, victim.address);
  await waitFor(() => pool.control.backends.every((b) => b.state === 'healthy'), 'all healthy at start');

  await victim.close();
  await waitFor(() => backend.state === 'unhealthy', 'the closed backend to turn unhealthy', 2000);
  assert.equal(backend.available, false);
  await victim.listen(); // same port
  const returnMs = await waitFor(() => backend.available, 'the restarted backend to return', 3000);
  const returnedAt = performance.now();
  const rampStartedAt = backend.slowStartSince; // performance.now() when the ramp began
  const firstFactor = backend.weight / backend.configuredWeight;
  t.diagnostic(`returned ${returnMs.toFixed(0)} ms after listening again (bound ${RISE * INTERVAL} + ${TOLERANCE}), first weight factor ${firstFactor}`);
  // Two successes are needed, at least one fastInterval (−10% jitter) apart; rise × interval bounds the wait.
  assert.ok(returnMs >= 0.9 * FAST_INTERVAL, `returned after ${returnMs.toFixed(0)} ms: rise ${RISE} needs two checks`);
  assert.ok(returnMs <= RISE * INTERVAL + TOLERANCE, `returned after ${returnMs.toFixed(0)} ms`);
  assert.equal(backend.state, 'slow-start');
  assert.ok(rampStartedAt > 0 && rampStartedAt <= returnedAt);
  assert.ok(firstFactor >= 0.1 && firstFactor <= 0.15, `weight starts near 10%: ${firstFactor}`);

  // First 30% of the window: the returning backend's share stays far below the others'.
  const client = clientFor(t, url);
  const hits = new Map<string, number>();
  for (let i = 0; i < 2000 && performance.now() - returnedAt < 0.3 * SLOW_START; i++) {
    const reply = await send(client, '/');
    assert.equal(reply.status, 200);
    hits.set(reply.origin!, (hits.get(reply.origin!) ?? 0) + 1);
    await sleep(2);
  }
  const [a, b, v] = origins.map((o) => hits.get(o.name) ?? 0) as [number, number, number];
  const midFactor = backend.weight / backend.configuredWeight;
  t.diagnostic(`hits in the first 30% of the window: ${a}, ${b}, returning ${v}; weight factor then ${midFactor}`);
  assert.ok(a + b + v >= 50, `enough requests: ${a + b + v}`);
  assert.ok(v > 0, 'the returning backend gets some traffic (10% floor)');
  assert.ok(v < 0.5 * Math.min(a, b), `returning backend ${v} hits vs ${a} and ${b}`);
  assert.ok(midFactor >= 0.2 && midFactor <= 0.45, `weight factor after 30% of the window: ${midFactor}`);

  await waitFor(() => backend.weight === backend.configuredWeight, 'full weight', SLOW_START + 2000);
  const rampMs = performance.now() - rampStartedAt;
  t.diagnostic(`full weight ${rampMs.toFixed(0)} ms after the ramp began`);
  // Full weight exactly when the window has passed, seen at the next 100 ms tick (window / 20).
  assert.ok(rampMs >= SLOW_START && rampMs <= SLOW_START + 400, `ramp took ${rampMs.toFixed(0)} ms`);
  assert.equal(backend.state, 'healthy');
});

test('backup: no traffic while a primary is up, all of it when both primaries are down, none once one returns', async (t) => {
  const origins = await switchableOrigins(t, 3);
  const [p0, p1, bk] = origins as [(typeof origins)[0], (typeof origins)[0], (typeof origins)[0]];
  const { pool, url } = await usherWithPool(t, poolYaml(CHECK, [p0.address, p1.address, { address: bk.address, backup: true }]));
  const client = clientFor(t, url);
  const burst = async (n: number): Promise<Map<string, number>> => {
    const counts = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const reply = await send(client, `/${i}`);
      assert.equal(reply.status, 200, `${reply.status} ${reply.reason}`);
      counts.set(reply.origin!, (counts.get(reply.origin!) ?? 0) + 1);
    }
    return counts;
  };

  await waitFor(() => pool.control.backends.every((b) => b.state === 'healthy'), 'all healthy at start');
  assert.equal(pool.control.mode, 'primary');
  let counts = await burst(30);
  assert.deepEqual([counts.get(p0.name), counts.get(p1.name), counts.get(bk.name) ?? 0], [15, 15, 0]);

  await p0.close();
  await waitFor(() => backendAt(pool, p0.address).state === 'unhealthy', 'p0 unhealthy', 2000);
  assert.equal(pool.control.mode, 'primary');
  counts = await burst(30);
  assert.deepEqual([counts.get(p0.name) ?? 0, counts.get(p1.name), counts.get(bk.name) ?? 0], [0, 30, 0], 'one primary still carries everything');

  await p1.close();
  await waitFor(() => backendAt(pool, p1.address).state === 'unhealthy', 'p1 unhealthy', 2000);
  assert.equal(pool.control.mode, 'backup');
  const backupBefore = bk.hits;
  counts = await burst(30);
  assert.equal(counts.get(bk.name), 30, 'every request goes to the backup');
  assert.equal(bk.hits - backupBefore, 30);

  await p0.listen();
  await waitFor(() => backendAt(pool, p0.address).available, 'p0 back', 2000);
  assert.equal(pool.control.mode, 'primary');
  const backupAfter = bk.hits;
  counts = await burst(30);
  assert.deepEqual([counts.get(p0.name), counts.get(bk.name) ?? 0], [30, 0], 'the backup is idle again');
  assert.equal(bk.hits, backupAfter);
});

test('no available backend: 503 no_backend at once; with panicThreshold the unhealthy backends share the traffic', async (t) => {
  const origins = await switchableOrigins(t, 3);
  for (const o of origins) o.healthStatus = 500; // checks fail, real requests would succeed
  const addresses = origins.map((o) => o.address);

  const strict = await usherWithPool(t, poolYaml(CHECK, addresses));
  await waitFor(() => strict.pool.control.backends.every((b) => b.state === 'unhealthy'), 'all unhealthy', 2000);
  assert.equal(strict.pool.control.mode, 'none');
  const client = clientFor(t, strict.url);
  const slowest = { sequential: 0, concurrent: 0 };
  for (let i = 0; i < 20; i++) {
    const reply = await send(client, '/');
    assert.equal(reply.status, 503);
    assert.equal(reply.reason, 'no_backend');
    slowest.sequential = Math.max(slowest.sequential, reply.end - reply.start);
  }
  const many = clientFor(t, strict.url, 10);
  // The first concurrent batch opens the client's connections; the second is timed on them.
  for (const reply of await Promise.all(Array.from({ length: 10 }, () => send(many, '/')))) assert.equal(reply.reason, 'no_backend');
  const replies = await Promise.all(Array.from({ length: 10 }, () => send(many, '/')));
  for (const reply of replies) {
    assert.equal(reply.reason, 'no_backend');
    slowest.concurrent = Math.max(slowest.concurrent, reply.end - reply.start);
  }
  t.diagnostic(`slowest 503: sequential ${slowest.sequential.toFixed(1)} ms, concurrent ${slowest.concurrent.toFixed(1)} ms`);
  assert.ok(slowest.sequential < 200 && slowest.concurrent < 200, JSON.stringify(slowest));
  assert.equal(origins.reduce((sum, o) => sum + o.hits, 0), 0, 'nothing reached a backend');

  const panic = await usherWithPool(t, poolYaml(`${CHECK}\npanicThreshold: 50`, addresses));
  await waitFor(() => panic.pool.control.backends.every((b) => b.state === 'unhealthy'), 'all unhealthy', 2000);
  assert.equal(panic.pool.control.mode, 'panic');
  const panicClient = clientFor(t, panic.url);
  const counts = new Map<string, number>();
  for (let i = 0; i < 30; i++) {
    const reply = await send(panicClient, '/');
    assert.equal(reply.status, 200, `${reply.status} ${reply.reason}`);
    counts.set(reply.origin!, (counts.get(reply.origin!) ?? 0) + 1);
  }
  t.diagnostic(`panic spread: ${JSON.stringify(Object.fromEntries(counts))}`);
  // Round-robin over all three, health ignored.
  assert.deepEqual(origins.map((o) => counts.get(o.name) ?? 0), [10, 10, 10]);
  assert.equal(panic.pool.control.mode, 'panic');
});

test('health checks bypass maxConnections: a backend with its only slot taken stays healthy', async (t) => {
  const [origin] = await switchableOrigins(t, 1);
  origin!.delayMs = 1200;
  const { pool, url } = await usherWithPool(t, poolYaml(`${CHECK}\nmaxConnections: 1\nqueueSize: 4\nqueueTimeout: 5s`, [origin!.address]));
  const backend = pool.control.backends[0]!;
  await waitFor(() => origin!.healthChecks > 0 && backend.state === 'healthy', 'first check', 2000);

  const client = clientFor(t, url, 2);
  const first = send(client, '/long');
  await waitFor(() => backend.inFlight === 1 && origin!.inFlight === 1, 'the long request in flight');
  const second = send(client, '/queued');
  await waitFor(() => pool.runtime.queueLength === 1, 'the second request queued');
  const checksBefore = origin!.healthChecks;
  const watchStart = performance.now();
  let notHealthy = 0;
  let samples = 0;
  while (performance.now() - watchStart < 800) {
    samples++;
    if (backend.state !== 'healthy') notHealthy++;
    assert.equal(backend.inFlight, 1, 'the slot stays taken while watching');
    await sleep(10);
  }
  const checks = origin!.healthChecks - checksBefore;
  t.diagnostic(`${checks} checks passed in 800 ms with the only slot taken (${samples} samples, ${notHealthy} not healthy)`);
  assert.equal(notHealthy, 0);
  assert.ok(checks >= 4, `${checks} checks reached the backend past its full slot`);
  const [r1, r2] = await Promise.all([first, second]);
  assert.deepEqual([r1.status, r2.status], [200, 200]);
  assert.equal(origin!.maxInFlight, 1, 'the limit held for real traffic');
});
