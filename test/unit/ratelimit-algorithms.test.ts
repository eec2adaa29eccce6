/**
 * The rate-limit algorithms with an injected clock and exact expectations:
 * GCRA burst and refusal (nginx limit_req burst + nodelay), maxDelay, the
 * sliding-window counter's interpolation, concurrency and its lease timeout.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { acquire, concurrencyExpired, gcra, gcraExpired, release, slidingWindow, windowExpired, type GcraParams, type Step } from '../../src/ratelimit/algorithms.ts';

/** Runs GCRA on one key, keeping its state as the table would. */
function gcraKey(params: GcraParams) {
  let state = 0n;
  return (nowMs: number): Step => {
    const step = gcra(state, nowMs * 1000, params);
    if (step.next !== undefined) state = step.next;
    return step;
  };
}

const T0 = 1_700_000_000_000;

test('gcra 10/s burst 5: six immediate requests pass, the 7th is refused with retry-after 100 ms; 100 ms later one more passes', () => {
  const key = gcraKey({ intervalUs: 100_000, burst: 5, maxDelayUs: 0 });
  const remaining: number[] = [];
  for (let i = 0; i < 6; i++) {
    const { decision } = key(T0);
    assert.equal(decision.allowed, true, `request ${i + 1}`);
    remaining.push(decision.remaining);
  }
  assert.deepEqual(remaining, [5, 4, 3, 2, 1, 0]);
  const seventh = key(T0).decision;
  assert.equal(seventh.allowed, false);
  assert.equal(seventh.retryAfterMs, 100);
  assert.equal(seventh.remaining, 0);
  assert.equal(seventh.resetAfterMs, 600, 'the whole burst is back 600 ms later');
  assert.equal(key(T0 + 99).decision.allowed, false, 'not before the 100 ms');
  const later = key(T0 + 100).decision;
  assert.equal(later.allowed, true);
  assert.equal(later.remaining, 0);
  assert.equal(key(T0 + 100).decision.allowed, false, 'only one');
});

test('gcra burst 0 admits one request per interval, and a refusal does not move the state', () => {
  const key = gcraKey({ intervalUs: 50_000, burst: 0, maxDelayUs: 0 });
  assert.equal(key(T0).decision.allowed, true);
  for (let i = 0; i < 5; i++) assert.equal(key(T0 + 10).decision.allowed, false);
  assert.equal(key(T0 + 49).decision.retryAfterMs, 1);
  assert.equal(key(T0 + 50).decision.allowed, true, 'refusals did not push the next admission back');
});

test('gcra: an idle key gets its whole burst back, and its state expires once TAT is past', () => {
  const params = { intervalUs: 100_000, burst: 2, maxDelayUs: 0 };
  const first = gcra(0n, T0 * 1000, params);
  assert.equal(gcraExpired(first.next!, T0 * 1000), false);
  assert.equal(gcraExpired(first.next!, (T0 + 100) * 1000), true);
  const key = gcraKey(params);
  for (let i = 0; i < 3; i++) assert.equal(key(T0).decision.allowed, true);
  assert.equal(key(T0).decision.allowed, false);
  for (let i = 0; i < 3; i++) assert.equal(key(T0 + 10_000).decision.allowed, true, 'burst is whole again');
});

test('gcra maxDelay: a request that conforms within maxDelay is admitted with that delay, beyond it refused', () => {
  const key = gcraKey({ intervalUs: 100_000, burst: 1, maxDelayUs: 250_000 });
  assert.equal(key(T0).decision.delayMs, 0);
  assert.equal(key(T0).decision.delayMs, 0);
  const delays = [key(T0).decision, key(T0).decision];
  assert.deepEqual(delays.map((d) => [d.allowed, d.delayMs]), [[true, 100], [true, 200]]);
  const refused = key(T0).decision;
  assert.equal(refused.allowed, false, 'would wait 300 ms > maxDelay');
  assert.equal(refused.retryAfterMs, 300);
});

test('sliding window: limit per window, the previous window weighted by how much of it the sliding window still covers', () => {
  const params = { limit: 10, windowMs: 1000 };
  let state = 0n;
  const at = (ms: number) => {
    const step = slidingWindow(state, ms, params);
    if (step.next !== undefined) state = step.next;
    return step.decision;
  };
  const start = 1_700_000_000_000; // a window boundary (multiple of 1000)
  for (let i = 0; i < 10; i++) assert.equal(at(start + 100).allowed, true);
  const refused = at(start + 100);
  assert.equal(refused.allowed, false);
  // Next window: 10 × (1 - 0.6) = 4 at +600 ms; the 11th fits when the weight drops to 9/10: at start + 1000 + 100.
  assert.equal(refused.retryAfterMs, 1000);
  assert.equal(at(start + 1050).allowed, false, 'estimate 10 × 0.95 = 9.5: no room');
  assert.equal(at(start + 1100).allowed, true, 'estimate 9 + 1 ≤ 10');
  // At +1600: previous 10 × 0.4 = 4, current 1: 5 more fit.
  let admitted = 0;
  while (at(start + 1600).allowed) admitted++;
  assert.equal(admitted, 5);
  assert.equal(windowExpired(state, start + 2500, 1000), false, 'the current window counts');
  assert.equal(windowExpired(state, start + 3000, 1000), true, 'two windows later nothing counts');
});

test('sliding window: remaining counts down to 0', () => {
  let state = 0n;
  const remaining: number[] = [];
  for (let i = 0; i < 3; i++) {
    const step = slidingWindow(state, T0, { limit: 3, windowMs: 60_000 });
    state = step.next!;
    remaining.push(step.decision.remaining);
  }
  assert.deepEqual(remaining, [2, 1, 0]);
});

test('concurrency: at most limit in flight; a release frees one; a count untouched for leaseTimeout is dropped', () => {
  const params = { limit: 2, leaseTimeoutMs: 60_000 };
  let state = 0n;
  const take = (ms: number) => {
    const step = acquire(state, ms, params);
    if (step.next !== undefined) state = step.next;
    return step.decision;
  };
  assert.deepEqual([take(T0).remaining, take(T0).remaining], [1, 0]);
  assert.equal(take(T0).allowed, false);
  state = release(state, T0 + 5, params);
  assert.equal(take(T0 + 6).allowed, true);
  assert.equal(take(T0 + 7).allowed, false);
  assert.equal(concurrencyExpired(state, T0 + 7, params.leaseTimeoutMs), false);
  assert.equal(concurrencyExpired(state, T0 + 7 + 60_001, params.leaseTimeoutMs), true);
  assert.equal(take(T0 + 7 + 60_001).allowed, true, 'leaked slots expire with the lease');
  state = release(release(release(state, T0 + 60_010, params), T0 + 60_010, params), T0 + 60_010, params);
  assert.equal(state, 0n, 'never below zero');
});
