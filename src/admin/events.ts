import type { IncomingMessage, ServerResponse } from 'node:http';
import { listenerViews, workerViews, type AdminTarget, type WorkerAdminView } from './api.ts';
import { poolView, type BackendView, type ListenerView, type PoolView } from './views.ts';
import type { CacheStats } from '../cache/report.ts';
import type { PeersView } from '../peers/peers.ts';

/**
 * The dashboard's event stream: `GET /api/events` answers with
 * `text/event-stream` and sends one `snapshot` event (every listener, pool,
 * backend and worker thread) at once and then every second until the client leaves.
 *
 * Bounded by construction: a client that does not keep up is skipped (no
 * event is written while the last one is still queued), so a slow reader costs
 * one event of buffer, never more; and at most {@link MAX_STREAMS} streams are
 * open at once. Clients share one serialised snapshot per tick.
 */

export const EVENT_INTERVAL_MS = 1000;
/** Open event streams per usher; more get 503 (a dashboard holds one). */
export const MAX_STREAMS = 32;

/** A backend as the dashboard sees it: the API's view and its attempts per second over the last minute. */
export interface DashboardBackendView extends BackendView {
  /** Attempts per second over the last 60 complete seconds, oldest first. */
  readonly requestsPerSecond: readonly number[];
}

export interface DashboardPoolView extends Omit<PoolView, 'backends'> {
  readonly backends: readonly DashboardBackendView[];
}

/** The data of one `snapshot` event. */
export interface DashboardSnapshot {
  /** When it was taken (ISO 8601). */
  readonly at: string;
  readonly listeners: readonly ListenerView[];
  readonly pools: readonly DashboardPoolView[];
  /** The worker threads as `GET /api/workers` lists them; empty when the main thread serves. */
  readonly workers: readonly WorkerAdminView[];
  /** The response cache summed over the threads; absent when no route caches. */
  readonly cache?: CacheStats | undefined;
  /** The instances sharing this usher's Redis, as `GET /api/peers` shows them; absent without a `redis` section. */
  readonly peers?: PeersView | undefined;
}

export function dashboardSnapshot(target: AdminTarget): DashboardSnapshot {
  const now = performance.now();
  return {
    at: new Date().toISOString(),
    listeners: listenerViews(target),
    pools: [...target.snapshot.pools.values()].map((pool) => {
      const view = poolView(pool); // its backends are pool.control.backends, in order
      const members = pool.control.backends;
      return { ...view, backends: view.backends.map((b, i) => ({ ...b, requestsPerSecond: pool.runtimeOf(members[i]!).traffic.perSecond(now) })) };
    }),
    workers: workerViews(target),
    cache: target.cacheStats?.(),
    peers: target.peersView?.(),
  };
}

/** The last serialised snapshot per usher, reused by every stream within the same tick. */
const latest = new WeakMap<AdminTarget, { readonly takenAt: number; readonly text: string }>();
const openStreams = new WeakMap<AdminTarget, number>();

function snapshotText(target: AdminTarget, intervalMs: number): string {
  const now = performance.now();
  const cached = latest.get(target);
  if (cached !== undefined && now - cached.takenAt < intervalMs / 2) return cached.text;
  const text = JSON.stringify(dashboardSnapshot(target));
  latest.set(target, { takenAt: now, text });
  return text;
}

/** Streams pool and backend state as server-sent events until the client leaves. */
export function streamEvents(
  req: IncomingMessage,
  res: ServerResponse,
  target: AdminTarget & { readonly logger?: { error(obj: object, msg: string): void } },
  intervalMs = EVENT_INTERVAL_MS,
): void {
  const open = openStreams.get(target) ?? 0;
  if (open >= MAX_STREAMS) {
    const body = { error: { code: 'too_many_streams', message: `at most ${MAX_STREAMS} event streams may be open at once` } };
    res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'retry-after': '5' });
    res.end(`${JSON.stringify(body, null, 2)}\n`);
    return;
  }
  openStreams.set(target, open + 1);
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no', // a buffering reverse proxy in front would hold events back
    'x-content-type-options': 'nosniff',
  });
  req.socket.setNoDelay(true);

  let blocked = false;
  const tick = (): void => {
    // A client that has not read the last event gets no new one: skip the tick, buffer nothing more.
    if (blocked || res.writableEnded) return;
    try {
      blocked = !res.write(`event: snapshot\ndata: ${snapshotText(target, intervalMs)}\n\n`);
    } catch (err) {
      target.logger?.error({ err }, 'admin event stream failed');
      res.destroy();
    }
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  res.on('drain', () => (blocked = false));
  res.once('close', () => {
    clearInterval(timer);
    openStreams.set(target, (openStreams.get(target) ?? 1) - 1);
  });
  tick();
}
