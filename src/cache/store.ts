/**
 * An in-memory response store: entries by primary key, each holding up to
 * `maxVariants` variants (one per secondary key, RFC 9111 §4.1), bounded in
 * bytes across all variants by least-recently-used eviction, with purge by
 * key, key prefix and surrogate key.
 *
 * The store decides nothing about HTTP semantics: callers check
 * storability, freshness and Vary policy before `put` and after `lookup`.
 * Its counters are plain numbers for a metrics layer to read.
 */
import { fieldLines, splitList, type Fields } from './fields.ts';
import type { TimedResponse } from './freshness.ts';
import { varyingFields, varyMatches } from './vary.ts';

export const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;
export const DEFAULT_MAX_OBJECT_SIZE = 8 * 1024 * 1024;
export const DEFAULT_MAX_VARIANTS = 16;
/** Bytes charged per variant on top of its body, headers and key: the objects and Map slots around it. */
const VARIANT_OVERHEAD = 256;

export interface StoreOptions {
  readonly maxBytes?: number;
  readonly maxObjectSize?: number;
  readonly maxVariants?: number;
}

/** Options that cannot work together; thrown by the constructor. */
export class CacheStoreConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CacheStoreConfigError';
  }
}

/** A stored response as callers see it. */
export interface StoredVariant {
  readonly primaryKey: string;
  /** The lower-case field names of its Vary. */
  readonly vary: readonly string[];
  /** The request fields named in `vary`, as sent with the request that stored it. */
  readonly requestFields: Fields;
  readonly response: TimedResponse;
  readonly body: Buffer;
  /** Bytes charged against `maxBytes`. */
  readonly size: number;
  readonly surrogateKeys: readonly string[];
  /** Soft-purged: to be treated as stale (see `reuseDecision`'s `invalidated`). */
  readonly invalidated: boolean;
  readonly hits: number;
}

class Variant implements StoredVariant {
  readonly primaryKey: string;
  readonly vary: readonly string[];
  readonly requestFields: Fields;
  response: TimedResponse;
  readonly body: Buffer;
  size: number;
  surrogateKeys: readonly string[];
  invalidated = false;
  hits = 0;
  constructor(primaryKey: string, vary: readonly string[], requestFields: Fields, response: TimedResponse, body: Buffer) {
    this.primaryKey = primaryKey;
    this.vary = vary;
    this.requestFields = requestFields;
    this.response = response;
    this.body = body;
    this.surrogateKeys = surrogateKeysOf(response.fields);
    this.size = sizeOf(primaryKey, requestFields, response.fields, body);
  }
}

interface Entry {
  readonly variants: Variant[];
  /** Hits on this key across all its variants, past and present, for `top`. */
  hits: number;
}

export interface CacheCounters {
  /** Lookups that found a variant matching the request (fresh or not: the policy decides). */
  hits: number;
  /** Lookups that found no entry, or no matching variant. */
  misses: number;
  stores: number;
  /** Variants removed to stay within `maxBytes`. */
  evictions: number;
  /** Variants hard- or soft-purged. */
  purges: number;
  /** Variants removed because their key reached `maxVariants`. */
  variantsCapped: number;
  /** `put`s refused for exceeding `maxObjectSize`. */
  tooLarge: number;
}

export type Lookup =
  | { readonly kind: 'hit'; readonly variant: StoredVariant; readonly variants: readonly StoredVariant[] }
  | { readonly kind: 'uri-miss' }
  /** Stored variants exist but none matches the request's Vary fields; they are still useful for revalidation. */
  | { readonly kind: 'vary-miss'; readonly variants: readonly StoredVariant[] };

export interface PutInput {
  /** Vary names (from `varyNames`; never `'*'`, which is not storable). */
  readonly vary: readonly string[];
  /** The full request fields; only those named in `vary` are kept. */
  readonly requestFields: Fields;
  readonly response: TimedResponse;
  readonly body: Buffer;
}

export type PutResult =
  | { readonly stored: true; readonly variant: StoredVariant }
  | { readonly stored: false; readonly reason: 'too-large' };

export type PurgeMode = 'hard' | 'soft';

export class CacheStore {
  readonly maxBytes: number;
  readonly maxObjectSize: number;
  readonly maxVariants: number;
  readonly counters: CacheCounters = { hits: 0, misses: 0, stores: 0, evictions: 0, purges: 0, variantsCapped: 0, tooLarge: 0 };
  readonly #entries = new Map<string, Entry>();
  /** Every variant, least recently used first: a Set keeps insertion order, and a touch re-inserts. */
  readonly #lru = new Set<Variant>();
  readonly #bySurrogate = new Map<string, Set<Variant>>();
  #bytes = 0;

