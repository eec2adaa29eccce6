import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendCacheStatus, cacheStatus } from '../../src/cache/status.ts';
import { SerializeError } from '../../src/cache/structured-field.ts';

describe('Cache-Status (RFC 9211)', () => {
  it('writes a hit with its ttl', () => {
    assert.equal(cacheStatus('usher', { hit: true, ttl: 376.9 }), 'usher; hit; ttl=376');
  });
  it('writes forward reasons as tokens with stored and collapsed flags', () => {
    assert.equal(cacheStatus('usher', { fwd: 'uri-miss', stored: true }), 'usher; fwd=uri-miss; stored');
    assert.equal(cacheStatus('usher', { fwd: 'stale', fwdStatus: 304, ttl: 60 }), 'usher; fwd=stale; fwd-status=304; ttl=60');
    assert.equal(cacheStatus('usher', { fwd: 'vary-miss', collapsed: true }), 'usher; fwd=vary-miss; collapsed');
    assert.equal(cacheStatus('usher', { fwd: 'request' }), 'usher; fwd=request');
  });
  it('writes a negative ttl for a stale response, rounded down', () => {
    assert.equal(cacheStatus('usher', { hit: true, ttl: -0.5 }), 'usher; hit; ttl=-1');
  });
  it('omits false flags', () => {
    assert.equal(cacheStatus('usher', { hit: false, stored: false, fwd: 'miss' }), 'usher; fwd=miss');
  });
  it('writes detail as a token when it is one, else as an escaped string', () => {
    assert.equal(cacheStatus('usher', { fwd: 'uri-miss', detail: 'response-no-store' }), 'usher; fwd=uri-miss; detail=response-no-store');
    assert.equal(cacheStatus('usher', { fwd: 'miss', detail: 'a "b"; c' }), 'usher; fwd=miss; detail="a \\"b\\"; c"');
    assert.equal(cacheStatus('usher', { fwd: 'miss', detail: '1x' }), 'usher; fwd=miss; detail="1x"');
  });
  it('quotes a cache name that is not a token, and the key', () => {
    assert.equal(cacheStatus('edge 1', { hit: true, key: 'https://a/b' }), '"edge 1"; hit; key="https://a/b"');
  });
  it('refuses what it cannot serialise', () => {
    assert.throws(() => cacheStatus('usher', { fwd: 'miss', detail: 'café' }), SerializeError);
    assert.throws(() => cacheStatus('usher', { hit: true, fwd: 'miss' }), RangeError);
  });
  it('appends usher\'s member after upstream members', () => {
    assert.equal(appendCacheStatus(['origin; hit', ' cdn; fwd=miss '], 'usher; hit'), 'origin; hit, cdn; fwd=miss, usher; hit');
    assert.equal(appendCacheStatus([], 'usher; hit'), 'usher; hit');
  });
});
