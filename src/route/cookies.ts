/**
 * Cookie-header parsing for route matching (RFC 6265 §4.2.1, §5.4).
 *
 * - pairs are split on `;`; spaces and tabs around names and values are trimmed;
 * - a pair without `=` is ignored (RFC 6265 grammar requires `name=value`;
 *   browsers disagree on nameless cookies, so usher does not route on them);
 *   a pair with an empty name is ignored too;
 * - `b=` is present with the empty value `''`, distinct from an absent cookie;
 * - a value wrapped in double quotes (`a="x y"`) has the quotes removed;
 * - values are NOT percent-decoded: RFC 6265 defines no encoding, so the route
 *   compares the bytes the client sent (the `cookie` npm package decodes,
 *   Go's net/http does not; we pick the predictable one);
 * - on a repeated name the FIRST value wins: browsers send the cookie with the
 *   longest path first (RFC 6265 §5.4 step 2), and jshttp/cookie keeps the first.
 *
 * Node joins repeated `Cookie` headers with `; ` (and HTTP/2 cookie crumbs), so
 * the header is normally one string; an array is accepted and read in order.
 *
 * Cost: O(header length); one Map plus one string per name and value. Only
 * called when some route has a `cookies` key, at most once per request.
 */

/** Parses a `Cookie` request header into a map of name → first value. */
export function parseCookies(header: string | readonly string[] | undefined): ReadonlyMap<string, string> {
  const cookies = new Map<string, string>();
  if (header === undefined) return cookies;
  if (typeof header === 'string') {
    addCookies(cookies, header);
  } else {
    for (const part of header) addCookies(cookies, part);
  }
  return cookies;
}

function addCookies(cookies: Map<string, string>, header: string): void {
  const length = header.length;
  let start = 0;
  while (start < length) {
    let end = header.indexOf(';', start);
    if (end === -1) end = length;
    let eq = start;
    while (eq < end && header.charCodeAt(eq) !== 0x3d) eq++; // '='
    if (eq < end) {
      const name = trimmed(header, start, eq);
      if (name !== '' && !cookies.has(name)) cookies.set(name, unquote(trimmed(header, eq + 1, end)));
    }
    start = end + 1;
  }
}

/** `source[start, end)` without leading and trailing spaces and tabs. */
function trimmed(source: string, start: number, end: number): string {
  while (start < end && isSpace(source.charCodeAt(start))) start++;
  while (end > start && isSpace(source.charCodeAt(end - 1))) end--;
  return source.slice(start, end);
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

function unquote(value: string): string {
  if (value.length >= 2 && value.charCodeAt(0) === 0x22 && value.charCodeAt(value.length - 1) === 0x22) {
    return value.slice(1, -1);
  }
  return value;
}
