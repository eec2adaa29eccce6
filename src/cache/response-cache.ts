/**
 * One thread's response cache: the {@link CacheStore}, the fills in progress
 * (so that concurrent misses on a key make one upstream request), the keys
 * recently found uncacheable (so their requests stop waiting on each other),
 * and the counters metrics and the admin API read. Made once per process
 * thread and kept across reloads; `configure` resizes it.
 */
import { CacheStore, type PurgeMode, type StoreOptions } from './store.ts';
import { Fill } from './fill.ts';



/** How long a key whose response could not be shared is not collapsed (Varnish's hit-for-miss, 10 s). */
const UNCACHEABLE_MS = 10_000;
/** Keys remembered as uncacheable at most; the oldest are forgotten first. */
const MAX_UNCACHEABLE = 10_000;

/** Counters beyond the store's own, for metrics. */
export interface ResponseCacheCounters {
  /** Requests answered from the cache (fresh or allowed stale). */
  hits: number;
  /** Requests that went upstream for lack of a usable stored response. */
  misses: number;
  /** Requests that waited for another request's fill. */
  collapsed: number;
  /** Revalidations sent upstream, and those answered 304. */
  revalidations: number;
  revalidated304: number;
  /** Responses stored. */
  stores: number;
  /** Successful unsafe requests that invalidated stored responses. */
  invalidations: number;
  /** Revalidations sent in the background for stale-while-revalidate. */
  backgroundRevalidations: number;
  /** Stale responses served because the backends failed (stale-if-error). */
  staleOnError: number;
}

export class ResponseCache {
  #store: CacheStore;
  #options: StoreOptions;
  readonly fills = new Map<string, Fill>();
  /** Keys with a background revalidation under way (stale-while-revalidate). */
  readonly refreshing = new Set<string>();
  readonly #uncacheable = new Map<string, number>();
  readonly counters: ResponseCacheCounters = { hits: 0, misses: 0, collapsed: 0, revalidations: 0, revalidated304: 0, stores: 0, invalidations: 0, backgroundRevalidations: 0, staleOnError: 0 };

  constructor(options: StoreOptions = {}) {
    this.#options = options;
    this.#store = new CacheStore(options);
  }

  get store(): CacheStore {
    return this.#store;
  }

  /** Some route of the config has a `cache` filter (the dashboard shows the cache only then). */
  enabled = false;

  /** New limits (a reload): a store of another size starts empty, since entries were admitted under the old limits. */
  configure(options: StoreOptions): void {
    this.enabled = true;
    if (options.maxBytes === this.#options.maxBytes && options.maxObjectSize === this.#options.maxObjectSize && options.maxVariants === this.#options.maxVariants) return;
    this.#options = options;
    this.#store = new CacheStore(options);
  }

  /** The fill of `key` in progress, if one began less than `timeoutMs` ago (an older one is dropped). */
  fillOf(key: string, now: number, timeoutMs: number): Fill | undefined {
    const fill = this.fills.get(key);
    if (fill === undefined || now - fill.startedAt <= timeoutMs) return fill;
    this.fills.delete(key);
    return undefined;
  }

  /** Starts the fill of `key`; other misses on it wait until it settles. */
  beginFill(key: string, now: number): Fill {
    const fill = new Fill(now, () => {
      if (this.fills.get(key) === fill) this.fills.delete(key);
    });
    this.fills.set(key, fill);
    return fill;
  }

  /** The response for `key` could not be shared: its requests stop collapsing for a while. */
  markUncacheable(key: string, now: number): void {
    this.#uncacheable.delete(key);
    this.#uncacheable.set(key, now + UNCACHEABLE_MS);
    if (this.#uncacheable.size > MAX_UNCACHEABLE) this.#uncacheable.delete(this.#uncacheable.keys().next().value!);
  }

  isUncacheable(key: string, now: number): boolean {
    const until = this.#uncacheable.get(key);
    if (until === undefined) return false;
    if (until > now) return true;
    this.#uncacheable.delete(key);
    return false;
  }

  /** Every stored response of a target URI, whatever else its key holds (headers, cookies). */
  purgeTarget(key: string, mode: PurgeMode = 'hard'): number {
    return this.#store.purge(key, mode) + this.#store.purgePrefix(`${key}\n`, mode);
  }
}
