import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createEwma, createEwmaBalancer } from '../../src/balancer/ewma.ts';
import type { Balancer } from '../../src/balancer/types.ts';
import { mulberry32 } from '../helpers/prng.ts';
import { acceptAll, countPicks, makeCtx, makeEndpoints, makeOptions } from './balancer-fixtures.ts';
import type { Clock, TestEndpoint } from './balancer-fixtures.ts';

/** Latency model of one simulated backend, ms. */
type Latency = (random: () => number) => number;

/**
 * Discrete-event simulation: a request arrives every `intervalMs`, is picked,
 * holds its backend's inFlight for its latency, and is then observed. Returns
 * pick counts.
 */
function simulate(latencies: readonly Latency[], requests: number, intervalMs: number, seed: number): number[] {
  const endpoints = makeEndpoints(latencies.length);
  const clock: Clock = { now: 0 };
  const balancer = createEwma(endpoints, makeOptions(seed, clock));
  const random = mulberry32(seed + 1000);
  const pending: { at: number; index: number; latency: number }[] = [];
  const counts = endpoints.map(() => 0);
  const ctx = makeCtx();
  for (let r = 0; r < requests; r++) {
    const t = r * intervalMs;
    pending.sort((a, b) => a.at - b.at);
    while (pending.length > 0 && pending[0]!.at <= t) {
      const done = pending.shift()!;
      clock.now = done.at;
      endpoints[done.index]!.inFlight--;
      balancer.observe!(endpoints[done.index]!, done.latency, done.at);
    }
    clock.now = t;
    const e = balancer.pick(ctx, acceptAll)!;
    endpoints[e.index]!.inFlight++;
    counts[e.index]!++;
    const latency = latencies[e.index]!(random);
    pending.push({ at: t + latency, index: e.index, latency });
  }
  return counts;
}

/** Around `base` ms (0.5× to 1.5×), with a 10× spike on 3% of requests. */
const jittery =
  (base: number): Latency =>
  (random) =>
    base * (0.5 + random()) * (random() < 0.03 ? 10 : 1);

describe('peak-EWMA: no starvation among identical backends (traefik#12306)', () => {
  for (const [label, intervalMs] of [
    ['busy, ~20 in flight', 1],
    ['moderate, ~2 in flight', 10],
    ['sequential, idle pool', 100],
  ] as const) {
    it(`each of 5 identical backends gets 1/5 ± 30% (${label})`, () => {
      for (const seed of [1, 2, 3]) {
        const counts = simulate([20, 20, 20, 20, 20].map(jittery), 3000, intervalMs, seed);
        for (const c of counts) assert.ok(c >= 0.7 * 600 && c <= 1.3 * 600, `seed ${seed}: counts ${counts}`);
      }
    });
  }
});

it('peak-EWMA: a backend whose first response was slow is not starved afterwards', () => {
  // Identical 20 ms backends; backend 0's first response takes 400 ms. Without
  // decay of unpicked estimates it would never be picked again (Traefik's bug).
  let first = true;
  const slowOnce: Latency = () => {
    if (!first) return 20;
    first = false;
    return 400;
  };
  const counts = simulate([slowOnce, () => 20, () => 20, () => 20, () => 20], 1500, 100, 4);
  for (const c of counts) assert.ok(c >= 0.7 * 300 && c <= 1.3 * 300, `counts ${counts}`);
});

describe('peak-EWMA: latency matters', () => {
  it('sends clearly less to a slow backend', () => {
    for (const intervalMs of [2, 20]) {
      const counts = simulate([jittery(10), jittery(10), jittery(100), jittery(10), jittery(10)], 3000, intervalMs, 7);
      assert.ok(counts[2]! < 0.3 * 600, `interval ${intervalMs}: counts ${counts}`);
      for (const i of [0, 1, 3, 4]) assert.ok(counts[i]! > 600, `interval ${intervalMs}: counts ${counts}`);
    }
  });

  it('scales cost by in-flight: a fast backend loses once it is busy enough', () => {
    const endpoints = makeEndpoints(2);
    const b = createEwma(endpoints, makeOptions(1, { now: 0 }));
    b.observe!(endpoints[0]!, 10, 0);
    b.observe!(endpoints[1]!, 35, 0);
    endpoints[0]!.inFlight = 2; // 10 × 3 = 30 < 35 × 1
    assert.deepEqual(countPicks(b, endpoints, 50), [50, 0]);
    endpoints[0]!.inFlight = 3; // 10 × 4 = 40 > 35
    assert.deepEqual(countPicks(b, endpoints, 50), [0, 50]);
  });

  it('divides cost by weight', () => {
    const endpoints = makeEndpoints([3, 1]);
    const b = createEwma(endpoints, makeOptions(1, { now: 0 }));
    b.observe!(endpoints[0]!, 25, 0); // 25 / 3 < 10 / 1
    b.observe!(endpoints[1]!, 10, 0);
    assert.deepEqual(countPicks(b, endpoints, 50), [50, 0]);
  });
});

