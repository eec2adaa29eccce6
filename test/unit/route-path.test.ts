import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { matches, req } from './route-helpers.ts';

describe('route path (exact)', () => {
  test('matches the exact path, ignoring the query', () => {
    assert.equal(matches({ path: '/health' }, req('/health')), true);
    assert.equal(matches({ path: '/health' }, req('/health?full=1')), true);
  });

  test('rejects longer, shorter, trailing-slash and different-case paths', () => {
    assert.equal(matches({ path: '/health' }, req('/health/')), false);
    assert.equal(matches({ path: '/health' }, req('/healthz')), false);
    assert.equal(matches({ path: '/health' }, req('/')), false);
    assert.equal(matches({ path: '/health' }, req('/Health')), false);
  });

  test('compares the raw path: no percent-decoding', () => {
    assert.equal(matches({ path: '/health' }, req('/%68ealth')), false);
    assert.equal(matches({ path: '/a%20b' }, req('/a%20b')), true);
    assert.equal(matches({ path: '/a b' }, req('/a%20b')), false);
  });
});

describe('route pathPrefix (segment-aware)', () => {
  test('matches the prefix itself and paths below it', () => {
    assert.equal(matches({ pathPrefix: '/api' }, req('/api')), true);
    assert.equal(matches({ pathPrefix: '/api' }, req('/api/')), true);
    assert.equal(matches({ pathPrefix: '/api' }, req('/api/users/1?x=1')), true);
    assert.equal(matches({ pathPrefix: '/api' }, req('/api?x=1')), true);
  });

  test('does not match at a non-segment boundary', () => {
    assert.equal(matches({ pathPrefix: '/api' }, req('/apix')), false);
    assert.equal(matches({ pathPrefix: '/api' }, req('/api-v2/users')), false);
  });

  test('does not match shorter or unrelated paths', () => {
    assert.equal(matches({ pathPrefix: '/api' }, req('/ap')), false);
    assert.equal(matches({ pathPrefix: '/api' }, req('/')), false);
    assert.equal(matches({ pathPrefix: '/api' }, req('/v1/api')), false);
  });

  test('a prefix ending in / requires the slash', () => {
    assert.equal(matches({ pathPrefix: '/api/' }, req('/api/users')), true);
    assert.equal(matches({ pathPrefix: '/api/' }, req('/api/')), true);
    assert.equal(matches({ pathPrefix: '/api/' }, req('/api')), false);
  });

  test('/ matches every path', () => {
    assert.equal(matches({ pathPrefix: '/' }, req('/')), true);
    assert.equal(matches({ pathPrefix: '/' }, req('/anything/at/all')), true);
  });

  test('is case-sensitive and on the raw path', () => {
    assert.equal(matches({ pathPrefix: '/api' }, req('/API/x')), false);
    assert.equal(matches({ pathPrefix: '/api' }, req('/%61pi/x')), false);
  });
});

describe('route pathRegex (anchored: must match the whole path)', () => {
  test('matches when the whole path matches', () => {
    assert.equal(matches({ pathRegex: '/users/[0-9]+' }, req('/users/42')), true);
    assert.equal(matches({ pathRegex: '/users/[0-9]+' }, req('/users/42?x=y')), true);
  });

  test('does not match a partial path (no implicit search)', () => {
    assert.equal(matches({ pathRegex: '/users/[0-9]+' }, req('/users/42/posts')), false);
    assert.equal(matches({ pathRegex: '/users/[0-9]+' }, req('/v1/users/42')), false);
    assert.equal(matches({ pathRegex: 'users' }, req('/users')), false);
  });

  test('alternation is anchored as a whole', () => {
    assert.equal(matches({ pathRegex: '/a|/b' }, req('/a')), true);
    assert.equal(matches({ pathRegex: '/a|/b' }, req('/b')), true);
    assert.equal(matches({ pathRegex: '/a|/b' }, req('/a/x')), false);
    assert.equal(matches({ pathRegex: '/a|/b' }, req('/x/b')), false);
  });

  test('searching is explicit with .*', () => {
    assert.equal(matches({ pathRegex: '.*\\.php' }, req('/x/index.php')), true);
    assert.equal(matches({ pathRegex: '.*\\.php' }, req('/x/index.php5')), false);
  });

  test('inline case-insensitivity with (?i:...)', () => {
    assert.equal(matches({ pathRegex: '(?i:/admin)' }, req('/ADMIN')), true);
    assert.equal(matches({ pathRegex: '/admin' }, req('/ADMIN')), false);
  });

  test('the query string is not part of the path', () => {
    assert.equal(matches({ pathRegex: '.*x=1.*' }, req('/p?x=1')), false);
  });
});
