/**
 * The state of one rate-limit policy for every key, in a `SharedArrayBuffer`
 * that the main thread allocates once (its size is fixed by `maxKeys`) and
 * sends to every worker thread, so all data planes of a process decide
 * against one budget per key, never one per thread.
 *
 * Layout (a `BigInt64Array`): a header (evictions, the hash seed, the slot
 * count, decisions by outcome, Redis store errors and open breakers), then slots of two cells, `[hash, state]`. `hash` is a 64-bit keyed
 * hash of the key (0: never used); `state` is the algorithm's word
 * (algorithms.ts). A key lives in one of {@link PROBE} slots from
 * `hash mod slots` (open addressing with a bounded probe window).
 *
 * **Lock-free.** A decision reads the state, computes the next one and
 * stores it with `Atomics.compareExchange`; when another thread changed it
 * in between, it decides again on the new state. A key takes a slot by a
 * compareExchange on the hash cell: first an empty slot, else one whose state
 * limits nothing any more (a GCRA TAT in the past, windows that counted
 * nothing, no request in flight), else the one with the oldest state in the
 * window, which is an eviction (counted). Two threads that take slots for the
 * same new key at once both look again, and both use the lowest slot holding
 * it. A decision on a key whose live slot is being evicted at that instant may
 * land on the newcomer's state: only when the window is full of live keys.
 *
 * **Collisions.** Two keys share a state only when their 64-bit hashes are
 * equal: with n keys in a table, the chance that any two collide is about
 * n² / 2⁶⁵ (1e-10 for 100k keys). The hash is seeded with random bits chosen
 * when the table is made, so a client cannot pick a key that collides with
 * another's. It is not a cryptographic hash.
 */
import { randomBytes } from 'node:crypto';
import type { Step } from './algorithms.ts';

/** Slots a key may occupy, from its home slot. */
export const PROBE = 16;
const EVICTIONS = 0;
const SEED = 1;
const SLOTS = 2;
/** Decisions by outcome, from every thread: cells OUTCOME_CELLS + OUTCOMES.indexOf(outcome). */
const OUTCOME_CELLS = 3;
/** `store: redis`: failed or timed-out Redis calls, every thread's. */
const STORE_ERRORS = 7;
/** `store: redis`: threads whose breaker for this policy is open now. */
const BREAKERS_OPEN = 8;
const HEADER = 10;

/** What a policy decided on a request: `delayed` (gcra `maxDelay`) was admitted after a wait; `dry_run_limited` would have been refused. */
export const OUTCOMES = ['allowed', 'limited', 'dry_run_limited', 'delayed'] as const;
export type Outcome = (typeof OUTCOMES)[number];
/** Decisions retried this often under contention before one is taken without storing. */
const MAX_CAS = 64;

/** How one algorithm reads and advances a slot's state. */
export interface SlotAlgorithm {
  step(state: bigint, nowMs: number): Step;
  /** The state limits nothing at `nowMs`: its slot may go to another key. */
  expired(state: bigint, nowMs: number): boolean;
}

/** A key's place in a table: its 64-bit hash and its home slot. */
export interface KeyHash {
  readonly hash: bigint;
  readonly home: number;
}

export class LimiterTable {
  readonly cells: BigInt64Array;
  readonly slots: number;
  readonly #mask: number;
  readonly #seed1: number;
  readonly #seed2: number;

  /** A table for about `maxKeys` keys (memory: 16 B × the next power of two ≥ 4/3 × maxKeys); or one another thread made. */
  constructor(maxKeysOrShared: number | SharedArrayBuffer) {
    if (typeof maxKeysOrShared === 'number') {
      if (!Number.isInteger(maxKeysOrShared) || maxKeysOrShared < 1) throw new RangeError(`maxKeys must be a whole number >= 1, got ${maxKeysOrShared}`);
      let slots = 64;
      while (slots < Math.ceil((maxKeysOrShared * 4) / 3)) slots *= 2;
      this.cells = new BigInt64Array(new SharedArrayBuffer(8 * (HEADER + 2 * slots)));
      this.cells[SEED] = randomBytes(8).readBigInt64LE(0);
      this.cells[SLOTS] = BigInt(slots);
    } else {
      this.cells = new BigInt64Array(maxKeysOrShared);
    }
    this.slots = Number(this.cells[SLOTS]);
    this.#mask = this.slots - 1;
    const seed = this.cells[SEED]!;
    this.#seed1 = Number(seed & 0xffffffffn) | 0;
    this.#seed2 = Number((seed >> 32n) & 0xffffffffn) | 0;
  }

  /** The buffer, for another thread. */
  get shared(): SharedArrayBuffer {
    return this.cells.buffer as SharedArrayBuffer;
  }

  /** Bytes the table holds. */
  get bytes(): number {
    return this.cells.byteLength;
  }

  /** Live keys pushed out of a full probe window so far (every thread). */
  get evictions(): number {
    return Number(Atomics.load(this.cells, EVICTIONS));
  }

  /** Counts a decision (every thread counts into the same cells). */
  count(outcome: number): void {
    Atomics.add(this.cells, OUTCOME_CELLS + outcome, 1n);
  }

  /** Counts a failed or timed-out Redis call (`store: redis`). */
  countStoreError(): void {
    Atomics.add(this.cells, STORE_ERRORS, 1n);
  }

  /** Failed or timed-out Redis calls so far, every thread's. */
  get storeErrors(): number {
    return Number(Atomics.load(this.cells, STORE_ERRORS));
  }

  /** A thread's breaker for this policy opened (+1) or closed (−1). */
  breaker(open: boolean): void {
    Atomics.add(this.cells, BREAKERS_OPEN, open ? 1n : -1n);
  }

