import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RetryBudget } from '../../src/pool/retry-budget.ts';
import { mulberry32 } from '../helpers/prng.ts';

interface RunResult {
  readonly requests: number;
  readonly retries: number;
  /** One-second buckets the run touched. */
  readonly seconds: number;
  /** Requests whose first retry was granted. */
  readonly retried: number;
}

/**
 * Simulates a pool where every attempt fails: each request at `times[i]` asks
 * for up to `attempts` retries, `retryDelayMs` apart, and stops at the first
 * refusal. Times must be non-decreasing.
 */
function failingRun(budget: RetryBudget, times: readonly number[], attempts = 2, retryDelayMs = 5): RunResult {
  let retries = 0;
  let retried = 0;
  const buckets = new Set<number>();
  for (const t of times) {
    budget.onRequest(t);
    buckets.add(Math.floor(t / 1000));
    for (let a = 1; a <= attempts; a++) {
      const at = t + a * retryDelayMs;
      buckets.add(Math.floor(at / 1000));
      if (!budget.tryAcquireRetry(at)) break;
      retries++;
      if (a === 1) retried++;
    }
  }
  return { requests: times.length, retries, seconds: buckets.size, retried };
}

/** `rate` requests per second, evenly spaced, for `seconds` seconds. */
function steady(rate: number, seconds: number): number[] {
  const times: number[] = [];
  for (let i = 0; i < rate * seconds; i++) times.push((i * 1000) / rate);
  return times;
}

/** About `rate` requests per second in random bursts: each second is idle, normal, or 10× busy. */
function bursty(rate: number, seconds: number, seed: number): number[] {
  const random = mulberry32(seed);
  const times: number[] = [];
  for (let s = 0; s < seconds; s++) {
    const r = random();
    const n = r < 0.3 ? 0 : r < 0.9 ? rate : rate * 10;
    // Bunch each second's requests near its end, then near its start, to stress bucket edges.
    const base = s * 1000 + (s % 2 === 0 ? 990 : 0);
    for (let i = 0; i < n; i++) times.push(base + (i * 9) / Math.max(1, n));
  }
  return times;
}

describe('budget bound with every backend failing', () => {
  it('keeps retries ≤ 20% of requests + 3 per second over a steady 60 s run', () => {
    for (const rate of [1, 2, 5, 10, 50, 100, 1000]) {
      const got = failingRun(new RetryBudget(20, 3), steady(rate, 60));
      const bound = 0.2 * got.requests + 3 * got.seconds;
      assert.ok(got.retries <= bound, `${rate}/s: ${got.retries} retries > ${bound} (${got.requests} requests)`);
      if (rate >= 50) {
        // The budget is usable, not just safe: close to 20% once the window has filled.
        assert.ok(got.retries >= 0.18 * got.requests, `${rate}/s: only ${got.retries} retries for ${got.requests} requests`);
      }
    }
  });

  it('keeps the bound with bursts, slow failures and other budgets', () => {
    for (const [percent, min] of [[20, 3], [10, 1], [50, 0], [20, 0]] as const) {
      for (const seed of [1, 2, 3]) {
        for (const rate of [3, 40, 400]) {
          for (const delay of [1, 700, 4000]) {
            const got = failingRun(new RetryBudget(percent, min), bursty(rate, 60, seed), 3, delay);
            const bound = (percent / 100) * got.requests + min * got.seconds;
            const label = `${percent}%/${min}, seed ${seed}, ${rate}/s, delay ${delay}`;
            assert.ok(got.retries <= bound, `${label}: ${got.retries} retries > ${bound} (${got.requests} requests)`);
          }
        }
      }
    }
  });

  it('with no per-second floor, never exceeds the budget in any window', () => {
    const budget = new RetryBudget(20, 0);
    const times = steady(100, 60);
    let requests = 0;
    let retries = 0;
    for (const t of times) {
      budget.onRequest(t);
      requests++;
      if (budget.tryAcquireRetry(t)) retries++;
      const window = budget.stats(t);
      assert.ok(window.retries * 100 <= 20 * window.requests, `at ${t}: ${window.retries}/${window.requests}`);
    }
    assert.ok(retries <= 0.2 * requests);
  });
});

