/**
 * One request's trip through its route's filters: the request view the
 * filters read and edit, the request phase (synchronous loop; a promise
 * suspends it), local answers, and the response phases.
 *
 * Created only on routes that have filters (one object per request there);
 * a route without filters never reaches this file. A synchronous filter costs
 * one call; only a filter that returns a promise makes the run allocate one,
 * plus a timer for its timeout.
 *
 * A filter that throws, returns something that is not a verdict, or makes an
 * edit usher refuses, fails the request with 500 `filter_error`: logged to the
 * process log with listener, route and filter, counted in
 * `usher_filter_errors_total`, and never beyond the request.
 */
import { UsherError } from '../errors.ts';
import { TARGET } from '../http1/chars.ts';
import type { ResponseHead } from '../http1/types.ts';
import type { Logger } from '../observe/logger.ts';
import type { PoolRuntime } from '../pool/pool-runtime.ts';
import type { RouteMetrics } from '../proxy/metrics.ts';
import type { HttpListenerPlan, RequestFacts } from '../proxy/plan.ts';
import { createRouteRequest, headerRecord, type RouteRequest } from '../route/request.ts';
import type { CompiledRoute } from '../route/table.ts';
import { BodyTransformer } from './body.ts';
import type { BodyMemo, FilterChain, InternalVerdict } from './chain.ts';
import { HeaderEdits, headerNameProblem, headerValueProblem } from './edits.ts';
import type { BodyTransform, FilterRequest, FilterResponse, LocalResponse } from './filter.ts';
import type { StreamedBody } from './streamed-body.ts';

/** A response made without a backend, already through the response phases of the filters before the one that made it. */
export interface LocalAnswer {
  readonly status: number;
  /** `[name, value, ...]`, no framing fields. */
  readonly headers: readonly string[];
  readonly body: Buffer;
  /** A body still arriving (a cache fill's), sent instead of `body` (then empty). */
  readonly stream?: StreamedBody | undefined;
}

/** A response filter answered with its own response instead of the backend's ({@link FilterResponse.replace}). */
export interface Replaced {
  readonly replaced: LocalAnswer;
}

/** What the request phase decided: continue to the pool (undefined), answer, or fail. */
export type RequestOutcome = LocalAnswer | UsherError | undefined;

/** Marks a request phase waiting on a promise. */
const PENDING = Symbol('pending');
const TIMED_OUT = Symbol('timed out');
const CANCELLED = Symbol('cancelled');

const EMPTY_BODY = Buffer.alloc(0);

/** `(host)` allowed in setHost: a reg-name or IPv4 or bracketed IPv6 address, optional port. */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::[0-9]{1,5})?$/;

/** Statuses a body may follow, and so the ones a filter may answer with or change between. */
function carriesBody(status: number): boolean {
  return Number.isInteger(status) && status >= 200 && status <= 599 && status !== 204 && status !== 304;
}

/** Visible ASCII only: what may go into an HTTP/1.1 request line (and an HTTP/2 `:path` bound for one). */
function isTargetText(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (TARGET[text.charCodeAt(i)] !== 1) return false;
  return true;
}

/** The filter run of one request (see the file comment). Implements the view filters get. */
export class FilterRun implements FilterRequest {
  readonly method: string;
  readonly clientIp: string;
  readonly scheme: 'http' | 'https';
  readonly protocol: 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2';
  readonly requestId: string;
  readonly listener: string;
  readonly route: string;
  /** Request header edits, read by the upstream header builders. */
  readonly headers = new HeaderEdits('request');
  /** Set when a filter called `setHost`. */
  hostEdited = false;
  /** The body transform of the current response, once the response-head phase chose one. */
  body: BodyTransformer | undefined;
  /** The route's pool, for built-in filters that send requests of their own (the cache's background revalidation); not part of {@link FilterRequest}. */
  readonly pool: PoolRuntime | undefined;
  readonly #chain: FilterChain;
  readonly #raw: readonly string[];
  readonly #metrics: RouteMetrics;
  readonly #logger: Logger;
  #path: string;
  #query: string;
  #host: string | undefined;
  #pathEdited = false;
  /** Filters whose request phase ran (a local answer goes through the response phases of those before it). */
  #ran = 0;
  #abort: AbortController | undefined;
  #pendingIndex = 0;
  #pending: PromiseLike<InternalVerdict> | undefined;
  #stopWaiting: ((reason: symbol) => void) | undefined;
  #cancelled = false;
  #ended = false;

