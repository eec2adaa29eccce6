/**
 * Retry budget for one pool: caps retries as a share of requests so that a
 * failing pool is not hit with up to `attempts + 1` times its normal load.
 *
 * Counts live in a sliding window of WINDOW_BUCKETS one-second buckets: two
 * fixed `Float64Array` rings plus running sums, so every call is O(1)
 * amortised and allocation-free (a time jump clears at most WINDOW_BUCKETS
 * buckets).
 */

/** Length of one bucket. */
const BUCKET_MS = 1000;
/** Buckets in the window: 10 s. */
const WINDOW_BUCKETS = 10;

/**
 * Decides whether a failed request may be retried. Call `onRequest` once per
 * downstream request (not per attempt) and `tryAcquireRetry` before each
 * retry; a refused retry returns the failure to the client.
 *
 * **Rule.** A retry is granted when either
 * 1. counting it, the retries in the window stay within `budgetPercent` of
 *    the requests in the window:
 *    `(retries + 1) × 100 ≤ budgetPercent × requests`; or
 * 2. fewer than `minRetriesPerSecond` retries were granted in the current
 *    one-second bucket, so a quiet pool can still retry (at 1 request/s
 *    a 20% budget alone allows 2 retries per 10 s).
 * The window is the current bucket and the nine before it.
 *
 * **Bound.** Over any run, `retries ≤ budgetPercent / 100 × requests +
 * minRetriesPerSecond × seconds`, where `seconds` counts the one-second
 * buckets touched. Proof: let g be the last rule-1 grant, in bucket b.
 * Rule 1 held at g, so the retries in buckets b-9..b up to g are within
 * the budget of the requests in b-9..b. Every retry after g, and every
 * retry in a bucket after b' (the bucket of the last rule-1 grant before
 * b-9) that lies outside b-9..b, came from rule 2, which grants at most
 * `minRetriesPerSecond` per bucket. Repeat from that grant: its window
 * b'-9..b' ends before b-9, so no request is counted twice.
 *
 * **Why a rate window, not Envoy's concurrency.** Envoy's `RetryBudget`
 * (`circuit_breaker.proto`: `budget_percent` 20%, `min_retry_concurrency` 3)
 * limits retries *in flight* to a share of requests in flight. usher limits
 * retries *granted over the last 10 s* instead, because:
 * - the storm that budgets exist for is fast failures (connection refused,
 *   instant 503s), and those keep concurrency near zero, so a concurrency
 *   limit barely holds them back while a rate limit does;
 * - there is no `release` to pair with each grant on every error, timeout
 *   and client-abort path, so no leak can shrink the budget for good.
 * The defaults keep Envoy's numbers: 20%, and 3 retries per second where
 * Envoy allows 3 concurrent.
 *
 * Only retries that send a request to a backend again are charged; a retry
 * after a connect failure is not (see `mayRetry` in retry-policy.ts).
 */
export class RetryBudget {
  readonly #budgetPercent: number;
  readonly #minRetriesPerSecond: number;
  readonly #requests = new Float64Array(WINDOW_BUCKETS);
  readonly #retries = new Float64Array(WINDOW_BUCKETS);
  #windowRequests = 0;
  #windowRetries = 0;
  /** Index (nowMs / BUCKET_MS, floored) of the current bucket; -Infinity before the first call. */
  #second = Number.NEGATIVE_INFINITY;
  #slot = 0;

  /**
   * @param budgetPercent - retries allowed as a percent of requests in the window (Envoy default 20).
   * @param minRetriesPerSecond - retries allowed in any one second regardless of the budget (usher default 3).
   */
  constructor(budgetPercent: number, minRetriesPerSecond: number) {
    this.#budgetPercent = budgetPercent;
    this.#minRetriesPerSecond = minRetriesPerSecond;
  }

  /** Counts one downstream request. */
  onRequest(nowMs: number): void {
    this.#advance(nowMs);
    this.#requests[this.#slot]!++;
    this.#windowRequests++;
  }

  /** Grants and counts a retry if the rule in the class comment allows it; false means do not retry. */
  tryAcquireRetry(nowMs: number): boolean {
    this.#advance(nowMs);
    const withinBudget = (this.#windowRetries + 1) * 100 <= this.#budgetPercent * this.#windowRequests;
    if (!withinBudget && this.#retries[this.#slot]! >= this.#minRetriesPerSecond) return false;
    this.#retries[this.#slot]!++;
    this.#windowRetries++;
    return true;
  }

  /** Requests and retries counted in the window ending at `nowMs`. */
  stats(nowMs: number): { readonly requests: number; readonly retries: number } {
    this.#advance(nowMs);
    return { requests: this.#windowRequests, retries: this.#windowRetries };
  }

  /** Moves the window to `nowMs`, emptying the buckets it leaves behind. A clock that goes back stays in the current bucket. */
  #advance(nowMs: number): void {
    const second = Math.floor(nowMs / BUCKET_MS);
    if (!(second > this.#second)) return;
    const gap = second - this.#second;
    if (gap >= WINDOW_BUCKETS) {
      this.#requests.fill(0);
      this.#retries.fill(0);
      this.#windowRequests = 0;
      this.#windowRetries = 0;
    } else {
      for (let i = 0; i < gap; i++) {
        const slot = (this.#slot + 1 + i) % WINDOW_BUCKETS;
        this.#windowRequests -= this.#requests[slot]!;
        this.#windowRetries -= this.#retries[slot]!;
        this.#requests[slot] = 0;
        this.#retries[slot] = 0;
      }
    }
    this.#second = second;
    this.#slot = ((second % WINDOW_BUCKETS) + WINDOW_BUCKETS) % WINDOW_BUCKETS;
  }
}
