/**
 * The rate-limit algorithms as pure functions of a key's stored state (one
 * 64-bit word, see table.ts) and the time: no clock, no I/O, so each is tested
 * with exact expectations (test/unit/ratelimit-algorithms.test.ts). State 0
 * is a key never seen; every algorithm reads it as "nothing counted".
 *
 * - **GCRA** (nginx `limit_req`, go-redis/redis_rate): the word is the key's
 *   theoretical arrival time (TAT) in µs since the epoch. A request conforms
 *   when `now ≥ TAT − burst × T` (T: emission interval); it then moves TAT
 *   to `max(TAT, now) + T`. Burst B admits B + 1 back-to-back requests, as
 *   nginx `burst=B nodelay` does.
 * - **Sliding window** (HAProxy freq_ctr, Cloudflare): the counts of the
 *   current and previous fixed windows, the previous weighted by the share of
 *   it the sliding window still covers. Only admitted requests are counted.
 * - **Concurrency**: requests in flight; the word also holds when the key
 *   last changed, so a count nobody touched for `leaseTimeout` is dropped.
 */

/** One decision. */
export interface Decision {
  readonly allowed: boolean;
  /** Requests the key may still make right now (0 when refused). */
  readonly remaining: number;
  /** Until the key's budget is whole again, ms. */
  readonly resetAfterMs: number;
  /** Refused: until a request would be admitted, ms; 0 when allowed. */
  readonly retryAfterMs: number;
  /** Admitted after waiting this long (GCRA with `maxDelay`), ms; 0 otherwise. */
  readonly delayMs: number;
}

/** A decision and the state to store (undefined: leave the state as it is). */
export interface Step {
  readonly decision: Decision;
  readonly next: bigint | undefined;
}

export interface GcraParams {
  /** Emission interval T: one request per this many µs (1e6 / rate per second). */
  readonly intervalUs: number;
  /** Extra requests admitted back to back (nginx `burst`). */
  readonly burst: number;
  /** Longest wait that turns a refusal into a delayed admission, µs; 0: never delay. */
  readonly maxDelayUs: number;
}

/** GCRA at `nowUs` (µs since the epoch) on stored TAT `state`. */
export function gcra(state: bigint, nowUs: number, p: GcraParams): Step {
  const stored = Number(state);
  const tat = stored > nowUs ? stored : nowUs;
  const tolerance = p.burst * p.intervalUs;
  const allowAt = tat - tolerance;
  if (nowUs < allowAt) {
    const waitUs = allowAt - nowUs;
    if (waitUs <= p.maxDelayUs) {
      const next = tat + p.intervalUs;
      return { decision: { allowed: true, remaining: 0, resetAfterMs: (next - nowUs) / 1000, retryAfterMs: 0, delayMs: waitUs / 1000 }, next: BigInt(Math.round(next)) };
    }
    return { decision: { allowed: false, remaining: 0, resetAfterMs: (tat - nowUs) / 1000, retryAfterMs: waitUs / 1000, delayMs: 0 }, next: undefined };
  }
  const next = tat + p.intervalUs;
  const remaining = Math.max(0, Math.floor((nowUs + tolerance + p.intervalUs - next) / p.intervalUs + 1e-9));
  return { decision: { allowed: true, remaining, resetAfterMs: (next - nowUs) / 1000, retryAfterMs: 0, delayMs: 0 }, next: BigInt(Math.round(next)) };
}

/** Whether a GCRA state no longer limits anything at `nowUs` (its slot may be reused). */
export function gcraExpired(state: bigint, nowUs: number): boolean {
  return Number(state) <= nowUs;
}

export interface WindowParams {
  /** Requests per window, at most {@link MAX_WINDOW_LIMIT}. */
  readonly limit: number;
  readonly windowMs: number;
}

/** Counts are 21-bit, window numbers 22-bit (wrapping: 48 days of 1 s windows, 478 years of 1 h ones). */
export const MAX_WINDOW_LIMIT = 2 ** 21 - 1;
const COUNT_BITS = 21n;
const COUNT_MASK = (1n << COUNT_BITS) - 1n;
const INDEX_MOD = 2 ** 22;

function packWindow(index: number, previous: number, current: number): bigint {
  return (BigInt(index % INDEX_MOD) << (2n * COUNT_BITS)) | (BigInt(previous) << COUNT_BITS) | BigInt(current);
}

