/**
 * The header-field section shared by request and response heads (RFC 9112
 * §5, RFC 9110 §5): one pass over the decoded head string with table lookups,
 * collecting rawHeaders and the few fields that decide framing and connection
 * handling into a reused scratch object (`FieldScan`), so a typical head costs
 * one string, its slices and the rawHeaders array.
 *
 * Rejections here carry request statuses (400, 431, 501); the response parser
 * turns every one of them into 502 (`asBadResponse`).
 */
import { COLON, COMMA, CR, HT, LF, SLASH, SP, TOKEN, VALUE, eqLower } from './chars.ts';
import { parseError } from './errors.ts';
import type { HeadLimits, Http1ParseError } from './types.ts';

/** What the field loop learnt about the framing/connection fields; reset per head. */
export class FieldScan {
  hostCount = 0;
  host: string | undefined = undefined;
  /** -1 when absent. */
  contentLength = -1;
  te = false;
  teChunkedCount = 0;
  teLastChunked = false;
  /** A coding outside the IANA registry (`identity`, `x-chunked`, `foo`). */
  teUnknown = false;
  /** Any coding other than `chunked`, registered or not: usher implements only chunked. */
  teOther = false;
  teMalformed = false;
  connection: string[] | undefined = undefined;
  upgradeHeader = false;
  expectContinue = false;
  expectOther = false;
  /** `timeout=N` of a Keep-Alive field, in seconds; -1 when absent. */
  keepAliveTimeout = -1;

  reset(): void {
    this.hostCount = 0;
    this.host = undefined;
    this.contentLength = -1;
    this.te = false;
    this.teChunkedCount = 0;
    this.teLastChunked = false;
    this.teUnknown = false;
    this.teOther = false;
    this.teMalformed = false;
    this.connection = undefined;
    this.upgradeHeader = false;
    this.expectContinue = false;
    this.expectOther = false;
    this.keepAliveTimeout = -1;
  }
}

/**
 * Parses the field lines in `buf[i..end)`, where `end` is the index of the
 * head's final CRLF (so every field line still ends in CRLF). Validation runs
 * over the bytes (a typed-array walk is about twice as fast as `charCodeAt`
 * on the decoded string, see bench/micro/http1-parse.ts); names and values are
 * then sliced from `s`, the head decoded once, where `s[k - base]` is `buf[k]`.
 * Pushes name/value pairs to `raw` and records special fields in `st`.
 */
export function parseFields(buf: Buffer, i: number, end: number, s: string, base: number, raw: string[], st: FieldScan, limits: HeadLimits): Http1ParseError | undefined {
  let count = 0;
  while (i < end) {
    const nameStart = i;
    let c = buf[i] as number;
    while (TOKEN[c] === 1) c = buf[++i] as number;
    if (c !== COLON || i === nameStart) return badName(c, i === nameStart, buf[i + 1] as number);
    const nameEnd = i;
    c = buf[++i] as number;
    while (c === SP || c === HT) c = buf[++i] as number;
    const valueStart = i;
    while (VALUE[c] === 1) c = buf[++i] as number;
    if (c !== CR || buf[i + 1] !== LF) return badValue(c);
    let valueEnd = i;
    while (valueEnd > valueStart && ((c = buf[valueEnd - 1] as number) === SP || c === HT)) valueEnd--;
    i += 2;
    if (++count > limits.maxHeaders) return parseError('HTTP1_TOO_MANY_HEADERS', 431, `more than ${limits.maxHeaders} header fields`);
    const value = s.slice(valueStart - base, valueEnd - base);
    raw.push(s.slice(nameStart - base, nameEnd - base), value);
    const e = special(s, nameStart - base, nameEnd - base, valueStart - base, valueEnd - base, value, st);
    if (e !== undefined) return e;
  }
  return undefined;
}

function badName(c: number, empty: boolean, next: number): Http1ParseError {
  if (c === LF) return parseError('HTTP1_BARE_LF', 400, 'bare LF line ending');
  if (c === CR && next === LF) return parseError(empty ? 'HTTP1_EMPTY_FIELD_NAME' : 'HTTP1_BAD_FIELD_NAME', 400, 'field line without a colon');
  if (c === CR) return parseError('HTTP1_BARE_CR', 400, 'bare CR in head');
  if (empty && (c === SP || c === HT)) return parseError('HTTP1_OBS_FOLD', 400, 'obsolete line folding or field line starting with whitespace');
  if (c === SP || c === HT) return parseError('HTTP1_SPACE_BEFORE_COLON', 400, 'whitespace between field name and colon');
  if (empty) return parseError('HTTP1_EMPTY_FIELD_NAME', 400, 'empty field name');
  return parseError('HTTP1_BAD_FIELD_NAME', 400, `invalid character 0x${c.toString(16)} in field name`);
}

