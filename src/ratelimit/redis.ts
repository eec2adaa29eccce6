/**
 * The Redis store of `store: redis` rate-limit policies: one budget per key
 * for every usher instance that uses the same server and `keyPrefix`.
 *
 * - **One script per decision** ({@link GCRA_SCRIPT}, {@link SLIDING_WINDOW_SCRIPT},
 *   {@link CONCURRENCY_SCRIPT}), sent with EVALSHA (node-redis `defineScript`
 *   loads it again on NOSCRIPT). It reads the time with Redis's own `TIME`,
 *   never an instance's clock, so instances whose clocks disagree still share
 *   one budget. A concurrency slot is given back with one `ZREM`.
 * - **Pipelining**: node-redis writes every command queued during one turn of
 *   the event loop in one socket write (a `setImmediate` flush), so the
 *   decisions of requests read in the same turn travel together.
 * - **Keys** `{<keyPrefix>:<policy>}:<key>`: the hash tag puts a policy's keys
 *   on one Cluster slot, and the script touches only the one key it is given.
 * - **One client per thread** (the main thread and each worker make their own
 *   from the config): a short per-command timeout (`redis.timeout`, 20 ms by
 *   default; node-redis's own is seconds), no offline queue (a command while
 *   disconnected fails at once), reconnects with a capped backoff.
 * - **Per policy and thread** ({@link RedisPolicyState}): a negative cache
 *   (a key Redis just refused is refused here until its retry time, with no
 *   Redis call) and a breaker (open after {@link BREAKER_FAILURES}
 *   consecutive errors or timeouts, one probe after {@link BREAKER_HALF_OPEN_MS},
 *   or at once when the connection comes back).
 */
import { randomBytes } from 'node:crypto';
import { defineScript } from 'redis';
import { createRedisConnection, RECONNECT_MAX_MS } from '../redis/options.ts';
import type { RedisConfig } from '../config/types.ts';
import type { Decision } from './algorithms.ts';

/**
 * The time the scripts decide at: Redis's own clock (`TIME`), in µs; or, when
 * the last argument is not empty, that value (µs since the epoch). Only the
 * tests pass one, to compare a script with the local algorithm step by step.
 */
const NOW_US = (arg: string) => `
local now
if ${arg} ~= nil and ${arg} ~= '' then
  now = tonumber(${arg})
else
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
end
`;

/**
 * GCRA on one key, the same rule as the local `gcra` (algorithms.ts): the
 * state is the key's theoretical arrival time (TAT), µs on Redis's clock.
 * KEYS[1]: the key; ARGV[1]: the emission interval T (µs); ARGV[2]: burst B;
 * ARGV[3]: maxDelay (µs, 0: never delay); ARGV[4]: '' (tests: the time, µs).
 * A request conforms when now ≥ TAT − B·T; it then moves TAT to
 * max(TAT, now) + T, stored with a PX expiry of TAT − now (when the state
 * stops limiting anything). One that would conform after waiting at most
 * maxDelay is admitted the same way and told to wait. A refusal writes nothing.
 * Returns {allowed 0/1, remaining, retry-after µs, reset-after µs, delay µs}.
 * The TAT is written with %.0f: Lua's default number format keeps 14 digits,
 * and µs since the epoch have 16.
 */
export const GCRA_SCRIPT = `
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local max_delay = tonumber(ARGV[3])
${NOW_US('ARGV[4]')}
-- pcall: another algorithm's value under the same name (a policy that changed algorithm) reads as nothing, and SET replaces it.
local stored = redis.pcall('GET', KEYS[1])
if type(stored) ~= 'string' then stored = '0' end
local tat = tonumber(stored) or 0
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then
  local wait = allow_at - now
  if wait > max_delay then
    return {0, 0, wait, tat - now, 0}
  end
  local delayed_tat = tat + interval
  redis.call('SET', KEYS[1], string.format('%.0f', delayed_tat), 'PX', math.ceil((delayed_tat - now) / 1000))
  return {1, 0, 0, delayed_tat - now, wait}
end
local next_tat = tat + interval
local remaining = math.floor((now + tolerance + interval - next_tat) / interval + 1e-9)
if remaining < 0 then remaining = 0 end
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000))
return {1, remaining, 0, next_tat - now, 0}
`;

