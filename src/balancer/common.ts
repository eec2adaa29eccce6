/**
 * Small helpers shared by the balancing algorithms. Internal: not re-exported
 * from `index.ts`. Every helper is allocation-free so it can run per pick.
 */
import type { Accept, Endpoint, PickContext } from './types.ts';

/** Smallest weight an algorithm uses; zero, negative or NaN weights are raised to it. */
export const MIN_WEIGHT = 1e-3;
/** Largest weight an algorithm uses; keeps `inFlight × weight` products exact. */
export const MAX_WEIGHT = 1e6;

/**
 * The weight an algorithm should use for `e`: `e.weight` clamped to
 * [MIN_WEIGHT, MAX_WEIGHT]. Config guarantees integers in [1, 1000], but slow
 * start may scale a weight towards zero; a backend with weight ~0 is still
 * returned when it is the only accepted one.
 */
export function weightOf(e: Endpoint): number {
  const w = e.weight;
  if (!(w > MIN_WEIGHT)) return MIN_WEIGHT; // also catches NaN
  return w < MAX_WEIGHT ? w : MAX_WEIGHT;
}

/** Sum of `weightOf` over all endpoints. */
export function totalWeight(endpoints: readonly Endpoint[]): number {
  let total = 0;
  for (let i = 0; i < endpoints.length; i++) total += weightOf(endpoints[i]!);
  return total;
}

/**
 * Index of a weighted random draw among `endpoints`, skipping index `exclude`
 * (-1 for none). `total` must be the summed weight of the non-excluded
 * endpoints and `r` uniform in [0, 1). Requires at least one non-excluded endpoint.
 */
export function drawWeighted(endpoints: readonly Endpoint[], total: number, r: number, exclude: number): number {
  let x = r * total;
  let last = -1;
  for (let i = 0; i < endpoints.length; i++) {
    if (i === exclude) continue;
    x -= weightOf(endpoints[i]!);
    if (x < 0) return i;
    last = i;
  }
  return last; // float rounding: r * total landed on the very end
}

/**
 * First accepted endpoint scanning circularly from `start`, skipping index
 * `exclude` (-1 for none). Returns its index, or -1 when none is accepted.
 */
export function scanAccepted(
  endpoints: readonly Endpoint[],
  start: number,
  exclude: number,
  ctx: PickContext,
  accept: Accept,
): number {
  const n = endpoints.length;
  let i = start;
  for (let k = 0; k < n; k++) {
    if (i !== exclude && accept(endpoints[i]!, ctx)) return i;
    if (++i === n) i = 0;
  }
  return -1;
}

/**
 * Bounded-load capacity test (Mirrokni, Thorup, Zadimoghaddam, "Consistent
 * Hashing with Bounded Loads", arXiv 1608.01350), weighted as Envoy does.
 *
 * With c = factor / 100, T = total in-flight over all endpoints of the
 * balancer and W their summed weight, endpoint e may take one more request when
 *
 *     e.inFlight + 1 <= ceil(c × (T + 1) × w_e / W)
 *
 * With equal weights this is the paper's ceil(c × m / n) with m = T + 1 (the
 * requests in flight including this one) and n endpoints. Because the
 * capacities sum to at least c × (T + 1) > T, some endpoint always has room.
 */
export function underCapacity(e: Endpoint, factor: number, totalInFlight: number, total: number): boolean {
  const capacity = Math.ceil(((factor / 100) * (totalInFlight + 1) * weightOf(e)) / total);
  return e.inFlight + 1 <= capacity;
}

/** Sum of `inFlight` over all endpoints. */
export function totalInFlight(endpoints: readonly Endpoint[]): number {
  let total = 0;
  for (let i = 0; i < endpoints.length; i++) total += endpoints[i]!.inFlight;
  return total;
}

/**
 * Validates `hashBalanceFactor` at build time. Returns the factor, or 0 when
 * bounded loads are off.
 */
export function checkBalanceFactor(factor: number | undefined): number {
  if (factor === undefined) return 0;
  if (!Number.isFinite(factor) || factor < 100) {
    throw new RangeError(`hashBalanceFactor must be a number >= 100 (percent), got ${String(factor)}`);
  }
  return factor;
}

/**
 * A per-balancer "seen in this pick" marker without per-pick allocation:
 * slot i is seen when `marks[i] === epoch`; starting a pick bumps the epoch.
 */
export class SeenSet {
  readonly #marks: Uint32Array;
  #epoch = 0;

  constructor(size: number) {
    this.#marks = new Uint32Array(size);
  }

  /** Forgets every mark (O(1) except once every 2^32 picks). */
  reset(): void {
    if (++this.#epoch === 0xffffffff) {
      this.#marks.fill(0);
      this.#epoch = 1;
    }
  }

  /** Marks slot `i`; returns false when it was already marked in this pick. */
  add(i: number): boolean {
    if (this.#marks[i] === this.#epoch) return false;
    this.#marks[i] = this.#epoch;
    return true;
  }
}

/**
 * Endpoint slots sorted by key, so tables built from the same set of
 * backends are identical whatever order the pool lists them in.
 */
export function slotsByKey(endpoints: readonly Endpoint[]): number[] {
  const slots: number[] = [];
  for (let i = 0; i < endpoints.length; i++) slots.push(i);
  slots.sort((a, b) => {
    const ka = endpoints[a]!.key;
    const kb = endpoints[b]!.key;
    return ka < kb ? -1 : ka > kb ? 1 : a - b;
  });
  return slots;
}

/**
 * The shared pick of the table-based hash balancers (ring and Maglev):
 * `owners[k]` is the endpoint slot at table position k. Starts at `start`
 * and walks forward, offering each distinct endpoint to `accept` once.
 * Without bounded loads (`factor` 0) the first accepted endpoint wins; with
 * them the first accepted one under capacity wins, else the first accepted.
 */
export function walkOwners(
  endpoints: readonly Endpoint[],
  owners: Uint32Array,
  start: number,
  factor: number,
  seen: SeenSet,
  ctx: PickContext,
  accept: Accept,
): Endpoint | undefined {
  const n = endpoints.length;
  const size = owners.length;
  let k = start;
  if (factor === 0) {
    // Fast path: the owner takes it.
    const owner = endpoints[owners[k]!]!;
    if (accept(owner, ctx)) return owner;
  }
  const inFlight = factor === 0 ? 0 : totalInFlight(endpoints);
  const weights = factor === 0 ? 0 : totalWeight(endpoints);
  seen.reset();
  let distinct = 0;
  let fallback: Endpoint | undefined;
  for (let step = 0; step < size && distinct < n; step++) {
    const slot = owners[k]!;
    if (++k === size) k = 0;
    if (!seen.add(slot)) continue;
    distinct++;
    const e = endpoints[slot]!;
    // The fast path already refused the owner: do not ask twice.
    if ((factor === 0 && step === 0) || !accept(e, ctx)) continue;
    if (factor === 0 || underCapacity(e, factor, inFlight, weights)) return e;
    fallback ??= e;
  }
  return fallback;
}
