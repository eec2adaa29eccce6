/**
 * Which responses the `compress` filter may code, decided from the response
 * head alone (the head goes to the client before the body is read, so there
 * is no peeking at the bytes). Pure: no I/O, no state.
 *
 * Skipped: 1xx, 204, 304 and 206 responses; responses to HEAD and to Range
 * requests; responses that already have a Content-Encoding or say
 * `Cache-Control: no-transform`; media types off the allow-list (images,
 * video, archives and fonts like WOFF2 are compressed already); and bodies
 * whose Content-Length is below `minSize` (a few hundred bytes gain nothing
 * and cost a compressor's setup). A body without Content-Length is
 * compressed: its size cannot be known in advance.
 */

/**
 * Default media types: text and the structured text formats, after Caddy's
 * `encode` list. `type/*` matches a whole top-level type, `type/*+suffix` (or
 * `*\/*+suffix`) a structured syntax suffix (RFC 6838 §4.2.8).
 */
export const DEFAULT_TYPES: readonly string[] = [
  'text/*',
  'application/json',
  'application/*+json',
  'application/x-ndjson',
  'application/javascript',
  'application/x-javascript',
  'application/ecmascript',
  'application/xml',
  'application/*+xml',
  'application/wasm',
  'application/graphql',
  'application/x-protobuf',
  'application/vnd.ms-fontobject',
  'application/x-font-ttf',
  'application/x-font-opentype',
  'font/ttf',
  'font/otf',
  'font/collection',
  'image/svg+xml',
  'image/x-icon',
  'image/vnd.microsoft.icon',
  'image/bmp',
  'multipart/mixed',
];

/** A media-type pattern as written in the config: `type/subtype`, `type/*`, `type/*+suffix`, `*\/*+suffix`. */
export const TYPE_PATTERN = /^(?:[a-z0-9][a-z0-9!#$&^_.+-]*|\*)\/(?:\*|\*\+[a-z0-9][a-z0-9!#$&^_.+-]*|[a-z0-9][a-z0-9!#$&^_.+-]*)$/;

/** A compiled allow-list of media types. */
export class TypeList {
  readonly #exact = new Set<string>();
  readonly #types = new Set<string>();
  /** `type/+suffix` or `*\/+suffix`. */
  readonly #suffixes = new Set<string>();

  /** @throws TypeError naming the first pattern that is not a media-type pattern. */
  constructor(patterns: readonly string[]) {
    for (const raw of patterns) {
      const pattern = raw.trim().toLowerCase();
      if (!TYPE_PATTERN.test(pattern) || (pattern.startsWith('*/') && !pattern.startsWith('*/*+'))) {
        throw new TypeError(`compress: ${JSON.stringify(raw)} is not a media-type pattern: write type/subtype, type/*, type/*+suffix or */*+suffix (e.g. application/*+json)`);
      }
      const [type, subtype] = pattern.split('/') as [string, string];
      if (subtype === '*') this.#types.add(type);
      else if (subtype.startsWith('*+')) this.#suffixes.add(`${type}/${subtype.slice(1)}`);
      else this.#exact.add(pattern);
    }
  }

  /** Whether a Content-Type value (parameters allowed) is on the list. */
  matches(contentType: string): boolean {
    const semi = contentType.indexOf(';');
    const essence = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
    const slash = essence.indexOf('/');
    if (slash <= 0 || slash === essence.length - 1) return false;
    if (this.#exact.has(essence)) return true;
    const type = essence.slice(0, slash);
    if (this.#types.has(type)) return true;
    const plus = essence.lastIndexOf('+');
    if (plus > slash) {
      const suffix = essence.slice(plus);
      return this.#suffixes.has(`${type}/${suffix}`) || this.#suffixes.has(`*/${suffix}`);
    }
    return false;
  }
}

/** Why a response goes out uncoded (a bounded label of `usher_compress_responses_total`). */
export type SkipReason = 'status' | 'method' | 'range' | 'encoded' | 'no-transform' | 'type' | 'size' | 'client' | 'guard' | 'deferred';

/** What the decision reads of the exchange. */
export interface ResponseFacts {
  readonly method: string;
  /** The request carried `Range`. */
  readonly range: boolean;
  readonly status: number;
  readonly contentType: string | undefined;
  readonly contentEncoding: readonly string[];
  readonly cacheControl: readonly string[];
  readonly contentLength: string | undefined;
}

export type Eligibility =
  | {
      readonly compress: true;
      /** Flush after each upstream chunk: the body has no length (a stream) or is server-sent events. */
      readonly streaming: boolean;
      /** The Content-Length, when given. */
      readonly length: number | undefined;
    }
  | {
      readonly compress: false;
      readonly reason: SkipReason;
      /** A GET of the same resource could be coded, so caches must key on Accept-Encoding. */
      readonly vary: boolean;
    };

/** Whether a response head may be coded, with `types` and `minSize` of the route's filter. Negotiation and the guard come after. */
export function eligibility(facts: ResponseFacts, types: TypeList, minSize: number): Eligibility {
  const { status } = facts;
  if (status < 200 || status === 204 || status === 304) return { compress: false, reason: 'status', vary: status === 304 };
  if (status === 206) return { compress: false, reason: 'range', vary: true };
  if (facts.contentEncoding.some((line) => line.split(',').some((coding) => { const c = coding.trim().toLowerCase(); return c !== '' && c !== 'identity'; }))) {
    return { compress: false, reason: 'encoded', vary: false };
  }
  if (facts.cacheControl.some((line) => /(?:^|,)\s*no-transform\s*(?:,|$)/i.test(line))) return { compress: false, reason: 'no-transform', vary: false };
  if (facts.contentType === undefined || !types.matches(facts.contentType)) return { compress: false, reason: 'type', vary: false };
  if (facts.method === 'HEAD') return { compress: false, reason: 'method', vary: true };
  if (facts.range) return { compress: false, reason: 'range', vary: true };
  let length: number | undefined;
  if (facts.contentLength !== undefined) {
    length = Number(facts.contentLength);
    if (Number.isSafeInteger(length) && length < minSize) return { compress: false, reason: 'size', vary: true };
    if (!Number.isSafeInteger(length)) length = undefined;
  }
  const sse = facts.contentType.trim().toLowerCase().startsWith('text/event-stream');
  return { compress: true, streaming: length === undefined || sse, length };
}
