/**
 * One thread's response cache: its view of the process's store (one
 * {@link SharedStore} for every thread), the fills in progress (so that
 * concurrent misses on a key in this thread make one upstream request), the
 * keys recently found uncacheable (so their requests stop waiting on each
 * other), and this thread's request counters. Made once per thread and kept
 * across reloads.
 *
 * The main thread owns the store: it makes it when a config first caches
 * (no memory is taken before), keeps it while the limits stay the same, and
 * makes a new, empty one when they change. Worker threads adopt the buffers
 * it sends with each config (`prepare`).
 */
import type { PurgeMode, ResponseStore, StoreOptions } from './store.ts';
import { SharedStore, type SharedStoreBuffers } from './shared-store.ts';
import { Fill } from './fill.ts';
import type { FillLocks, FillTicket } from './fill-locks.ts';

/** How long a key whose response could not be shared is not collapsed (Varnish's hit-for-miss, 10 s). */
const UNCACHEABLE_MS = 10_000;
/** Keys remembered as uncacheable at most; the oldest are forgotten first. */
const MAX_UNCACHEABLE = 10_000;

/** This thread's request counters, beyond the store's own (process-wide) ones. */
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

/** See {@link ResponseCache.checkpoint}. */
export interface CacheCheckpoint {
  readonly store: SharedStore | undefined;
  readonly enabled: boolean;
}

export class ResponseCache {
  /** `owner`: this thread makes the store (the main thread); otherwise it uses the one it is sent. */
  readonly owner: boolean;
  #store: SharedStore | undefined;
  readonly fills = new Map<string, Fill>();
  /** Keys with a background revalidation under way (stale-while-revalidate). */
  readonly refreshing = new Set<string>();
  readonly #uncacheable = new Map<string, number>();
  readonly counters: ResponseCacheCounters = { hits: 0, misses: 0, collapsed: 0, revalidations: 0, revalidated304: 0, stores: 0, invalidations: 0, backgroundRevalidations: 0, staleOnError: 0 };

  constructor(owner = true) {
    this.owner = owner;
  }

  /** The store `cache` filters use; there is one once a config caches ({@link configure}). */
  get store(): ResponseStore {
    if (this.#store === undefined) throw new Error('no route caches: the response cache has no store');
    return this.#store;
  }

  /** The store, if a config cached at some point. */
  get storeIfAny(): ResponseStore | undefined {
    return this.#store;
  }

  /** Some route of the config has a `cache` filter (the dashboard shows the cache only then). */
  enabled = false;

  /**
   * A config with a `cache` route. The main thread makes the store (new
   * limits: a new, empty store, since entries were admitted under the old
   * ones); a worker checks that it was sent the store for these limits.
   */
  configure(options: StoreOptions): void {
    if (this.owner) {
      if (this.#store === undefined || !this.#store.sameLimits(options)) this.#store = new SharedStore(options);
    } else if (this.#store === undefined || !this.#store.sameLimits(options)) {
      throw new Error('this worker was not sent the response cache store for these limits');
    }
    this.enabled = true;
  }

  /** Main thread: the store's buffers, for the workers (none until a config caches). */
  share(): SharedStoreBuffers | undefined {
    return this.#store?.buffers;
  }

  /** The store in use and whether a route caches: what a reload that fails puts back ({@link restore}). */
  checkpoint(): CacheCheckpoint {
    return { store: this.#store, enabled: this.enabled };
  }

  restore(checkpoint: CacheCheckpoint): void {
    this.#store = checkpoint.store;
    this.enabled = checkpoint.enabled;
  }

  /**
   * Worker: the store the main thread sent with a config, used from now on
   * (whatever becomes of that config, the worker uses the main thread's
   * store); the one already open is kept when it is the same.
   */
  adopt(buffers: SharedStoreBuffers | undefined): void {
    if (buffers === undefined) return;
    const sent = new SharedStore(buffers);
    if (this.#store?.id !== sent.id) this.#store = sent;
  }

  /** The fill of `key` in progress, if one began less than `timeoutMs` ago (an older one is dropped). */
  fillOf(key: string, now: number, timeoutMs: number): Fill | undefined {
    const fill = this.fills.get(key);
    if (fill === undefined || now - fill.startedAt <= timeoutMs) return fill;
    this.fills.delete(key);
    return undefined;
  }

  /** Which keys some thread is filling (fill-locks.ts), once a config caches. */
  get fillLocks(): FillLocks | undefined {
    return this.#store?.fillLocks;
  }

  /** Starts the fill of `key`; other misses on it wait until it settles. `ticket`: the process-wide lock taken for it, given back then. */
  beginFill(key: string, now: number, ticket?: FillTicket): Fill {
    const locks = ticket === undefined ? undefined : this.fillLocks;
    const fill = new Fill(now, () => {
      if (this.fills.get(key) === fill) this.fills.delete(key);
      if (ticket !== undefined) locks?.release(ticket);
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
    const store = this.store;
    return store.purge(key, mode) + store.purgePrefix(`${key}\n`, mode);
  }
}
