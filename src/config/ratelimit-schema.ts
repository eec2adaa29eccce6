/**
 * The schema of the top-level `rateLimits` (named policies) and of the
 * `rateLimit` route filter that uses them (part of `schema.ts`, kept apart
 * for size). Unknown policy names in a route are reported by `checks.ts`.
 */
import { z } from 'zod';
import type { RateLimitPolicyConfig } from './types.ts';
import { documented, duration, flag, integerIn, name } from './values.ts';
import { MAX_WINDOW_LIMIT } from '../ratelimit/algorithms.ts';
import { parseKeyPart } from '../ratelimit/key.ts';

export const RATE_LIMIT_DEFAULTS = { algorithm: 'gcra', burst: 0, ipv6Prefix: 64, status: 429, maxKeys: 100_000, leaseTimeout: '60s' } as const;
export const RATE_LIMIT_ALGORITHMS = ['gcra', 'sliding-window', 'concurrency'] as const;

const PERIODS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000 };
const RATE_EXPECTED = 'expected a rate such as 100/s, 600/m or 5000/h';

/** `N/s`, `N/m`, `N/h` → requests per period. */
export function parseRate(text: string): { count: number; periodMs: number } | string {
  const match = /^\s*(\d+(?:\.\d+)?)\s*\/\s*([smh])\s*$/.exec(text);
  if (match === null) return RATE_EXPECTED;
  const count = Number(match[1]);
  const periodMs = PERIODS[match[2]!]!;
  if (!(count > 0)) return 'the rate must be above 0';
  if ((periodMs * 1000) / count < 1) return 'the rate must be at most 1000000/s';
  return { count, periodMs };
}

const rate = documented(
  z.string({ error: RATE_EXPECTED }).transform((text, ctx) => {
    const parsed = parseRate(text);
    if (typeof parsed === 'string') {
      ctx.issues.push({ code: 'custom', message: parsed, input: text });
      return z.NEVER;
    }
    return parsed;
  }),
  { description: '`gcra`: the sustained rate, `N/s`, `N/m` or `N/h` (one request every period ÷ N).', examples: ['100/s', '600/m'] },
);

const keyPart = documented(
  z.string({ error: 'expected a key part' }).refine((text) => parseKeyPart(text) !== undefined, { error: 'expected client-ip, header:<name>, cookie:<name>, route, method or host' }),
  { description: 'A key part.' },
);

