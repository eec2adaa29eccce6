import type { Endpoint } from '../balancer/types.ts';
import type { HostPort, TimeoutsConfig } from '../config/types.ts';
import { LatencyHistogram } from '../observe/histogram.ts';
import type { InFlightCounts } from './in-flight.ts';
import type { AttemptCounters, BackendUsage, PublishedBackend } from './published.ts';
import { RecentTraffic, type TrafficWindow } from './recent-traffic.ts';
import { UpstreamConnectionPool } from '../upstream/connection.ts';

/**
 * A backend's numbers that only `/metrics` shows (pool/metrics.ts). A plain
 * number and a histogram: the data plane only adds to them.
 */
export class BackendMetrics {
  /** Bytes from clients that went to the backend (HTTP request heads and bodies, tunnel bytes). */
  bytesIn = 0;
  /** Time to the response head of HTTP requests the backend answered. */
  readonly upstreamLatency = new LatencyHistogram();
}

/**
 * One data plane's side of a backend: the kept-alive connections and tunnels
 * to it, this plane's counters, metrics and recent traffic, and its cell in
 * the in-flight table. It is the `Endpoint` the plane's balancers see:
 * availability is the control plane's ({@link control}), read in place at
 * each pick; `weight` is a copy its pool refreshes when the control plane
 * says weights changed, because balancers read it several times per pick;
 * `inFlight` is the total across data planes.
 */
export class BackendRuntime implements Endpoint, BackendUsage {
  /** What the control plane publishes about this backend; read only. */
  readonly control: PublishedBackend;
  /** The backend's slot: its identity in `tried` and its cell in the in-flight table. */
  readonly index: number;
  readonly key: string;
  readonly address: HostPort;
  readonly connections: UpstreamConnectionPool;
  /** Open tunnels (WebSocket, L4) to this backend, closed `drainTimeout` after a drain, disable or removal. */
  readonly tunnels = new Set<{ close(): void }>();
  readonly counters: AttemptCounters = { requests: 0, failures: 0, responses5xx: 0, retriedAway: 0, bytesOut: 0 };
  /** What only `/metrics` shows: bytes in, upstream latency. */
  readonly metrics = new BackendMetrics();
  /** Attempts, errors and latency over the last seconds (the dashboard's rates and p50/p99); recorded as each attempt ends. */
  readonly traffic = new RecentTraffic();
  /** The weight balancers read; only its PoolRuntime writes it, from `control.weight`. */
  weight: number;
  /** Set when the backend left the pool's membership: this plane finishes its attempts on it, then closes its connections. */
  retired = false;
  readonly #inFlight: InFlightCounts;

  constructor(control: PublishedBackend, inFlight: InFlightCounts, timeouts: TimeoutsConfig) {
    this.control = control;
    this.index = control.slot;
    this.key = control.key;
    this.address = control.address;
    this.#inFlight = inFlight;
    this.weight = control.weight;
    this.connections = new UpstreamConnectionPool(control.key, control.address, timeouts, control.tls);
  }

  /** Attempts in flight on this backend in every data plane. */
  get inFlight(): number {
    return this.#inFlight.total(this.index);
  }

  recent(nowMs: number): TrafficWindow {
    return this.traffic.window(nowMs);
  }
}
