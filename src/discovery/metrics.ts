/**
 * Discovery's metrics, read at scrape time from each pool's sources (main
 * thread only: workers resolve nothing, so their registries have none of
 * these and the sums across threads are the main thread's numbers).
 */
import type { Registry } from 'prom-client';
import { collectedCounter, collectedGauge } from '../observe/collected.ts';
import type { Pool } from '../pool/pool.ts';
import { DNS_RESULTS } from './dns-source.ts';

export function declareDiscoveryMetrics(registry: Registry, pools: () => Iterable<Pool>): void {
  collectedCounter(
    registry,
    'usher_discovery_resolutions_total',
    'Discovery lookups by result: for DNS, one per record set asked (the A, the AAAA or the SRV records of a name): ok, nxdomain, nodata, servfail, refused, timeout, error.',
    ['pool', 'source', 'result'],
    (emit) => {
      for (const pool of pools()) {
        const counts = pool.discovery.counts();
        // Every result of every source the pool has or had, 0 when it never happened, so rate() sees the first one.
        // Lookups are DNS's: a Kubernetes source watches (usher_kubernetes_* count its requests).
        const kinds = new Set([...pool.discovery.sources().map((source) => source.kind), ...[...counts.keys()].map((key) => key.split(' ')[0]!)].filter((kind) => kind === 'dns'));
        for (const source of kinds) {
          for (const result of DNS_RESULTS) emit({ pool: pool.name, source, result }, counts.get(`${source} ${result}`) ?? 0);
        }
      }
    },
  );
  collectedGauge(registry, 'usher_discovery_members', 'Members a discovery source gives its pool now (the file\'s backends not counted).', ['pool', 'source'], (emit) => {
    for (const pool of pools()) for (const source of pool.discovery.sources()) emit({ pool: pool.name, source: source.kind }, source.members);
  });
  collectedGauge(registry, 'usher_discovery_last_success_timestamp_seconds', 'When a lookup of the source last had a good answer (Unix time); absent before the first.', ['pool', 'source'], (emit) => {
    for (const pool of pools()) {
      for (const source of pool.discovery.sources()) if (source.lastSuccess !== undefined) emit({ pool: pool.name, source: source.kind }, source.lastSuccess / 1000);
    }
  });
}
