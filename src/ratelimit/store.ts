/**
 * Where a process's rate-limit tables live. The main thread's store makes
 * them (one {@link LimiterTable} per policy, sized by `maxKeys` once) and
 * hands their buffers to the worker threads with each config (the `prepare`
 * message); a worker's store adopts them, so every thread decides against
 * the same memory. With `runtime.workers: 0` the main thread serves with its
 * own tables directly.
 *
 * A table is known by the policy's name and its settings: a reload that
 * leaves a policy as it was keeps its table (and every key's state); a policy
 * whose settings change starts afresh.
 *
 * **Live instances.** While Redis cannot decide, a `store: redis` policy with
 * `onStoreError: local` enforces limit ÷ the live usher instances on its
 * local table ({@link shareOfPolicy}). The count comes from
 * {@link RateLimitStoreOptions.liveInstances} (default: 1, the whole limit),
 * which the instance registry provides: the main thread's store reads it
 * every {@link LIVE_INSTANCES_EVERY_MS} (and at once on {@link refreshLiveInstances})
 * and writes it into every table's header, where every thread's fallback reads it.
 */
import type { RateLimitPolicyConfig, RedisConfig } from '../config/types.ts';
import { epochNow, Limiter, type RemoteStore } from './limiter.ts';
export { shareOfPolicy } from './limiter.ts';
import { RedisPolicyState, RedisRateLimitClient } from './redis.ts';
import { LimiterTable } from './table.ts';

/** The tables of one config, as they travel to a worker: by policy name, the settings' fingerprint and the buffer. */
export type SharedRateLimits = Readonly<Record<string, { readonly fingerprint: string; readonly buffer: SharedArrayBuffer }>>;

type Policies = Readonly<Record<string, RateLimitPolicyConfig>> | undefined;

/** How often the main thread's store reads {@link RateLimitStoreOptions.liveInstances}. */
export const LIVE_INSTANCES_EVERY_MS = 500;

export interface RateLimitStoreOptions {
  /**
   * The usher instances sharing the Redis budgets that are alive now, as last
   * seen (the instance registry's heartbeat set). Read by the main thread's
   * store only; a value below 1 or not a number counts as 1. Default: 1.
   */
  readonly liveInstances?: () => number;
}

function fingerprint(policy: RateLimitPolicyConfig): string {
  return JSON.stringify(policy);
}

export class RateLimitStore {
  /** `owner`: this thread makes tables (the main thread); otherwise it only adopts what it is sent. */
  readonly owner: boolean;
  /** Tables by `name + "\n" + fingerprint`. */
  #tables = new Map<string, { readonly name: string; readonly fingerprint: string; readonly table: LimiterTable; readonly store: 'local' | 'redis' }>();
  /** This thread's Redis connection (`store: redis` policies), made from the config's `redis` on first use. */
  #redis: RedisRateLimitClient | undefined;
  /** Negative caches and breakers of `store: redis` policies, by the same id as the tables. */
  #remote = new Map<string, RedisPolicyState>();

  #liveInstances: () => number;
  #liveTimer: NodeJS.Timeout | undefined;

  constructor(owner: boolean, options: RateLimitStoreOptions = {}) {
    this.owner = owner;
    this.#liveInstances = options.liveInstances ?? (() => 1);
  }

  /** Main thread: where the live-instance count comes from from now on (the instance registry); written to the tables at once. */
  setLiveInstances(liveInstances: () => number): void {
    this.#liveInstances = liveInstances;
    this.refreshLiveInstances();
  }

