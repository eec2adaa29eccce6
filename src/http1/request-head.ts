/**
 * Strict HTTP/1.1 request-head parser (RFC 9112 §2-§3, §6; RFC 9110 §5, §7.2,
 * §8.6, §10.1.1), rejecting what nginx 1.21+, HAProxy and Envoy reject so no
 * ambiguous message reaches a backend (request smuggling). Pure function over
 * bytes: the session layer calls it on every read until it returns a head or
 * an error. The full list of rejections and their statuses is docs/http1.md.
 *
 * Cost: one memchr-based `indexOf` for CRLFCRLF, one latin1 decode of the
 * head, then a single table-driven pass; allocations are that string, its
 * slices (method, target, names, values), rawHeaders and the result object.
 * See bench/micro/http1-parse.ts.
 */
import { CR, HOST, LF, SP, TARGET, TOKEN, eqLower, latin1 } from './chars.ts';
import { parseError } from './errors.ts';
import { FieldScan, parseFields, teError, upgradeAllowed } from './fields.ts';
import { TOO_BIG, headEnd, skipEmptyLines } from './head-bounds.ts';
import { CHUNKED, NONE, NO_TOKENS, connectionFlags, lengthFraming } from './framing.ts';
import type { HeadLimits, HeadResult, Http1ParseError, RequestHead } from './types.ts';

const scan = new FieldScan();

/**
 * Parses a request head from `buf[start..]`. Returns `undefined` while the
 * head is incomplete (and within `limits.maxHeadBytes`), an `Http1ParseError`
 * when it is invalid, else the head; `headLength` counts from `start`, so the
 * body (or the next pipelined request) begins at `start + headLength`.
 * Empty lines (CRLF) before the request line are skipped and counted in
 * `headLength` (RFC 9112 §2.2).
 */
export function parseRequestHead(buf: Buffer, start: number, limits: HeadLimits): HeadResult<RequestHead> {
  const p = skipEmptyLines(buf, start);
  if (typeof p !== 'number') return p;
  if (p < 0) return buf.length - start > limits.maxHeadBytes ? headTooBig(limits) : undefined;
  const end = headEnd(buf, start, p, limits.maxHeadBytes);
  if (typeof end !== 'number') return end;
  if (end === -1) return early(buf, p, limits);
  if (end === TOO_BIG) return tooBig(buf, start, p, limits);
  const s = latin1(buf, p, end + 2);

  // request-line = method SP request-target SP HTTP-version CRLF (scanned over bytes, sliced from s)
  let i = p;
  let c = buf[i] as number;
  while (TOKEN[c] === 1) c = buf[++i] as number;
  if (c !== SP || i === p) return badLine(s, 'HTTP1_BAD_METHOD', 'method is not a token followed by one space');
  const method = s.slice(0, i - p);
  const ts = ++i;
  c = buf[i] as number;
  while (TARGET[c] === 1) c = buf[++i] as number;
  if (c !== SP || i === ts) return badLine(s, 'HTTP1_BAD_TARGET', 'request target is empty or contains whitespace, control or non-ASCII bytes');
  if (i - ts > limits.maxTargetBytes) return parseError('HTTP1_TARGET_TOO_LONG', 414, `request target longer than ${limits.maxTargetBytes} bytes`);
  const target = s.slice(ts - p, i - p);
  const minor = version(s, i + 1 - p);
  if (minor < 0) {
    if (minor === -505) return parseError('HTTP1_VERSION_NOT_SUPPORTED', 505, 'only HTTP/1.0 and HTTP/1.1 are supported');
    return badLine(s, 'HTTP1_BAD_VERSION', 'malformed HTTP version');
  }
  const formError = checkForm(method, target);
  if (formError !== undefined) return formError;

  const raw: string[] = [];
  scan.reset();
  const fieldError = parseFields(buf, i + 11, end + 2, s, p, raw, scan, limits);
  if (fieldError !== undefined) return fieldError;
  return finish(method, target, minor as 0 | 1, raw, end + 4 - start);
}

/** HTTP-version = "HTTP/" DIGIT "." DIGIT, then CRLF: the minor version (0 or 1), -505 for another HTTP version, -400 otherwise. */
function version(s: string, v: number): number {
  const major = s.charCodeAt(v + 5) - 0x30;
  const minor = s.charCodeAt(v + 7) - 0x30;
  if (!s.startsWith('HTTP/', v) || !(major >= 0 && major <= 9) || s.charCodeAt(v + 6) !== 0x2e || !(minor >= 0 && minor <= 9)) return -400;
  if (s.charCodeAt(v + 8) !== CR || s.charCodeAt(v + 9) !== LF) return -400;
  return major === 1 && minor <= 1 ? minor : -505;
}

/** Target form must match the method (RFC 9112 §3.2): authority-form only for CONNECT, `*` only for OPTIONS. */
function checkForm(method: string, target: string): Http1ParseError | undefined {
  if (method === 'CONNECT') {
    return isAuthority(target) ? undefined : parseError('HTTP1_BAD_TARGET', 400, 'CONNECT needs an authority-form target (host:port)');
  }
  const t0 = target.charCodeAt(0);
  if (t0 === 0x2f) return undefined;
  if (t0 === 0x2a) {
    return target.length === 1 && method === 'OPTIONS' ? undefined : parseError('HTTP1_BAD_TARGET', 400, 'asterisk-form is only allowed for OPTIONS');
  }
  if (eqLower(target, 0, Math.min(7, target.length), 'http://') || eqLower(target, 0, Math.min(8, target.length), 'https://')) return undefined;
  return parseError('HTTP1_BAD_TARGET', 400, 'request target is not origin-form, absolute-form (http/https) or asterisk-form');
}

