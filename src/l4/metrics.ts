/**
 * The L4 proxy's metrics, per listener and route: connections ended, their
 * bytes each way and how long they lasted. Per-backend numbers (attempts,
 * failures, bytes, in-flight) are the pool component's (`pool/metrics.ts`),
 * which L4 sessions feed through the same backend counters as HTTP.
 *
 * A route's `L4RouteMetrics` is resolved when the listener's plan is compiled;
 * a session adds to it once, when it ends. Numbers are kept across reloads
 * while the route keeps its listener, name and pool (see `KeptByKey`).
 */
import type { Registry } from 'prom-client';
import { collectedCounter, KeptByKey } from '../observe/collected.ts';
import { CollectedHistogram, LatencyHistogram, type HistogramSeries } from '../observe/histogram.ts';

/** The numbers of one L4 route (or of connections closed before a route was chosen: `route` is ''). */
export class L4RouteMetrics {
  readonly listener: string;
  readonly route: string;
  readonly pool: string;
  connections = 0;
  bytesIn = 0;
  bytesOut = 0;
  readonly duration = new LatencyHistogram();

  /** Counts every request (connection) of every route of its owner, across reloads that drop routes. */
  readonly #served: Served;

  constructor(listener: string, route: string, pool: string, served: Served = { count: 0 }) {
    this.#served = served;
    this.listener = listener;
    this.route = route;
    this.pool = pool;
  }

  /** One connection ended after `ms`, having relayed these bytes. */
  observe(ms: number, bytesIn: number, bytesOut: number): void {
    this.connections++;
    this.#served.count++;
    this.bytesIn += bytesIn;
    this.bytesOut += bytesOut;
    this.duration.observe(ms);
  }
}

/** Every L4 listener's route metrics, kept across reloads. */
export class L4Metrics {
  readonly #routes = new KeptByKey<L4RouteMetrics>();
  readonly #served: Served = { count: 0 };

  /** Connections ended since start, every route together (a worker thread's usage report). */
  get served(): number {
    return this.#served.count;
  }

  /** The numbers a route records into: the same object while listener, route and pool stay. */
  route(listener: string, route: string, pool: string): L4RouteMetrics {
    return this.#routes.get(`${listener}\0${route}\0${pool}`, () => new L4RouteMetrics(listener, route, pool, this.#served));
  }

  /** Starts a new snapshot: routes not asked for again before {@link commit} are dropped. */
  begin(): void {
    this.#routes.begin();
  }

  commit(): void {
    this.#routes.commit();
  }

  /** Declares the L4 metrics on `registry`. TODO(metrics): how connections ended (`TunnelEnd`) is not a label yet. */
  declare(registry: Registry): void {
    const labels = ['listener', 'route', 'pool'];
    collectedCounter(registry, 'usher_l4_connections_total', 'TCP and TLS-passthrough connections ended, by listener, route ("" when none was chosen) and pool.', labels, (emit) => {
      for (const route of this.#routes.values()) emit({ listener: route.listener, route: route.route, pool: route.pool }, route.connections);
    });
    collectedCounter(registry, 'usher_l4_bytes_in_total', 'Bytes relayed from L4 clients to backends.', labels, (emit) => {
      for (const route of this.#routes.values()) emit({ listener: route.listener, route: route.route, pool: route.pool }, route.bytesIn);
    });
    collectedCounter(registry, 'usher_l4_bytes_out_total', 'Bytes relayed from backends to L4 clients.', labels, (emit) => {
      for (const route of this.#routes.values()) emit({ listener: route.listener, route: route.route, pool: route.pool }, route.bytesOut);
    });
    new CollectedHistogram(
      registry,
      'usher_l4_connection_duration_seconds',
      'How long L4 connections lasted, from accept to close.',
      labels,
      (): Iterable<HistogramSeries> =>
        [...this.#routes.values()].map((route) => [{ listener: route.listener, route: route.route, pool: route.pool }, route.duration]),
    );
  }
}

/** A running count shared by the routes of one metrics store. */
interface Served {
  count: number;
}
