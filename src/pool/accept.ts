/**
 * What a pick may take: health, draining, connection limits and "already
 * tried" are decided here, once, for every algorithm; the balancer only
 * ranks candidates (see balancer/types.ts). Availability is the control
 * plane's, read in place; in-flight counts span every data plane.
 * Module-level functions, so a pick allocates nothing.
 */
import type { Accept, Endpoint, PickContext } from '../balancer/types.ts';
import type { BackendRuntime } from './backend-runtime.ts';

/** The normal modes (primary, backup): available and under the connection limit. */
export const acceptAvailable: Accept = (endpoint, ctx) => {
  const backend = endpoint as BackendRuntime;
  const control = backend.control;
  return control.available && backend.inFlight < control.maxConnections && notTried(backend, ctx);
};

/** Panic mode (Envoy): health is ignored, operator intent and limits are not. */
export const acceptInPanic: Accept = (endpoint, ctx) => {
  const backend = endpoint as BackendRuntime;
  const control = backend.control;
  return control.enabled && backend.inFlight < control.maxConnections && notTried(backend, ctx);
};

/** Like `acceptAvailable` without the connection limit: "would a slot help?". */
export const acceptIfFree: Accept = (endpoint, ctx) => (endpoint as BackendRuntime).control.available && notTried(endpoint, ctx);
/** Like `acceptInPanic` without the connection limit. */
export const acceptInPanicIfFree: Accept = (endpoint, ctx) => (endpoint as BackendRuntime).control.enabled && notTried(endpoint, ctx);

/** Fallback mode: terminating endpoints still serving, under the connection limit. */
export const acceptFallback: Accept = (endpoint, ctx) => {
  const backend = endpoint as BackendRuntime;
  const control = backend.control;
  return control.fallback && backend.inFlight < control.maxConnections && notTried(backend, ctx);
};
/** Like `acceptFallback` without the connection limit. */
export const acceptFallbackIfFree: Accept = (endpoint, ctx) => (endpoint as BackendRuntime).control.fallback && notTried(endpoint, ctx);

/** A sticky-pinned request: its backend while it is available, or terminating but still serving (`pinnable`; an operator's drain re-pins). */
export const acceptPinned: Accept = (endpoint, ctx) => {
  const backend = endpoint as BackendRuntime;
  const control = backend.control;
  return control.pinnable && backend.inFlight < control.maxConnections && notTried(backend, ctx);
};

function notTried(backend: Endpoint, ctx: PickContext): boolean {
  return ctx.tried.length === 0 || !ctx.tried.includes(backend.index);
}
