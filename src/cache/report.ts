/**
 * The response cache as operators see it: its numbers (`GET /api/cache`,
 * `usher_cache_*` metrics) and purges (`POST /api/cache/purge`). Each
 * data-plane thread has its own cache, so a purge goes to every thread and
 * the numbers are summed over them.
 */
import type { Registry } from 'prom-client';
import { collectedCounter, collectedGauge } from '../observe/collected.ts';
import type { ResponseCache } from './response-cache.ts';
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

/** Applies `purge` (if any) to one thread's cache; returns how many responses it removed or marked stale, and the cache's numbers after it. */
export function cacheReport(cache: ResponseCache, purge?: CachePurge): { purged: number; stats: CacheStats } {
  const store = cache.store;
  let purged = 0;
  if (purge !== undefined) {
    if ('key' in purge) purged = cache.purgeTarget(purge.key, purge.mode);
    else if ('prefix' in purge) purged = store.purgePrefix(purge.prefix, purge.mode);
    else purged = store.purgeSurrogate(purge.tag, purge.mode);
  }
  const c = cache.counters;
  const s = store.counters;
  return {
    purged,
    stats: {
      bytes: store.size,
      maxBytes: store.maxBytes,
      entries: store.count,
      hits: c.hits,
      misses: c.misses,
      collapsed: c.collapsed,
      stores: c.stores,
      revalidations: c.revalidations,
      revalidated304: c.revalidated304,
      backgroundRevalidations: c.backgroundRevalidations,
      evictions: s.evictions,
      purged: s.purges,
      invalidations: c.invalidations,
      variantsCapped: s.variantsCapped,
      top: store.top(TOP),
    },
  };
}

/** Sums the reports of several threads (a key's hits add up across threads). */
export function sumReports(reports: readonly { purged: number; stats: CacheStats }[]): { purged: number; stats: CacheStats } {
  const top = new Map<string, number>();
  let purged = 0;
  const sum: Record<string, number> = {};
  for (const report of reports) {
    purged += report.purged;
    for (const [name, value] of Object.entries(report.stats)) if (typeof value === 'number') sum[name] = (sum[name] ?? 0) + value;
    for (const { key, hits } of report.stats.top) top.set(key, (top.get(key) ?? 0) + hits);
  }
  const stats = { ...(sum as unknown as Omit<CacheStats, 'top'>), top: [...top].map(([key, hits]) => ({ key, hits })).sort((a, b) => b.hits - a.hits).slice(0, TOP) };
  return { purged, stats };
}

/** Declares `usher_cache_*` on a thread's registry, read from its cache at scrape time (`/metrics` sums the threads). */
export function declareCacheMetrics(registry: Registry, cache: ResponseCache): void {
  collectedGauge(registry, 'usher_cache_bytes', 'Bytes the response cache holds (bodies, headers and keys).', [], (emit) => emit({}, cache.store.size));
  collectedGauge(registry, 'usher_cache_entries', 'Responses (variants) the response cache holds.', [], (emit) => emit({}, cache.store.count));
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
  collectedCounter(registry, 'usher_cache_removed_total', 'Stored responses removed, by reason: evicted (least recently used, over maxSize), purged (admin API), variants (over maxVariants for one URL).', ['reason'], (emit) => {
    emit({ reason: 'evicted' }, cache.store.counters.evictions);
    emit({ reason: 'purged' }, cache.store.counters.purges);
    emit({ reason: 'variants' }, cache.store.counters.variantsCapped);
  });
  collectedCounter(registry, 'usher_cache_invalidations_total', 'Successful unsafe requests (POST, PUT, DELETE...) that invalidated their URI (RFC 9111 §4.4).', [], (emit) => emit({}, cache.counters.invalidations));
}
