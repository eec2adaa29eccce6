/**
 * The compiled view one HTTP listener serves (its plan) and what the route
 * phase (`route-phase.ts`) hands back to the two fronts: HTTP/1.1
 * (`downstream.ts`) and HTTP/2 (`h2/session.ts`). Types only, so the fronts,
 * the route phase and the filters can share them without an import cycle
 * (as `l4/plan.ts` does for L4).
 */
import type { StreamedBody } from '../filter/streamed-body.ts';
import type { UsherError } from '../errors.ts';
import type { FilterChain } from '../filter/chain.ts';
import type { FilterRun } from '../filter/run.ts';
import type { HeadLimits } from '../http1/types.ts';
import type { AccessLog } from '../observe/access-log.ts';
import type { Logger } from '../observe/logger.ts';
import type { PoolRuntime } from '../pool/pool-runtime.ts';
import type { CompiledRoute, RouteTable } from '../route/table.ts';
import type { ListenerMetrics } from './metrics.ts';

/** Timeouts and limits of the client side of a listener, compiled from its config. */
export interface DownstreamSettings {
  readonly limits: HeadLimits;
  /** Close a connection idle between requests after this long. */
  readonly keepAliveTimeoutMs: number;
  /** A request head must arrive completely within this long of its first byte (slowloris). */
  readonly headerTimeoutMs: number;
  /** Longest pause between two reads of a request body (slow POST). */
  readonly bodyIdleTimeoutMs: number;
  /** A client that stops reading its response is cut after this long without progress. */
  readonly sendTimeoutMs: number;
  /** An upgraded connection (WebSocket) idle both ways this long is closed. */
  readonly tunnelIdleTimeoutMs: number;
  /** Request body bytes allowed; 0 = unlimited. */
  readonly maxBodyBytes: number;
  /** Requests per connection before the response says `Connection: close`. */
  readonly maxRequestsPerConnection: number;
  /** Open connections on the listener; past it new ones get 503 and are closed. */
  readonly maxConnections: number;
  /** Open connections per client IP; 0 = unlimited. */
  readonly maxConnectionsPerClient: number;
}

/** Where a listener finds its current plan: swapped on reload, read once per request. */
export interface PlanSource {
  plan(): HttpListenerPlan | undefined;
  /** Something threw inside a connection's event handler: the connection is cut and this logs it. */
  onInternalError(error: unknown): void;
}

/**
 * What one HTTP listener serves, compiled from config and swapped as a whole on
 * reload: a request reads it once at its start and keeps that view to the end.
 */
export interface HttpListenerPlan {
  readonly name: string;
  readonly proto: 'http' | 'https';
  readonly routes: RouteTable;
  /** Pool of each route, by route index: resolved at compile time, not per request. `undefined` for redirect routes. */
  readonly poolOfRoute: readonly (PoolRuntime | undefined)[];
  /** Weighted split of each route with `split` (routes from the Gateway API), by route index; undefined elsewhere. */
  readonly splitOfRoute?: readonly (RouteSplit | undefined)[];
  /**
   * Filters of each route, by route index, in the order they run on requests
   * (`stripPrefix` first, the route's `filters` next, `redirect` last). A route
   * without any has an empty chain: the route phase checks its length, nothing more.
   */
  readonly filtersOfRoute: readonly FilterChain[];
  readonly accessLog: AccessLog;
  /** What requests record into: by route index, resolved at compile time like `poolOfRoute`. */
  readonly metrics: ListenerMetrics;
  /** The listener's client-side limits and timeouts. */
  readonly settings: DownstreamSettings;
  /** The process log: a filter that throws is logged here (with listener, route and filter). */
  readonly logger: Logger;
}

/**
 * What the route phase needs to know about a request beyond its
 * {@link RouteRequest} view, filled by the front. Read synchronously by
 * `routeRequest` only (a filter run copies what it keeps), so each connection
 * reuses one object for all its requests.
 */