  /** Whether some thread's breaker for this policy is open. */
  get breakerOpen(): boolean {
    return Atomics.load(this.cells, BREAKERS_OPEN) > 0n;
  }

  /** Decisions so far by outcome, every thread's. */
  get decisions(): Record<Outcome, number> {
    const out = {} as Record<Outcome, number>;
    OUTCOMES.forEach((outcome, i) => (out[outcome] = Number(Atomics.load(this.cells, OUTCOME_CELLS + i))));
    return out;
  }

  /** The seeded 64-bit hash of `key` (cyrb53's mixing, both 32-bit halves kept). */
  hashOf(key: string): KeyHash {
    let h1 = 0xdeadbeef ^ this.#seed1;
    let h2 = 0x41c6ce57 ^ this.#seed2;
    for (let i = 0; i < key.length; i++) {
      const ch = key.charCodeAt(i);
      h1 = Math.imul(h1 ^ ch, 2654435761);
      h2 = Math.imul(h2 ^ ch, 1597334677);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    let hash = (BigInt(h2 >>> 0) << 32n) | BigInt(h1 >>> 0);
    if (hash === 0n) hash = 1n;
    return { hash: BigInt.asIntN(64, hash), home: (h1 >>> 0) & this.#mask };
  }

  /**
   * Decides for `key` with `algorithm` and stores the new state; returns the
   * step taken (and the number of evictions it caused, 0 or 1).
   */
  decide(key: KeyHash, nowMs: number, algorithm: SlotAlgorithm): { step: Step; evicted: number } {
    let evicted = 0;
    let step: Step | undefined;
    for (let attempt = 0; attempt < MAX_CAS; attempt++) {
      const found = this.#slot(key, nowMs, algorithm);
      evicted += found.evicted;
      const cell = found.cell;
      const state = Atomics.load(this.cells, cell);
      step = algorithm.step(state, nowMs);
      if (step.next === undefined || Atomics.compareExchange(this.cells, cell, state, step.next) === state) return { step, evicted };
    }
    return { step: step!, evicted };
  }

  /** Applies `change` to the key's state, if the key has a slot (a concurrency release). */
  update(key: KeyHash, change: (state: bigint) => bigint): void {
    const cell = this.#find(key);
    if (cell < 0) return;
    for (let attempt = 0; attempt < MAX_CAS; attempt++) {
      const state = Atomics.load(this.cells, cell);
      if (Atomics.compareExchange(this.cells, cell, state, change(state)) === state) return;
    }
  }

  /** Forgets the key's state (admin reset); false when it had none. */
  reset(key: KeyHash): boolean {
    const cell = this.#find(key);
    if (cell < 0) return false;
    Atomics.store(this.cells, cell, 0n);
    return true;
  }

  /** Forgets every key. */
  clear(): void {
    for (let s = 0; s < this.slots; s++) Atomics.store(this.cells, HEADER + 2 * s + 1, 0n);
  }

  /** Keys whose state still limits something at `nowMs` (a scan of the whole table: for the admin API, not for requests). */
  liveKeys(nowMs: number, algorithm: SlotAlgorithm): number {
    let live = 0;
    for (let s = 0; s < this.slots; s++) {
      const c = HEADER + 2 * s;
      if (Atomics.load(this.cells, c) !== 0n && !algorithm.expired(Atomics.load(this.cells, c + 1), nowMs)) live++;
    }
    return live;
  }

  /** The state cell of the lowest slot holding the key in its window, or -1. */
  #find(key: KeyHash): number {
    for (let i = 0; i < PROBE; i++) {
      const c = HEADER + 2 * ((key.home + i) & this.#mask);
      const hash = Atomics.load(this.cells, c);
      if (hash === key.hash) return c + 1;
      if (hash === 0n) return -1; // hashes are never cleared: nothing of this window lies beyond an empty slot
    }
    return -1;
  }

  /** The key's state cell, taking a slot for it if it has none. */
  #slot(key: KeyHash, nowMs: number, algorithm: SlotAlgorithm): { cell: number; evicted: number } {
    const cells = this.cells;
    for (;;) {
      let free = -1;
      let freeHash = 0n;
      let victim = -1;
      let victimHash = 0n;
      let victimState = 0n;
      let found = -1;
      for (let i = 0; i < PROBE; i++) {
        const c = HEADER + 2 * ((key.home + i) & this.#mask);
        const hash = Atomics.load(cells, c);
        if (hash === key.hash) {
          found = c;
          break;
        }
        if (hash === 0n) {
          if (free < 0) free = c;
          break;
        }
        if (free >= 0) continue;
        const state = Atomics.load(cells, c + 1);
        if (algorithm.expired(state, nowMs)) {
          free = c;
          freeHash = hash;
        } else if (victim < 0 || state < victimState) {
          victim = c;
          victimHash = hash;
          victimState = state;
        }
      }
      if (found >= 0) return { cell: found + 1, evicted: 0 };
      const target = free >= 0 ? free : victim;
      const expected = free >= 0 ? freeHash : victimHash;
      if (Atomics.compareExchange(cells, target, expected, key.hash) !== expected) continue; // another thread took it: look again
      let evicted = 0;
      if (free < 0) {
        // A live key pushed out: its state must not become the newcomer's.
        Atomics.compareExchange(cells, target + 1, victimState, 0n);
        Atomics.add(cells, EVICTIONS, 1n);
        evicted = 1;
      }
      // Another thread may have taken a lower slot for the same key meanwhile: the lowest one is the key's.
      const lowest = this.#find(key);
      return { cell: lowest >= 0 ? lowest : target + 1, evicted };
    }
  }
}
