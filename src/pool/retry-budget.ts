/**
 * Retry budget for one pool: caps retries as a share of requests so that a
 * failing pool is not hit with up to `attempts + 1` times its normal load.
 *
 * Counts live in a sliding window of WINDOW_BUCKETS one-second buckets, kept
 * in a {@link RetryWindow}: one row of buckets per data plane, so that with
 * worker threads every worker's requests and retries count towards one budget
 * for the process, as in-flight counts do (in-flight.ts). Each row has a
 * single writer, its plane; a decision reads every row. Counting a request is
 * O(1) and allocation-free; a retry decision reads planes × WINDOW_BUCKETS
 * cells, which is cheap, and only failures pay it.
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
  readonly #cells: Int32Array;
  readonly #planes: number;
  /** Index of this plane's first cell. */
  readonly #base: number;
  /** Added to `nowMs` so that every thread's buckets share one clock (each thread's `performance.now()` has its own origin). */
  readonly #originMs: number;
  /** The latest second this plane has seen: a clock that goes back stays in it. */
  #second = Number.NEGATIVE_INFINITY;

  /**
   * @param budgetPercent - retries allowed as a percent of requests in the window (Envoy default 20).
   * @param minRetriesPerSecond - retries allowed in any one second regardless of the budget (usher default 3).
   * @param window - where the counts live, and which row this data plane writes; default a private window of one plane.
   * @param originMs - added to every `nowMs`; pass `performance.timeOrigin` when the window is shared between threads.
   */
  constructor(budgetPercent: number, minRetriesPerSecond: number, window: RetryWindowRow = new RetryWindow(1).row(0), originMs = 0) {
    this.#budgetPercent = budgetPercent;
    this.#minRetriesPerSecond = minRetriesPerSecond;
    this.#cells = window.cells;
    this.#planes = this.#cells.length / ROW_CELLS;
    this.#base = window.plane * ROW_CELLS;
    this.#originMs = originMs;
  }

  /** Counts one downstream request. */
  onRequest(nowMs: number): void {
    this.#cells[this.#ownBucket(nowMs) + REQUESTS]!++;
  }

  /** Grants and counts a retry if the rule in the class comment allows it; false means do not retry. */
  tryAcquireRetry(nowMs: number): boolean {
    const own = this.#ownBucket(nowMs);
    const { requests, retries, retriesThisSecond } = this.#sum(this.#second);
    const withinBudget = (retries + 1) * 100 <= this.#budgetPercent * requests;
    if (!withinBudget && retriesThisSecond >= this.#minRetriesPerSecond) return false;
    this.#cells[own + RETRIES]!++;
    return true;
  }

  /** Requests and retries counted in the window ending at `nowMs`, over every data plane. */
  stats(nowMs: number): { readonly requests: number; readonly retries: number } {
    this.#ownBucket(nowMs);
    const { requests, retries } = this.#sum(this.#second);
    return { requests, retries };
  }

  /** The first cell of this plane's bucket for `nowMs`, emptied first if it still holds an older second. */
  #ownBucket(nowMs: number): number {
    const second = Math.floor((nowMs + this.#originMs) / BUCKET_MS);
    if (second > this.#second) this.#second = second;
    const current = this.#second;
    const bucket = this.#base + (((current % WINDOW_BUCKETS) + WINDOW_BUCKETS) % WINDOW_BUCKETS) * BUCKET_CELLS;
    const cells = this.#cells;
    if (cells[bucket + STAMP] !== current) {
      cells[bucket + REQUESTS] = 0;
      cells[bucket + RETRIES] = 0;
      cells[bucket + STAMP] = current;
    }
    return bucket;
  }

  /** Sums every plane's buckets that fall in the window ending in `second`. */
  #sum(second: number): { requests: number; retries: number; retriesThisSecond: number } {
    const cells = this.#cells;
    let requests = 0;
    let retries = 0;
    let retriesThisSecond = 0;
    const oldest = second - WINDOW_BUCKETS;
    for (let i = 0; i < this.#planes * WINDOW_BUCKETS; i++) {
      const bucket = i * BUCKET_CELLS;
      const stamp = cells[bucket + STAMP]!;
      if (stamp <= oldest || stamp > second) continue;
      requests += cells[bucket + REQUESTS]!;
      retries += cells[bucket + RETRIES]!;
      if (stamp === second) retriesThisSecond += cells[bucket + RETRIES]!;
    }
    return { requests, retries, retriesThisSecond };
  }
}

/** Cells of a bucket: the second it counts (epoch seconds), its requests and its retries. */
const STAMP = 0;
const REQUESTS = 1;
const RETRIES = 2;
const BUCKET_CELLS = 3;
const ROW_CELLS = WINDOW_BUCKETS * BUCKET_CELLS;
/** The stamp of a bucket that never counted anything: no second is this old. */
const EMPTY = -0x80000000;

/** One data plane's row of a {@link RetryWindow}: the cells, and which row is its own. */
export interface RetryWindowRow {
  readonly cells: Int32Array;
  readonly plane: number;
}

/**
 * The retry counts of one pool, one row of buckets per data plane. With
 * worker threads its `SharedArrayBuffer` travels to each worker with the
 * pool's state; each plane writes only its own row (plain
 * stores: aligned 32-bit accesses do not tear), and a decision sums them all,
 * stale at most by what another thread is counting at that instant. Two
 * planes deciding in the same microsecond may both take the last retry of
 * the budget: the bound in {@link RetryBudget} holds per plane exactly and
 * overall within one retry per plane.
 */
export class RetryWindow {
  readonly cells: Int32Array;

  constructor(planes: number);
  constructor(shared: SharedArrayBuffer);
  constructor(planesOrShared: number | SharedArrayBuffer) {
    if (typeof planesOrShared === 'number') {
      if (!Number.isInteger(planesOrShared) || planesOrShared < 1) throw new RangeError(`planes must be an integer >= 1, got ${planesOrShared}`);
      this.cells = new Int32Array(new SharedArrayBuffer(4 * planesOrShared * ROW_CELLS));
      for (let i = STAMP; i < this.cells.length; i += BUCKET_CELLS) this.cells[i] = EMPTY;
    } else {
      this.cells = new Int32Array(planesOrShared);
    }
  }

  get planes(): number {
    return this.cells.length / ROW_CELLS;
  }

  /** The buffer, for a data plane in another thread. */
  get shared(): SharedArrayBuffer {
    return this.cells.buffer as SharedArrayBuffer;
  }

  /** The row data plane `plane` writes. */
  row(plane: number): RetryWindowRow {
    if (!Number.isInteger(plane) || plane < 0 || plane >= this.planes) throw new RangeError(`plane must be an integer in [0, ${this.planes - 1}], got ${plane}`);
    return { cells: this.cells, plane };
  }
}
