import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { responsePolicy, requestDirectives } from '../../src/cache/directives.ts';
import { formatHttpDate, parseHttpDate, type Fields } from '../../src/cache/fields.ts';
import {
  ageValue, currentAge, freshness, freshnessLifetime, mayServeStaleOnError, reuseDecision, type TimedResponse,
} from '../../src/cache/freshness.ts';

const T0 = Date.UTC(2024, 0, 15, 12, 0, 0);
const S = 1000;

function resp(fields: Record<string, string | string[]>, options: { status?: number; requestTime?: number; responseTime?: number } = {}): TimedResponse {
  const f: Record<string, string[]> = { date: [formatHttpDate(T0)] };
  for (const [k, v] of Object.entries(fields)) f[k] = Array.isArray(v) ? v : [v];
  return { status: options.status ?? 200, fields: f, requestTime: options.requestTime ?? T0, responseTime: options.responseTime ?? T0 };
}
const lifetime = (r: TimedResponse) => freshnessLifetime(r, responsePolicy(r.fields));
const noReq = requestDirectives({});

describe('HTTP-date parsing (RFC 9110 §5.6.7)', () => {
  it('accepts the three formats', () => {
    const t = Date.UTC(1994, 10, 6, 8, 49, 37);
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), t);
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', T0), t);
    assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994'), t);
  });
  it('rejects everything else, including 0 and impossible dates', () => {
    for (const s of ['0', '-1', '2024-01-15T12:00:00Z', 'Sun, 06 Nov 1994 08:49:37 UTC', 'Thu, 31 Feb 2024 00:00:00 GMT', '']) {
      assert.equal(parseHttpDate(s), undefined, s);
    }
  });
});

describe('freshness lifetime (RFC 9111 §4.2.1)', () => {
  it('prefers s-maxage over max-age over Expires', () => {
    const exp = formatHttpDate(T0 + 500 * S);
    assert.deepEqual(lifetime(resp({ 'cache-control': 'max-age=10, s-maxage=20', expires: exp })), { seconds: 20, source: 's-maxage' });
    assert.deepEqual(lifetime(resp({ 'cache-control': 'max-age=10', expires: exp })), { seconds: 10, source: 'max-age' });
    assert.deepEqual(lifetime(resp({ expires: exp })), { seconds: 500, source: 'expires' });
  });

  it('measures Expires from Date, not from the time received', () => {
    const r = resp({ expires: formatHttpDate(T0 + 100 * S) }, { responseTime: T0 + 30 * S });
    assert.equal(lifetime(r).seconds, 100);
  });

  it('uses the time received when Date is absent', () => {
    const r: TimedResponse = { status: 200, fields: { expires: [formatHttpDate(T0 + 100 * S)] }, requestTime: T0 + 40 * S, responseTime: T0 + 40 * S };
    assert.equal(lifetime(r).seconds, 60);
  });

  it('treats an invalid Expires, 0 included, as already expired', () => {
    for (const e of ['0', '-1', 'yesterday']) {
      assert.deepEqual(lifetime(resp({ expires: e, 'last-modified': formatHttpDate(T0 - 1000 * S) })), { seconds: 0, source: 'expires' }, e);
    }
  });

  it('uses the first of several Expires lines', () => {
    assert.equal(lifetime(resp({ expires: [formatHttpDate(T0 + 10 * S), formatHttpDate(T0 + 99 * S)] })).seconds, 10);
  });

  it('ignores Expires (and Cache-Control) when a targeted field governs', () => {
    const r = resp({ 'cdn-cache-control': 'public', expires: formatHttpDate(T0 + 100 * S), 'cache-control': 'max-age=50' });
    assert.notEqual(lifetime(r).source, 'expires');
    assert.notEqual(lifetime(r).source, 'max-age');
  });

  it('gives a heuristic of 10% of Date − Last-Modified for a heuristically cacheable status', () => {
    const r = resp({ 'last-modified': formatHttpDate(T0 - 1000 * S) });
    assert.deepEqual(lifetime(r), { seconds: 100, source: 'heuristic' });
  });

  it('caps the heuristic at one hour', () => {
    const r = resp({ 'last-modified': formatHttpDate(T0 - 365 * 86400 * S) });
    assert.equal(lifetime(r).seconds, 3600);
  });

  it('gives no heuristic for a non-heuristic status unless public', () => {
    const lm = formatHttpDate(T0 - 1000 * S);
    assert.deepEqual(lifetime(resp({ 'last-modified': lm }, { status: 302 })), { seconds: 0, source: 'none' });
    assert.equal(lifetime(resp({ 'last-modified': lm, 'cache-control': 'public' }, { status: 302 })).seconds, 100);
  });

  it('has no default TTL: no explicit lifetime and no Last-Modified means 0', () => {
    assert.deepEqual(lifetime(resp({})), { seconds: 0, source: 'none' });
    assert.deepEqual(lifetime(resp({ 'last-modified': formatHttpDate(T0 + 10 * S) })), { seconds: 0, source: 'none' });
  });
});

