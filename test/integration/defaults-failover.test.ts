/**
 * The defaults that keep requests alive, with a config that names only its
 * backends (no retry, health-check or outlier keys): a backend killed under
 * load loses no request, and backends restarted one at a time (SIGTERM, then
 * start again on the same port) lose none either, even when they are plain
 * node:http services that exit at once on SIGTERM.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { backendAt, HOST, load, usherWithPool, waitFor } from '../fixtures/health.ts';
import { steadyLoad } from '../helpers/load.ts';
import { simpleYaml } from '../helpers/usher.ts';

const PLAIN_BACKEND = fileURLToPath(new URL('../fixtures/plain-backend.ts', import.meta.url));

interface Proc {
  readonly name: string;
  readonly port: number;
  child: ChildProcess;
}

/** Forks a plain node:http backend (test/fixtures/plain-backend.ts) on `port` (0: any) and waits until it listens. */
async function startPlain(t: TestContext, name: string, port = 0): Promise<Proc> {
  const child = fork(PLAIN_BACKEND, [name, String(port)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const [message] = (await once(child, 'message', { signal: AbortSignal.timeout(10_000) })) as [{ ready: number }];
  return { name, port: message.ready, child };
}

async function stopped(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

test('names-only config: SIGKILL of one of three backends under GET load fails no request; the dead one leaves at once and returns after a restart', async (t) => {
  const backends = await Promise.all(['k0', 'k1', 'k2'].map((name) => startPlain(t, name)));
  const { pool, url } = await usherWithPool(t, simpleYaml(backends.map((b) => `${HOST}:${b.port}`)));
  const victim = backends[1]!;
  const backend = backendAt(pool, `${HOST}:${victim.port}`);
  let outAfterMs = -1;
  let attemptsWhileOut = 0;
  let backAfterMs = -1;
  const replies = await load(t, url, { workers: 4, durationMs: 6000, maxRequests: 60_000 }, async () => {
    await waitFor(() => backend.counters.requests > 20, 'the victim to serve traffic');
    await stopped(victim.child, 'SIGKILL');
    outAfterMs = await waitFor(() => backend.state === 'unreachable', 'the killed backend to leave rotation', 3000);
    const attemptsAtOut = backend.counters.requests;
    await sleep(1500); // dead for a while: usher probes it after its backoff (1 s, then 2 s)
    attemptsWhileOut = backend.counters.requests - attemptsAtOut;
    victim.child = (await startPlain(t, victim.name, victim.port)).child;
    const restartedAt = performance.now();
    const served = backend.counters.requests - backend.counters.failures;
    await waitFor(() => backend.state === 'healthy' && backend.counters.requests - backend.counters.failures > served, 'the restarted backend to serve again', 12_000);
    backAfterMs = performance.now() - restartedAt;
  });
  const failed = replies.filter((r) => r.status !== 200);
  t.diagnostic(
    `${replies.length} requests, ${failed.length} failed; out of rotation ${outAfterMs.toFixed(0)} ms after the kill, ` +
      `${attemptsWhileOut} attempts on it while dead (probes), back ${backAfterMs.toFixed(0)} ms after the restart; ` +
      `victim attempts ${backend.counters.requests}, failed ${backend.counters.failures}, retried away ${backend.counters.retriedAway}`,
  );
  assert.ok(replies.length >= 200, `enough load: ${replies.length} requests`);
  assert.deepEqual(failed.map((r) => `${r.status} ${r.reason}`), [], 'no client saw a failure');
  assert.ok(backend.counters.failures > 0, 'the kill did hit traffic');
  assert.equal(backend.counters.retriedAway, backend.counters.failures, 'every failed attempt was retried on another backend');
  // Out at its first refusal, and only probed after a backoff while dead: a handful of attempts, not a third of the load.
  assert.ok(attemptsWhileOut <= 4, `${attemptsWhileOut} attempts on the dead backend in 1.5 s`);
  assert.ok(backAfterMs >= 0, 'the restarted backend served again');
});

test('rolling restart of three plain node:http backends that exit on SIGTERM, names-only config: no request fails', async (t) => {
  const backends = await Promise.all(['r0', 'r1', 'r2'].map((name) => startPlain(t, name)));
  const { pool, url } = await usherWithPool(t, simpleYaml(backends.map((b) => `${HOST}:${b.port}`)));
  const traffic = steadyLoad(url, { concurrency: 4, maxRequests: 200_000, maxMs: 40_000, path: '/?ms=2' });
  const timeline: string[] = [];
  try {
    for (const proc of backends) {
      const backend = backendAt(pool, `${HOST}:${proc.port}`);
      await waitFor(() => backend.counters.requests > 20, `${proc.name} to serve traffic`);
      const startedAt = performance.now();
      await stopped(proc.child, 'SIGTERM');
      await sleep(300); // down for a moment, as a real restart is
      proc.child = (await startPlain(t, proc.name, proc.port)).child;
      const served = backend.counters.requests - backend.counters.failures;
      await waitFor(() => backend.state === 'healthy' && backend.counters.requests - backend.counters.failures > served + 20, `${proc.name} to serve again after its restart`, 15_000);
      timeline.push(`${proc.name} back ${(performance.now() - startedAt).toFixed(0)} ms after SIGTERM`);
    }
  } finally {
    const result = await traffic.stop();
    t.diagnostic(`${result.ok} requests ok, ${result.failures.length} failed; ${timeline.join('; ')}`);
    assert.deepEqual(result.failures.map((f) => f.error), [], 'no client saw a failure');
    assert.ok(result.ok >= 300, `enough load: ${result.ok} requests`);
  }
  assert.equal(timeline.length, 3, 'every backend was restarted and served again');
});
