/**
 * The state of one rate-limit policy for every key, in a `SharedArrayBuffer`
 * that the main thread allocates once (its size is fixed by `maxKeys`) and
 * sends to every worker thread, so all data planes of a process decide
 * against one budget per key, never one per thread.
 *
 * Layout (a `BigInt64Array`): a header (evictions, the hash seed, the slot
 * count, decisions by outcome and store, Redis store errors, open breakers,
 * live instances and the Redis latency histogram), the top-keys sketch, then
 * slots of two cells, `[hash, state]`. `hash` is a 64-bit keyed
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
import { cyrb53 } from '../runtime/string-hash.ts';
import { randomBytes } from 'node:crypto';
import type { Step } from './algorithms.ts';
import { LATENCY_BOUNDS_MS } from '../observe/histogram.ts';

/** The two halves of the last key hash (see string-hash.ts). */
const HALVES = new Int32Array(2);

/** Slots a key may occupy, from its home slot. */
export const PROBE = 16;
const EVICTIONS = 0;
const SEED = 1;
const SLOTS = 2;

/** What a policy decided on a request: `delayed` (gcra `maxDelay`) was admitted after a wait; `dry_run_limited` would have been refused. */
export const OUTCOMES = ['allowed', 'limited', 'dry_run_limited', 'delayed'] as const;
export type Outcome = (typeof OUTCOMES)[number];
/**
 * Who decided: `local` (a `store: local` policy's table), `redis` (a
 * `store: redis` policy's script, or its negative cache repeating a refusal
 * Redis gave), `fallback` (a `store: redis` policy while Redis failed or its
 * breaker was open: `onStoreError` decided).
 */
export const STORES = ['local', 'redis', 'fallback'] as const;
export type StoreLabel = (typeof STORES)[number];

/** Decisions by outcome and store, from every thread: cell OUTCOME_CELLS + OUTCOMES.indexOf(outcome) × STORES.length + STORES.indexOf(store). */
const OUTCOME_CELLS = 3;
/** `store: redis`: failed or timed-out Redis calls, every thread's. */
const STORE_ERRORS = OUTCOME_CELLS + OUTCOMES.length * STORES.length;
/** `store: redis`: threads whose breaker for this policy is open now. */
const BREAKERS_OPEN = STORE_ERRORS + 1;
/** Live usher instances as last seen (the main thread writes it, every thread's fallback divides by it); 0: unknown, read as 1. */
const LIVE_INSTANCES = BREAKERS_OPEN + 1;
/** `store: redis`: Redis call latency, every thread's: count, sum in µs, then one cell per bucket of {@link LATENCY_BOUNDS_MS} and one above. */
const LATENCY_COUNT = LIVE_INSTANCES + 1;
const LATENCY_SUM_US = LATENCY_COUNT + 1;
const LATENCY_BUCKETS = LATENCY_SUM_US + 1;
const HEAD_CELLS = LATENCY_BUCKETS + LATENCY_BOUNDS_MS.length + 1;

/**
 * Top keys: a small heavy-hitters sketch next to the slots, because the slots
 * hold hashes, not keys. {@link TOP_ENTRIES} entries; a key may sit in one of
 * two (chosen by its hash). An entry is eight 32-bit cells `[state, hash low,
 * hash high, weight, decisions, limited, since (epoch s), name length]` plus
 * {@link TOP_NAME_BYTES} of the key's UTF-8 (longer keys are cut). A key found
 * in its entry counts there; a key not found wears down the lighter of its two
 * entries' weight by one, and once that weight is gone takes the entry (an
 * empty one or for a refused request at once, else one time in
 * {@link TOP_TAKEOVER}: writing a name is the costly part). Weights stop at {@link TOP_MAX_WEIGHT}.
 * Busy keys keep their entries, rare ones churn among the light ones. 32-bit
 * cells: BigInt atomics cost far more per request.
 */
