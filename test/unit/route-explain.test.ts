/**
 * route/explain.ts, the words behind `usher explain`: each condition in the
 * words an operator reads, and the verdict always the route table's own, on
 * thousands of generated requests.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RouteConfig } from '../../src/config/types.ts';
import { explainRouteMatch } from '../../src/route/explain.ts';
import { createRouteRequest } from '../../src/route/request.ts';
import { compileRoutes } from '../../src/route/table.ts';
import { filterNames } from '../../src/explain/explain.ts';
import { mulberry32 } from '../helpers/prng.ts';

const routes: readonly RouteConfig[] = [
  { match: { host: '*.example.com', methods: ['GET', 'HEAD'] }, pool: 'p' },
  { match: { host: 'api.example.com', pathPrefix: '/api' }, pool: 'p' },
  { match: { path: '/healthz' }, pool: 'p' },
  { match: { pathPrefix: '/v1/', headers: { 'X-Env': 'prod', 'x-ab': '~[ab]' } }, pool: 'p' },
  { match: { pathRegex: '/users/[0-9]+', query: { v: '~v[23]', debug: '' } }, pool: 'p' },
  { match: { cookies: { plan: 'beta', team: '~t.*' }, methods: ['POST'] }, pool: 'p' },
  { pool: 'p' },
];

describe('explainRouteMatch', () => {
  it('agrees with the compiled route table on every generated request', () => {
    const table = compileRoutes(routes);
    const random = mulberry32(7);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
    const hosts = [undefined, 'api.example.com', 'API.example.com:8080', 'a.b.example.com', 'example.com', 'other.org', 'x.example.com.'];
    const paths = ['/', '/api', '/apix', '/api/x', '/healthz', '/healthz/', '/v1/a', '/v1', '/users/12', '/users/x', '/users/1/2'];
    const queries = ['', '?v=v2', '?v=v1', '?v=v3&debug', '?debug=&v=v2', '?v=v2&v=v1'];
    const methods = ['GET', 'HEAD', 'POST', 'PUT'];
    let matched = 0;
    for (let i = 0; i < 3000; i++) {
      const headers: Record<string, string | string[]> = {};
      const host = pick(hosts);
      if (host !== undefined) headers['host'] = host;
      if (random() < 0.5) headers['x-env'] = pick(['prod', 'dev', '']);
      if (random() < 0.5) headers['x-ab'] = random() < 0.2 ? ['c', pick(['a', 'c'])] : pick(['a', 'b', 'ab']);
      if (random() < 0.5) headers['cookie'] = pick(['plan=beta; team=tx', 'plan=beta', 'team=t1; plan=alpha', 'plan="beta"; team=t']);
      const request = createRouteRequest(pick(methods), `${pick(paths)}${pick(queries)}`, headers);
      for (const [index, route] of routes.entries()) {
        const explained = explainRouteMatch(route, request);
        assert.equal(explained.matched, table.routes[index]!.matches(request), `route ${index}: ${JSON.stringify({ ...request, headers })}`);
        if (explained.matched) matched++;
        else assert.ok(explained.firstFailure !== undefined && !explained.firstFailure.ok);
      }
    }
    assert.ok(matched > 3000, 'the generated requests match routes too, not only fail them');
  });

  it('says why in words, in the order the request path checks', () => {
    const why = (route: RouteConfig, method: string, url: string, headers: Record<string, string | string[]> = {}): string | undefined =>
      explainRouteMatch(route, createRouteRequest(method, url, headers)).firstFailure?.text;
    assert.equal(why({ match: { methods: ['GET'], pathPrefix: '/admin/' } }, 'POST', '/x'), 'method POST not in [GET]');
    assert.equal(why({ match: { pathPrefix: '/admin/' } }, 'GET', '/api/x'), 'path /api/x does not start with /admin/');
    assert.equal(why({ match: { pathPrefix: '/api' } }, 'GET', '/apix'), 'path /apix starts with /api but not at a segment boundary (/api/… or /api itself)');
    assert.equal(why({ match: { path: '/healthz' } }, 'GET', '/health'), 'path /health is not /healthz');
    assert.equal(why({ match: { host: 'a.example.com' } }, 'GET', '/', { host: 'b.example.com' }), 'host b.example.com does not match a.example.com');
    assert.equal(why({ match: { headers: { 'X-Canary': '1' } } }, 'GET', '/'), 'header x-canary is missing');
    assert.equal(why({ match: { headers: { 'x-canary': '1' } } }, 'GET', '/', { 'x-canary': '2' }), 'header x-canary is "2", not "1"');
    assert.equal(why({ match: { headers: { 'x-v': '~[23]' } } }, 'GET', '/', { 'x-v': ['1', '4'] }), 'header x-v ("1", "4") has no value that matches ~[23]');
    assert.equal(why({ match: { query: { v: '~v[23]' } } }, 'GET', '/?v=v1'), 'query parameter v "v1" does not match ~v[23]');
    assert.equal(why({ match: { cookies: { plan: 'beta' } } }, 'GET', '/', { cookie: 'plan=alpha' }), 'cookie plan is "alpha", not "beta"');
    // Headers come before the regex and the query, as in Route.matches.
    assert.equal(why({ match: { pathRegex: '/x', headers: { a: '1' }, query: { q: '1' } } }, 'GET', '/y'), 'header a is missing');
    const all = explainRouteMatch({ match: { methods: ['GET'], host: '*.example.com' } }, createRouteRequest('GET', '/', { host: 'x.example.com' }));
    assert.deepEqual(all.conditions.map((c) => c.text), ['method GET in [GET]', 'host x.example.com matches *.example.com']);
    assert.equal(all.matched, true);
  });
});

describe('filterNames', () => {
  it('names each filter of a route as the file writes it, whatever its shape', () => {
    assert.equal(filterNames(undefined), null);
    assert.deepEqual(filterNames([]), []);
    assert.deepEqual(
      filterNames(['gzip', { name: 'auth', module: './auth.ts' }, { module: './filters/rate.ts', options: { rps: 5 } }, { setHeaders: { a: '1' } }, { a: 1, b: 2 }, 7]),
      ['gzip', 'auth', './filters/rate.ts', 'setHeaders', 'filters[4]', 'filters[5]'],
    );
  });
});
