/**
 * Table-driven tests of the strict response-head parser: framing per RFC 9112
 * §6.3, and every malformed head rejected with status 502.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseResponseHead } from '../../src/http1/response-head.ts';
import { defaultHeadLimits, type HeadLimits, type ResponseHead } from '../../src/http1/types.ts';
import { isParseError } from '../../src/http1/errors.ts';

type Expect = { readonly ok: Partial<ResponseHead> } | { readonly code: string };
interface Row {
  readonly name: string;
  readonly raw: string;
  readonly method?: string;
  readonly expect: Expect;
  readonly limits?: HeadLimits;
}

const small: HeadLimits = { maxHeadBytes: 100, maxHeaders: 2, maxTargetBytes: 16 };
const ok = (fields: Partial<ResponseHead>): Expect => ({ ok: fields });
const err = (code: string): Expect => ({ code });
const res = (status: string, headers: string, v = '1.1'): string => `HTTP/${v} ${status}\r\n${headers}\r\n`;
const none = { kind: 'none' } as const;
const close = { kind: 'until-close' } as const;

const rows: readonly Row[] = [
  { name: '200 with Content-Length', raw: res('200 OK', 'Content-Length: 3\r\n'), expect: ok({ status: 200, reason: 'OK', minorVersion: 1, framing: { kind: 'length', length: 3 }, keepAlive: true, rawHeaders: ['Content-Length', '3'], headLength: 38 }) },
  { name: '200 with CL 0', raw: res('200 OK', 'Content-Length: 0\r\n'), expect: ok({ framing: none, keepAlive: true }) },
  { name: '200 without framing reads until close', raw: res('200 OK', 'X: 1\r\n'), expect: ok({ framing: close, keepAlive: false }) },
  { name: '200 chunked', raw: res('200 OK', 'Transfer-Encoding: chunked\r\n'), expect: ok({ framing: { kind: 'chunked' }, keepAlive: true }) },
  { name: '200 Chunked (case, OWS)', raw: res('200 OK', 'Transfer-Encoding:  Chunked \r\n'), expect: ok({ framing: { kind: 'chunked' }, keepAlive: true }) },
  // Anything but exactly chunked is a bad response (nginx: "upstream sent unknown Transfer-Encoding"), whatever the status.
  { name: 'gzip, chunked', raw: res('200 OK', 'Transfer-Encoding: gzip, chunked\r\n'), expect: err('HTTP1_UNSUPPORTED_TE') },
  { name: 'gzip then chunked in two fields', raw: res('200 OK', 'Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n'), expect: err('HTTP1_UNSUPPORTED_TE') },
  { name: 'unknown coding before chunked', raw: res('200 OK', 'Transfer-Encoding: foo, chunked\r\n'), expect: err('HTTP1_UNSUPPORTED_TE') },
  { name: 'TE gzip only', raw: res('200 OK', 'Transfer-Encoding: gzip\r\n'), expect: err('HTTP1_TE_NOT_CHUNKED_FINAL') },
  { name: 'TE identity', raw: res('200 OK', 'Transfer-Encoding: identity\r\n'), expect: err('HTTP1_UNSUPPORTED_TE') },
  { name: 'TE chunked, gzip', raw: res('200 OK', 'Transfer-Encoding: chunked, gzip\r\n'), expect: err('HTTP1_TE_NOT_CHUNKED_FINAL') },
  { name: 'TE gzip on a 304', raw: res('304 Not Modified', 'Transfer-Encoding: gzip\r\n'), expect: err('HTTP1_TE_NOT_CHUNKED_FINAL') },
  { name: 'TE gzip, chunked on a HEAD response', method: 'HEAD', raw: res('200 OK', 'Transfer-Encoding: gzip, chunked\r\n'), expect: err('HTTP1_UNSUPPORTED_TE') },
  { name: 'TE chunked on a HEAD response', method: 'HEAD', raw: res('200 OK', 'Transfer-Encoding: chunked\r\n'), expect: ok({ framing: none, keepAlive: true }) },
  { name: 'TE chunked, chunked', raw: res('200 OK', 'Transfer-Encoding: chunked, chunked\r\n'), expect: err('HTTP1_TE_CHUNKED_TWICE') },
  { name: 'TE malformed', raw: res('200 OK', 'Transfer-Encoding: chunked;q=1\r\n'), expect: err('HTTP1_BAD_TE') },
  { name: 'CL and TE', raw: res('200 OK', 'Content-Length: 3\r\nTransfer-Encoding: chunked\r\n'), expect: err('HTTP1_CL_AND_TE') },
  { name: 'CL and TE on a 304 still rejected', raw: res('304 Not Modified', 'Content-Length: 3\r\nTransfer-Encoding: chunked\r\n'), expect: err('HTTP1_CL_AND_TE') },
  { name: 'TE on HTTP/1.0', raw: res('200 OK', 'Transfer-Encoding: chunked\r\n', '1.0'), expect: err('HTTP1_TE_HTTP10') },
  { name: 'duplicate identical CL', raw: res('200 OK', 'Content-Length: 3\r\nContent-Length: 3\r\n'), expect: ok({ framing: { kind: 'length', length: 3 } }) },
  { name: 'duplicate different CL', raw: res('200 OK', 'Content-Length: 3\r\nContent-Length: 4\r\n'), expect: err('HTTP1_CONFLICTING_CONTENT_LENGTH') },
  { name: 'CL with sign', raw: res('200 OK', 'Content-Length: +3\r\n'), expect: err('HTTP1_BAD_CONTENT_LENGTH') },
  { name: '204 has no body', raw: res('204 No Content', 'X: 1\r\n'), expect: ok({ status: 204, framing: none, keepAlive: true }) },
  { name: '304 without framing fields is reusable', raw: res('304 Not Modified', 'ETag: "a"\r\n'), expect: ok({ framing: none, keepAlive: true }) },
  // A 204/304 that says how long its body is: no body is read, and the connection is not reused (a body may follow).
  { name: '304 with CL has no body, connection not reused', raw: res('304 Not Modified', 'Content-Length: 10\r\n'), expect: ok({ framing: none, keepAlive: false }) },
  { name: '304 with CL 0, connection not reused', raw: res('304 Not Modified', 'Content-Length: 0\r\n'), expect: ok({ framing: none, keepAlive: false }) },
  { name: '204 with CL has no body, connection not reused', raw: res('204 No Content', 'Content-Length: 5\r\n'), expect: ok({ framing: none, keepAlive: false }) },
  { name: '204 with TE chunked has no body, connection not reused', raw: res('204 No Content', 'Transfer-Encoding: chunked\r\n'), expect: ok({ framing: none, keepAlive: false }) },
  { name: '304 with TE chunked has no body, connection not reused', raw: res('304 Not Modified', 'Transfer-Encoding: chunked\r\n'), expect: ok({ framing: none, keepAlive: false }) },
  { name: '204 to HEAD with CL, connection not reused', method: 'HEAD', raw: res('204 No Content', 'Content-Length: 5\r\n'), expect: ok({ framing: none, keepAlive: false }) },
  { name: 'Content_Length on a 204 is just another field', raw: res('204 No Content', 'Content_Length: 5\r\n'), expect: ok({ framing: none, keepAlive: true }) },
  { name: '100 Continue', raw: res('100 Continue', ''), expect: ok({ status: 100, framing: none, headLength: 25 }) },
  { name: '103 Early Hints', raw: res('103 Early Hints', 'Link: </a>; rel=preload\r\n'), expect: ok({ status: 103, framing: none }) },
  { name: '101 Switching Protocols', raw: res('101 Switching Protocols', 'Connection: Upgrade\r\nUpgrade: websocket\r\n'), expect: ok({ status: 101, framing: none, connectionTokens: ['upgrade'] }) },
  { name: 'HEAD response with CL', method: 'HEAD', raw: res('200 OK', 'Content-Length: 10\r\n'), expect: ok({ framing: none, keepAlive: true }) },
  { name: 'HEAD response without framing keeps the connection', method: 'HEAD', raw: res('200 OK', ''), expect: ok({ framing: none, keepAlive: true }) },
  { name: '2xx to CONNECT is a tunnel', method: 'CONNECT', raw: res('200 Connection Established', ''), expect: ok({ framing: none }) },
  { name: '407 to CONNECT has a body', method: 'CONNECT', raw: res('407 Proxy Authentication Required', 'Content-Length: 2\r\n'), expect: ok({ framing: { kind: 'length', length: 2 } }) },
  { name: 'missing SP before empty reason tolerated', raw: 'HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n', expect: ok({ status: 200, reason: '' }) },
  { name: 'empty reason', raw: res('404 ', 'Content-Length: 0\r\n'), expect: ok({ status: 404, reason: '' }) },
  { name: 'reason with spaces, tab and obs-text', raw: res('500 Bad \tthing \xe9', 'Content-Length: 0\r\n'), expect: ok({ reason: 'Bad \tthing \xe9' }) },
  { name: 'reason with control char', raw: res('200 O\x01K', ''), expect: err('HTTP1_BAD_STATUS_LINE') },
  { name: 'reason with bare CR', raw: res('200 O\rK', ''), expect: err('HTTP1_BARE_CR') },
  { name: 'status line ending in bare LF', raw: 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', expect: err('HTTP1_BARE_LF') },
  { name: 'LF-only head', raw: 'HTTP/1.1 200 OK\nContent-Length: 0\n\n', expect: err('HTTP1_BARE_LF') },
  { name: 'two-digit status', raw: res('20 OK', ''), expect: err('HTTP1_BAD_STATUS') },
  { name: 'four-digit status', raw: res('2000 OK', ''), expect: err('HTTP1_BAD_STATUS_LINE') },
  { name: 'status 600', raw: res('600 X', ''), expect: err('HTTP1_BAD_STATUS') },
  { name: 'status 099', raw: res('099 X', ''), expect: err('HTTP1_BAD_STATUS') },
  { name: 'HTTP/2.0', raw: res('200 OK', '', '2.0'), expect: err('HTTP1_VERSION_NOT_SUPPORTED') },
  { name: 'HTTP/1.2', raw: res('200 OK', '', '1.2'), expect: err('HTTP1_VERSION_NOT_SUPPORTED') },
  { name: 'lowercase http', raw: 'http/1.1 200 OK\r\n\r\n', expect: err('HTTP1_BAD_STATUS_LINE') },
  { name: 'two spaces after version', raw: 'HTTP/1.1  200 OK\r\n\r\n', expect: err('HTTP1_BAD_STATUS') },
  { name: 'leading CRLF is not skipped', raw: `\r\n${res('200 OK', '')}`, expect: err('HTTP1_BAD_STATUS_LINE') },
  { name: 'HTTP/1.0 closes by default', raw: res('200 OK', 'Content-Length: 1\r\n', '1.0'), expect: ok({ minorVersion: 0, keepAlive: false }) },
  { name: 'HTTP/1.0 keep-alive', raw: res('200 OK', 'Content-Length: 1\r\nConnection: keep-alive\r\n', '1.0'), expect: ok({ keepAlive: true }) },
  { name: 'HTTP/1.0 keep-alive without length still closes', raw: res('200 OK', 'Connection: keep-alive\r\n', '1.0'), expect: ok({ keepAlive: false, framing: close }) },
  { name: 'Connection: close', raw: res('200 OK', 'Content-Length: 1\r\nConnection: close\r\n'), expect: ok({ keepAlive: false, connectionTokens: ['close'] }) },
  { name: 'obs-fold', raw: res('200 OK', 'X: a\r\n b\r\n'), expect: err('HTTP1_OBS_FOLD') },
  { name: 'space before colon', raw: res('200 OK', 'X : a\r\n'), expect: err('HTTP1_SPACE_BEFORE_COLON') },
  { name: 'NUL in value', raw: res('200 OK', 'X: a\x00\r\n'), expect: err('HTTP1_BAD_FIELD_VALUE') },
  { name: 'bad Connection token', raw: res('200 OK', 'Connection: a b\r\n'), expect: err('HTTP1_BAD_CONNECTION') },
  { name: 'too many headers', raw: res('200 OK', 'A: 1\r\nB: 2\r\nC: 3\r\n'), limits: small, expect: err('HTTP1_TOO_MANY_HEADERS') },
  { name: 'head too large', raw: res('200 OK', `X: ${'v'.repeat(100)}\r\n`), limits: small, expect: err('HTTP1_HEAD_TOO_LARGE') },
  { name: 'incomplete head too large', raw: `HTTP/1.1 200 OK\r\nX: ${'v'.repeat(100)}`, limits: small, expect: err('HTTP1_HEAD_TOO_LARGE') },
];

test('response heads: table', async (t) => {
  assert.ok(rows.length >= 25);
  for (const row of rows) {
    await t.test(row.name, () => {
      const got = parseResponseHead(Buffer.from(row.raw, 'latin1'), 0, row.limits ?? defaultHeadLimits, row.method ?? 'GET');
      assert.ok(got !== undefined, 'incomplete');
      if ('code' in row.expect) {
        assert.ok(isParseError(got), `expected ${row.expect.code}, got a head`);
        assert.equal(got.code, row.expect.code);
        assert.equal(got.status, 502);
        return;
      }
      assert.ok(!isParseError(got), isParseError(got) ? got.code : '');
      for (const [key, value] of Object.entries(row.expect.ok)) assert.deepEqual(got[key as keyof ResponseHead], value, key);
    });
  }
});

test('response heads: every proper prefix of a valid head is incomplete', () => {
  for (const raw of [res('200 OK', 'Content-Length: 3\r\nX: \xe9\r\n'), 'HTTP/1.1 204\r\n\r\n', res('100 Continue', '')]) {
    const buf = Buffer.from(raw, 'latin1');
    for (let n = 0; n < buf.length; n++) assert.equal(parseResponseHead(buf.subarray(0, n), 0, defaultHeadLimits, 'GET'), undefined, `cut at ${n}`);
    const whole = parseResponseHead(buf, 0, defaultHeadLimits, 'GET');
    assert.ok(whole !== undefined && !isParseError(whole));
    assert.equal(whole.headLength, buf.length);
  }
});

test('response heads: interim response then final response in one buffer', () => {
  const first = res('100 Continue', '');
  const buf = Buffer.from(`xx${first}${res('200 OK', 'Content-Length: 2\r\n')}hi`, 'latin1');
  const a = parseResponseHead(buf, 2, defaultHeadLimits, 'POST');
  assert.ok(a !== undefined && !isParseError(a));
  assert.equal(a.status, 100);
  assert.equal(a.headLength, first.length);
  const b = parseResponseHead(buf, 2 + a.headLength, defaultHeadLimits, 'POST');
  assert.ok(b !== undefined && !isParseError(b));
  assert.equal(b.status, 200);
  assert.equal(buf.toString('latin1', 2 + a.headLength + b.headLength), 'hi');
});
