/**
 * Passive health (outlier detection) for one pool: a backend whose requests
 * fail `consecutiveFailures` times in a row is ejected for a while, without
 * waiting for an active health check to notice.
 *
 * Semantics follow Envoy's consecutive-5xx detector (`outlier_detection.proto`,
 * `arch_overview/upstream/outlier.rst`), checked per failure instead of on
 * Envoy's 10 s sweep:
 *
 * - **Ejection length.** The n-th ejection lasts `ejectionTimeMs × n`, capped
 *   at `maxEjectionTimeMs` (Envoy `base_ejection_time`, `max_ejection_time`).
 *   Like Envoy, the counter stops growing once that product reaches the cap,
 *   so a backend that failed for an hour does not need an hour to earn its
 *   short ejections back.
 * - **Forgiveness.** The counter drops by one (not below 0) for every full
 *   `ejectionTimeMs` the backend spends back in rotation (Envoy decrements it
 *   on each sweep that finds the host not ejected). usher computes this
 *   lazily, when the next ejection happens, from `OutlierState.returnedAt`:
 *   no timer, and the result is the same because the counter is only read
 *   to size an ejection. So `ejections` may read high between ejections.
 * - **Cap on ejected backends.** With `n = backendCount()` and
 *   `p = maxEjectionPercent`, at most `max(1, floor(n × p / 100))` backends
 *   are ejected at once when `p > 0`, and none when `p = 0`. The floor is
 *   current Envoy's check, the share *after* the ejection must be at most p
 *   (envoyproxy/envoy#27909; before it, Envoy tested the share before the
 *   ejection and ejected 2 of 3 at 50%, #26877). The "at least one" is
 *   Envoy's `always_eject_one_host`, off by default there but on in usher
 *   because the config promises it: at 10% no pool under ten backends
 *   could eject anything otherwise. With 2 or 3 backends at 50% the floor
 *   already gives 1; with a single backend it lets that backend be ejected
 *   (nginx instead never marks down a lone server). Whether an all-ejected
 *   pool still gets traffic is the panic threshold's decision, not this
 *   module's.
 * - **Refused ejections are retried.** When the cap refuses an ejection the
 *   streak is kept, so the backend's next failure tries again once another
 *   backend has returned. (Envoy fires only when the streak equals the
 *   threshold, so a refused host waits for a success to reset it.)
 * - **Failures while ejected are ignored** (requests that were in flight
 *   when the backend was ejected, or panic-mode traffic). A failure after
 *   the ejection has ended but before `release` was called releases it
 *   first (the backend is evidently taking traffic again), so a caller that
 *   misses `release`, say a timer that fires a millisecond early by another
 *   clock, cannot leave the backend immune to detection. `release` then
 *   returns false for that ejection.
 * - Envoy also un-ejects a host on a passing active health check; usher
 *   always serves the full ejection time.
 *
 * Cost: O(1) per call, no allocation. Time is passed in (`nowMs`, any
 * monotonic millisecond clock) so the module has no timers and tests need
 * no fake clock.
 */
import type { OutlierConfig } from '../../config/types.ts';

/**
 * Per-backend outlier state. The pool owns one per backend and passes it to
 * the detector, which mutates it; callers should only read it.
 */
export interface OutlierState {
  /** Failures since the last success or ejection. */
  consecutiveFailures: number;
  /** Ejection multiplier: the next ejection lasts `ejectionTimeMs × (ejections + 1)`, before forgiveness and the cap. */
  ejections: number;
  /** When the current ejection ends, in ms; 0 = not ejected (or already released). */
  ejectedUntil: number;
  /** When the last ejection ended, in ms; 0 = never ejected. Forgiveness is counted from here. */
  returnedAt: number;
}

/** A fresh state for a backend that has never failed. */
export function newOutlierState(): OutlierState {
  return { consecutiveFailures: 0, ejections: 0, ejectedUntil: 0, returnedAt: 0 };
}

/**
 * Counts consecutive failures per backend and decides ejections for one
 * pool, keeping the number of currently ejected backends under the
 * configured percent. See the file comment for the exact rules.
 */