function badValue(c: number): Http1ParseError {
  if (c === LF) return parseError('HTTP1_BARE_LF', 400, 'bare LF in field value');
  if (c === CR) return parseError('HTTP1_BARE_CR', 400, 'bare CR in field value');
  return parseError('HTTP1_BAD_FIELD_VALUE', 400, `invalid character 0x${c.toString(16)} in field value`);
}

/** Records a framing/connection field; dispatches on name length first so ordinary fields cost one switch. */
function special(s: string, ns: number, ne: number, vs: number, ve: number, value: string, st: FieldScan): Http1ParseError | undefined {
  switch (ne - ns) {
    case 4:
      if (eqLower(s, ns, ne, 'host')) {
        st.hostCount++;
        st.host = value;
      }
      return undefined;
    case 6:
      if (eqLower(s, ns, ne, 'expect')) {
        if (eqLower(s, vs, ve, '100-continue')) st.expectContinue = true;
        else st.expectOther = true;
      }
      return undefined;
    case 7:
      if (eqLower(s, ns, ne, 'upgrade') && ve > vs) st.upgradeHeader = true;
      return undefined;
    case 10:
      if (eqLower(s, ns, ne, 'connection')) return connectionTokens(s, vs, ve, st);
      if (eqLower(s, ns, ne, 'keep-alive')) st.keepAliveTimeout = keepAliveTimeout(value);
      return undefined;
    case 14:
      if (eqLower(s, ns, ne, 'content-length')) return contentLength(s, vs, ve, st);
      return undefined;
    case 17:
      if (eqLower(s, ns, ne, 'transfer-encoding')) {
        st.te = true;
        transferCodings(s, vs, ve, st);
      }
      return undefined;
    default:
      return undefined;
  }
}

/**
 * Content-Length = 1*DIGIT (RFC 9112 §6.2), at most 15 digits so the value
 * stays an exact integer. A comma-separated list or repeated field is accepted
 * only when every member has the same value (RFC 9110 §8.6 allows collapsing).
 */
function contentLength(s: string, i: number, to: number, st: FieldScan): Http1ParseError | undefined {
  for (;;) {
    let c = s.charCodeAt(i);
    while (i < to && (c === SP || c === HT)) c = s.charCodeAt(++i);
    const from = i;
    let v = 0;
    while (i < to && c >= 0x30 && c <= 0x39) {
      v = v * 10 + (c - 0x30);
      c = s.charCodeAt(++i);
    }
    if (i === from || i - from > 15) return parseError('HTTP1_BAD_CONTENT_LENGTH', 400, 'Content-Length is not 1 to 15 decimal digits');
    while (i < to && (c === SP || c === HT)) c = s.charCodeAt(++i);
    if (st.contentLength !== -1 && st.contentLength !== v) return parseError('HTTP1_CONFLICTING_CONTENT_LENGTH', 400, 'Content-Length values differ');
    st.contentLength = v;
    if (i >= to) return undefined;
    if (c !== COMMA) return parseError('HTTP1_BAD_CONTENT_LENGTH', 400, 'Content-Length is not 1 to 15 decimal digits');
    i++;
  }
}

/** Transfer codings usher recognises by name (IANA registry minus `identity`, removed by RFC 9112, and reserved `trailers`). */
function knownCoding(s: string, a: number, b: number): boolean {
  return eqLower(s, a, b, 'gzip') || eqLower(s, a, b, 'x-gzip') || eqLower(s, a, b, 'deflate') || eqLower(s, a, b, 'compress') || eqLower(s, a, b, 'x-compress');
}

/** Walks `#transfer-coding`; parameters and empty elements count as malformed. Repeated fields continue the same list. */
function transferCodings(s: string, i: number, to: number, st: FieldScan): void {
  for (;;) {
    let c = s.charCodeAt(i);
    while (i < to && (c === SP || c === HT)) c = s.charCodeAt(++i);
    const from = i;
    while (i < to && TOKEN[c] === 1) c = s.charCodeAt(++i);
    const end = i;
    while (i < to && (c === SP || c === HT)) c = s.charCodeAt(++i);
    if (end === from || (i < to && c !== COMMA)) {
      st.teMalformed = true;
      return;
    }
    if (eqLower(s, from, end, 'chunked')) {
      st.teChunkedCount++;
      st.teLastChunked = true;
    } else {
      st.teLastChunked = false;
      st.teOther = true;
      if (!knownCoding(s, from, end)) st.teUnknown = true;
    }
    if (i >= to) return;
    i++;
  }
}

/**
 * The `timeout` parameter of a Keep-Alive field (`timeout=5, max=1000`), in
 * whole seconds, or -1. Only a hint for when the backend closes idle
 * connections, so anything unreadable is simply ignored, never an error.
 */
