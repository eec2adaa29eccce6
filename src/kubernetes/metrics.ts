/**
 * `usher_kubernetes_*`: what the watches did, read at scrape time from the
 * counts the reflectors keep (per kind, totals since start). Only the main
 * thread watches, so only its registry declares these.
 */
import type { Registry } from 'prom-client';
import { collectedCounter, collectedGauge } from '../observe/collected.ts';
import type { KubernetesDiscovery } from './discovery.ts';

export function declareKubernetesMetrics(registry: Registry, discovery: () => KubernetesDiscovery | undefined): void {
  const each = (fill: (kind: string, stats: NonNullable<ReturnType<KubernetesDiscovery['stats']['get']>>) => void): void => {
    const d = discovery();
    if (d === undefined) return;
    for (const [kind, stats] of d.stats) fill(kind, stats);
  };
  collectedCounter(registry, 'usher_kubernetes_watch_events_total', 'Watch events received from the Kubernetes API server, by kind and type (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR).', ['kind', 'type'], (emit) =>
    each((kind, stats) => {
      for (const [type, count] of stats.events) emit({ kind, type }, count);
    }),
  );
  collectedCounter(registry, 'usher_kubernetes_relists_total', 'Lists after the first, by kind: after 410 Gone (a compacted or lost resourceVersion) or a failed list.', ['kind'], (emit) =>
    each((kind, stats) => emit({ kind }, stats.relists)),
  );
  collectedCounter(registry, 'usher_kubernetes_watch_restarts_total', 'Watches started again from the last resourceVersion, by kind: after the server ended one (timeoutSeconds), a cut or stalled stream, or an error.', ['kind'], (emit) =>
    each((kind, stats) => emit({ kind }, stats.watchRestarts)),
  );
  collectedCounter(registry, 'usher_kubernetes_request_errors_total', 'Failed list and watch requests, by kind and code (an HTTP status such as 403 or 410, or network).', ['kind', 'code'], (emit) =>
    each((kind, stats) => {
      for (const [code, count] of stats.errors) emit({ kind, code }, count);
    }),
  );
  collectedGauge(registry, 'usher_kubernetes_synced', '1 once every watched collection has been listed (the readiness probe waits for it), else 0; absent without Kubernetes discovery.', [], (emit) => {
    const d = discovery();
    if (d?.client !== undefined) emit({}, d.synced ? 1 : 0);
  });
}
