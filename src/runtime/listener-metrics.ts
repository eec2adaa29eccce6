/**
 * The listener component's metrics: client connections open and accepted,
 * and HTTP requests being served, per listener. Read at scrape time from the
 * running listeners (their connection sets); a listener removed by a reload
 * leaves the output once it is no longer running.
 */
import type { Registry } from 'prom-client';
import { collectedCounter, collectedGauge } from '../observe/collected.ts';

/** What a listener shows to metrics. */
export interface ListenerMetricsSource {
  readonly name: string;
  /** Client connections accepted (not refused) since the listener was bound. */
  readonly accepted: number;
  /** Client connections open now: HTTP/1.1, HTTP/2 and L4. */
  readonly openConnections: number;
  /** HTTP requests being served now (HTTP/1.1 exchanges and HTTP/2 streams); 0 on L4 listeners. */
  readonly requestsInFlight: number;
}

/**
 * Declares the listener metrics on `registry`; `listeners` lists the running
 * listeners at each scrape. TODO(metrics): connections refused by
 * `maxConnections` are only logged (rate-limited), not counted.
 */
export function declareListenerMetrics(registry: Registry, listeners: () => Iterable<ListenerMetricsSource>): void {
  collectedGauge(registry, 'usher_listener_connections', 'Client connections open on the listener (HTTP/1.1, HTTP/2 and L4).', ['listener'], (emit) => {
    for (const listener of listeners()) emit({ listener: listener.name }, listener.openConnections);
  });
  collectedCounter(registry, 'usher_listener_connections_accepted_total', 'Client connections the listener accepted (refused ones are not counted).', ['listener'], (emit) => {
    for (const listener of listeners()) emit({ listener: listener.name }, listener.accepted);
  });
  collectedGauge(registry, 'usher_listener_requests_in_flight', 'HTTP requests being served on the listener.', ['listener'], (emit) => {
    for (const listener of listeners()) emit({ listener: listener.name }, listener.requestsInFlight);
  });
}
