/**
 * The response cache as operators see it: its numbers (`GET /api/cache`,
 * `usher_cache_*` metrics) and purges (`POST /api/cache/purge`). The store
 * is one per process (shared-store.ts): its numbers (bytes, entries,
 * evictions, purges, top keys) are read once, from the main thread's view of
 * it, and a purge is applied once. Request counters (hits, misses,
 * collapsed...) are per thread and summed.
 */
import type { Registry } from 'prom-client';
import { collectedCounter, collectedGauge } from '../observe/collected.ts';
import type { ResponseCache, ResponseCacheCounters } from './response-cache.ts';
import type { PurgeMode } from './store.ts';

/** What to purge: one key, every key under a prefix, or every response tagged with a surrogate key. */
export type CachePurge =
  | { readonly key: string; readonly mode: PurgeMode }
  | { readonly prefix: string; readonly mode: PurgeMode }
  | { readonly tag: string; readonly mode: PurgeMode };

export interface CacheStats {
  /** Bytes held and the limit. */
  readonly bytes: number;
  readonly maxBytes: number;
  /** Stored responses (variants). */
  readonly entries: number;
  readonly hits: number;
  readonly misses: number;
  readonly collapsed: number;
  readonly stores: number;
  readonly revalidations: number;
  readonly revalidated304: number;
  readonly backgroundRevalidations: number;
  readonly evictions: number;
  readonly purged: number;
  readonly invalidations: number;
  readonly variantsCapped: number;
  /** The keys with the most hits. */
  readonly top: readonly { readonly key: string; readonly hits: number }[];
}

const TOP = 10;

/** Applies `purge` to the process's store (every thread sees it at once); returns how many responses it removed or marked stale. */
export function purgeCache(cache: ResponseCache, purge: CachePurge): number {
  const store = cache.storeIfAny;
  if (store === undefined) return 0;
  if ('key' in purge) return cache.purgeTarget(purge.key, purge.mode);
  if ('prefix' in purge) return store.purgePrefix(purge.prefix, purge.mode);
  return store.purgeSurrogate(purge.tag, purge.mode);
}

/** One thread's request counters, as plain data (a worker sends them to the main thread). */
export function threadCounters(cache: ResponseCache): ResponseCacheCounters {
  return { ...cache.counters };
}

/** The process's cache: the store's numbers (from `cache`, the main thread's) and the request counters of every thread, summed. */
export function cacheStats(cache: ResponseCache, threads: readonly ResponseCacheCounters[]): CacheStats {
  const sum = (name: keyof ResponseCacheCounters): number => threads.reduce((total, counters) => total + counters[name], 0);
  const store = cache.storeIfAny;
  const counters = store?.counters;
  return {
    bytes: store?.size ?? 0,
    maxBytes: store?.maxBytes ?? 0,
    entries: store?.count ?? 0,
    hits: sum('hits'),
    misses: sum('misses'),
    collapsed: sum('collapsed'),
    stores: sum('stores'),
    revalidations: sum('revalidations'),
    revalidated304: sum('revalidated304'),
    backgroundRevalidations: sum('backgroundRevalidations'),
    evictions: counters?.evictions ?? 0,
    purged: counters?.purges ?? 0,
    invalidations: sum('invalidations'),
    variantsCapped: counters?.variantsCapped ?? 0,
    top: store?.top(TOP) ?? [],
  };
}

/**
 * Declares `usher_cache_*` on a thread's registry, read from its cache at
 * scrape time (`/metrics` sums the threads). The store's own numbers are
 * declared by the thread that owns it only (`owner`), so the sum counts
 * them once.
 */
export function declareCacheMetrics(registry: Registry, cache: ResponseCache): void {
  if (cache.owner) {
    collectedGauge(registry, 'usher_cache_bytes', 'Bytes the response cache holds (bodies, headers and keys).', [], (emit) => emit({}, cache.storeIfAny?.size ?? 0));
    collectedGauge(registry, 'usher_cache_entries', 'Responses (variants) the response cache holds.', [], (emit) => emit({}, cache.storeIfAny?.count ?? 0));
    collectedCounter(registry, 'usher_cache_removed_total', 'Stored responses removed, by reason: evicted (over maxSize, or the entry bound), purged (admin API), variants (over maxVariants for one URL).', ['reason'], (emit) => {
      const counters = cache.storeIfAny?.counters;
      emit({ reason: 'evicted' }, counters?.evictions ?? 0);
      emit({ reason: 'purged' }, counters?.purges ?? 0);
      emit({ reason: 'variants' }, counters?.variantsCapped ?? 0);
    });
  }
  collectedCounter(registry, 'usher_cache_requests_total', 'Requests a cache filter looked up, by result: hit (answered from the cache, fresh or allowed stale), miss (went upstream), collapsed (waited for another request\'s fill first).', ['result'], (emit) => {
    emit({ result: 'hit' }, cache.counters.hits);
    emit({ result: 'miss' }, cache.counters.misses);
    emit({ result: 'collapsed' }, cache.counters.collapsed);
  });
  collectedCounter(registry, 'usher_cache_revalidations_total', 'Stale responses revalidated upstream, by the answer: 304 (the stored body was served) or other.', ['answer'], (emit) => {
    emit({ answer: '304' }, cache.counters.revalidated304);
    emit({ answer: 'other' }, cache.counters.revalidations - cache.counters.revalidated304);
  });
  collectedCounter(registry, 'usher_cache_background_revalidations_total', 'Revalidations sent in the background for stale-while-revalidate (the client got the stale response at once).', [], (emit) => emit({}, cache.counters.backgroundRevalidations));
  collectedCounter(registry, 'usher_cache_stores_total', 'Responses stored.', [], (emit) => emit({}, cache.counters.stores));
  collectedCounter(registry, 'usher_cache_invalidations_total', 'Successful unsafe requests (POST, PUT, DELETE...) that invalidated their URI (RFC 9111 §4.4).', [], (emit) => emit({}, cache.counters.invalidations));
}
