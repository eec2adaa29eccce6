/**
 * The seam between a pool's control plane and its data planes: what the
 * control plane publishes, what a data plane reports back, and what the
 * control plane tells a data plane to do. Nothing else crosses.
 *
 * - The control plane (`PoolControl`, main thread) owns membership, weights,
 *   health, operator state, the pool mode and sticky tokens. It writes them
 *   as plain fields that a data plane only reads, through the readonly
 *   {@link PublishedPool} and {@link PublishedBackend} views, and calls
 *   {@link PoolDataPlane} when something a data plane derived from them must
 *   be rebuilt or released.
 * - A data plane (`PoolRuntime`) owns upstream connections, tunnels, the wait
 *   queue, the retry budget, balancers' per-pick state and its counters. It
 *   reports attempt outcomes through {@link AttemptReports}, by slot.
 *
 * Backends cross the seam as slots (small integers the control plane
 * assigns), not object references, so the same calls can become messages
 * between threads; see docs/design.md, "Control state and data planes".
 */
import type { ConnectionOptions } from 'node:tls';
import type { HashKey, HostPort, PoolConfig } from '../config/types.ts';
import type { PoolMode } from './pool-mode.ts';
import type { TrafficWindow } from './recent-traffic.ts';
import type { StickyCookie } from './sticky.ts';

/** What the control plane publishes about one backend. A data plane only reads it. */
export interface PublishedBackend {
  /** The backend's cell in the in-flight table and its identity in `tried`; stable while it is a member. */
  readonly slot: number;
  /** `host:port`, the backend's identity in its pool. */
  readonly key: string;
  /** The name people know it by (`name` in the file), for logs; undefined when it has none. */
  readonly name: string | undefined;
  readonly address: HostPort;
  /** TLS options when the backend speaks TLS (CA file read by the control plane). */
  readonly tls: ConnectionOptions | undefined;
  readonly backup: boolean;
  /** Most requests in flight at once, across data planes; Infinity when unlimited. */
  readonly maxConnections: number;
  /** Opaque id written into sticky cookies; '' when the pool is not sticky. */
  readonly stickyToken: string;
  /** The effective weight: the configured one, scaled down during slow start. Data planes copy it when told (weightsChanged). */
  readonly weight: number;
  /** The weight from the file or the admin API (hash tables are built from it). */
  readonly configuredWeight: number;
  /** May take a new request: operator-enabled, healthy, reachable, not ejected, a member. */
  readonly available: boolean;
  /** Operator-enabled member: what panic mode still requires when it ignores health. */
  readonly enabled: boolean;
  /** A sticky-pinned request may still go here: available, or a terminating discovered endpoint still serving (an operator's drain re-pins its clients). */
  readonly pinnable: boolean;
  /** A discovered endpoint that is terminating but still serving (Kubernetes `serving && terminating`), healthy: used when nothing is available, as kube-proxy does. */
  readonly fallback: boolean;
}

/** What the control plane publishes about one pool. A data plane only reads it. */
export interface PublishedPool {
  readonly name: string;
  readonly config: PoolConfig;
  readonly mode: PoolMode;
  /** Members in file order (balancers that walk the list follow it). */
  readonly backends: readonly PublishedBackend[];
  readonly sticky: StickyCookie | undefined;
  /** Set when the algorithm hashes a request feature; the proxy computes `ctx.hash` only then. */
  readonly hashKey: HashKey | undefined;
}

/**
 * How an attempt on a backend ended: `success` (a complete response),
 * `failure` (reset, timeout, malformed response or a retried 5xx),
 * `unreachable` (no connection could be made: refused, connect error or
 * timeout), or `unknown` (no verdict: the client left).
 */
export type AttemptOutcome = 'success' | 'failure' | 'unreachable' | 'unknown';

/** What a data plane reports to the control plane: passive health learns from real traffic. */
export interface AttemptReports {
  /**
   * An attempt with a verdict ended on the member in `slot`. `failed`: it
   * failed or the backend answered 5xx (outlier detection counts both).
   */
  attemptReported(slot: number, outcome: Exclude<AttemptOutcome, 'unknown'>, failed: boolean): void;
}

/** What one data plane counts about its attempts on a backend. Plain numbers: the data plane only increments them. */
export interface AttemptCounters {
  /** Attempts sent to this backend (a retried request counts once per attempt). */
  requests: number;
  /** Attempts that failed: connect errors, resets, timeouts, malformed responses. */
  failures: number;
  /** Responses with a 5xx status from the backend itself. */
  responses5xx: number;
  /** Times a retry moved a request away from this backend. */
  retriedAway: number;
  bytesOut: number;
}

/** One data plane's numbers about a backend, which the control plane sums over data planes. */
export interface BackendUsage {
  readonly counters: Readonly<AttemptCounters>;
  readonly connections: { readonly open: number; readonly idleCount: number };
  readonly metrics: { readonly bytesIn: number };
  /** Attempts, errors and latencies of the last seconds (`nowMs`: this thread's performance.now()). */
  recent(nowMs: number): TrafficWindow;
}

/** What the control plane tells one data plane, and reads back from it. Every call is about state it already published. */
export interface PoolDataPlane {
  /**
   * Members, their weights, backup flags or sticky tokens, or the pool's
   * settings changed: rebuild balancers and lookup tables, open resources for
   * new members, release those of removed ones (connections close when the
   * plane's last attempt on them ends).
   */
  membersChanged(): void;
  /** Availability or the mode changed: offer capacity to waiting requests. */
  availabilityChanged(): void;
  /** Effective weights changed (slow start): copy them to the balancers' endpoints. */
  weightsChanged(): void;
  /** The member in `slot` left rotation (unhealthy, ejected): keep no idle connection to it. */
  closeIdle(slot: number): void;
  /** An operator drained or disabled the member in `slot`: idle connections close now, tunnels after `drainTimeout`. */
  takenOut(slot: number): void;
  /** The pool is closing: fail queued requests, close idle connections (busy ones close when released). */
  close(): void;
  /** What this plane counted on the member in `slot`; undefined when it has none there. */
  usage(slot: number): BackendUsage | undefined;
}