  constructor(chain: FilterChain, plan: HttpListenerPlan, route: CompiledRoute, request: RouteRequest, facts: RequestFacts, pool?: PoolRuntime) {
    this.#chain = chain;
    this.method = request.method;
    this.clientIp = facts.clientIp;
    this.scheme = facts.scheme;
    this.protocol = facts.protocol;
    this.requestId = facts.requestId;
    this.listener = plan.name;
    this.route = route.name;
    this.#raw = facts.rawHeaders;
    this.#metrics = plan.metrics.byRoute[route.index]!;
    this.#logger = plan.logger;
    this.#path = request.path;
    this.#query = request.query;
    this.#host = request.host;
    this.pool = pool ?? plan.poolOfRoute[route.index];
  }

  // ---- the request view --------------------------------------------------------------

  get path(): string {
    return this.#path;
  }

  get query(): string {
    return this.#query;
  }

  get target(): string {
    return this.#query === '' ? this.#path : `${this.#path}?${this.#query}`;
  }

  get host(): string | undefined {
    return this.#host;
  }

  get signal(): AbortSignal {
    return (this.#abort ??= new AbortController()).signal;
  }

  header(name: string): string | undefined {
    return this.headers.values(this.#raw, name)[0];
  }

  headerValues(name: string): readonly string[] {
    return this.headers.values(this.#raw, name);
  }

  fields(): readonly string[] {
    return this.headers.any ? this.headers.apply(this.#raw) : this.#raw;
  }

  setHeader(name: string, value: string): void {
    this.headers.set(name, value);
  }

  addHeader(name: string, value: string): void {
    this.headers.add(name, value);
  }

  removeHeader(name: string): void {
    this.headers.remove(name);
  }

  setPath(path: string): void {
    if (typeof path !== 'string' || path.charCodeAt(0) !== 0x2f || !isTargetText(path) || path.includes('?') || path.includes('#')) {
      throw new TypeError(`setPath: a path starts with "/" and holds visible ASCII only, without "?" or "#", got ${JSON.stringify(path)}`);
    }
    this.#path = path;
    this.#pathEdited = true;
  }

  setQuery(query: string): void {
    if (typeof query !== 'string' || !isTargetText(query) || query.includes('#')) throw new TypeError(`setQuery: visible ASCII only, without "#", got ${JSON.stringify(query)}`);
    this.#query = query.charCodeAt(0) === 0x3f ? query.slice(1) : query;
    this.#pathEdited = true;
  }

  setHost(host: string): void {
    if (typeof host !== 'string' || !HOST.test(host)) throw new TypeError(`setHost: expected a host name or address with an optional port, got ${JSON.stringify(host)}`);
    this.#host = host;
    this.hostEdited = true;
  }

  /**
   * The request as routing code reads it (hash keys, sticky cookies) after the
   * filters' edits: `request` itself when nothing it exposes changed.
   */
  routeView(request: RouteRequest): RouteRequest {
    if (!this.#pathEdited && !this.hostEdited && !this.headers.any) return request;
    const record = headerRecord(this.headers.apply(this.#raw));
    if (this.#host !== undefined) record['host'] = this.#host;
    return createRouteRequest(this.method, this.target, record);
  }

  // ---- request phase -----------------------------------------------------------------

  /**
   * Runs the request phase. Synchronous filters only: the outcome. A filter
   * returned a promise: a promise of the outcome (bounded by that filter's
   * timeout, ended early by {@link cancel}).
   */
  start(): RequestOutcome | Promise<RequestOutcome> {
    const step = this.#runFrom(0);
    return step === PENDING ? this.#wait() : step;
  }

  /**
   * The request is over: runs the `onEnd` of the filters whose request phase
   * ran, once. The route phase calls it for requests answered or refused
   * there; an exchange calls it when it logs the request it forwarded. One
   * that did not complete (the backend failed, the client left) first aborts
   * `signal`, so a filter that started something for the response (a cache
   * fill others wait on) can give it up at once.
   */
  ended(completed = true): void {
    if (!completed && !this.#cancelled) {
      this.#cancelled = true;
      this.#abort?.abort(new UsherError('USHER_DOWNSTREAM_ABORTED', 'the request ended before its response completed'));
    }
    if (this.#ended || !this.#chain.hasEndPhase) return;
    this.#ended = true;
    const filters = this.#chain.filters;
    for (let i = 0; i < this.#ran; i++) {
      const filter = filters[i]!.filter;
      if (filter.onEnd === undefined) continue;
      try {
        filter.onEnd(this);
      } catch (error) {
        this.#metrics.filterFailed(filter.name);
        this.#logger.error({ err: error, listener: this.listener, route: this.route, filter: filter.name, requestId: this.requestId }, 'filter failed at the end of a request');
      }
    }
  }

  /**
   * The backends failed with `error` before any response byte was sent: a
   * filter's answer to send instead of usher's own error response, run through
   * the response phases of the filters before it; undefined when none answers.
   * A filter that throws here is logged and skipped.
   */
  answerUpstreamError(error: UsherError): LocalAnswer | UsherError | undefined {
    if (!this.#chain.hasErrorPhase) return undefined;
    const filters = this.#chain.filters;
    for (let i = this.#ran - 1; i >= 0; i--) {
      const filter = filters[i]!.filter;
      if (filter.onUpstreamError === undefined) continue;
      let verdict: LocalResponse | undefined;
      try {
        verdict = filter.onUpstreamError(this, error);
      } catch (thrown) {
        this.#metrics.filterFailed(filter.name);
        this.#logger.error({ err: thrown, listener: this.listener, route: this.route, filter: filter.name, requestId: this.requestId }, 'filter failed while answering for failed backends');
        continue;
      }
      if (verdict !== undefined) return this.#decided(i, verdict);
    }
    return undefined;
  }

  /** The client left: abort the filter's signal; the outcome no longer matters. */
  cancel(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#abort?.abort(new UsherError('USHER_DOWNSTREAM_ABORTED', 'client left while a filter was running'));
    this.#stopWaiting?.(CANCELLED);
  }

  #runFrom(from: number): RequestOutcome | typeof PENDING {
    const filters = this.#chain.filters;
    for (let i = from; i < filters.length; i++) {
      this.#ran = i + 1;
      const filter = filters[i]!.filter;
      if (filter.onRequest === undefined) continue;
      let verdict: InternalVerdict | Promise<InternalVerdict>;
      try {
        verdict = filter.onRequest(this);
      } catch (error) {
        return this.#failed(i, error);
      }
      if (verdict === undefined) continue;
      if (typeof (verdict as PromiseLike<InternalVerdict>).then === 'function') {
        this.#pendingIndex = i;
        this.#pending = verdict as PromiseLike<InternalVerdict>;
        return PENDING;
      }
      return this.#decided(i, verdict as InternalVerdict);
    }
    return undefined;
  }

  async #wait(): Promise<RequestOutcome> {
    for (;;) {
      const index = this.#pendingIndex;
      let verdict: InternalVerdict;
      try {
        verdict = await this.#bounded(this.#pending!, index);
      } catch (error) {
        if (error === CANCELLED) return new UsherError('USHER_DOWNSTREAM_ABORTED', 'client left while a filter was running');
        if (error === TIMED_OUT) {
          const ms = this.#chain.filters[index]!.timeoutMs;
          this.#report(index, new Error(`did not settle within ${ms} ms`), 'filter timed out');
          return new UsherError('USHER_FILTER_TIMEOUT', `filter ${this.#name(index)} did not settle within ${ms} ms`);
        }
        return this.#failed(index, error);
      }
      if (this.#cancelled) return new UsherError('USHER_DOWNSTREAM_ABORTED', 'client left while a filter was running');
      if (verdict !== undefined) return this.#decided(index, verdict);
      const step = this.#runFrom(index + 1);
      if (step !== PENDING) return step;
    }
  }

  /** The filter's promise, rejected with TIMED_OUT after its timeout or CANCELLED when the client leaves. */
  #bounded(pending: PromiseLike<InternalVerdict>, index: number): Promise<InternalVerdict> {
    return new Promise<InternalVerdict>((resolve, reject) => {
      const stop = (reason: symbol): void => {
        clearTimeout(timer);
        this.#stopWaiting = undefined;
        if (reason === TIMED_OUT) this.#abort?.abort(new UsherError('USHER_FILTER_TIMEOUT', 'filter timed out'));
        reject(reason);
      };
      const timer = setTimeout(stop, this.#chain.filters[index]!.timeoutMs, TIMED_OUT);
      this.#stopWaiting = stop;
      pending.then(
        (verdict) => {
          clearTimeout(timer);
          this.#stopWaiting = undefined;
          resolve(verdict);
        },
        (error: unknown) => {
          clearTimeout(timer);
          this.#stopWaiting = undefined;
          reject(error);
        },
      );
    });
  }

  /** A filter's verdict other than "continue": an error of usher's own (built-in filters), or a local response. */
  #decided(index: number, verdict: InternalVerdict): LocalAnswer | UsherError {
    if (verdict instanceof UsherError) return verdict;
    let answer: LocalAnswer;
    try {
      answer = localAnswer(verdict as LocalResponse);
    } catch (error) {
      return this.#failed(index, error);
    }
    // The response phases of the filters before this one see the answer, as they would a backend's (Envoy's local reply).
    const local = answer.stream === undefined && answer.body.length > 0 ? { body: answer.body, memo: (verdict as LocalResponse & { [MEMO]?: BodyMemo })[MEMO] } : undefined;
    const head = this.#responsePhase(answer.status, answer.headers, index, local);
    if (head instanceof UsherError) return head;
    if ('replaced' in head) return head.replaced;
    const body = head.body ?? answer.body;
    return head.edits === undefined && body === answer.body ? answer : { status: head.status, headers: head.edits === undefined ? answer.headers : head.edits.apply(answer.headers), body, stream: answer.stream };
  }

  #failed(index: number, error: unknown): UsherError {
    this.#report(index, error, 'filter failed');
    return new UsherError('USHER_FILTER_ERROR', `filter ${this.#name(index)} of route ${this.route} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }

  #report(index: number, error: unknown, message: string): void {
    const name = this.#name(index);
    this.#metrics.filterFailed(name);
    this.#logger.error({ err: error, listener: this.listener, route: this.route, filter: name, requestId: this.requestId }, message);
  }

  #name(index: number): string {
    return this.#chain.filters[index]!.filter.name;
  }

  // ---- response phases ---------------------------------------------------------------

  /**
   * The response-head phase for a backend's HTTP/1.1 response: the head to send
   * (a new object when something changed), or the error to answer instead (a
   * filter threw). Also chooses the body transform ({@link body}).
   */
  filterHead(head: ResponseHead): ResponseHead | UsherError | Replaced {
    this.body = undefined;
    if (!this.#chain.hasResponsePhase) return head;
    const result = this.#responsePhase(head.status, head.rawHeaders, this.#chain.length);
    if (result instanceof UsherError || 'replaced' in result) return result;
    if (result.edits === undefined) return head;
    return { ...head, status: result.status, reason: result.status === head.status ? head.reason : '', rawHeaders: result.edits.apply(head.rawHeaders) };
  }

  /**
   * The response-head phase for an HTTP/2 header list (`[':status', s, name,
   * value, ...]`, lowercase names): the list to send, `:status` first.
   */
  filterFields(status: number, list: string[]): string[] | UsherError | Replaced {
    this.body = undefined;
    if (!this.#chain.hasResponsePhase) return list;
    const fields: string[] = [];
    for (let i = 0; i < list.length; i += 2) if (list[i]!.charCodeAt(0) !== 0x3a) fields.push(list[i]!, list[i + 1]!);
    const result = this.#responsePhase(status, fields, this.#chain.length);
    if (result instanceof UsherError || 'replaced' in result) return result;
    const out = [':status', String(result.status)];
    // The response phase may have chosen a transform (TypeScript cannot see that #responsePhase sets it).
    const body = this.body as BodyTransformer | undefined;
    const dropLength = body !== undefined && !body.observesOnly;
    const edited = result.edits === undefined ? fields : result.edits.apply(fields);
    for (let i = 0; i < edited.length; i += 2) {
      const name = edited[i]!.toLowerCase();
      if (dropLength && name === 'content-length') continue;
      out.push(name, edited[i + 1]!);
    }
    return out;
  }

  /** Runs `onResponse` and then `transformBody` of filters `[0, end)` in reverse order on a response. */
  #responsePhase(status: number, raw: readonly string[], end: number, local?: { readonly body: Buffer; readonly memo: BodyMemo | undefined }): { status: number; edits: HeaderEdits | undefined; body?: Buffer } | UsherError | Replaced {
    let body = local?.body;
    const filters = this.#chain.filters;
    const view = new ResponseView(status, raw);
    let transforms: BodyTransform[] | undefined;
    let names: string[] | undefined;
    for (let i = Math.min(end, this.#ran) - 1; i >= 0; i--) {
      const filter = filters[i]!.filter;
      try {
        filter.onResponse?.(view, this);
        if (view.replacement !== undefined) {
          // A replacement goes through the filters before this one as a local answer from it would.
          this.body = undefined;
          const answer = this.#decided(i, view.replacement);
          return answer instanceof UsherError ? answer : { replaced: answer };
        }
        // Local answers (end < length) carry a filter's own body: only built-in whole-body transforms apply.
        const transform = end === this.#chain.length ? filter.transformBody?.(view, this) : undefined;
        if (body !== undefined && filter.transformLocal !== undefined) body = filter.transformLocal(view, this, body, local!.memo) ?? body;
        if (transform !== undefined) {
          (transforms ??= []).push(transform);
          (names ??= []).push(filter.name);
        }
      } catch (error) {
        return this.#failed(i, error);
      }
    }
    if (transforms !== undefined) this.body = new BodyTransformer(transforms, names!, this);
    return { status: view.status, edits: view.edited ? view.edits : undefined, ...(body === local?.body ? {} : { body }) };
  }

  /** A body transform threw: logged and counted under its filter's name, as a request-phase throw is. */
  bodyFailed(filter: string, error: unknown): UsherError {
    this.#metrics.filterFailed(filter);
    this.#logger.error({ err: error, listener: this.listener, route: this.route, filter, requestId: this.requestId }, 'filter failed');
    return new UsherError('USHER_FILTER_ERROR', `the body transform of filter ${filter} of route ${this.route} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** The response a filter edits in the response-head phase. */
export class ResponseView implements FilterResponse {
  status: number;
  readonly edits = new HeaderEdits('response');
  edited = false;
  /** Set by {@link replace}. */
  replacement: LocalResponse | undefined;
  readonly #raw: readonly string[];
  readonly #original: number;

  constructor(status: number, raw: readonly string[]) {
    this.status = status;
    this.#original = status;
    this.#raw = raw;
  }

  setStatus(status: number): void {
    if (!carriesBody(status) || !carriesBody(this.#original)) {
      throw new TypeError(`setStatus: only between statuses that carry a body (200-599 but 204 and 304), from ${this.#original} to ${status}`);
    }
    this.status = status;
    this.edited = true;
  }

  header(name: string): string | undefined {
    return this.edits.values(this.#raw, name)[0];
  }

  headerValues(name: string): readonly string[] {
    return this.edits.values(this.#raw, name);
  }

  fields(): readonly string[] {
    return this.edited ? this.edits.apply(this.#raw) : this.#raw;
  }

  setHeader(name: string, value: string): void {
    this.edits.set(name, value);
    this.edited = true;
  }

  addHeader(name: string, value: string): void {
    this.edits.add(name, value);
    this.edited = true;
  }

  removeHeader(name: string): void {
    this.edits.remove(name);
    this.edited = true;
  }

  replace(response: LocalResponse): void {
    localAnswer(response); // throws now, in the filter that asked, if usher could not send it
    this.replacement = response;
  }
}

/**
 * Marks local answers built-in filters made from fields usher already checked (a
 * cache hit replays a stored response's fields): they skip the per-field
 * checks of {@link localAnswer}, which cost a tenth of a small cache hit.
 */
const PRECHECKED = Symbol('usher.prechecked');

/** Marks `response` as made of checked fields (built-in filters only; see {@link PRECHECKED}): a symbol brand, cheaper per hit than a WeakSet. */
export function precheckedAnswer<T extends LocalResponse>(response: T): T {
  (response as T & { [PRECHECKED]?: true })[PRECHECKED] = true;
  return response;
}

const STREAMED = Symbol('usher.streamed');
const MEMO = Symbol('usher.memo');

/** A local answer whose body is a stored object's: whole-body transforms of earlier filters keep their results in `memo` (built-in filters only). */
export function memoizedAnswer<T extends LocalResponse>(response: T, memo: BodyMemo): T {
  (response as T & { [MEMO]?: BodyMemo })[MEMO] = memo;
  return response;
}

/** A prechecked answer (see {@link precheckedAnswer}) whose body is `body`, still arriving: built-in filters only (a cache's waiters). */
export function streamedAnswer<T extends LocalResponse>(response: T, body: StreamedBody): T {
  (response as T & { [STREAMED]?: StreamedBody })[STREAMED] = body;
  return response;
}

/** A filter's {@link LocalResponse}, checked: throws TypeError on a status, header or body usher cannot send. */
function localAnswer(response: LocalResponse): LocalAnswer {
  if ((response as LocalResponse & { [PRECHECKED]?: true })[PRECHECKED] === true) {
    const headers: string[] = [];
    for (const [name, value] of Object.entries(response.headers ?? {})) for (const one of typeof value === 'string' ? [value] : value) headers.push(name, one);
    const stream = (response as LocalResponse & { [STREAMED]?: StreamedBody })[STREAMED];
    if (stream !== undefined) return { status: response.status, headers, body: EMPTY_BODY, stream };
    const given = response.body;
    const body = given === undefined ? EMPTY_BODY : typeof given === 'string' ? Buffer.from(given, 'utf8') : Buffer.from(given.buffer, given.byteOffset, given.byteLength);
    return { status: response.status, headers, body };
  }
  if (typeof response !== 'object' || response === null) throw new TypeError(`a request filter returns undefined or { status, headers?, body? }, got ${typeof response}`);
  const status = response.status;
  if (!Number.isInteger(status) || status < 200 || status > 599) throw new TypeError(`a local response status is an integer in [200, 599], got ${String(status)}`);
  const headers: string[] = [];
  for (const [name, value] of Object.entries(response.headers ?? {})) {
    const problem = headerNameProblem(name, 'response');
    if (problem !== undefined) throw new TypeError(problem);
    for (const one of typeof value === 'string' ? [value] : value) {
      const bad = headerValueProblem(one);
      if (bad !== undefined) throw new TypeError(`${name}: ${bad}`);
      headers.push(name, one);
    }
  }
  const given = response.body;
  const body = given === undefined ? EMPTY_BODY : typeof given === 'string' ? Buffer.from(given, 'utf8') : Buffer.from(given.buffer, given.byteOffset, given.byteLength);
  if (body.length > 0 && !carriesBody(status)) throw new TypeError(`a ${status} response has no body`);
  return { status, headers, body };
}
