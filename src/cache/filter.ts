/**
 * The `cache` filter: a shared HTTP cache (RFC 9111) on a route, over a
 * {@link ResponseCache} (the thread's store, collapsed fills, and keys known
 * to be uncacheable). The policy is the pure modules of this folder; this
 * file maps them onto the filter phases:
 *
 * - **request**: a GET or HEAD looks its key up. A fresh (or allowed-stale)
 *   variant is answered locally, with `Age`, the client's preconditions
 *   (304/412) and `Range` (206/416) evaluated against it. A stale one is
 *   revalidated: the stored validators go upstream instead of the client's.
 *   A miss on a key another request is filling waits for that fill (up to
 *   `lockTimeout`), then looks again. Unsafe methods are remembered for
 *   invalidation.
 * - **response head**: a 304 to a revalidation freshens the stored variants
 *   (§4.3.4) and is replaced by the stored response; a storable, shareable
 *   response is captured; a successful unsafe method invalidates its URI,
 *   `Location` and `Content-Location` (§4.4). `Surrogate-Key`/`Cache-Tag` are
 *   removed and `Cache-Status` (RFC 9211) is added.
 * - **response body**: an observing transform copies the body (up to
 *   `maxObjectSize`) and stores it when it ends; the client's bytes and
 *   Content-Length are untouched.
 */
import type { BodyTransform, Filter, FilterRequest, FilterResponse, LocalResponse } from '../filter/filter.ts';
import { hopByHop } from '../proxy/headers.ts';
import { memoizedAnswer, precheckedAnswer, streamedAnswer } from '../filter/run.ts';
import type { OutlivingTransform } from '../filter/body.ts';
import { evaluatePreconditions, hasOriginPreconditions, ifRangeAllowsRange, revalidationFields, selectForUpdate } from './conditional.ts';
import { requestDirectives, responsePolicy, type CacheDirectives, type ResponsePolicy } from './directives.ts';
import { fieldLines, type Fields } from './fields.ts';
import { currentAge, forbidsStale, freshness, mayServeStaleOnError, reuseDecision, type TimedResponse } from './freshness.ts';
import { primaryKey, type KeyOptions } from './key.ts';
import { buildPartial, parseRange, resolveRanges } from './range.ts';
import type { ResponseCache } from './response-cache.ts';
import type { Fill, FillBody } from './fill.ts';
import type { FillTicket } from './fill-locks.ts';
import { appendCacheStatus, cacheStatus, type CacheStatus } from './status.ts';
import { shareability, storability, stripFields } from './storable.ts';
import type { StoredVariant } from './store.ts';
import type { PoolRuntime } from '../pool/pool-runtime.ts';
import type { StaleIfErrorWindows } from '../config/types.ts';
import type { UsherError } from '../errors.ts';
import type { BodyMemo, InternalFilter } from '../filter/chain.ts';
import { revalidateInBackground, varyHeaders } from './background.ts';
import { freshen } from './update.ts';
import { varyNames } from './vary.ts';

/** Options of one route's `cache` filter (config: `filters: [ { cache: {...} } ]`). */
export interface CacheFilterOptions {
  /** Longest a request waits for another request's fill of the same key before it goes upstream itself. */
  readonly lockTimeoutMs: number;
  /** What besides scheme, host, path and query goes into the key. */
  readonly key: KeyOptions;
  /** Targeted cache-control fields honoured before Cache-Control, in order (RFC 9213). */
  readonly targets: readonly string[];
  /** The name in `Cache-Status`. */
  readonly name: string;
  /** Seconds a stale response may be served when the backends fail, per error class, besides what `stale-if-error` allows; 0: only the header. */
  readonly staleIfErrorS: StaleIfErrorWindows;
}

/** Methods that never change a resource, so they invalidate nothing (RFC 9110 §9.2.1). */
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);
/** Fields a local answer may not carry (usher frames it) or that only concern one hop or the cache itself. */
const NOT_REPLAYED = new Set([...hopByHop, 'content-length', 'x-request-id', 'surrogate-key', 'cache-tag', 'surrogate-control']);
/** Fields a 304 carries from the response it stands for (RFC 9110 §15.4.5). */
const IN_304 = ['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified'];
/** Client validators that usher answers itself on a miss, so the origin's full response can be stored. */
const CLIENT_VALIDATORS = ['if-none-match', 'if-modified-since'];

