/**
 * The filter contract: what a route's filters may do to a request and its
 * response. Built-in filters (`headers`, `rewrite`, `ipAllow`, `ipDeny`,
 * `forwardAuth`, and `stripPrefix` and `redirect` internally) and user
 * filters loaded from TypeScript modules implement the same interface.
 *
 * Shape (see docs/design.md, "Filters"): phases, not middleware. A filter
 * never calls `next()`; each phase returns (or throws) and usher decides what
 * runs next, as Envoy's decoder/encoder filters and Pingora's phases do.
 *
 * - **request** (`onRequest`, in the route's order): return nothing to
 *   continue, a {@link LocalResponse} to answer without a backend, or throw to
 *   fail (500 `filter_error`). It may edit headers, path, query and Host
 *   through the {@link FilterRequest}. It may return a promise: the request
 *   waits (its body unread) and resumes when it settles; a route whose filters
 *   all answer synchronously allocates no promise per request.
 * - **response head** (`onResponse`, in reverse order): edit the status and
 *   headers of the backend's response, or of a later filter's local answer.
 * - **response body** (`transformBody`, in reverse order): a synchronous
 *   streaming transform of the body's bytes; the response then loses its
 *   Content-Length (HTTP/1.1 clients get it chunked).
 */
import type { z } from 'zod';

/** What a request filter sees and may edit. Reads see the edits of the filters before it. */
export interface FilterRequest {
  readonly method: string;
  /** Path (before `?`) as it will be sent upstream, raw (not percent-decoded). */
  readonly path: string;
  /** Query string without the `?`; `''` when none. */
  readonly query: string;
  /** `path` plus `?query` when there is a query. */
  readonly target: string;
  /** The Host (HTTP/2: `:authority`) as it will be sent upstream; undefined when the client sent none. */
  readonly host: string | undefined;
  /** The client's address as the connection reports it (the peer's: http and https listeners do not read PROXY protocol headers yet). */
  readonly clientIp: string;
  readonly scheme: 'http' | 'https';
  readonly protocol: 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2';
  /** The request's `x-request-id`. */
  readonly requestId: string;
  readonly listener: string;
  readonly route: string;
  /** Aborted when the client leaves or the filter's time runs out: pass it to anything asynchronous. */
  readonly signal: AbortSignal;
  /** The first value of a header (case-insensitive name), or undefined. */
  header(name: string): string | undefined;
  /** Every value of a header, in order. */
  headerValues(name: string): readonly string[];
  /** Every header field as it will be sent upstream (after the edits so far): `[name, value, name, value, ...]`, names as received. */
  fields(): readonly string[];
  /** Replaces every value of a header. Framing, hop-by-hop, Host and the fields usher sets itself (X-Forwarded-*, X-Request-Id) are refused (throws). */
  setHeader(name: string, value: string): void;
  /** Adds a value, after those already there. Same names refused as {@link setHeader}. */
  addHeader(name: string, value: string): void;
  removeHeader(name: string): void;
  /** A new path: starts with `/`, visible ASCII only (throws otherwise). */
  setPath(path: string): void;
  /** A new query string without `?` (`''` removes it); visible ASCII only. */
  setQuery(query: string): void;
  /** A new Host for the backend (`name` or `name:port`). X-Forwarded-Host keeps the client's. */
  setHost(host: string): void;
}

/** What a response-head filter sees and may edit. */
export interface FilterResponse {
  /** The status sent to the client. */
  readonly status: number;
  /** Changes the status; both the old and the new one must allow a body (200-599 but 204 and 304). */
  setStatus(status: number): void;
  header(name: string): string | undefined;
  headerValues(name: string): readonly string[];
  /** Every header field of the response (after the edits so far): `[name, value, name, value, ...]`, names as received. */
  fields(): readonly string[];
  /** Framing and hop-by-hop fields and X-Request-Id are refused (throws). */
  setHeader(name: string, value: string): void;
  addHeader(name: string, value: string): void;
  removeHeader(name: string): void;
  /**
   * Answers with `response` instead of the backend's (which is discarded, its
   * body unread): a cache serving its stored body after a 304, an error page
   * in place of a 5xx. Filters earlier in the route see the replacement in
   * their response phase, as they would a later filter's local answer; later
   * calls of this response's own filters are skipped.
   */
  replace(response: LocalResponse): void;
}

