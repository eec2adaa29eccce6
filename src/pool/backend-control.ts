import type { ConnectionOptions } from 'node:tls';
import { formatHostPort } from '../config/hostport.ts';
import type { AdminState, HostPort } from '../config/types.ts';
import type { InFlightTable } from './in-flight.ts';
import { summarize, type TrafficSummary } from './recent-traffic.ts';
import type { AttemptCounters, BackendUsage, PoolDataPlane, PublishedBackend } from './published.ts';

/**
 * What a backend shows to operators, most important first: operator intent
 * (`disabled`, `draining`) outranks health (`unhealthy` by active checks,
 * `unreachable` after a refused connection, `ejected` by outlier detection),
 * and `slow-start` is a healthy backend still ramping up.
 */
export type BackendState = 'disabled' | 'draining' | 'unhealthy' | 'unreachable' | 'ejected' | 'slow-start' | 'healthy';

/** Counters the admin API, metrics and dashboard show: the data planes' attempt counters, summed, and the control plane's ejections. */
export interface BackendCounters extends Readonly<AttemptCounters> {
  /** Times outlier detection ejected this backend. */
  readonly ejections: number;
}

/** The fields a {@link BackendControl} starts with. */
export interface BackendControlInit {
  readonly slot: number;
  readonly address: HostPort;
  readonly name?: string | undefined;
  readonly weight: number;
  readonly backup: boolean;
  readonly adminState: AdminState;
  readonly maxConnections: number;
  readonly tls: ConnectionOptions | undefined;
}

/**
 * The control plane's record of one backend of a pool: its identity and
 * settings, the independent reasons it may be out of rotation (operator
 * state, active health, a refused connection, outlier ejection), its weights,
 * and what the control plane counts itself (ejections, check results).
 *
 * Only the pool's control plane (`PoolControl` and its `PoolHealth`) writes
 * these fields, and it recomputes `available` and `enabled` each time, so a
 * data plane reads one boolean per pick instead of re-deriving it. Data
 * planes see it as a {@link PublishedBackend}; their own side of the backend
 * (connections, in-flight, counters) is a `BackendRuntime`.
 */
export class BackendControl implements PublishedBackend {
  readonly slot: number;
  readonly key: string;
  readonly address: HostPort;
  readonly tls: ConnectionOptions | undefined;
  /** The name people know it by (`name` in the file), if any. */
  name: string | undefined;
  stickyToken = '';
  configuredWeight: number;
  /** `configuredWeight`, scaled down during slow start. */
  weight: number;
  backup: boolean;
  maxConnections: number;
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
  /** Set when the backend left its pool; its data planes finish their attempts on it, then close its connections. */
  removed = false;
  available = true;
  enabled = true;
  pinnable = true;
  fallback = false;
  /** Found by discovery (DNS, Kubernetes), not listed in the file: discovery adds, updates and removes it. */
  discovered = false;
  /** Discovery says it is terminating but still serving: drained (no new requests but sticky ones), used when nothing else is available. */
  terminating = false;
  /** The drain was discovery's (terminating), not an operator's: discovery may lift it. */
  drainedByDiscovery = false;
  /**
   * Discovery's priority group (SRV priority; lower is preferred; 0 for the file's
   * backends and sources without groups). Of a pool's discovered members, the lowest
   * group with an available member are primaries and higher groups are backups
   * (`PoolControl.stateChanged`).
   */
  priority = 0;
  /** Times outlier detection ejected it. */
  ejections = 0;
  /** Active health checks that passed, and that failed. */
  readonly checks = { passed: 0, failed: 0 };
  readonly #inFlight: InFlightTable;
  /** The data planes serving the pool (the pool's own list, which grows as planes attach). */
  readonly #planes: readonly PoolDataPlane[];
  /** Set once a new member took over the slot (after this one was removed and its last attempt ended). */
  #slotReleased = false;

  constructor(init: BackendControlInit, inFlight: InFlightTable, planes: readonly PoolDataPlane[]) {
    this.slot = init.slot;
    this.address = init.address;
    this.key = formatHostPort(init.address);
    this.tls = init.tls;
    this.name = init.name;
    this.configuredWeight = init.weight;
    this.weight = init.weight;
    this.backup = init.backup;
    this.adminState = init.adminState;
    this.maxConnections = init.maxConnections;
    this.#inFlight = inFlight;
    this.#planes = planes;
    this.refresh();
  }

  /** Attempts in flight on this backend across every data plane. */
  get inFlight(): number {
    return this.#slotReleased ? 0 : this.#inFlight.total(this.slot);
  }

  /** What operators see counted: the data planes' attempt counters, summed, and the ejections counted here. */
  get counters(): BackendCounters {
    let requests = 0;
    let failures = 0;
    let responses5xx = 0;
    let retriedAway = 0;
    let bytesOut = 0;
    for (const plane of this.#planes) {
      const counters = this.#usageIn(plane)?.counters;
      if (counters === undefined) continue;
      requests += counters.requests;
      failures += counters.failures;
      responses5xx += counters.responses5xx;
      retriedAway += counters.retriedAway;
      bytesOut += counters.bytesOut;
    }
    return { requests, failures, responses5xx, retriedAway, bytesOut, ejections: this.ejections };
  }

  /** Upstream connections to this backend over all data planes, open (busy or idle) and idle. */
  get connections(): { readonly open: number; readonly idle: number } {
    let open = 0;
    let idle = 0;
    for (const plane of this.#planes) {
      const connections = this.#usageIn(plane)?.connections;
      if (connections === undefined) continue;
      open += connections.open;
      idle += connections.idleCount;
    }
    return { open, idle };
  }

  /** Bytes from clients sent to this backend over all data planes. */
  get bytesIn(): number {
    let bytes = 0;
    for (const plane of this.#planes) bytes += this.#usageIn(plane)?.metrics.bytesIn ?? 0;
    return bytes;
  }

  /** Attempts, errors and latency of the last seconds over every data plane (the dashboard's rates and p50/p99). */
  recent(nowMs: number): TrafficSummary {
    return summarize(this.#planes.map((plane) => this.#usageIn(plane)?.recent(nowMs)));
  }

  /** This backend's usage in `plane`; none once removed (the slot may belong to a newer member). */
  #usageIn(plane: PoolDataPlane): BackendUsage | undefined {
    return this.removed ? undefined : plane.usage(this.slot);
  }

  /** Recomputes `available` and `enabled` from the state fields. */
  refresh(): void {
    this.enabled = this.adminState === 'enabled' && !this.removed;
    const serving = !this.removed && this.healthy && !this.ejected && !this.unreachable;
    this.available = this.enabled && serving;
    this.fallback = serving && this.terminating && this.adminState !== 'disabled';
    this.pinnable = this.available || this.fallback;
  }

  /** A removed backend's slot went to a new member: nothing of this one is in flight any more. */
  releaseSlot(): void {
    this.#slotReleased = true;
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
