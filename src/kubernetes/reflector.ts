/**
 * Keeps a local copy of one collection (a kind, in a namespace or all, with
 * label and field selectors) up to date: client-go's Reflector, for usher.
 *
 *  - **List, then watch** from the list's resourceVersion, asking for
 *    bookmarks, so the version keeps moving while nothing the selector sees
 *    changes (a resume after a quiet hour is not a 410).
 *  - **A stream that ends or breaks resumes** from the last version seen (an
 *    event's or a bookmark's), without listing again: the server ends watches
 *    every `timeoutSeconds` (5-10 min here, like client-go), and proxies cut
 *    them.
 *  - **410 Gone** (the version was compacted, or the server restarted and lost
 *    its watch cache) **lists again** and diffs the new list against the copy:
 *    objects whose resourceVersion did not change are not touched, so what is
 *    built from them keeps its identity.
 *  - **Failures back off** with jitter, doubling from `initialBackoffMs` to
 *    `maxBackoffMs`; 401 and 403 are logged with the verb and resource, and
 *    retried the same way (someone may fix the RBAC). The copy is kept
 *    whatever happens: **while the API server is unreachable, the last known
 *    state stands.**
 *  - **A stalled stream** (no byte, not even a bookmark, for
 *    `timeoutSeconds` + `stallGraceMs`) is abandoned and resumed.
 *
 * `onChange` is called after the copy changed: once per list (with every
 * difference applied) and once per watch event that changed it.
 */
import type { Logger } from '../observe/logger.ts';
import type { KubeClient } from './client.ts';
import { describeCall, KubernetesApiError, KubernetesNetworkError } from './errors.ts';
import { qualifiedResource, type ResourceKind } from './resources.ts';
import type { KubeObject, Status, WatchEvent } from './types.ts';

/** What a reflector counts, for metrics. */
export interface ReflectorStats {
  /** Watch events received, by type (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR). */
  readonly events: Map<string, number>;
  /** Lists after the first (410 Gone, or failures before the first watch). */
  relists: number;
  /** Watches started again after the first (a normal end, a cut, a stall, an error). */
  watchRestarts: number;
  /** Failed requests, by HTTP status or `network`. */
  readonly errors: Map<string, number>;
}

export interface ReflectorTiming {
  /** First wait after a failure; doubles per failure in a row. Default 500 ms. */
  readonly initialBackoffMs?: number;
  /** Longest wait. Default 30 s. */
  readonly maxBackoffMs?: number;
  /** The `timeoutSeconds` asked of each watch. Default: 300-600 s, random per watch (spreads reconnections, as client-go does). */
  readonly watchTimeoutSeconds?: () => number;
  /** A watch with no byte for its timeout plus this long is treated as stalled. Default 30 s. */
  readonly stallGraceMs?: number;
  /** Page size of lists. Default 500 (client-go's). */
  readonly pageSize?: number;
  /** Jitter source, [0, 1). Default Math.random. */
  readonly random?: () => number;
}

export interface ReflectorOptions {
  readonly kind: ResourceKind;
  readonly namespace?: string | undefined;
  readonly labelSelector?: string | undefined;
  readonly fieldSelector?: string | undefined;
  readonly onChange: (reflector: Reflector) => void;
  readonly logger: Logger;
  readonly timing?: ReflectorTiming;
  /** Where to count (shared by the reflectors of a kind, so metrics outlive each one); default its own. */
  readonly stats?: ReflectorStats;
}

export function newReflectorStats(): ReflectorStats {
  return { events: new Map(), relists: 0, watchRestarts: 0, errors: new Map() };
}

/** A watch that ended within this long without an event counts as a failure (so a server that closes at once is not hammered). */
const SHORT_WATCH_MS = 1000;

