/**
 * Request smuggling and request-framing attacks, end to end: raw request bytes
 * go over a raw socket to a live usher in front of a raw recording backend
 * (test/security/helpers.ts), and each row checks what the client gets, the
 * exact bytes the backend receives, and that no second (smuggled) request
 * ever reaches the backend. The parsing rules and statuses are docs/http1.md;
 * docs/security.md lists the protections these rows prove.
 *
 * Every row, after its expected responses:
 * - if usher keeps the connection, sends `GET /canary` on it and expects 200:
 *   the connection is still in step (a smuggled request would answer it);
 * - if usher closes, checks it really closes with nothing after the last
 *   response, then sends the canary on a fresh connection (usher still serves,
 *   and anything the row made usher forward would reach the backend first);
 * - checks the backend's complete requests equal the row's `forwarded` plus the
 *   canary, byte for byte, its received bytes are exactly those requests, and
 *   the only request lines anywhere in those bytes are theirs.
 *
 * A row whose expected behaviour usher does not have yet carries `todo` (it
 * runs and reports, but does not fail the suite); each is described in
 * docs/security.md.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { simpleYaml, startUsher } from '../helpers/usher.ts';
import { RawClient, requestLinesIn, startRecordingBackend } from './helpers.ts';

/** One response the client must get: status, and `x-usher-error` when usher answers itself. */
interface Expected {
  readonly status: number;
  /** `x-usher-error` value. Absent: a 200 must come from the backend (no such header, body `ok`); other statuses are not checked further. */
  readonly error?: string;
  /** Bytes the client sends once this response has arrived (a body after `100 Continue`, a late pipelined request). */
  readonly thenSend?: string;
}

interface Row {
  readonly name: string;
  /** Bytes the client sends in one write, latin1. */
  readonly send: string;
  readonly responses: readonly Expected[];
  /** Exact requests the backend must receive, in order; empty: nothing reaches it. */
  readonly forwarded: readonly string[];
  /**
   * For a body rejected after its head was streamed: the backend may have
   * received any prefix of this head (on a connection usher then closes), never more.
   */
  readonly partial?: string;
  /** Whether usher closes the connection after the last response (and says so with `Connection: close`). */
  readonly close: boolean;
  /** Keep the client's side open after usher's FIN, so `thenSend` still goes out (a raw attacker does). */
  readonly halfOpen?: boolean;
  readonly todo?: string;
}

const XFF = 'x-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\n';

/** What {@link sameIds} writes for every generated request id. */
const ID = 'x-request-id: ID';

/**
 * The request usher sends upstream: request line, the client's end-to-end
 * headers in order (`Name: value`), the X-Forwarded-* set, the request id
 * (random: compared through {@link sameIds}), then the framing header usher
 * writes itself, then the body.
 */
function upstream(line: string, headers: readonly string[], host: string | undefined, framing = '', body = ''): string {
  return (
    `${line}\r\n${headers.map((h) => `${h}\r\n`).join('')}${XFF}` +
    (host === undefined ? '' : `x-forwarded-host: ${host}\r\n`) +
    `${ID}\r\n` +
    (framing === '' ? '' : `${framing}\r\n`) +
    `\r\n${body}`
  );
}

/** Bytes as received, with each generated request id (even one cut short) written as {@link ID}. */
function sameIds(received: string): string {
  return received.replace(/x-request-id: [0-9a-f]{1,32}/g, ID);
}

const CANARY = 'GET /canary HTTP/1.1\r\nHost: canary\r\n\r\n';
const CANARY_UPSTREAM = upstream('GET /canary HTTP/1.1', ['Host: canary'], 'canary');
const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
const CHUNKED_HELLO = '5\r\nhello\r\n0\r\n\r\n';

/** A POST with the given header lines and raw body (Host: x first). */
function post(headers: string, body: string, version = 'HTTP/1.1'): string {
  return `POST / ${version}\r\nHost: x\r\n${headers}\r\n${body}`;
}

