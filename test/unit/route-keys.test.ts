import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { matches, req } from './route-helpers.ts';

describe('route methods', () => {
  test('matches a listed method', () => {
    assert.equal(matches({ methods: ['GET', 'POST'] }, req('/', { method: 'POST' })), true);
    assert.equal(matches({ methods: ['GET', 'POST'] }, req('/', { method: 'GET' })), true);
  });

  test('rejects an unlisted method; HEAD is not implied by GET', () => {
    assert.equal(matches({ methods: ['GET', 'POST'] }, req('/', { method: 'DELETE' })), false);
    assert.equal(matches({ methods: ['GET'] }, req('/', { method: 'HEAD' })), false);
  });

  test('config names are upper-cased; request methods are compared exactly', () => {
    assert.equal(matches({ methods: ['get'] }, req('/', { method: 'GET' })), true);
    assert.equal(matches({ methods: ['GET'] }, req('/', { method: 'get' })), false);
  });
});

describe('route headers', () => {
  test('exact value, header name case-insensitive in config', () => {
    const match = { headers: { 'X-Env': 'canary' } };
    assert.equal(matches(match, req('/', { headers: { 'x-env': 'canary' } })), true);
    assert.equal(matches(match, req('/', { headers: { 'x-env': 'Canary' } })), false);
    assert.equal(matches(match, req('/', { headers: { 'x-env': 'canary2' } })), false);
    assert.equal(matches(match, req('/', { headers: {} })), false);
  });

  test('~regex value must match the whole value', () => {
    const match = { headers: { 'user-agent': '~.*Mobile.*' } };
    assert.equal(matches(match, req('/', { headers: { 'user-agent': 'Mozilla/5.0 (iPhone) Mobile/15E148' } })), true);
    assert.equal(matches(match, req('/', { headers: { 'user-agent': 'curl/8.0' } })), false);
    assert.equal(matches({ headers: { 'x-v': '~v[0-9]' } }, req('/', { headers: { 'x-v': 'v1' } })), true);
    assert.equal(matches({ headers: { 'x-v': '~v[0-9]' } }, req('/', { headers: { 'x-v': 'v12' } })), false);
  });

  test('absent header never matches, even ~.*; empty value matches present-but-empty', () => {
    assert.equal(matches({ headers: { 'x-a': '~.*' } }, req('/', { headers: {} })), false);
    assert.equal(matches({ headers: { 'x-a': '~.*' } }, req('/', { headers: { 'x-a': '' } })), true);
    assert.equal(matches({ headers: { 'x-a': '' } }, req('/', { headers: { 'x-a': '' } })), true);
    assert.equal(matches({ headers: { 'x-a': '' } }, req('/', { headers: {} })), false);
  });

  test('a value starting with ~ is written ~~', () => {
    assert.equal(matches({ headers: { 'x-a': '~~x' } }, req('/', { headers: { 'x-a': '~x' } })), true);
    assert.equal(matches({ headers: { 'x-a': '~~x' } }, req('/', { headers: { 'x-a': 'x' } })), false);
  });

  test('array values: any element may match', () => {
    const match = { headers: { 'x-a': 'b' } };
    assert.equal(matches(match, req('/', { headers: { 'x-a': ['a', 'b'] } })), true);
    assert.equal(matches(match, req('/', { headers: { 'x-a': ['a', 'c'] } })), false);
    assert.equal(matches(match, req('/', { headers: { 'x-a': [] } })), false);
  });

  test('all headers must hold', () => {
    const match = { headers: { 'x-a': '1', 'x-b': '~[0-9]+' } };
    assert.equal(matches(match, req('/', { headers: { 'x-a': '1', 'x-b': '22' } })), true);
    assert.equal(matches(match, req('/', { headers: { 'x-a': '1', 'x-b': 'no' } })), false);
    assert.equal(matches(match, req('/', { headers: { 'x-a': '2', 'x-b': '22' } })), false);
  });
});