export class OutlierDetector {
  readonly #threshold: number;
  readonly #ejectionTimeMs: number;
  readonly #maxEjectionTimeMs: number;
  readonly #maxEjectionPercent: number;
  /** Largest useful multiplier: beyond it every ejection hits the cap anyway. */
  readonly #maxEjections: number;
  readonly #backendCount: () => number;
  #ejected = 0;

  /**
   * @param config - validated outlier settings (all positive except `maxEjectionPercent`, which may be 0).
   * @param backendCount - the pool's current number of backends, read at each ejection so membership changes apply.
   */
  constructor(config: OutlierConfig, backendCount: () => number) {
    this.#threshold = config.consecutiveFailures;
    this.#ejectionTimeMs = config.ejectionTimeMs;
    this.#maxEjectionTimeMs = config.maxEjectionTimeMs;
    this.#maxEjectionPercent = config.maxEjectionPercent;
    this.#maxEjections = Math.max(1, Math.ceil(config.maxEjectionTimeMs / config.ejectionTimeMs));
    this.#backendCount = backendCount;
  }

  /** Backends ejected and not yet released or forgotten. */
  get ejectedCount(): number {
    return this.#ejected;
  }

  /** Most backends that may be ejected at once right now: `max(1, floor(n × p / 100))`, or 0 when p = 0. */
  get maxEjected(): number {
    if (!(this.#maxEjectionPercent > 0)) return 0;
    return Math.max(1, Math.floor((this.#backendCount() * this.#maxEjectionPercent) / 100));
  }

  /** A request to this backend succeeded: the failure streak starts over. */
  onSuccess(state: OutlierState): void {
    state.consecutiveFailures = 0;
  }

  /**
   * A request to this backend failed. Returns true when this failure ejected
   * it; the backend then stays out until `release` returns true for it.
   */
  onFailure(state: OutlierState, nowMs: number): boolean {
    if (state.ejectedUntil !== 0) {
      if (nowMs < state.ejectedUntil) return false;
      this.#endEjection(state);
    }
    state.consecutiveFailures++;
    if (state.consecutiveFailures < this.#threshold) return false;
    if (this.#ejected + 1 > this.maxEjected) return false; // streak kept: retried on the next failure
    this.#eject(state, nowMs);
    return true;
  }

  /** Whether the backend is ejected at `nowMs`. */
  isEjected(state: OutlierState, nowMs: number): boolean {
    return state.ejectedUntil !== 0 && nowMs < state.ejectedUntil;
  }

  /**
   * Ends an expired ejection. Returns true exactly once per ejection, at the
   * first call at or after its end (unless a failure after the end released
   * it first); the caller then puts the backend back (and may start its slow
   * start). The multiplier is kept.
   */
  release(state: OutlierState, nowMs: number): boolean {
    if (state.ejectedUntil === 0 || nowMs < state.ejectedUntil) return false;
    this.#endEjection(state);
    return true;
  }

  /**
   * The backend is leaving the pool: if it is ejected, it no longer counts
   * against the cap. The state is reset, so calling this twice is harmless.
   */
  forget(state: OutlierState): void {
    if (state.ejectedUntil !== 0) this.#decrementEjected();
    state.consecutiveFailures = 0;
    state.ejections = 0;
    state.ejectedUntil = 0;
    state.returnedAt = 0;
  }

  #eject(state: OutlierState, nowMs: number): void {
    let ejections = state.ejections;
    if (ejections > 0 && state.returnedAt !== 0) {
      // Lazy forgiveness: one step per full ejectionTimeMs back in rotation.
      const healthyIntervals = Math.floor((nowMs - state.returnedAt) / this.#ejectionTimeMs);
      if (healthyIntervals > 0) ejections = Math.max(0, ejections - healthyIntervals);
    }
    ejections = Math.min(ejections + 1, this.#maxEjections);
    state.ejections = ejections;
    state.ejectedUntil = nowMs + Math.min(this.#ejectionTimeMs * ejections, this.#maxEjectionTimeMs);
    state.consecutiveFailures = 0;
    this.#ejected++;
  }

  #endEjection(state: OutlierState): void {
    // Forgiveness counts from when the ejection ended, not from when the pool noticed.
    state.returnedAt = state.ejectedUntil;
    state.ejectedUntil = 0;
    state.consecutiveFailures = 0;
    this.#decrementEjected();
  }

  #decrementEjected(): void {
    if (this.#ejected > 0) this.#ejected--;
  }
}