describe('per-second floor', () => {
  it('lets a quiet pool (1 request/s) retry every request', () => {
    const got = failingRun(new RetryBudget(20, 3), steady(1, 60), 2);
    assert.equal(got.retried, got.requests);
    assert.equal(got.retries, 2 * got.requests);
  });

  it('grants minRetriesPerSecond per second with no requests at all', () => {
    const budget = new RetryBudget(20, 3);
    const granted: number[] = [];
    for (let s = 0; s < 3; s++) {
      let n = 0;
      for (let i = 0; i < 10; i++) if (budget.tryAcquireRetry(s * 1000 + i)) n++;
      granted.push(n);
    }
    assert.deepEqual(granted, [3, 3, 3]);
  });

  it('is a floor, not an addition: budget grants in the second count towards it', () => {
    const budget = new RetryBudget(20, 3);
    for (let i = 0; i < 50; i++) budget.onRequest(0);
    let n = 0;
    while (budget.tryAcquireRetry(0)) n++;
    assert.equal(n, 10, '20% of 50; the 3 floor retries are already used by the budget');
  });
});

describe('window', () => {
  it('counts the current second and the nine before it', () => {
    const budget = new RetryBudget(20, 3);
    for (let s = 0; s < 10; s++) budget.onRequest(s * 1000 + 500);
    assert.ok(budget.tryAcquireRetry(9999));
    assert.deepEqual(budget.stats(9999), { requests: 10, retries: 1 });
    assert.deepEqual(budget.stats(10_000), { requests: 9, retries: 1 });
    assert.deepEqual(budget.stats(18_999), { requests: 1, retries: 1 });
    assert.deepEqual(budget.stats(19_000), { requests: 0, retries: 0 });
  });

  it('clears everything after a long gap', () => {
    const budget = new RetryBudget(20, 3);
    for (let i = 0; i < 100; i++) budget.onRequest(i);
    budget.tryAcquireRetry(100);
    assert.deepEqual(budget.stats(3_600_000), { requests: 0, retries: 0 });
    budget.onRequest(3_600_001);
    assert.deepEqual(budget.stats(3_600_001), { requests: 1, retries: 0 });
  });

  it('refills the budget as old requests leave the window', () => {
    const budget = new RetryBudget(20, 0);
    for (let i = 0; i < 100; i++) budget.onRequest(0);
    let n = 0;
    while (budget.tryAcquireRetry(0)) n++;
    assert.equal(n, 20);
    assert.equal(budget.tryAcquireRetry(9999), false);
    for (let i = 0; i < 10; i++) budget.onRequest(10_000);
    assert.equal(budget.tryAcquireRetry(10_000), true, 'the first second left the window');
    assert.equal(budget.tryAcquireRetry(10_000), true);
    assert.equal(budget.tryAcquireRetry(10_000), false);
  });

  it('treats a clock that goes back as the current second', () => {
    const budget = new RetryBudget(20, 0);
    for (let i = 0; i < 10; i++) budget.onRequest(5000);
    budget.onRequest(1000);
    assert.deepEqual(budget.stats(4000), { requests: 11, retries: 0 });
    assert.deepEqual(budget.stats(14_999), { requests: 11, retries: 0 });
    assert.deepEqual(budget.stats(15_000), { requests: 0, retries: 0 });
  });

  it('works with negative clock readings', () => {
    const budget = new RetryBudget(20, 0);
    for (let i = 0; i < 5; i++) budget.onRequest(-2500);
    assert.ok(budget.tryAcquireRetry(-2000));
    assert.deepEqual(budget.stats(6999), { requests: 5, retries: 1 });
    assert.deepEqual(budget.stats(7000), { requests: 0, retries: 1 }, 'the retry was one second later');
    assert.deepEqual(budget.stats(8000), { requests: 0, retries: 0 });
  });
});
