/**
 * A route's filters, compiled once per config (start and reload) into the
 * listener's plan: the request phase runs them in this order, the response
 * phases in reverse (Envoy's decoder and encoder filter chains).
 */
import type { UsherError } from '../errors.ts';
import type { Filter, FilterRequest, FilterResponse, LocalResponse, RequestVerdict } from './filter.ts';

/** A request phase's verdict as built-in filters may also give it: an {@link UsherError} fails the request with its own status (403 `forbidden`...). */
export type InternalVerdict = RequestVerdict | UsherError;

/** A filter as the chain runs it: a user {@link Filter}, or a built-in one that may fail with an UsherError. */
export interface InternalFilter extends Omit<Filter, 'onRequest'> {
  onRequest?(request: FilterRequest): InternalVerdict | Promise<InternalVerdict>;
  /**
   * Built-in filters only: the request is over, once, whatever happened
   * (answered, failed, cut, the client left): a concurrency limit gives its
   * slot back here. Called for the filters whose request phase ran.
   */
  onEnd?(request: FilterRequest): void;
  /**
   * Built-in filters only: the backends failed and usher is about to answer
   * with its own error (`error`: connect refused or timed out, response
   * timeout, no backend available...). A local response returned here is sent
   * instead, through the response phases of the filters before this one: a
   * cache serves its stale copy (`stale-if-error`). Called in reverse order
   * for the filters whose request phase ran, before any response byte left.
   */
  onUpstreamError?(request: FilterRequest, error: UsherError): LocalResponse | undefined;
  /**
   * Built-in filters only: the whole-body transform of a later filter's local
   * answer (`body`, complete), after this filter's `onResponse` saw its head:
   * `compress` codes a cache hit. Returns the new body, or undefined to leave
   * it. `memo`, when the answer has one, remembers results for the stored
   * object the answer came from (compress once, serve many).
   */
  transformLocal?(response: FilterResponse, request: FilterRequest, body: Buffer, memo: BodyMemo | undefined): Buffer | undefined;
}

/** Results of whole-body transforms of one stored object, kept by whoever stores it (the cache). */
export interface BodyMemo {
  /** Names the stored object (and its version) across answers: work under way for it is not started twice. */
  readonly id: string;
  get(key: string): Buffer | undefined;
  set(key: string, body: Buffer): void;
}

/** Default bound on one asynchronous request phase (a user filter's promise). */
export const DEFAULT_FILTER_TIMEOUT_MS = 5000;

/** One filter of a chain. */
export interface CompiledFilter {
  readonly filter: InternalFilter;
  /** Most time one asynchronous `onRequest` may take before the request fails with 504 `filter_timeout`. */
  readonly timeoutMs: number;
}

/** A route's compiled filters. */
export class FilterChain {
  readonly filters: readonly CompiledFilter[];
  /** `filters.length`: the route phase's one check for routes without filters. */
  readonly length: number;
  /** Whether some filter has a response phase (head or body): otherwise responses are not touched at all. */
  readonly hasResponsePhase: boolean;
  /** Whether some filter wants to know when the request is over ({@link InternalFilter.onEnd}). */
  readonly hasEndPhase: boolean;
  /** Whether some filter may answer for failed backends ({@link InternalFilter.onUpstreamError}). */
  readonly hasErrorPhase: boolean;

  constructor(filters: readonly CompiledFilter[]) {
    this.filters = Object.freeze([...filters]);
    this.length = filters.length;
    this.hasResponsePhase = filters.some(({ filter }) => filter.onResponse !== undefined || filter.transformBody !== undefined);
    this.hasEndPhase = filters.some(({ filter }) => filter.onEnd !== undefined);
    this.hasErrorPhase = filters.some(({ filter }) => filter.onUpstreamError !== undefined);
    Object.freeze(this);
  }
}

/** The chain of a route without filters, shared by all of them. */
export const NO_FILTERS: FilterChain = new FilterChain([]);
