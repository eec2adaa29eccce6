import type { Endpoint } from '../balancer/types.ts';
import type { AdminState, HostPort } from '../config/types.ts';
import { formatHostPort } from '../config/hostport.ts';
import { LatencyHistogram } from '../observe/histogram.ts';
import { RecentTraffic } from './recent-traffic.ts';
import type { UpstreamConnectionPool } from './upstream-connection.ts';

/**
 * What a backend shows to operators, most important first: operator intent
 * (`disabled`, `draining`) outranks health (`unhealthy` by active checks,
 * `unreachable` after a refused connection, `ejected` by outlier detection),
 * and `slow-start` is a healthy backend still ramping up.
 */
export type BackendState = 'disabled' | 'draining' | 'unhealthy' | 'unreachable' | 'ejected' | 'slow-start' | 'healthy';

/** Counters the admin API, metrics and dashboard read. Plain numbers: the data plane only increments. */
export interface BackendCounters {
  /** Attempts sent to this backend (a retried request counts once per attempt). */
  requests: number;
  /** Attempts that failed: connect errors, resets, timeouts, malformed responses. */
  failures: number;
  /** Responses with a 5xx status from the backend itself. */
  responses5xx: number;
  /** Times a retry moved a request away from this backend. */
  retriedAway: number;
  bytesOut: number;
  /** Times outlier detection ejected this backend. */
  ejections: number;
}

/**
 * One upstream server of a pool: its address, weights, the three independent
 * reasons it may be out of rotation (operator state, active health, passive
 * ejection), and the kept-alive connections to it. It is the `Endpoint` its
 * pool's balancer sees, so the balancer reads `inFlight` and `weight` without copying.
 *
 * Only the pool changes the state fields, and it recomputes `available` each
 * time, so the hot path reads one boolean instead of re-deriving it per pick.
 */
export class Backend implements Endpoint {
  /** Unique within the pool for the pool's lifetime (retries record it in `tried`). */
  readonly index: number;
  readonly key: string;
  readonly address: HostPort;
  /** The name people know it by (`name` in the file), if any. */
  name: string | undefined;
  /** Opaque id written into sticky cookies; never reveals the address. Set by the pool. */
  stickyToken: string;
  readonly connections: UpstreamConnectionPool;
  /** The weight from the file or the admin API. */
  configuredWeight: number;
  /** The weight balancers read: `configuredWeight`, scaled down during slow start. */
  weight: number;
  backup: boolean;
  /** Most requests in flight at once; Infinity when unlimited. */
  maxConnections: number;
  inFlight = 0;
  adminState: AdminState;
  /** Active health: false after `fall` failed checks, true again after `rise` good ones. */
  healthy = true;
  /** Passive health: set while outlier detection has ejected the backend. */
  ejected = false;
  /** Passive health: set while the backend is out after refusing a connection (the pool's `unreachable`). */
  unreachable = false;
  /** Connect failures since the backend last answered; sizes the next `unreachable` backoff. */
  connectFailures = 0;
  /** performance.now() when the backend (re)entered rotation with slow start; 0 = not ramping. */
  slowStartSince = 0;
  /** Derived: may take a new request (enabled, healthy, not ejected). Updated by the pool. */
  available = true;
  /** Set when the backend was removed from its pool; in-flight requests finish, then its connections close. */
  removed = false;
  /** Open tunnels (WebSocket, L4) to this backend, closed `drainTimeout` after a drain or disable. */
  readonly tunnels = new Set<{ close(): void }>();
  readonly counters: BackendCounters = { requests: 0, failures: 0, responses5xx: 0, retriedAway: 0, bytesOut: 0, ejections: 0 };
  /** What only `/metrics` shows (pool/metrics.ts): bytes in, check results, upstream latency. */
  readonly metrics = new BackendMetrics();
  /** Attempts, errors and latency over the last seconds (the dashboard's rates and p50/p99); the pool records each ended attempt. */
  readonly traffic = new RecentTraffic();

  constructor(init: {
    index: number;
    address: HostPort;
    name?: string | undefined;
    weight: number;
    backup: boolean;
    adminState: AdminState;
    maxConnections: number;
    stickyToken: string;
    connections: UpstreamConnectionPool;
  }) {
    this.index = init.index;
    this.address = init.address;
    this.key = formatHostPort(init.address);
    this.name = init.name;
    this.configuredWeight = init.weight;
    this.weight = init.weight;
    this.backup = init.backup;
    this.adminState = init.adminState;
    this.maxConnections = init.maxConnections;
    this.stickyToken = init.stickyToken;
    this.connections = init.connections;
    this.refresh();
  }

  /** Recomputes `available` from the state fields. */
  refresh(): void {
    this.available = this.adminState === 'enabled' && this.healthy && !this.ejected && !this.unreachable && !this.removed;
  }

  /** The single state an operator sees (see {@link BackendState}). */
  get state(): BackendState {
    if (this.adminState === 'disabled') return 'disabled';
    if (this.adminState === 'draining') return 'draining';
    if (!this.healthy) return 'unhealthy';
    if (this.unreachable) return 'unreachable';
    if (this.ejected) return 'ejected';
    if (this.slowStartSince !== 0) return 'slow-start';
    return 'healthy';
  }
}

/**
 * A backend's numbers that only `/metrics` shows (the admin API shows its
 * `counters`). Plain numbers and a histogram: the data plane and health
 * checks only add to them.
 */
export class BackendMetrics {
  /** Bytes from clients that went to the backend (HTTP request heads and bodies, tunnel bytes). */
  bytesIn = 0;
  /** Active health checks that passed, and that failed. */
  checksPassed = 0;
  checksFailed = 0;
  /** Time to the response head of HTTP requests the backend answered. */
  readonly upstreamLatency = new LatencyHistogram();
}
