import type { UsherError } from '../errors.ts';
import { disabledAccessLog, type AccessLog } from '../observe/access-log.ts';
import type { BackendRuntime } from '../pool/backend-runtime.ts';
import type { PoolRuntime } from '../pool/pool-runtime.ts';
import type { RouteMetrics } from './metrics.ts';
import type { HttpListenerPlan } from './plan.ts';

/**
 * What usher knows of one proxied HTTP request, whichever protocol the client
 * spoke: where it came in, the route and backend that took it, its status,
 * error, sizes and times. The HTTP/1.1 exchange and the HTTP/2 stream
 * exchanges are records (through {@link AttemptLoop}), filled in as the
 * request goes; {@link log} writes the access log line and the route's
 * metrics from it once, when the request is over. The dashboard reads those
 * metrics and the backends' traffic, so it sees the same numbers.
 */
export abstract class RequestRecord {
  /** The listener's name. */
  listener = '';
  accessLog: AccessLog = disabledAccessLog;
  /** Where the finished request is counted: the listener's unrouted numbers until a route matches (undefined: the listener was removed). */
  metrics: RouteMetrics | undefined;
  route: string | undefined;
  pool: PoolRuntime | undefined;
  /** The backend of the last attempt. */
  backend: BackendRuntime | undefined;
  /** Time to the response head of the successful attempt, ms; -1 when there was none. */
  upstreamMs = -1;
  /** The status the client got; 499 when it left first; 0 while none. */
  status = 0;
  /** Why usher answered or cut the response itself. */
  error: UsherError | undefined;
  /** Request bytes read from the client (HTTP/1.1: head and body; HTTP/2: body, heads are compressed). */
  bytesIn = 0;
  /** Response body bytes sent to the client. */
  bytesOut = 0;

  /** performance.now() when the request began to arrive. */
  abstract readonly startedAt: number;
  /** `x-request-id` (request-id.ts): the client's when valid, else a fresh one. */
  abstract readonly requestId: string;
  abstract readonly method: string;
  /** The client's address (the connection's peer). */
  protected abstract readonly clientIp: string;
  /** The request target as the client sent it (the backend may get a rewrite). */
  protected abstract readonly target: string;
  /** `HTTP/1.1`, `HTTP/1.0` or `HTTP/2.0`. */
  protected abstract readonly protocol: string;
  /** A request header the access log shows (Referer, User-Agent); read only when it shows them. */
  protected abstract requestHeader(name: 'referer' | 'user-agent'): string | undefined;

  /** The request arrived on `plan`'s listener. */
  arrivedOn(plan: HttpListenerPlan): void {
    this.listener = plan.name;
    this.accessLog = plan.accessLog;
    this.metrics = plan.metrics.unrouted;
  }

  /** The route phase matched the route of `plan` at `index`. */
  matched(plan: HttpListenerPlan, route: { readonly name: string; readonly index: number }): void {
    this.route = route.name;
    this.metrics = plan.metrics.byRoute[route.index];
  }

  /** Records the finished request, once: the one place its metrics and its access log line are written. */
  log(): void {
    const totalMs = performance.now() - this.startedAt;
    this.metrics?.observe(this.backend, this.status, totalMs, this.upstreamMs, this.bytesIn, this.bytesOut);
    const accessLog = this.accessLog;
    if (!accessLog.enabled) return;
    accessLog.write({
      client: this.clientIp,
      method: this.method,
      path: this.target,
      protocol: this.protocol,
      status: this.status,
      listener: this.listener,
      route: this.route,
      pool: this.pool?.name,
      backend: this.backend?.key,
      backendName: this.backend?.control.name,
      upstreamMs: roundMs(this.upstreamMs),
      totalMs: roundMs(totalMs),
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      error: this.error?.code,
      requestId: this.requestId,
      referer: accessLog.needsHeaders ? this.requestHeader('referer') : undefined,
      userAgent: accessLog.needsHeaders ? this.requestHeader('user-agent') : undefined,
    });
  }
}

/** Milliseconds to the microsecond, as the access log shows them; -1 stays -1. */
export function roundMs(ms: number): number {
  return ms < 0 ? -1 : Math.round(ms * 1000) / 1000;
}
