import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, parseDuration, MAX_DURATION_MS } from '../../src/config/duration.ts';
import { interpolate } from '../../src/config/env.ts';
import { formatHostPort, parseHostPort } from '../../src/config/hostport.ts';
import { formatIssue, formatPath, sortIssues } from '../../src/config/issues.ts';
import { closest, didYouMean, editDistance } from '../../src/config/suggest.ts';

describe('parseDuration', () => {
  it('reads each unit as milliseconds', () => {
    assert.deepEqual(parseDuration('500ms'), { ok: true, value: 500 });
    assert.deepEqual(parseDuration('2s'), { ok: true, value: 2000 });
    assert.deepEqual(parseDuration('1m'), { ok: true, value: 60_000 });
    assert.deepEqual(parseDuration('1h'), { ok: true, value: 3_600_000 });
    assert.deepEqual(parseDuration('1d'), { ok: true, value: 86_400_000 });
  });

  it('combines units largest first and accepts whole-millisecond fractions', () => {
    assert.deepEqual(parseDuration('1m30s'), { ok: true, value: 90_000 });
    assert.deepEqual(parseDuration('1h2m3s4ms'), { ok: true, value: 3_723_004 });
    assert.deepEqual(parseDuration('1.5s'), { ok: true, value: 1500 });
    assert.deepEqual(parseDuration('0'), { ok: true, value: 0 });
  });

  it('rejects a bare number, saying the unit is required', () => {
    assert.deepEqual(parseDuration('30'), {
      ok: false,
      message: 'expected a duration such as "500ms", "5s", "1m", "1h" or "1d" (the unit is required)',
    });
  });

  it('rejects malformed text, units out of order and sub-millisecond values', () => {
    for (const text of ['', 's', '5 s', '5sec', '-5s', '5s ', '1.s', 'ms']) {
      assert.equal(parseDuration(text).ok, false, text);
    }
    assert.match(failure(parseDuration('30s1m')), /largest first/);
    assert.match(failure(parseDuration('1s1s')), /largest first/);
    assert.match(failure(parseDuration('1.5ms')), /millisecond precision/);
  });

  it('caps durations at what a Node.js timer can hold', () => {
    assert.deepEqual(parseDuration(`${MAX_DURATION_MS}ms`), { ok: true, value: MAX_DURATION_MS });
    assert.match(failure(parseDuration('25d')), /at most 2147483647ms/);
  });

  it('formats milliseconds back to the shortest exact form', () => {
    assert.equal(formatDuration(90_000), '1m30s');
    assert.equal(formatDuration(1500), '1s500ms');
    assert.equal(formatDuration(0), '0');
    for (const ms of [1, 999, 60_000, 86_400_001]) assert.deepEqual(parseDuration(formatDuration(ms)), { ok: true, value: ms });
  });
});

describe('parseHostPort', () => {
  it('splits IPv4, bracketed IPv6 and hostnames', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:8080'), { ok: true, value: { host: '127.0.0.1', port: 8080 } });
    assert.deepEqual(parseHostPort('[::1]:3000'), { ok: true, value: { host: '::1', port: 3000 } });
    assert.deepEqual(parseHostPort('app-1.internal:65535'), { ok: true, value: { host: 'app-1.internal', port: 65535 } });
    assert.deepEqual(parseHostPort('my_service:80'), { ok: true, value: { host: 'my_service', port: 80 } });
  });

  it('allows port 0 only when asked (listener binds)', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:0'), { ok: false, message: 'port must be an integer in [1, 65535]' });
    assert.deepEqual(parseHostPort('127.0.0.1:0', { allowPortZero: true }), { ok: true, value: { host: '127.0.0.1', port: 0 } });
  });

  it('explains each way an address is wrong', () => {
    assert.equal(failure(parseHostPort('localhost')), 'expected host:port');
    assert.equal(failure(parseHostPort('h:65536')), 'port must be an integer in [1, 65535]');
    assert.equal(failure(parseHostPort('h:')), 'port must be an integer in [1, 65535]');
    assert.equal(failure(parseHostPort('h:+80')), 'port must be an integer in [1, 65535]');
    assert.match(failure(parseHostPort('::1:80')), /IPv6 addresses in brackets/);
    assert.match(failure(parseHostPort(':80')), /host is missing/);
    assert.match(failure(parseHostPort('999.1.1.1:80')), /valid IPv4 address/);
    assert.match(failure(parseHostPort('[zz]:80')), /valid IPv6 address/);
    assert.match(failure(parseHostPort('[::1]')), /port is required/);
    assert.match(failure(parseHostPort('exa mple:80')), /hostname/);
    assert.match(failure(parseHostPort('-bad-.com:80')), /hostname/);
  });

  it('formats back, bracketing IPv6', () => {
    assert.equal(formatHostPort({ host: '::1', port: 80 }), '[::1]:80');
    assert.equal(formatHostPort({ host: 'a.b', port: 1 }), 'a.b:1');
  });
});

