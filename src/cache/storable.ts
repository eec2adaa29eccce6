/**
 * May a shared cache store a response (RFC 9111 §3, §3.5), and may usher
 * share it (a policy on top of the RFC).
 *
 * Every refusal has a reason, a token fit for a metrics label and for the
 * `detail` parameter of `Cache-Status`.
 */
import { hasField, listMembers, type Fields } from './fields.ts';
import { requestDirectives, type ResponsePolicy } from './directives.ts';
import { HEURISTIC_STATUSES } from './freshness.ts';

export type NotStorableReason =
  /** Only GET responses are stored; a HEAD response can only update one (§4.3.5). */
  | 'method'
  /** 1xx, 304 and statuses usher does not implement (§3: "the response status code is final" and "understood"). */
  | 'status'
  /** usher stores complete responses only and serves ranges from them; it does not combine partial content (§3.3). */
  | 'partial-content'
  | 'request-no-store'
  | 'response-no-store'
  /** Unqualified `private` (§5.2.2.7). */
  | 'private'
  /** `Authorization` without `public`, `s-maxage` or `must-revalidate` (§3.5). */
  | 'authorization'
  /** `Vary: *` can never be matched (§4.1). */
  | 'vary-star'
  /** No explicit freshness, no `public`, and a status that is not heuristically cacheable (§3). */
  | 'no-freshness';

export type Storability =
  | {
      readonly storable: true;
      /**
       * Lower-case field names to remove before storing: those of a qualified
       * `private` (a shared cache MUST NOT store them, §5.2.2.7) and of a
       * qualified `no-cache` (which may then be reused without validation,
       * §5.2.2.4).
       */
      readonly stripFields: readonly string[];
    }
  | { readonly storable: false; readonly reason: NotStorableReason };

export interface StoreRequest {
  readonly method: string;
  readonly fields: Fields;
}

export interface StoreResponse {
  readonly status: number;
  readonly fields: Fields;
}

/**
 * Final statuses usher understands, in the sense of §3 and `must-understand`
 * (§5.2.2.3): those of RFC 9110 §15 whose semantics a cache can honour by
 * storing and replaying the response. 206 is understood but refused
 * separately (see `partial-content`).
 */
const UNDERSTOOD = new Set([
  200, 201, 202, 203, 204, 205, 206,
  300, 301, 302, 303, 307, 308,
  400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 426, 429, 431, 451,
  500, 501, 502, 503, 504, 505,
]);

export function isUnderstoodStatus(status: number): boolean {
  return UNDERSTOOD.has(status);
}

/**
 * Decides whether a shared cache may store `response` to `request` (§3). The
 * checks run in a fixed order so that the reason reported is stable; the
 * request's directives come from its own `Cache-Control`.
 */
export function storability(request: StoreRequest, response: StoreResponse, policy: ResponsePolicy): Storability {
  if (request.method !== 'GET') return { storable: false, reason: 'method' };
  const d = policy.directives;
  if (response.status === 206) return { storable: false, reason: 'partial-content' };
  if (!UNDERSTOOD.has(response.status)) return { storable: false, reason: 'status' };
  if (requestDirectives(request.fields).noStore) return { storable: false, reason: 'request-no-store' };
  // must-understand overrides no-store for a status the cache understands (§5.2.2.3); every status reaching here is understood.
  if (d.noStore && !d.mustUnderstand) return { storable: false, reason: 'response-no-store' };
  if (d.private === true) return { storable: false, reason: 'private' };
  if (hasField(request.fields, 'authorization') && !(d.public || d.sMaxage !== undefined || d.mustRevalidate)) {
    return { storable: false, reason: 'authorization' };
  }
  if (listMembers(response.fields, 'vary').includes('*')) return { storable: false, reason: 'vary-star' };
  const explicit =
    d.public ||
    d.maxAge !== undefined ||
    d.sMaxage !== undefined ||
    (!policy.targeted && hasField(response.fields, 'expires'));
  if (!explicit && !HEURISTIC_STATUSES.has(response.status)) return { storable: false, reason: 'no-freshness' };
  const strip = new Set<string>();
  if (Array.isArray(d.private)) for (const n of d.private) strip.add(n);
  if (Array.isArray(d.noCache)) for (const n of d.noCache) strip.add(n);
  return { storable: true, stripFields: [...strip] };
}

export type NotShareableReason =
  /** A `Set-Cookie` response is storable by the RFC, but usher does not replay one client's cookie to another. */
  'set-cookie';

/**
 * usher's own rule on top of `storability`: a response that sets a cookie
 * is not stored in the shared cache even when the RFC allows it, because the
 * cookie is very likely a session for the one client that asked, and an
 * origin that forgets `private` would otherwise leak sessions.
 */
export function shareability(response: StoreResponse): { readonly shareable: true } | { readonly shareable: false; readonly reason: NotShareableReason } {
  return hasField(response.fields, 'set-cookie') ? { shareable: false, reason: 'set-cookie' } : { shareable: true };
}

/** Returns `fields` without the lower-case names in `strip`; the same object when there is nothing to strip. */
export function stripFields(fields: Fields, strip: readonly string[]): Fields {
  if (strip.length === 0 || !strip.some((n) => Object.hasOwn(fields, n))) return fields;
  const out: Record<string, readonly string[] | undefined> = {};
  for (const [name, lines] of Object.entries(fields)) if (!strip.includes(name)) out[name] = lines;
  return out;
}
