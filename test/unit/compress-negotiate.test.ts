import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { identityAcceptable, negotiate, parseAcceptEncoding } from '../../src/compress/negotiate.ts';

const ALL = ['zstd', 'br', 'gzip'] as const;

describe('Accept-Encoding negotiation (RFC 9110 §12.5.3)', () => {
  it('ties go to the offered order: zstd, then br, then gzip', () => {
    assert.equal(negotiate(['gzip, deflate, br, zstd'], ALL), 'zstd');
    assert.equal(negotiate(['gzip, deflate, br'], ALL), 'br');
    assert.equal(negotiate(['gzip'], ALL), 'gzip');
    assert.equal(negotiate(['gzip, br'], ['gzip', 'br']), 'gzip', 'the route\'s own order');
    assert.equal(negotiate(['gzip', 'br'], ALL), 'br', 'several field lines are one list');
  });

  it('the highest qvalue wins; q=0 refuses; case and spaces do not matter', () => {
    assert.equal(negotiate(['zstd;q=0.5, br;q=0.8, gzip;q=0.9'], ALL), 'gzip');
    assert.equal(negotiate(['ZSTD ; Q=0.1 , GZip'], ALL), 'gzip');
    assert.equal(negotiate(['zstd;q=0, br;q=0'], ALL), 'identity');
    assert.equal(negotiate(['br;q=0.001'], ALL), 'br');
    assert.equal(negotiate(['x-gzip'], ALL), 'gzip');
  });

  it('* covers codings not listed; a listed coding keeps its own qvalue', () => {
    assert.equal(negotiate(['*'], ALL), 'zstd');
    assert.equal(negotiate(['zstd;q=0, *'], ALL), 'br');
    assert.equal(negotiate(['gzip, *;q=0.1'], ALL), 'gzip');
    assert.equal(negotiate(['*;q=0'], ALL), 'identity');
  });

  it('identity: absent or empty field, unknown codings only, or identity preferred', () => {
    assert.equal(negotiate([], ALL), 'identity');
    assert.equal(negotiate([''], ALL), 'identity');
    assert.equal(negotiate(['deflate, compress'], ALL), 'identity');
    assert.equal(negotiate(['identity, gzip;q=0.5'], ALL), 'identity');
    assert.equal(negotiate(['identity;q=0.5, gzip'], ALL), 'gzip');
    assert.equal(negotiate(['identity;q=0, gzip'], ALL), 'gzip');
    assert.equal(negotiate(['identity;q=0'], ALL), 'identity', 'never 406: identity is still sent');
  });

  it('identity;q=0 and *;q=0 refuse identity', () => {
    assert.equal(identityAcceptable(parseAcceptEncoding(['gzip'])), true);
    assert.equal(identityAcceptable(parseAcceptEncoding(['identity;q=0'])), false);
    assert.equal(identityAcceptable(parseAcceptEncoding(['*;q=0'])), false);
    assert.equal(identityAcceptable(parseAcceptEncoding(['*;q=0, identity'])), true);
  });

  it('malformed members and parameters do not throw', () => {
    assert.deepEqual([...parseAcceptEncoding([',,gzip;q=abc;level=1, ;q=1, br;q=7'])], [['gzip', 1], ['br', 1]]);
  });
});
