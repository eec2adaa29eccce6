import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CacheStore, CacheStoreConfigError, surrogateKeysOf, type PutInput } from '../../src/cache/store.ts';
import type { Fields } from '../../src/cache/fields.ts';

let clock = 0;
function input(body: string | number, response: Fields = {}, vary: string[] = [], requestFields: Fields = {}): PutInput {
  clock++;
  return {
    vary,
    requestFields,
    response: { status: 200, fields: response, requestTime: clock, responseTime: clock },
    body: typeof body === 'number' ? Buffer.alloc(body) : Buffer.from(body),
  };
}

describe('CacheStore', () => {
  it('stores and finds by primary key, counting hits and misses', () => {
    const s = new CacheStore();
    assert.equal(s.lookup('k', {}).kind, 'uri-miss');
    s.put('k', input('hello'));
    const got = s.lookup('k', {});
    assert.equal(got.kind, 'hit');
    assert.equal(got.kind === 'hit' && got.variant.body.toString(), 'hello');
    assert.deepEqual({ hits: s.counters.hits, misses: s.counters.misses, stores: s.counters.stores }, { hits: 1, misses: 1, stores: 1 });
    assert.equal(s.count, 1);
    assert.ok(s.size > 5);
  });

  it('keeps variants apart by their Vary fields and reports a vary-miss', () => {
    const s = new CacheStore();
    s.put('k', input('gz', {}, ['accept-encoding'], { 'accept-encoding': ['gzip'] }));
    s.put('k', input('br', {}, ['accept-encoding'], { 'accept-encoding': ['br'] }));
    const br = s.lookup('k', { 'accept-encoding': ['br'] });
    assert.equal(br.kind === 'hit' && br.variant.body.toString(), 'br');
    const none = s.lookup('k', { 'accept-encoding': ['zstd'] });
    assert.equal(none.kind, 'vary-miss');
    assert.equal(none.kind === 'vary-miss' && none.variants.length, 2);
    assert.equal(s.count, 2);
  });

  it('replaces the variant the same request would select', () => {
    const s = new CacheStore();
    s.put('k', input('old', {}, ['accept-encoding'], { 'accept-encoding': ['gzip, br'] }));
    s.put('k', input('new', {}, ['accept-encoding'], { 'accept-encoding': ['br,gzip'] }));
    assert.equal(s.count, 1);
    const got = s.lookup('k', { 'accept-encoding': ['gzip,br'] });
    assert.equal(got.kind === 'hit' && got.variant.body.toString(), 'new');
  });

  it('caps variants per key, dropping the least recently used', () => {
    const s = new CacheStore({ maxVariants: 2 });
    const ae = (v: string) => ({ 'accept-encoding': [v] });
    s.put('k', input('a', {}, ['accept-encoding'], ae('a')));
    s.put('k', input('b', {}, ['accept-encoding'], ae('b')));
    s.lookup('k', ae('a'));
    s.put('k', input('c', {}, ['accept-encoding'], ae('c')));
    assert.equal(s.count, 2);
    assert.equal(s.counters.variantsCapped, 1);
    assert.equal(s.lookup('k', ae('b')).kind, 'vary-miss');
    assert.equal(s.lookup('k', ae('a')).kind, 'hit');
  });

  it('refuses objects above maxObjectSize', () => {
    const s = new CacheStore({ maxObjectSize: 10, maxBytes: 10_000 });
    assert.deepEqual(s.put('k', input(11)), { stored: false, reason: 'too-large' });
    assert.equal(s.counters.tooLarge, 1);
    assert.equal(s.count, 0);
  });

  it('evicts least recently used variants across keys to stay within maxBytes', () => {
    const s = new CacheStore({ maxBytes: 3000, maxObjectSize: 1000 });
    s.put('a', input(900));
    s.put('b', input(900));
    s.lookup('a', {});
    s.put('c', input(900));
    assert.ok(s.size <= 3000);
    assert.equal(s.lookup('b', {}).kind, 'uri-miss');
    assert.equal(s.lookup('a', {}).kind, 'hit');
    assert.equal(s.lookup('c', {}).kind, 'hit');
    assert.equal(s.counters.evictions, 1);
  });

  it('keeps size equal to the sum of variant sizes through puts, replacements and removals', () => {
    const s = new CacheStore({ maxBytes: 20_000, maxObjectSize: 1000 });
    for (let i = 0; i < 200; i++) s.put(`k${i % 30}`, input(i * 7 % 1000, {}, ['x'], { x: [String(i % 3)] }));
    let sum = 0;
    for (let i = 0; i < 30; i++) for (const v of s.variants(`k${i}`)) sum += v.size;
    assert.equal(s.size, sum);
    assert.ok(s.size <= 20_000);
    s.purgePrefix('k', 'hard');
    assert.equal(s.size, 0);
    assert.equal(s.count, 0);
  });

  it('hard-purges by key and by prefix', () => {
    const s = new CacheStore();
    s.put('https://a/x', input('1'));
    s.put('https://a/y', input('2'));
    s.put('https://b/x', input('3'));
    assert.equal(s.purge('https://a/x', 'hard'), 1);
    assert.equal(s.lookup('https://a/x', {}).kind, 'uri-miss');
    assert.equal(s.purgePrefix('https://a/', 'hard'), 1);
    assert.equal(s.count, 1);
    assert.equal(s.counters.purges, 2);
  });

  it('soft-purges by marking invalidated, and update clears the mark', () => {
    const s = new CacheStore();
    const put = s.put('k', input('1'));
    assert.equal(s.purge('k', 'soft'), 1);
    const got = s.lookup('k', {});
    assert.equal(got.kind === 'hit' && got.variant.invalidated, true);
    assert.ok(put.stored && s.update(put.variant, { status: 200, fields: { etag: ['"2"'] }, requestTime: 9, responseTime: 9 }));
    const again = s.lookup('k', {});
    assert.equal(again.kind === 'hit' && again.variant.invalidated, false);
    assert.deepEqual(again.kind === 'hit' && again.variant.response.fields['etag'], ['"2"']);
  });

  it('purges by surrogate key and keeps the index consistent on eviction and update', () => {
    // Room for three 900-byte bodies, not four.
    const s = new CacheStore({ maxBytes: 4000, maxObjectSize: 1000 });
    const a = s.put('a', input(900, { 'surrogate-key': ['t1  t2'] }));
    s.put('b', input(900, { 'cache-tag': ['t2, t3'] }));
    assert.deepEqual(s.surrogateKeys().sort(), ['t1', 't2', 't3']);
    assert.equal(s.purgeSurrogate('t2', 'soft'), 2);
    assert.equal(s.count, 2);
    assert.ok(a.stored && s.update(a.variant, { status: 200, fields: { 'surrogate-key': ['t9'] }, requestTime: 1, responseTime: 1 }));
    assert.deepEqual(s.surrogateKeys().sort(), ['t2', 't3', 't9']);
    s.put('c', input(900));
    s.put('d', input(900)); // evicts b, the least recently used
    assert.equal(s.lookup('b', {}).kind, 'uri-miss');
    assert.ok(!s.surrogateKeys().includes('t3'));
    assert.equal(s.purgeSurrogate('t3', 'hard'), 0);
    assert.equal(s.purgeSurrogate('t9', 'hard'), 1);
    assert.deepEqual(s.surrogateKeys(), []);
  });

  it('deletes a variant once', () => {
    const s = new CacheStore();
    const p = s.put('k', input('1'));
    assert.ok(p.stored);
    assert.equal(s.delete(p.variant), true);
    assert.equal(s.delete(p.variant), false);
    assert.equal(s.update(p.variant, p.variant.response), false);
  });

  it('ranks keys by hits', () => {
    const s = new CacheStore();
    s.put('a', input('1'));
    s.put('b', input('2'));
    s.put('c', input('3'));
    for (let i = 0; i < 3; i++) s.lookup('b', {});
    s.lookup('c', {});
    assert.deepEqual(s.top(2), [{ key: 'b', hits: 3 }, { key: 'c', hits: 1 }]);
  });

  it('rejects impossible options', () => {
    assert.throws(() => new CacheStore({ maxVariants: 0 }), CacheStoreConfigError);
    assert.throws(() => new CacheStore({ maxBytes: 100, maxObjectSize: 1000 }), CacheStoreConfigError);
  });

  it('reads surrogate keys from both fields', () => {
    assert.deepEqual(surrogateKeysOf({ 'surrogate-key': ['a b', 'c'], 'cache-tag': ['b, d'] }), ['a', 'b', 'c', 'd']);
  });
});
