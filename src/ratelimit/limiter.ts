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
import { OUTCOMES, STORES, type LimiterTable, type KeyHash, type Outcome, type SlotAlgorithm, type StoreLabel } from './table.ts';
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
  /** `store: redis` concurrency: the slot taken on Redis (the key as built, the lease id), given back with {@link Limiter.release}. */
  readonly lease?: { readonly key: string; readonly id: string };
}

/**
 * The part of `config` one of `instances` live usher instances enforces on
 * its own, while Redis cannot decide (`onStoreError: local`): gcra the rate
 * ÷ n and the burst ÷ n rounded up; sliding-window and concurrency the limit
 * ÷ n rounded down; never below 1. The whole policy when n ≤ 1.
 */
export function shareOfPolicy(config: RateLimitPolicyConfig, instances: number): RateLimitPolicyConfig {
  const n = Math.floor(instances);
  if (!(n > 1)) return config;
  switch (config.algorithm) {
    case 'gcra':
      return { ...config, rate: { count: config.rate.count / n, periodMs: config.rate.periodMs }, burst: Math.ceil(config.burst / n) };
    case 'sliding-window':
    case 'concurrency':
      return { ...config, limit: Math.max(1, Math.floor(config.limit / n)) };
  }
}

/** How a policy's algorithm reads and advances its table's slots. */
function slotAlgorithm(config: RateLimitPolicyConfig): SlotAlgorithm {
  switch (config.algorithm) {
    case 'gcra': {
      const params = { intervalUs: intervalUs(config.rate), burst: config.burst, maxDelayUs: config.maxDelayMs * 1000 };
      return { step: (state, nowMs) => gcra(state, Math.floor(nowMs * 1000), params), expired: (state, nowMs) => gcraExpired(state, nowMs * 1000) };
    }
    case 'sliding-window': {
      const params = { limit: config.limit, windowMs: config.windowMs };
      return { step: (state, nowMs) => slidingWindow(state, nowMs, params), expired: (state, nowMs) => windowExpired(state, nowMs, params.windowMs) };
    }
    case 'concurrency': {
      const params = { limit: config.limit, leaseTimeoutMs: config.leaseTimeoutMs };
      return { step: (state, nowMs) => acquire(state, nowMs, params), expired: (state, nowMs) => concurrencyExpired(state, nowMs, params.leaseTimeoutMs) };
    }
  }
}

/** GCRA's emission interval, µs. */
function intervalUs(rate: { readonly count: number; readonly periodMs: number }): number {
  return Math.max(1, Math.round((rate.periodMs * 1000) / rate.count));
}

