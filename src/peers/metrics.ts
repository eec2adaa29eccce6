import type { Registry } from 'prom-client';
import { collectedCounter, collectedGauge } from '../observe/collected.ts';
import { MESSAGE_TYPES, REJECT_REASONS } from './bus.ts';
import type { Peers } from './peers.ts';

/**
 * `usher_peers_*`: the registry and the event bus, read at scrape time. No
 * series without a `redis` section. The main thread's only (the control
 * plane), so the worker aggregation adds nothing to them.
 */
export function declarePeerMetrics(registry: Registry, peers: () => Peers | undefined): void {
  collectedGauge(registry, 'usher_peers', 'usher instances alive in the registry as last read from Redis, this one included (the last value while Redis is unreachable).', [], (emit) => {
    const p = peers();
    if (p !== undefined) emit({}, p.liveInstances());
  });
  collectedGauge(registry, 'usher_peers_config_mismatch', '1 when the live instances do not all serve the same config (their config hashes differ), else 0.', [], (emit) => {
    const p = peers();
    if (p !== undefined) emit({}, p.view().configMismatch ? 1 : 0);
  });
  collectedGauge(registry, 'usher_peers_redis_up', '1 when the last registry heartbeat reached Redis, else 0 (peers are then the last known list).', [], (emit) => {
    const p = peers();
    if (p !== undefined) emit({}, p.registry.connected ? 1 : 0);
  });
  collectedCounter(registry, 'usher_peers_messages_published_total', 'Messages this instance published to its peers, by type: cache.purge, backend.state.', ['type'], (emit) => {
    const p = peers();
    if (p !== undefined) for (const type of MESSAGE_TYPES) emit({ type }, p.bus.counters.published[type]);
  });
  collectedCounter(registry, 'usher_peers_messages_publish_errors_total', 'Messages that could not be published (Redis unreachable): applied on this instance only.', ['type'], (emit) => {
    const p = peers();
    if (p !== undefined) for (const type of MESSAGE_TYPES) emit({ type }, p.bus.counters.publishErrors[type]);
  });
  collectedCounter(registry, 'usher_peers_messages_received_total', 'Messages from other instances applied here, by type.', ['type'], (emit) => {
    const p = peers();
    if (p !== undefined) for (const type of MESSAGE_TYPES) emit({ type }, p.bus.counters.received[type]);
  });
  collectedCounter(registry, 'usher_peers_messages_rejected_total', 'Messages on the events channel not applied, by reason: malformed (not a valid message), version (another format version), not_shared (a backend state while shareAdminActions is off here), unknown_backend (no such pool or backend here), failed (applying it failed).', ['reason'], (emit) => {
    const p = peers();
    if (p !== undefined) for (const reason of REJECT_REASONS) emit({ reason }, p.bus.counters.rejected[reason]);
  });
}
