/**
 * What the control plane (main thread) and the data planes (worker threads)
 * say to each other. Every message is plain, structured-cloneable data; a
 * listening socket travels in a message's transfer list.
 *
 * Order matters and is kept: messages on one port arrive in the order sent,
 * so a worker applies a pool's state before a `commit` that needs it, and a
 * `pong` proves every earlier message was applied (the admin API's barrier).
 */
import type { ResponseCacheCounters } from '../cache/response-cache.ts';
import type { SharedStoreBuffers } from '../cache/shared-store.ts';
import type { Server } from 'node:net';
import type { UsherConfig } from '../config/types.ts';
import type { SharedInFlight } from '../pool/in-flight.ts';
import type { PoolMode } from '../pool/pool-mode.ts';
import type { PublishedBackend } from '../pool/published.ts';
import type { SharedRateLimits } from '../ratelimit/store.ts';

/** One member of a pool as the control plane publishes it: a `PublishedBackend`, as plain data. */
export type BackendState = PublishedBackend;

/** A pool's published state. `members` and `weights` count changes, so a worker rebuilds only what changed. */
export interface PoolState {
  readonly mode: PoolMode;
  readonly members: number;
  readonly weights: number;
  readonly backends: readonly BackendState[];
  readonly inFlight: SharedInFlight;
  /** The retry budget's window (retry-budget.ts): the same buffer every time. */
  readonly retries: SharedArrayBuffer;
}

/** A listening socket lent to a worker, bound by the main thread. */
export interface LentListener {
  readonly name: string;
  readonly server: Server;
}

export type ToWorker =
  | { readonly type: 'pool'; readonly pool: string; readonly state: PoolState }
  | { readonly type: 'close-idle' | 'taken-out'; readonly pool: string; readonly slot: number }
  | { readonly type: 'pool-closed'; readonly pool: string }
  /**
   * Phase one of a config change: build everything, swap nothing. The worker answers `prepared`. `rateLimits`: the process's
   * tables for the config's policies (the same buffers while a policy is unchanged); `cache`: the process's response store
   * when a route caches (the same buffers while its limits are unchanged).
   */
  | { readonly type: 'prepare'; readonly generation: number; readonly config: UsherConfig; readonly rateLimits: SharedRateLimits; readonly cache: SharedStoreBuffers | undefined; readonly listeners: readonly LentListener[] }
  /** Phase two: serve the prepared config. The worker answers `committed`. */
  | { readonly type: 'commit' | 'abort'; readonly generation: number }
  | { readonly type: 'ping'; readonly id: number }
  /** New TLS session-ticket keys (48 bytes) for every https listener: a rotation. */
  | { readonly type: 'ticket-keys'; readonly keys: Uint8Array }
  /** The worker's response-cache request counters (the store is shared: its numbers are read on the main thread); the worker answers `cache-report`. */
  | { readonly type: 'cache'; readonly id: number }
  /** Usage now, and the worker's metrics as prom-client JSON when `metrics` (a `/metrics` scrape). */
  | { readonly type: 'collect'; readonly id: number; readonly metrics: boolean }
  /** A planned restart: stop accepting and give the listening sockets back, open. The worker answers `handed-back`. */
  | { readonly type: 'hand-back'; readonly id: number }
  /** Graceful stop; the worker answers `stopped` with the same id. */
  | { readonly type: 'stop'; readonly id: number; readonly timeoutMs: number };

/** What a worker counted on one backend: summed by the control plane for the admin API, metrics and dashboard. */
export interface BackendUsageReport {
  readonly slot: number;
  readonly requests: number;
  readonly failures: number;
  readonly responses5xx: number;
  readonly retriedAway: number;
  readonly bytesOut: number;
  readonly bytesIn: number;
  readonly open: number;
  readonly idle: number;
  /** The last seconds' attempts, errors and latency bucket counts (`TrafficWindow`). */
  readonly recent: { readonly requests: number; readonly errors: number; readonly latency: Uint32Array };
}

/** A worker's numbers as the control plane reads them: per-backend usage by pool, and its metrics (prom-client JSON). */
export interface WorkerUsage {
  readonly pools: Readonly<Record<string, readonly BackendUsageReport[]>>;
  /** Client connections open now. */
  readonly connections: number;
  /** HTTP requests answered and L4 connections ended since the worker started. */
  readonly requests: number;
  /** The worker's response-cache request counters, when a route caches. */
  readonly cache?: ResponseCacheCounters | undefined;
  /** The thread's CPU time since it started, µs. */
  readonly cpuMicros: number;
}

export type FromWorker =
  | { readonly type: 'prepared'; readonly generation: number; readonly errors: readonly string[] }
  /** `error`: the worker could not commit (it never prepared that generation). */
  | { readonly type: 'committed'; readonly generation: number; readonly error?: string }
  /** Attempt verdicts for passive health, in order: `[slot, outcome, failed]` triples (see `OUTCOME_CODES`). */
  | { readonly type: 'reports'; readonly pool: string; readonly data: readonly number[] }
  | { readonly type: 'pong'; readonly id: number }
  | { readonly type: 'collected'; readonly id: number; readonly usage: WorkerUsage; readonly metrics: unknown }
  | { readonly type: 'cache-report'; readonly id: number; readonly counters: ResponseCacheCounters }
  | { readonly type: 'usage'; readonly usage: WorkerUsage }
  /** The worker's listening sockets, in the transfer list: it accepts nothing more and finishes what it has. */
  | { readonly type: 'handed-back'; readonly id: number; readonly listeners: readonly LentListener[] }
  | { readonly type: 'stopped'; readonly id: number };

/** Attempt outcomes as numbers in `reports`. */
export const OUTCOME_CODES = ['success', 'failure', 'unreachable'] as const;