const policySchema = documented(
  z.strictObject({
    algorithm: documented(z.enum(RATE_LIMIT_ALGORITHMS, { error: `expected one of ${RATE_LIMIT_ALGORITHMS.join(', ')}` }), { description: '`gcra`: a rate with a burst (nginx limit_req); `sliding-window`: `limit` requests per `window` (HAProxy, Cloudflare); `concurrency`: at most `limit` requests in flight.', examples: ['sliding-window'] }).default(RATE_LIMIT_DEFAULTS.algorithm),
    rate: rate.optional(),
    burst: integerIn('burst', 0, 1_000_000, { description: '`gcra`: requests admitted back to back above the rate (nginx `burst` with `nodelay`): burst B lets B + 1 through at once.', examples: [50] }).optional(),
    maxDelay: duration({ description: '`gcra`: a request over the burst that would conform after waiting at most this long is delayed, not refused (nginx `burst` without `nodelay`). Absent: refuse at once.', examples: ['500ms'] }).optional(),
    limit: integerIn('limit', 1, MAX_WINDOW_LIMIT, { description: '`sliding-window`: requests per `window`; `concurrency`: requests in flight.', examples: [1000] }).optional(),
    window: duration({ description: '`sliding-window`: the window, e.g. `1m`, `1h`, `1d`.', examples: ['1h'] }, { ms: 1000, why: 'shorter windows are what gcra is for' }).optional(),
    leaseTimeout: duration({ description: '`concurrency`: a request still counted after this long stops counting, so a release that never came (a crashed instance, Redis unreachable at the end of a request) cannot hold a slot forever.', examples: ['5m'] }).optional(),
    key: documented(z.array(keyPart, { error: 'expected a list of key parts' }).min(1, { error: 'list at least one key part' }), { description: 'What is counted together, parts combined: `client-ip`, `header:<name>`, `cookie:<name>`, `route`, `method`, `host`. A request whose header or cookie is absent is not counted (it passes this policy).', examples: [['client-ip'], ['header:x-api-key', 'route']] }).prefault(() => ['client-ip']),
    ipv6Prefix: integerIn('ipv6Prefix', 1, 128, { description: 'Bits of an IPv6 client address kept in a `client-ip` key: one user usually holds a whole /64.', examples: [56] }).default(RATE_LIMIT_DEFAULTS.ipv6Prefix),
    dryRun: flag({ description: 'Count and report (metrics, headers), never refuse.', examples: [true] }).default(false),
    status: documented(z.literal([429, 503], { error: 'expected 429 or 503' }), { description: 'Status of a refused request.', examples: [503] }).default(RATE_LIMIT_DEFAULTS.status),
    xRateLimitHeaders: flag({ description: 'Also send X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset.', examples: [true] }).default(false),
    store: documented(z.enum(['local', 'redis'], { error: 'expected local or redis' }), { description: 'Where the budget lives: `local` (this process, shared by its worker threads) or `redis` (one budget for every usher instance using the top-level `redis`: one script call per decision on Redis\'s clock, every algorithm).', examples: ['redis'] }).default('local'),
    onStoreError: documented(z.enum(['local', 'open', 'closed'], { error: 'expected local, open or closed' }), { description: '`store: redis`: what decides when Redis fails, times out or its breaker is open: `local` (this process\'s table, enforcing limit ÷ the live usher instances), `open` (admit), `closed` (503 with Retry-After).', examples: ['closed'] }).default('local'),
    maxKeys: integerIn('maxKeys', 1, 16_000_000, { description: 'Keys the process remembers for this policy (16 B × 4/3 each, allocated at start); beyond it the oldest in a probe window are evicted (`usher_ratelimit_evictions_total`).', examples: [1_000_000] }).default(RATE_LIMIT_DEFAULTS.maxKeys),
  }, { error: 'expected a rate-limit policy mapping' }).transform((p, ctx): RateLimitPolicyConfig => {
    const common = { key: p.key, ipv6Prefix: p.ipv6Prefix, dryRun: p.dryRun, status: p.status, xRateLimitHeaders: p.xRateLimitHeaders, maxKeys: p.maxKeys, store: p.store, onStoreError: p.onStoreError };
    const foreign = (keys: readonly (keyof typeof p)[]): boolean => {
      let bad = false;
      for (const key of keys) {
        if (p[key] === undefined) continue;
        ctx.issues.push({ code: 'custom', message: `${key} does not apply to algorithm ${p.algorithm}`, input: p[key], path: [key] });
        bad = true;
      }
      return bad;
    };
    const missing = (key: keyof typeof p): boolean => {
      if (p[key] !== undefined) return false;
      ctx.issues.push({ code: 'custom', message: `algorithm ${p.algorithm} needs ${key}`, input: p, path: [key] });
      return true;
    };
    switch (p.algorithm) {
      case 'gcra':
        if (foreign(['limit', 'window', 'leaseTimeout']) || missing('rate')) return z.NEVER;
        return { ...common, algorithm: 'gcra', rate: p.rate!, burst: p.burst ?? RATE_LIMIT_DEFAULTS.burst, maxDelayMs: p.maxDelay ?? 0 };
      case 'sliding-window':
        if (foreign(['rate', 'burst', 'maxDelay', 'leaseTimeout']) || missing('limit') || missing('window')) return z.NEVER;
        return { ...common, algorithm: 'sliding-window', limit: p.limit!, windowMs: p.window! };
      case 'concurrency':
        if (foreign(['rate', 'burst', 'maxDelay', 'window']) || missing('limit')) return z.NEVER;
        return { ...common, algorithm: 'concurrency', limit: p.limit!, leaseTimeoutMs: p.leaseTimeout ?? 60_000 };
    }
  }),
  { description: 'A rate-limit policy: an algorithm, its numbers and the key it counts by. See docs/ratelimit.md.', examples: [{ rate: '100/s', burst: 50, key: ['client-ip'] }, { algorithm: 'sliding-window', limit: 1000, window: '1h', key: ['header:x-api-key'] }, { algorithm: 'concurrency', limit: 10 }] },
);

/** Top-level `rateLimits`. */
export const rateLimitsSchema = documented(
  z.record(name('rate-limit policy', { description: 'Policy name (used in routes, metrics and the RateLimit headers).' }), policySchema, { error: 'expected a mapping of policy name to policy' }),
  { description: 'Named rate-limit policies, applied by routes\' `rateLimit` filters. One budget per key for the whole process, shared by its worker threads; a policy whose settings do not change keeps its counts across reloads.', examples: [{ api: { rate: '100/s', burst: 50, key: ['client-ip'] } }] },
);

/** The `rateLimit` filter's value: the policies a request must all pass. */
export const rateLimitFilterSchema = documented(
  z.array(name('rate-limit policy', { description: 'A policy of the top-level `rateLimits`.' }), { error: 'expected a list of policy names' })
    .min(1, { error: 'list at least one policy' })
    .refine((list) => new Set(list).size === list.length, { error: 'list each policy once' }),
  { description: 'Rate-limit the route\'s requests by the named policies of the top-level `rateLimits`: a request refused by any of them gets 429 (or the policy\'s `status`) with Retry-After, and every response carries RateLimit and RateLimit-Policy for the tightest policy. See docs/ratelimit.md.', examples: [['api'], ['api', 'hourly']] },
);