/** What the request phase decided, carried to the response phases. */
type Pending =
  | { readonly kind: 'unsafe'; readonly key: string; readonly authority: string; readonly scheme: string }
  | {
      readonly kind: 'fill';
      readonly key: string;
      readonly fields: Fields;
      readonly requestTime: number;
      /** The fill other requests wait on, when this request owns it. */
      readonly fill: Fill | undefined;
      /** The client's own validators, removed from the upstream request and evaluated here. */
      readonly clientValidators: boolean;
      readonly fwd: 'uri-miss' | 'vary-miss' | 'request' | 'stale';
      readonly collapsed: boolean;
      /** Set by a revalidation: the variants its 304 may update, and the one whose validators were sent. */
      readonly variants?: readonly StoredVariant[];
      readonly selected?: StoredVariant;
    };

/** Per-request capture of a body to store. */
interface Capture {
  readonly key: string;
  readonly fields: Fields;
  readonly response: TimedResponse;
  readonly vary: readonly string[];
  readonly fill: Fill | undefined;
  /** The response's Content-Length, when it had one. */
  readonly length: number | undefined;
}

/** The stored fields a hit sends again (not Age or Cache-Status, which each hit sets), made once per stored response. */
function replayed(stored: TimedResponse): Readonly<Record<string, string[]>> {
  let headers = replayedFields.get(stored);
  if (headers === undefined) {
    headers = {};
    for (const [name, lines] of Object.entries(stored.fields)) {
      if (lines === undefined || NOT_REPLAYED.has(name) || name === 'age' || name === 'cache-status') continue;
      headers[name] = [...lines];
    }
    replayedFields.set(stored, headers);
  }
  return headers;
}

const replayedFields = new WeakMap<TimedResponse, Record<string, string[]>>();

/** Lower-case name → field lines, from a flat `[name, value, ...]` list. */
export function fieldsOf(flat: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    (out[name] ??= []).push(flat[i + 1]!);
  }
  return out;
}

/** A response's end-to-end fields: without hop-by-hop ones and those its Connection names (RFC 9111 §3.1). */
function endToEnd(fields: Record<string, string[]>): Record<string, string[]> {
  const listed = (fields['connection'] ?? []).flatMap((line) => line.split(',')).map((name) => name.trim().toLowerCase());
  const out: Record<string, string[]> = {};
  for (const [name, lines] of Object.entries(fields)) if (!hopByHop.has(name) && !listed.includes(name)) out[name] = lines;
  return out;
}

