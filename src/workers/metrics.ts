/**
 * The worker threads' metrics, per worker index: restarts, whether it
 * serves, its open client connections and its CPU time. Declared on the main
 * thread's registry only and read at scrape time from the group's views (the
 * workers' usage reports), so `/metrics`, which sums every thread's
 * registry, counts each once. With no worker threads there are no series.
 */
import type { Registry } from 'prom-client';
import { collectedCounter, collectedGauge } from '../observe/collected.ts';
import type { WorkerView } from './group.ts';

/** Declares the worker metrics on `registry`; `workers` lists the worker threads at each scrape. */
export function declareWorkerMetrics(registry: Registry, workers: () => readonly WorkerView[]): void {
  collectedCounter(registry, 'usher_worker_restarts_total', 'Times the worker thread was replaced: it died, or was restarted on purpose (POST /api/workers/{index}/restart).', ['worker'], (emit) => {
    for (const worker of workers()) emit({ worker: String(worker.index) }, worker.restarts);
  });
  collectedGauge(registry, 'usher_worker_up', '1 while the worker thread serves, 0 while it starts, restarts or has stopped.', ['worker'], (emit) => {
    for (const worker of workers()) emit({ worker: String(worker.index) }, worker.state === 'serving' ? 1 : 0);
  });
  collectedGauge(registry, 'usher_worker_connections', 'Client connections open on the worker thread (at its last usage report, once a second).', ['worker'], (emit) => {
    for (const worker of workers()) emit({ worker: String(worker.index) }, worker.connections);
  });
  collectedCounter(registry, 'usher_worker_cpu_seconds_total', 'CPU time the worker thread used (user and system; carried over restarts).', ['worker'], (emit) => {
    for (const worker of workers()) emit({ worker: String(worker.index) }, worker.cpuMicros / 1e6);
  });
}