describe('interpolate', () => {
  const env = { HOST: 'db', EMPTY: '', PORT: '5432' };

  it('replaces ${VAR} and reports that it did', () => {
    assert.deepEqual(interpolate('${HOST}:${PORT}', env), { ok: true, value: { text: 'db:5432', interpolated: true } });
    assert.deepEqual(interpolate('plain', env), { ok: true, value: { text: 'plain', interpolated: false } });
  });

  it('uses ${VAR:-default} when unset or empty', () => {
    assert.equal(text(interpolate('${MISSING:-x}', env)), 'x');
    assert.equal(text(interpolate('${EMPTY:-x}', env)), 'x');
    assert.equal(text(interpolate('${HOST:-x}', env)), 'db');
    assert.equal(text(interpolate('${MISSING:-}', env)), '');
    assert.equal(text(interpolate('${EMPTY}', env)), '');
  });

  it('writes $${ as a literal ${', () => {
    assert.deepEqual(interpolate('a$${HOST}b', env), { ok: true, value: { text: 'a${HOST}b', interpolated: false } });
  });

  it('names an unset variable', () => {
    assert.deepEqual(interpolate('x${NOPE}', env), {
      ok: false,
      message: 'environment variable NOPE is not set (referenced as ${NOPE}; use ${NOPE:-default} for a default)',
    });
  });

  it('rejects malformed references', () => {
    assert.match(failure(interpolate('${HOST', env)), /unterminated/);
    assert.match(failure(interpolate('${1X}', env)), /invalid reference "\$\{1X\}"/);
    assert.match(failure(interpolate('${}', env)), /invalid reference/);
  });
});

describe('issues and suggestions', () => {
  it('formats paths with brackets for indexes and unusual keys', () => {
    assert.equal(formatPath(['pools', 'web', 'backends', 1, 'address']), 'pools.web.backends[1].address');
    assert.equal(formatPath(['pools', 'a b', 'x.y']), 'pools["a b"]["x.y"]');
    assert.equal(formatPath([]), '');
  });

  it('formats file:line:col path: message, leaving out what is unknown', () => {
    assert.equal(formatIssue({ file: 'u.yaml', line: 3, column: 5, path: 'a.b', message: 'm' }), 'u.yaml:3:5 a.b: m');
    assert.equal(formatIssue({ file: 'u.yaml', path: '', message: 'm' }), 'u.yaml: m');
    assert.equal(formatIssue({ file: 'u.yaml', line: 1, path: '', message: 'm' }), 'u.yaml:1: m');
  });

  it('sorts by line then column and drops duplicates', () => {
    const a = { file: 'f', line: 2, column: 1, path: 'a', message: 'x' };
    const b = { file: 'f', line: 1, column: 9, path: 'b', message: 'y' };
    const c = { file: 'f', line: 2, column: 0, path: 'c', message: 'z' };
    assert.deepEqual(sortIssues([a, b, c, a]), [b, c, a]);
  });

  it('suggests only plausible typos', () => {
    assert.equal(editDistance('pathPrefx', 'pathPrefix'), 1);
    assert.equal(editDistance('ab', 'ba'), 1);
    assert.equal(closest('pathprefix', ['path', 'pathPrefix', 'pathRegex']), 'pathPrefix');
    assert.equal(closest('zzzzzz', ['path', 'pathPrefix']), undefined);
    assert.equal(didYouMean('roundrobin', ['round-robin', 'random']), ' (did you mean "round-robin"?)');
    assert.equal(didYouMean('qqq', ['round-robin']), '');
  });
});

function failure(result: { readonly ok: boolean; readonly message?: string }): string {
  assert.equal(result.ok, false, 'expected a failure');
  return result.message ?? '';
}

function text(result: ReturnType<typeof interpolate>): string {
  assert.ok(result.ok, 'expected success');
  return result.value.text;
}
