import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  evaluatePreconditions, hasOriginPreconditions, ifRangeAllowsRange, parseEntityTag, revalidationFields, selectForUpdate,
  strongMatch, weakMatch, type StoredValidators,
} from '../../src/cache/conditional.ts';
import { formatHttpDate, type Fields } from '../../src/cache/fields.ts';

const T0 = Date.UTC(2024, 0, 15, 12, 0, 0);
const LM = formatHttpDate(T0 - 3600_000);
const stored: StoredValidators = { fields: { etag: ['"v1"'], 'last-modified': [LM], date: [formatHttpDate(T0)] }, responseTime: T0 };
const ev = (req: Fields, method = 'GET', s: StoredValidators = stored) => evaluatePreconditions(method, req, s);

describe('entity tags (RFC 9110 §8.8.3)', () => {
  it('parses strong and weak tags, rejects malformed ones', () => {
    assert.deepEqual(parseEntityTag('"abc"'), { weak: false, opaque: '"abc"' });
    assert.deepEqual(parseEntityTag('W/"abc"'), { weak: true, opaque: '"abc"' });
    assert.equal(parseEntityTag('abc'), undefined);
    assert.equal(parseEntityTag('w/"abc"'), undefined);
    assert.equal(parseEntityTag('"a"b"'), undefined);
  });
  it('compares as in the §8.8.3.2 table', () => {
    const [w1, w1b, w2, s1] = ['W/"1"', 'W/"1"', 'W/"2"', '"1"'].map((t) => parseEntityTag(t)!) as [never, never, never, never];
    assert.equal(strongMatch(w1, w1b), false);
    assert.equal(weakMatch(w1, w1b), true);
    assert.equal(strongMatch(w1, w2), false);
    assert.equal(weakMatch(w1, w2), false);
    assert.equal(strongMatch(w1, s1), false);
    assert.equal(weakMatch(w1, s1), true);
    assert.equal(strongMatch(s1, s1), true);
  });
});

describe('preconditions (RFC 9110 §13.2.2)', () => {
  it('If-Match: strong comparison, * matches, failure is 412', () => {
    assert.equal(ev({ 'if-match': ['"v1"'] }), 'proceed');
    assert.equal(ev({ 'if-match': ['"x", "v1"'] }), 'proceed');
    assert.equal(ev({ 'if-match': ['W/"v1"'] }), 412);
    assert.equal(ev({ 'if-match': ['"v2"'] }), 412);
    assert.equal(ev({ 'if-match': ['*'] }), 'proceed');
  });
  it('If-Unmodified-Since applies only without If-Match, and is ignored when invalid', () => {
    const before = formatHttpDate(T0 - 7200_000);
    assert.equal(ev({ 'if-unmodified-since': [before] }), 412);
    assert.equal(ev({ 'if-unmodified-since': [LM] }), 'proceed');
    assert.equal(ev({ 'if-match': ['"v1"'], 'if-unmodified-since': [before] }), 'proceed');
    assert.equal(ev({ 'if-unmodified-since': ['garbage'] }), 'proceed');
    assert.equal(ev({ 'if-unmodified-since': [before] }, 'GET', { fields: { etag: ['"v1"'] }, responseTime: T0 }), 'proceed');
  });
  it('If-None-Match: weak comparison, 304 for GET/HEAD, 412 otherwise', () => {
    assert.equal(ev({ 'if-none-match': ['W/"v1"'] }), 304);
    assert.equal(ev({ 'if-none-match': ['"v1"'] }, 'HEAD'), 304);
    assert.equal(ev({ 'if-none-match': ['"v1"'] }, 'DELETE'), 412);
    assert.equal(ev({ 'if-none-match': ['*'] }), 304);
    assert.equal(ev({ 'if-none-match': ['"v2"'] }), 'proceed');
  });
  it('If-None-Match takes precedence over If-Modified-Since', () => {
    assert.equal(ev({ 'if-none-match': ['"v2"'], 'if-modified-since': [formatHttpDate(T0)] }), 'proceed');
  });
  it('If-Modified-Since: 304 when not modified since, only for GET/HEAD, ignored if invalid or a list', () => {
    assert.equal(ev({ 'if-modified-since': [LM] }), 304);
    assert.equal(ev({ 'if-modified-since': [formatHttpDate(T0 - 7200_000)] }), 'proceed');
    assert.equal(ev({ 'if-modified-since': [LM] }, 'POST'), 'proceed');
    assert.equal(ev({ 'if-modified-since': ['0'] }), 'proceed');
    assert.equal(ev({ 'if-modified-since': [LM, LM] }), 'proceed');
  });
  it('If-Modified-Since falls back to Date, then the time received (RFC 9111 §4.3.2)', () => {
    const noLm = { fields: { date: [formatHttpDate(T0)] }, responseTime: T0 + 5000 };
    assert.equal(ev({ 'if-modified-since': [formatHttpDate(T0)] }, 'GET', noLm), 304);
    assert.equal(ev({ 'if-modified-since': [formatHttpDate(T0)] }, 'GET', { fields: {}, responseTime: T0 + 5000 }), 'proceed');
    assert.equal(ev({ 'if-modified-since': [formatHttpDate(T0 + 5000)] }, 'GET', { fields: {}, responseTime: T0 + 5000 }), 304);
  });
  it('reports the preconditions a cache forwards', () => {
    assert.equal(hasOriginPreconditions({ 'if-match': ['*'] }), true);
    assert.equal(hasOriginPreconditions({ 'if-none-match': ['*'] }), false);
  });
});