/**
 * The sliding-window counter on one key, the same rule and numbers as the
 * local `slidingWindow` (algorithms.ts): the counts of the current and the
 * previous fixed window (windows numbered from the epoch on Redis's clock),
 * the previous weighted by the share of it the sliding window still covers.
 * The value is `<window number>:<previous>:<current>` (one string, ~80 B per
 * key whatever the limit: a sorted-set log would hold one member per admitted
 * request, 1000 members for 1000/h). Only admitted requests count, written
 * with a PX expiry of the end of the next window (when the count weighs
 * nothing any more); a refusal writes nothing.
 * KEYS[1]: the key; ARGV[1]: limit; ARGV[2]: window (ms); ARGV[3]: '' (tests: the time, µs).
 * Returns {allowed 0/1, remaining, retry-after µs, reset-after µs, 0}.
 */
export const SLIDING_WINDOW_SCRIPT = `
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
${NOW_US('ARGV[3]')}
now = now / 1000
local index = math.floor(now / window)
local start = index * window
local previous, current = 0, 0
local stored = redis.pcall('GET', KEYS[1])
if type(stored) == 'string' then
  local i, p, c = string.match(stored, '^(%d+):(%d+):(%d+)$')
  i = tonumber(i)
  if i == index then
    previous = tonumber(p)
    current = tonumber(c)
  elseif i == index - 1 then
    previous = tonumber(c)
  end
end
local weight = 1 - (now - start) / window
local estimate = previous * weight + current
if estimate + 1 <= limit then
  local reset = start + 2 * window - now
  local remaining = math.floor(limit - (estimate + 1))
  if remaining < 0 then remaining = 0 end
  redis.call('SET', KEYS[1], string.format('%.0f:%d:%d', index, previous, current + 1), 'PX', math.ceil(reset))
  return {1, remaining, 0, math.floor(reset * 1000), 0}
end
local room = limit - 1
local at
if current <= room and previous > 0 then
  at = start + (1 - (room - current) / previous) * window
elseif current <= 0 then
  at = start + window
else
  at = start + window + math.max(0, 1 - room / current) * window
end
local reset
if current > 0 then reset = start + 2 * window - now else reset = start + window - now end
return {0, 0, math.floor(math.max(0, at - now) * 1000), math.floor(reset * 1000), 0}
`;

/**
 * Takes a concurrency slot: the key is a sorted set of leases, each scored by
 * when it expires (ms on Redis's clock). Leases past their expiry are pruned
 * first (an instance that crashed holding some frees them that way), then a
 * lease is added when fewer than limit remain. The key expires with its last
 * lease (PX = leaseTimeout after each acquire).
 * KEYS[1]: the key; ARGV[1]: limit; ARGV[2]: leaseTimeout (ms); ARGV[3]: the lease id.
 * Returns {allowed 0/1, remaining, retry-after µs (1 s: when a slot frees is unknown), reset-after µs, 0}.
 * Release is a plain `ZREM key leaseId`.
 */
export const CONCURRENCY_SCRIPT = `
local limit = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local pruned = redis.pcall('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if type(pruned) == 'table' and pruned.err then
  redis.call('DEL', KEYS[1]) -- another algorithm's value (a policy that changed algorithm)
end
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
  return {0, 0, 1000000, 1000000, 0}
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
redis.call('PEXPIRE', KEYS[1], lease)
return {1, limit - count - 1, 0, 0, 0}
`;

const reply = (r: unknown) => r as unknown as readonly number[];

const gcraScript = defineScript({
  NUMBER_OF_KEYS: 1,
  SCRIPT: GCRA_SCRIPT,
  parseCommand(parser, key: string, intervalUs: number, burst: number, maxDelayUs: number, atUs: string) {
    parser.pushKey(key);
    parser.push(String(intervalUs), String(burst), String(maxDelayUs), atUs);
  },
  transformReply: reply,
});

const windowScript = defineScript({
  NUMBER_OF_KEYS: 1,
  SCRIPT: SLIDING_WINDOW_SCRIPT,
  parseCommand(parser, key: string, limit: number, windowMs: number, atUs: string) {
    parser.pushKey(key);
    parser.push(String(limit), String(windowMs), atUs);
  },
  transformReply: reply,
});

