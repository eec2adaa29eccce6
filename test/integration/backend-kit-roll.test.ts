/**
 * The point of the backend kit: a rolling restart with nothing but SIGTERM.
 * Three kit-using backends (child processes) behind an in-process usher with
 * active health checks, under steady load, are restarted one at a time on the
 * same port; no admin API calls, no retries configured, and no request fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BackendControl } from '../../src/pool/backend-control.ts';
import { startKitBackend, until, type KitProcess } from '../fixtures/kit-process.ts';
import { steadyLoad } from '../helpers/load.ts';
import { simpleYaml, startUsher } from '../helpers/usher.ts';

/**
 * usher notices a draining backend within interval × 1.1 + (fall − 1) ×
 * fastInterval × 1.1 = 1.1 + 2 × 0.55 = 2.2 s with these checks (the 503
 * comes back at once, so the check timeout does not add). 3 s leaves 0.8 s
 * for timers running late on a busy machine: usher, its checks and the load
 * all share this test's event loop.
 */
const DRAIN_DELAY_MS = 3000;
const HEALTH_CHECK = { path: '/health', interval: '1s', timeout: '500ms' };

test('rolling restart of three kit backends under steady load: SIGTERM, exit, start on the same port, healthy again; zero failed requests', { timeout: 90_000 }, async (t) => {
  const start = (name: string, port: number, generation: number): Promise<KitProcess> =>
    startKitBackend(t, { name, port, generation, drainDelayMs: DRAIN_DELAY_MS, timeoutMs: 15_000 });
  const first = await Promise.all(['b0', 'b1', 'b2'].map((name) => start(name, 0, 1)));
  const usher = await startUsher(simpleYaml(first.map((k) => k.address), { algorithm: 'round-robin', healthCheck: HEALTH_CHECK }));
  t.after(() => usher.stop({ timeoutMs: 500 }));
  const pool = usher.snapshot.pools.get('main')!;
  const backendOf = (address: string): BackendControl => pool.control.find(address)!;
  await until(() => first.every((k) => backendOf(k.address).state === 'healthy' && pool.control.health.recentChecks(backendOf(k.address)).length > 0), 'a passing check on every backend', 10_000);

  const startedAt = performance.now();
  const load = steadyLoad(usher.url('web'), { concurrency: 4, maxRequests: 500_000, maxMs: 60_000 });
  await until(() => load.completed() >= 200, 'load to warm up');

  const figures: string[] = [];
  for (const [i, old] of first.entries()) {
    const backend = backendOf(old.address);
    const signalledAt = performance.now();
    let unhealthyAfter = Number.NaN;
    old.child.kill('SIGTERM');
    // usher must take it out before the process stops listening: that is what the drain delay is for.
    await until(() => {
      if (Number.isNaN(unhealthyAfter) && !backend.healthy) unhealthyAfter = performance.now() - signalledAt;
      return old.child.exitCode !== null || old.child.signalCode !== null;
    }, `${old.address} to exit`, 20_000);
    assert.deepEqual(await old.exited, { code: 0, signal: null });
    const exitedAfter = performance.now() - signalledAt;
    assert.ok(unhealthyAfter < exitedAfter, `${old.address}: usher still had it in rotation when it exited after ${exitedAfter.toFixed(0)} ms`);

    const restarted = await start(`b${i}`, old.port, 2);
    assert.equal(restarted.port, old.port);
    await until(() => backend.state === 'healthy', `${old.address} healthy again in usher`, 15_000);
    figures.push(`${old.address}: unhealthy ${unhealthyAfter.toFixed(0)} ms after SIGTERM, exited ${exitedAfter.toFixed(0)} ms, healthy again ${(performance.now() - signalledAt).toFixed(0)} ms`);
  }
  // Some traffic on the last one restarted, then stop.
  const last = backendOf(first[2]!.address);
  const lastRequests = last.counters.requests;
  await until(() => last.counters.requests >= lastRequests + 20, 'traffic on the last restarted backend', 10_000);
  const result = await load.stop();
  const durationMs = performance.now() - startedAt;

  const total = result.ok + result.failures.length;
  figures.push(`${total} requests in ${(durationMs / 1000).toFixed(1)} s, ${result.failures.length} failed; by backend: ${JSON.stringify(Object.fromEntries([...result.byOrigin].sort()))}`);
  for (const line of figures) t.diagnostic(line);
  assert.deepEqual(result.failures, [], `${result.failures.length} of ${total} requests failed`);
  assert.ok(total >= 500, `enough load: ${total} requests`);
  for (const name of ['b0', 'b1', 'b2']) {
    assert.ok((result.byOrigin.get(`${name}#1`) ?? 0) > 0, `${name} served before its restart`);
    assert.ok((result.byOrigin.get(`${name}#2`) ?? 0) > 0, `${name} served after its restart`);
  }
});
