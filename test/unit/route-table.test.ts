import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsherConfigError } from '../../src/errors.ts';
import { compileRoutes, RouteConfigError, type RouteRequest } from '../../src/route/index.ts';
import { req } from './route-helpers.ts';

describe('route table: order, catch-all, no match', () => {
  const table = compileRoutes([
    { name: 'health', match: { path: '/health' }, pool: 'ops' },
    { name: 'api-v2', match: { pathPrefix: '/api', query: { v: '2' } }, pool: 'api2' },
    { name: 'api', match: { pathPrefix: '/api' }, pool: 'api' },
    { name: 'api-shadowed', match: { pathPrefix: '/api/users' }, pool: 'never' },
    { match: {}, pool: 'web' },
    { name: 'after-catch-all', match: { path: '/late' }, pool: 'never' },
  ]);

  test('the first matching route wins, in config order', () => {
    assert.equal(table.match(req('/health'))?.name, 'health');
    assert.equal(table.match(req('/api/users?v=2'))?.name, 'api-v2');
    assert.equal(table.match(req('/api/users?v=1'))?.name, 'api');
  });

  test('a later, more specific route is shadowed by an earlier one', () => {
    assert.equal(table.match(req('/api/users/1'))?.pool, 'api');
  });

  test('a route with an empty match is a catch-all and stops the search', () => {
    const route = table.match(req('/late'));
    assert.equal(route?.pool, 'web');
    assert.equal(route?.catchAll, true);
    assert.equal(route?.index, 4);
    assert.equal(table.match(req('/', { method: 'DELETE' }))?.pool, 'web');
  });

  test('a route without `match` is a catch-all', () => {
    const t = compileRoutes([{ match: { path: '/a' }, pool: 'a' }, { pool: 'rest' }]);
    assert.equal(t.match(req('/b'))?.pool, 'rest');
    assert.equal(t.routes[1]?.catchAll, true);
    assert.equal(t.routes[0]?.catchAll, false);
  });

  test('any single match key makes a route not a catch-all', () => {
    const keys = [
      { host: 'a.test' },
      { path: '/a' },
      { pathPrefix: '/a' },
      { pathRegex: '/a' },
      { methods: ['GET'] },
      { headers: { 'x-a': '1' } },
      { query: { a: '1' } },
      { cookies: { a: '1' } },
    ];
    for (const match of keys) {
      assert.equal(compileRoutes([{ match, pool: 'a' }]).routes[0]?.catchAll, false, JSON.stringify(match));
    }
    assert.equal(compileRoutes([{ match: { headers: {}, query: {} }, pool: 'a' }]).routes[0]?.catchAll, true);
  });

  test('no matching route gives undefined', () => {
    const t = compileRoutes([{ match: { path: '/a' }, pool: 'a' }, { match: { host: 'x.test' }, pool: 'x' }]);
    assert.equal(t.match(req('/b', { host: 'y.test' })), undefined);
    assert.equal(compileRoutes([]).match(req('/')), undefined);
  });
});

describe('route table: names, index, pool', () => {
  test('name defaults to route-<index>; index and pool come from config', () => {
    const t = compileRoutes([{ name: 'first', pool: 'a', match: { path: '/a' } }, { pool: 'b' }]);
    assert.deepEqual(
      t.routes.map((r) => [r.index, r.name, r.pool]),
      [
        [0, 'first', 'a'],
        [1, 'route-1', 'b'],
      ],
    );
  });

  test('the table and its routes are frozen', () => {
    const t = compileRoutes([{ pool: 'a' }]);
    assert.equal(Object.isFrozen(t), true);
    assert.equal(Object.isFrozen(t.routes), true);
    assert.equal(Object.isFrozen(t.routes[0]), true);
  });

  test('compiling does not keep a reference to the mutable config', () => {
    const match = { headers: { 'x-a': '1' } as Record<string, string> };
    const t = compileRoutes([{ match, pool: 'a' }]);
    match.headers['x-a'] = '2';
    assert.equal(t.match(req('/', { headers: { 'x-a': '1' } }))?.pool, 'a');
  });
});

