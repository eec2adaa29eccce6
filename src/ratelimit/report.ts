/**
 * The `usher_ratelimit_*` metrics. Every thread counts a policy's decisions
 * and evictions into the header of the policy's shared table (table.ts), so
 * the numbers are already the process's: only the main thread declares them
 * (a worker declaring them too would have `/metrics` count them twice), and
 * the admin API reads the same cells.
 */
import type { Registry } from 'prom-client';
import { collectedCounter, collectedGauge } from '../observe/collected.ts';
import { epochNow } from './limiter.ts';
import type { RateLimitStore } from './store.ts';
import type { RateLimitPolicyConfig } from '../config/types.ts';
import { CollectedHistogram, LatencyHistogram } from '../observe/histogram.ts';
import { OUTCOMES, STORES, type Outcome, type StoreLabel, type TopKey } from './table.ts';

export function declareRateLimitMetrics(registry: Registry, store: RateLimitStore): void {
  collectedCounter(registry, 'usher_ratelimit_decisions_total', 'Rate-limit decisions by policy, outcome and store. outcome: allowed, limited (refused), dry_run_limited (would have been refused: dryRun), delayed (admitted after a wait: maxDelay). store: local (a store: local policy), redis (decided by Redis, or its refusal repeated by the negative cache), fallback (a store: redis policy decided by onStoreError while Redis failed or its breaker was open). Requests whose key is empty are not counted.', ['policy', 'outcome', 'store'], (emit) => {
    for (const { name, table, store: where } of store.tables()) {
      const byStore = table.decisionsByStore;
      // A local policy has store="local" series, a Redis one "redis" and "fallback".
      for (const s of STORES) {
        if ((s === 'local') !== (where === 'local')) continue;
        for (const outcome of OUTCOMES) emit({ policy: name, outcome, store: s }, byStore[s][outcome]);
      }
    }
  });
  new CollectedHistogram(registry, 'usher_ratelimit_store_latency_seconds', '`store: redis`: how long a rate-limit decision\'s Redis call took (calls that answered; errors and timeouts are in usher_ratelimit_store_errors_total).', ['policy'], function* () {
    for (const { name, table } of store.tables()) {
      const { counts, count, sumMs } = table.latency;
      if (count === 0) continue;
      const histogram = new LatencyHistogram();
      counts.forEach((n, i) => (histogram.counts[i] = n));
      histogram.count = count;
      histogram.sumMs = sumMs;
      yield [{ policy: name }, histogram] as const;
    }
  });
  collectedCounter(registry, 'usher_ratelimit_evictions_total', 'Keys whose state was still live when a new key took their slot (the probe window was full): raise maxKeys when this grows.', ['policy'], (emit) => {
    for (const { name, table } of store.tables()) emit({ policy: name }, table.evictions);
  });
  collectedCounter(registry, 'usher_ratelimit_store_errors_total', '`store: redis`: Redis calls that failed or timed out (each then decided by the policy\'s onStoreError).', ['policy'], (emit) => {
    for (const { name, table } of store.tables()) emit({ policy: name }, table.storeErrors);
  });
  collectedGauge(registry, 'usher_ratelimit_breaker_open', '`store: redis`: 1 while a thread\'s Redis breaker for the policy is open (after 5 consecutive errors; one probe every 2 s), else 0.', ['policy'], (emit) => {
    for (const { name, table } of store.tables()) emit({ policy: name }, table.breakerOpen ? 1 : 0);
  });
  collectedGauge(registry, 'usher_ratelimit_table_bytes', 'Memory of a policy\'s key table, fixed when the policy is made.', ['policy'], (emit) => {
    for (const { name, table } of store.tables()) emit({ policy: name }, table.bytes);
  });
}

/** A policy as the admin API shows it. */
export interface RateLimitReport {
  readonly policy: string;
  readonly algorithm: string;
  readonly dryRun: boolean;
  readonly maxKeys: number;
  /** Slots in the table and the bytes they take. */
  readonly slots: number;
  readonly bytes: number;
  /** Keys whose state still limits something. */
  readonly liveKeys: number;
  readonly evictions: number;
  readonly decisions: Readonly<Record<Outcome, number>>;
  /** `local` or `redis`. */
  readonly store: 'local' | 'redis';
  /** The decisions by who made them (`redis` and `fallback` only for a `store: redis` policy). */
  readonly decisionsByStore: Readonly<Record<StoreLabel, Readonly<Record<Outcome, number>>>>;
  /** `store: redis`: failed or timed-out Redis calls; whether a thread's breaker is open; the live instances its fallback divides by. */
  readonly storeErrors: number;
  readonly breakerOpen: boolean;
  readonly liveInstances: number;
}

type Policies = Readonly<Record<string, RateLimitPolicyConfig>> | undefined;

/** Every policy of `policies` with its numbers (a scan of each table: admin API, not per request). */
export function rateLimitReports(store: RateLimitStore, policies: Policies): RateLimitReport[] {
  const now = epochNow();
  return Object.entries(policies ?? {}).map(([name, policy]) => {
    const limiter = store.limiter(name, policy);
    const table = limiter.table;
    return {
      policy: name, algorithm: policy.algorithm, dryRun: policy.dryRun, maxKeys: policy.maxKeys, slots: table.slots, bytes: table.bytes, liveKeys: table.liveKeys(now, limiter.algorithm), evictions: table.evictions, decisions: table.decisions,
      store: policy.store, decisionsByStore: table.decisionsByStore, storeErrors: table.storeErrors, breakerOpen: table.breakerOpen, liveInstances: table.liveInstances,
    };
  });
}

/** The most limited, then the busiest keys of a policy, as this process saw them. */
export interface TopKeysReport {
  readonly policy: string;
  readonly keys: readonly (Omit<TopKey, 'since'> & { readonly since: string })[];
}

/** Up to `n` top keys of policy `name` (see LimiterTable.topKeys); undefined when there is no such policy. */
export function rateLimitTopKeys(store: RateLimitStore, policies: Policies, name: string, n = 20): TopKeysReport | undefined {
  const policy = policies?.[name];
  if (policy === undefined) return undefined;
  const table = store.limiter(name, policy).table;
  return { policy: name, keys: table.topKeys(n).map((k) => ({ ...k, since: new Date(k.since).toISOString() })) };
}

/**
 * Forgets what policy `name` counted for `key` (the key as the policy builds
 * it: parts joined by a newline, e.g. the x-api-key value, or an address).
 * Undefined when there is no such policy; false when the key had no state.
 */
export function resetRateLimitKey(store: RateLimitStore, policies: Policies, name: string, key: string): boolean | undefined {
  const policy = policies?.[name];
  if (policy === undefined) return undefined;
  const table = store.limiter(name, policy).table;
  return table.reset(table.hashOf(key));
}
