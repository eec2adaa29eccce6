/**
 * `store: redis` while Redis cannot decide (`onStoreError: local`): each
 * instance enforces its share of the policy, limit ÷ the live instances that
 * the injected `liveInstances` reports, through the table header every thread
 * reads; the breaker half-opens when the connection comes back; the top-keys
 * sketch keeps the busy keys among many rare ones.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RateLimitPolicyConfig } from '../../src/config/types.ts';
import { RedisPolicyState, BREAKER_FAILURES } from '../../src/ratelimit/redis.ts';
import { RateLimitStore, shareOfPolicy } from '../../src/ratelimit/store.ts';
import { LimiterTable } from '../../src/ratelimit/table.ts';
import { refusedPort } from '../helpers/refused.ts';

const common = { key: ['client-ip'], ipv6Prefix: 64, dryRun: false, status: 429, xRateLimitHeaders: false, maxKeys: 1000, store: 'redis', onStoreError: 'local' } as const;
const gcraPolicy: RateLimitPolicyConfig = { ...common, algorithm: 'gcra', rate: { count: 100, periodMs: 60_000 }, burst: 7, maxDelayMs: 0 };
const windowPolicy: RateLimitPolicyConfig = { ...common, algorithm: 'sliding-window', limit: 10, windowMs: 3_600_000 };
const concurrencyPolicy: RateLimitPolicyConfig = { ...common, algorithm: 'concurrency', limit: 5, leaseTimeoutMs: 60_000 };

test('shareOfPolicy: gcra rate ÷ n and burst ÷ n rounded up; limits ÷ n rounded down; never below 1; whole for n ≤ 1', () => {
  const g = shareOfPolicy(gcraPolicy, 4);
  assert.equal(g.algorithm, 'gcra');
  assert.deepEqual(g.algorithm === 'gcra' && [g.rate.count, g.rate.periodMs, g.burst], [25, 60_000, 2]);
  const w = shareOfPolicy(windowPolicy, 3);
  assert.equal(w.algorithm === 'sliding-window' && w.limit, 3);
  const c = shareOfPolicy(concurrencyPolicy, 10);
  assert.equal(c.algorithm === 'concurrency' && c.limit, 1, 'never below 1');
  assert.equal(shareOfPolicy(gcraPolicy, 1), gcraPolicy);
  assert.equal(shareOfPolicy(gcraPolicy, 0), gcraPolicy);
  assert.equal(shareOfPolicy(gcraPolicy, Number.NaN), gcraPolicy);
});

async function fallbackCounts(liveInstances: (() => number) | undefined, policy: RateLimitPolicyConfig, requests: number): Promise<{ allowed: number; store: RateLimitStore }> {
  const store = new RateLimitStore(true, liveInstances === undefined ? {} : { liveInstances });
  // Nothing listens there: every call fails at once (no offline queue), then the breaker opens.
  const limiter = store.limiter('p', policy, { url: `redis://127.0.0.1:${await refusedPort()}`, keyPrefix: 'u', timeoutMs: 20 });
  let allowed = 0;
  const now = Date.now();
  for (let i = 0; i < requests; i++) {
    const made = await limiter.decideRemote('k', now + i);
    if (made.decision.allowed) allowed++;
  }
  const byStore = limiter.table.decisionsByStore;
  assert.equal(byStore.fallback.allowed + byStore.fallback.limited, requests, 'every decision was the fallback\'s');
  assert.equal(byStore.redis.allowed, 0);
  await store.close();
  return { allowed, store };
}

test('onStoreError local enforces the policy ÷ the live instances (default 1: the whole policy)', async () => {
  // gcra 100/m burst 7: burst + 1 = 8 at once for one instance; ÷ 4: 25/m burst 2, 3 at once.
  assert.equal((await fallbackCounts(undefined, gcraPolicy, 20)).allowed, 8);
  assert.equal((await fallbackCounts(() => 4, gcraPolicy, 20)).allowed, 3);
  // sliding-window 10/h ÷ 3: 3.
  assert.equal((await fallbackCounts(() => 1, windowPolicy, 20)).allowed, 10);
  assert.equal((await fallbackCounts(() => 3, windowPolicy, 20)).allowed, 3);
  // concurrency 5 ÷ 2: 2 in flight (none given back here).
  assert.equal((await fallbackCounts(() => 2, concurrencyPolicy, 20)).allowed, 2);
  // A registry that fails or says nonsense counts as one instance.
  assert.equal((await fallbackCounts(() => Number.NaN, windowPolicy, 20)).allowed, 10);
  assert.equal((await fallbackCounts(() => {
    throw new Error('registry down');
  }, windowPolicy, 20)).allowed, 10);
});

test('the live-instance count travels in the table: another thread\'s view reads it; setLiveInstances changes it at once', async () => {
  let live = 2;
  const store = new RateLimitStore(true, { liveInstances: () => live });
  const shared = store.share({ p: windowPolicy });
  const workerView = new LimiterTable(shared['p']!.buffer);
  assert.equal(workerView.liveInstances, 2);
  live = 5;
  store.refreshLiveInstances();
  assert.equal(workerView.liveInstances, 5);
  store.setLiveInstances(() => 7);
  assert.equal(workerView.liveInstances, 7);
  assert.equal(store.liveInstances, 7);
  // A worker's store only reads: it never overwrites the count.
  const worker = new RateLimitStore(false, { liveInstances: () => 99 });
  worker.adopt(shared);
  worker.refreshLiveInstances();
  assert.equal(workerView.liveInstances, 7);
  await store.close();
});

test('breaker: opens after consecutive failures, probes after 2 s, or at once when the connection is back', () => {
  const changes: boolean[] = [];
  const state = new RedisPolicyState((open) => changes.push(open));
  const t0 = 1_000_000;
  for (let i = 0; i < BREAKER_FAILURES; i++) state.failed(t0);
  assert.equal(state.breakerOpen, true);
  assert.equal(state.mayCall(t0 + 100), false);
  state.halfOpen(t0 + 100);
  assert.equal(state.mayCall(t0 + 100), true, 'the probe goes at once');
  assert.equal(state.mayCall(t0 + 100), false, 'one probe only');
  state.succeeded();
  assert.equal(state.breakerOpen, false);
  assert.deepEqual(changes, [true, false]);
  state.halfOpen(t0 + 200); // closed: nothing to do
  assert.equal(state.mayCall(t0 + 200), true);
});

test('negative cache with maxDelay: a refusal is remembered until maxDelay before its retry time', () => {
  const state = new RedisPolicyState();
  state.remember('k', { allowed: false, remaining: 0, retryAfterMs: 1000, resetAfterMs: 1000, delayMs: 0 }, 0, 300);
  assert.notEqual(state.refused('k', 650), undefined);
  assert.equal(state.refused('k', 700), undefined, 'from 700 ms on a request may be admitted after a wait ≤ 300 ms');
  state.remember('short', { allowed: false, remaining: 0, retryAfterMs: 200, resetAfterMs: 200, delayMs: 0 }, 0, 300);
  assert.equal(state.refused('short', 1), undefined, 'within maxDelay: never cached');
});

test('top keys: the most refused and busiest keys keep their entries among thousands of rare ones; reset clears a key\'s counts', () => {
  const table = new LimiterTable(100_000);
  const now = Date.now();
  const note = (key: string, limited: boolean): void => table.note(table.hashOf(key), key, limited, now);
  for (let round = 0; round < 200; round++) {
    note('heavy', round % 2 === 0);
    note('busy', false);
    note('busy', false);
    note('refused\nGET', true);
    for (let i = 0; i < 20; i++) note(`rare-${round}-${i}`, false);
  }
  const top = table.topKeys(3);
  assert.deepEqual(top.map((k) => k.key), ['refused\nGET', 'heavy', 'busy']);
  assert.equal(top[0]!.limited, 200);
  assert.equal(top[1]!.limited, 100);
  // An admitted key takes an entry on one miss in eight: counted from then on.
  assert.ok(top[2]!.decisions >= 390 && top[2]!.decisions <= 400, String(top[2]!.decisions));
  assert.equal(top[2]!.limited, 0);
  assert.ok(table.topKeys(100).length <= 100);
  const long = 'x'.repeat(300);
  for (let i = 0; i < 1000; i++) note(long, true);
  const found = table.topKeys(1)[0]!;
  assert.equal(found.truncated, true);
  assert.equal(found.key, 'x'.repeat(96));
  table.reset(table.hashOf(long));
  assert.ok(!table.topKeys(50).some((k) => k.key === found.key), 'a reset key is no longer listed');
});
