/** Head serialisation round-trips through the strict parsers. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { STATUS_REASONS, requestHeadString, responseHeadString, statusReason } from '../../src/http1/serialize.ts';
import { parseRequestHead } from '../../src/http1/request-head.ts';
import { parseResponseHead } from '../../src/http1/response-head.ts';
import { defaultHeadLimits } from '../../src/http1/types.ts';
import { isParseError } from '../../src/http1/errors.ts';
import { isFieldValue, isToken } from '../../src/http1/chars.ts';

test('requestHeadString builds an HTTP/1.1 head that parses back', () => {
  const s = requestHeadString('POST', '/a?b', ['Host', 'h', 'X-Y', 'v \xe9', 'Content-Length', '0']);
  assert.equal(s, 'POST /a?b HTTP/1.1\r\nHost: h\r\nX-Y: v \xe9\r\nContent-Length: 0\r\n\r\n');
  const head = parseRequestHead(Buffer.from(s, 'latin1'), 0, defaultHeadLimits);
  assert.ok(head !== undefined && !isParseError(head));
  assert.deepEqual(head.rawHeaders, ['Host', 'h', 'X-Y', 'v \xe9', 'Content-Length', '0']);
  assert.equal(requestHeadString('GET', '/', []), 'GET / HTTP/1.1\r\n\r\n');
});

test('responseHeadString builds a head that parses back', () => {
  const s = responseHeadString(0, 404, statusReason(404), ['Content-Length', '3']);
  assert.equal(s, 'HTTP/1.0 404 Not Found\r\nContent-Length: 3\r\n\r\n');
  const head = parseResponseHead(Buffer.from(s, 'latin1'), 0, defaultHeadLimits, 'GET');
  assert.ok(head !== undefined && !isParseError(head));
  assert.equal(head.reason, 'Not Found');
  assert.equal(responseHeadString(1, 299, statusReason(299), []), 'HTTP/1.1 299 \r\n\r\n');
});

test('STATUS_REASONS', () => {
  assert.equal(STATUS_REASONS[200], 'OK');
  assert.equal(STATUS_REASONS[431], 'Request Header Fields Too Large');
  assert.equal(STATUS_REASONS[502], 'Bad Gateway');
  assert.equal(STATUS_REASONS[299], undefined);
  assert.ok(Object.isFrozen(STATUS_REASONS));
});

test('isToken / isFieldValue guard heads built from untrusted input', () => {
  assert.equal(isToken('X-Foo'), true);
  assert.equal(isToken(''), false);
  assert.equal(isToken('X Foo'), false);
  assert.equal(isToken('X:'), false);
  assert.equal(isFieldValue('a b\t\xe9'), true);
  assert.equal(isFieldValue('a\r\nX: y'), false);
  assert.equal(isFieldValue('a\x00'), false);
  assert.equal(isFieldValue('\u0100'), false);
});