export interface RequestFacts {
  readonly clientIp: string;
  /** The scheme the client used to reach usher. */
  readonly scheme: 'http' | 'https';
  readonly protocol: 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2';
  readonly requestId: string;
  /** The request target as received (logged in a CONNECT refusal). */
  readonly rawTarget: string;
  /** Header fields as a flat `[name, value, ...]` list (HTTP/2: lowercase, Host first, Cookie joined). */
  readonly rawHeaders: readonly string[];
  /** Declared body length: -1 when none is declared (no body, chunked, or an HTTP/2 body without content-length). */
  readonly contentLength: number;
  /** HTTP/1.1 absolute-form target (`GET http://a.example/ HTTP/1.1`): its authority must agree with Host. */
  readonly absoluteForm: boolean;
  /** The Host header as received (HTTP/1.1), for the absolute-form check. */
  readonly hostHeader: string | undefined;
  /** A refusal the front found in the request itself (HTTP/2 fields HTTP/1.1 would reject); reported once a route matched. */
  readonly malformed: UsherError | undefined;
}

/** Proxy the request to `pool`: the pick phase onwards. */
export interface Forward {
  readonly kind: 'forward';
  readonly route: CompiledRoute;
  readonly pool: PoolRuntime;
  /** Hash of the pool's hash key (0 when the pool does not hash), read after the filters' edits. */
  readonly hash: number;
  /** The client's sticky cookie value, if the pool is sticky and the client sent one. */
  readonly stickyToken: string | undefined;
  /** Origin-form target (`path?query`) to send upstream, after the filters' edits. */
  readonly target: string;
  /** The route's filter run: request header and Host edits for the upstream head, then the response phases. Undefined on routes without filters. */
  readonly filters: FilterRun | undefined;
}

/** Answer without a backend: a redirect, a filter's own response (403, an auth service's answer...). */
export interface Answer {
  readonly kind: 'answer';
  readonly route: CompiledRoute;
  readonly pool: PoolRuntime | undefined;
  readonly status: number;
  /** Header fields as a flat `[name, value, ...]` list, already through the response phases; no framing fields. */
  readonly headers: readonly string[];
  readonly body: Buffer;
  /** A body still arriving (a cache fill's), sent instead of `body`. */
  readonly stream?: StreamedBody | undefined;
}

/** Refuse the request with an error (its status and `x-usher-error` come from the catalogue). */
export interface Refusal {
  readonly kind: 'fail';
  /** The matched route, when one matched (the request is then counted on it). */
  readonly route: CompiledRoute | undefined;
  readonly pool: PoolRuntime | undefined;
  readonly error: UsherError;
}

/**
 * A filter returned a promise: the request waits (its body unread) until
 * `settled` gives the final outcome. `cancel()` when the client leaves: the
 * filter's signal aborts and the late outcome is dropped.
 */
export interface Suspended {
  readonly kind: 'suspended';
  readonly route: CompiledRoute;
  readonly pool: PoolRuntime | undefined;
  readonly settled: Promise<Forward | Answer | Refusal>;
  cancel(): void;
}

/** The route phase's result. */
export type RouteOutcome = Forward | Answer | Refusal | Suspended;

/** A route's weighted split: pools (undefined: a backend that could not be resolved, answered 500) and the running sum of their weights. */
export interface RouteSplit {
  readonly pools: readonly (PoolRuntime | undefined)[];
  readonly cumulative: readonly number[];
  readonly total: number;
}

/** One pick of a split, weighted; `random` in [0, 1). */
export function pickSplit(split: RouteSplit, random: number = Math.random()): PoolRuntime | undefined {
  const at = random * split.total;
  const cumulative = split.cumulative;
  for (let i = 0; i < cumulative.length; i++) if (at < cumulative[i]!) return split.pools[i];
  return split.pools[split.pools.length - 1];
}