describe('If-Range (RFC 9110 §13.1.5)', () => {
  it('honours Range without If-Range or on a strong ETag match', () => {
    assert.equal(ifRangeAllowsRange({}, stored.fields), true);
    assert.equal(ifRangeAllowsRange({ 'if-range': ['"v1"'] }, stored.fields), true);
    assert.equal(ifRangeAllowsRange({ 'if-range': ['"v2"'] }, stored.fields), false);
    assert.equal(ifRangeAllowsRange({ 'if-range': ['W/"v1"'] }, { etag: ['W/"v1"'] }), false);
  });
  it('accepts a date only when it equals a strong Last-Modified', () => {
    assert.equal(ifRangeAllowsRange({ 'if-range': [LM] }, stored.fields), true);
    assert.equal(ifRangeAllowsRange({ 'if-range': [formatHttpDate(T0)] }, stored.fields), false);
    // Last-Modified equal to Date is weak (§8.8.2.2).
    const weak = { 'last-modified': [formatHttpDate(T0)], date: [formatHttpDate(T0)] };
    assert.equal(ifRangeAllowsRange({ 'if-range': [formatHttpDate(T0)] }, weak), false);
    assert.equal(ifRangeAllowsRange({ 'if-range': ['nonsense'] }, stored.fields), false);
  });
});

describe('revalidation (RFC 9111 §4.3.1, §4.3.4)', () => {
  it('sends all variants\' ETags and the selected Last-Modified', () => {
    const a = { etag: ['"a"'], 'last-modified': [LM] };
    const b = { etag: ['W/"b"'] };
    const c = { etag: ['"a"'] };
    assert.deepEqual(revalidationFields(a, [a, b, c, {}]), { 'if-none-match': ['"a", W/"b"'], 'if-modified-since': [LM] });
    assert.deepEqual(revalidationFields(b, [b]), { 'if-none-match': ['W/"b"'] });
    assert.deepEqual(revalidationFields({}, [{}]), {});
  });
  it('selects by strong ETag: every match, none if no match', () => {
    const stored = [
      { fields: { etag: ['"a"'] }, responseTime: 1 },
      { fields: { etag: ['"b"'] }, responseTime: 2 },
      { fields: { etag: ['"a"'] }, responseTime: 3 },
    ];
    assert.deepEqual(selectForUpdate(stored, { etag: ['"a"'] }), [0, 2]);
    assert.deepEqual(selectForUpdate(stored, { etag: ['"z"'] }), []);
  });
  it('selects the most recent match for a weak ETag or Last-Modified', () => {
    const stored = [
      { fields: { etag: ['W/"a"'], 'last-modified': [LM] }, responseTime: 5 },
      { fields: { etag: ['W/"a"'], 'last-modified': [LM] }, responseTime: 9 },
      { fields: { etag: ['W/"b"'] }, responseTime: 20 },
    ];
    assert.deepEqual(selectForUpdate(stored, { etag: ['W/"a"'] }), [1]);
    assert.deepEqual(selectForUpdate(stored, { 'last-modified': [LM] }), [1]);
  });
  it('selects a lone validator-less response for a validator-less 304', () => {
    assert.deepEqual(selectForUpdate([{ fields: {}, responseTime: 1 }], {}), [0]);
    assert.deepEqual(selectForUpdate([{ fields: {}, responseTime: 1 }, { fields: {}, responseTime: 2 }], {}), []);
    assert.deepEqual(selectForUpdate([{ fields: { etag: ['"a"'] }, responseTime: 1 }], {}), []);
  });
});
