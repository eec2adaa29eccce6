import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CompressGuard, eventLoopLoad } from '../../src/compress/guard.ts';

/** A guard over an injected load and clock. */
function guarded() {
  const state = { load: 0, now: 0, samples: 0 };
  const guard = new CompressGuard({ sample: () => (state.samples++, state.load), now: () => state.now, intervalMs: 500, high: 0.9, low: 0.6 });
  return { state, guard };
}

describe('CPU guard', () => {
  it('steps down one level per sample under load, full → reduced → off, and counts each step', () => {
    const { state, guard } = guarded();
    assert.equal(guard.level(), 'full');
    state.load = 0.95;
    state.now = 499;
    assert.equal(guard.level(), 'full', 'not sampled before the interval');
    assert.equal(state.samples, 0);
    state.now = 500;
    assert.equal(guard.level(), 'reduced');
    assert.equal(guard.level(), 'reduced', 'one sample per interval, however many responses');
    state.now = 1000;
    assert.equal(guard.level(), 'off');
    state.now = 1500;
    assert.equal(guard.level(), 'off', 'off is the floor');
    assert.equal(guard.stepsDown, 2);
    assert.equal(state.samples, 3);
  });

  it('steps back up only at or below low (hysteresis)', () => {
    const { state, guard } = guarded();
    state.load = 1;
    for (const at of [500, 1000]) (state.now = at), guard.level();
    assert.equal(guard.level(), 'off');
    state.load = 0.7;
    state.now = 1500;
    assert.equal(guard.level(), 'off', 'between low and high: stays');
    state.load = 0.6;
    state.now = 2000;
    assert.equal(guard.level(), 'reduced');
    state.now = 2500;
    assert.equal(guard.level(), 'full');
    state.now = 3000;
    assert.equal(guard.level(), 'full');
    assert.deepEqual([guard.stepsDown, guard.stepsUp], [2, 2]);
  });

  it('refuses thresholds that cannot hysterese', () => {
    assert.throws(() => new CompressGuard({ sample: () => 0, now: () => 0, intervalMs: 500, high: 0.5, low: 0.5 }), /low \(0\.5\) must be below high/);
  });

  it('the default signal reads this thread\'s event-loop utilization: a busy loop reads high', async () => {
    const load = eventLoopLoad();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const until = performance.now() + 60;
    while (performance.now() < until);
    const busy = load();
    assert.ok(busy > 0.5 && busy <= 1, `busy loop: ${busy}`);
  });
});