export class Reflector<T extends KubeObject = KubeObject> {
  readonly kind: ResourceKind;
  readonly namespace: string | undefined;
  readonly labelSelector: string | undefined;
  readonly fieldSelector: string | undefined;
  /** The copy: `namespace/name` (or `name`) → object. */
  readonly store = new Map<string, T>();
  readonly stats: ReflectorStats;
  /** The version the next watch starts from: the last list's, event's or bookmark's. */
  resourceVersion = '';
  /** Set once the first list succeeded: the copy reflects the server. */
  synced = false;
  /** The last failure, until a request succeeds again. */
  lastError: Error | undefined;
  /** When the API server last answered well (a list, a watch event or bookmark, a watch's normal end), ms since the epoch. */
  lastSuccessAt: number | undefined;
  /** Resolves once the first list has succeeded or failed (or the reflector stopped): how long a start waits. */
  readonly attempted: Promise<void>;
  #attempted: () => void = () => undefined;
  readonly #client: KubeClient;
  readonly #onChange: (reflector: Reflector) => void;
  readonly #logger: Logger;
  readonly #timing: Required<ReflectorTiming>;
  readonly #abort = new AbortController();
  #failures = 0;
  #lists = 0;
  #watches = 0;
  #wake: (() => void) | undefined;
  #running: Promise<void> | undefined;
  /** The error last logged, so a failure repeated every backoff is logged as it starts, then once a minute. */
  #logged: { readonly text: string; readonly at: number } | undefined;