function keepAliveTimeout(value: string): number {
  const at = value.toLowerCase().indexOf('timeout=');
  if (at === -1) return -1;
  let seconds = 0;
  let digits = 0;
  for (let i = at + 8; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) break;
    seconds = seconds * 10 + (c - 0x30);
    if (++digits > 9) return -1;
  }
  return digits === 0 ? -1 : seconds;
}

/**
 * Transfer-Encoding verdict, shared by requests and responses (the response
 * parser turns it into a 502). usher implements exactly one transfer coding,
 * `chunked`, once and alone; in order:
 * - malformed list or `chunked` twice: 400 (RFC 9112 §6.1, §7);
 * - a coding outside the IANA registry: 501 (§6.1: a coding the server does
 *   not understand SHOULD get 501);
 * - `chunked` missing or not last: 400, since the body length cannot be
 *   determined (§6.3 item 4 says MUST for requests);
 * - a registered coding before `chunked` (`gzip, chunked`): 501, as nginx
 *   (1.21.1+) and Envoy do. Forwarding it would hand the backend a coding
 *   usher neither removed nor can vouch for; decoding it is not usher's job.
 * Messages never echo the value (it may be long or hostile).
 */
export function teError(st: FieldScan): Http1ParseError | undefined {
  if (st.teMalformed) return parseError('HTTP1_BAD_TE', 400, 'Transfer-Encoding is not a comma-separated list of coding names (no parameters, quotes or empty elements)');
  if (st.teChunkedCount > 1) return parseError('HTTP1_TE_CHUNKED_TWICE', 400, 'Transfer-Encoding lists chunked more than once (in one field or across fields)');
  if (st.teUnknown) return parseError('HTTP1_UNSUPPORTED_TE', 501, 'Transfer-Encoding names a coding usher does not implement; only "Transfer-Encoding: chunked" is supported');
  if (!st.teLastChunked) return parseError('HTTP1_TE_NOT_CHUNKED_FINAL', 400, 'Transfer-Encoding does not end with chunked, so the body length cannot be determined');
  if (st.teOther) return parseError('HTTP1_UNSUPPORTED_TE', 501, 'Transfer-Encoding applies a coding before chunked; only "Transfer-Encoding: chunked" alone is supported (compress with Content-Encoding instead)');
  return undefined;
}

/**
 * Whether the Upgrade fields of an upgrade request (`raw`: name/value pairs)
 * may be honoured. Upgrade = #protocol, protocol = protocol-name ["/"
 * protocol-version] (RFC 9110 §7.8). False when a list names `h2c` or `h2`
 * (any case, any position, any version, any of several fields) or is not a
 * list of protocols: usher never lets a request switch a backend connection
 * to HTTP/2 (h2c smuggling: the backend would then serve requests usher never
 * routed, checked or logged; RFC 9113 §3.1 deprecated the h2c upgrade).
 * HAProxy strips Upgrade for the same two names; Envoy for `h2c`. Called only
 * for a request that asks for an upgrade, so other requests pay nothing.
 */
export function upgradeAllowed(raw: readonly string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (eqLower(name, 0, name.length, 'upgrade') && !upgradeProtocols(raw[i + 1]!, 0, raw[i + 1]!.length)) return false;
  }
  return true;
}

function upgradeProtocols(s: string, i: number, to: number): boolean {
  while (i < to) {
    let c = s.charCodeAt(i);
    while (i < to && (c === SP || c === HT)) c = s.charCodeAt(++i);
    const from = i;
    while (i < to && TOKEN[c] === 1) c = s.charCodeAt(++i);
    const nameEnd = i;
    if (i > from && i < to && c === SLASH) {
      const versionStart = ++i;
      c = s.charCodeAt(i);
      while (i < to && TOKEN[c] === 1) c = s.charCodeAt(++i);
      if (i === versionStart) return false;
    }
    while (i < to && (c === SP || c === HT)) c = s.charCodeAt(++i);
    if (i < to && c !== COMMA) return false;
    if (eqLower(s, from, nameEnd, 'h2c') || eqLower(s, from, nameEnd, 'h2')) return false;
    i++;
  }
  return true;
}

/** Connection = #connection-option (tokens, case-insensitive); empty elements are skipped (RFC 9110 §5.6.1). */
function connectionTokens(s: string, i: number, to: number, st: FieldScan): Http1ParseError | undefined {
  const list = st.connection ?? (st.connection = []);
  while (i < to) {
    let c = s.charCodeAt(i);
    while (i < to && (c === SP || c === HT)) c = s.charCodeAt(++i);
    const from = i;
    while (i < to && TOKEN[c] === 1) c = s.charCodeAt(++i);
    if (i > from) list.push(s.slice(from, i).toLowerCase());
    while (i < to && (c === SP || c === HT)) c = s.charCodeAt(++i);
    if (i < to && c !== COMMA) return parseError('HTTP1_BAD_CONNECTION', 400, 'Connection is not a list of tokens');
    i++;
  }
  return undefined;
}