const LOCAL = STORES.indexOf('local');
const REDIS = STORES.indexOf('redis');
const FALLBACK = STORES.indexOf('fallback');

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
  /** `onStoreError: local`: the share of the policy this instance enforces, for the live-instance count it was made for. */
  #fallback: { readonly instances: number; readonly algorithm: SlotAlgorithm } | undefined;

  constructor(name: string, config: RateLimitPolicyConfig, table: LimiterTable, remote?: RemoteStore) {
    this.name = name;
    this.config = config;
    this.table = table;
    this.remote = config.store === 'redis' ? remote : undefined;
    this.#intervalUs = config.algorithm === 'gcra' ? intervalUs(config.rate) : 0;
    this.#parts = config.key.map((text) => {
      const part = parseKeyPart(text);
      if (part === undefined) throw new Error(`rate-limit policy ${name}: bad key part ${JSON.stringify(text)}`);
      return part;
    });
    this.algorithm = slotAlgorithm(config);
    switch (config.algorithm) {
      case 'gcra':
        this.quota = config.rate.count;
        this.windowS = config.rate.periodMs / 1000;
        break;
      case 'sliding-window':
        this.quota = config.limit;
        this.windowS = config.windowMs / 1000;
        break;
      case 'concurrency':
        this.quota = config.limit;
        this.windowS = undefined;
        break;
    }
    this.policyField = `"${name}";q=${this.quota}${this.windowS === undefined ? '' : `;w=${this.windowS}`}`;
  }

  /** The request's key, or undefined when it has none (not counted). */
  keyOf(request: FilterRequest): string | undefined {
    return keyOf(this.#parts, request, this.config.ipv6Prefix);
  }

  /** Decides for `key` at `nowMs` on the local table and counts the outcome. */
  decide(key: string, nowMs: number): PolicyDecision {
    return this.#decideLocal(this.table.hashOf(key), key, nowMs, this.algorithm, LOCAL);
  }

  #decideLocal(hash: KeyHash, key: string, nowMs: number, algorithm: SlotAlgorithm, store: number): PolicyDecision {
    const { step } = this.table.decide(hash, nowMs, algorithm);
    return this.#counted(hash, key, step.decision, store, nowMs);
  }

  /**
   * `store: redis`: decides on Redis (one script call), unless the negative
   * cache already knows the key is refused, or the breaker is open or the call
   * fails, when `onStoreError` decides: `local` this instance's share of the
   * policy ({@link shareOfPolicy}, by the live instances last written to the
   * table) on the local table, `open` admit, `closed` a 503 refusal. Never rejects.
   */
  async decideRemote(key: string, nowMs: number): Promise<PolicyDecision> {
    const remote = this.remote;
    if (remote === undefined) return this.decide(key, nowMs);
    const hash = this.table.hashOf(key);
    const cached = remote.state.refused(key, nowMs);
    if (cached !== undefined) return this.#counted(hash, key, cached, REDIS, nowMs);
    if (remote.state.mayCall(nowMs)) {
      const lease = this.config.algorithm === 'concurrency' ? remote.client.newLease() : undefined;
      const started = performance.now();
      try {
        const decision = await this.#call(remote.client, key, lease);
        this.table.observeLatency(performance.now() - started);
        remote.state.succeeded();
        // A concurrency refusal is not remembered: a slot may free at any time.
        if (lease === undefined) remote.state.remember(key, decision, epochNow(), this.config.algorithm === 'gcra' ? this.config.maxDelayMs : 0);
        const made = this.#counted(hash, key, decision, REDIS, nowMs);
        return lease !== undefined && decision.allowed ? { ...made, lease: { key, id: lease } } : made;
      } catch {
        remote.state.failed(epochNow());
        this.table.countStoreError();
        // A call that timed out may still have taken the slot on Redis: give it back (sent after it on the same connection).
        if (lease !== undefined) remote.client.release(this.name, key, lease).catch(() => {});
      }
    }
    switch (this.config.onStoreError) {
      case 'local':
        return this.#decideLocal(hash, key, nowMs, this.#fallbackAlgorithm(), FALLBACK);
      case 'open':
        return this.#counted(hash, key, { allowed: true, remaining: this.quota, resetAfterMs: 0, retryAfterMs: 0, delayMs: 0 }, FALLBACK, nowMs);
      case 'closed': {
        const wait = Math.max(1000, remote.state.retryAfterMs(epochNow()));
        return { ...this.#counted(hash, key, { allowed: false, remaining: 0, resetAfterMs: wait, retryAfterMs: wait, delayMs: 0 }, FALLBACK, nowMs), unavailable: true };
      }
    }
  }

  /** The policy's script on Redis. */
  #call(client: RemoteStore['client'], key: string, lease: string | undefined): Promise<Decision> {
    const config = this.config;
    switch (config.algorithm) {
      case 'gcra':
        return client.gcra(this.name, key, this.#intervalUs, config.burst, config.maxDelayMs * 1000);
      case 'sliding-window':
        return client.slidingWindow(this.name, key, config.limit, config.windowMs);
      case 'concurrency':
        return client.acquire(this.name, key, config.limit, config.leaseTimeoutMs, lease!);
    }
  }

  /** The share of the policy enforced locally while Redis cannot decide. */
  #fallbackAlgorithm(): SlotAlgorithm {
    const instances = this.table.liveInstances;
    if (this.#fallback?.instances !== instances) this.#fallback = { instances, algorithm: instances <= 1 ? this.algorithm : slotAlgorithm(shareOfPolicy(this.config, instances)) };
    return this.#fallback.algorithm;
  }

  #counted(hash: KeyHash, key: string, decision: Decision, store: number, nowMs: number): PolicyDecision {
    const outcome = decision.allowed ? (decision.delayMs > 0 ? 'delayed' : 'allowed') : this.config.dryRun ? 'dry_run_limited' : 'limited';
    this.table.count(OUTCOMES.indexOf(outcome), store);
    this.table.note(hash, key, !decision.allowed, nowMs);
    return { limiter: this, key: hash, decision };
  }

  /** A concurrency policy's slot is free again: on Redis (`ZREM` of its lease; a failure leaves it to expire) or in the local table. */
  release(made: PolicyDecision, nowMs: number): void {
    if (this.config.algorithm !== 'concurrency') return;
    const lease = made.lease;
    if (lease !== undefined && this.remote !== undefined) {
      this.remote.client.release(this.name, lease.key, lease.id).catch(() => this.table.countStoreError());
      return;
    }
    const params = { limit: this.config.limit, leaseTimeoutMs: this.config.leaseTimeoutMs };
    this.table.update(made.key, (state) => release(state, nowMs, params));
  }

  /** Counts a decision made elsewhere. */
  count(outcome: Outcome, store: StoreLabel = 'local'): void {
    this.table.count(OUTCOMES.indexOf(outcome), STORES.indexOf(store));
  }
}
