/**
 * Micro-benchmark of the route phase (src/proxy/route-phase.ts) for one
 * request, as the HTTP/1.1 front runs it: build the route view, run
 * `routeRequest`, and build the upstream header block (where a filter's
 * header edits are applied). Four routes:
 *
 * - `decide` baseline: what the route phase cost before filters existed
 *   (match, refusals, hash and sticky inputs, one result object; the old
 *   `decide()` + `refuseRequest()` inlined here), for reference;
 * - no filters: the same request through `routeRequest`;
 * - one `headers` filter (set one request field, remove one);
 * - `stripPrefix` (a filter internally since filters exist).
 *
 *   node bench/micro/route-phase.ts
 *
 * Median and min of 7 rounds after warm-up (min is the figure to trust on a
 * busy machine); one core, no GC tuning.
 */
import { hashString } from '../../src/balancer/hash-fn.ts';
import { parseConfig } from '../../src/config/index.ts';
import { createAccessLog } from '../../src/observe/access-log.ts';
import { hashKeyOf } from '../../src/proxy/hash-key.ts';
import { upstreamRequestHeaderLines } from '../../src/proxy/headers.ts';
import type { HttpListenerPlan, RequestFacts } from '../../src/proxy/plan.ts';
import { routeRequest } from '../../src/proxy/route-phase.ts';
import { cookiesOf, createRouteRequestFromRaw } from '../../src/route/request.ts';
import { applySnapshot, compileSnapshotRoutes } from '../../src/runtime/snapshot.ts';
import { measureNs } from './timing.ts';

const yaml = `listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: { pathPrefix: /static }
        pool: main
      - match: { pathPrefix: /plain }
        pool: main
      - match: { pathPrefix: /headers }
        pool: main
        filters:
          - headers: { request: { set: { x-env: prod }, remove: [x-debug] } }
      - match: { pathPrefix: /strip }
        pool: main
        stripPrefix: /strip
pools:
  main:
    backends:
      - address: 127.0.0.1:9
`;
const parsed = parseConfig(yaml, 'bench.yaml', {});
if (!parsed.ok) throw new Error(parsed.errors.map((e) => e.message).join('\n'));
const { snapshot } = applySnapshot(compileSnapshotRoutes(parsed.config), undefined, createAccessLog({ enabled: false }), {});
const plan: HttpListenerPlan = snapshot.listeners.get('web')!;

const raw = [
  'Host', 'api.example.com',
  'User-Agent', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
  'Accept', 'application/json, text/plain, */*',
  'Accept-Encoding', 'gzip, deflate, br',
  'Accept-Language', 'en-US,en;q=0.9',
  'Connection', 'keep-alive',
  'Cookie', 'session=abcdef0123456789; theme=dark',
  'X-Request-Id', '7f3c2a9e-1b4d-4c8e-9f2a-6d5e4c3b2a10',
];
const keepAlive = ['keep-alive'];
const info = { clientIp: '10.0.0.9', proto: 'http', requestId: '0123456789abcdef0123456789abcdef' };
const facts: RequestFacts = {
  clientIp: '10.0.0.9', scheme: 'http', protocol: 'HTTP/1.1', requestId: info.requestId, rawTarget: '/plain/users/42?x=1',
  rawHeaders: raw, contentLength: -1, absoluteForm: false, hostHeader: 'api.example.com', malformed: undefined,
};

let sink = 0;

function bench(name: string, iterations: number, fn: () => void): void {
  const { median, min } = measureNs(iterations, fn);
  console.log(`${name.padEnd(56)} ${median.toFixed(0).padStart(6)} ns/op median ${min.toFixed(0).padStart(6)} min`);
}

/** The route phase as it was before filters: decide() and refuseRequest() of the previous commit, inlined. */
function decideBaseline(target: string): void {
  const request = createRouteRequestFromRaw('GET', target, 'api.example.com', raw);
  const route = plan.routes.match(request)!;
  const pool = plan.poolOfRoute[route.index]!;
  const hash = pool.hashKey === undefined ? 0 : hashString(hashKeyOf(pool.hashKey, request, facts.clientIp));
  const stickyToken = pool.sticky === undefined ? undefined : cookiesOf(request).get(pool.sticky.name);
  const decision = { route, pool, redirect: undefined, hash, stickyToken };
  if (target.charCodeAt(0) !== 0x2f) throw new Error('origin-form only');
  sink += decision.hash + upstreamRequestHeaderLines(raw, keepAlive, info).length + route.rewritePath(request.target).length;
}

function viaRoutePhase(target: string): void {
  const request = createRouteRequestFromRaw('GET', target, 'api.example.com', raw);
  const outcome = routeRequest(plan, request, facts);
  if (outcome.kind !== 'forward') throw new Error(`expected forward, got ${outcome.kind}`);
  sink += outcome.hash + upstreamRequestHeaderLines(raw, keepAlive, info, outcome.filters).length + outcome.target.length;
}

const N = 300_000;
console.log(`node ${process.version}`);
for (let round = 0; round < 2; round++) {
  bench('decide() baseline, no filters (before this change)', N, () => decideBaseline('/static/users/42?x=1'));
  bench('routeRequest, route without filters', N, () => viaRoutePhase('/plain/users/42?x=1'));
  bench('routeRequest, one headers filter (set 1, remove 1)', N, () => viaRoutePhase('/headers/users/42?x=1'));
  bench('routeRequest, stripPrefix (a filter internally)', N, () => viaRoutePhase('/strip/users/42?x=1'));
}
if (sink === 0) console.log('');
