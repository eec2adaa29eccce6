/**
 * Strict HTTP/1.1 response-head parser for upstream responses (RFC 9112 §4,
 * §6.3; RFC 9110 §15). Same field rules as requests (fields.ts); every
 * rejection is an `Http1ParseError` with status 502, since a malformed
 * response must never be relayed. Framing follows RFC 9112 §6.3 in order:
 * HEAD, 1xx, 204, 304 and 2xx-to-CONNECT have no body; Transfer-Encoding with
 * Content-Length is rejected (nginx does the same for upstreams), and so is
 * any Transfer-Encoding other than exactly `chunked` (nginx: "upstream sent
 * unknown Transfer-Encoding"), whatever the status: usher would otherwise
 * relay bytes in a coding the client was never told about; Content-Length
 * frames the body; otherwise it runs until close.
 */
import { CR, LF, SP, VALUE, latin1 } from './chars.ts';
import { asBadResponse, parseError } from './errors.ts';
import { FieldScan, parseFields, teError } from './fields.ts';
import { CHUNKED, NONE, NO_TOKENS, UNTIL_CLOSE, connectionFlags, lengthFraming } from './framing.ts';
import { TOO_BIG, headEnd } from './head-bounds.ts';
import type { BodyFraming, HeadLimits, HeadResult, Http1ParseError, ResponseHead } from './types.ts';

const scan = new FieldScan();

/**
 * Parses a response head from `buf[start..]` for a request made with
 * `requestMethod` (which decides whether a body follows). Returns `undefined`
 * while incomplete, an `Http1ParseError` (status 502) when invalid, else the
 * head. A 1xx other than 101 is returned like any head (framing none); the
 * caller relays or drops it and parses again at `start + headLength`. 101 also
 * reports framing none: the caller switches to tunnelling.
 * A status line without the space before an empty reason (`HTTP/1.1 200\r\n`)
 * is tolerated, as browsers and curl do.
 */
export function parseResponseHead(buf: Buffer, start: number, limits: HeadLimits, requestMethod: string): HeadResult<ResponseHead> {
  const end = headEnd(buf, start, start, limits.maxHeadBytes);
  if (typeof end !== 'number') return asBadResponse(end);
  if (end === -1) return undefined;
  if (end === TOO_BIG) return parseError('HTTP1_HEAD_TOO_LARGE', 502, `response head larger than ${limits.maxHeadBytes} bytes`);
  const s = latin1(buf, start, end + 2);

  // status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF
  const major = s.charCodeAt(5) - 0x30;
  const minor = s.charCodeAt(7) - 0x30;
  if (!s.startsWith('HTTP/') || !(major >= 0 && major <= 9) || s.charCodeAt(6) !== 0x2e || !(minor >= 0 && minor <= 9) || s.charCodeAt(8) !== SP) {
    return bad('HTTP1_BAD_STATUS_LINE', 'malformed status line');
  }
  if (major !== 1 || minor > 1) return parseError('HTTP1_VERSION_NOT_SUPPORTED', 502, 'upstream answered with a version other than HTTP/1.0 or HTTP/1.1');
  const d0 = s.charCodeAt(9) - 0x30;
  const d1 = s.charCodeAt(10) - 0x30;
  const d2 = s.charCodeAt(11) - 0x30;
  if (!(d0 >= 1 && d0 <= 5) || !(d1 >= 0 && d1 <= 9) || !(d2 >= 0 && d2 <= 9)) return bad('HTTP1_BAD_STATUS', 'status code is not 3 digits in 100-599');
  const status = d0 * 100 + d1 * 10 + d2;
  let i = 12;
  let c = s.charCodeAt(i);
  if (c === SP) {
    c = s.charCodeAt(++i);
    while (VALUE[c] === 1) c = s.charCodeAt(++i);
  }
  if (c !== CR || s.charCodeAt(i + 1) !== LF) {
    if (c === LF) return bad('HTTP1_BARE_LF', 'bare LF line ending');
    if (c === CR) return bad('HTTP1_BARE_CR', 'bare CR in head');
    return bad('HTTP1_BAD_STATUS_LINE', 'malformed status line');
  }
  const reason = i > 13 ? s.slice(13, i) : '';

  const raw: string[] = [];
  scan.reset();
  const fieldError = parseFields(buf, start + i + 2, end + 2, s, start, raw, scan, limits);
  if (fieldError !== undefined) return asBadResponse(fieldError);
  const framingOrError = framingOf(status, requestMethod, minor as 0 | 1);
  if (!('kind' in framingOrError)) return framingOrError;
  const tokens = scan.connection ?? NO_TOKENS;
  const flags = connectionFlags(tokens);
  // A 204 or 304 has no body (RFC 9110 §15.3.5, §15.4.5), and must not say how long one is (§8.6, RFC 9112 §6.1,
  // §6.3 rule 1). One that does came from a backend that may send the body anyway: relayed without those fields
  // by the caller, and its connection is not reused, so those bytes are never read as the next response.
  const framedNoBody = (status === 204 || status === 304) && (scan.te || scan.contentLength !== -1);
  return {
    minorVersion: minor as 0 | 1,
    rawHeaders: raw,
    framing: framingOrError,
    keepAlive: framingOrError !== UNTIL_CLOSE && !framedNoBody && (minor === 1 ? (flags & 1) === 0 : (flags & 3) === 2),
    connectionTokens: tokens,
    headLength: end + 4 - start,
    status,
    reason,
    keepAliveTimeoutSeconds: scan.keepAliveTimeout,
  };
}

/**
 * RFC 9112 §6.3, with the framing fields validated even when the status means
 * no body. Item 4 would read `Transfer-Encoding: gzip` (or `chunked, gzip`)
 * until close; usher answers 502 instead, as nginx does: the client would get
 * gzip bytes with nothing saying so (Transfer-Encoding is hop-by-hop and
 * usher writes its own framing), and `gzip, chunked` would lose its gzip the
 * same way.
 */
function framingOf(status: number, method: string, minor: 0 | 1): BodyFraming | Http1ParseError {
  const st = scan;
  if (st.te) {
    if (st.contentLength !== -1) return bad('HTTP1_CL_AND_TE', 'both Content-Length and Transfer-Encoding');
    if (minor === 0) return bad('HTTP1_TE_HTTP10', 'Transfer-Encoding in an HTTP/1.0 response');
    const e = teError(st);
    if (e !== undefined) return asBadResponse(e);
  }
  if (status < 200 || status === 204 || status === 304 || method === 'HEAD' || (method === 'CONNECT' && status < 300)) return NONE;
  if (st.te) return CHUNKED;
  if (st.contentLength !== -1) return lengthFraming(st.contentLength);
  return UNTIL_CLOSE;
}

function bad(code: string, message: string): Http1ParseError {
  return parseError(code, 502, message);
}