/** Builds the `cache` filter of one route. `now` is the clock (ms since the epoch). */
export function cacheFilter(cache: ResponseCache, options: CacheFilterOptions, now: () => number = Date.now): InternalFilter {
  const pending = new WeakMap<FilterRequest, Pending>();
  const captures = new WeakMap<FilterRequest, Capture>();
  /** Requests whose body fills a key others wait on, until the request is over. */
  const filling = new WeakMap<FilterRequest, Fill>();
  const status = (s: CacheStatus): string => cacheStatus(options.name, s);

  /** A local answer from a stored variant for `request`: preconditions, Range and HEAD applied. */
  function answer(request: FilterRequest, fields: Fields, variant: StoredVariant, policy: ResponsePolicy, at: number, member: CacheStatus): LocalResponse {
    const stored = variant.response;
    const headers: Record<string, string[]> = { ...replayed(stored) };
    headers['age'] = [String(Math.floor(currentAge(stored, at)))];
    const ttl = freshness(stored, policy, at).ttl;
    headers['cache-status'] = [appendCacheStatus(fieldLines(stored.fields, 'cache-status'), status({ ...member, ttl }))];
    const precondition = evaluatePreconditions(request.method, fields, { fields: stored.fields, responseTime: stored.responseTime });
    if (precondition === 304) {
      const kept: Record<string, string[]> = {};
      for (const name of [...IN_304, 'age', 'cache-status']) if (headers[name] !== undefined) kept[name] = headers[name];
      return { status: 304, headers: kept };
    }
    if (precondition === 412) return { status: 412, headers: { 'cache-status': headers['cache-status'] } };
    const range = fieldLines(fields, 'range')[0];
    if (range !== undefined && request.method === 'GET' && stored.status === 200 && ifRangeAllowsRange(fields, stored.fields)) {
      const decision = resolveRanges(parseRange(range), variant.body.length);
      if (decision.kind === 'unsatisfiable') {
        return { status: 416, headers: { 'content-range': decision.contentRange, 'cache-status': headers['cache-status'] } };
      }
      if (decision.kind === 'partial') {
        const partial = buildPartial(variant.body, decision.ranges, fieldLines(stored.fields, 'content-type')[0], `usher-${variant.body.length.toString(36)}-${Math.floor(at).toString(36)}`);
        for (const [name, value] of Object.entries(partial.fields)) headers[name] = [value];
        return { status: 206, headers, body: Buffer.concat(partial.chunks as Buffer[], partial.length) };
      }
    }
    return memoizedAnswer(precheckedAnswer({ status: stored.status, headers, body: variant.body }), codedMemo(cache, variant));
  }

  /** A waiter's answer from a fill still under way: the response's fields, and its body as it arrives. */
  function fromFill(stored: TimedResponse, body: FillBody): LocalResponse {
    cache.counters.hits++;
    const at = now();
    const headers: Record<string, string[]> = { ...replayed(stored) };
    headers['age'] = [String(Math.floor(currentAge(stored, at)))];
    const ttl = freshness(stored, responsePolicy(stored.fields, options.targets), at).ttl;
    headers['cache-status'] = [appendCacheStatus(fieldLines(stored.fields, 'cache-status'), status({ hit: true, collapsed: true, ttl, detail: 'streamed' }))];
    return streamedAnswer(precheckedAnswer({ status: stored.status, headers }), body);
  }

  /** The request phase once the key is known: answer, or continue upstream with what the response phases need. */
  function decide(request: FilterRequest, key: string, fields: Fields, collapsed: boolean, waitedElsewhere = false): LocalResponse | undefined | Promise<LocalResponse | undefined> {
    const at = now();
    const directives = requestDirectives(fields);
    const noCachePragma = directives.noCache === undefined && fieldLines(fields, 'cache-control').length === 0 && fieldLines(fields, 'pragma').some((p) => /(^|,)\s*no-cache\s*(,|$)/i.test(p));
    const lookup = cache.store.lookup(key, fields);
    if (lookup.kind === 'hit') {
      const variant = lookup.variant;
      const policy = responsePolicy(variant.response.fields, options.targets);
      const reuse = noCachePragma
        ? ({ kind: 'revalidate', reason: 'request-no-cache' } as const)
        : reuseDecision(variant.response, policy, directives, at, { invalidated: variant.invalidated });
      if (reuse.kind !== 'revalidate') {
        cache.counters.hits++;
        if (reuse.kind === 'stale-while-revalidate') refreshInBackground(request, key, variant, lookup.variants);
        return answer(request, fields, variant, policy, at, reuse.kind === 'fresh' ? { hit: true, collapsed } : { fwd: 'stale', hit: false, detail: reuse.kind });
      }
      if (directives.onlyIfCached) return { status: 504, headers: { 'cache-status': status({ fwd: 'request', detail: 'only-if-cached' }) } };
      // Health-aware stale-if-error: no backend is available, so do not wait for the 503.
      if ((request as { readonly pool?: PoolRuntime }).pool?.mode === 'none' && staleOnError(variant, policy, directives, at, 'connect')) {
        cache.counters.hits++;
        return answer(request, fields, variant, policy, at, { fwd: 'stale', detail: 'no-backend' });
      }
      const validators = revalidationFields(variant.response.fields, lookup.variants.map((v) => v.response.fields));
      if (!hasOriginPreconditions(fields) && Object.keys(validators).length > 0) {
        for (const name of CLIENT_VALIDATORS) request.removeHeader(name);
        for (const [name, lines] of Object.entries(validators)) request.setHeader(name, lines.join(', '));
        cache.counters.revalidations++;
        announceCapability(request);
        pending.set(request, { kind: 'fill', key, fields, requestTime: at, fill: undefined, clientValidators: hasClientValidators(fields), fwd: 'stale', collapsed, variants: lookup.variants, selected: variant });
        return undefined;
      }
    } else if (directives.onlyIfCached) {
      return { status: 504, headers: { 'cache-status': status({ fwd: 'uri-miss', detail: 'only-if-cached' }) } };
    }
    // Another thread is filling this key: wait for it (bounded), then look again; the store is the process's.
    let ticket: FillTicket | undefined;
    if (request.method === 'GET' && !waitedElsewhere && cache.fillOf(key, at, options.lockTimeoutMs) === undefined) {
      const lock = cache.fillLocks?.acquire(key, options.lockTimeoutMs) ?? 'none';
      if (lock === 'busy') {
        cache.counters.collapsed++;
        return cache.fillLocks!.released(key, options.lockTimeoutMs).then(() => decide(request, key, fields, true, true));
      }
      if (lock !== 'none') ticket = lock;
    }
    cache.counters.misses++;
    const fwd = lookup.kind === 'hit' ? 'stale' : lookup.kind === 'vary-miss' ? 'vary-miss' : directives.noCache !== undefined || noCachePragma ? 'request' : 'uri-miss';
    const clientValidators = hasClientValidators(fields) && !hasOriginPreconditions(fields);
    if (clientValidators) for (const name of CLIENT_VALIDATORS) request.removeHeader(name);
    const fill = request.method === 'GET' && cache.fillOf(key, at, options.lockTimeoutMs) === undefined ? cache.beginFill(key, at, ticket) : undefined;
    // A fill whose request fails or loses its client releases its waiters at once (one of them fills instead).
    if (fill !== undefined) request.signal.addEventListener('abort', () => fill.fail(), { once: true });
    announceCapability(request);
    pending.set(request, { kind: 'fill', key, fields, requestTime: at, fill, clientValidators, fwd, collapsed });
    return undefined;
  }

  /** Whether `variant` may be served stale because the backends failed (`failure`): its `stale-if-error`, the request's, or the filter's `staleIfError` for that class. */
  function staleOnError(variant: StoredVariant, policy: ResponsePolicy, directives: CacheDirectives, at: number, failure: keyof StaleIfErrorWindows): boolean {
    if (mayServeStaleOnError(variant.response, policy, directives, at)) return true;
    const window = options.staleIfErrorS[failure];
    if (window <= 0 || forbidsStale(policy.directives)) return false;
    return -freshness(variant.response, policy, at).ttl <= window;
  }

  /** The stale variant a failed revalidation may serve instead of the failure, as a local answer; undefined when none may. */
  function staleForFailure(request: FilterRequest, state: Extract<Pending, { kind: 'fill' }>, at: number, failure: keyof StaleIfErrorWindows, fwdStatus: number): LocalResponse | undefined {
    const stale = state.variants?.[0];
    if (stale === undefined) return undefined;
    const policy = responsePolicy(stale.response.fields, options.targets);
    if (!staleOnError(stale, policy, requestDirectives(state.fields), at, failure)) return undefined;
    cache.counters.staleOnError++;
    return answer(request, state.fields, stale, policy, at, { fwd: 'stale', fwdStatus, detail: 'stale-if-error' });
  }

  /** One background revalidation per key at a time (background.ts); what it brings back updates the store. */
  function refreshInBackground(request: FilterRequest, key: string, variant: StoredVariant, variants: readonly StoredVariant[]): void {
    const pool = (request as { readonly pool?: PoolRuntime }).pool;
    if (pool === undefined || cache.refreshing.has(key)) return;
    const validators = revalidationFields(variant.response.fields, variants.map((v) => v.response.fields));
    const headers: Record<string, string> = { ...varyHeaders(variant.requestFields) };
    for (const [name, lines] of Object.entries(validators)) headers[name] = lines.join(', ');
    cache.refreshing.add(key);
    cache.counters.backgroundRevalidations++;
    void revalidateInBackground({ pool, target: request.target, host: request.host ?? '', headers, maxBytes: cache.store.maxObjectSize, now })
      .then((result) => {
        if (result === undefined) return;
        if (result.status === 304) {
          revalidated(cache, variants, variant, endToEnd(result.fields), result.requestTime, result.responseTime);
          return;
        }
        if (!('body' in result)) return;
        const fields = endToEnd(result.fields);
        const policy = responsePolicy(fields, options.targets);
        const storable = storability({ method: 'GET', fields: variant.requestFields }, { status: result.status, fields }, policy);
        const vary = varyNames(fields);
        if (!storable.storable || !shareability({ status: result.status, fields }).shareable || vary === '*') return;
        cache.store.put(key, { vary, requestFields: variant.requestFields, response: { status: result.status, fields: stripFields(fields, storable.stripFields), requestTime: result.requestTime, responseTime: result.responseTime }, body: result.body });
        cache.counters.stores++;
      })
      .finally(() => cache.refreshing.delete(key));
  }

  return {
    name: 'cache',

    onRequest(request) {
      const method = request.method;
      const scheme = request.scheme;
      const authority = request.host ?? '';
      if (method !== 'GET' && method !== 'HEAD') {
        if (!SAFE.has(method)) pending.set(request, { kind: 'unsafe', key: primaryKey({ scheme, authority, target: request.target, method: 'GET', fields: {} }), authority, scheme });
        return undefined;
      }
      const fields = fieldsOf(request.fields());
      const key = keyOf(scheme, authority, request.target, fields);
      const at = now();
      const fill = method === 'GET' ? cache.fillOf(key, at, options.lockTimeoutMs) : undefined;
      if (fill === undefined || cache.isUncacheable(key, at)) return decide(request, key, fields, false);
      // Another request is filling this key: wait for it (bounded), then look again. When that fill
      // failed, one waiter has started the next by then: wait for that one too, within the same bound.
      cache.counters.collapsed++;
      const deadline = at + options.lockTimeoutMs;
      const streams = streamable(fields);
      const waited = streams ? fill.ready(options.lockTimeoutMs) : fill.settled(options.lockTimeoutMs);
      return waited.then(() => {
        const head = streams ? fill.head : undefined;
        if (head !== undefined && !head.body.complete) return fromFill(head.response, head.body);
        const next = cache.fillOf(key, now(), options.lockTimeoutMs);
        const left = deadline - now();
        if (next === undefined || next === fill || left <= 0) return decide(request, key, fields, true);
        return next.settled(left).then(() => decide(request, key, fields, true));
      });
    },

    onResponse(response, request) {
      const state = pending.get(request);
      // Read before the cache's own fields are removed: Surrogate-Key and Cache-Tag are stored, for purges by tag.
      const fields = state?.kind === 'fill' ? endToEnd(fieldsOf(response.fields())) : {};
      response.removeHeader('surrogate-key');
      response.removeHeader('cache-tag');
      response.removeHeader('surrogate-control'); // addressed to this cache (Edge Architecture 1.0), not to the client
      if (state === undefined) return;
      pending.delete(request);
      if (state.kind === 'unsafe') {
        if (response.status < 400) invalidate(cache, state, response);
        return;
      }
      const at = now();
      if (state.variants !== undefined && response.status === 304) {
        const updated = revalidated(cache, state.variants, state.selected, fields, state.requestTime, at);
        if (updated !== undefined) {
          const policy = responsePolicy(updated.response.fields, options.targets);
          response.replace(answer(request, state.fields, updated, policy, at, { fwd: 'stale', fwdStatus: 304 }));
          state.fill?.settle();
          return;
        }
      }
      if (response.status >= 500) {
        const stale = staleForFailure(request, state, at, 'status5xx', response.status);
        if (stale !== undefined) {
          response.replace(stale);
          return;
        }
      }
      const policy = responsePolicy(fields, options.targets);
      const storable = request.method === 'GET' ? storability({ method: 'GET', fields: state.fields }, { status: response.status, fields }, policy) : ({ storable: false, reason: 'method' } as const);
      const shareable = shareability({ status: response.status, fields });
      const vary = varyNames(fields);
      const length = Number(fieldLines(fields, 'content-length')[0] ?? '0');
      let stored = false;
      if (storable.storable && shareable.shareable && vary !== '*' && !(length > cache.store.maxObjectSize)) {
        const kept = stripFields(fields, storable.stripFields);
        const declared = fieldLines(fields, 'content-length')[0];
        captures.set(request, { key: state.key, fields: state.fields, response: { status: response.status, fields: kept, requestTime: state.requestTime, responseTime: at }, vary, fill: state.fill, length: declared === undefined || request.method !== 'GET' ? undefined : length });
        stored = true;
      } else {
        // Others waiting on this key go upstream themselves, and so do later requests for a while.
        cache.markUncacheable(state.key, at);
        state.fill?.settle();
      }
      // A new representation replaces the stale ones; a 5xx is a failure, not a representation: the stale ones stay
      // for stale-if-error (RFC 9111 §4.3.3).
      if (state.variants !== undefined && !stored && response.status !== 304 && response.status < 500) for (const old of state.variants) cache.store.delete(old);
      const detail = storable.storable ? (shareable.shareable ? undefined : shareable.reason) : storable.reason;
      response.setHeader('cache-status', appendCacheStatus(response.headerValues('cache-status'), status({ fwd: state.fwd, fwdStatus: response.status, stored, collapsed: state.collapsed, ...(detail === undefined ? {} : { detail }) })));
      // A client's validators were held back so the full response could be stored: it gets that response,
      // a valid answer to a conditional request (RFC 9110 §13.2.1); a 304 would have needed the body discarded unread.
      if (state.clientValidators && !stored && response.status === 200) {
        const precondition = evaluatePreconditions(request.method, state.fields, { fields, responseTime: at });
        if (precondition === 304) {
          const kept: Record<string, string[]> = {};
          for (const name of IN_304) if (fields[name] !== undefined) kept[name] = fields[name];
          kept['cache-status'] = response.headerValues('cache-status').slice();
          response.replace({ status: 304, headers: kept });
        }
      }
    },

    onUpstreamError(request, error) {
      const state = pending.get(request);
      if (state?.kind !== 'fill') return undefined;
      const stale = staleForFailure(request, state, now(), failureClass(error), error.httpStatus);
      if (stale === undefined) return undefined;
      pending.delete(request);
      state.fill?.settle();
      return stale;
    },

    transformBody(_response, request) {
      const capture = captures.get(request);
      if (capture === undefined) return undefined;
      captures.delete(request);
      // Waiters are answered from the body as it arrives when its length is known (and so is known to fit).
      const published = capture.fill !== undefined && capture.length !== undefined ? capture.fill.publish(capture.response, capture.length) : undefined;
      if (capture.fill !== undefined) filling.set(request, capture.fill);
      return bodyCapture(cache, capture, published);
    },

    onEnd(request) {
      // Whatever became of the response (stored, failed, replaced by an earlier filter), its waiters are not left hanging.
      const fill = filling.get(request);
      if (fill === undefined) return;
      filling.delete(request);
      fill.fail();
    },
  };

  function keyOf(scheme: string, authority: string, target: string, fields: Fields): string {
    return primaryKey({ scheme, authority, target, method: 'GET', fields }, options.key);
  }
}

