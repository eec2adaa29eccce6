import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { responsePolicy } from '../../src/cache/directives.ts';
import { shareability, storability, stripFields, type StoreRequest } from '../../src/cache/storable.ts';
import type { Fields } from '../../src/cache/fields.ts';

const GET: StoreRequest = { method: 'GET', fields: {} };

function check(fields: Fields, status = 200, request: StoreRequest = GET) {
  return storability(request, { status, fields }, responsePolicy(fields));
}
function reason(fields: Fields, status = 200, request: StoreRequest = GET): string {
  const s = check(fields, status, request);
  return s.storable ? 'storable' : s.reason;
}

describe('storability (RFC 9111 §3)', () => {
  it('stores a GET 200 with max-age', () => {
    assert.deepEqual(check({ 'cache-control': ['max-age=60'] }), { storable: true, stripFields: [] });
  });

  it('refuses methods other than GET, including HEAD', () => {
    assert.equal(reason({ 'cache-control': ['max-age=60'] }, 200, { method: 'HEAD', fields: {} }), 'method');
    assert.equal(reason({ 'cache-control': ['max-age=60'] }, 200, { method: 'POST', fields: {} }), 'method');
  });

  it('refuses non-final, 304, unknown statuses and partial content', () => {
    assert.equal(reason({ 'cache-control': ['max-age=60'] }, 100), 'status');
    assert.equal(reason({ 'cache-control': ['max-age=60'] }, 304), 'status');
    assert.equal(reason({ 'cache-control': ['max-age=60'] }, 299), 'status');
    assert.equal(reason({ 'cache-control': ['max-age=60'] }, 599), 'status');
    assert.equal(reason({ 'cache-control': ['max-age=60'] }, 206), 'partial-content');
  });

  it('refuses no-store on the request or the response', () => {
    assert.equal(reason({ 'cache-control': ['max-age=60'] }, 200, { method: 'GET', fields: { 'cache-control': ['no-store'] } }), 'request-no-store');
    assert.equal(reason({ 'cache-control': ['max-age=60, no-store'] }), 'response-no-store');
  });

  it('lets must-understand override no-store for an understood status', () => {
    assert.equal(reason({ 'cache-control': ['max-age=60, no-store, must-understand'] }), 'storable');
    assert.equal(reason({ 'cache-control': ['max-age=60, no-store, must-understand'] }, 299), 'status');
  });

  it('refuses unqualified private but strips the fields of a qualified one', () => {
    assert.equal(reason({ 'cache-control': ['max-age=60, private'] }), 'private');
    assert.deepEqual(check({ 'cache-control': ['max-age=60, private="x-user", no-cache="x-token"'] }), {
      storable: true, stripFields: ['x-user', 'x-token'],
    });
  });

  it('refuses a request with Authorization unless public, s-maxage or must-revalidate (§3.5)', () => {
    const auth: StoreRequest = { method: 'GET', fields: { authorization: ['Basic eDp5'] } };
    assert.equal(reason({ 'cache-control': ['max-age=60'] }, 200, auth), 'authorization');
    assert.equal(reason({ 'cache-control': ['max-age=60, public'] }, 200, auth), 'storable');
    assert.equal(reason({ 'cache-control': ['s-maxage=60'] }, 200, auth), 'storable');
    assert.equal(reason({ 'cache-control': ['max-age=60, must-revalidate'] }, 200, auth), 'storable');
  });

  it('never stores Vary: *', () => {
    assert.equal(reason({ 'cache-control': ['max-age=60'], vary: ['Accept, *'] }), 'vary-star');
  });

  it('needs explicit freshness, public, or a heuristically cacheable status', () => {
    assert.equal(reason({}, 200), 'storable');
    assert.equal(reason({}, 404), 'storable');
    assert.equal(reason({}, 302), 'no-freshness');
    assert.equal(reason({}, 500), 'no-freshness');
    assert.equal(reason({ 'cache-control': ['public'] }, 302), 'storable');
    assert.equal(reason({ expires: ['0'] }, 302), 'storable');
    assert.equal(reason({ 'cache-control': ['max-age=5'] }, 302), 'storable');
  });

  it('follows the targeted field over Cache-Control', () => {
    assert.equal(reason({ 'cache-control': ['no-store'], 'cdn-cache-control': ['max-age=60'] }), 'storable');
    assert.equal(reason({ 'cache-control': ['max-age=60'], 'cdn-cache-control': ['no-store'] }), 'response-no-store');
    // With a targeted field, Expires does not count as explicit freshness.
    assert.equal(reason({ expires: ['0'], 'cdn-cache-control': ['none'] }, 302), 'no-freshness');
  });
});

describe('shareability (usher policy)', () => {
  it('does not share a response that sets a cookie', () => {
    assert.deepEqual(shareability({ status: 200, fields: { 'set-cookie': ['sid=1'] } }), { shareable: false, reason: 'set-cookie' });
    assert.deepEqual(shareability({ status: 200, fields: {} }), { shareable: true });
  });
});

describe('stripFields', () => {
  it('removes the named fields and keeps the others', () => {
    const fields = { 'x-user': ['a'], etag: ['"1"'] };
    assert.deepEqual(stripFields(fields, ['x-user']), { etag: ['"1"'] });
    assert.equal(stripFields(fields, []), fields);
    assert.equal(stripFields(fields, ['absent']), fields);
  });
});
