/**
 * The `compress` filter: codes response bodies with zstd, br or gzip as the
 * client's Accept-Encoding allows, chunk by chunk (synchronous encoders,
 * `codec.ts`). The policy is the pure modules of this folder; this file maps
 * them onto the filter phases:
 *
 * - **request**: coding suffixes usher added to ETags are removed from
 *   `If-None-Match` and `If-Match` (`validators.ts`), and what was removed is
 *   remembered so a 304 gives the client its own tag back.
 * - **response head**: eligibility (`eligible.ts`), negotiation
 *   (`negotiate.ts`) and the CPU guard (`guard.ts`) decide; `Vary:
 *   Accept-Encoding` goes on every response whose resource could be coded,
 *   coded or not.
 * - **response body**: a coded response gets Content-Encoding, a suffixed
 *   strong ETag, no Accept-Ranges and no digest fields (set in this phase:
 *   local answers of later filters skip it and stay identity), and an
 *   encoder; streams (no
 *   Content-Length) and server-sent events are flushed after each upstream
 *   chunk so nothing is held back, other bodies are coded with no flush until
 *   they end (better ratio, fewer bytes).
 */
import type { BodyTransform, FilterRequest, FilterResponse } from '../filter/filter.ts';
import type { BodyMemo, InternalFilter } from '../filter/chain.ts';
import { ASYNC_CODING_BYTES, codeOnThreadPool, codingAvailable, Decoder, Encoder, type Coding } from './codec.ts';
import { eligibility, TypeList, type SkipReason } from './eligible.ts';
import { threadGuard, type CompressGuard } from './guard.ts';
import { negotiate } from './negotiate.ts';
import { compressCounters, type CompressCounters } from './report.ts';
import { strongOpaque, suffixETag, unsuffixTags } from './validators.ts';

/** Options of one route's `compress` filter (config: `filters: [ { compress: {...} } ]`). */
export interface CompressFilterOptions {
  /** Codings offered, in order of preference on qvalue ties. */
  readonly codings: readonly Coding[];
  /** The level (brotli: quality) of each coding. */
  readonly levels: Readonly<Record<Coding, number>>;
  /** Responses with a smaller Content-Length are sent uncoded. */
  readonly minSize: number;
  /** Media-type allow-list (`eligible.ts` patterns). */
  readonly types: readonly string[];
  /** The CPU guard (default on): off, compression keeps its levels however busy the thread is. */
  readonly guard?: boolean;
}

/** The guard of a route that turned it off: always `full`. */
const NO_GUARD = { level: () => 'full' as const, stepsDown: 0, stepsUp: 0 };

/** What the filter uses besides its options: injectable for tests. */
export interface CompressDeps {
  readonly guard?: CompressGuard;
  readonly counters?: CompressCounters;
}

/** The fastest level of each coding: what the guard's `reduced` step uses. */
export const REDUCED_LEVELS: Readonly<Record<Coding, number>> = { zstd: 1, br: 1, gzip: 1 };

/** Fields that describe the identity bytes and would be false of the coded ones. */
const DIGESTS = ['content-digest', 'repr-digest', 'content-md5', 'digest'];

/** A coded response, from the head phase to the body phase. */
interface Decision {
  readonly coding: Coding;
  readonly level: number;
  readonly streaming: boolean;
  readonly length: number | undefined;
  /** Decode the backend's `coding` instead of coding (the client refuses it). */
  readonly decode?: true;
}

/** The one coding a response carries, when usher can decode it. */
function singleCoding(lines: readonly string[]): Coding | undefined {
  const codings = lines.flatMap((line) => line.split(',')).map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity');
  const only = codings.length === 1 ? (codings[0] === 'x-gzip' ? 'gzip' : codings[0]) : undefined;
  return only === 'gzip' || only === 'br' || only === 'zstd' ? only : undefined;
}

/** Adds `Accept-Encoding` to Vary unless it (or `*`) is there. */
function varyOnAcceptEncoding(response: FilterResponse): void {
  const listed = response.headerValues('vary').flatMap((line) => line.split(',')).map((name) => name.trim().toLowerCase());
  if (!listed.includes('accept-encoding') && !listed.includes('*')) response.addHeader('vary', 'Accept-Encoding');
}