/** The `staleIfError` class of a failure usher detected itself: a response timeout, a broken response (counted with 5xx), or no backend reached. */
function failureClass(error: UsherError): keyof StaleIfErrorWindows {
  if (error.code === 'USHER_UPSTREAM_RESPONSE_TIMEOUT') return 'timeout';
  if (error.code === 'USHER_UPSTREAM_RESET' || error.code === 'USHER_UPSTREAM_BAD_RESPONSE') return 'status5xx';
  return 'connect';
}

/**
 * Where a filter before the cache keeps what it made of `variant`'s body (a
 * `compress` filter's coded bodies): in the store itself, under a key below
 * the variant's (`<key>\n~<what> <when stored> <vary values>`), so the coded
 * bodies count against `maxSize`, are evicted like any entry, and go with the
 * variant's purges (by key, prefix or tag: they carry its fields). An entry of
 * an older version of the variant is never found: the key names its
 * response time.
 */
function codedMemo(cache: ResponseCache, variant: StoredVariant): BodyMemo {
  return new CodedMemo(cache, variant);
}

/** {@link codedMemo}'s memo: made per hit, so its key is built only if a filter asks (most routes have no compress before the cache). */
class CodedMemo implements BodyMemo {
  readonly #cache: ResponseCache;
  readonly #variant: StoredVariant;
  #base: string | undefined;

