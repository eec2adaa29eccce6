/**
 * Query-string parsing for route matching.
 *
 * Follows the WHATWG `application/x-www-form-urlencoded` parser, the one behind
 * `URLSearchParams` (https://url.spec.whatwg.org/#urlencoded-parsing):
 * - pairs are split on `&`; empty pairs (`a=1&&b=2`) are skipped;
 * - `b=` and a bare `c` both give a key present with the empty value `''`,
 *   which is distinct from an absent key (`map.get()` returns `undefined`);
 * - in keys and values `+` is a space and `%XX` is a byte; bytes are decoded as
 *   UTF-8 with invalid sequences replaced by U+FFFD; a `%` not followed by two
 *   hex digits is kept literally (never throws, unlike `decodeURIComponent`);
 * - on a repeated key the FIRST value wins (`URLSearchParams.get`, Go's
 *   `Query().Get`). `?role=user&role=admin` therefore routes on `user`; a
 *   backend that reads the last value sees `admin`. Route on values the backend
 *   re-checks, not on values that grant access.
 *
 * Cost: O(length of the query); one Map plus one string per key and value.
 * Only called when some route has a `query` key, at most once per request
 * (see `queryParamsOf` in `request.ts`).
 */

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
const CHAR_PLUS = 0x2b;
const CHAR_PERCENT = 0x25;
const CHAR_EQUALS = 0x3d;

/**
 * Parses a raw query string (without the leading `?`) into a map of decoded
 * key → first decoded value.
 */
export function parseQuery(query: string): ReadonlyMap<string, string> {
  const params = new Map<string, string>();
  const length = query.length;
  let start = 0;
  while (start <= length) {
    let end = query.indexOf('&', start);
    if (end === -1) end = length;
    if (end > start) {
      // Scan only this pair: indexOf('=') past `end` would make `a&a&a...` quadratic.
      let keyEnd = start;
      while (keyEnd < end && query.charCodeAt(keyEnd) !== CHAR_EQUALS) keyEnd++;
      const key = decodeFormComponent(query, start, keyEnd);
      if (!params.has(key)) {
        const value = keyEnd === end ? '' : decodeFormComponent(query, keyEnd + 1, end);
        params.set(key, value);
      }
    }
    start = end + 1;
  }
  return params;
}

/**
 * Decodes `source[start, end)` as one form-urlencoded component: `+` is a
 * space, `%XX` a UTF-8 byte. Returns a plain slice when there is nothing to
 * decode.
 */
export function decodeFormComponent(source: string, start = 0, end = source.length): string {
  let plus = false;
  let percent = false;
  for (let i = start; i < end; i++) {
    const c = source.charCodeAt(i);
    if (c === CHAR_PLUS) plus = true;
    else if (c === CHAR_PERCENT) percent = true;
  }
  const raw = source.slice(start, end);
  if (!percent) return plus ? raw.replaceAll('+', ' ') : raw;
  return percentDecode(raw);
}

/** Percent-decodes (with `+` as space) at the byte level, then decodes UTF-8 leniently. */
function percentDecode(raw: string): string {
  const bytes = new TextEncoder().encode(raw);
  let w = 0;
  for (let r = 0; r < bytes.length; r++) {
    const b = bytes[r] as number;
    if (b === CHAR_PERCENT && r + 2 < bytes.length) {
      const hi = hexValue(bytes[r + 1] as number);
      const lo = hexValue(bytes[r + 2] as number);
      if (hi !== -1 && lo !== -1) {
        bytes[w++] = (hi << 4) | lo;
        r += 2;
        continue;
      }
    }
    bytes[w++] = b === CHAR_PLUS ? 0x20 : b;
  }
  return utf8.decode(bytes.subarray(0, w));
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30; // 0-9
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10; // a-f
  return -1;
}