/** authority-form = uri-host ":" port, port 1-5 digits; host characters from RFC 3986. */
function isAuthority(t: string): boolean {
  const colon = t.lastIndexOf(':');
  if (colon <= 0 || colon === t.length - 1 || t.length - colon - 1 > 5) return false;
  for (let i = colon + 1; i < t.length; i++) {
    const d = t.charCodeAt(i);
    if (d < 0x30 || d > 0x39) return false;
  }
  return isHost(t, colon);
}

function isHost(h: string, to: number): boolean {
  if (to === 0) return false;
  for (let i = 0; i < to; i++) if (HOST[h.charCodeAt(i)] !== 1) return false;
  return true;
}

/** Applies the whole-message rules (Host, Transfer-Encoding, Content-Length, Expect) and builds the result. */
function finish(method: string, target: string, minor: 0 | 1, raw: string[], headLength: number): RequestHead | Http1ParseError {
  const st = scan;
  if (st.hostCount > 1) return parseError('HTTP1_DUPLICATE_HOST', 400, 'more than one Host header');
  if (st.host === undefined) {
    if (minor === 1) return parseError('HTTP1_MISSING_HOST', 400, 'HTTP/1.1 request without Host');
  } else if (!isHost(st.host, st.host.length)) {
    return parseError('HTTP1_BAD_HOST', 400, 'Host is empty or has invalid characters');
  }
  let framing = NONE;
  if (st.te) {
    if (st.contentLength !== -1) return parseError('HTTP1_CL_AND_TE', 400, 'both Content-Length and Transfer-Encoding');
    if (minor === 0) return parseError('HTTP1_TE_HTTP10', 400, 'Transfer-Encoding in an HTTP/1.0 request');
    const e = teError(st);
    if (e !== undefined) return e;
    framing = CHUNKED;
  } else if (st.contentLength > 0) {
    framing = lengthFraming(st.contentLength);
  }
  if (st.expectOther && minor === 1) return parseError('HTTP1_UNSUPPORTED_EXPECT', 417, 'Expect other than 100-continue');
  const tokens = st.connection ?? NO_TOKENS;
  const flags = connectionFlags(tokens);
  return {
    minorVersion: minor,
    rawHeaders: raw,
    framing,
    keepAlive: minor === 1 ? (flags & 1) === 0 : (flags & 3) === 2,
    connectionTokens: tokens,
    headLength,
    method,
    target,
    host: st.host,
    upgrade: minor === 1 && st.upgradeHeader && (flags & 4) !== 0 && upgradeAllowed(raw),
    expectContinue: minor === 1 && st.expectContinue,
  };
}

/**
 * Checks an incomplete request line, so that a TLS handshake on the plain
 * port or a runaway target is refused at once instead of at the header
 * timeout: the method so far must be token bytes, and a target with no line
 * end yet must not already exceed `maxTargetBytes`.
 */
function early(buf: Buffer, p: number, limits: HeadLimits): Http1ParseError | undefined {
  const n = buf.length;
  let i = p;
  while (i < n && TOKEN[buf[i] as number] === 1) i++;
  if (i === n) return undefined;
  if (buf[i] !== SP || i === p) return parseError('HTTP1_BAD_METHOD', 400, 'method is not a token followed by one space');
  if (n - (i + 1) > limits.maxTargetBytes + 10 && buf.indexOf(LF, i) < 0) {
    return parseError('HTTP1_TARGET_TOO_LONG', 414, `request target longer than ${limits.maxTargetBytes} bytes`);
  }
  return undefined;
}

function headTooBig(limits: HeadLimits): Http1ParseError {
  return parseError('HTTP1_HEAD_TOO_LARGE', 431, `request head larger than ${limits.maxHeadBytes} bytes`);
}

/** Over the size limit: 414 if the request line itself never ended within it, else 431. */
function tooBig(buf: Buffer, start: number, p: number, limits: HeadLimits): Http1ParseError {
  const lineEnd = buf.indexOf(LF, p);
  if (lineEnd < 0 || lineEnd + 1 - start > limits.maxHeadBytes) {
    return parseError('HTTP1_TARGET_TOO_LONG', 414, `request line longer than ${limits.maxHeadBytes} bytes`);
  }
  return headTooBig(limits);
}

/** A malformed request line; reports a bare CR/LF in it as such. */
function badLine(s: string, code: string, message: string): Http1ParseError {
  const lf = s.indexOf('\n');
  const cr = s.indexOf('\r');
  if (lf >= 0 && (cr < 0 || lf < cr)) return parseError('HTTP1_BARE_LF', 400, 'bare LF line ending');
  if (cr >= 0 && s.charCodeAt(cr + 1) !== LF) return parseError('HTTP1_BARE_CR', 400, 'bare CR in head');
  return parseError(code, 400, message);
}