const concurrencyScript = defineScript({
  NUMBER_OF_KEYS: 1,
  SCRIPT: CONCURRENCY_SCRIPT,
  parseCommand(parser, key: string, limit: number, leaseTimeoutMs: number, lease: string) {
    parser.pushKey(key);
    parser.push(String(limit), String(leaseTimeoutMs), lease);
  },
  transformReply: reply,
});

const SCRIPTS = { gcra: gcraScript, slidingWindow: windowScript, concurrency: concurrencyScript };

/** A connection to the configured Redis (standalone, Sentinel or Cluster: src/redis/options.ts) with the decision scripts. */
function makeClient(config: RedisConfig) {
  return createRedisConnection(config, SCRIPTS, { clientName: 'usher-ratelimit' });
}

export { RECONNECT_MAX_MS };

type Client = ReturnType<typeof makeClient>;

function decision(r: readonly number[]): Decision {
  const [allowed, remaining, retryUs, resetUs, delayUs] = r.map(Number) as [number, number, number, number, number];
  return { allowed: allowed === 1, remaining, retryAfterMs: retryUs / 1000, resetAfterMs: resetUs / 1000, delayMs: (delayUs ?? 0) / 1000 };
}

/** A thread's connection to the configured Redis. */
export class RedisRateLimitClient {
  readonly config: RedisConfig;
  readonly #client: Client;
  /** Script calls sent (for tests: the negative cache makes none). */
  calls = 0;
  #closed = false;
  /** Lease ids: this connection's random token and a counter. */
  readonly #token = randomBytes(6).toString('base64url');
  #leases = 0;
  readonly #onReady = new Set<() => void>();