describe('route table: compile errors', () => {
  function compileError(fn: () => unknown): RouteConfigError {
    try {
      fn();
    } catch (error) {
      assert.ok(error instanceof RouteConfigError, `expected RouteConfigError, got ${String(error)}`);
      assert.ok(error instanceof UsherConfigError);
      assert.equal(error.code, 'USHER_CONFIG_INVALID');
      return error;
    }
    assert.fail('expected compileRoutes to throw');
  }

  test('invalid pathRegex names the field', () => {
    const error = compileError(() => compileRoutes([{ pool: 'a' }, { match: { pathRegex: '/(a' }, pool: 'b' }]));
    assert.equal(error.kind, 'invalid-regex');
    assert.equal(error.field, 'routes[1].match.pathRegex');
    assert.match(error.message, /^routes\[1\]\.match\.pathRegex: invalid regular expression/);
  });

  test('a regex that is only valid once wrapped is still rejected', () => {
    assert.equal(compileError(() => compileRoutes([{ match: { pathRegex: 'a)|(b' }, pool: 'a' }])).kind, 'invalid-regex');
  });

  test('invalid ~regex in headers, query and cookies name the key', () => {
    const h = compileError(() => compileRoutes([{ match: { headers: { 'X-A': '~[' } }, pool: 'a' }]));
    assert.equal(h.field, 'routes[0].match.headers.X-A');
    const q = compileError(() => compileRoutes([{ match: { query: { v: '~(' } }, pool: 'a' }]));
    assert.equal(q.field, 'routes[0].match.query.v');
    const c = compileError(() => compileRoutes([{ match: { cookies: { s: '~*' } }, pool: 'a' }]));
    assert.equal(c.field, 'routes[0].match.cookies.s');
  });

  test('unsupported host patterns and ports are rejected', () => {
    for (const host of ['*', 'www.example.*', 'a.*.example.com', '.example.com', '', 'example.com:80', '*.']) {
      const error = compileError(() => compileRoutes([{ match: { host }, pool: 'a' }]));
      assert.equal(error.kind, 'invalid-host', host);
      assert.equal(error.field, 'routes[0].match.host');
    }
  });

  test('empty methods, bad stripPrefix and duplicate names are rejected', () => {
    assert.equal(compileError(() => compileRoutes([{ match: { methods: [] }, pool: 'a' }])).kind, 'invalid-methods');
    assert.equal(compileError(() => compileRoutes([{ stripPrefix: 'api', pool: 'a' }])).kind, 'invalid-strip-prefix');
    const dup = compileError(() => compileRoutes([{ name: 'x', pool: 'a' }, { name: 'x', pool: 'b' }]));
    assert.equal(dup.kind, 'duplicate-name');
    assert.equal(dup.field, 'routes[1].name');
    const clash = compileError(() => compileRoutes([{ name: 'route-1', pool: 'a' }, { pool: 'b' }]));
    assert.equal(clash.kind, 'duplicate-name');
  });
});

describe('route table: cheap checks first', () => {
  test('exact header values are checked before regex ones, whatever the config order', () => {
    const t = compileRoutes([{ match: { headers: { 'x-re': '~.*', 'x-exact': 'yes' } }, pool: 'a' }]);
    const reads: string[] = [];
    const headers = {
      get 'x-re'() {
        reads.push('x-re');
        return 'anything';
      },
      get 'x-exact'() {
        reads.push('x-exact');
        return 'no';
      },
    };
    assert.equal(t.match({ ...req('/'), headers }), undefined);
    assert.deepEqual(reads, ['x-exact']);
  });
});

describe('route table: lazy query and cookie parsing', () => {
  /** A request whose `query` and `cookie` reads are counted. */
  function countingRequest(url: string, cookie: string): { request: RouteRequest; reads: { query: number; cookie: number } } {
    const reads = { query: 0, cookie: 0 };
    const base = req(url);
    const headers = {
      get cookie() {
        reads.cookie++;
        return cookie;
      },
    };
    const request: RouteRequest = {
      ...base,
      get query() {
        reads.query++;
        return base.query;
      },
      headers,
    };
    return { request, reads };
  }

  test('no query or cookie parsing when no route needs it', () => {
    const t = compileRoutes([{ match: { pathPrefix: '/a', headers: { 'x-a': '1' } }, pool: 'a' }, { pool: 'b' }]);
    const { request, reads } = countingRequest('/a?x=1', 's=1');
    assert.equal(t.match(request)?.pool, 'b');
    assert.deepEqual(reads, { query: 0, cookie: 0 });
    assert.equal(request.parsedQuery, undefined);
    assert.equal(request.parsedCookies, undefined);
  });

  test('parsed at most once per request across routes, and memoised on the request', () => {
    const t = compileRoutes([
      { match: { query: { v: '1' }, cookies: { s: '9' } }, pool: 'a' },
      { match: { query: { v: '2' }, cookies: { s: '9' } }, pool: 'b' },
      { match: { query: { x: '1' }, cookies: { s: '1' } }, pool: 'c' },
    ]);
    const { request, reads } = countingRequest('/?x=1', 's=1');
    assert.equal(t.match(request)?.pool, 'c');
    assert.deepEqual(reads, { query: 1, cookie: 1 });
    assert.equal(request.parsedQuery?.get('x'), '1');
    assert.equal(request.parsedCookies?.get('s'), '1');
  });

  test('query and cookies are not parsed when cheaper keys already failed', () => {
    const t = compileRoutes([{ match: { path: '/only', query: { v: '1' }, cookies: { s: '1' } }, pool: 'a' }]);
    const { request, reads } = countingRequest('/other?v=1', 's=1');
    assert.equal(t.match(request), undefined);
    assert.deepEqual(reads, { query: 0, cookie: 0 });
  });
});