/** Builds the `compress` filter of one route. @throws TypeError on a bad media-type pattern. */
export function compressFilter(options: CompressFilterOptions, deps: CompressDeps = {}): InternalFilter {
  const types = new TypeList(options.types);
  const counters = deps.counters ?? compressCounters;
  const guard = deps.guard ?? (options.guard === false ? NO_GUARD : threadGuard());
  /** Tags whose suffix the request phase removed: opaque → coding. */
  const stripped = new WeakMap<FilterRequest, ReadonlyMap<string, Coding>>();
  const decisions = new WeakMap<FilterRequest, Decision>();

  const skip = (reason: SkipReason): void => {
    counters.skipped[reason]++;
  };

  return {
    name: 'compress',

    onRequest(request) {
      for (const name of ['if-none-match', 'if-match']) {
        const lines = request.headerValues(name);
        if (lines.length === 0) continue;
        const result = unsuffixTags(lines.join(', '), options.codings);
        if (result === undefined) continue;
        request.setHeader(name, result.value);
        if (name === 'if-none-match') stripped.set(request, result.stripped);
      }
    },

    onResponse(response, request) {
      decisions.delete(request);
      const decided = eligibility(
        {
          method: request.method,
          range: request.header('range') !== undefined,
          status: response.status,
          contentType: response.header('content-type'),
          contentEncoding: response.headerValues('content-encoding'),
          cacheControl: response.headerValues('cache-control'),
          contentLength: response.header('content-length'),
        },
        types,
        options.minSize,
      );
      if (!decided.compress && decided.reason === 'encoded') {
        // Coded by the backend: a client whose Accept-Encoding refuses that coding gets it decoded
        // (a client that sent no Accept-Encoding accepts any coding, RFC 9110 §12.5.3).
        const upstream = singleCoding(response.headerValues('content-encoding'));
        const accepted = request.headerValues('accept-encoding');
        varyOnAcceptEncoding(response);
        if (upstream !== undefined && accepted.length > 0 && request.method !== 'HEAD' && negotiate(accepted, [upstream]) === 'identity' && codingAvailable(upstream)) {
          decisions.set(request, { coding: upstream, level: 0, streaming: true, length: undefined, decode: true });
          return;
        }
      }
      if (!decided.compress) {
        if (decided.vary) varyOnAcceptEncoding(response);
        if (response.status === 304) restoreTag(response, stripped.get(request));
        skip(decided.reason);
        return;
      }
      varyOnAcceptEncoding(response);
      const coding = negotiate(request.headerValues('accept-encoding'), options.codings);
      if (coding === 'identity') return skip('client');
      const level = guard.level();
      if (level === 'off') return skip('guard');
      const configured = options.levels[coding];
      decisions.set(request, { coding, level: level === 'reduced' ? Math.min(configured, REDUCED_LEVELS[coding]) : configured, streaming: decided.streaming, length: decided.length });
    },

    // The coded fields are set here, not in onResponse: a local answer of a filter listed after this
    // one goes through onResponse but gets no body transform, and must not claim a coding it lacks.
    transformBody(response, request): BodyTransform | undefined {
      const decision = decisions.get(request);
      if (decision === undefined) return undefined;
      decisions.delete(request);
      const { coding } = decision;
      if (decision.decode === true) return decodingTransform(response, coding, counters);
      codedFields(response, coding);
      const encoder = new Encoder(decision.coding, { level: decision.level, sizeHint: decision.length });
      counters.coded[decision.coding]++;
      const { streaming } = decision;
      return {
        transform(chunk) {
          counters.bytesIn += chunk.length;
          const out = encoder.write(chunk, streaming);
          counters.bytesOut += out.length;
          return out;
        },
        flush() {
          const out = encoder.finish();
          counters.bytesOut += out.length;
          return out;
        },
      };
    },

    // A cache hit from a cache listed after this filter: the whole stored body, coded at once. The
    // cache keeps the coded body with the stored response (memo), so each coding and level is made once.
    transformLocal(response, request, body, memo): Buffer | undefined {
      const decision = decisions.get(request);
      if (decision === undefined) return undefined;
      decisions.delete(request);
      if (decision.decode === true || body.length < options.minSize) return undefined;
      const { coding, level } = decision;
      const key = `${coding}:${level}`;
      let coded = memo?.get(key);
      if (coded !== undefined) {
        counters.reused++;
      } else if (body.length >= ASYNC_CODING_BYTES) {
        // Too long to code on the loop: a stored object is coded on the thread pool for the next hits,
        // and this one goes out uncoded (so does a large answer nothing stores).
        if (memo !== undefined) codeInBackground(memo, key, coding, level, body, counters);
        skip('deferred');
        return undefined;
      } else {
        const encoder = new Encoder(coding, { level, sizeHint: body.length });
        const head = encoder.write(body, false);
        const tail = encoder.finish();
        coded = head.length === 0 ? tail : Buffer.concat([head, tail]);
        counters.bytesIn += body.length;
        counters.bytesOut += coded.length;
        memo?.set(key, coded);
      }
      counters.coded[coding]++;
      codedFields(response, coding);
      return coded;
    },
  };
}

