import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseCacheControl, parseTargetedField, responsePolicy, requestDirectives } from '../../src/cache/directives.ts';
import { parseDictionary, StructuredFieldError, Token } from '../../src/cache/structured-field.ts';

describe('Cache-Control parsing (RFC 9111 §5.2)', () => {
  it('reads boolean and argument directives, case-insensitively, across lines', () => {
    const d = parseCacheControl(['Public, MAX-AGE=60', 's-maxage=120 , must-revalidate']);
    assert.equal(d.public, true);
    assert.equal(d.maxAge, 60);
    assert.equal(d.sMaxage, 120);
    assert.equal(d.mustRevalidate, true);
    assert.equal(d.noStore, false);
  });

  it('accepts the quoted-string form of an argument', () => {
    assert.equal(parseCacheControl(['max-age="30"']).maxAge, 30);
  });

  it('keeps the first occurrence of a repeated argument directive', () => {
    assert.equal(parseCacheControl(['max-age=60, max-age=0']).maxAge, 60);
    assert.equal(parseCacheControl(['max-age=5', 'max-age=600']).maxAge, 5);
  });

  it('treats an invalid max-age or s-maxage as 0 (stale), per §4.2.1', () => {
    for (const v of ['-1', '1.5', 'abc', '', '"1 0"']) {
      assert.equal(parseCacheControl([`max-age=${v}`]).maxAge, 0, v);
    }
    assert.equal(parseCacheControl(['max-age']).maxAge, 0);
    assert.equal(parseCacheControl(['s-maxage=x']).sMaxage, 0);
  });

  it('clamps an enormous delta-seconds to 2^31 (§1.2.2)', () => {
    assert.equal(parseCacheControl(['max-age=99999999999999999999999']).maxAge, 2 ** 31);
    assert.equal(parseCacheControl(['max-age=2147483649']).maxAge, 2 ** 31);
    assert.equal(parseCacheControl(['max-age=2147483647']).maxAge, 2147483647);
  });

  it('ignores invalid stale-* windows and request arguments instead of guessing', () => {
    const d = parseCacheControl(['stale-while-revalidate=-5, stale-if-error=x, min-fresh=1.5']);
    assert.equal(d.staleWhileRevalidate, undefined);
    assert.equal(d.staleIfError, undefined);
    assert.equal(d.minFresh, undefined);
  });

  it('reads max-stale with and without an argument', () => {
    assert.equal(parseCacheControl(['max-stale']).maxStale, true);
    assert.equal(parseCacheControl(['max-stale=10']).maxStale, 10);
  });

  it('distinguishes qualified and unqualified private / no-cache, unqualified winning', () => {
    assert.deepEqual(parseCacheControl(['private="Set-Cookie, X-Foo"']).private, ['set-cookie', 'x-foo']);
    assert.deepEqual(parseCacheControl(['no-cache="a", no-cache="b"']).noCache, ['a', 'b']);
    assert.equal(parseCacheControl(['no-cache="a", no-cache']).noCache, true);
    assert.equal(parseCacheControl(['private, private="a"']).private, true);
    assert.equal(parseCacheControl(['no-cache']).noCache, true);
    assert.equal(parseCacheControl(['no-cache=""']).noCache, true);
  });

  it('does not split inside a quoted argument', () => {
    const d = parseCacheControl(['no-cache="a, b", max-age=3']);
    assert.deepEqual(d.noCache, ['a', 'b']);
    assert.equal(d.maxAge, 3);
  });

  it('ignores unknown extensions and malformed members without losing the rest', () => {
    const d = parseCacheControl(['foo=bar, "junk", , no-store, ext="x,y"']);
    assert.equal(d.noStore, true);
    assert.equal(d.maxAge, undefined);
  });

  it('reads request directives', () => {
    const d = requestDirectives({ 'cache-control': ['no-cache, only-if-cached, min-fresh=5'] });
    assert.equal(d.noCache, true);
    assert.equal(d.onlyIfCached, true);
    assert.equal(d.minFresh, 5);
  });
});

