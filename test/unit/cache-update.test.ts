import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { freshen, headOutcome } from '../../src/cache/update.ts';
import { currentAge, type TimedResponse } from '../../src/cache/freshness.ts';
import { formatHttpDate } from '../../src/cache/fields.ts';

const T0 = Date.UTC(2024, 0, 15, 12, 0, 0);
const stored: TimedResponse = {
  status: 200,
  fields: {
    date: [formatHttpDate(T0)], age: ['50'], etag: ['"1"'], 'cache-control': ['max-age=60'], 'content-length': ['1234'],
    'content-type': ['text/html'], 'content-encoding': ['gzip'], 'x-old': ['kept'],
  },
  requestTime: T0,
  responseTime: T0,
};

describe('freshening from a 304 (RFC 9111 §3.2, §4.3.4)', () => {
  it('replaces stored fields with the 304\'s and keeps the others', () => {
    const t = T0 + 600_000;
    const out = freshen(stored, { fields: { 'cache-control': ['max-age=300'], 'x-new': ['n'], date: [formatHttpDate(t)] }, requestTime: t - 100, responseTime: t });
    assert.deepEqual(out.fields['cache-control'], ['max-age=300']);
    assert.deepEqual(out.fields['x-new'], ['n']);
    assert.deepEqual(out.fields['x-old'], ['kept']);
    assert.equal(out.status, 200);
    assert.equal(out.responseTime, t);
    assert.equal(out.requestTime, t - 100);
  });
  it('never takes Content-Length, Content-Encoding, Content-Range or hop-by-hop fields from the 304', () => {
    const out = freshen(stored, {
      fields: {
        'content-length': ['0'], 'content-encoding': ['br'], 'content-range': ['bytes 0-1/2'], 'transfer-encoding': ['chunked'],
        connection: ['x-hop'], 'x-hop': ['1'], 'keep-alive': ['timeout=5'], 'proxy-authenticate': ['Basic'],
      },
      requestTime: T0, responseTime: T0,
    });
    assert.deepEqual(out.fields['content-length'], ['1234']);
    assert.deepEqual(out.fields['content-encoding'], ['gzip']);
    for (const f of ['content-range', 'transfer-encoding', 'connection', 'x-hop', 'keep-alive', 'proxy-authenticate']) {
      assert.equal(out.fields[f], undefined, f);
    }
  });
  it('does not bring back fields stripped by a qualified private', () => {
    const out = freshen(stored, { fields: { 'x-user': ['bob'] }, requestTime: T0, responseTime: T0 }, ['x-user']);
    assert.equal(out.fields['x-user'], undefined);
  });
  it('drops the old Age and adds a Date so the age restarts at validation', () => {
    const t = T0 + 3600_000;
    const out = freshen(stored, { fields: {}, requestTime: t, responseTime: t });
    assert.equal(out.fields['age'], undefined);
    assert.deepEqual(out.fields['date'], [formatHttpDate(t)]);
    assert.equal(currentAge(out, t + 5000), 5);
  });
  it('takes Age from the 304 when present', () => {
    const t = T0 + 3600_000;
    const out = freshen(stored, { fields: { age: ['7'], date: [formatHttpDate(t)] }, requestTime: t, responseTime: t });
    assert.equal(currentAge(out, t), 7);
  });
  it('does not mutate the stored response', () => {
    freshen(stored, { fields: { 'x-old': ['changed'] }, requestTime: T0, responseTime: T0 });
    assert.deepEqual(stored.fields['x-old'], ['kept']);
    assert.deepEqual(stored.fields['age'], ['50']);
  });
});

describe('HEAD responses (RFC 9111 §4.3.5)', () => {
  it('updates when the validators and length agree', () => {
    assert.equal(headOutcome(stored.fields, { etag: ['"1"'], 'content-length': ['1234'] }), 'update');
    assert.equal(headOutcome(stored.fields, {}), 'update');
  });
  it('invalidates on a different ETag, Last-Modified or Content-Length', () => {
    assert.equal(headOutcome(stored.fields, { etag: ['"2"'] }), 'invalidate');
    assert.equal(headOutcome(stored.fields, { etag: ['W/"1"'] }), 'invalidate');
    assert.equal(headOutcome(stored.fields, { 'content-length': ['99'] }), 'invalidate');
    assert.equal(headOutcome(stored.fields, { 'last-modified': [formatHttpDate(T0)] }), 'invalidate');
  });
});