/** A rejected request: one response from usher itself, connection closed, nothing forwarded. */
function rejected(name: string, send: string, status: number, code: string, extra: Partial<Row> = {}): Row {
  return { name, send, responses: [{ status, error: code }], forwarded: [], close: true, ...extra };
}

/** usher rejects a chunked body after streaming its head: 400 `bad_request`, the upstream connection is dropped. */
function badChunkedBody(name: string, body: string): Row {
  return {
    name,
    send: post('Transfer-Encoding: chunked\r\n', `${body}${SMUGGLED}`),
    responses: [{ status: 400, error: 'bad_request' }],
    forwarded: [],
    partial: upstream('POST / HTTP/1.1', ['Host: x'], 'x', 'transfer-encoding: chunked'),
    close: true,
  };
}

/** A chunked POST usher accepts: the backend gets `transfer-encoding: chunked` written by usher and the body unchanged. */
function acceptedChunked(name: string, teLines: string, extra: Partial<Row> = {}): Row {
  return {
    name,
    send: post(teLines, CHUNKED_HELLO),
    responses: [{ status: 200 }],
    forwarded: [upstream('POST / HTTP/1.1', ['Host: x'], 'x', 'transfer-encoding: chunked', CHUNKED_HELLO)],
    close: false,
    ...extra,
  };
}

const LONG_TARGET = `/${'a'.repeat(8 * 1024)}`; // 8193 bytes, one over maxTargetBytes
const BIG_HEADERS = Array.from({ length: 5 }, (_, i) => `X-Pad-${i}: ${'p'.repeat(7000)}\r\n`).join(''); // ~35 KB > 32 KiB
const MANY_HEADERS = Array.from({ length: 100 }, (_, i) => `X-H${i}: v\r\n`).join(''); // + Host = 101 > 100

