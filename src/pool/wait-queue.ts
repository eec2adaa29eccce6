/**
 * A bounded FIFO of requests waiting for a backend slot when every candidate
 * is at its `maxConnections` (HAProxy's server queue with `timeout queue`).
 *
 * The bound and the timeout are the point: past either, a request gets 503 at
 * once instead of piling up in memory while an overloaded pool falls further
 * behind. Only the overload path allocates (one timer per waiting request).
 */
export interface Waiter {
  /** A slot may be free: the waiter tries to pick again. Returns false to stay at the head. */
  retry(): boolean;
  /** The waiter was in the queue for `timeoutMs`; it has been removed. */
  expire(): void;
}

interface Entry {
  readonly waiter: Waiter;
  readonly timer: NodeJS.Timeout;
}

export class WaitQueue {
  readonly #entries: Entry[] = [];
  #capacity: number;
  #timeoutMs: number;

  constructor(capacity: number, timeoutMs: number) {
    this.#capacity = capacity;
    this.#timeoutMs = timeoutMs;
  }

  get length(): number {
    return this.#entries.length;
  }

  /** Applies new limits from a reload; waiters already queued keep their deadline. */
  configure(capacity: number, timeoutMs: number): void {
    this.#capacity = capacity;
    this.#timeoutMs = timeoutMs;
  }

  /** Queues `waiter`; false when the queue is full. */
  push(waiter: Waiter): boolean {
    if (this.#entries.length >= this.#capacity) return false;
    const timer = setTimeout(() => {
      if (this.remove(waiter)) waiter.expire();
    }, this.#timeoutMs);
    this.#entries.push({ waiter, timer });
    return true;
  }

  /** Removes `waiter` (its client left, or it was served). Returns whether it was queued. */
  remove(waiter: Waiter): boolean {
    const entries = this.#entries;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      if (entry.waiter !== waiter) continue;
      clearTimeout(entry.timer);
      entries.splice(i, 1);
      return true;
    }
    return false;
  }

  /** Offers freed slots to waiters in arrival order until one cannot be served. */
  wake(): void {
    const entries = this.#entries;
    while (entries.length > 0) {
      const entry = entries[0]!;
      if (!entry.waiter.retry()) return;
      clearTimeout(entry.timer);
      if (entries[0] === entry) entries.shift();
      else this.remove(entry.waiter);
    }
  }

  /** Expires every waiter now (the pool is closing). */
  expireAll(): void {
    for (const entry of this.#entries.splice(0)) {
      clearTimeout(entry.timer);
      entry.waiter.expire();
    }
  }
}
