import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cookiesOf, createRouteRequest, queryParamsOf } from '../../src/route/index.ts';

describe('createRouteRequest', () => {
  test('splits an origin-form target into path and query', () => {
    const r = createRouteRequest('GET', '/a/b?x=1&y', { host: 'h.test' });
    assert.equal(r.method, 'GET');
    assert.equal(r.host, 'h.test');
    assert.equal(r.target, '/a/b?x=1&y');
    assert.equal(r.path, '/a/b');
    assert.equal(r.query, 'x=1&y');
  });

  test('no query gives an empty query; a lone ? too', () => {
    assert.equal(createRouteRequest('GET', '/a', {}).query, '');
    const r = createRouteRequest('GET', '/a?', {});
    assert.equal(r.path, '/a');
    assert.equal(r.query, '');
  });

  test('a non-string Host header is treated as absent', () => {
    assert.equal(createRouteRequest('GET', '/', { host: ['a', 'b'] }).host, undefined);
    assert.equal(createRouteRequest('GET', '/', {}).host, undefined);
  });

  test('absolute-form: host from the target overrides the Host header (RFC 9112 §3.2.2)', () => {
    const r = createRouteRequest('GET', 'http://a.example:8080/x/y?q=1', { host: 'b.example' });
    assert.equal(r.host, 'a.example:8080');
    assert.equal(r.target, '/x/y?q=1');
    assert.equal(r.path, '/x/y');
    assert.equal(r.query, 'q=1');
  });

  test('absolute-form: empty path becomes /, userinfo is dropped, scheme is case-insensitive', () => {
    assert.equal(createRouteRequest('GET', 'HTTPS://u:p@a.example', {}).target, '/');
    assert.equal(createRouteRequest('GET', 'HTTPS://u:p@a.example', {}).host, 'a.example');
    const r = createRouteRequest('GET', 'http://a.example?x=1', {});
    assert.equal(r.target, '/?x=1');
    assert.equal(r.query, 'x=1');
  });

  test('asterisk-form and other schemes are left alone', () => {
    const star = createRouteRequest('OPTIONS', '*', { host: 'h' });
    assert.equal(star.path, '*');
    assert.equal(star.host, 'h');
    assert.equal(createRouteRequest('GET', 'ftp://a/x', { host: 'h' }).host, 'h');
  });

  test('query and cookie accessors parse once and memoise', () => {
    const r = createRouteRequest('GET', '/?a=1', { cookie: 'c=2' });
    const q = queryParamsOf(r);
    assert.equal(q.get('a'), '1');
    assert.equal(queryParamsOf(r), q);
    const c = cookiesOf(r);
    assert.equal(c.get('c'), '2');
    assert.equal(cookiesOf(r), c);
  });
});

describe('createRouteRequestFromRaw', () => {
  test('builds the lowercase header record on first read, like createRouteRequest with headerRecord', async () => {
    const { createRouteRequestFromRaw } = await import('../../src/route/request.ts');
    const raw = ['Host', 'h.test', 'X-Tenant', 'a', 'x-tenant', 'b', 'Cookie', 's=1'];
    const r = createRouteRequestFromRaw('GET', '/p?q=1', 'h.test', raw);
    assert.equal(r.host, 'h.test');
    assert.equal(r.path, '/p');
    assert.deepEqual(r.headers, { host: 'h.test', 'x-tenant': ['a', 'b'], cookie: 's=1' });
    assert.equal(r.headers, r.headers);
    assert.equal(cookiesOf(r).get('s'), '1');
    assert.equal(createRouteRequestFromRaw('GET', 'http://a.example/x', 'b.example', []).host, 'a.example');
  });
});