describe('age (RFC 9111 §4.2.3, §5.1)', () => {
  it('reads Age: first member, invalid ignored, huge clamped', () => {
    const age = (v: string[]): number => ageValue({ age: v } satisfies Fields);
    assert.equal(age(['30']), 30);
    assert.equal(age(['30, 60']), 30);
    assert.equal(age(['30', '60']), 30);
    assert.equal(age(['-5']), 0);
    assert.equal(age(['1.5']), 0);
    assert.equal(age(['abc']), 0);
    assert.equal(age(['99999999999999']), 2 ** 31);
    assert.equal(ageValue({}), 0);
  });

  it('adds Age, response delay and resident time', () => {
    const r = resp({ age: '10' }, { requestTime: T0 - 2 * S, responseTime: T0 });
    assert.equal(currentAge(r, T0 + 5 * S), 10 + 2 + 5);
  });

  it('uses the apparent age when the Date is older than Age claims', () => {
    const r: TimedResponse = { status: 200, fields: { date: [formatHttpDate(T0 - 50 * S)], age: ['3'] }, requestTime: T0, responseTime: T0 };
    assert.equal(currentAge(r, T0), 50);
  });

  it('never goes negative on a Date from the future', () => {
    const r: TimedResponse = { status: 200, fields: { date: [formatHttpDate(T0 + 500 * S)] }, requestTime: T0, responseTime: T0 };
    assert.equal(currentAge(r, T0), 0);
  });
});

describe('reuse (RFC 9111 §4.2, §4.2.4, RFC 5861)', () => {
  const decide = (fields: Record<string, string>, at: number, req: Record<string, string> = {}, invalidated = false) => {
    const r = resp(fields);
    const reqDirs = requestDirectives(Object.fromEntries(Object.entries(req).map(([k, v]) => [k, [v]])));
    return reuseDecision(r, responsePolicy(r.fields), reqDirs, at, { invalidated }).kind;
  };

  it('is fresh until the lifetime is used up, then stale', () => {
    assert.equal(decide({ 'cache-control': 'max-age=60' }, T0 + 59 * S), 'fresh');
    assert.equal(decide({ 'cache-control': 'max-age=60' }, T0 + 60 * S), 'revalidate');
    const f = freshness(resp({ 'cache-control': 'max-age=60' }), responsePolicy({ 'cache-control': ['max-age=60'] }), T0 + 70 * S);
    assert.equal(f.fresh, false);
    assert.equal(f.ttl, -10);
  });

  it('always revalidates a response with no-cache, however fresh', () => {
    assert.equal(decide({ 'cache-control': 'max-age=600, no-cache' }, T0), 'revalidate');
  });

  it('does not let a qualified no-cache force revalidation', () => {
    assert.equal(decide({ 'cache-control': 'max-age=600, no-cache="set-cookie"' }, T0), 'fresh');
  });

  it('serves stale within stale-while-revalidate, not after', () => {
    const cc = { 'cache-control': 'max-age=60, stale-while-revalidate=30' };
    assert.equal(decide(cc, T0 + 80 * S), 'stale-while-revalidate');
    assert.equal(decide(cc, T0 + 91 * S), 'revalidate');
  });

  it('never serves stale with must-revalidate, proxy-revalidate or s-maxage', () => {
    for (const extra of ['must-revalidate', 'proxy-revalidate', 's-maxage=60']) {
      assert.equal(decide({ 'cache-control': `max-age=60, stale-while-revalidate=30, ${extra}` }, T0 + 80 * S), 'revalidate', extra);
      assert.equal(decide({ 'cache-control': `max-age=60, ${extra}` }, T0 + 80 * S, { 'cache-control': 'max-stale' }), 'revalidate', extra);
    }
  });

  it('honours request no-cache, max-age, min-fresh and max-stale', () => {
    const cc = { 'cache-control': 'max-age=60' };
    assert.equal(decide(cc, T0 + 10 * S, { 'cache-control': 'no-cache' }), 'revalidate');
    assert.equal(decide(cc, T0 + 10 * S, { 'cache-control': 'max-age=5' }), 'revalidate');
    assert.equal(decide(cc, T0 + 10 * S, { 'cache-control': 'max-age=20' }), 'fresh');
    assert.equal(decide(cc, T0 + 10 * S, { 'cache-control': 'min-fresh=55' }), 'revalidate');
    assert.equal(decide(cc, T0 + 10 * S, { 'cache-control': 'min-fresh=40' }), 'fresh');
    assert.equal(decide(cc, T0 + 70 * S, { 'cache-control': 'max-stale=20' }), 'stale-allowed');
    assert.equal(decide(cc, T0 + 90 * S, { 'cache-control': 'max-stale=20' }), 'revalidate');
    assert.equal(decide(cc, T0 + 9999 * S, { 'cache-control': 'max-stale' }), 'stale-allowed');
  });

  it('treats a soft-purged entry as stale but still lets stale-while-revalidate apply', () => {
    assert.equal(decide({ 'cache-control': 'max-age=600' }, T0, {}, true), 'revalidate');
    assert.equal(decide({ 'cache-control': 'max-age=600, stale-while-revalidate=10' }, T0, {}, true), 'stale-while-revalidate');
  });

  it('allows stale-if-error within the window from the response or the request', () => {
    const check = (cc: string, at: number, reqCc = '') => {
      const r = resp({ 'cache-control': cc });
      return mayServeStaleOnError(r, responsePolicy(r.fields), requestDirectives(reqCc ? { 'cache-control': [reqCc] } : {}), at);
    };
    assert.equal(check('max-age=60, stale-if-error=100', T0 + 150 * S), true);
    assert.equal(check('max-age=60, stale-if-error=100', T0 + 161 * S), false);
    assert.equal(check('max-age=60', T0 + 100 * S), false);
    assert.equal(check('max-age=60', T0 + 100 * S, 'stale-if-error=50'), true);
    assert.equal(check('max-age=60, stale-if-error=100, must-revalidate', T0 + 70 * S), false);
    assert.equal(check('max-age=60, stale-if-error=100, no-cache', T0 + 70 * S), false);
  });
});