  constructor(options: StoreOptions = {}) {
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.maxObjectSize = options.maxObjectSize ?? DEFAULT_MAX_OBJECT_SIZE;
    this.maxVariants = options.maxVariants ?? DEFAULT_MAX_VARIANTS;
    if (!(this.maxVariants >= 1) || !Number.isInteger(this.maxVariants)) throw new CacheStoreConfigError(`maxVariants must be a positive integer, not ${this.maxVariants}`);
    if (!(this.maxObjectSize > 0)) throw new CacheStoreConfigError(`maxObjectSize must be positive, not ${this.maxObjectSize}`);
    // An object that fits maxObjectSize must fit the store, or put could evict everything and still not fit.
    if (this.maxObjectSize + VARIANT_OVERHEAD > this.maxBytes) throw new CacheStoreConfigError(`maxObjectSize (${this.maxObjectSize}) must be below maxBytes (${this.maxBytes})`);
  }

  /** Bytes charged for all stored variants. */
  get size(): number {
    return this.#bytes;
  }

  /** Stored variants. */
  get count(): number {
    return this.#lru.size;
  }

  /**
   * Finds the variant of `primaryKey` whose Vary fields match the request
   * (§4.1); of several, the most recently received. Counts a hit or a miss
   * and marks the variant recently used.
   */
  lookup(primaryKey: string, requestFields: Fields): Lookup {
    const entry = this.#entries.get(primaryKey);
    if (entry === undefined) {
      this.counters.misses++;
      return { kind: 'uri-miss' };
    }
    let best: Variant | undefined;
    for (const v of entry.variants) {
      if (varyMatches(v.requestFields, v.vary, requestFields) && (best === undefined || v.response.responseTime > best.response.responseTime)) best = v;
    }
    if (best === undefined) {
      this.counters.misses++;
      return { kind: 'vary-miss', variants: [...entry.variants] };
    }
    this.counters.hits++;
    best.hits++;
    entry.hits++;
    this.#touch(best);
    return { kind: 'hit', variant: best, variants: [...entry.variants] };
  }

