/**
 * The `Cache-Status` response field (RFC 9211): one List member per cache,
 * naming the cache and saying what it did.
 */
import { isSfToken, serializeBareItem, serializeParams, Token, type BareItem } from './structured-field.ts';

/** Why the request went forward (RFC 9211 §2.2). */
export type ForwardReason =
  | 'bypass' | 'method' | 'uri-miss' | 'vary-miss' | 'miss' | 'request' | 'stale' | 'partial';

export interface CacheStatus {
  /** Served from the cache without going forward (§2.1). */
  readonly hit?: boolean;
  readonly fwd?: ForwardReason;
  /** Status of the forwarded response (§2.3). */
  readonly fwdStatus?: number;
  /** Remaining freshness in seconds, negative when stale (§2.4); rounded down. */
  readonly ttl?: number;
  /** The response was stored (§2.5). */
  readonly stored?: boolean;
  /** The request was collapsed into another's (§2.6). */
  readonly collapsed?: boolean;
  /** The cache key (§2.7); only for debugging, as it can reveal the key's composition. */
  readonly key?: string;
  /** Implementation detail (§2.8), e.g. a not-storable reason: written as a token when it is one, else as a string. */
  readonly detail?: string;
}

/**
 * Serialises one Cache-Status member, e.g. `usher; fwd=uri-miss; stored`.
 * Parameters follow RFC 9211's order; a `hit` excludes `fwd` (§2.1: they are
 * exclusive), so passing both is a programming error and throws. Throws
 * `SerializeError` for a `detail` or `key` that no sf-string can carry
 * (non-ASCII).
 */
export function cacheStatus(cacheName: string, s: CacheStatus): string {
  if (s.hit && s.fwd !== undefined) throw new RangeError('Cache-Status: hit and fwd are exclusive');
  const params: Array<[string, BareItem]> = [];
  if (s.hit) params.push(['hit', true]);
  if (s.fwd !== undefined) params.push(['fwd', new Token(s.fwd)]);
  if (s.fwdStatus !== undefined) params.push(['fwd-status', s.fwdStatus]);
  if (s.ttl !== undefined) params.push(['ttl', Math.floor(s.ttl)]);
  if (s.stored) params.push(['stored', true]);
  if (s.collapsed) params.push(['collapsed', true]);
  if (s.key !== undefined) params.push(['key', s.key]);
  if (s.detail !== undefined) params.push(['detail', isSfToken(s.detail) ? new Token(s.detail) : s.detail]);
  const name = isSfToken(cacheName) ? new Token(cacheName) : cacheName;
  // "; " as in RFC 9211's examples: a parser skips spaces after ';' (RFC 8941 §4.2.3.2).
  return serializeBareItem(name) + params.map((p) => `; ${serializeParams([p]).slice(1)}`).join('');
}

/**
 * Adds usher's member to a Cache-Status received from upstream. The field is
 * a List ordered from the origin outwards (§2), so usher's member, the one
 * closest to the client, goes last.
 */
export function appendCacheStatus(upstream: readonly string[], member: string): string {
  const prior = upstream.map((l) => l.trim()).filter((l) => l !== '');
  return [...prior, member].join(', ');
}