export const TOP_ENTRIES = 256;
const TOP_INTS = 8;
const TOP_NAME_BYTES = 96;
const TOP_MAX_WEIGHT = 1024;
const TOP_TAKEOVER = 8;
/** Entry states. */
const EMPTY = 0;
const WRITING = 1;
const READY = 2;
const TOP_AT = HEAD_CELLS;
const TOP_NAMES_AT = TOP_AT + (TOP_ENTRIES * TOP_INTS) / 2;
const HEADER = TOP_NAMES_AT + (TOP_ENTRIES * TOP_NAME_BYTES) / 8;
/** Decisions retried this often under contention before one is taken without storing. */
const MAX_CAS = 64;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One key of {@link LimiterTable.topKeys}: counts since the key took its entry. */
export interface TopKey {
  /** The key as the policy builds it (parts joined by a newline), cut to 96 bytes when longer (`truncated`). */
  readonly key: string;
  readonly truncated: boolean;
  readonly decisions: number;
  readonly limited: number;
  /** Epoch ms since which this entry counts the key. */
  readonly since: number;
}

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
  /** The two 32-bit halves of the hash before it is adjusted (the top-keys sketch compares these). */
  readonly lo: number;
  readonly hi: number;
}

export class LimiterTable {
  readonly cells: BigInt64Array;
  readonly slots: number;
  readonly #mask: number;
  readonly #seed1: number;
  readonly #seed2: number;
  readonly #names: Uint8Array;
  /** The top-keys entries, as 32-bit cells. */
  readonly #top: Int32Array;
  #misses = 0;

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
    this.#names = new Uint8Array(this.cells.buffer, TOP_NAMES_AT * 8, TOP_ENTRIES * TOP_NAME_BYTES);
    this.#top = new Int32Array(this.cells.buffer, TOP_AT * 8, TOP_ENTRIES * TOP_INTS);
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

  /** Counts a decision by the indexes of its outcome and store (every thread counts into the same cells). */
  count(outcome: number, store = 0): void {
    Atomics.add(this.cells, OUTCOME_CELLS + outcome * STORES.length + store, 1n);
  }

  /** Records one Redis call's duration. */
  observeLatency(ms: number): void {
    let i = 0;
    while (i < LATENCY_BOUNDS_MS.length && ms > LATENCY_BOUNDS_MS[i]!) i++;
    Atomics.add(this.cells, LATENCY_BUCKETS + i, 1n);
    Atomics.add(this.cells, LATENCY_COUNT, 1n);
    Atomics.add(this.cells, LATENCY_SUM_US, BigInt(Math.round(ms * 1000)));
  }

  /** Redis call latency so far: per-bucket counts (not cumulative, the last above every bound), count and sum in ms. */
  get latency(): { counts: number[]; count: number; sumMs: number } {
    const counts: number[] = [];
    for (let i = 0; i <= LATENCY_BOUNDS_MS.length; i++) counts.push(Number(Atomics.load(this.cells, LATENCY_BUCKETS + i)));
    return { counts, count: Number(Atomics.load(this.cells, LATENCY_COUNT)), sumMs: Number(Atomics.load(this.cells, LATENCY_SUM_US)) / 1000 };
  }

  /** Live usher instances as last written (at least 1). */
  get liveInstances(): number {
    const n = Number(Atomics.load(this.cells, LIVE_INSTANCES));
    return n >= 1 ? n : 1;
  }

