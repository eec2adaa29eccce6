/**
 * The CPU guard: compression runs on the event loop that also proxies every
 * other request of the thread, so when that loop is saturated compression
 * gives way first. The load signal is the loop's utilization (the share of
 * time it was busy, `performance.eventLoopUtilization()`), sampled at most
 * once per `intervalMs` when a response asks (no timer). Each sample moves at
 * most one step:
 *
 * - `full` → `reduced` (every coding at its fastest level) → `off` (new
 *   responses go out uncoded) while utilization is at or above `high`;
 * - back one step while it is at or below `low` (hysteresis, so the guard
 *   does not flap around one threshold).
 *
 * Responses already being coded keep their encoder: a step only affects new
 * responses. Each thread has its own loop, hence its own guard
 * ({@link threadGuard}).
 */
import { performance } from 'node:perf_hooks';

export type GuardLevel = 'full' | 'reduced' | 'off';

const LEVELS: readonly GuardLevel[] = ['full', 'reduced', 'off'];

export interface GuardOptions {
  /** The load since the previous call, 0-1 (event-loop utilization). */
  readonly sample: () => number;
  readonly now: () => number;
  /** Shortest time between two samples. */
  readonly intervalMs: number;
  /** Step down at or above this load. */
  readonly high: number;
  /** Step up at or below this load. */
  readonly low: number;
}

export const GUARD_DEFAULTS = { intervalMs: 500, high: 0.9, low: 0.6 } as const;

export class CompressGuard {
  readonly #options: GuardOptions;
  #index = 0;
  #sampledAt: number;
  /** Steps taken, for `usher_compress_guard_steps_total`. */
  stepsDown = 0;
  stepsUp = 0;

  constructor(options: GuardOptions) {
    if (!(options.low < options.high)) throw new RangeError(`compress guard: low (${options.low}) must be below high (${options.high})`);
    this.#options = options;
    this.#sampledAt = options.now();
  }

  /** The level for a response starting now; samples the load when `intervalMs` has passed since the last sample. */
  level(): GuardLevel {
    const { now, intervalMs, sample, high, low } = this.#options;
    const at = now();
    if (at - this.#sampledAt >= intervalMs) {
      this.#sampledAt = at;
      const load = sample();
      if (load >= high && this.#index < LEVELS.length - 1) {
        this.#index++;
        this.stepsDown++;
      } else if (load <= low && this.#index > 0) {
        this.#index--;
        this.stepsUp++;
      }
    }
    return LEVELS[this.#index]!;
  }
}

/** Event-loop utilization since the previous call (this thread's loop: workers have their own). */
export function eventLoopLoad(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const current = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(current, last);
    last = current;
    return delta.utilization;
  };
}

let shared: CompressGuard | undefined;

/** This thread's guard, shared by every `compress` filter of the thread (they share its loop). */
export function threadGuard(): CompressGuard {
  return (shared ??= new CompressGuard({ sample: eventLoopLoad(), now: () => performance.now(), ...GUARD_DEFAULTS }));
}

/** The guard if one was made in this thread (metrics read it without creating one). */
export function existingThreadGuard(): CompressGuard | undefined {
  return shared;
}