  constructor(config: RedisConfig, onError: (error: Error) => void = () => {}) {
    this.config = config;
    this.#client = makeClient(config);
    // Without a listener an 'error' event would crash the process; failures are counted per decision instead.
    this.#client.on('error', onError);
    // (Re)connected: the policies' breakers may probe at once instead of waiting out their 2 s.
    this.#client.on('ready', () => {
      for (const listener of this.#onReady) listener();
    });
    this.#client.connect().catch(() => {
      /* reconnectStrategy retries; decisions meanwhile fail fast (no offline queue) */
    });
    // Sentinel and Cluster clients have no unref(): their sockets are closed by close() at stop.
    (this.#client as { unref?: () => void }).unref?.();
  }

  /** Whether the connection is up (commands are sent rather than refused at once). */
  get ready(): boolean {
    return this.#client.isReady;
  }

  /** Calls `listener` each time the connection becomes ready (after a reconnection too). */
  onReady(listener: () => void): void {
    this.#onReady.add(listener);
  }

  /** `{<keyPrefix>:<policy>}:<key>`. */
  keyOf(policy: string, key: string): string {
    return `{${this.config.keyPrefix}:${policy}}:${key}`;
  }

  /** One GCRA decision on Redis (`maxDelayUs` > 0: a delayed admission instead of a refusal when the wait fits). Rejects on an error or a timeout. `atUs`: tests only. */
  async gcra(policy: string, key: string, intervalUs: number, burst: number, maxDelayUs = 0, atUs?: number): Promise<Decision> {
    this.calls++;
    return decision(await this.#client.gcra(this.keyOf(policy, key), intervalUs, burst, maxDelayUs, atUs === undefined ? '' : String(Math.floor(atUs))));
  }

  /** One sliding-window decision on Redis. Rejects on an error or a timeout. `atMs`: tests only. */
  async slidingWindow(policy: string, key: string, limit: number, windowMs: number, atMs?: number): Promise<Decision> {
    this.calls++;
    return decision(await this.#client.slidingWindow(this.keyOf(policy, key), limit, windowMs, atMs === undefined ? '' : String(Math.floor(atMs * 1000))));
  }

  /** A lease id unique to this connection's process and thread. */
  newLease(): string {
    return `${this.#token}:${(this.#leases++).toString(36)}`;
  }

  /** Takes a concurrency slot as `lease`. Rejects on an error or a timeout. */
  async acquire(policy: string, key: string, limit: number, leaseTimeoutMs: number, lease: string): Promise<Decision> {
    this.calls++;
    return decision(await this.#client.concurrency(this.keyOf(policy, key), limit, leaseTimeoutMs, lease));
  }

  /** Gives a concurrency slot back. Rejects on an error or a timeout (the lease then ends at its expiry). */
  async release(policy: string, key: string, lease: string): Promise<void> {
    await this.#client.zRem(this.keyOf(policy, key), lease);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#onReady.clear();
    try {
      if (this.#client.isOpen) await this.#client.close();
      else this.#client.destroy();
    } catch {
      this.#client.destroy();
    }
  }
}

export const BREAKER_FAILURES = 5;
export const BREAKER_HALF_OPEN_MS = 2000;
/** Keys the negative cache holds per policy and thread; past it the oldest go. */
const NEGATIVE_CACHE_KEYS = 10_000;

/** A policy's negative cache and breaker in one thread; kept across reloads that leave the policy as it was. */
export class RedisPolicyState {
  /** Key → epoch ms until which Redis said it is refused. */
  readonly #refused = new Map<string, number>();
  #failures = 0;
  /** Epoch ms the breaker opened at, or undefined (closed). */
  #openedAt: number | undefined;
  #probing = false;
  /** Called when the breaker opens (true) or closes (false). */
  readonly #onBreaker: (open: boolean) => void;

  constructor(onBreaker: (open: boolean) => void = () => {}) {
    this.#onBreaker = onBreaker;
  }

  get breakerOpen(): boolean {
    return this.#openedAt !== undefined;
  }

  /** The refusal Redis gave `key`, while it lasts: no Redis call is needed. */
  refused(key: string, nowMs: number): Decision | undefined {
    const until = this.#refused.get(key);
    if (until === undefined) return undefined;
    if (until <= nowMs) {
      this.#refused.delete(key);
      return undefined;
    }
    return { allowed: false, remaining: 0, retryAfterMs: until - nowMs, resetAfterMs: until - nowMs, delayMs: 0 };
  }

  /**
   * Remembers a refusal from Redis, until its retry time less `earlyMs` (a
   * gcra `maxDelay`: the key may be admitted after a wait that much sooner).
   */
  remember(key: string, decision: Decision, nowMs: number, earlyMs = 0): void {
    if (decision.allowed || decision.retryAfterMs - earlyMs <= 0) return;
    this.#refused.delete(key);
    if (this.#refused.size >= NEGATIVE_CACHE_KEYS) {
      for (const [old, until] of this.#refused) {
        this.#refused.delete(old);
        if (until > nowMs) break; // dropped one still live: enough room made
      }
    }
    this.#refused.set(key, nowMs + decision.retryAfterMs - earlyMs);
  }

  /** The connection came back: an open breaker lets its probe through now rather than at its next 2 s mark. */
  halfOpen(nowMs: number): void {
    if (this.#openedAt !== undefined && !this.#probing) this.#openedAt = Math.min(this.#openedAt, nowMs - BREAKER_HALF_OPEN_MS);
  }

  /** Whether a call may go to Redis now: the breaker is closed, or half-open and this is its one probe. */
  mayCall(nowMs: number): boolean {
    if (this.#openedAt === undefined) return true;
    if (this.#probing || nowMs - this.#openedAt < BREAKER_HALF_OPEN_MS) return false;
    this.#probing = true;
    return true;
  }

  /** Until the breaker lets a probe through, ms (0 when closed). */
  retryAfterMs(nowMs: number): number {
    return this.#openedAt === undefined ? 0 : Math.max(0, BREAKER_HALF_OPEN_MS - (nowMs - this.#openedAt));
  }

  succeeded(): void {
    this.#failures = 0;
    this.#probing = false;
    if (this.#openedAt !== undefined) {
      this.#openedAt = undefined;
      this.#onBreaker(false);
    }
  }

  failed(nowMs: number): void {
    this.#failures++;
    if (this.#probing) {
      this.#probing = false;
      this.#openedAt = nowMs; // the probe failed: another 2 s
      return;
    }
    if (this.#openedAt === undefined && this.#failures >= BREAKER_FAILURES) {
      this.#openedAt = nowMs;
      this.#onBreaker(true);
    }
  }
}