describe('peak-EWMA: estimate dynamics', () => {
  /** Two endpoints, A sampled at `a` ms and B at `b` ms at time 0. */
  function pair(clock: Clock, a: number, b: number): { balancer: Balancer; endpoints: TestEndpoint[] } {
    const endpoints = makeEndpoints(2);
    const balancer = createEwma(endpoints, makeOptions(1, clock));
    balancer.observe!(endpoints[0]!, a, clock.now);
    balancer.observe!(endpoints[1]!, b, clock.now);
    return { balancer, endpoints };
  }

  it('believes a peak at once', () => {
    const clock = { now: 0 };
    const { balancer, endpoints } = pair(clock, 10, 50);
    assert.equal(balancer.pick(makeCtx(), acceptAll), endpoints[0]);
    balancer.observe!(endpoints[0]!, 200, 1);
    assert.equal(balancer.pick(makeCtx(), acceptAll), endpoints[1]);
  });

  it('averages good news in over the decay time (time-weighted)', () => {
    const clock = { now: 0 };
    const { balancer, endpoints } = pair(clock, 100, 50);
    // A recovers to 10 ms: after 1 s of samples, w = exp(-0.1): 100·0.905 + 10·0.095 ≈ 91.4, still worse than B.
    for (let t = 10; t <= 1000; t += 10) {
      balancer.observe!(endpoints[0]!, 10, t);
      balancer.observe!(endpoints[1]!, 50, t);
    }
    clock.now = 1000;
    assert.equal(balancer.pick(makeCtx(), acceptAll), endpoints[1]);
    // After 10 s more: 100·e^-1.1 + 10·(1 - e^-1.1) ≈ 39.3 < 50.
    for (let t = 1010; t <= 11_000; t += 10) {
      balancer.observe!(endpoints[0]!, 10, t);
      balancer.observe!(endpoints[1]!, 50, t);
    }
    clock.now = 11_000;
    assert.equal(balancer.pick(makeCtx(), acceptAll), endpoints[0]);
  });

  it('lets an unpicked slow estimate decay so the backend is retried (decay 10 s)', () => {
    const clock = { now: 0 };
    const { balancer, endpoints } = pair(clock, 100, 10);
    // B keeps being fresh at 10 ms; A's 100 ms decays below 10 after 10 s × ln 10 ≈ 23 s.
    clock.now = 22_000;
    balancer.observe!(endpoints[1]!, 10, clock.now);
    assert.equal(balancer.pick(makeCtx(), acceptAll), endpoints[1]);
    clock.now = 24_000;
    balancer.observe!(endpoints[1]!, 10, clock.now);
    assert.equal(balancer.pick(makeCtx(), acceptAll), endpoints[0]);
  });

  it('honours custom decay and default RTT', () => {
    const endpoints = makeEndpoints(2);
    const b = createEwmaBalancer(endpoints, makeOptions(1, { now: 0 }), { decayMs: 1000, defaultRttMs: 100 });
    b.observe!(endpoints[1]!, 50, 0);
    assert.deepEqual(countPicks(b, endpoints, 20), [0, 20]); // unsampled A costs 100 > 50
    assert.throws(() => createEwmaBalancer(endpoints, makeOptions(), { decayMs: 0 }), /decayMs must be > 0/);
  });
});

describe('peak-EWMA: probing new and stale endpoints without a stampede', () => {
  it('probes an unsampled endpoint while idle, then holds off until its sample returns', () => {
    const endpoints = makeEndpoints(4);
    const clock = { now: 0 };
    const b = createEwma(endpoints, makeOptions(2, clock));
    for (const i of [0, 1, 2]) {
      b.observe!(endpoints[i]!, 50, 0);
      endpoints[i]!.inFlight = 4; // cost 250
    }
    const fresh = endpoints[3]!;
    let probes = 0;
    for (let i = 0; i < 300; i++) {
      const e = b.pick(makeCtx(), acceptAll)!;
      if (e === fresh) {
        probes++;
        fresh.inFlight++;
      }
    }
    assert.equal(probes, 1, 'exactly one probe in flight at a time');
    fresh.inFlight = 0;
    b.observe!(fresh, 20, 100); // 20 × 1 < 250
    const counts = countPicks(b, endpoints, 300);
    assert.ok(counts[3]! > 100, `counts ${counts}`); // chosen whenever drawn
  });

  it('probes a stale endpoint one request at a time', () => {
    const endpoints = makeEndpoints(2);
    const clock = { now: 0 };
    const b = createEwma(endpoints, makeOptions(3, clock));
    b.observe!(endpoints[0]!, 1000, 0);
    clock.now = 120_000; // A's estimate decayed to ~0.006 ms, 2 minutes without a sample
    b.observe!(endpoints[1]!, 20, clock.now);
    endpoints[1]!.inFlight = 3;
    assert.equal(b.pick(makeCtx(), acceptAll), endpoints[0]);
    endpoints[0]!.inFlight = 1; // the probe
    assert.deepEqual(countPicks(b, endpoints, 50), [0, 50]);
  });
});
