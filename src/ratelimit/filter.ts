/**
 * The `rateLimit` filter: a route's requests against named policies
 * (top-level `rateLimits`), every policy's budget shared by the whole
 * process (table.ts, store.ts).
 *
 * - **request**: each policy reads its key (an absent header or cookie: the
 *   policy does not count the request) and decides. A refusal by any enforced
 *   policy answers 429 (or the policy's `status`) with Retry-After, a
 *   problem+json body naming the violated policies, and RateLimit /
 *   RateLimit-Policy (IETF draft) for the tightest one; concurrency slots
 *   taken for the request by other policies are given back at once. A gcra
 *   policy with `maxDelay` may instead admit the request after a wait.
 * - **response head**: RateLimit and RateLimit-Policy (and X-RateLimit-* when
 *   asked) for the tightest policy, replacing any the backend or a cache sent.
 * - **end** (a built-in hook, `onEnd`): concurrency slots are given back when
 *   the request is over, however it ended. A per-slot timer (`leaseTimeout`)
 *   gives back one that was never released (a request dropped between its
 *   admission and its exchange); a thread that dies takes its timers with it,
 *   and the table then drops a key's count once nothing touched it for
 *   `leaseTimeout`.
 */
import type { LocalResponse } from '../filter/filter.ts';
import type { FilterRequest, FilterResponse } from '../filter/filter.ts';
import type { InternalFilter } from '../filter/chain.ts';
import { epochNow, type Limiter, type PolicyDecision } from './limiter.ts';

/** What the request phase leaves for the response and end phases. */
interface Admitted {
  /** The policy whose numbers go in the headers, or undefined (no enforced policy counted the request). */
  readonly tightest: PolicyDecision | undefined;
  /** Concurrency slots to give back. */
  readonly leases: Lease[];
}

interface Lease {
  readonly decision: PolicyDecision;
  timer: NodeJS.Timeout | undefined;
}

const PROBLEM_QUOTA = 'https://iana.org/assignments/http-problem-types#quota-exceeded';
const PROBLEM_CAPACITY = 'https://iana.org/assignments/http-problem-types#temporary-reduced-capacity';

/** Whole seconds, rounded up. */
function seconds(ms: number): number {
  return Math.max(0, Math.ceil(ms / 1000 - 1e-9));
}

/** The header fields describing `tightest`: `[name, value, ...]`. */
function limitFields(tightest: PolicyDecision): string[] {
  const { limiter, decision } = tightest;
  const reset = seconds(decision.allowed ? decision.resetAfterMs : Math.max(decision.retryAfterMs, 1000));
  const fields = ['ratelimit-policy', limiter.policyField, 'ratelimit', `"${limiter.name}";r=${decision.remaining};t=${reset}`];
  if (limiter.config.xRateLimitHeaders) fields.push('x-ratelimit-limit', String(limiter.quota), 'x-ratelimit-remaining', String(decision.remaining), 'x-ratelimit-reset', String(reset));
  return fields;
}

/** Of two decisions, the one a client should heed: a refusal over an admission, then the longer wait, then fewer remaining. */
function tighter(a: PolicyDecision | undefined, b: PolicyDecision): PolicyDecision {
  if (a === undefined) return b;
  if (a.decision.allowed !== b.decision.allowed) return a.decision.allowed ? b : a;
  if (!a.decision.allowed) return b.decision.retryAfterMs > a.decision.retryAfterMs ? b : a;
  return b.decision.remaining < a.decision.remaining ? b : a;
}

export interface RateLimitFilterOptions {
  /** Epoch ms; tests pass their own clock. */
  readonly now?: () => number;
}