/** A response made by a filter instead of the backend's. */
export interface LocalResponse {
  /** 200-599. */
  readonly status: number;
  /** Header fields; framing and hop-by-hop ones are refused. */
  readonly headers?: Readonly<Record<string, string | readonly string[]>>;
  /** UTF-8 text or bytes; none for 204 and 304. */
  readonly body?: string | Uint8Array;
}

/** What a request phase returns: nothing to continue, or a response to send instead of proxying. */
export type RequestVerdict = LocalResponse | undefined | void;

/**
 * A synchronous streaming transform of a response body. Output goes to the
 * client as it is produced; when the client reads slowly the backend is paused
 * (backpressure), so a transform never buffers more than it chooses to.
 */
export interface BodyTransform {
  /** A piece of the body; returns what to send for it (nothing is fine: keep it for later). */
  transform(chunk: Buffer): Uint8Array | string | undefined;
  /** The body ended: returns the last bytes to send. */
  flush?(): Uint8Array | string | undefined;
  /**
   * The transform returns every chunk as it was given (it only observes the
   * body, as a cache filling does): the response keeps its Content-Length.
   */
  readonly observesOnly?: boolean;
}

/** One filter of a route, created once per route at config time (not per request). */
export interface Filter {
  /** Named in logs and the `usher_filter_errors_total` metric. */
  readonly name: string;
  /** Request phase. */
  onRequest?(request: FilterRequest): RequestVerdict | Promise<RequestVerdict>;
  /** Response-head phase (synchronous). */
  onResponse?(response: FilterResponse, request: FilterRequest): void;
  /** Response-body phase: a transform for this response, or undefined to leave the body alone. */
  transformBody?(response: FilterResponse, request: FilterRequest): BodyTransform | undefined;
}

/** A user filter module's default export: its name, the zod schema of its `options`, and how a route's filter is made. */
export interface FilterDefinition<Options extends z.ZodType = z.ZodType> {
  /** Used in logs and metrics: letters, digits, `_`, `.`, `-`. */
  readonly name: string;
  /** Schema of the `options` written in the config; `usher check` reports its issues with file, line and column. */
  readonly options?: Options;
  /** Called once per route that lists the filter, at start and at each reload, with the validated options. */
  create(options: z.output<Options>): Omit<Filter, 'name'>;
  /** Most time one asynchronous `onRequest` may take before the request fails with 504 `filter_timeout`; default 5000. */
  readonly timeoutMs?: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/**
 * Declares a user filter (the default export of a filter module):
 *
 * ```ts
 * import { defineFilter, z } from 'usher';
 * export default defineFilter({
 *   name: 'tenant',
 *   options: z.object({ header: z.string().default('x-tenant') }),
 *   create: ({ header }) => ({
 *     onRequest(request) {
 *       const tenant = request.host?.split('.')[0];
 *       if (tenant === undefined) return { status: 400, body: 'no tenant\n' };
 *       request.setHeader(header, tenant);
 *     },
 *   }),
 * });
 * ```
 *
 * @throws TypeError when the name is not a valid filter name or `create` is missing.
 */
export function defineFilter<Options extends z.ZodType>(definition: FilterDefinition<Options>): FilterDefinition<Options> {
  if (typeof definition.name !== 'string' || !NAME.test(definition.name)) {
    throw new TypeError(`defineFilter: name must start with a letter or digit and contain only letters, digits, "_", "." and "-" (at most 63), got ${JSON.stringify(definition.name)}`);
  }
  if (typeof definition.create !== 'function') throw new TypeError(`defineFilter(${definition.name}): create must be a function`);
  return Object.freeze({ ...definition });
}
