/**
 * Table-driven tests of the strict request-head parser: every row is a raw
 * head and either the fields it must produce or the exact error code and
 * status. docs/http1.md lists the same cases.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRequestHead } from '../../src/http1/request-head.ts';
import { defaultHeadLimits, type HeadLimits, type RequestHead } from '../../src/http1/types.ts';
import { isParseError } from '../../src/http1/errors.ts';

type Expect = { readonly ok: Partial<RequestHead> } | { readonly code: string; readonly status: number };
interface Row {
  readonly name: string;
  readonly raw: string;
  readonly expect: Expect;
  readonly limits?: HeadLimits;
}

const H = 'Host: a\r\n';
const small: HeadLimits = { maxHeadBytes: 200, maxHeaders: 3, maxTargetBytes: 16 };
const err = (code: string, status = 400): Expect => ({ code, status });
const ok = (fields: Partial<RequestHead>): Expect => ({ ok: fields });
const get = (headers: string, v = '1.1'): string => `GET / HTTP/${v}\r\n${headers}\r\n`;
const post = (headers: string, v = '1.1'): string => `POST /u HTTP/${v}\r\n${headers}\r\n`;

const rows: readonly Row[] = [
  // request line
  { name: 'simple GET', raw: get(H), expect: ok({ method: 'GET', target: '/', minorVersion: 1, host: 'a', rawHeaders: ['Host', 'a'], framing: { kind: 'none' }, keepAlive: true, headLength: 27 }) },
  { name: 'one leading CRLF skipped and counted', raw: `\r\n${get(H)}`, expect: ok({ method: 'GET', headLength: 29 }) },
  { name: 'two leading CRLFs skipped', raw: `\r\n\r\n${get(H)}`, expect: ok({ headLength: 31 }) },
  { name: 'leading bare LF', raw: `\n${get(H)}`, expect: err('HTTP1_BARE_LF') },
  { name: 'leading bare CR', raw: `\rX${get(H)}`, expect: err('HTTP1_BARE_CR') },
  { name: 'lowercase method is a valid token', raw: `get / HTTP/1.1\r\n${H}\r\n`, expect: ok({ method: 'get' }) },
  { name: 'extension method token', raw: `M-SEARCH * HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_TARGET') },
  { name: 'method with @', raw: `GE@T / HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_METHOD') },
  { name: 'method with (', raw: `GET( / HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_METHOD') },
  { name: 'empty method', raw: ` / HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_METHOD') },
  { name: 'tab after method', raw: `GET\t/ HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_METHOD') },
  { name: 'two spaces after method', raw: `GET  / HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_TARGET') },
  { name: 'two spaces before version', raw: `GET /  HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_VERSION') },
  { name: 'space after version', raw: `GET / HTTP/1.1 \r\n${H}\r\n`, expect: err('HTTP1_BAD_VERSION') },
  { name: 'missing version', raw: `GET /\r\n${H}\r\n`, expect: err('HTTP1_BAD_TARGET') },
  { name: 'HTTP/1.0 without Host', raw: 'GET / HTTP/1.0\r\n\r\n', expect: ok({ minorVersion: 0, host: undefined, keepAlive: false, rawHeaders: [] }) },
  { name: 'HTTP/2.0', raw: get(H, '2.0'), expect: err('HTTP1_VERSION_NOT_SUPPORTED', 505) },
  { name: 'HTTP/1.2', raw: get(H, '1.2'), expect: err('HTTP1_VERSION_NOT_SUPPORTED', 505) },
  { name: 'HTTP/0.9', raw: get(H, '0.9'), expect: err('HTTP1_VERSION_NOT_SUPPORTED', 505) },
  { name: 'lowercase http/1.1', raw: `GET / http/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_VERSION') },
  { name: 'HTTP/1.10', raw: get(H, '1.10'), expect: err('HTTP1_BAD_VERSION') },
  { name: 'HTTP/1', raw: get(H, '1'), expect: err('HTTP1_BAD_VERSION') },
  { name: 'garbage version', raw: `GET / FOO/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_VERSION') },
  { name: 'bare LF after request line', raw: `GET / HTTP/1.1\n${H}\r\n`, expect: err('HTTP1_BARE_LF') },
  { name: 'bare CR in request line', raw: `GET /\r HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BARE_CR') },
  // request target
  { name: 'target with control char', raw: `GET /a\x01b HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_TARGET') },
  { name: 'target with NUL', raw: `GET /a\x00 HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_TARGET') },
  { name: 'target with DEL', raw: `GET /a\x7f HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_TARGET') },
  { name: 'target with non-ASCII', raw: `GET /\xe9t\xe9 HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_TARGET') },
  { name: 'target with tab', raw: `GET /a\tb HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_TARGET') },
  { name: 'target with space', raw: `GET /a b HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_VERSION') },
  { name: 'target one over the limit', raw: `GET /${'a'.repeat(16)} HTTP/1.1\r\n${H}\r\n`, limits: small, expect: err('HTTP1_TARGET_TOO_LONG', 414) },
  { name: 'target exactly at the limit', raw: `GET /${'a'.repeat(15)} HTTP/1.1\r\n${H}\r\n`, limits: small, expect: ok({ target: `/${'a'.repeat(15)}` }) },
  { name: 'target with query and percent', raw: `GET /p%20q?x=1&y=%2F HTTP/1.1\r\n${H}\r\n`, expect: ok({ target: '/p%20q?x=1&y=%2F' }) },
  { name: 'relative target', raw: `GET foo HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_TARGET') },
  { name: 'asterisk for OPTIONS', raw: `OPTIONS * HTTP/1.1\r\n${H}\r\n`, expect: ok({ method: 'OPTIONS', target: '*' }) },
  { name: 'asterisk for GET', raw: `GET * HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_TARGET') },
  { name: 'asterisk followed by path', raw: `OPTIONS *x HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_TARGET') },
  { name: 'CONNECT authority-form', raw: `CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n`, expect: ok({ method: 'CONNECT', target: 'example.com:443' }) },
  { name: 'CONNECT without port', raw: `CONNECT example.com HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_TARGET') },
  { name: 'CONNECT with origin-form', raw: `CONNECT / HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_TARGET') },
  { name: 'CONNECT with bad port', raw: `CONNECT a:44x HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_TARGET') },
  { name: 'authority-form for GET', raw: `GET example.com:443 HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_TARGET') },
  { name: 'absolute-form http', raw: `GET http://a/b?c HTTP/1.1\r\n${H}\r\n`, expect: ok({ target: 'http://a/b?c' }) },
  { name: 'absolute-form HTTPS uppercase scheme', raw: `GET HTTPS://a/ HTTP/1.1\r\n${H}\r\n`, expect: ok({ target: 'HTTPS://a/' }) },
  { name: 'absolute-form ftp', raw: `GET ftp://a/ HTTP/1.1\r\n${H}\r\n`, expect: err('HTTP1_BAD_TARGET') },
  // field syntax
  { name: 'bare LF ending a field line', raw: `GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n`, expect: err('HTTP1_BARE_LF') },
  { name: 'LF-only head', raw: 'GET / HTTP/1.1\nHost: a\n\n', expect: err('HTTP1_BARE_LF') },
  { name: 'bare CR inside a value', raw: get(`${H}X: a\rb\r\n`), expect: err('HTTP1_BARE_CR') },
  { name: 'bare CR before CRLF', raw: get(`${H}X: a\r\r\n`), expect: err('HTTP1_BARE_CR') },
  { name: 'line starting with LF', raw: get(`${H}\nX: a\r\n`), expect: err('HTTP1_BARE_LF') },
  { name: 'obs-fold with space', raw: get(`${H}X: a\r\n b\r\n`), expect: err('HTTP1_OBS_FOLD') },
  { name: 'obs-fold with tab', raw: get(`${H}X: a\r\n\tb\r\n`), expect: err('HTTP1_OBS_FOLD') },
  { name: 'whitespace before first field', raw: `GET / HTTP/1.1\r\n Host: a\r\n\r\n`, expect: err('HTTP1_OBS_FOLD') },
  { name: 'space before colon', raw: get(`Host : a\r\n`), expect: err('HTTP1_SPACE_BEFORE_COLON') },
  { name: 'tab before colon', raw: get(`${H}X\t: a\r\n`), expect: err('HTTP1_SPACE_BEFORE_COLON') },
  { name: 'empty field name', raw: get(`${H}: a\r\n`), expect: err('HTTP1_EMPTY_FIELD_NAME') },
  { name: 'no colon', raw: get(`${H}Xa\r\n`), expect: err('HTTP1_BAD_FIELD_NAME') },
  { name: 'invalid name char (', raw: get(`${H}X(y): 1\r\n`), expect: err('HTTP1_BAD_FIELD_NAME') },
  { name: 'non-ASCII name', raw: get(`${H}X\xe9: 1\r\n`), expect: err('HTTP1_BAD_FIELD_NAME') },
  { name: 'NUL in value', raw: get(`${H}X: a\x00b\r\n`), expect: err('HTTP1_BAD_FIELD_VALUE') },
  { name: 'DEL in value', raw: get(`${H}X: a\x7f\r\n`), expect: err('HTTP1_BAD_FIELD_VALUE') },
  { name: 'control 0x1f in value', raw: get(`${H}X: \x1f\r\n`), expect: err('HTTP1_BAD_FIELD_VALUE') },
  { name: 'vertical tab in value', raw: get(`${H}X: a\x0bb\r\n`), expect: err('HTTP1_BAD_FIELD_VALUE') },
  { name: 'obs-text and HT in value accepted, OWS trimmed', raw: get(`${H}X:  \t caf\xe9\tau lait \t \r\n`), expect: ok({ rawHeaders: ['Host', 'a', 'X', 'caf\xe9\tau lait'] }) },
  { name: 'empty value', raw: get(`${H}X:\r\nY:   \r\n`), expect: ok({ rawHeaders: ['Host', 'a', 'X', '', 'Y', ''] }) },
  { name: 'names keep their case', raw: get(`hOsT: a\r\nX-Foo: 1\r\n`), expect: ok({ host: 'a', rawHeaders: ['hOsT', 'a', 'X-Foo', '1'] }) },
  // Host
  { name: 'missing Host on 1.1', raw: get('X: 1\r\n'), expect: err('HTTP1_MISSING_HOST') },
  { name: 'two Host fields', raw: get(`${H}Host: b\r\n`), expect: err('HTTP1_DUPLICATE_HOST') },
  { name: 'two identical Host fields', raw: get(`${H}${H}`), expect: err('HTTP1_DUPLICATE_HOST') },
  { name: 'empty Host', raw: get('Host:\r\n'), expect: err('HTTP1_BAD_HOST') },
  { name: 'Host with space', raw: get('Host: a b\r\n'), expect: err('HTTP1_BAD_HOST') },
  { name: 'Host with slash', raw: get('Host: a/b\r\n'), expect: err('HTTP1_BAD_HOST') },
  { name: 'Host with @', raw: get('Host: u@a\r\n'), expect: err('HTTP1_BAD_HOST') },
  { name: 'Host IPv6 literal with port', raw: get('Host: [::1]:8080\r\n'), expect: ok({ host: '[::1]:8080' }) },
  { name: 'Host on 1.0 is validated too', raw: get('Host: a b\r\n', '1.0'), expect: err('HTTP1_BAD_HOST') },
  // Content-Length
  { name: 'CL 5', raw: post(`${H}Content-Length: 5\r\n`), expect: ok({ framing: { kind: 'length', length: 5 } }) },
  { name: 'CL 0 is no body', raw: post(`${H}Content-Length: 0\r\n`), expect: ok({ framing: { kind: 'none' } }) },
  { name: 'CL leading zeros', raw: post(`${H}content-length: 007\r\n`), expect: ok({ framing: { kind: 'length', length: 7 } }) },
  { name: 'CL 15 digits', raw: post(`${H}Content-Length: 999999999999999\r\n`), expect: ok({ framing: { kind: 'length', length: 999999999999999 } }) },
  { name: 'CL 16 digits', raw: post(`${H}Content-Length: 1000000000000000\r\n`), expect: err('HTTP1_BAD_CONTENT_LENGTH') },
  { name: 'CL with plus sign', raw: post(`${H}Content-Length: +5\r\n`), expect: err('HTTP1_BAD_CONTENT_LENGTH') },
  { name: 'CL negative', raw: post(`${H}Content-Length: -1\r\n`), expect: err('HTTP1_BAD_CONTENT_LENGTH') },
  { name: 'CL with inner space', raw: post(`${H}Content-Length: 1 2\r\n`), expect: err('HTTP1_BAD_CONTENT_LENGTH') },
  { name: 'CL hex', raw: post(`${H}Content-Length: 0x10\r\n`), expect: err('HTTP1_BAD_CONTENT_LENGTH') },
  { name: 'CL decimal point', raw: post(`${H}Content-Length: 5.0\r\n`), expect: err('HTTP1_BAD_CONTENT_LENGTH') },
  { name: 'CL empty', raw: post(`${H}Content-Length:\r\n`), expect: err('HTTP1_BAD_CONTENT_LENGTH') },
  { name: 'CL list of identical values collapsed', raw: post(`${H}Content-Length: 5, 5\r\n`), expect: ok({ framing: { kind: 'length', length: 5 } }) },
  { name: 'CL repeated identical fields collapsed', raw: post(`${H}Content-Length: 5\r\nContent-Length: 5\r\n`), expect: ok({ framing: { kind: 'length', length: 5 } }) },
  { name: 'CL repeated different fields', raw: post(`${H}Content-Length: 5\r\nContent-Length: 6\r\n`), expect: err('HTTP1_CONFLICTING_CONTENT_LENGTH') },
  { name: 'CL list of different values', raw: post(`${H}Content-Length: 5, 6\r\n`), expect: err('HTTP1_CONFLICTING_CONTENT_LENGTH') },
  { name: 'CL list with empty element', raw: post(`${H}Content-Length: 5,\r\n`), expect: err('HTTP1_BAD_CONTENT_LENGTH') },
  // Transfer-Encoding
  { name: 'CL and TE', raw: post(`${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n`), expect: err('HTTP1_CL_AND_TE') },
  { name: 'TE and CL (other order)', raw: post(`${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n`), expect: err('HTTP1_CL_AND_TE') },
  { name: 'TE chunked', raw: post(`${H}Transfer-Encoding: chunked\r\n`), expect: ok({ framing: { kind: 'chunked' } }) },
  { name: 'TE Chunked (case)', raw: post(`${H}transfer-encoding: Chunked\r\n`), expect: ok({ framing: { kind: 'chunked' } }) },
  { name: 'TE with OWS around', raw: post(`${H}Transfer-Encoding:  chunked \t\r\n`), expect: ok({ framing: { kind: 'chunked' } }) },
  // usher implements chunked alone: a registered coding before it is 501 (nginx 1.21.1+, Envoy), never forwarded.
  { name: 'TE gzip, chunked', raw: post(`${H}Transfer-Encoding: gzip, chunked\r\n`), expect: err('HTTP1_UNSUPPORTED_TE', 501) },
  { name: 'TE GZIP,chunked (case, no space)', raw: post(`${H}Transfer-Encoding: GZIP,chunked\r\n`), expect: err('HTTP1_UNSUPPORTED_TE', 501) },
  { name: 'TE deflate, chunked', raw: post(`${H}Transfer-Encoding: deflate, chunked\r\n`), expect: err('HTTP1_UNSUPPORTED_TE', 501) },
  { name: 'TE x-gzip, chunked', raw: post(`${H}Transfer-Encoding: x-gzip, chunked\r\n`), expect: err('HTTP1_UNSUPPORTED_TE', 501) },
  { name: 'TE compress, chunked', raw: post(`${H}Transfer-Encoding: compress, chunked\r\n`), expect: err('HTTP1_UNSUPPORTED_TE', 501) },
  { name: 'TE gzip, deflate, chunked', raw: post(`${H}Transfer-Encoding: gzip, deflate, chunked\r\n`), expect: err('HTTP1_UNSUPPORTED_TE', 501) },
  { name: 'TE split over two fields (gzip, then chunked)', raw: post(`${H}Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n`), expect: err('HTTP1_UNSUPPORTED_TE', 501) },
  { name: 'TE unknown coding before chunked', raw: post(`${H}Transfer-Encoding: foo, chunked\r\n`), expect: err('HTTP1_UNSUPPORTED_TE', 501) },
  { name: 'TE chunked with a parameter and a coding', raw: post(`${H}Transfer-Encoding: gzip;q=1, chunked\r\n`), expect: err('HTTP1_BAD_TE') },
  { name: 'TE chunked with a parameter (spaced)', raw: post(`${H}Transfer-Encoding: chunked ; x=1\r\n`), expect: err('HTTP1_BAD_TE') },
  { name: 'TE chunked, then an empty TE field', raw: post(`${H}Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n`), expect: err('HTTP1_BAD_TE') },
  { name: 'TE chunked with leading comma', raw: post(`${H}Transfer-Encoding: , chunked\r\n`), expect: err('HTTP1_BAD_TE') },
  { name: 'TE chunked, chunked, gzip', raw: post(`${H}Transfer-Encoding: chunked, chunked, gzip\r\n`), expect: err('HTTP1_TE_CHUNKED_TWICE') },
  { name: 'TE gzip, chunked on HTTP/1.0', raw: post(`${H}Transfer-Encoding: gzip, chunked\r\n`, '1.0'), expect: err('HTTP1_TE_HTTP10') },
  { name: 'TE chunked, identity', raw: post(`${H}Transfer-Encoding: chunked, identity\r\n`), expect: err('HTTP1_UNSUPPORTED_TE', 501) },
  { name: 'TE identity, chunked', raw: post(`${H}Transfer-Encoding: identity, chunked\r\n`), expect: err('HTTP1_UNSUPPORTED_TE', 501) },
  { name: 'TE identity', raw: post(`${H}Transfer-Encoding: identity\r\n`), expect: err('HTTP1_UNSUPPORTED_TE', 501) },
  { name: 'TE x-chunked', raw: post(`${H}Transfer-Encoding: x-chunked\r\n`), expect: err('HTTP1_UNSUPPORTED_TE', 501) },
  { name: 'TE gzip only', raw: post(`${H}Transfer-Encoding: gzip\r\n`), expect: err('HTTP1_TE_NOT_CHUNKED_FINAL') },
  { name: 'TE chunked, gzip', raw: post(`${H}Transfer-Encoding: chunked, gzip\r\n`), expect: err('HTTP1_TE_NOT_CHUNKED_FINAL') },
  { name: 'TE chunked then gzip fields', raw: post(`${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n`), expect: err('HTTP1_TE_NOT_CHUNKED_FINAL') },
  { name: 'TE chunked, chunked', raw: post(`${H}Transfer-Encoding: chunked, chunked\r\n`), expect: err('HTTP1_TE_CHUNKED_TWICE') },
  { name: 'TE chunked in two fields', raw: post(`${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n`), expect: err('HTTP1_TE_CHUNKED_TWICE') },
  { name: 'TE empty', raw: post(`${H}Transfer-Encoding:\r\n`), expect: err('HTTP1_BAD_TE') },
  { name: 'TE chunked;foo', raw: post(`${H}Transfer-Encoding: chunked;foo\r\n`), expect: err('HTTP1_BAD_TE') },
  { name: 'TE trailing comma', raw: post(`${H}Transfer-Encoding: chunked,\r\n`), expect: err('HTTP1_BAD_TE') },
  { name: 'TE "chunked" quoted', raw: post(`${H}Transfer-Encoding: "chunked"\r\n`), expect: err('HTTP1_BAD_TE') },
  { name: 'TE with inner space', raw: post(`${H}Transfer-Encoding: chun ked\r\n`), expect: err('HTTP1_BAD_TE') },
  { name: 'TE on HTTP/1.0', raw: post(`${H}Transfer-Encoding: chunked\r\n`, '1.0'), expect: err('HTTP1_TE_HTTP10') },
  // Underscore look-alikes never frame (proxy/headers.ts drops them before the request goes upstream).
  { name: 'Transfer_Encoding is just another field', raw: post(`${H}Transfer_Encoding: chunked\r\n`), expect: ok({ framing: { kind: 'none' }, rawHeaders: ['Host', 'a', 'Transfer_Encoding', 'chunked'] }) },
  { name: 'Content_Length is just another field', raw: post(`${H}Content_Length: 5\r\n`), expect: ok({ framing: { kind: 'none' } }) },
  { name: 'Content_Length next to Transfer-Encoding is not CL+TE', raw: post(`${H}Content_Length: 5\r\nTransfer-Encoding: chunked\r\n`), expect: ok({ framing: { kind: 'chunked' } }) },
  // Connection, Upgrade, Expect
  { name: 'Connection: close', raw: get(`${H}Connection: close\r\n`), expect: ok({ keepAlive: false, connectionTokens: ['close'] }) },
  { name: 'HTTP/1.0 keep-alive', raw: get('Connection: Keep-Alive\r\n', '1.0'), expect: ok({ keepAlive: true, connectionTokens: ['keep-alive'] }) },
  { name: 'HTTP/1.0 keep-alive and close', raw: get('Connection: keep-alive, close\r\n', '1.0'), expect: ok({ keepAlive: false }) },
  { name: 'Connection tokens lowercased, empty elements skipped', raw: get(`${H}Connection: , X-Foo ,,TE\r\nconnection: Close\r\n`), expect: ok({ keepAlive: false, connectionTokens: ['x-foo', 'te', 'close'] }) },
  { name: 'Connection with non-token', raw: get(`${H}Connection: close;x\r\n`), expect: err('HTTP1_BAD_CONNECTION') },
  { name: 'Upgrade with Connection: upgrade', raw: get(`${H}Connection: Upgrade\r\nUpgrade: websocket\r\n`), expect: ok({ upgrade: true, keepAlive: true }) },
  { name: 'Upgrade without Connection: upgrade', raw: get(`${H}Upgrade: websocket\r\n`), expect: ok({ upgrade: false }) },
  { name: 'Connection: upgrade without Upgrade', raw: get(`${H}Connection: upgrade\r\n`), expect: ok({ upgrade: false }) },
  { name: 'Upgrade ignored on HTTP/1.0', raw: get(`Connection: upgrade\r\nUpgrade: websocket\r\n`, '1.0'), expect: ok({ upgrade: false }) },
  { name: 'Upgrade: WebSocket (case) with a version-less list', raw: get(`${H}Connection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n`), expect: ok({ upgrade: true }) },
  { name: 'Upgrade list with versions and an empty element', raw: get(`${H}Connection: upgrade\r\nUpgrade: foo/1, , websocket\r\n`), expect: ok({ upgrade: true }) },
  // h2c (and h2) is never an upgrade: the request is proxied as a plain one (HAProxy, Envoy).
  { name: 'Upgrade: h2c is not an upgrade', raw: get(`${H}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n`), expect: ok({ upgrade: false, keepAlive: true, connectionTokens: ['upgrade', 'http2-settings'] }) },
  { name: 'Upgrade: H2C (case) is not an upgrade', raw: get(`${H}Connection: upgrade\r\nUpgrade: H2C\r\n`), expect: ok({ upgrade: false }) },
  { name: 'Upgrade: h2c after websocket is not an upgrade', raw: get(`${H}Connection: upgrade\r\nUpgrade: websocket, h2c\r\n`), expect: ok({ upgrade: false }) },
  { name: 'Upgrade: h2c in a second Upgrade field is not an upgrade', raw: get(`${H}Connection: upgrade\r\nUpgrade: websocket\r\nUpgrade: h2c\r\n`), expect: ok({ upgrade: false }) },
  { name: 'Upgrade: h2c with a version is not an upgrade', raw: get(`${H}Connection: upgrade\r\nUpgrade: h2c/1.0\r\n`), expect: ok({ upgrade: false }) },
  { name: 'Upgrade: h2 is not an upgrade', raw: get(`${H}Connection: upgrade\r\nUpgrade: h2\r\n`), expect: ok({ upgrade: false }) },
  { name: 'Upgrade: h2c with OWS is not an upgrade', raw: get(`${H}Connection: upgrade\r\nUpgrade: \th2c \r\n`), expect: ok({ upgrade: false }) },
  { name: 'Upgrade not a list of protocols is not an upgrade', raw: get(`${H}Connection: upgrade\r\nUpgrade: "h2c"\r\n`), expect: ok({ upgrade: false }) },
  { name: 'Upgrade with an empty version is not an upgrade', raw: get(`${H}Connection: upgrade\r\nUpgrade: websocket/\r\n`), expect: ok({ upgrade: false }) },
  { name: 'Upgrade: h2cx is an ordinary protocol', raw: get(`${H}Connection: upgrade\r\nUpgrade: h2cx\r\n`), expect: ok({ upgrade: true }) },
  { name: 'Expect: 100-continue', raw: post(`${H}Expect: 100-Continue\r\nContent-Length: 1\r\n`), expect: ok({ expectContinue: true }) },
  { name: 'Expect other value', raw: post(`${H}Expect: 200-ok\r\n`), expect: err('HTTP1_UNSUPPORTED_EXPECT', 417) },
  { name: 'Expect ignored on HTTP/1.0', raw: post(`Expect: 100-continue\r\n`, '1.0'), expect: ok({ expectContinue: false }) },
  // sizes
  { name: 'exactly maxHeaders fields', raw: get(`${H}A: 1\r\nB: 2\r\n`), limits: small, expect: ok({ rawHeaders: ['Host', 'a', 'A', '1', 'B', '2'] }) },
  { name: 'more than maxHeaders fields', raw: get(`${H}A: 1\r\nB: 2\r\nC: 3\r\n`), limits: small, expect: err('HTTP1_TOO_MANY_HEADERS', 431) },
  { name: 'complete head over maxHeadBytes', raw: get(`${H}X: ${'v'.repeat(200)}\r\n`), limits: small, expect: err('HTTP1_HEAD_TOO_LARGE', 431) },
  { name: 'incomplete head over maxHeadBytes', raw: `GET / HTTP/1.1\r\n${H}X: ${'v'.repeat(200)}`, limits: small, expect: err('HTTP1_HEAD_TOO_LARGE', 431) },
  { name: 'request line over maxHeadBytes', raw: `GET /${'a'.repeat(250)}`, limits: small, expect: err('HTTP1_TARGET_TOO_LONG', 414) },
  { name: 'endless empty lines', raw: '\r\n'.repeat(101), limits: small, expect: err('HTTP1_HEAD_TOO_LARGE', 431) },
  { name: 'head exactly maxHeadBytes', raw: get(`${H}X: ${'v'.repeat(200 - 27 - 5)}\r\n`), limits: small, expect: ok({ headLength: 200 }) },
];

function check(row: Row, buf: Buffer, start: number): void {
  const got = parseRequestHead(buf, start, row.limits ?? defaultHeadLimits);
  assert.ok(got !== undefined, `${row.name}: incomplete`);
  if ('code' in row.expect) {
    assert.ok(isParseError(got), `${row.name}: expected ${row.expect.code}, got a head`);
    assert.equal(got.code, row.expect.code, row.name);
    assert.equal(got.status, row.expect.status, row.name);
    return;
  }
  assert.ok(!isParseError(got), `${row.name}: ${isParseError(got) ? got.code : ''}`);
  for (const [key, value] of Object.entries(row.expect.ok)) {
    assert.deepEqual(got[key as keyof RequestHead], value, `${row.name}: ${key}`);
  }
}

test('request heads: table', async (t) => {
  assert.ok(rows.length >= 60);
  for (const row of rows) await t.test(row.name, () => check(row, Buffer.from(row.raw, 'latin1'), 0));
});

test('request heads: table at an offset, with pipelined bytes after the head', () => {
  for (const row of rows) {
    if ('code' in row.expect || row.expect.ok.headLength === undefined) continue;
    const buf = Buffer.from(`JUNK${row.raw}GET / HTTP/1.1\r\nHost: next\r\n\r\n`, 'latin1');
    check(row, buf, 4);
  }
});

const valid: readonly string[] = [
  get(`${H}User-Agent: t\r\nAccept: */*\r\n`),
  `\r\n${post(`${H}Transfer-Encoding: chunked\r\n`)}`,
  'GET / HTTP/1.0\r\n\r\n',
  get(`${H}X: \xe9\t\r\n`),
];

test('request heads: every proper prefix of a valid head is incomplete, never an error', () => {
  for (const raw of valid) {
    const buf = Buffer.from(raw, 'latin1');
    for (let n = 0; n < buf.length; n++) {
      assert.equal(parseRequestHead(buf.subarray(0, n), 0, defaultHeadLimits), undefined, `${JSON.stringify(raw)} cut at ${n}`);
    }
    const whole = parseRequestHead(buf, 0, defaultHeadLimits);
    assert.ok(whole !== undefined && !isParseError(whole));
    assert.equal(whole.headLength, buf.length);
  }
});

test('request heads: body and pipelined request follow headLength exactly', () => {
  const first = post(`${H}Content-Length: 5\r\n`);
  const buf = Buffer.from(`${first}hello${get('Host: b\r\n')}`, 'latin1');
  const a = parseRequestHead(buf, 0, defaultHeadLimits);
  assert.ok(a !== undefined && !isParseError(a));
  assert.equal(a.headLength, first.length);
  assert.equal(buf.toString('latin1', a.headLength, a.headLength + 5), 'hello');
  const b = parseRequestHead(buf, a.headLength + 5, defaultHeadLimits);
  assert.ok(b !== undefined && !isParseError(b));
  assert.equal(b.host, 'b');
  assert.equal(a.headLength + 5 + b.headLength, buf.length);
});

test('request heads: bare LF or CR is rejected before the head is complete', () => {
  for (const raw of ['GET / HTTP/1.1\n', 'GET / HTTP/1.1\r\nHost: a\n', 'GET / HTTP/1.1\rX']) {
    const got = parseRequestHead(Buffer.from(raw, 'latin1'), 0, defaultHeadLimits);
    assert.ok(isParseError(got), raw);
    assert.equal(got.status, 400);
  }
  assert.equal(parseRequestHead(Buffer.from('GET / HTTP/1.1\r', 'latin1'), 0, defaultHeadLimits), undefined);
});

test('request heads: a bad method or runaway target is rejected before the head is complete', () => {
  const early = (raw: string | Buffer, limits: HeadLimits = defaultHeadLimits) => parseRequestHead(typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw, 0, limits);
  const tls = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
  for (const raw of [tls, 'GE@', ' /', 'GET\t/']) {
    const got = early(raw);
    assert.ok(isParseError(got), String(raw));
    assert.equal(got.code, 'HTTP1_BAD_METHOD');
  }
  for (const raw of ['', 'G', 'GET', 'GET ', 'GET /abc']) assert.equal(early(raw), undefined, raw);
  const atLimit = `GET /${'a'.repeat(15)} HTTP/1.1\r`;
  assert.equal(early(atLimit, small), undefined, 'a target at the limit with its version, not yet ended');
  const over = early(`GET /${'a'.repeat(15)} HTTP/1.1\r\nX`.replace('\r\nX', 'XX'), small);
  assert.ok(isParseError(over));
  assert.equal(over.code, 'HTTP1_TARGET_TOO_LONG');
  assert.equal(over.status, 414);
});

test('request heads: the result does not leak state between calls', () => {
  const a = parseRequestHead(Buffer.from(post(`${H}Transfer-Encoding: chunked\r\nConnection: close\r\n`)), 0, defaultHeadLimits);
  const b = parseRequestHead(Buffer.from(get(H)), 0, defaultHeadLimits);
  assert.ok(a !== undefined && !isParseError(a) && b !== undefined && !isParseError(b));
  assert.deepEqual(a.framing, { kind: 'chunked' });
  assert.deepEqual(b.framing, { kind: 'none' });
  assert.deepEqual(b.connectionTokens, []);
  assert.deepEqual(a.connectionTokens, ['close']);
});
