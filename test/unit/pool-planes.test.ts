/**
 * The seam between a pool's control plane and its data planes
 * (src/pool/published.ts): one PoolControl serving two PoolRuntimes, as the
 * next step's worker threads will, in one thread here. Control changes
 * (drain, weight, ejection, membership on reload) reach every data plane at
 * its next pick; in-flight counts span the planes; a removed backend's
 * connections close when a plane's last attempt on it ends.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import type { PickContext } from '../../src/balancer/types.ts';
import { parseConfig } from '../../src/config/index.ts';
import type { PoolConfig } from '../../src/config/types.ts';
import { silentLogger } from '../../src/observe/logger.ts';
import type { BackendRuntime } from '../../src/pool/backend-runtime.ts';
import { PoolControl } from '../../src/pool/pool-control.ts';
import { PoolRuntime, type Selection } from '../../src/pool/pool-runtime.ts';
import { Pool } from '../../src/pool/pool.ts';

const A = '127.0.0.1:1';
const B = '127.0.0.1:2';
const C = '127.0.0.1:3';

/** A pool config from YAML: `backends` are flow mappings (`{ address: ..., weight: 3 }`), `settings` pool keys. */
function poolConfig(backends: readonly string[], settings: Readonly<Record<string, string>> = {}): PoolConfig {
  const lines = Object.entries(settings).map(([key, value]) => `    ${key}: ${value}\n`);
  const yaml = `listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
pools:
  main:
${lines.join('')}    backends:
${backends.map((backend) => `      - ${backend.startsWith('{') ? backend : `{ address: ${backend} }`}\n`).join('')}`;
  const result = parseConfig(yaml, 'test.yaml');
  if (!result.ok) throw new Error(result.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  return result.config.pools['main']!;
}

/** One control plane and two data planes over it, closed after the test. */
function twoPlanes(t: TestContext, config: PoolConfig): { control: PoolControl; planes: readonly [PoolRuntime, PoolRuntime] } {
  const control = new PoolControl('main', config, { dataPlanes: 2, logger: silentLogger() });
  const plane = (row: number): PoolRuntime => {
    const runtime = new PoolRuntime(control, { inFlight: control.inFlight.row(row), retries: control.retryWindow.row(row) }, { random: () => 0.5 });
    control.attach(runtime);
    return runtime;
  };
  const planes = [plane(0), plane(1)] as const;
  t.after(() => control.close());
  return { control, planes };
}

function fresh(): PickContext {
  return { hash: 0, tried: [] };
}

function keyOf(selection: Selection): string {
  return typeof selection === 'string' ? selection : selection.key;
}

/** The keys of `n` picks on `plane` (round-robin: the order is the rotation). */
function picks(plane: PoolRuntime, n: number): string[] {
  return Array.from({ length: n }, () => keyOf(plane.select(fresh(), undefined)));
}

function runtimeAt(plane: PoolRuntime, key: string): BackendRuntime {
  const backend = plane.backends.find((b) => b.key === key);
  if (backend === undefined) throw new Error(`no ${key} in data plane`);
  return backend;
}

test('a drain on the control plane reaches every data plane at its next pick, and so does the enable', (t) => {
  const { control, planes } = twoPlanes(t, poolConfig([A, B], { algorithm: 'round-robin' }));
  for (const plane of planes) assert.deepEqual(new Set(picks(plane, 4)), new Set([A, B]));
  control.setAdminState(control.find(A)!, 'draining');
  for (const plane of planes) assert.deepEqual(picks(plane, 4), [B, B, B, B]);
  control.setAdminState(control.find(A)!, 'enabled');
  for (const plane of planes) assert.deepEqual(new Set(picks(plane, 4)), new Set([A, B]));
  control.setAdminState(control.find(A)!, 'disabled');
  control.setAdminState(control.find(B)!, 'disabled');
  assert.equal(control.mode, 'none');
  for (const plane of planes) assert.deepEqual(picks(plane, 2), ['none', 'none'], 'the mode is read from the control plane');
});

test('a weight set on the control plane rebuilds every data plane\'s balancer', (t) => {
  const { control, planes } = twoPlanes(t, poolConfig([A, B], { algorithm: 'round-robin' }));
  control.setWeight(control.find(A)!, 3);
  for (const plane of planes) {
    const seen = picks(plane, 8);
    assert.equal(seen.filter((key) => key === A).length, 6, `3:1 on every plane: ${seen.join(' ')}`);
    assert.equal(runtimeAt(plane, A).weight, 3);
  }
});

test('slow-start weights reach every data plane as they ramp; a weight set meanwhile keeps the ramp', (t) => {
  for (const algorithm of ['round-robin', 'hash']) {
    const { control, planes } = twoPlanes(t, poolConfig([A], { algorithm, slowStart: '10s' }));
    const c = control.add({ address: { host: '127.0.0.1', port: 3 }, weight: 5, backup: false, state: 'enabled' });
    assert.equal(c.state, 'slow-start');
    for (const plane of planes) assert.equal(runtimeAt(plane, C).weight, 0.5, `${algorithm}: 10% at first, on every plane`);
    control.setWeight(c, 10);
    for (const plane of planes) assert.equal(runtimeAt(plane, C).weight, 1, `${algorithm}: still 10%, of the new weight`);
  }
});

test('a refused connect reported by one data plane takes the backend out for the other', (t) => {
  const { control, planes } = twoPlanes(t, poolConfig([A, B], { algorithm: 'round-robin' }));
  const [one, two] = planes;
  const onOne = runtimeAt(one, A);
  one.attemptStarted(onOne);
  one.attemptEnded(onOne, 'unreachable', 0, -1);
  assert.equal(control.find(A)!.state, 'unreachable');
  assert.deepEqual(picks(two, 4), [B, B, B, B]);
});

test('outlier detection counts failures from every data plane against the same streak', (t) => {
  const { control, planes } = twoPlanes(t, poolConfig([A, B], { algorithm: 'round-robin', outlier: '{ consecutiveFailures: 2, ejectionTime: 10s }' }));
  const [one, two] = planes;
  one.attemptStarted(runtimeAt(one, A));
  one.attemptEnded(runtimeAt(one, A), 'success', 503, 1);
  assert.equal(control.find(A)!.ejected, false, 'one failure is not a streak');
  two.attemptStarted(runtimeAt(two, A));
  two.attemptEnded(runtimeAt(two, A), 'success', 503, 1);
  assert.equal(control.find(A)!.state, 'ejected');
  assert.equal(control.find(A)!.counters.ejections, 1);
  for (const plane of planes) assert.deepEqual(picks(plane, 3), [B, B, B]);
});

test('in-flight counts span data planes: least-connections and maxConnections see every plane', (t) => {
  const { control, planes } = twoPlanes(t, poolConfig([`{ address: ${A}, maxConnections: 2 }`, B], { algorithm: 'least-connections' }));
  const [one, two] = planes;
  one.attemptStarted(runtimeAt(one, A));
  assert.equal(keyOf(two.select(fresh(), undefined)), B, 'the other plane sees A busy');
  two.attemptStarted(runtimeAt(two, B));
  two.attemptStarted(runtimeAt(two, A));
  assert.equal(control.find(A)!.inFlight, 2);
  assert.equal(runtimeAt(one, A).inFlight, 2, 'a balancer on either plane reads the total');
  // A is at maxConnections counting both planes; B takes what is left, then the pool is full.
  assert.equal(keyOf(one.select(fresh(), undefined)), B);
  one.attemptStarted(runtimeAt(one, B));
  two.attemptStarted(runtimeAt(two, B));
  const allFull = poolConfig([`{ address: ${A}, maxConnections: 2 }`, `{ address: ${B}, maxConnections: 3 }`], { algorithm: 'least-connections' });
  control.reconfigure(allFull);
  assert.equal(keyOf(one.select(fresh(), undefined)), 'full');
  one.attemptEnded(runtimeAt(one, A), 'success', 200, 1);
  assert.equal(keyOf(two.select(fresh(), undefined)), A, 'a slot freed on one plane is free for the other');
});

test('the control plane sums every data plane\'s counters', (t) => {
  const { control, planes } = twoPlanes(t, poolConfig([A]));
  const [one, two] = planes;
  for (const [plane, n] of [[one, 2], [two, 3]] as const) {
    for (let i = 0; i < n; i++) {
      plane.attemptStarted(runtimeAt(plane, A));
      plane.attemptEnded(runtimeAt(plane, A), i === 0 ? 'failure' : 'success', i === 0 ? 0 : 200, 1);
    }
  }
  runtimeAt(two, A).counters.bytesOut += 10;
  assert.deepEqual(control.find(A)!.counters, { requests: 5, failures: 2, responses5xx: 0, retriedAway: 0, bytesOut: 10, ejections: 0 });
  assert.equal(runtimeAt(one, A).counters.requests, 2, 'each plane keeps its own');
});

test('a reload changes membership on every data plane; backends that stay keep their runtime and counters', (t) => {
  const { control, planes } = twoPlanes(t, poolConfig([A, B], { algorithm: 'round-robin' }));
  const [one, two] = planes;
  const keptOnOne = runtimeAt(one, B);
  one.attemptStarted(keptOnOne);
  one.attemptEnded(keptOnOne, 'success', 200, 1);
  const removedOnTwo = runtimeAt(two, A);
  control.reconfigure(poolConfig([C, `{ address: ${B}, weight: 2 }`], { algorithm: 'round-robin' }));
  for (const plane of planes) assert.deepEqual(plane.backends.map((b) => b.key), [C, B], 'the file order');
  assert.equal(runtimeAt(one, B), keptOnOne);
  assert.equal(keptOnOne.counters.requests, 1);
  assert.equal(control.find(B)!.counters.requests, 1);
  assert.equal(removedOnTwo.retired, true);
  for (const plane of planes) {
    const seen = picks(plane, 6);
    assert.equal(seen.filter((key) => key === B).length, 4, `the new weight: ${seen.join(' ')}`);
    assert.ok(!seen.includes(A));
  }
});

test('a removed backend\'s slot is reused only once nothing is in flight on it', (t) => {
  const { control, planes } = twoPlanes(t, poolConfig([A, B]));
  const [one] = planes;
  const a = control.find(A)!;
  const busy = runtimeAt(one, A);
  one.attemptStarted(busy);
  control.remove(a);
  const c = control.add({ address: { host: '127.0.0.1', port: 3 }, weight: 1, backup: false, state: 'enabled' });
  assert.notEqual(c.slot, a.slot, 'the busy slot is not reused');
  assert.equal(a.inFlight, 1, 'the removed backend still counts its attempt');
  one.attemptEnded(busy, 'success', 200, 1);
  assert.equal(a.inFlight, 0);
  const d = control.add({ address: { host: '127.0.0.1', port: 4 }, weight: 1, backup: false, state: 'enabled' });
  assert.equal(d.slot, a.slot, 'the freed slot is reused');
  assert.equal(a.inFlight, 0, 'the old backend does not read the newcomer\'s count');
  one.attemptStarted(runtimeAt(one, d.key));
  assert.equal(d.inFlight, 1);
  assert.equal(a.inFlight, 0);
  assert.notEqual(runtimeAt(one, d.key), busy, 'a fresh runtime for the newcomer');
});

test('a removed backend\'s connections close when the data plane\'s last attempt on it ends, not before', async (t) => {
  const accepted: Socket[] = [];
  const server = createServer((socket) => accepted.push(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const socket of accepted) socket.destroy();
    server.close();
  });
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const pool = new Pool('main', poolConfig([address, B]), { logger: silentLogger() });
  t.after(() => pool.close());
  const backend = runtimeAt(pool.runtime, address);
  const first = backend.connections.acquire(false, performance.now());
  const second = backend.connections.acquire(false, performance.now());
  pool.runtime.attemptStarted(backend);
  pool.runtime.attemptStarted(backend);
  await once(second.socket, 'connect');
  pool.control.remove(pool.control.find(address)!);
  assert.equal(backend.retired, true);
  assert.equal(backend.connections.open, 2, 'busy connections stay while their attempts run');
  first.release(true);
  pool.runtime.attemptEnded(backend, 'success', 200, 1);
  assert.deepEqual([backend.connections.open, backend.connections.idleCount], [2, 1], 'one attempt still runs: nothing closes yet');
  second.release(true);
  pool.runtime.attemptEnded(backend, 'success', 200, 1);
  assert.equal(backend.connections.open, 0, 'the last attempt closed them all, idle ones included');
  assert.deepEqual([first.closed, second.closed], [true, true]);
});

test('data planes share one retry budget: one plane\'s requests pay for the other\'s retries', (t) => {
  const { planes } = twoPlanes(t, poolConfig([A, B], { retry: '{ attempts: 2, budget: 20% }' }));
  const [busy, quiet] = planes;
  const now = performance.now();
  for (let i = 0; i < 100; i++) busy.retryBudget!.onRequest(now);
  let granted = 0;
  while (quiet.retryBudget!.tryAcquireRetry(now)) granted++;
  assert.equal(granted, 20, '20% of the 100 requests the other plane counted, not the 3-per-second floor alone');
  assert.equal(busy.retryBudget!.tryAcquireRetry(now), false, 'the budget is spent for both planes');
  assert.deepEqual(busy.retryBudget!.stats(now), { requests: 100, retries: 20 });
});
