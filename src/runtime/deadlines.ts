/**
 * Coarse connection deadlines: one process-wide sweep instead of a node timer
 * per socket.
 *
 * Why: `socket.setTimeout(ms)` allocates a new `Timeout` and a bound function
 * every time it is armed, and while armed every read and write of that socket
 * refreshes it (`_unrefTimer`). A keep-alive request re-armed five of them
 * (downstream idle off/on, upstream response on/off, upstream idle on): about
 * 2 µs of CPU per request (bench/README.md, `small`). Here arming a deadline is
 * one number stored in a field, and one interval checks every registered
 * connection every {@link SWEEP_MS}.
 *
 * Precision: a deadline armed for `ms` fires between `ms` and `ms + SWEEP_MS`
 * (plus any event-loop lag, as for any timer) later, never earlier. Every
 * timeout it serves (upstream connect, response, idle; downstream
 * keep-alive and incomplete head) is configured in hundreds of milliseconds or
 * more, so this is acceptable; nginx's timer resolution is similar in spirit
 * (`timer_resolution`).
 *
 * Cost of the sweep: O(registered connections) every SWEEP_MS, while any is
 * registered (10 000 open connections ≈ 400 000 cheap checks per second). The
 * interval is unref'd: it never keeps the process alive.
 */

/** Interval between sweeps, and so the granularity of every deadline. */
export const SWEEP_MS = 25;

/** Something with a deadline: `deadline` is a `performance.now()` value from {@link Deadlines.at}, 0 when none is armed. */
export interface Expiring {
  deadline: number;
  /** Called (once per arming) by the sweep when `deadline` has passed; the deadline is disarmed first. */
  onDeadline(): void;
}

/** The set of connections with deadlines and the sweep over them. */
export class Deadlines {
  readonly #members = new Set<Expiring>();
  #timer: NodeJS.Timeout | undefined;

  /** The deadline value for `ms` from now. (`performance.now()` costs ~60 ns: not worth a staler clock.) */
  at(ms: number): number {
    return performance.now() + ms;
  }

  /** Starts watching `member` (once per connection, not per request). */
  add(member: Expiring): void {
    this.#members.add(member);
    if (this.#timer === undefined) {
      this.#timer = setInterval(this.#sweep, SWEEP_MS);
      this.#timer.unref();
    }
  }

  /** Stops watching `member` (when its connection closes). */
  delete(member: Expiring): void {
    this.#members.delete(member);
    if (this.#members.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Registered connections (for tests). */
  get size(): number {
    return this.#members.size;
  }

  readonly #sweep = (): void => {
    const now = performance.now();
    // A member removed by an earlier member's callback is skipped by Set iteration; one added is visited or not, either is fine.
    for (const member of this.#members) {
      const deadline = member.deadline;
      if (deadline !== 0 && deadline <= now) {
        member.deadline = 0;
        try {
          member.onDeadline();
        } catch (error) {
          // As a throwing node timer callback would: uncaught, but the other members are still swept.
          process.nextTick(() => {
            throw error;
          });
        }
      }
    }
  };
}

/** The process-wide instance every connection uses. */
export const deadlines = new Deadlines();