describe('route query', () => {
  test('exact decoded value', () => {
    assert.equal(matches({ query: { v: '2' } }, req('/?v=2')), true);
    assert.equal(matches({ query: { v: '2' } }, req('/?a=1&v=2&b=3')), true);
    assert.equal(matches({ query: { v: '2' } }, req('/?v=3')), false);
    assert.equal(matches({ query: { q: 'a b' } }, req('/?q=a+b')), true);
    assert.equal(matches({ query: { q: 'a b' } }, req('/?q=a%20b')), true);
    assert.equal(matches({ query: { 'a b': '1' } }, req('/?a%20b=1')), true);
  });

  test('present-but-empty vs absent are distinct', () => {
    assert.equal(matches({ query: { debug: '' } }, req('/?debug')), true);
    assert.equal(matches({ query: { debug: '' } }, req('/?debug=')), true);
    assert.equal(matches({ query: { debug: '' } }, req('/?x=1')), false);
    assert.equal(matches({ query: { debug: '' } }, req('/')), false);
    assert.equal(matches({ query: { debug: '~.*' } }, req('/?debug')), true);
    assert.equal(matches({ query: { debug: '~.*' } }, req('/?nodebug=1')), false);
  });

  test('~regex values are anchored', () => {
    assert.equal(matches({ query: { id: '~[0-9]+' } }, req('/?id=123')), true);
    assert.equal(matches({ query: { id: '~[0-9]+' } }, req('/?id=12a')), false);
  });

  test('keys are case-sensitive', () => {
    assert.equal(matches({ query: { v: '1' } }, req('/?V=1')), false);
  });

  test('the first value of a repeated key is the one matched', () => {
    assert.equal(matches({ query: { role: 'user' } }, req('/?role=user&role=admin')), true);
    assert.equal(matches({ query: { role: 'admin' } }, req('/?role=user&role=admin')), false);
  });
});

describe('route cookies', () => {
  test('exact value from the Cookie header', () => {
    const match = { cookies: { beta: '1' } };
    assert.equal(matches(match, req('/', { headers: { cookie: 'a=x; beta=1' } })), true);
    assert.equal(matches(match, req('/', { headers: { cookie: 'a=x; beta=2' } })), false);
    assert.equal(matches(match, req('/', { headers: { cookie: 'a=x' } })), false);
    assert.equal(matches(match, req('/')), false);
  });

  test('quoted values are unquoted; values are not percent-decoded', () => {
    assert.equal(matches({ cookies: { s: 'x y' } }, req('/', { headers: { cookie: 's="x y"' } })), true);
    assert.equal(matches({ cookies: { s: 'a%20b' } }, req('/', { headers: { cookie: 's=a%20b' } })), true);
    assert.equal(matches({ cookies: { s: 'a b' } }, req('/', { headers: { cookie: 's=a%20b' } })), false);
  });

  test('present-but-empty vs absent, and ~regex', () => {
    assert.equal(matches({ cookies: { s: '' } }, req('/', { headers: { cookie: 's=' } })), true);
    assert.equal(matches({ cookies: { s: '' } }, req('/', { headers: { cookie: 't=' } })), false);
    assert.equal(matches({ cookies: { s: '~v[12]' } }, req('/', { headers: { cookie: 's=v2' } })), true);
    assert.equal(matches({ cookies: { s: '~v[12]' } }, req('/', { headers: { cookie: 's=v3' } })), false);
  });
});

describe('route: all keys of one match must hold', () => {
  const match = {
    host: 'a.example.com',
    methods: ['GET'],
    pathPrefix: '/api',
    headers: { 'x-env': 'canary' },
    query: { v: '2' },
    cookies: { beta: '1' },
  };
  const good = { method: 'GET', host: 'a.example.com', headers: { 'x-env': 'canary', cookie: 'beta=1' } };

  test('matches when every key holds', () => {
    assert.equal(matches(match, req('/api/x?v=2', good)), true);
  });

  test('fails when any single key fails', () => {
    assert.equal(matches(match, req('/api/x?v=2', { ...good, method: 'POST' })), false);
    assert.equal(matches(match, req('/api/x?v=2', { ...good, host: 'b.example.com' })), false);
    assert.equal(matches(match, req('/web/x?v=2', good)), false);
    assert.equal(matches(match, req('/api/x?v=2', { ...good, headers: { ...good.headers, 'x-env': 'prod' } })), false);
    assert.equal(matches(match, req('/api/x?v=1', good)), false);
    assert.equal(matches(match, req('/api/x?v=2', { ...good, headers: { ...good.headers, cookie: 'beta=0' } })), false);
  });
});