const rows: readonly Row[] = [
  // ---- Content-Length and Transfer-Encoding together or in conflict ---------------------------
  rejected('CL then TE', post('Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\n${SMUGGLED}`), 400, 'http1_cl_and_te'),
  rejected('TE then CL', post('Transfer-Encoding: chunked\r\nContent-Length: 40\r\n', `0\r\n\r\n${SMUGGLED}`), 400, 'http1_cl_and_te'),
  rejected('duplicate Content-Length with different values', post('Content-Length: 5\r\nContent-Length: 6\r\n', `hello!${SMUGGLED}`), 400, 'http1_conflicting_content_length'),
  rejected('comma-joined Content-Length with different values', post('Content-Length: 5, 6\r\n', `hello!${SMUGGLED}`), 400, 'http1_conflicting_content_length'),
  rejected('Content-Length with a sign', post('Content-Length: +5\r\n', `hello${SMUGGLED}`), 400, 'http1_bad_content_length'),
  rejected('Content-Length in hex', post('Content-Length: 0x5\r\n', `hello${SMUGGLED}`), 400, 'http1_bad_content_length'),
  rejected('Content-Length list with an empty element', post('Content-Length: 5,\r\n', `hello${SMUGGLED}`), 400, 'http1_bad_content_length'),
  {
    name: 'identical duplicate Content-Length is accepted as one length',
    send: post('Content-Length: 5\r\nContent-Length: 5\r\n', 'hello'),
    responses: [{ status: 200 }],
    forwarded: [upstream('POST / HTTP/1.1', ['Host: x'], 'x', 'content-length: 5', 'hello')],
    close: false,
  },
  {
    name: 'comma-joined identical Content-Length is accepted as one length',
    send: post('Content-Length: 5, 5\r\n', 'hello'),
    responses: [{ status: 200 }],
    forwarded: [upstream('POST / HTTP/1.1', ['Host: x'], 'x', 'content-length: 5', 'hello')],
    close: false,
  },

  // ---- Transfer-Encoding values ---------------------------------------------------------------
  rejected('TE chunked not final (chunked, gzip)', post('Transfer-Encoding: chunked, gzip\r\n', `${CHUNKED_HELLO}${SMUGGLED}`), 400, 'http1_te_not_chunked_final'),
  rejected('TE without chunked (gzip)', post('Transfer-Encoding: gzip\r\n', `${CHUNKED_HELLO}${SMUGGLED}`), 400, 'http1_te_not_chunked_final'),
  acceptedChunked('TE "Chunked" (case) is chunked, normalised upstream', 'Transfer-Encoding: Chunked\r\n'),
  acceptedChunked('TE "chunked " (trailing space) is chunked, normalised upstream', 'Transfer-Encoding: chunked \r\n'),
  acceptedChunked('TE " chunked" (extra leading space) is chunked, normalised upstream', 'Transfer-Encoding:  chunked\r\n'),
  acceptedChunked('TE "\\tchunked" (leading tab) is chunked, normalised upstream', 'Transfer-Encoding:\tchunked\r\n'),
  rejected('TE "chunked, identity"', post('Transfer-Encoding: chunked, identity\r\n', `${CHUNKED_HELLO}${SMUGGLED}`), 501, 'http1_unsupported_te'),
  rejected('TE "identity, chunked"', post('Transfer-Encoding: identity, chunked\r\n', `${CHUNKED_HELLO}${SMUGGLED}`), 501, 'http1_unsupported_te'),
  rejected('two TE headers, both chunked', post('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', `${CHUNKED_HELLO}${SMUGGLED}`), 400, 'http1_te_chunked_twice'),
  rejected('two TE headers, chunked then identity', post('Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n', `${CHUNKED_HELLO}${SMUGGLED}`), 501, 'http1_unsupported_te'),
  // Only "chunked" alone is accepted: a coding before it is 501, as nginx 1.21.1+ and Envoy answer (RFC 9112 §6.1).
  rejected('two TE headers, gzip then chunked', post('Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n', `${CHUNKED_HELLO}${SMUGGLED}`), 501, 'http1_unsupported_te'),
  rejected('TE "gzip, chunked"', post('Transfer-Encoding: gzip, chunked\r\n', `${CHUNKED_HELLO}${SMUGGLED}`), 501, 'http1_unsupported_te'),
  rejected('TE "deflate, chunked"', post('Transfer-Encoding: deflate, chunked\r\n', `${CHUNKED_HELLO}${SMUGGLED}`), 501, 'http1_unsupported_te'),
  rejected('TE "GZIP,Chunked" (case, no space)', post('Transfer-Encoding: GZIP,Chunked\r\n', `${CHUNKED_HELLO}${SMUGGLED}`), 501, 'http1_unsupported_te'),
  rejected('TE "identity"', post('Transfer-Encoding: identity\r\n', `hello${SMUGGLED}`), 501, 'http1_unsupported_te'),
  rejected('TE "chunked, chunked" (one field)', post('Transfer-Encoding: chunked, chunked\r\n', `${CHUNKED_HELLO}${SMUGGLED}`), 400, 'http1_te_chunked_twice'),
  rejected('TE "chunked ; x=1" (parameter after whitespace)', post('Transfer-Encoding: chunked ; x=1\r\n', `${CHUNKED_HELLO}${SMUGGLED}`), 400, 'http1_bad_te'),
  rejected('two TE headers, chunked then empty', post('Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n', `${CHUNKED_HELLO}${SMUGGLED}`), 400, 'http1_bad_te'),
  rejected('TE "gzip" on a request that also has an underscore Content_Length', post('Transfer-Encoding: gzip\r\nContent_Length: 5\r\n', `hello${SMUGGLED}`), 400, 'http1_te_not_chunked_final'),
  rejected('TE "x-chunked"', post('Transfer-Encoding: x-chunked\r\n', `${CHUNKED_HELLO}${SMUGGLED}`), 501, 'http1_unsupported_te'),
  rejected('TE "chunked;foo" (parameter)', post('Transfer-Encoding: chunked;foo\r\n', `${CHUNKED_HELLO}${SMUGGLED}`), 400, 'http1_bad_te'),
  rejected('TE quoted "\\"chunked\\""', post('Transfer-Encoding: "chunked"\r\n', `${CHUNKED_HELLO}${SMUGGLED}`), 400, 'http1_bad_te'),
  rejected('TE "chunked," (empty element)', post('Transfer-Encoding: chunked,\r\n', `${CHUNKED_HELLO}${SMUGGLED}`), 400, 'http1_bad_te'),
  rejected('TE on HTTP/1.0', post('Transfer-Encoding: chunked\r\n', `${CHUNKED_HELLO}${SMUGGLED}`, 'HTTP/1.0'), 400, 'http1_te_http10'),

  // ---- Underscore look-alikes of special fields (CGI/WSGI/PHP/Rack read `X_A_B` as X-A-B): dropped, never forwarded ----
  // A folding backend would see chunked framing here and read the smuggled request out of the body.
  {
    name: 'Transfer_Encoding: chunked next to Content-Length: the backend gets only the length usher framed',
    send: post(`Transfer_Encoding: chunked\r\nContent-Length: ${`0\r\n\r\n${SMUGGLED}`.length}\r\n`, `0\r\n\r\n${SMUGGLED}`),
    responses: [{ status: 200 }],
    forwarded: [upstream('POST / HTTP/1.1', ['Host: x'], 'x', `content-length: ${`0\r\n\r\n${SMUGGLED}`.length}`, `0\r\n\r\n${SMUGGLED}`)],
    close: false,
  },
  {
    name: 'Content_Length next to Transfer-Encoding: chunked: the backend gets only the chunked framing',
    send: post('Content_Length: 40\r\nTransfer-Encoding: chunked\r\n', CHUNKED_HELLO),
    responses: [{ status: 200 }],
    forwarded: [upstream('POST / HTTP/1.1', ['Host: x'], 'x', 'transfer-encoding: chunked', CHUNKED_HELLO)],
    close: false,
  },
  {
    name: 'CONTENT_LENGTH (upper case) on a GET is dropped',
    send: `GET / HTTP/1.1\r\nHost: x\r\nCONTENT_LENGTH: 40\r\n\r\n`,
    responses: [{ status: 200 }],
    forwarded: [upstream('GET / HTTP/1.1', ['Host: x'], 'x')],
    close: false,
  },
  {
    name: 'forwarding look-alikes (X_Forwarded_For/_Proto/_Host, X_Real_IP, X_Request_Id) are dropped; usher writes its own',
    send: `GET / HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 6.6.6.6\r\nx_forwarded_proto: https\r\nX_FORWARDED_HOST: evil\r\nX_Real_IP: 6.6.6.6\r\nX_Request_Id: spoofed\r\nx-forwarded_for: 7.7.7.7\r\n\r\n`,
    responses: [{ status: 200 }],
    forwarded: [upstream('GET / HTTP/1.1', ['Host: x'], 'x')],
    close: false,
  },
  {
    name: 'hop-by-hop look-alikes (Keep_Alive, Proxy_Connection, Proxy_Authorization, HTTP2_Settings) are dropped',
    send: `GET / HTTP/1.1\r\nHost: x\r\nKeep_Alive: timeout=5\r\nProxy_Connection: close\r\nProxy_Authorization: Basic eDp5\r\nProxy_Authenticate: Basic\r\nHTTP2_Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`,
    responses: [{ status: 200 }],
    forwarded: [upstream('GET / HTTP/1.1', ['Host: x'], 'x')],
    close: false,
  },
  {
    name: 'other names with underscores pass unchanged, in order (X_Api_Key, tenant_id, X_Forwarded_Port)',
    send: `GET / HTTP/1.1\r\nHost: x\r\nX_Api_Key: k\r\ntenant_id: 42\r\nX_Forwarded_Port: 443\r\n\r\n`,
    responses: [{ status: 200 }],
    forwarded: [upstream('GET / HTTP/1.1', ['Host: x', 'X_Api_Key: k', 'tenant_id: 42', 'X_Forwarded_Port: 443'], 'x')],
    close: false,
  },

  // ---- Upgrade: h2c is never an upgrade (h2c smuggling): proxied as a plain request, without Upgrade or HTTP2-Settings ----
  {
    name: 'Upgrade: h2c with HTTP2-Settings (curl --http2 style) goes up as a plain GET',
    send: 'GET /h2c HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
    responses: [{ status: 200 }],
    forwarded: [upstream('GET /h2c HTTP/1.1', ['Host: x'], 'x')],
    close: false,
  },
  {
    name: 'Upgrade: H2C (case), listed after websocket, goes up as a plain GET',
    send: 'GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, upgrade\r\nUpgrade: websocket, H2C\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    responses: [{ status: 200 }],
    forwarded: [upstream('GET / HTTP/1.1', ['Host: x', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='], 'x')],
    close: false,
  },
  {
    name: 'Upgrade: h2c in a second Upgrade field goes up as a plain GET',
    send: 'GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\nUpgrade: h2c\r\n\r\n',
    responses: [{ status: 200 }],
    forwarded: [upstream('GET / HTTP/1.1', ['Host: x'], 'x')],
    close: false,
  },
  {
    name: 'Upgrade: h2c on a POST: the body goes up with the plain request',
    send: post('Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: 5\r\n', 'hello'),
    responses: [{ status: 200 }],
    forwarded: [upstream('POST / HTTP/1.1', ['Host: x'], 'x', 'content-length: 5', 'hello')],
    close: false,
  },
  {
    name: 'HTTP2-Settings without an upgrade is dropped',
    send: 'GET / HTTP/1.1\r\nHost: x\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
    responses: [{ status: 200 }],
    forwarded: [upstream('GET / HTTP/1.1', ['Host: x'], 'x')],
    close: false,
  },

  // ---- Chunked body framing (the head is valid and already streamed) --------------------------
  badChunkedBody('chunk size "g" (not hex)', 'g\r\nhello\r\n0\r\n\r\n'),
  badChunkedBody('chunk size "-1"', '-1\r\nhello\r\n0\r\n\r\n'),
  badChunkedBody('chunk size "0x5"', '0x5\r\nhello\r\n0\r\n\r\n'),
  badChunkedBody('chunk size of 17 hex digits', '00000000000000005\r\nhello\r\n0\r\n\r\n'),
  badChunkedBody('chunk size over 2^53-1', 'ffffffffffffffff\r\nhello\r\n0\r\n\r\n'),
  badChunkedBody('chunk size with a leading space', ' 5\r\nhello\r\n0\r\n\r\n'),
  badChunkedBody('chunk extension without a name ("5;")', '5;\r\nhello\r\n0\r\n\r\n'),
  badChunkedBody('chunk extension after whitespace without ";" ("5 x")', '5 x\r\nhello\r\n0\r\n\r\n'),
  badChunkedBody('chunk extension value with a space ("5;a=b c")', '5;a=b c\r\nhello\r\n0\r\n\r\n'),
  badChunkedBody('chunk data longer than its size', '3\r\nhello\r\n0\r\n\r\n'),
  badChunkedBody('chunk size line ending in bare LF', '5\nhello\r\n0\r\n\r\n'),
  {
    name: 'Content-Length in the trailer section of a chunked request',
    send: post('Transfer-Encoding: chunked\r\n', `5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n`),
    responses: [{ status: 400 }],
    forwarded: [],
    partial: upstream('POST / HTTP/1.1', ['Host: x'], 'x', 'transfer-encoding: chunked'),
    close: true,
  },

  // ---- Line endings and field syntax ----------------------------------------------------------
  rejected('bare LF line endings throughout', `GET / HTTP/1.1\nHost: x\n\n${SMUGGLED}`, 400, 'http1_bare_lf'),
  rejected('bare LF ending one header line', `GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n${SMUGGLED}`, 400, 'http1_bare_lf'),
  rejected('bare LF ending the request line', `GET / HTTP/1.1\nHost: x\r\n\r\n${SMUGGLED}`, 400, 'http1_bare_lf'),
  rejected('bare CR ending the request line', `GET / HTTP/1.1\rHost: x\r\n\r\n${SMUGGLED}`, 400, 'http1_bare_cr'),
  rejected('bare CR inside a header value', `GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n${SMUGGLED}`, 400, 'http1_bare_cr'),
  rejected('obs-fold (continuation line)', `GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n${SMUGGLED}`, 400, 'http1_obs_fold'),
  rejected('obs-fold hiding Transfer-Encoding', post('X-A: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n', `hello${SMUGGLED}`), 400, 'http1_obs_fold'),
  rejected('space before the colon', post('Transfer-Encoding : chunked\r\nContent-Length: 5\r\n', `hello${SMUGGLED}`), 400, 'http1_space_before_colon'),
  rejected('tab before the colon', post('Content-Length\t: 5\r\n', `hello${SMUGGLED}`), 400, 'http1_space_before_colon'),
  rejected('NUL in a header value', `GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n${SMUGGLED}`, 400, 'http1_bad_field_value'),
  rejected('other control (0x01) in a header value', `GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n${SMUGGLED}`, 400, 'http1_bad_field_value'),
  rejected('CR in a header value (before CRLF)', `GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\r\n\r\n${SMUGGLED}`, 400, 'http1_bare_cr'),
  rejected('LF in a header value', `GET / HTTP/1.1\r\nHost: x\r\nX-A: a\nb\r\n\r\n${SMUGGLED}`, 400, 'http1_bare_lf'),
  rejected('invalid header name character "@"', `GET / HTTP/1.1\r\nHost: x\r\nX@A: b\r\n\r\n${SMUGGLED}`, 400, 'http1_bad_field_name'),
  rejected('invalid header name character \'"\'', `GET / HTTP/1.1\r\nHost: x\r\nX"A: b\r\n\r\n${SMUGGLED}`, 400, 'http1_bad_field_name'),
  rejected('non-ASCII byte in a header name', `GET / HTTP/1.1\r\nHost: x\r\nX\xe9: b\r\n\r\n${SMUGGLED}`, 400, 'http1_bad_field_name'),
  rejected('header line without a colon', `GET / HTTP/1.1\r\nHost: x\r\nX-Ab\r\n\r\n${SMUGGLED}`, 400, 'http1_bad_field_name'),
  rejected('empty header name', `GET / HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n${SMUGGLED}`, 400, 'http1_empty_field_name'),

  // ---- Host ------------------------------------------------------------------------------------
  rejected('HTTP/1.1 without Host', `GET / HTTP/1.1\r\nX-A: b\r\n\r\n${SMUGGLED}`, 400, 'http1_missing_host'),
  rejected('duplicate Host (different)', `GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n${SMUGGLED}`, 400, 'http1_duplicate_host'),
  rejected('duplicate Host (identical)', `GET / HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n${SMUGGLED}`, 400, 'http1_duplicate_host'),
  rejected('Host with a space inside', `GET / HTTP/1.1\r\nHost: x y\r\n\r\n${SMUGGLED}`, 400, 'http1_bad_host'),
  rejected('empty Host', `GET / HTTP/1.1\r\nHost:\r\n\r\n${SMUGGLED}`, 400, 'http1_bad_host'),
  // src/proxy/request-policy.ts: the route phase refuses these; the request was fully read, so the connection stays usable.
  {
    name: 'absolute-form target whose host disagrees with Host',
    send: 'GET http://other.example/admin HTTP/1.1\r\nHost: x\r\n\r\n',
    responses: [{ status: 400, error: 'host_mismatch' }],
    forwarded: [],
    close: false,
  },
  {
    name: 'absolute-form target to a host no route names (catch-all route only)',
    send: 'GET http://evil.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n',
    responses: [{ status: 421, error: 'misdirected_request' }],
    forwarded: [],
    close: false,
  },
  {
    name: 'CONNECT (catch-all route only)',
    send: 'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n',
    responses: [{ status: 405, error: 'connect_not_allowed' }],
    forwarded: [],
    close: false,
  },

  // ---- Request line -----------------------------------------------------------------------------
  rejected('method with a non-token byte ("GE@T")', `GE@T / HTTP/1.1\r\nHost: x\r\n\r\n${SMUGGLED}`, 400, 'http1_bad_method'),
  rejected('empty method', ` / HTTP/1.1\r\nHost: x\r\n\r\n${SMUGGLED}`, 400, 'http1_bad_method'),
  rejected('tab after the method', `GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n${SMUGGLED}`, 400, 'http1_bad_method'),
  rejected('two spaces after the method', `GET  / HTTP/1.1\r\nHost: x\r\n\r\n${SMUGGLED}`, 400, 'http1_bad_target'),
  rejected('TLS ClientHello on the plain port', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03', 400, 'http1_bad_method'),
  rejected('target not origin-form ("foo")', `GET foo HTTP/1.1\r\nHost: x\r\n\r\n${SMUGGLED}`, 400, 'http1_bad_target'),
  rejected('target with a space ("/a b")', `GET /a b HTTP/1.1\r\nHost: x\r\n\r\n${SMUGGLED}`, 400, 'http1_bad_version'),
  rejected('target with DEL', `GET /a\x7f HTTP/1.1\r\nHost: x\r\n\r\n${SMUGGLED}`, 400, 'http1_bad_target'),
  rejected('target with a non-ASCII byte', `GET /caf\xe9 HTTP/1.1\r\nHost: x\r\n\r\n${SMUGGLED}`, 400, 'http1_bad_target'),
  rejected('asterisk-form with GET', `GET * HTTP/1.1\r\nHost: x\r\n\r\n${SMUGGLED}`, 400, 'http1_bad_target'),
  rejected('absolute-form with another scheme (ftp)', `GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n${SMUGGLED}`, 400, 'http1_bad_target'),
  rejected('authority-form with GET', `GET x:80 HTTP/1.1\r\nHost: x\r\n\r\n${SMUGGLED}`, 400, 'http1_bad_target'),
  rejected('HTTP/2.0 version', `GET / HTTP/2.0\r\nHost: x\r\n\r\n${SMUGGLED}`, 505, 'http1_version_not_supported'),
  rejected('lowercase version ("http/1.1")', `GET / http/1.1\r\nHost: x\r\n\r\n${SMUGGLED}`, 400, 'http1_bad_version'),
  rejected('request target over 8 KiB', `GET ${LONG_TARGET} HTTP/1.1\r\nHost: x\r\n\r\n${SMUGGLED}`, 414, 'http1_target_too_long'),
  rejected('request head over 32 KiB', `GET / HTTP/1.1\r\nHost: x\r\n${BIG_HEADERS}\r\n${SMUGGLED}`, 431, 'http1_head_too_large'),
  rejected('more than 100 header fields', `GET / HTTP/1.1\r\nHost: x\r\n${MANY_HEADERS}\r\n${SMUGGLED}`, 431, 'http1_too_many_headers'),

  // ---- Expect -----------------------------------------------------------------------------------
  {
    name: 'Expect: 100-continue, body sent after the 100',
    send: 'POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n',
    responses: [{ status: 100, thenSend: 'hello' }, { status: 200 }],
    forwarded: [upstream('POST / HTTP/1.1', ['Host: x', 'Expect: 100-continue'], 'x', 'content-length: 5', 'hello')],
    close: false,
  },
  {
    name: 'Expect: 100-continue, body sent without waiting',
    send: 'POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello',
    responses: [{ status: 100 }, { status: 200 }],
    forwarded: [upstream('POST / HTTP/1.1', ['Host: x', 'Expect: 100-continue'], 'x', 'content-length: 5', 'hello')],
    close: false,
  },
  rejected('Expect: something-else', post('Expect: something-else\r\nContent-Length: 5\r\n', `hello${SMUGGLED}`), 417, 'http1_unsupported_expect'),

  // ---- Pipelining after an error ---------------------------------------------------------------
  {
    name: 'valid, then conflicting Content-Length, then a pipelined request: only the first is forwarded',
    send: `GET /first HTTP/1.1\r\nHost: x\r\n\r\n${post('Content-Length: 1\r\nContent-Length: 2\r\n', 'xy')}${SMUGGLED}`,
    responses: [{ status: 200 }, { status: 400, error: 'http1_conflicting_content_length' }],
    forwarded: [upstream('GET /first HTTP/1.1', ['Host: x'], 'x')],
    close: true,
  },
  {
    name: 'a request arriving after the 400 for a malformed head is never forwarded',
    send: post('Content-Length: 1\r\nContent-Length: 2\r\n', ''),
    responses: [{ status: 400, error: 'http1_conflicting_content_length', thenSend: SMUGGLED }],
    forwarded: [],
    close: true,
    halfOpen: true,
  },
  {
    name: 'a request arriving after the 400 for a bad chunked body is never forwarded',
    send: post('Transfer-Encoding: chunked\r\n', 'zz\r\n'),
    responses: [{ status: 400, error: 'bad_request', thenSend: SMUGGLED }],
    forwarded: [],
    partial: upstream('POST / HTTP/1.1', ['Host: x'], 'x', 'transfer-encoding: chunked'),
    close: true,
    halfOpen: true,
  },
  {
    name: 'a request arriving after a Connection: close response is never forwarded',
    send: 'GET /first HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    responses: [{ status: 200, thenSend: SMUGGLED }],
    forwarded: [upstream('GET /first HTTP/1.1', ['Host: x'], 'x')],
    close: true,
    halfOpen: true,
  },
];

for (const row of rows) {
  test(`request framing: ${row.name}`, row.todo === undefined ? {} : { todo: row.todo }, async (t) => {
    const backend = await startRecordingBackend();
    const usher = await startUsher(simpleYaml([backend.address]));
    const port = usher.address('web').port;
    const clients: RawClient[] = [];
    t.after(async () => {
      for (const c of clients) c.destroy();
      await usher.stop({ timeoutMs: 500 });
      await backend.close();
    });
    const client = await RawClient.connect(port, row.halfOpen);
    clients.push(client);
    client.write(row.send);

    let last: { headers: Readonly<Record<string, string>> } | undefined;
    for (const [i, expected] of row.responses.entries()) {
      const res = await client.readResponse();
      assert.ok(res, `response ${i}: expected ${expected.status}, the connection closed; received ${JSON.stringify(client.data)}`);
      assert.equal(res.status, expected.status, `response ${i} status; received ${JSON.stringify(client.data)}`);
      if (expected.error !== undefined) assert.equal(res.headers['x-usher-error'], expected.error, `response ${i} x-usher-error`);
      else if (expected.status === 200) {
        assert.equal(res.headers['x-usher-error'], undefined, `response ${i} comes from the backend`);
        assert.equal(res.body, 'ok');
      }
      if (expected.thenSend !== undefined) client.write(expected.thenSend);
      last = res;
    }
    const closes = row.close;
    assert.equal(/(^|,)\s*close\s*(,|$)/i.test(last?.headers['connection'] ?? ''), closes, 'Connection: close on the last response');

    let canaryClient = client;
    if (closes) {
      await client.waitClosed();
      assert.equal(client.unread, '', 'nothing after the last response');
      canaryClient = await RawClient.connect(port);
      clients.push(canaryClient);
    }
    canaryClient.write(CANARY);
    const canary = await canaryClient.readResponse();
    assert.equal(canary?.status, 200, `canary; received ${JSON.stringify(canaryClient.data)}`);
    assert.equal(canary.body, 'ok');
    assert.equal(canaryClient.unread, '', 'nothing after the canary response');

    const expected = [...row.forwarded, CANARY_UPSTREAM];
    assert.deepEqual(backend.requests.map(sameIds), expected, 'the backend got exactly the expected requests');
    const received = sameIds(backend.allReceived());
    if (row.partial === undefined) {
      assert.equal(received, expected.join(''), 'the backend received no other byte');
    } else {
      // The head of the rejected body may have gone out, on a connection usher then closed; nothing after it.
      const rest = received.replace(CANARY_UPSTREAM, '');
      assert.ok(row.partial.startsWith(rest.slice(row.forwarded.join('').length)), `backend bytes beyond the head: ${JSON.stringify(rest)}`);
    }
    const allowedLines = expected.flatMap(requestLinesIn);
    if (row.partial !== undefined && received.includes(row.partial.split('\r\n')[0]!)) allowedLines.unshift(...requestLinesIn(row.partial));
    assert.deepEqual(backend.requestLines().sort(), allowedLines.sort(), 'no other request line reached the backend');
  });
}