describe('targeted fields (RFC 9213)', () => {
  it('parses a structured-field dictionary', () => {
    const d = parseTargetedField(['max-age=600, stale-while-revalidate=30, public']);
    assert.equal(d?.maxAge, 600);
    assert.equal(d?.staleWhileRevalidate, 30);
    assert.equal(d?.public, true);
  });

  it('ignores the whole field on a syntax error, so Cache-Control governs', () => {
    assert.equal(parseTargetedField(['max-age=60, ,']), undefined);
    assert.equal(parseTargetedField(['Max-Age=60']), undefined); // keys are lower-case in SF
    assert.equal(parseTargetedField(['max-age=60;']), undefined);
    const policy = responsePolicy({ 'cdn-cache-control': ['max-age="x'], 'cache-control': ['max-age=5'] });
    assert.equal(policy.source, 'cache-control');
    assert.equal(policy.directives.maxAge, 5);
  });

  it('ignores an empty field', () => {
    assert.equal(parseTargetedField(['']), undefined);
    assert.equal(parseTargetedField([]), undefined);
  });

  it('ignores directives whose argument has the wrong type instead of coercing it', () => {
    assert.equal(parseTargetedField(['max-age=1.5, public'])?.maxAge, undefined);
    assert.equal(parseTargetedField(['max-age="60", public'])?.maxAge, undefined);
    assert.equal(parseTargetedField(['no-store=?0, public'])?.noStore, false);
    assert.equal(parseTargetedField(['no-store'])?.noStore, true);
    assert.equal(parseTargetedField(['max-age=-1, public'])?.maxAge, 0);
  });

  it('keeps the last of duplicate keys, as Structured Fields require', () => {
    assert.equal(parseTargetedField(['max-age=1, max-age=2'])?.maxAge, 2);
  });

  it('takes a private field list from an sf-string', () => {
    assert.deepEqual(parseTargetedField(['private="set-cookie"'])?.private, ['set-cookie']);
  });

  it('prefers Usher-Cache-Control, then CDN-Cache-Control, then Cache-Control', () => {
    const all = {
      'usher-cache-control': ['max-age=1'],
      'cdn-cache-control': ['max-age=2'],
      'cache-control': ['max-age=3'],
    };
    assert.equal(responsePolicy(all).directives.maxAge, 1);
    assert.equal(responsePolicy(all).source, 'usher-cache-control');
    assert.equal(responsePolicy(all).targeted, true);
    assert.equal(responsePolicy({ ...all, 'usher-cache-control': undefined }).directives.maxAge, 2);
    assert.equal(responsePolicy({ 'cache-control': ['max-age=3'] }).targeted, false);
    assert.equal(responsePolicy(all, ['cdn-cache-control']).directives.maxAge, 2);
    assert.equal(responsePolicy(all, []).directives.maxAge, 3);
  });

  it('lets a targeted field override no-store in Cache-Control (RFC 9213 §3.1 example)', () => {
    const p = responsePolicy({ 'cache-control': ['no-store'], 'cdn-cache-control': ['max-age=600'] });
    assert.equal(p.directives.noStore, false);
    assert.equal(p.directives.maxAge, 600);
  });

  it('honours "none" as a valid, non-empty field that disables Cache-Control', () => {
    const p = responsePolicy({ 'cache-control': ['max-age=600'], 'cdn-cache-control': ['none'] });
    assert.equal(p.targeted, true);
    assert.equal(p.directives.maxAge, undefined);
  });
});

describe('structured-field dictionary', () => {
  it('parses items, parameters, inner lists, tokens and byte sequences', () => {
    const d = parseDictionary(['a=1;x=?0, b="s\\"q", c=(1 2);p, d=tok/en, e=:aGk=:, f=?1, g=-1.25']);
    assert.equal(d.get('a')?.value, 1);
    assert.equal(d.get('a')?.params.get('x'), false);
    assert.equal(d.get('b')?.value, 's"q');
    assert.deepEqual(d.get('c')?.value, [1, 2]);
    assert.equal(d.get('c')?.params.get('p'), true);
    assert.ok(d.get('d')?.value instanceof Token);
    assert.equal(Buffer.from(d.get('e')?.value as Uint8Array).toString(), 'hi');
    assert.equal(d.get('f')?.value, true);
    assert.equal(d.get('g')?.value, -1.25);
  });

  it('rejects invalid syntax', () => {
    for (const bad of ['a=1 b=2', 'a=', 'a=1.', 'a=1234567890123456', 'a="x', 'a=?2', 'A=1', 'a=1,']) {
      assert.throws(() => parseDictionary([bad]), StructuredFieldError, bad);
    }
  });
});