  /** The variants stored under `primaryKey`, without counting or touching them. */
  variants(primaryKey: string): readonly StoredVariant[] {
    return [...(this.#entries.get(primaryKey)?.variants ?? [])];
  }

  /**
   * Stores a response. It replaces every stored variant of the key that the
   * same request would select, so the newest response wins (§4.1, §4.4). A
   * key at `maxVariants` loses its least recently used variant; the store
   * then evicts least recently used variants until it fits `maxBytes`.
   */
  put(primaryKey: string, input: PutInput): PutResult {
    if (input.body.length > this.maxObjectSize) {
      this.counters.tooLarge++;
      return { stored: false, reason: 'too-large' };
    }
    const variant = new Variant(primaryKey, input.vary, varyingFields(input.vary, input.requestFields), input.response, input.body);
    let entry = this.#entries.get(primaryKey);
    if (entry === undefined) {
      entry = { variants: [], hits: 0 };
      this.#entries.set(primaryKey, entry);
    }
    for (const old of [...entry.variants]) {
      if (varyMatches(old.requestFields, old.vary, input.requestFields)) this.#remove(old);
    }
    while (entry.variants.length >= this.maxVariants) {
      const oldest = this.#leastRecent(entry.variants);
      this.#remove(oldest);
      this.counters.variantsCapped++;
    }
    // #remove may have dropped an emptied entry: re-attach it.
    this.#entries.set(primaryKey, entry);
    entry.variants.push(variant);
    this.#lru.add(variant);
    this.#bytes += variant.size;
    this.#index(variant);
    this.counters.stores++;
    this.#evictToFit();
    return { stored: true, variant };
  }

  /** Replaces a variant's response (after `freshen`), clears a soft purge, and re-indexes its surrogate keys. */
  update(stored: StoredVariant, response: TimedResponse): boolean {
    const v = this.#own(stored);
    if (v === undefined) return false;
    this.#unindex(v);
    this.#bytes -= v.size;
    v.response = response;
    v.invalidated = false;
    v.surrogateKeys = surrogateKeysOf(response.fields);
    v.size = sizeOf(v.primaryKey, v.requestFields, response.fields, v.body);
    this.#bytes += v.size;
    this.#index(v);
    this.#touch(v);
    this.#evictToFit();
    return true;
  }

  /** Removes one variant (e.g. after a HEAD showed it changed); false if it was already gone. */
  delete(stored: StoredVariant): boolean {
    const v = this.#own(stored);
    if (v === undefined) return false;
    this.#remove(v);
    return true;
  }

  /** Purges every variant of one primary key; returns how many. */
  purge(primaryKey: string, mode: PurgeMode): number {
    return this.#purge([...(this.#entries.get(primaryKey)?.variants ?? [])], mode);
  }

  /** Purges every variant whose primary key starts with `prefix` (a linear scan: an admin operation, not a request path). */
  purgePrefix(prefix: string, mode: PurgeMode): number {
    const victims: Variant[] = [];
    for (const [key, entry] of this.#entries) if (key.startsWith(prefix)) victims.push(...entry.variants);
    return this.#purge(victims, mode);
  }

  /** Purges every variant tagged `tag` by `Surrogate-Key` or `Cache-Tag`. */
  purgeSurrogate(tag: string, mode: PurgeMode): number {
    return this.#purge([...(this.#bySurrogate.get(tag) ?? [])], mode);
  }

  /** The `n` primary keys with the most hits, most first. */
  top(n: number): Array<{ readonly key: string; readonly hits: number }> {
    return [...this.#entries]
      .map(([key, e]) => ({ key, hits: e.hits }))
      .sort((a, b) => b.hits - a.hits || (a.key < b.key ? -1 : 1))
      .slice(0, Math.max(0, n));
  }

  /** The surrogate keys currently indexed (for tests and the admin API). */
  surrogateKeys(): string[] {
    return [...this.#bySurrogate.keys()];
  }

  #purge(victims: readonly Variant[], mode: PurgeMode): number {
    for (const v of victims) {
      if (mode === 'hard') this.#remove(v);
      else v.invalidated = true;
    }
    this.counters.purges += victims.length;
    return victims.length;
  }

  #own(stored: StoredVariant): Variant | undefined {
    return stored instanceof Variant && this.#lru.has(stored) ? stored : undefined;
  }

  #touch(v: Variant): void {
    this.#lru.delete(v);
    this.#lru.add(v);
  }

  #leastRecent(variants: readonly Variant[]): Variant {
    const set = new Set(variants);
    for (const v of this.#lru) if (set.has(v)) return v;
    return variants[0]!;
  }

  #evictToFit(): void {
    while (this.#bytes > this.maxBytes) {
      const oldest = this.#lru.values().next().value;
      if (oldest === undefined) return;
      this.#remove(oldest);
      this.counters.evictions++;
    }
  }

  #remove(v: Variant): void {
    if (!this.#lru.delete(v)) return;
    this.#bytes -= v.size;
    this.#unindex(v);
    const entry = this.#entries.get(v.primaryKey);
    if (entry === undefined) return;
    const i = entry.variants.indexOf(v);
    if (i >= 0) entry.variants.splice(i, 1);
    if (entry.variants.length === 0) this.#entries.delete(v.primaryKey);
  }

  #index(v: Variant): void {
    for (const tag of v.surrogateKeys) {
      let set = this.#bySurrogate.get(tag);
      if (set === undefined) this.#bySurrogate.set(tag, (set = new Set()));
      set.add(v);
    }
  }

  #unindex(v: Variant): void {
    for (const tag of v.surrogateKeys) {
      const set = this.#bySurrogate.get(tag);
      if (set === undefined) continue;
      set.delete(v);
      if (set.size === 0) this.#bySurrogate.delete(tag);
    }
  }
}

/** Tags from `Surrogate-Key` (space-separated, Fastly) and `Cache-Tag` (comma-separated, Cloudflare/Akamai), de-duplicated. */
export function surrogateKeysOf(fields: Fields): string[] {
  const tags = new Set<string>();
  for (const line of fieldLines(fields, 'surrogate-key')) for (const t of line.split(/[ \t]+/)) if (t !== '') tags.add(t);
  for (const line of fieldLines(fields, 'cache-tag')) for (const t of splitList(line)) tags.add(t);
  return [...tags];
}

function sizeOf(key: string, request: Fields, response: Fields, body: Buffer): number {
  let n = VARIANT_OVERHEAD + body.length + key.length;
  for (const fields of [request, response]) {
    for (const [name, lines] of Object.entries(fields)) for (const l of lines ?? []) n += name.length + l.length + 4;
  }
  return n;
}
