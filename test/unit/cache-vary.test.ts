import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeAcceptEncoding, secondaryKey, varyingFields, varyMatches, varyNames } from '../../src/cache/vary.ts';

describe('Vary names', () => {
  it('lower-cases, de-duplicates and sorts across lines', () => {
    assert.deepEqual(varyNames({ vary: ['Accept-Encoding, Accept', 'accept-encoding'] }), ['accept', 'accept-encoding']);
    assert.deepEqual(varyNames({}), []);
    assert.equal(varyNames({ vary: ['Accept, *'] }), '*');
  });
});

describe('Accept-Encoding normalisation', () => {
  it('is an order-independent set of codings', () => {
    assert.equal(normalizeAcceptEncoding(['gzip, br']), normalizeAcceptEncoding(['br,gzip']));
    assert.equal(normalizeAcceptEncoding(['GZIP;q=0.5, br;q=1.0']), 'br,gzip');
    assert.equal(normalizeAcceptEncoding(['gzip', 'br']), 'br,gzip');
  });
  it('drops q=0 codings and maps x-gzip to gzip', () => {
    assert.equal(normalizeAcceptEncoding(['gzip, br;q=0']), 'gzip');
    assert.equal(normalizeAcceptEncoding(['br; q=0.000, gzip']), 'gzip');
    assert.equal(normalizeAcceptEncoding(['x-gzip']), 'gzip');
  });
});

describe('varyMatches (RFC 9111 §4.1)', () => {
  const vary = ['accept-encoding', 'accept-language'];
  it('matches across whitespace, line splitting and order of codings', () => {
    assert.ok(varyMatches(
      { 'accept-encoding': ['gzip, br'], 'accept-language': ['en-GB,fr;q=0.5'] },
      vary,
      { 'accept-encoding': ['br', 'gzip'], 'accept-language': ['en-gb, fr; q=0.5'] },
    ));
  });
  it('does not match different values', () => {
    assert.ok(!varyMatches({ 'accept-encoding': ['gzip'] }, vary, { 'accept-encoding': ['br'] }));
    assert.ok(!varyMatches({ 'accept-language': ['en, fr'] }, vary, { 'accept-language': ['fr, en'] }));
  });
  it('matches an absent field only with an absent field; empty is not absent', () => {
    assert.ok(varyMatches({}, vary, {}));
    assert.ok(!varyMatches({}, vary, { 'accept-encoding': ['gzip'] }));
    assert.ok(!varyMatches({}, vary, { 'accept-encoding': [''] }));
  });
  it('keeps case in fields not known to be case-insensitive', () => {
    assert.ok(!varyMatches({ 'x-a': ['One'] }, ['x-a'], { 'x-a': ['one'] }));
    assert.ok(varyMatches({ 'x-a': ['a ,b'] }, ['x-a'], { 'x-a': ['a', 'b'] }));
  });
  it('never matches Vary: *', () => {
    assert.ok(!varyMatches({}, '*', {}));
  });
  it('ignores fields not listed in Vary', () => {
    assert.ok(varyMatches({ 'accept-encoding': ['gzip'], cookie: ['a=1'] }, vary, { 'accept-encoding': ['gzip'], cookie: ['b=2'] }));
  });
});

describe('secondaryKey', () => {
  it('is equal exactly when varyMatches holds', () => {
    const vary = ['accept-encoding'];
    assert.equal(secondaryKey(vary, { 'accept-encoding': ['gzip, br'] }), secondaryKey(vary, { 'accept-encoding': ['br,gzip'] }));
    assert.notEqual(secondaryKey(vary, {}), secondaryKey(vary, { 'accept-encoding': [''] }));
    assert.notEqual(secondaryKey(vary, { 'accept-encoding': ['gzip'] }), secondaryKey(vary, { 'accept-encoding': ['br'] }));
    assert.equal(secondaryKey([], { 'accept-encoding': ['br'] }), '');
  });
  it('keeps only the varying request fields for storage', () => {
    assert.deepEqual(varyingFields(['accept'], { accept: ['a'], cookie: ['c'] }), { accept: ['a'] });
  });
});
