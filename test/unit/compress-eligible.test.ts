import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_TYPES, eligibility, TypeList, type ResponseFacts } from '../../src/compress/eligible.ts';
import { strongOpaque, suffixETag, unsuffixTags } from '../../src/compress/validators.ts';

const types = new TypeList(DEFAULT_TYPES);
const base: ResponseFacts = { method: 'GET', range: false, status: 200, contentType: 'application/json', contentEncoding: [], cacheControl: [], contentLength: '50000' };
const decide = (facts: Partial<ResponseFacts>) => eligibility({ ...base, ...facts }, types, 1024);

describe('media-type allow-list', () => {
  it('the defaults take text, JSON, XML, JavaScript, SVG and wasm, and refuse images, video, archives and WOFF', () => {
    for (const type of ['text/html; charset=utf-8', 'TEXT/CSS', 'text/event-stream', 'application/json', 'application/problem+json', 'application/ld+json', 'application/atom+xml', 'application/javascript', 'application/xml', 'image/svg+xml', 'application/wasm']) {
      assert.ok(types.matches(type), type);
    }
    for (const type of ['image/png', 'image/jpeg', 'image/webp', 'video/mp4', 'audio/mpeg', 'application/zip', 'application/gzip', 'application/octet-stream', 'font/woff2', 'application/pdf', '', 'json', 'text/']) {
      assert.ok(!types.matches(type), type);
    }
  });

  it('patterns: exact, type/*, type/*+suffix, */*+suffix; anything else is refused with the forms', () => {
    const list = new TypeList(['application/x-custom', 'font/*', '*/*+cbor', 'application/*+yaml']);
    assert.ok(list.matches('application/x-custom'));
    assert.ok(list.matches('font/ttf'));
    assert.ok(list.matches('application/foo+cbor'));
    assert.ok(list.matches('application/vnd.x+yaml'));
    assert.ok(!list.matches('text/vnd.x+yaml'));
    assert.ok(!list.matches('text/plain'));
    assert.throws(() => new TypeList(['*/*']), /type\/subtype, type\/\*, type\/\*\+suffix or \*\/\*\+suffix/);
    assert.throws(() => new TypeList(['text']), /not a media-type pattern/);
  });
});

describe('eligibility', () => {
  it('codes an eligible body; flushes per chunk only for streams and server-sent events', () => {
    assert.deepEqual(decide({}), { compress: true, streaming: false, length: 50000 });
    assert.deepEqual(decide({ contentLength: undefined }), { compress: true, streaming: true, length: undefined });
    assert.deepEqual(decide({ contentType: 'text/event-stream', contentLength: '5000' }), { compress: true, streaming: true, length: 5000 });
    assert.deepEqual(decide({ status: 404 }), { compress: true, streaming: false, length: 50000 });
  });

  it('skips with a reason, and says whether the resource varies on Accept-Encoding', () => {
    assert.deepEqual(decide({ contentLength: '1023' }), { compress: false, reason: 'size', vary: true });
    assert.equal(decide({ contentLength: '1024' }).compress, true);
    assert.deepEqual(decide({ contentType: 'image/png' }), { compress: false, reason: 'type', vary: false });
    assert.deepEqual(decide({ contentType: undefined }), { compress: false, reason: 'type', vary: false });
    assert.deepEqual(decide({ contentEncoding: ['gzip'] }), { compress: false, reason: 'encoded', vary: false });
    assert.equal(decide({ contentEncoding: ['identity'] }).compress, true);
    assert.deepEqual(decide({ cacheControl: ['public, No-Transform'] }), { compress: false, reason: 'no-transform', vary: false });
    assert.equal(decide({ cacheControl: ['no-transformer'] }).compress, true);
    assert.deepEqual(decide({ method: 'HEAD' }), { compress: false, reason: 'method', vary: true });
    assert.deepEqual(decide({ range: true }), { compress: false, reason: 'range', vary: true });
    assert.deepEqual(decide({ status: 206 }), { compress: false, reason: 'range', vary: true });
    assert.deepEqual(decide({ status: 304 }), { compress: false, reason: 'status', vary: true });
    assert.deepEqual(decide({ status: 204 }), { compress: false, reason: 'status', vary: false });
    assert.deepEqual(decide({ status: 103 }), { compress: false, reason: 'status', vary: false });
  });
});

describe('ETag suffixes', () => {
  it('a strong tag gets the coding; weak and malformed ones do not', () => {
    assert.equal(suffixETag('"abc"', 'gzip'), '"abc-gzip"');
    assert.equal(suffixETag('""', 'br'), '"-br"');
    assert.equal(suffixETag('W/"abc"', 'gzip'), 'W/"abc"');
    assert.equal(suffixETag('abc', 'gzip'), 'abc');
    assert.equal(strongOpaque('"a,b"'), 'a,b');
    assert.equal(strongOpaque('W/"a"'), undefined);
  });

  it('If-None-Match / If-Match lose the suffixes of the offered codings, quoted commas and * included', () => {
    const all = ['zstd', 'br', 'gzip'] as const;
    const result = unsuffixTags('"a-gzip", W/"b-br", "c,d-zstd", "e", *', all);
    assert.equal(result?.value, '"a", W/"b", "c,d", "e", *');
    assert.deepEqual([...result!.stripped], [['a', 'gzip'], ['b', 'br'], ['c,d', 'zstd']]);
    assert.equal(unsuffixTags('"a-gzip"', ['br']), undefined, 'only the codings the route offers');
    assert.equal(unsuffixTags('"abc"', all), undefined);
    assert.equal(unsuffixTags('"-gzip"', all), undefined, 'a tag that is only a suffix is left alone');
    assert.equal(unsuffixTags('"a-gzip', all), undefined, 'malformed: left alone');
  });
});
