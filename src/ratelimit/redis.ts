/**
 * The Redis store of `store: redis` rate-limit policies: one budget per key
 * for every usher instance that uses the same server and `keyPrefix`.
 *
 * - **One script per decision** ({@link GCRA_SCRIPT}), sent with EVALSHA
 *   (node-redis `defineScript` loads it again on NOSCRIPT). It reads the time
 *   with Redis's own `TIME`, never an instance's clock, so instances whose
 *   clocks disagree still share one budget.
 * - **Keys** `{<keyPrefix>:<policy>}:<key>`: the hash tag puts a policy's keys
 *   on one Cluster slot, and the script touches only the one key it is given.
 * - **One client per thread** (the main thread and each worker make their own
 *   from the config): a short per-command timeout (`redis.timeout`, 20 ms by
 *   default; node-redis's own is seconds), no offline queue (a command while
 *   disconnected fails at once), reconnects with a capped backoff.
 * - **Per policy and thread** ({@link RedisPolicyState}): a negative cache
 *   (a key Redis just refused is refused here until its retry time, with no
 *   Redis call) and a breaker (open after {@link BREAKER_FAILURES}
 *   consecutive errors or timeouts, one probe after {@link BREAKER_HALF_OPEN_MS}).
 */
import { createClient, defineScript } from 'redis';
import type { RedisConfig } from '../config/types.ts';
import type { Decision } from './algorithms.ts';

/**
 * GCRA on one key, the same rule as the local `gcra` (algorithms.ts): the
 * state is the key's theoretical arrival time (TAT), µs on Redis's clock.
 * KEYS[1]: the key; ARGV[1]: the emission interval T (µs); ARGV[2]: burst B.
 * A request conforms when now ≥ TAT − B·T; it then moves TAT to
 * max(TAT, now) + T, stored with a PX expiry of TAT − now (when the state
 * stops limiting anything). A refusal writes nothing.
 * Returns {allowed 0/1, remaining, retry-after µs, reset-after µs}.
 * The TAT is written with %.0f: Lua's default number format keeps 14 digits,
 * and µs since the epoch have 16.
 */
export const GCRA_SCRIPT = `
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
local next_tat = tat + interval
local remaining = math.floor((now + tolerance + interval - next_tat) / interval + 1e-9)
if remaining < 0 then remaining = 0 end
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000))
return {1, remaining, 0, next_tat - now}
`;

const gcraScript = defineScript({
  NUMBER_OF_KEYS: 1,
  SCRIPT: GCRA_SCRIPT,
  parseCommand(parser, key: string, intervalUs: number, burst: number) {
    parser.pushKey(key);
    parser.push(String(intervalUs), String(burst));
  },
  transformReply: (reply: unknown) => reply as unknown as readonly number[],
});

function makeClient(config: RedisConfig) {
  return createClient({
    url: config.url,
    disableOfflineQueue: true,
    commandOptions: { timeout: config.timeoutMs, rejectInFlight: true },
    socket: {
      connectTimeout: Math.max(1000, config.timeoutMs),
      // 50 ms, doubling up to 2 s, with jitter so instances do not reconnect in step.
      reconnectStrategy: (retries: number) => Math.min(2000, 50 * 2 ** Math.min(retries, 6)) + Math.floor(Math.random() * 50),
    },
    scripts: { gcra: gcraScript },
  });
}

type Client = ReturnType<typeof makeClient>;

/** A thread's connection to the configured Redis. */
export class RedisRateLimitClient {
  readonly config: RedisConfig;
  readonly #client: Client;
  /** Script calls sent (for tests: the negative cache makes none). */
  calls = 0;
  #closed = false;

  constructor(config: RedisConfig, onError: (error: Error) => void = () => {}) {
    this.config = config;
    this.#client = makeClient(config);
    // Without a listener an 'error' event would crash the process; failures are counted per decision instead.
    this.#client.on('error', onError);
    this.#client.connect().catch(() => {
      /* reconnectStrategy retries; decisions meanwhile fail fast (no offline queue) */
    });
    this.#client.unref();
  }

  /** Whether the connection is up (commands are sent rather than refused at once). */
  get ready(): boolean {
    return this.#client.isReady;
  }

  /** `{<keyPrefix>:<policy>}:<key>`. */
  keyOf(policy: string, key: string): string {
    return `{${this.config.keyPrefix}:${policy}}:${key}`;
  }

  /** One GCRA decision on Redis. Rejects on an error or a timeout. */
  async gcra(policy: string, key: string, intervalUs: number, burst: number): Promise<Decision> {
    this.calls++;
    const reply = await this.#client.gcra(this.keyOf(policy, key), intervalUs, burst);
    const [allowed, remaining, retryUs, resetUs] = reply.map(Number) as [number, number, number, number];
    return { allowed: allowed === 1, remaining, retryAfterMs: retryUs / 1000, resetAfterMs: resetUs / 1000, delayMs: 0 };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
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

  /** Remembers a refusal from Redis. */
  remember(key: string, decision: Decision, nowMs: number): void {
    if (decision.allowed || decision.retryAfterMs <= 0) return;
    this.#refused.delete(key);
    if (this.#refused.size >= NEGATIVE_CACHE_KEYS) {
      for (const [old, until] of this.#refused) {
        this.#refused.delete(old);
        if (until > nowMs) break; // dropped one still live: enough room made
      }
    }
    this.#refused.set(key, nowMs + decision.retryAfterMs);
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