/** The previous and current counts of a stored window state as seen from window `index`. */
function unpackWindow(state: bigint, index: number): { previous: number; current: number } {
  if (state === 0n) return { previous: 0, current: 0 };
  const stored = Number(state >> (2n * COUNT_BITS));
  const previous = Number((state >> COUNT_BITS) & COUNT_MASK);
  const current = Number(state & COUNT_MASK);
  const age = (((index - stored) % INDEX_MOD) + INDEX_MOD) % INDEX_MOD;
  if (age === 0) return { previous, current };
  if (age === 1) return { previous: current, current: 0 };
  return { previous: 0, current: 0 };
}

/** Sliding-window counter at `nowMs` (ms since the epoch). */
export function slidingWindow(state: bigint, nowMs: number, p: WindowParams): Step {
  const index = Math.floor(nowMs / p.windowMs);
  const start = index * p.windowMs;
  const { previous, current } = unpackWindow(state, index);
  const weight = 1 - (nowMs - start) / p.windowMs;
  const estimate = previous * weight + current;
  const resetAfter = (current > 0 ? start + 2 * p.windowMs : start + p.windowMs) - nowMs;
  if (estimate + 1 <= p.limit) {
    const after = estimate + 1;
    return {
      decision: { allowed: true, remaining: Math.max(0, Math.floor(p.limit - after)), resetAfterMs: start + 2 * p.windowMs - nowMs, retryAfterMs: 0, delayMs: 0 },
      next: packWindow(index, previous, current + 1),
    };
  }
  return { decision: { allowed: false, remaining: 0, resetAfterMs: resetAfter, retryAfterMs: windowRetry(previous, current, nowMs, start, p), delayMs: 0 }, next: undefined };
}

/** Until `previous × weight + current + 1 ≤ limit`, ms. */
function windowRetry(previous: number, current: number, nowMs: number, start: number, p: WindowParams): number {
  const room = p.limit - 1;
  if (current <= room && previous > 0) {
    // Within this window, once the previous window's weight has dropped to (room - current) / previous.
    const at = start + (1 - (room - current) / previous) * p.windowMs;
    return Math.max(0, at - nowMs);
  }
  // Next window: this one's count becomes the weighted one.
  const next = start + p.windowMs;
  const at = current <= 0 ? next : next + Math.max(0, 1 - room / current) * p.windowMs;
  return Math.max(0, at - nowMs);
}

/** Whether a window state counts nothing any more at `nowMs`. */
export function windowExpired(state: bigint, nowMs: number, windowMs: number): boolean {
  const { previous, current } = unpackWindow(state, Math.floor(nowMs / windowMs));
  return previous === 0 && current === 0;
}

export interface ConcurrencyParams {
  readonly limit: number;
  /** A count no acquire or release touched for this long is dropped. */
  readonly leaseTimeoutMs: number;
}

/** In-flight counts are 21-bit; the rest of the word is the last change in ms since the epoch. */
export const MAX_CONCURRENCY_LIMIT = 2 ** 21 - 1;

function inFlight(state: bigint, nowMs: number, leaseTimeoutMs: number): number {
  if (state === 0n) return 0;
  const at = Number(state >> COUNT_BITS);
  return nowMs - at > leaseTimeoutMs ? 0 : Number(state & COUNT_MASK);
}

function packFlight(nowMs: number, count: number): bigint {
  return (BigInt(Math.floor(nowMs)) << COUNT_BITS) | BigInt(count);
}

/** Takes a slot when fewer than `limit` are in flight. A refusal says retry in 1 s: when a slot frees is unknown. */
export function acquire(state: bigint, nowMs: number, p: ConcurrencyParams): Step {
  const count = inFlight(state, nowMs, p.leaseTimeoutMs);
  if (count >= p.limit) return { decision: { allowed: false, remaining: 0, resetAfterMs: 1000, retryAfterMs: 1000, delayMs: 0 }, next: undefined };
  return { decision: { allowed: true, remaining: p.limit - count - 1, resetAfterMs: 0, retryAfterMs: 0, delayMs: 0 }, next: packFlight(nowMs, count + 1) };
}

/** Gives a slot back (never below zero). */
export function release(state: bigint, nowMs: number, p: ConcurrencyParams): bigint {
  const count = inFlight(state, nowMs, p.leaseTimeoutMs);
  return count <= 1 ? 0n : packFlight(nowMs, count - 1);
}

/** Whether nothing is in flight on a concurrency state at `nowMs`. */
export function concurrencyExpired(state: bigint, nowMs: number, leaseTimeoutMs: number): boolean {
  return inFlight(state, nowMs, leaseTimeoutMs) === 0;
}
