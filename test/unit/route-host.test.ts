import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { matches, req } from './route-helpers.ts';

describe('route host: exact', () => {
  const match = { host: 'Api.Example.com' };

  test('matches the same name, case-insensitively on both sides', () => {
    assert.equal(matches(match, req('/', { host: 'api.example.com' })), true);
    assert.equal(matches(match, req('/', { host: 'API.EXAMPLE.COM' })), true);
  });

  test('ignores the port in the Host header', () => {
    assert.equal(matches(match, req('/', { host: 'api.example.com:8080' })), true);
    assert.equal(matches(match, req('/', { host: 'api.example.com:' })), true);
  });

  test('ignores one trailing dot (FQDN form)', () => {
    assert.equal(matches(match, req('/', { host: 'api.example.com.' })), true);
    assert.equal(matches(match, req('/', { host: 'api.example.com.:443' })), true);
    assert.equal(matches({ host: 'api.example.com.' }, req('/', { host: 'api.example.com' })), true);
  });

  test('rejects other names, longer names and sub-domains', () => {
    assert.equal(matches(match, req('/', { host: 'example.com' })), false);
    assert.equal(matches(match, req('/', { host: 'api.example.co' })), false);
    assert.equal(matches(match, req('/', { host: 'api.example.com.evil' })), false);
    assert.equal(matches(match, req('/', { host: 'x.api.example.com' })), false);
    assert.equal(matches(match, req('/', { host: 'api.example.comm' })), false);
  });

  test('a request without a Host never matches a host key', () => {
    assert.equal(matches(match, req('/')), false);
  });

  test('IPv6 literals: brackets kept, port ignored', () => {
    assert.equal(matches({ host: '[::1]' }, req('/', { host: '[::1]:8080' })), true);
    assert.equal(matches({ host: '[::1]' }, req('/', { host: '[::1]' })), true);
    assert.equal(matches({ host: '[::1]' }, req('/', { host: '[::2]' })), false);
  });
});

describe('route host: wildcard *.example.com', () => {
  const match = { host: '*.example.com' };

  test('matches one label', () => {
    assert.equal(matches(match, req('/', { host: 'a.example.com' })), true);
  });

  test('matches several labels (as nginx and Envoy do)', () => {
    assert.equal(matches(match, req('/', { host: 'a.b.example.com' })), true);
  });

  test('is case-insensitive and ignores the port', () => {
    assert.equal(matches(match, req('/', { host: 'WWW.Example.COM:8443' })), true);
  });

  test('does not match the bare domain', () => {
    assert.equal(matches(match, req('/', { host: 'example.com' })), false);
    assert.equal(matches(match, req('/', { host: 'example.com:80' })), false);
  });

  test('does not match an empty label', () => {
    assert.equal(matches(match, req('/', { host: '.example.com' })), false);
  });

  test('does not match a name that merely ends with the suffix text', () => {
    assert.equal(matches(match, req('/', { host: 'badexample.com' })), false);
    assert.equal(matches(match, req('/', { host: 'a.example.com.evil.net' })), false);
    assert.equal(matches(match, req('/', { host: 'a.example.org' })), false);
  });
});
