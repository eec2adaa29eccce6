import { it } from 'node:test';
import assert from 'node:assert/strict';
import { SLOW_START_MIN_FACTOR, slowStartEnded, slowStartFactor } from '../../src/pool/health/slow-start.ts';

const SINCE = 50_000;
const WINDOW = 60_000;

it('starts at 10%', () => {
  assert.equal(SLOW_START_MIN_FACTOR, 0.1);
  assert.equal(slowStartFactor(SINCE, SINCE, WINDOW), 0.1);
});

it('holds 10% for the first tenth of the window, then ramps linearly', () => {
  assert.equal(slowStartFactor(SINCE, SINCE + 1000, WINDOW), 0.1);
  assert.equal(slowStartFactor(SINCE, SINCE + WINDOW / 10, WINDOW), 0.1);
  assert.equal(slowStartFactor(SINCE, SINCE + WINDOW / 4, WINDOW), 0.25);
  assert.equal(slowStartFactor(SINCE, SINCE + WINDOW / 2, WINDOW), 0.5);
  assert.equal(slowStartFactor(SINCE, SINCE + (WINDOW * 3) / 4, WINDOW), 0.75);
});

it('reaches 100% at the end of the window and stays there', () => {
  assert.ok(slowStartFactor(SINCE, SINCE + WINDOW - 1, WINDOW) < 1);
  assert.equal(slowStartFactor(SINCE, SINCE + WINDOW, WINDOW), 1);
  assert.equal(slowStartFactor(SINCE, SINCE + 10 * WINDOW, WINDOW), 1);
});

it('is non-decreasing and within [0.1, 1] over the window', () => {
  let previous = 0;
  for (let t = SINCE - 5000; t <= SINCE + WINDOW + 5000; t += 250) {
    const f = slowStartFactor(SINCE, t, WINDOW);
    assert.ok(f >= 0.1 && f <= 1, `factor ${f} at ${t}`);
    assert.ok(f >= previous, `factor fell from ${previous} to ${f} at ${t}`);
    previous = f;
  }
});

it('gives 10% for a clock reading before the start', () => {
  assert.equal(slowStartFactor(SINCE, SINCE - 1000, WINDOW), 0.1);
});

it('is off for a window of 0 or less', () => {
  assert.equal(slowStartFactor(SINCE, SINCE, 0), 1);
  assert.equal(slowStartFactor(SINCE, SINCE, -5), 1);
  assert.equal(slowStartEnded(SINCE, SINCE, 0), true);
  assert.equal(slowStartEnded(SINCE, SINCE, -5), true);
});

it('says when the window has passed', () => {
  assert.equal(slowStartEnded(SINCE, SINCE, WINDOW), false);
  assert.equal(slowStartEnded(SINCE, SINCE + WINDOW - 1, WINDOW), false);
  assert.equal(slowStartEnded(SINCE, SINCE + WINDOW, WINDOW), true);
  assert.equal(slowStartEnded(SINCE, SINCE + 2 * WINDOW, WINDOW), true);
});
