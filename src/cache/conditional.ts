/**
 * Conditional requests against a stored response (RFC 9110 §13), and the
 * validators for revalidating stored responses upstream (RFC 9111 §4.3).
 *
 * RFC 9111 §4.3.2 says `If-Match` and `If-Unmodified-Since` "are not
 * applicable to a cache": a cache acting for itself forwards such requests.
 * `evaluatePreconditions` still implements all of §13.2.2 for when usher
 * answers as the origin's gateway; `hasOriginPreconditions` tells the caller
 * which case it is in.
 */
import { dateField, fieldLines, hasField, listMembers, type Fields } from './fields.ts';

export interface EntityTag {
  readonly weak: boolean;
  /** The opaque-tag including its quotes. */
  readonly opaque: string;
}

/** Parses one entity-tag (RFC 9110 §8.8.3); undefined when malformed. */
export function parseEntityTag(s: string): EntityTag | undefined {
  const m = /^(W\/)?("[\x21\x23-\x7e\x80-\xff]*")$/.exec(s.trim());
  return m ? { weak: m[1] !== undefined, opaque: m[2]! } : undefined;
}

/** Strong comparison (§8.8.3.2): both strong and the same opaque-tag. */
export function strongMatch(a: EntityTag, b: EntityTag): boolean {
  return !a.weak && !b.weak && a.opaque === b.opaque;
}

/** Weak comparison (§8.8.3.2): the same opaque-tag, weakness ignored. */
export function weakMatch(a: EntityTag, b: EntityTag): boolean {
  return a.opaque === b.opaque;
}

/** The stored response's ETag, if it has a valid one. */
export function storedEtag(fields: Fields): EntityTag | undefined {
  const first = fieldLines(fields, 'etag')[0];
  return first === undefined ? undefined : parseEntityTag(first);
}

/** `*`, or the entity-tags of an If-Match / If-None-Match; malformed members are skipped. */
function etagList(fields: Fields, name: string): '*' | EntityTag[] {
  const members = listMembers(fields, name);
  if (members.includes('*')) return '*';
  const out: EntityTag[] = [];
  for (const m of members) {
    const t = parseEntityTag(m);
    if (t !== undefined) out.push(t);
  }
  return out;
}

/** A single valid HTTP-date, or undefined: a list of dates or an invalid one makes the field ignored (§13.1.3, §13.1.4). */
function singleDate(fields: Fields, name: string): number | undefined {
  const lines = fieldLines(fields, name);
  if (lines.length !== 1) return undefined;
  return dateField(fields, name);
}

export interface StoredValidators {
  readonly fields: Fields;
  /** When the stored response was received (ms): the last resort for If-Modified-Since (RFC 9111 §4.3.2). */
  readonly responseTime: number;
}

export type PreconditionResult = 'proceed' | 304 | 412;

/** True when the request carries If-Match or If-Unmodified-Since, which a cache forwards (RFC 9111 §4.3.2). */
export function hasOriginPreconditions(request: Fields): boolean {
  return hasField(request, 'if-match') || hasField(request, 'if-unmodified-since');
}

/**
 * Evaluates the preconditions of a request against a stored response, in the
 * order of RFC 9110 §13.2.2:
 * 1. If-Match (strong comparison, `*` matches any stored response) → 412 on failure;
 * 2. else If-Unmodified-Since → 412 when modified since;
 * 3. If-None-Match (weak comparison) → 304 for GET/HEAD, 412 otherwise, when it matches;
 * 4. else, for GET/HEAD, If-Modified-Since → 304 when not modified since.
 * Dates are compared at one-second resolution, as HTTP-dates are.
 */
export function evaluatePreconditions(method: string, request: Fields, stored: StoredValidators): PreconditionResult {
  const etag = storedEtag(stored.fields);
  const lastModified = dateField(stored.fields, 'last-modified');
  const getOrHead = method === 'GET' || method === 'HEAD';

  if (hasField(request, 'if-match')) {
    const list = etagList(request, 'if-match');
    const ok = list === '*' || (etag !== undefined && list.some((t) => strongMatch(t, etag)));
    if (!ok) return 412;
  } else {
    const ius = singleDate(request, 'if-unmodified-since');
    // Ignored when the representation has no modification date (§13.1.4).
    if (ius !== undefined && lastModified !== undefined && lastModified > ius) return 412;
  }

  if (hasField(request, 'if-none-match')) {
    const list = etagList(request, 'if-none-match');
    const matches = list === '*' || (etag !== undefined && list.some((t) => weakMatch(t, etag)));
    if (matches) return getOrHead ? 304 : 412;
    return 'proceed';
  }

  if (getOrHead) {
    const ims = singleDate(request, 'if-modified-since');
    if (ims !== undefined) {
      // RFC 9111 §4.3.2: Last-Modified, else Date, else the time received.
      const modified = lastModified ?? dateField(stored.fields, 'date') ?? stored.responseTime;
      if (modified <= ims) return 304;
    }
  }
  return 'proceed';
}