  set liveInstances(n: number) {
    Atomics.store(this.cells, LIVE_INSTANCES, BigInt(Number.isFinite(n) && n >= 1 ? Math.floor(n) : 1));
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

  /** Decisions so far by outcome, every thread's and every store's. */
  get decisions(): Record<Outcome, number> {
    const out = {} as Record<Outcome, number>;
    OUTCOMES.forEach((outcome, i) => {
      let sum = 0;
      for (let s = 0; s < STORES.length; s++) sum += Number(Atomics.load(this.cells, OUTCOME_CELLS + i * STORES.length + s));
      out[outcome] = sum;
    });
    return out;
  }

  /** Decisions so far by outcome and store, every thread's. */
  get decisionsByStore(): Record<StoreLabel, Record<Outcome, number>> {
    const out = {} as Record<StoreLabel, Record<Outcome, number>>;
    STORES.forEach((store, s) => {
      const one = {} as Record<Outcome, number>;
      OUTCOMES.forEach((outcome, i) => (one[outcome] = Number(Atomics.load(this.cells, OUTCOME_CELLS + i * STORES.length + s))));
      out[store] = one;
    });
    return out;
  }

  /**
   * Counts a decision on `key` in the top-keys sketch (see {@link TOP_ENTRIES}).
   * `name` is the key itself, written into an entry the key takes over.
   */
  note(key: KeyHash, name: string, limited: boolean, nowMs: number): void {
    const top = this.#top;
    const a = ((key.hi >>> 16) & (TOP_ENTRIES - 1)) * TOP_INTS;
    let b = ((key.hi >>> 24) & (TOP_ENTRIES - 1)) * TOP_INTS;
    if (b === a) b ^= TOP_INTS;
    const e = top[a + 1] === key.lo && top[a + 2] === key.hi ? a : top[b + 1] === key.lo && top[b + 2] === key.hi ? b : -1;
    if (e >= 0) {
      Atomics.add(top, e + 4, 1);
      if (limited) Atomics.add(top, e + 5, 1);
      if (top[e + 3]! < TOP_MAX_WEIGHT) Atomics.add(top, e + 3, 1);
      return;
    }
    // A miss: wear down the lighter entry; take it when its weight is gone.
    const w = top[a + 3]! <= top[b + 3]! ? a : b;
    if (top[w + 3]! > 0 && Atomics.sub(top, w + 3, 1) > 1) return;
    const state = Atomics.load(top, w);
    if (state === READY && !limited && ++this.#misses % TOP_TAKEOVER !== 0) return;
    if (state === WRITING || Atomics.compareExchange(top, w, state, WRITING) !== state) return; // another thread is writing it
    const at = (w / TOP_INTS) * TOP_NAME_BYTES;
    const { written, read } = encoder.encodeInto(name, this.#names.subarray(at, at + TOP_NAME_BYTES));
    Atomics.store(top, w + 1, key.lo);
    Atomics.store(top, w + 2, key.hi);
    Atomics.store(top, w + 3, 1);
    Atomics.store(top, w + 4, 1);
    Atomics.store(top, w + 5, limited ? 1 : 0);
    Atomics.store(top, w + 6, Math.floor(nowMs / 1000));
    // The length, negative when the name was cut.
    Atomics.store(top, w + 7, read < name.length ? -written : written);
    Atomics.store(top, w, READY);
  }

  /** Up to `n` keys of the top-keys sketch, the most refused first, then the busiest: approximate counts since each took its entry. */
  topKeys(n = 20): TopKey[] {
    const top = this.#top;
    const found: TopKey[] = [];
    for (let i = 0; i < TOP_ENTRIES; i++) {
      const e = i * TOP_INTS;
      if (Atomics.load(top, e) !== READY) continue;
      const lo = Atomics.load(top, e + 1);
      const decisions = Atomics.load(top, e + 4) >>> 0;
      const limited = Atomics.load(top, e + 5) >>> 0;
      const since = Atomics.load(top, e + 6) >>> 0;
      const length = Atomics.load(top, e + 7);
      const name = decoder.decode(this.#names.slice(i * TOP_NAME_BYTES, i * TOP_NAME_BYTES + Math.abs(length)));
      // Taken over meanwhile (the state went through WRITING, the hash changed), or reset.
      if (Atomics.load(top, e) !== READY || Atomics.load(top, e + 1) !== lo || decisions === 0) continue;
      found.push({ key: name, truncated: length < 0, decisions, limited, since: since * 1000 });
    }
    found.sort((x, y) => y.limited - x.limited || y.decisions - x.decisions);
    return found.slice(0, n);
  }

  /** The seeded 64-bit hash of `key` (cyrb53's mixing, both 32-bit halves kept). */
  hashOf(key: string): KeyHash {
    cyrb53(key, this.#seed1, this.#seed2, HALVES);
    const h1 = HALVES[0]!;
    const h2 = HALVES[1]!;
    let hash = (BigInt(h2 >>> 0) << 32n) | BigInt(h1 >>> 0);
    if (hash === 0n || hash === 0xffffffffffffffffn) hash = 1n; // 0: an empty slot; -1 as a signed word: an entry being written
    return { hash: BigInt.asIntN(64, hash), home: (h1 >>> 0) & this.#mask, lo: h1 | 0, hi: h2 | 0 };
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

  /** Forgets the key's state (admin reset) and its top-keys counts; false when it had no state. */
  reset(key: KeyHash): boolean {
    const top = this.#top;
    for (let e = 0; e < top.length; e += TOP_INTS) {
      if (top[e + 1] === key.lo && top[e + 2] === key.hi) {
        Atomics.store(top, e + 3, 0);
        Atomics.store(top, e + 4, 0);
        Atomics.store(top, e + 5, 0);
      }
    }
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
