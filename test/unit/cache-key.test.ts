import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeAuthority, normalizeQuery, parseCookies, primaryKey, type KeyRequest } from '../../src/cache/key.ts';

const req = (target: string, extra: Partial<KeyRequest> = {}): KeyRequest => ({
  method: 'GET', scheme: 'https', authority: 'Example.COM', target, fields: {}, ...extra,
});

describe('primary key', () => {
  it('is scheme://host path?query', () => {
    assert.equal(primaryKey(req('/a/b?x=1')), 'https://example.com/a/b?x=1');
  });
  it('lower-cases the host and strips the default port only', () => {
    assert.equal(normalizeAuthority('https', 'EXAMPLE.com:443'), 'example.com');
    assert.equal(normalizeAuthority('http', 'example.com:80'), 'example.com');
    assert.equal(normalizeAuthority('http', 'example.com:443'), 'example.com:443');
    assert.equal(normalizeAuthority('https', 'example.com:'), 'example.com');
    assert.equal(normalizeAuthority('https', 'example.com:0443'), 'example.com');
    assert.equal(normalizeAuthority('http', '[::1]:80'), '[::1]');
    assert.equal(normalizeAuthority('http', '[::1]:8080'), '[::1]:8080');
    assert.equal(normalizeAuthority('http', '[::1]'), '[::1]');
  });
  it('keeps scheme apart', () => {
    assert.notEqual(primaryKey(req('/')), primaryKey(req('/', { scheme: 'http' })));
  });
  it('maps HEAD to the GET key and keeps other methods apart', () => {
    assert.equal(primaryKey(req('/x', { method: 'HEAD' })), primaryKey(req('/x')));
    assert.notEqual(primaryKey(req('/x', { method: 'POST' })), primaryKey(req('/x')));
  });
  it('does not decode or resolve the path', () => {
    assert.notEqual(primaryKey(req('/a%2Fb')), primaryKey(req('/a/b')));
    assert.notEqual(primaryKey(req('/a/../b')), primaryKey(req('/b')));
  });
});

describe('query normalisation', () => {
  it('sorts parameters by name', () => {
    assert.equal(normalizeQuery('b=1&a=2&c'), 'a=2&b=1&c');
    assert.equal(primaryKey(req('/?b=1&a=2')), primaryKey(req('/?a=2&b=1')));
  });
  it('is stable for repeated names, which stay ordered', () => {
    assert.equal(normalizeQuery('z=0&a=2&a=1'), 'a=2&a=1&z=0');
    assert.notEqual(normalizeQuery('a=1&a=2'), normalizeQuery('a=2&a=1'));
  });
  it('drops empty parameters and an empty query', () => {
    assert.equal(normalizeQuery('a=1&&b=2&'), 'a=1&b=2');
    assert.equal(primaryKey(req('/p?')), 'https://example.com/p');
  });
  it('applies include and exclude lists', () => {
    assert.equal(normalizeQuery('utm_source=x&id=1&page=2', { excludeQuery: ['utm_source'] }), 'id=1&page=2');
    assert.equal(normalizeQuery('utm_source=x&id=1&page=2', { includeQuery: ['id'] }), 'id=1');
    assert.equal(normalizeQuery('id=1&page=2', { includeQuery: ['id', 'page'], excludeQuery: ['page'] }), 'id=1');
  });
});

describe('extra key parts', () => {
  it('adds named headers and cookies after the URI', () => {
    const options = { headers: ['x-device'], cookies: ['lang'] };
    const a = primaryKey(req('/p', { fields: { 'x-device': ['mobile'], cookie: ['sid=1; lang=fr'] } }), options);
    const b = primaryKey(req('/p', { fields: { 'x-device': ['mobile'], cookie: ['lang=fr; sid=2'] } }), options);
    const c = primaryKey(req('/p', { fields: { 'x-device': ['desktop'], cookie: ['lang=fr'] } }), options);
    const d = primaryKey(req('/p', { fields: { cookie: ['lang=de'] } }), options);
    assert.equal(a, b);
    assert.notEqual(a, c);
    assert.notEqual(a, d);
    assert.ok(a.startsWith('https://example.com/p\n'));
  });
  it('reads cookies across lines, first value of a repeated name', () => {
    assert.deepEqual([...parseCookies({ cookie: ['a=1; b=2', 'a=3;c'] })], [['a', '1'], ['b', '2']]);
  });
});
