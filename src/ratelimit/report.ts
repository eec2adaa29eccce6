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
import { OUTCOMES, type Outcome } from './table.ts';

export function declareRateLimitMetrics(registry: Registry, store: RateLimitStore): void {
  collectedCounter(registry, 'usher_ratelimit_decisions_total', 'Rate-limit decisions by policy and outcome: allowed, limited (refused), dry_run_limited (would have been refused: dryRun), delayed (admitted after a wait: maxDelay). Requests whose key is empty are not counted.', ['policy', 'outcome'], (emit) => {
    for (const { name, table } of store.tables()) {
      const decisions = table.decisions;
      for (const outcome of OUTCOMES) emit({ policy: name, outcome }, decisions[outcome]);
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
}

type Policies = Readonly<Record<string, RateLimitPolicyConfig>> | undefined;

/** Every policy of `policies` with its numbers (a scan of each table: admin API, not per request). */
export function rateLimitReports(store: RateLimitStore, policies: Policies): RateLimitReport[] {
  const now = epochNow();
  return Object.entries(policies ?? {}).map(([name, policy]) => {
    const limiter = store.limiter(name, policy);
    const table = limiter.table;
    return { policy: name, algorithm: policy.algorithm, dryRun: policy.dryRun, maxKeys: policy.maxKeys, slots: table.slots, bytes: table.bytes, liveKeys: table.liveKeys(now, limiter.algorithm), evictions: table.evictions, decisions: table.decisions };
  });
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