/**
 * Whether to honour a Range request given its If-Range (RFC 9110 §13.1.5):
 * true without If-Range; with an entity-tag, only on a strong match; with a
 * date, only when it equals Last-Modified exactly and Last-Modified is strong
 * (§8.8.2.2: the stored Date is at least one second after it). A weak or
 * malformed validator never matches: the client gets the full response.
 */
export function ifRangeAllowsRange(request: Fields, stored: Fields): boolean {
  const lines = fieldLines(request, 'if-range');
  if (lines.length === 0) return true;
  if (lines.length > 1) return false;
  const value = lines[0]!.trim();
  if (value.startsWith('"') || value.startsWith('W/')) {
    const tag = parseEntityTag(value);
    const etag = storedEtag(stored);
    return tag !== undefined && etag !== undefined && strongMatch(tag, etag);
  }
  const date = dateField(request, 'if-range');
  const lastModified = dateField(stored, 'last-modified');
  const responseDate = dateField(stored, 'date');
  if (date === undefined || lastModified === undefined || responseDate === undefined) return false;
  return date === lastModified && responseDate - lastModified >= 1000;
}

/**
 * The validators for revalidating `selected` (RFC 9111 §4.3.1):
 * `If-None-Match` with the entity-tags of *all* stored variants of the URI,
 * so that a 304 can pick whichever the origin would now select, and
 * `If-Modified-Since` with the Last-Modified of the selected one.
 */
export function revalidationFields(selected: Fields, variants: readonly Fields[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const tags: string[] = [];
  for (const v of variants) {
    const raw = fieldLines(v, 'etag')[0];
    const t = raw === undefined ? undefined : parseEntityTag(raw);
    if (t !== undefined) {
      const s = `${t.weak ? 'W/' : ''}${t.opaque}`;
      if (!tags.includes(s)) tags.push(s);
    }
  }
  if (tags.length > 0) out['if-none-match'] = [tags.join(', ')];
  const lm = fieldLines(selected, 'last-modified')[0];
  if (lm !== undefined && dateField(selected, 'last-modified') !== undefined) out['if-modified-since'] = [lm];
  return out;
}

export interface Candidate {
  readonly fields: Fields;
  readonly responseTime: number;
}

/**
 * Which stored responses a 304 (or a HEAD response) refers to (RFC 9111
 * §4.3.4): every one with its strong ETag; else, for a weak ETag or a
 * Last-Modified, the most recent one matching; else, with no validator at
 * all, the only stored response if it has no validator either. Returns
 * indexes into `stored`; empty means "update nothing".
 */
export function selectForUpdate(stored: readonly Candidate[], response: Fields): number[] {
  const tag = storedEtag(response);
  if (tag !== undefined && !tag.weak) {
    const out: number[] = [];
    stored.forEach((s, i) => {
      const t = storedEtag(s.fields);
      if (t !== undefined && strongMatch(t, tag)) out.push(i);
    });
    return out;
  }
  const lastModified = fieldLines(response, 'last-modified')[0];
  if (tag !== undefined || lastModified !== undefined) {
    let best = -1;
    stored.forEach((s, i) => {
      const t = storedEtag(s.fields);
      const match = tag !== undefined
        ? t !== undefined && weakMatch(t, tag)
        : fieldLines(s.fields, 'last-modified')[0] === lastModified;
      if (match && (best < 0 || s.responseTime > stored[best]!.responseTime)) best = i;
    });
    return best < 0 ? [] : [best];
  }
  if (stored.length === 1) {
    const only = stored[0]!.fields;
    if (!hasField(only, 'etag') && !hasField(only, 'last-modified')) return [0];
  }
  return [];
}

