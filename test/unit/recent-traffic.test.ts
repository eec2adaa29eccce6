import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LATENCY_WINDOW_SECONDS, latencyBucket, RecentTraffic, SERIES_SECONDS } from '../../src/pool/recent-traffic.ts';
import { mulberry32 } from '../helpers/prng.ts';

const T0 = 1_000_000; // ms on the monotonic clock: second 1000

test('empty: zero rates, null latencies', () => {
  const traffic = new RecentTraffic();
  assert.deepEqual(traffic.summary(T0), { windowSeconds: LATENCY_WINDOW_SECONDS, requests: 0, errors: 0, p50Ms: null, p99Ms: null });
  assert.deepEqual(traffic.perSecond(T0), new Array(SERIES_SECONDS).fill(0));
});

test('perSecond: complete seconds only, oldest first; the current second is not in it yet', () => {
  const traffic = new RecentTraffic();
  for (let i = 0; i < 3; i++) traffic.record(T0 - 2000 + i, 1, false); // second 998
  for (let i = 0; i < 5; i++) traffic.record(T0 - 1000 + 10 * i, 1, false); // second 999
  traffic.record(T0 + 500, 1, false); // second 1000: the current one
  const series = traffic.perSecond(T0 + 600);
  assert.equal(series.length, SERIES_SECONDS);
  assert.deepEqual(series.slice(-3), [0, 3, 5]);
  assert.equal(series.reduce((a, b) => a + b), 8);
  // A second later the current one is complete and shows up.
  assert.deepEqual(traffic.perSecond(T0 + 1000).slice(-3), [3, 5, 1]);
});

test('old seconds age out of the series and the summary, and reused slots start from zero', () => {
  const traffic = new RecentTraffic();
  for (let i = 0; i < 7; i++) traffic.record(T0, 2, true);
  assert.deepEqual({ ...traffic.summary(T0), p50Ms: null, p99Ms: null }, { windowSeconds: 10, requests: 7, errors: 7, p50Ms: null, p99Ms: null });
  // Ten seconds later the summary window has moved past it; the minute-long series still has it.
  const later = T0 + LATENCY_WINDOW_SECONDS * 1000;
  assert.deepEqual(traffic.summary(later), { windowSeconds: 10, requests: 0, errors: 0, p50Ms: null, p99Ms: null });
  assert.equal(traffic.perSecond(later).reduce((a, b) => a + b), 7);
  // Exactly one minute on, the same ring slot is reused: it counts the new second only.
  const minute = T0 + SERIES_SECONDS * 1000;
  traffic.record(minute, 2, false);
  assert.deepEqual(traffic.perSecond(minute + 1000).slice(-1), [1]);
  assert.equal(traffic.perSecond(minute + 1000).reduce((a, b) => a + b), 1);
  const summary = traffic.summary(minute);
  assert.equal(summary.requests, 1);
  assert.equal(summary.errors, 0);
  assert.ok(summary.p50Ms !== null && Math.abs(summary.p50Ms - 2) / 2 < 0.1, String(summary.p50Ms));
});

test('attempts without a latency count as requests (and errors) but not in the percentiles', () => {
  const traffic = new RecentTraffic();
  traffic.record(T0, -1, true);
  traffic.record(T0, -1, false);
  traffic.record(T0, 10, false);
  const summary = traffic.summary(T0);
  assert.equal(summary.requests, 3);
  assert.equal(summary.errors, 1);
  // The one latency is both quantiles.
  assert.equal(summary.p50Ms, summary.p99Ms);
  assert.ok(Math.abs(summary.p50Ms! - 10) / 10 < 0.1, String(summary.p50Ms));
});

test('p50 and p99 are within 10% of the exact quantiles of the last ten seconds', () => {
  const rng = mulberry32(7);
  const traffic = new RecentTraffic();
  const samples: number[] = [];
  // Eleven seconds of samples: the first second is outside the window.
  for (let second = 0; second < 11; second++) {
    for (let i = 0; i < 500; i++) {
      const ms = second === 0 ? 10_000 : Math.exp(rng() * 7) * 0.1; // 0.1 ms .. 110 ms, log-uniform
      traffic.record(T0 + second * 1000 + i, ms, false);
      if (second > 0) samples.push(ms);
    }
  }
  samples.sort((a, b) => a - b);
  const exact = (q: number): number => samples[Math.ceil(q * samples.length) - 1]!;
  const summary = traffic.summary(T0 + 10_999);
  assert.equal(summary.requests, 5000);
  for (const [q, got] of [[0.5, summary.p50Ms], [0.99, summary.p99Ms]] as const) {
    assert.ok(got !== null && Math.abs(got - exact(q)) / exact(q) < 0.1, `q${q}: got ${got}, exact ${exact(q)}`);
  }
});

test('latency buckets: monotonic, tiny and huge values clamp, NaN goes to the first', () => {
  let previous = latencyBucket(0);
  assert.equal(previous, 0);
  for (let ms = 0.01; ms < 1e7; ms *= 1.07) {
    const bucket = latencyBucket(ms);
    assert.ok(bucket >= previous, `${ms}`);
    previous = bucket;
  }
  assert.equal(latencyBucket(Number.NaN), 0);
  assert.equal(latencyBucket(1e12), latencyBucket(1e9));
});
