/**
 * The retry rules as data: which failures are which `retry.on` condition,
 * which take a backend out of rotation, and when a lost keep-alive request is
 * replayed on a fresh connection.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ErrorCode } from '../../src/errors.ts';
import { isUnreachable, mayReplayOnFreshConnection, retryConditionOf } from '../../src/proxy/retry-policy.ts';

test('connect failures and refused h2c streams retry as connect-failure; only real connect failures make a backend unreachable', () => {
  const cases: [ErrorCode, string | undefined, boolean][] = [
    ['USHER_UPSTREAM_CONNECT_REFUSED', 'connect-failure', true],
    ['USHER_UPSTREAM_CONNECT_FAILED', 'connect-failure', true],
    ['USHER_UPSTREAM_CONNECT_TIMEOUT', 'connect-failure', true],
    ['USHER_UPSTREAM_STREAM_REFUSED', 'connect-failure', false],
    ['USHER_UPSTREAM_RESET', 'reset', false],
    ['USHER_UPSTREAM_RESPONSE_TIMEOUT', 'timeout', false],
    ['USHER_UPSTREAM_BAD_RESPONSE', '502', false],
    ['USHER_NO_BACKEND', undefined, false],
  ];
  for (const [code, condition, unreachable] of cases) {
    assert.equal(retryConditionOf(code), condition, code);
    assert.equal(isUnreachable(code), unreachable, code);
  }
});

test('a lost request is replayed on a fresh connection only when reused, unanswered, without body, idempotent and not replayed yet', () => {
  const base = { uses: 2, answered: false, replayed: false, hasBody: false, method: 'GET' };
  assert.equal(mayReplayOnFreshConnection(base), true);
  for (const method of ['HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']) assert.equal(mayReplayOnFreshConnection({ ...base, method }), true, method);
  assert.equal(mayReplayOnFreshConnection({ ...base, uses: 1 }), false, 'a new connection that fails is a plain failure');
  assert.equal(mayReplayOnFreshConnection({ ...base, answered: true }), false, 'part of a response came back');
  assert.equal(mayReplayOnFreshConnection({ ...base, replayed: true }), false, 'only once');
  assert.equal(mayReplayOnFreshConnection({ ...base, hasBody: true }), false, 'a streamed body cannot be sent twice');
  for (const method of ['POST', 'PATCH', 'CONNECT']) assert.equal(mayReplayOnFreshConnection({ ...base, method }), false, method);
});