/** The filter of one route over `limiters` (in the order listed). */
export function rateLimitFilter(limiters: readonly Limiter[], options: RateLimitFilterOptions = {}): InternalFilter {
  const now = options.now ?? epochNow;
  const admitted = new WeakMap<FilterRequest, Admitted>();
  const hasConcurrency = limiters.some((limiter) => limiter.config.algorithm === 'concurrency');
  const hasRemote = limiters.some((limiter) => limiter.remote !== undefined);

  const giveBack = (leases: readonly Lease[]): void => {
    if (leases.length === 0) return;
    const at = now();
    for (const lease of leases) {
      if (lease.timer === undefined) continue; // given back already
      clearTimeout(lease.timer);
      lease.timer = undefined;
      lease.decision.limiter.release(lease.decision, at);
    }
  };

  /** The request phase's answer from every policy's decision (undefined: the policy did not count the request). */
  const conclude = (request: FilterRequest, made: readonly (PolicyDecision | undefined)[]): LocalResponse | undefined | Promise<undefined> => {
    let tightest: PolicyDecision | undefined;
    let refusal: PolicyDecision | undefined;
    let violated: string[] | undefined;
    let delayMs = 0;
    let leases: Lease[] | undefined;
    for (const one of made) {
      if (one === undefined) continue;
      const { limiter, decision } = one;
      if (decision.allowed && limiter.config.algorithm === 'concurrency') {
        const lease: Lease = { decision: one, timer: undefined };
        lease.timer = setTimeout(() => giveBack([lease]), limiter.config.leaseTimeoutMs).unref();
        (leases ??= []).push(lease);
      }
      if (limiter.config.dryRun) continue; // counted (dry_run_limited); never refuses, never shown
      tightest = tighter(tightest, one);
      if (!decision.allowed) {
        refusal = tighter(refusal, one);
        (violated ??= []).push(limiter.name);
      } else if (decision.delayMs > delayMs) delayMs = decision.delayMs;
    }
    if (refusal !== undefined) {
      if (leases !== undefined) giveBack(leases);
      // Redis could not decide under onStoreError: closed: 503, whatever the policy's status.
      const status = refusal.unavailable === true ? 503 : refusal.limiter.config.status;
      const fields = limitFields(refusal);
      const headers: Record<string, string> = { 'content-type': 'application/problem+json', 'retry-after': String(Math.max(1, seconds(refusal.decision.retryAfterMs))), 'cache-control': 'no-store' };
      for (let i = 0; i < fields.length; i += 2) headers[fields[i]!] = fields[i + 1]!;
      const body = JSON.stringify(
        status === 429
          ? { type: PROBLEM_QUOTA, title: 'Too Many Requests', status, 'violated-policies': violated }
          : { type: PROBLEM_CAPACITY, title: 'Service Unavailable', status, 'violated-policies': violated },
      );
      return { status, headers, body };
    }
    if (tightest !== undefined || leases !== undefined) admitted.set(request, { tightest, leases: leases ?? [] });
    if (delayMs <= 0) return undefined;
    return new Promise<undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), delayMs);
      // The client left: the chain stops waiting, and the end phase gives any slot back.
      request.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve(undefined);
      }, { once: true });
    });
  };

  return {
    name: 'rateLimit',
    onRequest(request: FilterRequest): LocalResponse | undefined | Promise<LocalResponse | undefined> {
      const at = now();
      if (!hasRemote) {
        const made: (PolicyDecision | undefined)[] = [];
        for (const limiter of limiters) {
          const key = limiter.keyOf(request);
          made.push(key === undefined ? undefined : limiter.decide(key, at));
        }
        return conclude(request, made);
      }
      // A `store: redis` policy: the request waits for Redis (bounded by redis.timeout).
      return Promise.all(limiters.map((limiter) => {
        const key = limiter.keyOf(request);
        if (key === undefined) return undefined;
        return limiter.remote === undefined ? limiter.decide(key, at) : limiter.decideRemote(key, at);
      })).then((made) => conclude(request, made));
    },
    onResponse(response: FilterResponse, request: FilterRequest): void {
      const state = admitted.get(request);
      if (state?.tightest === undefined) return;
      const fields = limitFields(state.tightest);
      for (let i = 0; i < fields.length; i += 2) response.setHeader(fields[i]!, fields[i + 1]!);
    },
    ...(hasConcurrency
      ? {
          onEnd(request: FilterRequest): void {
            const state = admitted.get(request);
            if (state !== undefined) giveBack(state.leases);
          },
        }
      : {}),
  };
}
