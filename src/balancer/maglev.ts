/**
 * Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software
 * Network Load Balancer", NSDI 2016, §3.4), weighted as Envoy's `maglev_lb`.
 *
 * Each endpoint gets a permutation of the M = 65537 table slots from two
 * hashes of its key: offset = h1 % M, skip = h2 % (M - 1) + 1, slot j =
 * (offset + j × skip) % M (M prime, so every skip visits every slot). The
 * table is filled in rounds; in each round every endpoint whose share is due
 * claims its next preferred free slot. Weighted as Envoy does: with weights
 * normalised so the largest is 1, endpoint k claims a slot in round r when
 * `w_k × r >= claimed_k`, so table shares follow weights. A request goes to
 * `table[ctx.hash % M]`. M = 65537 is Envoy's default: big enough that each
 * of up to a few hundred endpoints holds its share within ~1%, small enough
 * (256 KiB) to rebuild in milliseconds.
 *
 * Endpoints are entered in key order, so the table is a pure function of the
 * set of (key, weight); adding back a removed endpoint restores the old
 * table exactly. Unlike a ring, Maglev trades a little stability for balance
 * and speed: on removal a few keys of surviving endpoints move too (paper
 * §3.4, Envoy docs: "roughly 2× more keys move" than ring hash).
 *
 * Fallback: when the chosen endpoint is not accepted, the following table
 * slots are probed in order, each distinct endpoint offered to `accept` at
 * most once, so the same key falls back to the same endpoint, and because
 * table entries are interleaved a failed endpoint's keys spread over all
 * others. Bounded loads (`hashBalanceFactor`) as in `hash.ts`.
 *
 * Cost per pick: one table read; probing only when the owner is refused.
 * Build: about M × ln M permutation steps.
 */
import type { Accept, Balancer, BalancerFactory, BalancerOptions, Endpoint, PickContext } from './types.ts';
import { hashString } from './hash-fn.ts';
import { checkBalanceFactor, SeenSet, slotsByKey, walkOwners, weightOf } from './common.ts';

/** Lookup table size: prime, Envoy's default. */
export const MAGLEV_TABLE_SIZE = 65537;
/** Seeds of the two independent key hashes (offset, skip). */
const OFFSET_SEED = 0x4d41474c; // "MAGL"
const SKIP_SEED = 0x45562121; // "EV!!"

/** Builds the lookup table: table[slot] = endpoint slot in `endpoints`. */
function buildTable(endpoints: readonly Endpoint[], size: number): Uint32Array {
  const n = endpoints.length;
  const table = new Uint32Array(size);
  if (n === 0) return table;
  const order = slotsByKey(endpoints);
  const position = new Float64Array(n); // next permutation value, per rank
  const skip = new Float64Array(n);
  const weight = new Float64Array(n);
  const claimed = new Float64Array(n);
  let maxWeight = 0;
  for (let r = 0; r < n; r++) {
    const e = endpoints[order[r]!]!;
    position[r] = hashString(e.key, OFFSET_SEED) % size;
    skip[r] = (hashString(e.key, SKIP_SEED) % (size - 1)) + 1;
    weight[r] = weightOf(e);
    if (weight[r]! > maxWeight) maxWeight = weight[r]!;
  }
  for (let r = 0; r < n; r++) weight[r] = weight[r]! / maxWeight;

  const filled = new Uint8Array(size);
  let count = 0;
  for (let round = 0; count < size; round++) {
    for (let r = 0; r < n && count < size; r++) {
      if (weight[r]! * round < claimed[r]!) continue;
      claimed[r] = claimed[r]! + 1;
      let c = position[r]!;
      while (filled[c] === 1) c = (c + skip[r]!) % size;
      position[r] = (c + skip[r]!) % size;
      filled[c] = 1;
      table[c] = order[r]!;
      count++;
    }
  }
  return table;
}

class Maglev implements Balancer {
  readonly #endpoints: readonly Endpoint[];
  readonly #table: Uint32Array;
  readonly #factor: number;
  readonly #seen: SeenSet;

  constructor(endpoints: readonly Endpoint[], options: BalancerOptions) {
    this.#factor = checkBalanceFactor(options.hashBalanceFactor);
    this.#endpoints = endpoints;
    this.#table = buildTable(endpoints, MAGLEV_TABLE_SIZE);
    this.#seen = new SeenSet(endpoints.length);
  }

  pick(ctx: PickContext, accept: Accept): Endpoint | undefined {
    if (this.#endpoints.length === 0) return undefined;
    return walkOwners(this.#endpoints, this.#table, (ctx.hash >>> 0) % MAGLEV_TABLE_SIZE, this.#factor, this.#seen, ctx, accept);
  }
}

/**
 * Factory for Maglev consistent hashing on `ctx.hash`, with optional bounded
 * loads. Registered as `maglev`.
 */
export const createMaglev: BalancerFactory = (endpoints: readonly Endpoint[], options: BalancerOptions): Balancer =>
  new Maglev(endpoints, options);
