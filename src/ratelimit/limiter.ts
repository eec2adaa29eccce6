/**
 * One rate-limit policy as a thread uses it: its compiled key, its algorithm
 * over the process's {@link LimiterTable}, and how it is described in the
 * RateLimit headers. The tables live in a {@link RateLimitStore}: the main
 * thread makes them, worker threads adopt them (store.ts).
 */
import type { RateLimitPolicyConfig } from '../config/types.ts';
import type { FilterRequest } from '../filter/filter.ts';
import { acquire, concurrencyExpired, gcra, gcraExpired, release, slidingWindow, windowExpired, type Decision } from './algorithms.ts';
import { keyOf, parseKeyPart, type KeyPart } from './key.ts';
import { OUTCOMES, type LimiterTable, type KeyHash, type Outcome, type SlotAlgorithm } from './table.ts';
import type { RedisPolicyState, RedisRateLimitClient } from './redis.ts';

/** A `store: redis` policy's connection and its thread's negative cache and breaker. */
export interface RemoteStore {
  readonly client: RedisRateLimitClient;
  readonly state: RedisPolicyState;
}

/** Epoch ms: every thread's `performance.now()` has its own origin, `timeOrigin` puts them on one clock. */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** A policy's decision on one request. */
export interface PolicyDecision {
  readonly limiter: Limiter;
  readonly key: KeyHash;
  readonly decision: Decision;
  /** `store: redis` with `onStoreError: closed`: Redis could not decide, the refusal is a 503 (temporary-reduced-capacity). */
  readonly unavailable?: boolean;
}

export class Limiter {
  readonly name: string;
  readonly config: RateLimitPolicyConfig;
  readonly table: LimiterTable;
  readonly algorithm: SlotAlgorithm;
  /** `q` and `w` of RateLimit-Policy. */
  readonly quota: number;
  readonly windowS: number | undefined;
  /** `"name";q=…;w=…`, made once. */
  readonly policyField: string;
  /** `store: redis`: where decisions are made; undefined for a local policy. */
  readonly remote: RemoteStore | undefined;
  readonly #parts: readonly KeyPart[];
  readonly #intervalUs: number;

  constructor(name: string, config: RateLimitPolicyConfig, table: LimiterTable, remote?: RemoteStore) {
    this.name = name;
    this.config = config;
    this.table = table;
    this.remote = config.store === 'redis' ? remote : undefined;
    this.#intervalUs = config.algorithm === 'gcra' ? Math.max(1, Math.round((config.rate.periodMs * 1000) / config.rate.count)) : 0;
    this.#parts = config.key.map((text) => {
      const part = parseKeyPart(text);
      if (part === undefined) throw new Error(`rate-limit policy ${name}: bad key part ${JSON.stringify(text)}`);
      return part;
    });
    switch (config.algorithm) {
      case 'gcra': {
        const params = { intervalUs: Math.max(1, Math.round((config.rate.periodMs * 1000) / config.rate.count)), burst: config.burst, maxDelayUs: config.maxDelayMs * 1000 };
        this.algorithm = { step: (state, nowMs) => gcra(state, Math.floor(nowMs * 1000), params), expired: (state, nowMs) => gcraExpired(state, nowMs * 1000) };
        this.quota = config.rate.count;
        this.windowS = config.rate.periodMs / 1000;
        break;
      }
      case 'sliding-window': {
        const params = { limit: config.limit, windowMs: config.windowMs };
        this.algorithm = { step: (state, nowMs) => slidingWindow(state, nowMs, params), expired: (state, nowMs) => windowExpired(state, nowMs, params.windowMs) };
        this.quota = config.limit;
        this.windowS = config.windowMs / 1000;
        break;
      }
      case 'concurrency': {
        const params = { limit: config.limit, leaseTimeoutMs: config.leaseTimeoutMs };
        this.algorithm = { step: (state, nowMs) => acquire(state, nowMs, params), expired: (state, nowMs) => concurrencyExpired(state, nowMs, params.leaseTimeoutMs) };
        this.quota = config.limit;
        this.windowS = undefined;
        break;
      }
    }
    this.policyField = `"${name}";q=${this.quota}${this.windowS === undefined ? '' : `;w=${this.windowS}`}`;
  }

  /** The request's key, or undefined when it has none (not counted). */
  keyOf(request: FilterRequest): string | undefined {
    return keyOf(this.#parts, request, this.config.ipv6Prefix);
  }

  /** Decides for `key` at `nowMs` and counts the outcome. */
  decide(key: string, nowMs: number): PolicyDecision {
    const hash = this.table.hashOf(key);
    const { step } = this.table.decide(hash, nowMs, this.algorithm);
    const decision = step.decision;
    this.count(decision.allowed ? (decision.delayMs > 0 ? 'delayed' : 'allowed') : this.config.dryRun ? 'dry_run_limited' : 'limited');
    return { limiter: this, key: hash, decision };
  }

  /**
   * `store: redis`: decides on Redis (one script call), unless the negative
   * cache already knows the key is refused, or the breaker is open or the call
   * fails, when `onStoreError` decides: `local` the local table, `open` admit,
   * `closed` a 503 refusal. Never rejects.
   */
  async decideRemote(key: string, nowMs: number): Promise<PolicyDecision> {
    const remote = this.remote;
    if (remote === undefined || this.config.algorithm !== 'gcra') return this.decide(key, nowMs);
    const hash = this.table.hashOf(key);
    const cached = remote.state.refused(key, nowMs);
    if (cached !== undefined) return this.#counted(hash, cached);
    if (remote.state.mayCall(nowMs)) {
      try {
        const decision = await remote.client.gcra(this.name, key, this.#intervalUs, this.config.burst);
        remote.state.succeeded();
        remote.state.remember(key, decision, epochNow());
        return this.#counted(hash, decision);
      } catch {
        remote.state.failed(epochNow());
        this.table.countStoreError();
      }
    }
    switch (this.config.onStoreError) {
      case 'local':
        return this.decide(key, nowMs);
      case 'open':
        return this.#counted(hash, { allowed: true, remaining: this.quota, resetAfterMs: 0, retryAfterMs: 0, delayMs: 0 });
      case 'closed': {
        const wait = Math.max(1000, remote.state.retryAfterMs(epochNow()));
        this.count(this.config.dryRun ? 'dry_run_limited' : 'limited');
        return { limiter: this, key: hash, decision: { allowed: false, remaining: 0, resetAfterMs: wait, retryAfterMs: wait, delayMs: 0 }, unavailable: true };
      }
    }
  }

  #counted(hash: KeyHash, decision: Decision): PolicyDecision {
    this.count(decision.allowed ? 'allowed' : this.config.dryRun ? 'dry_run_limited' : 'limited');
    return { limiter: this, key: hash, decision };
  }

  /** A concurrency policy's slot for `key` is free again. */
  release(key: KeyHash, nowMs: number): void {
    if (this.config.algorithm !== 'concurrency') return;
    const params = { limit: this.config.limit, leaseTimeoutMs: this.config.leaseTimeoutMs };
    this.table.update(key, (state) => release(state, nowMs, params));
  }

  /** A dry-run refusal that went through: a concurrency slot was not taken, nothing to release. */
  count(outcome: Outcome): void {
    this.table.count(OUTCOMES.indexOf(outcome));
  }
}
