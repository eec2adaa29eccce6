/**
 * What the response cache stores and how callers use it: entries by primary
 * key, each holding up to `maxVariants` variants (one per secondary key, RFC
 * 9111 §4.1), bounded in bytes across all variants, with purge by key, key
 * prefix and surrogate key. The one implementation is {@link SharedStore}
 * (shared-store.ts): one store per process, in shared memory, used by every
 * data-plane thread.
 *
 * The store decides nothing about HTTP semantics: callers check
 * storability, freshness and Vary policy before `put` and after `lookup`.
 */
import { fieldLines, splitList, type Fields } from './fields.ts';
import type { TimedResponse } from './freshness.ts';

export const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;
export const DEFAULT_MAX_OBJECT_SIZE = 8 * 1024 * 1024;
export const DEFAULT_MAX_VARIANTS = 16;

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

/** A stored response as callers see it: a copy in the caller's thread. */
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

/** The store's numbers, for every thread of the process. */
export interface CacheCounters {
  stores: number;
  /** Variants removed to stay within `maxBytes` or the entry bound. */
  evictions: number;
  /** Variants hard- or soft-purged. */
  purges: number;
  /** Variants removed because their key reached `maxVariants`. */
  variantsCapped: number;
  /** `put`s refused for exceeding `maxObjectSize`. */
  tooLarge: number;
}

export type Lookup =
  /** `variants`: every stored variant of the key, the matching one first. */
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

/** The response store the `cache` filter, the admin API and metrics use. */
export interface ResponseStore {
  /** The byte bound over every stored variant. */
  readonly maxBytes: number;
  /** The largest body `put` stores. */
  readonly maxObjectSize: number;
  /** Variants kept for one primary key. */
  readonly maxVariants: number;
  /** Bytes charged for all stored variants. */
  readonly size: number;
  /** Stored variants. */
  readonly count: number;
  readonly counters: Readonly<CacheCounters>;
  /**
   * Finds the variant of `primaryKey` whose Vary fields match the request
   * (§4.1); of several, the most recently received. Marks it used.
   */
  lookup(primaryKey: string, requestFields: Fields): Lookup;
  /** The variants stored under `primaryKey`, without marking them used. */
  variants(primaryKey: string): readonly StoredVariant[];
  /**
   * Stores a response. It replaces every stored variant of the key that the
   * same request would select, so the newest response wins (§4.1, §4.4). A
   * key at `maxVariants` loses its least recently used variant.
   */
  put(primaryKey: string, input: PutInput): PutResult;
  /** Replaces a variant's response (after `freshen`) and clears a soft purge; false if the variant is gone. */
  update(stored: StoredVariant, response: TimedResponse): boolean;
  /** Removes one variant (e.g. after a HEAD showed it changed); false if it was already gone. */
  delete(stored: StoredVariant): boolean;
  /** Purges every variant of one primary key; returns how many. */
  purge(primaryKey: string, mode: PurgeMode): number;
  /** Purges every variant whose primary key starts with `prefix` (a scan: an admin operation). */
  purgePrefix(prefix: string, mode: PurgeMode): number;
  /** Purges every variant tagged `tag` by `Surrogate-Key` or `Cache-Tag`. */
  purgeSurrogate(tag: string, mode: PurgeMode): number;
  /** The `n` primary keys with the most hits, most first. */
  top(n: number): Array<{ readonly key: string; readonly hits: number }>;
  /** The surrogate keys of the stored variants (for tests and the admin API). */
  surrogateKeys(): string[];
}

/** Tags from `Surrogate-Key` (space-separated, Fastly) and `Cache-Tag` (comma-separated, Cloudflare/Akamai), de-duplicated. */
export function surrogateKeysOf(fields: Fields): string[] {
  const tags = new Set<string>();
  for (const line of fieldLines(fields, 'surrogate-key')) for (const t of line.split(/[ \t]+/)) if (t !== '') tags.add(t);
  for (const line of fieldLines(fields, 'cache-tag')) for (const t of splitList(line)) tags.add(t);
  return [...tags];
}
