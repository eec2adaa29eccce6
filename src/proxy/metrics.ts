/**
 * The HTTP proxy's metrics, per listener and route: requests by status class
 * (and the backend that answered), total duration, bytes in and out. HTTP/1.1
 * and HTTP/2 exchanges record into the same {@link RouteMetrics}.
 *
 * Cost: a route's `RouteMetrics` is resolved when the listener's plan is
 * compiled, so a finished request does one `Map.get` (its backend's status
 * cells), a few additions and a histogram bucket scan; no labels, strings or
 * allocations (the first request through a backend allocates its cells once).
 * Prometheus series are built from these numbers only when `/metrics` is read.
 *
 * Lifetime: {@link HttpMetrics} keeps a route's numbers across reloads while
 * the route keeps its listener, name and pool (so counters do not reset on
 * every reload) and drops the others, which then leave the output. Requests
 * still in flight on a dropped route finish into numbers no one reads.
 * Backends removed from their pool leave the output at the next scrape.
 */
import type { Registry } from 'prom-client';
import { collectedCounter, KeptByKey } from '../observe/collected.ts';
import { CollectedHistogram, LatencyHistogram, type HistogramSeries } from '../observe/histogram.ts';
import type { BackendRuntime } from '../pool/backend-runtime.ts';
import type { PoolRuntime } from '../pool/pool-runtime.ts';

/** Status classes as label values, by index (`status / 100 - 1`). */
const CLASSES: readonly string[] = ['1xx', '2xx', '3xx', '4xx', '5xx'];

/**
 * The class index of a status. Status 0 (the client left before usher could
 * answer) counts as 4xx, as the 499 the access log shows for a client gone
 * mid-response does.
 */
function classIndex(status: number): number {
  const hundreds = (status / 100) | 0;
  if (hundreds < 1) return 3;
  return hundreds > 5 ? 4 : hundreds - 1;
}

/** The numbers of one route of one listener (or of the requests no route matched: `route` is ''). */
export class RouteMetrics {
  readonly listener: string;
  readonly route: string;
  /** '' for redirect routes and requests no route matched. */
  readonly pool: string;
  readonly duration = new LatencyHistogram();
  bytesIn = 0;
  bytesOut = 0;
  /** Requests by status class answered without a backend (errors usher decided, redirects). */
  readonly #direct = new Float64Array(CLASSES.length);
  /** Requests by status class, per backend that took the last attempt. */
  readonly #byBackend = new Map<BackendRuntime, Float64Array>();
  /** Filters of this route that threw or timed out, by filter name (rare: a Map is fine). */
  readonly filterErrors = new Map<string, number>();

  /** Counts every request (connection) of every route of its owner, across reloads that drop routes. */
  readonly #served: Served;

  constructor(listener: string, route: string, pool: string, served: Served = { count: 0 }) {
    this.#served = served;
    this.listener = listener;
    this.route = route;
    this.pool = pool;
  }

  /**
   * Records one finished request: `backend` is the one of the last attempt,
   * if any, and `upstreamMs` its time to the response head (-1 when it sent none).
   */
  observe(backend: BackendRuntime | undefined, status: number, totalMs: number, upstreamMs: number, bytesIn: number, bytesOut: number): void {
    let cells: Float64Array = this.#direct;
    if (backend !== undefined) {
      cells = this.#byBackend.get(backend) ?? this.#cellsOf(backend);
      if (upstreamMs >= 0) backend.metrics.upstreamLatency.observe(upstreamMs);
    }
    cells[classIndex(status)]!++;
    this.#served.count++;
    this.duration.observe(totalMs);
    this.bytesIn += bytesIn;
    this.bytesOut += bytesOut;
  }

  /** A filter of this route threw or did not settle in time. */
  filterFailed(filter: string): void {
    this.filterErrors.set(filter, (this.filterErrors.get(filter) ?? 0) + 1);
  }

