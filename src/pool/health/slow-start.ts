/**
 * Slow start: a backend that returns to rotation (after an ejection, a failed
 * health check, or being added) gets a reduced share of traffic that grows
 * to its full weight over `windowMs`, so a cold cache or JIT is not hit with
 * a full share at once.
 *
 * The multiplier is Envoy's `slow_start_config` with aggression 1.0 and
 * min_weight_percent 10% (`load_balancing_policies/common/v3/common.proto`):
 * `max(0.1, elapsed / window)`. With aggression 1.0 Envoy's
 * `time_factor^(1 / aggression)` is just the elapsed fraction, so the ramp is
 * linear; the 10% floor means the backend holds 10% for the first tenth of
 * the window and then climbs linearly to 100% at its end. The floor matters:
 * with a zero weight a backend returning to an idle pool would get no
 * traffic to warm up on. HAProxy's `slowstart` is also linear, from 1%.
 *
 * Pure functions of their arguments; `nowMs` and `sinceMs` come from the
 * same monotonic millisecond clock.
 */

/** Weight multiplier at the start of the window (Envoy's default min_weight_percent). */
export const SLOW_START_MIN_FACTOR = 0.1;

/**
 * Weight multiplier in [0.1, 1] for a backend that returned at `sinceMs`:
 * `max(0.1, (nowMs - sinceMs) / windowMs)`, and exactly 1 once the window has
 * passed or when `windowMs <= 0` (slow start off). A clock reading before
 * `sinceMs` gives 0.1.
 */
export function slowStartFactor(sinceMs: number, nowMs: number, windowMs: number): number {
  if (!(windowMs > 0)) return 1;
  const elapsed = nowMs - sinceMs;
  if (elapsed >= windowMs) return 1;
  const factor = elapsed / windowMs;
  // `>` rather than Math.max so a NaN elapsed (bad input) also gets the floor.
  return factor > SLOW_START_MIN_FACTOR ? factor : SLOW_START_MIN_FACTOR;
}

/** Whether the slow start that began at `sinceMs` is over: `windowMs <= 0` or the window has fully passed. */
export function slowStartEnded(sinceMs: number, nowMs: number, windowMs: number): boolean {
  return !(windowMs > 0) || nowMs - sinceMs >= windowMs;
}
