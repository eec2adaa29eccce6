/**
 * The pool component's metrics: pools (mode, queue) and their backends
 * (state, weight, in-flight, upstream connections, counters, health checks,
 * upstream latency). Everything is read at scrape time from the fields the
 * control plane keeps (state, weights, checks, ejections) or sums over the
 * data planes (in-flight, connections, counters, bytes), and the upstream
 * latency histogram of the local data plane; only the backends of the
 * pools in the current snapshot are listed, so a removed backend or pool
 * leaves the output at the next scrape.
 */
import type { Registry } from 'prom-client';
import { collectedCounter, collectedGauge, type Emit } from '../observe/collected.ts';
import { CollectedHistogram, type HistogramSeries } from '../observe/histogram.ts';
import type { BackendControl, BackendCounters, BackendState } from './backend-control.ts';
import type { Pool } from './pool.ts';
import type { PoolRuntime } from './pool-runtime.ts';
import type { PoolMode } from './pool-mode.ts';

const POOL_MODES: readonly PoolMode[] = ['primary', 'backup', 'panic', 'fallback', 'none'];
const BACKEND_STATES: readonly BackendState[] = ['healthy', 'slow-start', 'ejected', 'unreachable', 'unhealthy', 'draining', 'disabled'];

const BACKEND_LABELS = ['pool', 'backend'] as const;

/** Backend counters exposed one to one, with their metric names and help. */
const COUNTERS: readonly (readonly [keyof BackendCounters, string, string])[] = [
  ['requests', 'usher_backend_attempts_total', 'Attempts sent to the backend (HTTP requests, a retried request once per attempt; L4 connections).'],
  ['failures', 'usher_backend_failures_total', 'Attempts that failed: connect errors, resets, timeouts, malformed responses.'],
  ['responses5xx', 'usher_backend_responses_5xx_total', 'Attempts the backend answered with a 5xx status (retried ones included).'],
  ['retriedAway', 'usher_backend_retries_total', 'Times a retry moved a request away from the backend.'],
  ['ejections', 'usher_backend_ejections_total', 'Times outlier detection ejected the backend.'],
  ['bytesOut', 'usher_backend_bytes_out_total', 'Bytes from the backend sent to clients (HTTP response bodies, tunnel bytes).'],
];

/** Declares the pool and backend metrics on `registry`; `pools` lists the live pools at each scrape. */
export function declarePoolMetrics(registry: Registry, pools: () => Iterable<Pool>): void {
  const eachBackend = (emit: Emit, value: (backend: BackendControl) => number): void => {
    for (const pool of pools()) for (const backend of pool.control.backends) emit({ pool: pool.name, backend: backend.key }, value(backend));
  };

  collectedGauge(registry, 'usher_pool_mode', 'The mode each pool is in: 1 for the current mode, 0 for the others.', ['pool', 'mode'], (emit) => {
    for (const pool of pools()) for (const mode of POOL_MODES) emit({ pool: pool.name, mode }, pool.control.mode === mode ? 1 : 0);
  });

  collectedGauge(registry, 'usher_backend_state', 'The state each backend is in: 1 for the current state, 0 for the others.', [...BACKEND_LABELS, 'state'], (emit) => {
    for (const pool of pools()) {
      for (const backend of pool.control.backends) {
        const current = backend.state;
        for (const state of BACKEND_STATES) emit({ pool: pool.name, backend: backend.key, state }, state === current ? 1 : 0);
      }
    }
  });
  collectedGauge(registry, 'usher_backend_weight', 'Weight the balancer uses now (below the configured weight during slow start).', BACKEND_LABELS, (emit) =>
    eachBackend(emit, (backend) => backend.weight),
  );
  collectedGauge(registry, 'usher_backend_in_flight', 'Attempts in progress on the backend (HTTP requests, WebSockets, L4 connections).', BACKEND_LABELS, (emit) =>
    eachBackend(emit, (backend) => backend.inFlight),
  );
  // TODO(metrics): h2c backends hold one HTTP/2 session each (h2/h2c-client.ts), not counted here.
  collectedGauge(registry, 'usher_backend_connections_open', 'Open pooled HTTP/1.1 connections to the backend, busy or idle.', BACKEND_LABELS, (emit) =>
    eachBackend(emit, (backend) => backend.connections.open),
  );
  collectedGauge(registry, 'usher_backend_connections_idle', 'Idle kept-alive HTTP/1.1 connections to the backend.', BACKEND_LABELS, (emit) =>
    eachBackend(emit, (backend) => backend.connections.idle),
  );

  for (const [field, name, help] of COUNTERS) {
    collectedCounter(registry, name, help, BACKEND_LABELS, (emit) => eachBackend(emit, (backend) => backend.counters[field]));
  }
  collectedCounter(registry, 'usher_backend_bytes_in_total', 'Bytes from clients sent to the backend (HTTP request heads and bodies, tunnel bytes).', BACKEND_LABELS, (emit) =>
    eachBackend(emit, (backend) => backend.bytesIn),
  );
  collectedCounter(registry, 'usher_backend_health_checks_total', 'Active health checks by result (pass, fail).', [...BACKEND_LABELS, 'result'], (emit) => {
    for (const pool of pools()) {
      for (const backend of pool.control.backends) {
        emit({ pool: pool.name, backend: backend.key, result: 'pass' }, backend.checks.passed);
        emit({ pool: pool.name, backend: backend.key, result: 'fail' }, backend.checks.failed);
      }
    }
  });

  declarePoolDataMetrics(registry, function* () {
    for (const pool of pools()) yield pool.runtime;
  });
}

/**
 * The metrics one data plane keeps itself: its wait queues and its upstream
 * latency histograms. With worker threads each worker declares these on its
 * own registry and `/metrics` sums the threads' series (runtime/usher.ts).
 */
export function declarePoolDataMetrics(registry: Registry, runtimes: () => Iterable<PoolRuntime>): void {
  collectedGauge(registry, 'usher_pool_queue_length', 'Requests and connections waiting for a backend slot.', ['pool'], (emit) => {
    for (const runtime of runtimes()) emit({ pool: runtime.name }, runtime.queueLength);
  });
  new CollectedHistogram(
    registry,
    'usher_upstream_duration_seconds',
    'Time from sending an HTTP request to a backend to its response head, for requests it answered.',
    BACKEND_LABELS,
    function* (): Generator<HistogramSeries> {
      for (const runtime of runtimes()) {
        for (const backend of runtime.backends) yield [{ pool: runtime.name, backend: backend.key }, backend.metrics.upstreamLatency];
      }
    },
  );
}
