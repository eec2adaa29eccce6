/**
 * Consistent hashing on a ring with virtual nodes (Karger et al. 1997;
 * libketama; nginx `hash ... consistent`; Pingora `pingora-ketama`).
 *
 * Each endpoint places round(160 × weight) points on a 32-bit ring (nginx's
 * 160 per unit of weight; 160 keeps the spread of shares around ±10% for a
 * handful of backends), point j at `hashString(key, j)`. A request goes to
 * the owner of the first point at or after `ctx.hash`, wrapping around. The
 * ring is a pure function of the set of (key, weight): removing an endpoint
 * moves only the keys it owned, and adding it back restores the old mapping.
 * Equal point hashes are ordered by endpoint key, so listing order never
 * matters.
 *
 * Fallback: when the owner is not accepted the walk continues clockwise to
 * the next *distinct* endpoint (each endpoint is offered to `accept` at most
 * once per pick), so the same key always falls back to the same endpoint and
 * a removed backend's keys spread over its ring neighbours.
 *
 * Bounded loads (`hashBalanceFactor`, HAProxy `hash-balance-factor`, Envoy
 * `hash_balance_factor`; arXiv 1608.01350): an endpoint over its capacity
 * (see `underCapacity` in common.ts: inFlight + 1 <= ceil(c × (T + 1) × w / W))
 * is passed over like a non-accepted one. If every accepted endpoint is full
 * the first accepted one on the walk is returned.
 *
 * Cost per pick: a binary search over the ring (log2 of 160 × total weight
 * steps); with bounded loads also O(n) to sum in-flight and weights. Build:
 * 160 × weight hashes per endpoint and a sort. Past MAX_POINTS (2^18; Envoy
 * allows 1024 to 8M) every count is halved until the ring fits (give or take rounding): 100 backends
 * of weight 1000 still get ~2,500 points each.
 */
import type { Accept, Balancer, BalancerFactory, BalancerOptions, Endpoint, PickContext } from './types.ts';
import { hashString } from './hash-fn.ts';
import { checkBalanceFactor, SeenSet, slotsByKey, walkOwners, weightOf } from './common.ts';

/** Ring points per unit of weight (ketama, nginx, Pingora). */
export const POINTS_PER_WEIGHT = 160;
/** Ring size above which point counts are halved: 2^18 points, 2 MiB of typed arrays, ~0.1 s to build. */
export const MAX_POINTS = 1 << 18;
/** Packing factor: a point is sorted as hash × RANK_SPACE + key rank (exact below 2^53). */
const RANK_SPACE = 1 << 21;

interface Ring {
  readonly hashes: Uint32Array;
  readonly owners: Uint32Array;
}

function buildRing(endpoints: readonly Endpoint[]): Ring {
  const n = endpoints.length;
  if (n >= RANK_SPACE) throw new RangeError(`hash ring supports at most ${RANK_SPACE - 1} endpoints, got ${n}`);
  const counts = new Uint32Array(n);
  let points = 0;
  for (let i = 0; i < n; i++) {
    counts[i] = Math.max(1, Math.round(POINTS_PER_WEIGHT * weightOf(endpoints[i]!)));
    points += counts[i]!;
  }
  if (points > MAX_POINTS) {
    // Halve every count until the ring fits. Scaling by a power of two keeps
    // the scale unchanged across most membership changes, so a removal still
    // moves only the removed endpoint's keys.
    const shift = Math.ceil(Math.log2(points / MAX_POINTS));
    points = 0;
    for (let i = 0; i < n; i++) {
      counts[i] = Math.max(1, Math.round(counts[i]! / 2 ** shift));
      points += counts[i]!;
    }
  }
  const bySlot = slotsByKey(endpoints); // rank -> slot
  const packed = new Float64Array(points);
  let p = 0;
  for (let rank = 0; rank < n; rank++) {
    const slot = bySlot[rank]!;
    const key = endpoints[slot]!.key;
    for (let j = 0; j < counts[slot]!; j++) packed[p++] = hashString(key, j) * RANK_SPACE + rank;
  }
  packed.sort();
  const hashes = new Uint32Array(points);
  const owners = new Uint32Array(points);
  for (let k = 0; k < points; k++) {
    const v = packed[k]!;
    const rank = v % RANK_SPACE;
    hashes[k] = (v - rank) / RANK_SPACE;
    owners[k] = bySlot[rank]!;
  }
  return { hashes, owners };
}

class RingHash implements Balancer {
  readonly #endpoints: readonly Endpoint[];
  readonly #hashes: Uint32Array;
  readonly #owners: Uint32Array;
  readonly #factor: number;
  readonly #seen: SeenSet;

  constructor(endpoints: readonly Endpoint[], options: BalancerOptions) {
    this.#factor = checkBalanceFactor(options.hashBalanceFactor);
    this.#endpoints = endpoints;
    const ring = buildRing(endpoints);
    this.#hashes = ring.hashes;
    this.#owners = ring.owners;
    this.#seen = new SeenSet(endpoints.length);
  }

  /** Index of the first ring point at or after `hash`, wrapping to 0. */
  #locate(hash: number): number {
    const hashes = this.#hashes;
    let lo = 0;
    let hi = hashes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (hashes[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    return lo === hashes.length ? 0 : lo;
  }

  pick(ctx: PickContext, accept: Accept): Endpoint | undefined {
    if (this.#endpoints.length === 0) return undefined;
    return walkOwners(this.#endpoints, this.#owners, this.#locate(ctx.hash >>> 0), this.#factor, this.#seen, ctx, accept);
  }
}

/**
 * Factory for ketama-style consistent hashing on `ctx.hash`, with optional
 * bounded loads. Registered as `hash`.
 */
export const createRingHash: BalancerFactory = (endpoints: readonly Endpoint[], options: BalancerOptions): Balancer =>
  new RingHash(endpoints, options);