  #cellsOf(backend: BackendRuntime): Float64Array {
    const cells = new Float64Array(CLASSES.length);
    this.#byBackend.set(backend, cells);
    return cells;
  }

  /**
   * Lists the request counts by backend and class; forgets backends no longer
   * in a live pool (`live`), so they leave the output.
   */
  collectRequests(live: ReadonlySet<BackendRuntime>, emit: (backend: string, statusClass: string, value: number) => void): void {
    for (let i = 0; i < CLASSES.length; i++) if (this.#direct[i]! > 0) emit('', CLASSES[i]!, this.#direct[i]!);
    for (const [backend, cells] of this.#byBackend) {
      if (!live.has(backend)) {
        this.#byBackend.delete(backend);
        continue;
      }
      for (let i = 0; i < CLASSES.length; i++) if (cells[i]! > 0) emit(backend.key, CLASSES[i]!, cells[i]!);
    }
  }
}

/** What one listener's plan records into: a `RouteMetrics` per route (by route index) and one for unmatched requests. */
export interface ListenerMetrics {
  readonly byRoute: readonly RouteMetrics[];
  readonly unrouted: RouteMetrics;
}

/** The routes of one compiled listener, as {@link HttpMetrics.listener} takes them. */
interface RouteKey {
  readonly name: string;
  readonly pool: string | undefined;
}

/** Every HTTP listener's route metrics, kept across reloads (see the file comment). */
export class HttpMetrics {
  readonly #routes = new KeptByKey<RouteMetrics>();
  readonly #served: Served = { count: 0 };

  /** Requests answered since start, every route together (a worker thread's usage report). */
  get served(): number {
    return this.#served.count;
  }

  /**
   * The metrics a listener's plan records into, reusing the numbers of routes
   * that stay. Call between {@link begin} and {@link commit} for a whole
   * snapshot, or alone (each call then adds to the current set).
   */
  listener(name: string, routes: readonly RouteKey[]): ListenerMetrics {
    return { byRoute: routes.map((route) => this.#route(name, route.name, route.pool ?? '')), unrouted: this.#route(name, '', '') };
  }

  /** Starts a new snapshot: routes not asked for again before {@link commit} are dropped. */
  begin(): void {
    this.#routes.begin();
  }

  commit(): void {
    this.#routes.commit();
  }

  #route(listener: string, route: string, pool: string): RouteMetrics {
    return this.#routes.get(`${listener}\0${route}\0${pool}`, () => new RouteMetrics(listener, route, pool, this.#served));
  }

  /** Declares the HTTP metrics on `registry`; `pools` lists the live pools at each scrape. */
  declare(registry: Registry, pools: () => Iterable<PoolRuntime>): void {
    collectedCounter(
      registry,
      'usher_http_requests_total',
      'HTTP requests answered, by listener, route, pool, backend of the last attempt ("" when none) and status class.',
      ['listener', 'route', 'pool', 'backend', 'class'],
      (emit) => {
        const live = new Set<BackendRuntime>();
        for (const pool of pools()) for (const backend of pool.backends) live.add(backend);
        for (const route of this.#routes.values()) {
          route.collectRequests(live, (backend, statusClass, value) =>
            emit({ listener: route.listener, route: route.route, pool: route.pool, backend, class: statusClass }, value),
          );
        }
      },
    );
    collectedCounter(registry, 'usher_http_bytes_in_total', 'Bytes read from HTTP clients (HTTP/1.1 heads and bodies; HTTP/2 bodies).', ['listener', 'route'], (emit) => {
      for (const route of this.#routes.values()) emit({ listener: route.listener, route: route.route }, route.bytesIn);
    });
    collectedCounter(registry, 'usher_http_bytes_out_total', 'Response body bytes sent to HTTP clients.', ['listener', 'route'], (emit) => {
      for (const route of this.#routes.values()) emit({ listener: route.listener, route: route.route }, route.bytesOut);
    });
    collectedCounter(registry, 'usher_filter_errors_total', 'Route filters that threw (or timed out), by listener, route and filter; each answered 500 filter_error (504 filter_timeout).', ['listener', 'route', 'filter'], (emit) => {
      for (const route of this.#routes.values()) for (const [filter, count] of route.filterErrors) emit({ listener: route.listener, route: route.route, filter }, count);
    });
    new CollectedHistogram(
      registry,
      'usher_http_request_duration_seconds',
      'Time from the first byte of a request head (HTTP/2: the stream opening) to the end of its response, by listener and route.',
      ['listener', 'route'],
      (): Iterable<HistogramSeries> => [...this.#routes.values()].map((route) => [{ listener: route.listener, route: route.route }, route.duration]),
    );
  }
}

/** A running count shared by the routes of one metrics store. */
interface Served {
  count: number;
}
