import { Registry } from 'prom-client';
import type { AdminTarget } from '../admin/api.ts';

/**
 * One component's metrics: declares them on the registry it is given, each
 * reading its own numbers at scrape time (pool/metrics.ts, proxy/metrics.ts,
 * l4/metrics.ts, runtime/listener-metrics.ts). Names, labels and help live
 * next to the code that keeps the numbers.
 */
export type DeclareMetrics = (registry: Registry) => void;

/**
 * A prom-client registry for one usher, with every component's metrics on it.
 * Not prom-client's global registry: two ushers in one process (tests,
 * embedding) must not share series. Process metrics (`collectDefaultMetrics`)
 * are not added: they start observers that cannot be stopped per registry.
 */
export function createMetricsRegistry(components: readonly DeclareMetrics[]): Registry {
  const registry = new Registry();
  for (const declare of components) declare(registry);
  return registry;
}

/**
 * Prometheus exposition of usher's metrics (`GET /metrics` on the admin
 * listener), text format 0.0.4. The target is the running usher; without a
 * registry (an embedder's own target) the body is empty.
 */
export async function renderMetrics(target: AdminTarget & { readonly metrics?: Registry; renderMetrics?(): Promise<string> }): Promise<{ readonly contentType: string; readonly body: string }> {
  if (target.renderMetrics !== undefined) return { contentType: Registry.PROMETHEUS_CONTENT_TYPE, body: await target.renderMetrics() };
  const registry = target.metrics;
  if (registry === undefined) return { contentType: Registry.PROMETHEUS_CONTENT_TYPE, body: '' };
  return { contentType: registry.contentType, body: await registry.metrics() };
}
