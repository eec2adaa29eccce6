/**
 * A fill in progress: the first miss on a key goes upstream, and the
 * requests that miss the same key meanwhile wait for it.
 */
export class Fill {
  /** When the fill began (ms, the filter's clock): a fill that never settled (its request failed before the response phase) is ignored after the lock timeout. */
  readonly startedAt: number;
  #settled = false;
  readonly #waiters: (() => void)[] = [];
  readonly #onSettle: () => void;

  constructor(startedAt: number, onSettle: () => void) {
    this.startedAt = startedAt;
    this.#onSettle = onSettle;
  }

  /** The response was stored, or turned out not to be (waiters then look up again and go upstream). */
  settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#onSettle();
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Resolves when the fill settles or after `timeoutMs`, whichever is first. */
  settled(timeoutMs: number): Promise<void> {
    if (this.#settled) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
