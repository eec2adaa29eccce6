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
 */
import type { RateLimitPolicyConfig, RedisConfig } from '../config/types.ts';
import { Limiter, type RemoteStore } from './limiter.ts';
import { RedisPolicyState, RedisRateLimitClient } from './redis.ts';
import { LimiterTable } from './table.ts';

/** The tables of one config, as they travel to a worker: by policy name, the settings' fingerprint and the buffer. */
export type SharedRateLimits = Readonly<Record<string, { readonly fingerprint: string; readonly buffer: SharedArrayBuffer }>>;

type Policies = Readonly<Record<string, RateLimitPolicyConfig>> | undefined;

function fingerprint(policy: RateLimitPolicyConfig): string {
  return JSON.stringify(policy);
}

export class RateLimitStore {
  /** `owner`: this thread makes tables (the main thread); otherwise it only adopts what it is sent. */
  readonly owner: boolean;
  /** Tables by `name + "\n" + fingerprint`. */
  #tables = new Map<string, { readonly name: string; readonly fingerprint: string; readonly table: LimiterTable }>();
  /** This thread's Redis connection (`store: redis` policies), made from the config's `redis` on first use. */
  #redis: RedisRateLimitClient | undefined;
  /** Negative caches and breakers of `store: redis` policies, by the same id as the tables. */
  #remote = new Map<string, RedisPolicyState>();

  constructor(owner: boolean) {
    this.owner = owner;
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
    const next = new Map<string, { name: string; fingerprint: string; table: LimiterTable }>();
    for (const [name, { fingerprint: print, buffer }] of Object.entries(shared)) {
      const id = `${name}\n${print}`;
      next.set(id, this.#tables.get(id) ?? { name, fingerprint: print, table: new LimiterTable(buffer) });
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
    this.#redis ??= new RedisRateLimitClient(redis);
    let state = this.#remote.get(id);
    if (state === undefined) {
      state = new RedisPolicyState((open) => table.breaker(open));
      this.#remote.set(id, state);
    }
    return { client: this.#redis, state };
  }

  /** The tables now, for the admin API and metrics. */
  tables(): { readonly name: string; readonly table: LimiterTable }[] {
    return [...this.#tables.values()];
  }

  #table(name: string, policy: RateLimitPolicyConfig, print: string): LimiterTable {
    const id = `${name}\n${print}`;
    let entry = this.#tables.get(id);
    if (entry === undefined) {
      if (!this.owner) throw new Error(`rate-limit policy ${name}: this worker was not sent its table`);
      entry = { name, fingerprint: print, table: new LimiterTable(policy.maxKeys) };
      this.#tables.set(id, entry);
    }
    return entry.table;
  }
}
