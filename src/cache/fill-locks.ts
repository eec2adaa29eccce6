/**
 * Which keys some thread is filling, for every thread of the process: with
 * several workers, concurrent misses on one key in different threads would
 * otherwise make one upstream request per thread. A thread that misses a key
 * another thread is filling waits for that fill (bounded by the cache's
 * `lockTimeout`) and is then answered from the shared store, as nginx's
 * `proxy_cache_lock` makes workers wait on a lock in shared memory.
 *
 * A small open-addressing table in a SharedArrayBuffer: each slot is one
 * 64-bit word, the key's 32-bit hash and the lock's deadline (epoch seconds),
 * changed only by compare-and-swap, so claiming, taking over an expired lock
 * and releasing are each one atomic step. A second word per slot counts
 * releases; waiters sleep on it with `Atomics.waitAsync`. A lock outlives no
 * crash: past its deadline anyone may take it. When a key's probe window is
 * full of other keys' locks, nothing is locked and the thread fills on its
 * own (as before this table existed).
 */

const SLOTS = 1024;
const PROBE = 8;

/** A lock this thread holds; give it to {@link FillLocks.release}. */
export interface FillTicket {
  readonly slot: number;
  readonly word: bigint;
}

export class FillLocks {
  readonly buffer: SharedArrayBuffer;
  readonly #words: BigUint64Array;
  readonly #releases: Int32Array;
  readonly #now: () => number;

  /** A new table, or another thread's from its buffer. `now`: ms since the epoch. */
  constructor(buffer?: SharedArrayBuffer, now: () => number = Date.now) {
    this.buffer = buffer ?? new SharedArrayBuffer(SLOTS * 8 + SLOTS * 4);
    this.#words = new BigUint64Array(this.buffer, 0, SLOTS);
    this.#releases = new Int32Array(this.buffer, SLOTS * 8, SLOTS);
    this.#now = now;
  }

  /**
   * Claims `key` for `timeoutMs`: a ticket when this thread now fills it,
   * `busy` when another thread does, `none` when the table has no room (fill
   * without a lock).
   */
  acquire(key: string, timeoutMs: number): FillTicket | 'busy' | 'none' {
    const hash = hashOf(key);
    const nowS = Math.floor(this.#now() / 1000);
    const word = (BigInt(hash) << 32n) | BigInt(nowS + Math.max(1, Math.ceil(timeoutMs / 1000)));
    const start = hash & (SLOTS - 1);
    for (let attempt = 0; attempt < 4; attempt++) {
      let claimed = false;
      for (let i = 0; i < PROBE && !claimed; i++) {
        const slot = (start + i) & (SLOTS - 1);
        const current = Atomics.load(this.#words, slot);
        const live = current !== 0n && Number(current & 0xffffffffn) >= nowS;
        if (live && Number(current >> 32n) === hash) return 'busy';
        if (live) continue;
        // Free, or an expired lock (its thread died or hung): the first such slot is the only one anyone
        // claims for this key, so two threads racing for it meet on one compare-and-swap.
        if (Atomics.compareExchange(this.#words, slot, current, word) === current) return { slot, word };
        claimed = true; // lost the race: look again from the start
      }
      if (!claimed) return 'none';
    }
    return 'none';
  }

  /** Gives the lock back and wakes the threads waiting on it. */
  release(ticket: FillTicket): void {
    if (Atomics.compareExchange(this.#words, ticket.slot, ticket.word, 0n) !== ticket.word) return; // expired and taken over
    Atomics.add(this.#releases, ticket.slot, 1);
    Atomics.notify(this.#releases, ticket.slot);
  }

  /** Resolves when no thread holds `key` any more, or after `timeoutMs`. */
  async released(key: string, timeoutMs: number): Promise<void> {
    const hash = hashOf(key);
    const deadline = this.#now() + timeoutMs;
    const start = hash & (SLOTS - 1);
    for (;;) {
      let slot = -1;
      const nowS = Math.floor(this.#now() / 1000);
      for (let i = 0; i < PROBE; i++) {
        const at = (start + i) & (SLOTS - 1);
        const current = Atomics.load(this.#words, at);
        if (current !== 0n && Number(current >> 32n) === hash && Number(current & 0xffffffffn) >= nowS) {
          slot = at;
          break;
        }
      }
      const left = deadline - this.#now();
      if (slot === -1 || left <= 0) return;
      const seen = Atomics.load(this.#releases, slot);
      // Released between the look and the wait: the count moved, and waitAsync returns at once.
      if (Atomics.load(this.#words, slot) === 0n) return;
      const wait = Atomics.waitAsync(this.#releases, slot, seen, Math.min(left, 1000));
      if (wait.async) await wait.value;
    }
  }
}

/** FNV-1a over the key's UTF-16 units; never 0 (an empty slot). */
function hashOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) || 1;
}
