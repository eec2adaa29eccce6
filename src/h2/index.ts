/**
 * HTTP/2 for usher: HTTP/2 clients (ALPN `h2` on https listeners, or h2c
 * with prior knowledge on a socket handed over) and cleartext HTTP/2
 * backends (`protocol: h2c` pools, e.g. gRPC).
 *
 * The runtime needs three things: {@link serveHttp2} for a socket that speaks
 * HTTP/2, {@link closeAll} / {@link destroyAll} (or the per-session
 * `close()` / `destroy()`) for a graceful stop and its deadline, and
 * {@link closeH2cSessions} to close the sessions to h2c backends when usher stops.
 */
export { closeAll, destroyAll, serveHttp2, type Http2Downstream, type Http2Hooks } from './session.ts';
export { closeH2cSessions } from './h2c-client.ts';
export type { PlanSource } from '../proxy/plan.ts';