/** Background codings under way in this thread, by memo id and coding key: one per object and coding. */
const coding = new Set<string>();
/** At most this many at once per thread: the thread pool has 4 threads (UV_THREADPOOL_SIZE), shared with DNS and files. */
const MAX_BACKGROUND_CODINGS = 2;

/** Codes a stored object's body on the thread pool and keeps the result in its memo; a failure leaves it uncoded (counted, next hit tries again). */
function codeInBackground(memo: BodyMemo, key: string, codingName: Coding, level: number, body: Buffer, counters: CompressCounters): void {
  const id = `${memo.id}\n${key}`;
  if (coding.has(id) || coding.size >= MAX_BACKGROUND_CODINGS) return;
  coding.add(id);
  codeOnThreadPool(codingName, level, body).then(
    (coded) => {
      coding.delete(id);
      counters.bytesIn += body.length;
      counters.bytesOut += coded.length;
      memo.set(key, coded);
    },
    () => {
      coding.delete(id);
      counters.backgroundFailed++;
    },
  );
}

/** The fields of a response usher codes: its coding, the coding's ETag suffix, and no byte-level fields of the identity body. */
function codedFields(response: FilterResponse, coding: Coding): void {
  response.setHeader('content-encoding', coding);
  const etag = response.header('etag');
  if (etag !== undefined) response.setHeader('etag', suffixETag(etag, coding));
  response.removeHeader('accept-ranges');
  for (const name of DIGESTS) if (response.header(name) !== undefined) response.removeHeader(name);
}

/** The body transform that decodes the backend's coding: the response loses Content-Encoding, and its strong ETag becomes weak (other bytes, the same meaning). */
function decodingTransform(response: FilterResponse, coding: Coding, counters: CompressCounters): BodyTransform {
  response.removeHeader('content-encoding');
  const etag = response.header('etag');
  if (etag !== undefined && !etag.startsWith('W/')) response.setHeader('etag', `W/${etag}`);
  response.removeHeader('accept-ranges');
  for (const name of DIGESTS) if (response.header(name) !== undefined) response.removeHeader(name);
  const decoder = new Decoder(coding);
  counters.decoded[coding]++;
  return {
    transform: (chunk) => decoder.write(chunk),
    flush: () => decoder.finish(),
  };
}

/**
 * A 304 to a request whose If-None-Match carried usher's suffixed tag: the
 * origin answered with its own tag, and the client must get back the tag of
 * the representation it holds.
 */
function restoreTag(response: FilterResponse, removed: ReadonlyMap<string, Coding> | undefined): void {
  if (removed === undefined) return;
  const etag = response.header('etag');
  const opaque = etag === undefined ? undefined : strongOpaque(etag);
  const coding = opaque === undefined ? undefined : removed.get(opaque);
  if (etag !== undefined && coding !== undefined) response.setHeader('etag', suffixETag(etag, coding));
}