  constructor(cache: ResponseCache, variant: StoredVariant) {
    this.#cache = cache;
    this.#variant = variant;
  }

  get id(): string {
    const variant = this.#variant;
    return (this.#base ??= `${variant.primaryKey}\n~${variant.response.responseTime} ${JSON.stringify(variant.requestFields)}`);
  }

  get(key: string): Buffer | undefined {
    const found = this.#cache.store.lookup(`${this.id} ${key}`, {});
    return found.kind === 'hit' && !found.variant.invalidated && !this.#variant.invalidated ? found.variant.body : undefined;
  }

  set(key: string, body: Buffer): void {
    this.#cache.store.put(`${this.id} ${key}`, { vary: [], requestFields: {}, response: this.#variant.response, body });
  }
}

/**
 * Tells the origin that a surrogate named `usher` caches (Edge Architecture
 * 1.0 `Surrogate-Capability`, as Fastly and Akamai send it), so it can
 * address `Surrogate-Control` directives to it (`max-age=60;usher`). Appended
 * to what an upstream surrogate already announced.
 */
function announceCapability(request: FilterRequest): void {
  request.addHeader('surrogate-capability', SURROGATE_CAPABILITY);
}

const SURROGATE_CAPABILITY = 'usher="Surrogate/1.0"';

/** Whether a waiter may be answered from a fill's body as it arrives: a plain GET (no Range or preconditions to evaluate against the whole response, no request directives to weigh). */
function streamable(fields: Fields): boolean {
  for (const name of ['range', 'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since', 'cache-control', 'pragma']) if (fieldLines(fields, name).length > 0) return false;
  return true;
}

function hasClientValidators(fields: Fields): boolean {
  return CLIENT_VALIDATORS.some((name) => fieldLines(fields, name).length > 0);
}

/**
 * Stores the body as it passes; gives up (and stores nothing) past
 * `maxObjectSize`. With `published`, waiters read the same chunks as they come,
 * and the capture asks its exchange to finish the body for them if its own
 * client leaves.
 */
function bodyCapture(cache: ResponseCache, capture: Capture, published: FillBody | undefined): BodyTransform & OutlivingTransform {
  const chunks: Buffer[] = published?.chunks ?? [];
  let bytes = 0;
  let abandoned = false;
  return {
    observesOnly: true,
    outlivesClient: () => capture.fill?.outlivesClient === true,
    transform(chunk) {
      if (abandoned) return chunk;
      bytes += chunk.length;
      if (bytes > cache.store.maxObjectSize) {
        abandoned = true;
        cache.markUncacheable(capture.key, capture.response.responseTime);
        capture.fill?.fail();
        chunks.length = 0;
      } else {
        const kept = Buffer.from(chunk); // the read buffer may be reused once this chunk leaves
        if (published !== undefined) published.push(kept);
        else chunks.push(kept);
      }
      return chunk;
    },
    flush() {
      if (abandoned) return undefined;
      cache.store.put(capture.key, { vary: capture.vary as string[], requestFields: capture.fields, response: capture.response, body: Buffer.concat(chunks, bytes) });
      cache.counters.stores++;
      published?.finish();
      capture.fill?.settle();
      return undefined;
    },
  };
}

/**
 * A 304 answered a revalidation: freshen the variants it refers to (§4.3.4);
 * the one to serve, if any. A 304 that selects none by its validators (it
 * has none, or new ones) still answers the request usher made with the
 * validators of `selected`, so it freshens that one.
 */
function revalidated(cache: ResponseCache, variants: readonly StoredVariant[], selected: StoredVariant | undefined, fields: Fields, requestTime: number, responseTime: number): StoredVariant | undefined {
  let chosen = selectForUpdate(variants.map((v) => ({ fields: v.response.fields, responseTime: v.response.responseTime })), fields);
  // None matched by validator: the 304 still answered the conditional request usher made for `selected`.
  if (chosen.length === 0 && selected !== undefined && variants.includes(selected)) chosen = [variants.indexOf(selected)];
  let served: StoredVariant | undefined;
  for (const index of chosen) {
    const variant = variants[index]!;
    cache.store.update(variant, freshen(variant.response, { fields, requestTime, responseTime }));
    served ??= variant;
  }
  if (served !== undefined) cache.counters.revalidated304++;
  return served;
}

/** A successful unsafe request invalidates its target, and its Location and Content-Location on the same host (§4.4). */
function invalidate(cache: ResponseCache, state: { readonly key: string; readonly authority: string; readonly scheme: string }, response: FilterResponse): void {
  cache.purgeTarget(state.key);
  for (const name of ['location', 'content-location']) {
    const value = response.header(name);
    if (value === undefined) continue;
    let url: URL;
    try {
      url = new URL(value, `${state.scheme}://${state.authority}/`);
    } catch {
      continue;
    }
    if (url.host.toLowerCase() !== state.authority.toLowerCase()) continue;
    cache.purgeTarget(primaryKey({ scheme: state.scheme, authority: state.authority, target: `${url.pathname}${url.search}`, method: 'GET', fields: {} }));
  }
  cache.counters.invalidations++;
}