  constructor(client: KubeClient, options: ReflectorOptions) {
    this.#client = client;
    this.kind = options.kind;
    this.namespace = options.namespace;
    this.labelSelector = options.labelSelector;
    this.fieldSelector = options.fieldSelector;
    this.#onChange = options.onChange;
    this.#logger = options.logger;
    this.stats = options.stats ?? newReflectorStats();
    this.attempted = new Promise<void>((resolve) => (this.#attempted = resolve));
    const random = options.timing?.random ?? Math.random;
    this.#timing = {
      initialBackoffMs: options.timing?.initialBackoffMs ?? 500,
      maxBackoffMs: options.timing?.maxBackoffMs ?? 30_000,
      watchTimeoutSeconds: options.timing?.watchTimeoutSeconds ?? (() => 300 + Math.floor(random() * 300)),
      stallGraceMs: options.timing?.stallGraceMs ?? 30_000,
      pageSize: options.timing?.pageSize ?? 500,
      random,
    };
  }

  /** What this reflector watches, for logs: `endpointslices.discovery.k8s.io in namespace "prod" (kubernetes.io/service-name=api)`. */
  get description(): string {
    const where = this.kind.namespaced ? (this.namespace === undefined ? ' in all namespaces' : ` in namespace "${this.namespace}"`) : '';
    const selector = [this.labelSelector, this.fieldSelector].filter((s) => s !== undefined && s !== '').join(',');
    return `${qualifiedResource(this.kind)}${where}${selector === '' ? '' : ` (${selector})`}`;
  }

  /** Starts listing and watching; runs until {@link stop}. */
  start(): void {
    this.#running ??= this.#run();
  }

  /** Stops at once: the request in flight is aborted, the copy stays as it is. */
  async stop(): Promise<void> {
    this.#attempted();
    this.#abort.abort();
    this.#wake?.();
    await this.#running;
  }

  async #run(): Promise<void> {
    let mustList = true;
    while (!this.#abort.signal.aborted) {
      if (mustList) {
        try {
          await this.#list();
          mustList = false;
          this.#succeeded();
          this.#attempted();
        } catch (error) {
          if (this.#abort.signal.aborted) return;
          this.#failed(error as Error, 'list');
          this.#attempted();
          await this.#backoff();
          continue;
        }
      }
      const started = performance.now();
      let changed = 0;
      try {
        if (this.#watches++ > 0) this.stats.watchRestarts++;
        const timeoutSeconds = this.#timing.watchTimeoutSeconds();
        await this.#client.watch<T>(
          this.kind,
          { namespace: this.namespace, labelSelector: this.labelSelector, fieldSelector: this.fieldSelector, resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
          (event) => {
            if (this.#apply(event)) changed++;
            if (event.type === 'ERROR') return;
            this.lastSuccessAt = Date.now();
            if (this.#failures > 0) this.#succeeded();
          },
          { signal: this.#abort.signal, idleTimeoutMs: timeoutSeconds * 1000 + this.#timing.stallGraceMs },
        );
        if (this.#abort.signal.aborted) return;
        this.lastSuccessAt = Date.now();
        // A normal end (timeoutSeconds): watch again from the last version at once, unless the server ends watches straight away.
        if (performance.now() - started < SHORT_WATCH_MS && changed === 0) {
          this.#failures++;
          await this.#backoff();
        }
      } catch (error) {
        if (this.#abort.signal.aborted) return;
        if (error instanceof KubernetesApiError && error.gone) {
          this.#logger.info({ resource: this.description, resourceVersion: this.resourceVersion }, 'kubernetes watch: resourceVersion too old (410 Gone): listing again');
          this.#count('errors', '410');
          mustList = true;
          continue; // list again at once: the copy stays until the new list replaces it
        }
        this.#failed(error as Error, 'watch');
        await this.#backoff();
      }
    }
  }

  /** Lists every page and replaces the copy by the result, touching only what differs. */
  async #list(): Promise<void> {
    if (this.#lists++ > 0) this.stats.relists++;
    const { items, resourceVersion } = await this.#client.listAll<T>(
      this.kind,
      { namespace: this.namespace, labelSelector: this.labelSelector, fieldSelector: this.fieldSelector, limit: this.#timing.pageSize },
      this.#abort.signal,
    );
    let changed = false;
    const seen = new Set<string>();
    for (const item of items) {
      const key = keyOf(item);
      seen.add(key);
      const old = this.store.get(key);
      if (old !== undefined && old.metadata?.resourceVersion === item.metadata?.resourceVersion) continue;
      this.store.set(key, item);
      changed = true;
    }
    for (const key of [...this.store.keys()]) {
      if (seen.has(key)) continue;
      this.store.delete(key);
      changed = true;
    }
    this.resourceVersion = resourceVersion;
    this.lastSuccessAt = Date.now();
    const first = !this.synced;
    this.synced = true;
    if (changed || first) this.#onChange(this as Reflector);
  }

  /** Applies one watch event; true when the copy changed. ERROR events throw (410 as a KubernetesApiError with `gone`). */
  #apply(event: WatchEvent<T>): boolean {
    this.#count('events', event.type);
    if (event.type === 'ERROR') {
      const status = event.object as Status;
      throw new KubernetesApiError({ verb: 'watch', kind: this.kind, namespace: this.namespace }, status.code ?? 500, status);
    }
    const object = event.object as T;
    const version = object.metadata?.resourceVersion;
    if (version !== undefined && version !== '') this.resourceVersion = version;
    if (event.type === 'BOOKMARK') return false;
    const key = keyOf(object);
    if (event.type === 'DELETED') {
      if (!this.store.delete(key)) return false;
    } else {
      this.store.set(key, object);
    }
    this.#onChange(this as Reflector);
    return true;
  }

  #failed(error: Error, verb: 'list' | 'watch'): void {
    this.#failures++;
    this.lastError = error;
    const status = error instanceof KubernetesApiError ? String(error.status) : 'network';
    this.#count('errors', status);
    const text = error.message;
    const now = performance.now();
    const repeated = this.#logged !== undefined && this.#logged.text === text && now - this.#logged.at < 60_000;
    if (repeated) return;
    this.#logged = { text, at: now };
    const fields = { resource: this.description, verb, status, failures: this.#failures, retryInMs: Math.round(this.#delay()) };
    const known = error instanceof KubernetesApiError || error instanceof KubernetesNetworkError;
    const message = known ? text : `${describeCall({ verb, kind: this.kind, namespace: this.namespace })}: ${text}`;
    // 401/403 need a person; a cut stream usually fixes itself.
    if (error instanceof KubernetesApiError && (error.status === 401 || error.status === 403)) this.#logger.error(fields, message);
    else this.#logger.warn({ ...fields, keeping: this.synced ? `the last known ${this.store.size} objects` : 'nothing yet' }, message);
  }

  #succeeded(): void {
    if (this.lastError !== undefined) this.#logger.info({ resource: this.description, afterFailures: this.#failures }, 'kubernetes: the API server answers again');
    this.#failures = 0;
    this.lastError = undefined;
    this.#logged = undefined;
  }

  #delay(): number {
    const base = Math.min(this.#timing.maxBackoffMs, this.#timing.initialBackoffMs * 2 ** Math.max(0, this.#failures - 1));
    // Half fixed, half random: never 0, never in step with other usher instances.
    return base / 2 + (base / 2) * this.#timing.random();
  }

  #backoff(): Promise<void> {
    const ms = this.#delay();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  #count(map: 'events' | 'errors', key: string): void {
    const counts = this.stats[map];
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
}

/** The copy's key of an object: `namespace/name`, or `name` for a cluster-scoped one. */
export function keyOf(object: KubeObject): string {
  const ns = object.metadata?.namespace;
  const name = object.metadata?.name ?? '';
  return ns === undefined || ns === '' ? name : `${ns}/${name}`;
}
