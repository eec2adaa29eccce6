/**
 * Membership from discovery (PoolControl.setDiscovered): discovered backends
 * join, keep their identity (health, counters) while their address stays,
 * leave when gone; terminating endpoints are drained, keep sticky clients and
 * are used only when nothing else is available (kube-proxy's rule); the
 * file's backends and an operator's drain are never discovery's to change.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { PickContext } from '../../src/balancer/types.ts';
import { parseConfig } from '../../src/config/index.ts';
import type { PoolConfig } from '../../src/config/types.ts';
import { silentLogger } from '../../src/observe/logger.ts';
import { PoolControl, type DiscoveredBackend } from '../../src/pool/pool-control.ts';
import { PoolRuntime, type Selection } from '../../src/pool/pool-runtime.ts';

function poolConfig(backends: readonly string[], extra = ''): PoolConfig {
  const yaml = `listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
pools:
  main:
    algorithm: round-robin
${extra}    backends:${backends.length === 0 ? ' []\n' : '\n'}${backends.map((b) => `      - { address: ${b} }\n`).join('')}`;
  const result = parseConfig(yaml, 'test.yaml');
  if (!result.ok) throw new Error(result.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  return result.config.pools['main']!;
}

function setup(t: TestContext, config: PoolConfig): { control: PoolControl; plane: PoolRuntime } {
  const control = new PoolControl('main', config, { dataPlanes: 1, logger: silentLogger() });
  const plane = new PoolRuntime(control, { inFlight: control.inFlight.row(0), retries: control.retryWindow.row(0) }, { random: () => 0.5 });
  control.attach(plane);
  t.after(() => control.close());
  return { control, plane };
}

const at = (port: number, terminating = false, weight = 1): DiscoveredBackend => ({ address: { host: '127.0.0.2', port }, weight, terminating });
const fresh = (): PickContext => ({ hash: 0, tried: [] });
const keyOf = (s: Selection): string => (typeof s === 'string' ? s : s.key);
const picks = (plane: PoolRuntime, n: number): string[] => Array.from({ length: n }, () => keyOf(plane.select(fresh(), undefined)));

test('discovered backends join, keep their identity while their address stays, and leave when gone; the file\'s stay', (t) => {
  const { control, plane } = setup(t, poolConfig(['127.0.0.1:1']));
  control.setDiscovered([at(10), at(11)]);
  assert.deepEqual(control.backends.map((b) => b.key), ['127.0.0.1:1', '127.0.0.2:10', '127.0.0.2:11']);
  assert.deepEqual(new Set(picks(plane, 6)), new Set(['127.0.0.1:1', '127.0.0.2:10', '127.0.0.2:11']));
  const kept = control.find('127.0.0.2:10')!;
  kept.ejections = 7; // stands for anything the control plane counts about it
  control.setDiscovered([at(12), at(10, false, 3), at(10)]); // 11 gone, 12 new, 10 reweighted (first report of an address wins)
  assert.equal(control.find('127.0.0.2:10'), kept, 'the same backend: health and counters kept');
  assert.equal(kept.ejections, 7);
  assert.equal(kept.configuredWeight, 3);
  assert.equal(control.find('127.0.0.2:11'), undefined);
  assert.ok(control.find('127.0.0.2:12') !== undefined);
  control.setDiscovered([]);
  assert.deepEqual(control.backends.map((b) => b.key), ['127.0.0.1:1'], 'discovery never removes the file\'s backends');
  control.setDiscovered([at(10), { address: { host: '127.0.0.1', port: 1 }, weight: 9, terminating: true }]);
  assert.equal(control.find('127.0.0.1:1')!.configuredWeight, 1, 'an address the file lists stays the file\'s');
  assert.equal(control.find('127.0.0.1:1')!.adminState, 'enabled');
});

test('a reload keeps the discovered backends and their identity', (t) => {
  const { control } = setup(t, poolConfig(['127.0.0.1:1']));
  control.setDiscovered([at(10)]);
  const discovered = control.find('127.0.0.2:10')!;
  control.reconfigure(poolConfig(['127.0.0.1:1', '127.0.0.1:2']));
  assert.equal(control.find('127.0.0.2:10'), discovered);
  assert.deepEqual(control.backends.map((b) => b.key), ['127.0.0.1:1', '127.0.0.1:2', '127.0.0.2:10'], 'the file\'s order, then the discovered ones');
});

test('terminating endpoints drain: no new requests while a ready one exists, used when none is, and back when ready again', (t) => {
  const { control, plane } = setup(t, poolConfig([]));
  control.setDiscovered([at(10), at(11)]);
  control.setDiscovered([at(10, true), at(11)]);
  assert.equal(control.find('127.0.0.2:10')!.state, 'draining');
  assert.equal(control.mode, 'primary');
  assert.deepEqual(picks(plane, 4), Array(4).fill('127.0.0.2:11'));
  control.setDiscovered([at(10, true), at(11, true)]);
  assert.equal(control.mode, 'fallback', 'every endpoint terminates: they still serve (kube-proxy), not 503');
  assert.deepEqual(new Set(picks(plane, 4)), new Set(['127.0.0.2:10', '127.0.0.2:11']));
  control.setDiscovered([at(10, true), at(11, false)]);
  assert.equal(control.mode, 'primary');
  assert.equal(control.find('127.0.0.2:11')!.state, 'healthy', 'discovery lifts the drain it made');
  control.setDiscovered([]);
  assert.equal(control.mode, 'none');
  assert.equal(keyOf(plane.select(fresh(), undefined)), 'none');
});

test('a sticky client keeps its draining backend; an operator\'s drain is not discovery\'s to lift', (t) => {
  const { control, plane } = setup(t, poolConfig([], "    sticky: { cookie: srv }\n"));
  control.setDiscovered([at(10), at(11)]);
  const token = control.find('127.0.0.2:10')!.stickyToken;
  assert.notEqual(token, '');
  control.setDiscovered([at(10, true), at(11)]);
  assert.equal(keyOf(plane.select(fresh(), token)), '127.0.0.2:10', 'pinned to a terminating, still-serving backend');
  assert.equal(keyOf(plane.select(fresh(), undefined)), '127.0.0.2:11');
  control.setAdminState(control.find('127.0.0.2:11')!, 'draining'); // an operator's
  control.setDiscovered([at(10), at(11)]);
  assert.equal(control.find('127.0.0.2:10')!.state, 'healthy');
  assert.equal(control.find('127.0.0.2:11')!.state, 'draining', 'the operator\'s drain holds');
  control.setAdminState(control.find('127.0.0.2:10')!, 'disabled');
  assert.equal(keyOf(plane.select(fresh(), token)), 'none', 'a disabled backend keeps no sticky client');
});

const grouped = (port: number, priority: number, weight = 1): DiscoveredBackend => ({ ...at(port, false, weight), priority });

test('priority groups (SRV): the lowest group with an available member takes the requests, the next one takes over when it has none, and gives it back', (t) => {
  const { control, plane } = setup(t, poolConfig(['127.0.0.1:1']));
  control.setDiscovered([grouped(10, 10), grouped(11, 10), grouped(20, 20), grouped(30, 30)]);
  const backup = (port: number): boolean => control.find(`127.0.0.2:${port}`)!.backup;
  const down = (port: number, isDown: boolean): void => {
    control.find(`127.0.0.2:${port}`)!.healthy = !isDown; // what a failed health check does
    control.stateChanged();
  };
  // The file's backend is a primary of its own: take it out of the way to watch the groups.
  control.setAdminState(control.find('127.0.0.1:1')!, 'disabled');
  assert.deepEqual([backup(10), backup(11), backup(20), backup(30)], [false, false, true, true]);
  assert.equal(control.mode, 'primary');
  assert.deepEqual(new Set(picks(plane, 6)), new Set(['127.0.0.2:10', '127.0.0.2:11']));
  down(10, true);
  assert.deepEqual(picks(plane, 3), Array(3).fill('127.0.0.2:11'), 'one member of group 10 is enough');
  down(11, true);
  assert.deepEqual([backup(10), backup(11), backup(20), backup(30)], [false, false, false, true], 'group 20 is the primaries now; group 30 still stands by');
  assert.equal(control.mode, 'primary');
  assert.deepEqual(picks(plane, 3), Array(3).fill('127.0.0.2:20'), 'not group 30');
  down(20, true);
  assert.deepEqual(picks(plane, 3), Array(3).fill('127.0.0.2:30'));
  down(11, false);
  assert.deepEqual([backup(10), backup(11), backup(20), backup(30)], [false, false, true, true], 'group 10 takes the traffic back');
  assert.deepEqual(picks(plane, 3), Array(3).fill('127.0.0.2:11'));
  down(11, true);
  down(30, true);
  assert.equal(control.mode, 'none', 'nothing available anywhere');
  assert.deepEqual([backup(10), backup(11), backup(20), backup(30)], [false, false, true, true], 'the lowest group waits as primaries');
  down(30, false);
  assert.deepEqual(picks(plane, 2), Array(2).fill('127.0.0.2:30'));
  // A member changing group moves with it; one group only: all primaries.
  control.setDiscovered([grouped(10, 5), grouped(11, 10), grouped(20, 20), grouped(30, 30)]);
  assert.equal(backup(10), false);
  control.setDiscovered([grouped(10, 7), grouped(30, 7)]);
  assert.deepEqual([backup(10), backup(30)], [false, false]);
  assert.deepEqual(new Set(picks(plane, 6)), new Set(['127.0.0.2:30']), 'port 10 is still unhealthy');
});

test('members without a priority are one group: no backups, as before', (t) => {
  const { control } = setup(t, poolConfig([]));
  control.setDiscovered([at(10), at(11)]);
  assert.deepEqual(control.backends.map((b) => b.backup), [false, false]);
  control.find('127.0.0.2:10')!.healthy = false;
  control.stateChanged();
  assert.deepEqual(control.backends.map((b) => b.backup), [false, false]);
});