  /** Main thread: reads the live-instance count now and writes it into every table (each thread's fallback reads it there). */
  refreshLiveInstances(): void {
    if (!this.owner) return;
    let n = 1;
    try {
      n = this.#liveInstances();
    } catch {
      /* the registry failed: keep 1 */
    }
    for (const { table } of this.#tables.values()) table.liveInstances = n;
  }

  /** The live-instance count as written into the tables (1 when there is none). */
  get liveInstances(): number {
    const first = this.#tables.values().next();
    return first.done === true ? 1 : first.value.table.liveInstances;
  }

  /** Main thread: the tables of `policies` (made now for the new or changed ones), to send to the workers. Tables of other policies stay until {@link retain}. */
  share(policies: Policies): SharedRateLimits {
    const out: Record<string, { fingerprint: string; buffer: SharedArrayBuffer }> = {};
    for (const [name, policy] of Object.entries(policies ?? {})) {
      const print = fingerprint(policy);
      out[name] = { fingerprint: print, buffer: this.#table(name, policy, print).shared };
    }
    return out;
  }

  /** Main thread: forgets the tables no policy of `policies` uses (after a config is applied). */
  retain(policies: Policies): void {
    const keep = new Set(Object.entries(policies ?? {}).map(([name, policy]) => `${name}\n${fingerprint(policy)}`));
    for (const id of [...this.#tables.keys()]) if (!keep.has(id)) this.#tables.delete(id);
    for (const id of [...this.#remote.keys()]) if (!keep.has(id)) this.#remote.delete(id);
  }

  /** Worker: the tables the main thread sent with a config (the ones already adopted are kept as they are). */
  adopt(shared: SharedRateLimits): void {
    const next = new Map<string, { name: string; fingerprint: string; table: LimiterTable; store: 'local' | 'redis' }>();
    for (const [name, { fingerprint: print, buffer }] of Object.entries(shared)) {
      const id = `${name}\n${print}`;
      next.set(id, this.#tables.get(id) ?? { name, fingerprint: print, table: new LimiterTable(buffer), store: (JSON.parse(print) as RateLimitPolicyConfig).store });
    }
    this.#tables = next;
    for (const id of [...this.#remote.keys()]) if (!next.has(id)) this.#remote.delete(id);
  }

  /** A limiter for the policy, on its table (and, `store: redis`, on this thread's Redis connection). Throws in a worker that was not sent the table. */
  limiter(name: string, policy: RateLimitPolicyConfig, redis?: RedisConfig): Limiter {
    const print = fingerprint(policy);
    const table = this.#table(name, policy, print);
    return new Limiter(name, policy, table, policy.store === 'redis' ? this.#remoteStore(`${name}\n${print}`, table, redis) : undefined);
  }

  /** This thread's Redis connection, if one was made (tests count its calls). */
  get redis(): RedisRateLimitClient | undefined {
    return this.#redis;
  }

  /** Closes the Redis connection (the thread stops). */
  async close(): Promise<void> {
    clearInterval(this.#liveTimer);
    this.#liveTimer = undefined;
    const client = this.#redis;
    this.#redis = undefined;
    await client?.close();
  }

  #remoteStore(id: string, table: LimiterTable, redis: RedisConfig | undefined): RemoteStore | undefined {
    if (redis === undefined) return undefined;
    if (this.#redis !== undefined && JSON.stringify(this.#redis.config) !== JSON.stringify(redis)) {
      void this.#redis.close();
      this.#redis = undefined;
    }
    if (this.#redis === undefined) {
      const client = new RedisRateLimitClient(redis);
      // Connected again: every open breaker probes at once.
      client.onReady(() => {
        for (const remote of this.#remote.values()) remote.halfOpen(epochNow());
      });
      this.#redis = client;
    }
    let state = this.#remote.get(id);
    if (state === undefined) {
      state = new RedisPolicyState((open) => table.breaker(open));
      this.#remote.set(id, state);
    }
    return { client: this.#redis, state };
  }

  /** The tables now, for the admin API and metrics. */
  tables(): { readonly name: string; readonly table: LimiterTable; readonly store: 'local' | 'redis' }[] {
    return [...this.#tables.values()];
  }

  #table(name: string, policy: RateLimitPolicyConfig, print: string): LimiterTable {
    const id = `${name}\n${print}`;
    let entry = this.#tables.get(id);
    if (entry === undefined) {
      if (!this.owner) throw new Error(`rate-limit policy ${name}: this worker was not sent its table`);
      entry = { name, fingerprint: print, table: new LimiterTable(policy.maxKeys), store: policy.store };
      this.#tables.set(id, entry);
      this.refreshLiveInstances();
      if (policy.store === 'redis' && this.#liveTimer === undefined) {
        this.#liveTimer = setInterval(() => this.refreshLiveInstances(), LIVE_INSTANCES_EVERY_MS);
        this.#liveTimer.unref();
      }
    }
    return entry.table;
  }
}
