import type { Backend, BackendCounters, BackendState } from '../pool/backend.ts';
import type { Pool, PoolMode } from '../pool/pool.ts';

/** A backend as the admin API shows it. Addresses are shown: the admin API is for operators. */
export interface BackendView {
  readonly address: string;
  readonly state: BackendState;
  readonly adminState: string;
  readonly healthy: boolean;
  readonly ejected: boolean;
  readonly weight: number;
  /** The weight balancers use now (lower during slow start). */
  readonly effectiveWeight: number;
  readonly backup: boolean;
  readonly inFlight: number;
  readonly maxConnections: number | null;
  readonly connections: { readonly open: number; readonly idle: number };
  readonly counters: BackendCounters;
  readonly outlier: { readonly consecutiveFailures: number; readonly ejections: number; readonly ejectedUntil: string | null } | null;
  readonly checks: readonly { readonly at: string; readonly ok: boolean; readonly detail: string; readonly durationMs: number }[];
}

export interface PoolView {
  readonly name: string;
  readonly algorithm: string;
  readonly mode: PoolMode;
  readonly queued: number;
  readonly backends: readonly BackendView[];
}

export function poolView(pool: Pool): PoolView {
  return {
    name: pool.name,
    algorithm: pool.config.algorithm,
    mode: pool.mode,
    queued: pool.queueLength,
    backends: pool.backends.map((backend) => backendView(pool, backend)),
  };
}

export function backendView(pool: Pool, backend: Backend): BackendView {
  const outlier = pool.health.outlierState(backend);
  return {
    address: backend.key,
    state: backend.state,
    adminState: backend.adminState,
    healthy: backend.healthy,
    ejected: backend.ejected,
    weight: backend.configuredWeight,
    effectiveWeight: Math.round(backend.weight * 1000) / 1000,
    backup: backend.backup,
    inFlight: backend.inFlight,
    maxConnections: Number.isFinite(backend.maxConnections) ? backend.maxConnections : null,
    connections: { open: backend.connections.open, idle: backend.connections.idleCount },
    counters: { ...backend.counters },
    outlier:
      outlier === undefined
        ? null
        : {
            consecutiveFailures: outlier.consecutiveFailures,
            ejections: outlier.ejections,
            ejectedUntil: outlier.ejectedUntil > 0 && backend.ejected ? new Date(outlier.ejectedUntil).toISOString() : null,
          },
    checks: pool.health.recentChecks(backend).map((check) => ({
      at: new Date(check.at).toISOString(),
      ok: check.ok,
      detail: check.detail,
      durationMs: Math.round(check.durationMs * 10) / 10,
    })),
  };
}
