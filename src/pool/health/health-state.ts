/**
 * The rise/fall state machine of one backend's active health check (HAProxy
 * `rise`/`fall`, Envoy `healthy_threshold`/`unhealthy_threshold`). Pure: no
 * I/O and no timers, so every rule is tested without sockets.
 *
 * A healthy backend goes unhealthy after `fall` consecutive failures; an
 * unhealthy one comes back after `rise` consecutive successes. A success ends
 * a failure streak and a failure ends a success streak, so a flapping backend
 * never accumulates towards a flip.
 *
 * Until the first result is recorded the state is *unconfirmed*, and that
 * first result is decisive: one failure takes an initially-healthy backend out
 * at once, one success brings an initially-unhealthy one in at once. Why:
 * backends start in rotation so that a restart of usher does not answer 503
 * before the first round of checks, yet a backend that is dead at start leaves
 * within one check timeout instead of `fall` × interval. This is HAProxy's
 * default `init-state up` ("immediately available ... can turn to the DOWN
 * state immediately if it fails", and `down` likewise turns UP on the first
 * success; HAProxy 3.1, haproxy/haproxy#51); Envoy also needs only one
 * success at startup ("healthy_threshold").
 */
export class HealthState {
  readonly #rise: number;
  readonly #fall: number;
  #healthy: boolean;
  #confirmed = false;
  #successes = 0;
  #failures = 0;

  constructor(init: { readonly rise: number; readonly fall: number; readonly initiallyHealthy: boolean }) {
    if (!Number.isInteger(init.rise) || init.rise < 1) throw new RangeError(`rise must be an integer >= 1, got ${init.rise}`);
    if (!Number.isInteger(init.fall) || init.fall < 1) throw new RangeError(`fall must be an integer >= 1, got ${init.fall}`);
    this.#rise = init.rise;
    this.#fall = init.fall;
    this.#healthy = init.initiallyHealthy;
  }

  /** Whether the backend is in rotation as far as active checks are concerned. */
  get healthy(): boolean {
    return this.#healthy;
  }

  /** False until the first result has been recorded. */
  get confirmed(): boolean {
    return this.#confirmed;
  }

  /**
   * True while the current streak moves towards a flip (healthy with at least
   * one failure, unhealthy with at least one success) or before the first
   * result. The scheduler checks faster then (HAProxy `fastinter`).
   */
  get transitioning(): boolean {
    if (!this.#confirmed) return true;
    return this.#healthy ? this.#failures > 0 : this.#successes > 0;
  }

  /** Length of the current success streak (0 after a failure or a flip). */
  get consecutiveSuccesses(): number {
    return this.#successes;
  }

  /** Length of the current failure streak (0 after a success or a flip). */
  get consecutiveFailures(): number {
    return this.#failures;
  }

  /** Records one check result; returns true when `healthy` flipped. */
  record(ok: boolean): boolean {
    if (!this.#confirmed) {
      this.#confirmed = true;
      const flipped = this.#healthy !== ok;
      this.#healthy = ok;
      this.#successes = 0;
      this.#failures = 0;
      return flipped;
    }
    if (ok) {
      this.#failures = 0;
      this.#successes++;
      if (!this.#healthy && this.#successes >= this.#rise) return this.#flip(true);
    } else {
      this.#successes = 0;
      this.#failures++;
      if (this.#healthy && this.#failures >= this.#fall) return this.#flip(false);
    }
    return false;
  }

  #flip(healthy: boolean): true {
    this.#healthy = healthy;
    this.#successes = 0;
    this.#failures = 0;
    return true;
  }
}
