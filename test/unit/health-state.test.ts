import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HealthState } from '../../src/pool/health/health-state.ts';

/** Records `results` ('+' success, '-' failure) and returns which records flipped the state. */
function feed(state: HealthState, results: string): boolean[] {
  return [...results].map((c) => state.record(c === '+'));
}

test('before the first result: initial health, unconfirmed, transitioning', () => {
  for (const initiallyHealthy of [true, false]) {
    const state = new HealthState({ rise: 2, fall: 3, initiallyHealthy });
    assert.equal(state.healthy, initiallyHealthy);
    assert.equal(state.confirmed, false);
    assert.equal(state.transitioning, true);
  }
});

test('first result is decisive: one failure takes an initially-healthy backend out', () => {
  const state = new HealthState({ rise: 2, fall: 3, initiallyHealthy: true });
  assert.equal(state.record(false), true);
  assert.equal(state.healthy, false);
  assert.equal(state.confirmed, true);
  assert.equal(state.transitioning, false);
});

test('first result is decisive: one success brings an initially-unhealthy backend in', () => {
  const state = new HealthState({ rise: 5, fall: 3, initiallyHealthy: false });
  assert.equal(state.record(true), true);
  assert.equal(state.healthy, true);
  assert.equal(state.confirmed, true);
  assert.equal(state.transitioning, false);
});

test('a first result that agrees with the initial state confirms it without a flip', () => {
  const up = new HealthState({ rise: 2, fall: 3, initiallyHealthy: true });
  assert.equal(up.record(true), false);
  assert.equal(up.healthy, true);
  assert.equal(up.confirmed, true);
  const down = new HealthState({ rise: 2, fall: 3, initiallyHealthy: false });
  assert.equal(down.record(false), false);
  assert.equal(down.healthy, false);
  assert.equal(down.confirmed, true);
  assert.equal(down.transitioning, false);
});

test('after confirmation a healthy backend goes unhealthy after exactly `fall` consecutive failures', () => {
  const state = new HealthState({ rise: 2, fall: 3, initiallyHealthy: true });
  state.record(true);
  assert.deepEqual(feed(state, '--'), [false, false]);
  assert.equal(state.healthy, true);
  assert.equal(state.transitioning, true);
  assert.equal(state.consecutiveFailures, 2);
  assert.equal(state.record(false), true);
  assert.equal(state.healthy, false);
  assert.equal(state.transitioning, false);
  // More failures do not flip again.
  assert.deepEqual(feed(state, '----'), [false, false, false, false]);
  assert.equal(state.healthy, false);
});

test('an unhealthy backend comes back after exactly `rise` consecutive successes', () => {
  const state = new HealthState({ rise: 3, fall: 2, initiallyHealthy: false });
  state.record(false);
  assert.deepEqual(feed(state, '++'), [false, false]);
  assert.equal(state.healthy, false);
  assert.equal(state.transitioning, true);
  assert.equal(state.consecutiveSuccesses, 2);
  assert.equal(state.record(true), true);
  assert.equal(state.healthy, true);
  assert.equal(state.transitioning, false);
  assert.deepEqual(feed(state, '+++'), [false, false, false]);
});

test('a success resets the failure streak', () => {
  const state = new HealthState({ rise: 2, fall: 3, initiallyHealthy: true });
  state.record(true);
  assert.deepEqual(feed(state, '--+--+--'), [false, false, false, false, false, false, false, false]);
  assert.equal(state.healthy, true);
  assert.equal(state.consecutiveFailures, 2);
  assert.equal(state.record(false), true);
  assert.equal(state.healthy, false);
});

test('a failure resets the success streak', () => {
  const state = new HealthState({ rise: 3, fall: 2, initiallyHealthy: false });
  state.record(false);
  assert.deepEqual(feed(state, '++-++-++'), [false, false, false, false, false, false, false, false]);
  assert.equal(state.healthy, false);
  assert.equal(state.consecutiveSuccesses, 2);
  assert.equal(state.transitioning, true);
  assert.equal(state.record(true), true);
  assert.equal(state.healthy, true);
});

test('a failure while unhealthy and a success while healthy are not transitioning', () => {
  const state = new HealthState({ rise: 2, fall: 2, initiallyHealthy: true });
  state.record(true);
  state.record(false);
  assert.equal(state.transitioning, true);
  state.record(true);
  assert.equal(state.transitioning, false, 'the success ended the failure streak');
  feed(state, '--');
  assert.equal(state.healthy, false);
  state.record(true);
  assert.equal(state.transitioning, true);
  state.record(false);
  assert.equal(state.transitioning, false, 'the failure ended the success streak');
});

test('a flip starts a fresh streak: going back needs the full threshold again', () => {
  const state = new HealthState({ rise: 2, fall: 2, initiallyHealthy: true });
  state.record(true);
  assert.deepEqual(feed(state, '--'), [false, true]);
  assert.equal(state.consecutiveFailures, 0);
  assert.deepEqual(feed(state, '++'), [false, true]);
  assert.deepEqual(feed(state, '--'), [false, true]);
  assert.equal(state.healthy, false);
});

test('rise = fall = 1 flips on every change', () => {
  const state = new HealthState({ rise: 1, fall: 1, initiallyHealthy: true });
  assert.deepEqual(feed(state, '+-+--++-'), [false, true, true, true, false, true, false, true]);
  assert.equal(state.healthy, false);
});

test('rise and fall must be integers >= 1', () => {
  assert.throws(() => new HealthState({ rise: 0, fall: 3, initiallyHealthy: true }), /rise must be an integer >= 1, got 0/);
  assert.throws(() => new HealthState({ rise: 2, fall: 1.5, initiallyHealthy: true }), /fall must be an integer >= 1, got 1\.5/);
});
