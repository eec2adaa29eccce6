/**
 * The JSON the page reads: the `snapshot` events of GET /api/events
 * (src/admin/events.ts, built from src/admin/views.ts). Declared here, not
 * imported, so the browser program needs no Node types; only the fields the
 * page uses. test/browser/dashboard.test.ts runs the page against the server.
 */

export type BackendState = 'disabled' | 'draining' | 'unhealthy' | 'unreachable' | 'ejected' | 'slow-start' | 'healthy';
export type AdminState = 'enabled' | 'draining' | 'disabled';
export type PoolMode = 'primary' | 'backup' | 'panic' | 'fallback' | 'none';

export interface HealthCheckResult {
  readonly at: string;
  readonly ok: boolean;
  readonly detail: string;
  readonly durationMs: number;
}

export interface BackendView {
  readonly address: string;
  readonly name: string | null;
  readonly state: BackendState;
  readonly adminState: AdminState;
  readonly weight: number;
  readonly effectiveWeight: number;
  readonly backup: boolean;
  readonly discovered: boolean;
  readonly priority: number | null;
  readonly inFlight: number;
  readonly maxConnections: number | null;
  readonly connections: { readonly open: number; readonly idle: number };
  readonly counters: { readonly requests: number; readonly failures: number; readonly responses5xx: number };
  readonly recent: {
    readonly windowSeconds: number;
    readonly requests: number;
    readonly errors: number;
    readonly p50Ms: number | null;
    readonly p99Ms: number | null;
  };
  readonly outlier: { readonly ejectedUntil: string | null } | null;
  readonly checks: readonly HealthCheckResult[];
  /** Attempts per second over the last 60 complete seconds, oldest first. */
  readonly requestsPerSecond: readonly number[];
}

export interface PoolView {
  readonly name: string;
  readonly algorithm: string;
  readonly mode: PoolMode;
  readonly queued: number;
  readonly backends: readonly BackendView[];
  readonly discovery: DiscoveryView | null;
}

export interface DiscoverySourceView {
  readonly source: string;
  readonly query: string;
  readonly state: 'resolving' | 'ok' | 'failing' | 'holding' | 'empty';
  readonly members: number;
  readonly lastSuccessAgeMs: number | null;
  readonly lastError: string | null;
}

export interface DiscoveryView {
  readonly sources: readonly DiscoverySourceView[];
}

export interface RouteView {
  readonly name: string;
  readonly match: readonly string[];
  readonly pool: string | null;
  readonly redirect: string | null;
  readonly stripPrefix: string | null;
}

export interface ListenerView {
  readonly name: string;
  readonly protocol: string;
  readonly bind: string;
  readonly address: string | null;
  readonly routes: readonly RouteView[];
}

export interface WorkerView {
  readonly index: number;
  readonly state: 'starting' | 'serving' | 'restarting' | 'stopped';
  readonly restarts: number;
  readonly connections: number;
  readonly requests: number;
  readonly requestsPerSecond: number;
  readonly cpuPercent: number;
}

/** The response cache summed over the threads (`GET /api/cache`). */
export interface CacheView {
  readonly bytes: number;
  readonly maxBytes: number;
  readonly entries: number;
  readonly hits: number;
  readonly misses: number;
  readonly collapsed: number;
  readonly top: readonly { readonly key: string; readonly hits: number }[];
}

/** An usher instance sharing this one's Redis (`GET /api/peers`). */
export interface PeerView {
  readonly instance: string;
  readonly hostname: string;
  readonly pid: number;
  readonly version: string;
  readonly configHash: string;
  readonly admin: string | null;
  readonly startedAt: string;
  readonly lastSeen: string;
  readonly ageMs: number;
  readonly self: boolean;
  readonly sameConfig: boolean;
}

/** The registry as `GET /api/peers` shows it (the fields the page uses). */
export interface PeersView {
  readonly instance: string;
  readonly redis: string;
  readonly connected: boolean;
  readonly listAgeMs: number | null;
  readonly error: string | null;
  readonly liveInstances: number;
  readonly configMismatch: boolean;
  readonly shareAdminActions: boolean;
  readonly peers: readonly PeerView[];
}

export interface Snapshot {
  readonly at: string;
  readonly listeners: readonly ListenerView[];
  readonly pools: readonly PoolView[];
  /** Data-plane worker threads; empty (or absent, from an older usher) when the main thread serves. */
  readonly workers?: readonly WorkerView[];
  /** Absent when no route caches. */
  readonly cache?: CacheView;
  /** Absent without a `redis` section. */
  readonly peers?: PeersView;
}
