import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compileRoutes } from '../../src/route/index.ts';

function rewrite(stripPrefix: string | undefined, target: string): string {
  const route = compileRoutes([{ pool: 'p', stripPrefix }]).routes[0];
  assert.ok(route);
  return route.rewritePath(target);
}

describe('stripPrefix', () => {
  test('strips the prefix and keeps the query string', () => {
    assert.equal(rewrite('/api', '/api/users?x=1'), '/users?x=1');
    assert.equal(rewrite('/api', '/api/users/1'), '/users/1');
  });

  test('the prefix alone becomes /', () => {
    assert.equal(rewrite('/api', '/api'), '/');
    assert.equal(rewrite('/api', '/api/'), '/');
    assert.equal(rewrite('/api', '/api?x=1'), '/?x=1');
  });

  test('only at a segment boundary: /apix is left alone', () => {
    assert.equal(rewrite('/api', '/apix'), '/apix');
    assert.equal(rewrite('/api', '/apix/y?z=1'), '/apix/y?z=1');
    assert.equal(rewrite('/api', '/ap'), '/ap');
    assert.equal(rewrite('/api', '/v1/api/x'), '/v1/api/x');
  });

  test('a trailing slash in the config is ignored', () => {
    assert.equal(rewrite('/api/', '/api/users'), '/users');
    assert.equal(rewrite('/api/', '/api'), '/');
    assert.equal(rewrite('/api/', '/apix'), '/apix');
  });

  test('multi-segment prefixes', () => {
    assert.equal(rewrite('/a/b', '/a/b/c?d'), '/c?d');
    assert.equal(rewrite('/a/b', '/a/bc'), '/a/bc');
  });

  test('/ and no stripPrefix leave the target unchanged', () => {
    assert.equal(rewrite('/', '/api/x?y=1'), '/api/x?y=1');
    assert.equal(rewrite(undefined, '/api/x?y=1'), '/api/x?y=1');
  });

  test('matching is on the raw path: encoded prefixes are not stripped', () => {
    assert.equal(rewrite('/api', '/%61pi/x'), '/%61pi/x');
  });

  test('a ? inside the prefix position of the query is not a path match', () => {
    assert.equal(rewrite('/api', '/x?/api/y'), '/x?/api/y');
  });

  test('the normalised prefix is exposed on the route', () => {
    assert.equal(compileRoutes([{ pool: 'p', stripPrefix: '/api//' }]).routes[0]?.stripPrefix, '/api');
    assert.equal(compileRoutes([{ pool: 'p', stripPrefix: '/' }]).routes[0]?.stripPrefix, undefined);
  });
});
