/**
 * Freshening a stored response from a 304 or a HEAD response (RFC 9111
 * §3.2, §4.3.4, §4.3.5).
 */
import { fieldLines, formatHttpDate, hasField, listMembers, type Fields } from './fields.ts';
import { storedEtag } from './conditional.ts';
import type { TimedResponse } from './freshness.ts';

/**
 * Fields a 304 or HEAD response never overwrites in a stored response. RFC
 * 9111 §3.2 says a cache MUST add each field of the new response, replacing
 * stored values, except:
 * - "Header fields excepted from storage in Section 3.1": the hop-by-hop
 *   fields (`Connection` and the fields it names, `Proxy-Connection`,
 *   `Keep-Alive`, `TE`, `Transfer-Encoding`, `Upgrade`) and the
 *   proxy-specific `Proxy-Authenticate`, `Proxy-Authentication-Info`,
 *   `Proxy-Authorization`;
 * - "the Content-Length header field": it describes the stored body, and a
 *   304 has none;
 * and it allows omitting fields "necessary to assure integrity of the stored
 * response", naming `Content-Encoding` as the example, and fields
 * "automatically processed and removed", naming `Content-Range`. usher
 * stores the body bytes as received, so a different `Content-Encoding` or
 * `Content-Range` would misdescribe them: both are kept too.
 * The fields of a qualified `private`/`no-cache` (stripped before storing,
 * §3.1) are passed separately as `strip`.
 */
export const NOT_UPDATED: ReadonlySet<string> = new Set([
  'connection', 'proxy-connection', 'keep-alive', 'te', 'transfer-encoding', 'upgrade',
  'proxy-authenticate', 'proxy-authentication-info', 'proxy-authorization',
  'content-length', 'content-encoding', 'content-range',
]);

export interface UpdateExchange {
  /** The fields of the 304 or HEAD response. */
  readonly fields: Fields;
  readonly requestTime: number;
  readonly responseTime: number;
}

/**
 * The stored response after freshening with `update` (§3.2): every field of
 * the update replaces the stored one except `NOT_UPDATED`, the fields named
 * by the update's `Connection`, and `strip`. The clock readings become the
 * update's, so age restarts from the validation, and:
 * - `Age` is removed when the update has none, else the old Age would be
 *   counted again on top of the new response time;
 * - `Date` is set to the time received when the update has none (RFC 9110
 *   §6.6.1: a recipient with a clock adds a missing Date), else the old Date
 *   would make the refreshed response look old.
 * The status and body are unchanged.
 */
export function freshen(stored: TimedResponse, update: UpdateExchange, strip: readonly string[] = []): TimedResponse {
  const excluded = new Set([...NOT_UPDATED, ...strip, ...listMembers(update.fields, 'connection').map((n) => n.toLowerCase())]);
  const out: Record<string, readonly string[] | undefined> = { ...stored.fields };
  for (const [name, lines] of Object.entries(update.fields)) {
    if (lines === undefined || excluded.has(name)) continue;
    out[name] = lines;
  }
  if (!hasField(update.fields, 'age')) delete out['age'];
  if (!hasField(update.fields, 'date')) out['date'] = [formatHttpDate(update.responseTime)];
  return { status: stored.status, fields: out, requestTime: update.requestTime, responseTime: update.responseTime };
}

export type HeadOutcome = 'update' | 'invalidate';

/**
 * Whether a HEAD response may freshen a stored GET response (RFC 9111
 * §4.3.5), or shows that it has changed: when the HEAD response carries an
 * ETag, a Last-Modified or a Content-Length that differs from the stored one,
 * the stored response no longer describes the resource and is invalidated.
 */
export function headOutcome(stored: Fields, head: Fields): HeadOutcome {
  const headTag = storedEtag(head);
  const storedTag = storedEtag(stored);
  if (headTag !== undefined && (storedTag === undefined || headTag.opaque !== storedTag.opaque || headTag.weak !== storedTag.weak)) {
    return 'invalidate';
  }
  const headLm = fieldLines(head, 'last-modified')[0];
  if (headLm !== undefined && headLm !== fieldLines(stored, 'last-modified')[0]) return 'invalidate';
  const headLength = fieldLines(head, 'content-length')[0];
  const storedLength = fieldLines(stored, 'content-length')[0];
  if (headLength !== undefined && storedLength !== undefined && headLength.trim() !== storedLength.trim()) return 'invalidate';
  return 'update';
}
