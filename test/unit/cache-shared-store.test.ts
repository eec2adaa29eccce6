/**
 * The process's response store (shared-store.ts) in one thread: the store
 * contract (variants, Vary, purges, soft purge, top keys, counters), the byte
 * and entry bounds, eviction that keeps recently hit objects over cold ones,
 * and two views of one store's buffers (what two worker threads hold) seeing
 * each other's writes. test/unit/cache-shared-store-threads.test.ts runs it
 * from real threads.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CacheRecordGone, SharedStore } from '../../src/cache/shared-store.ts';
import { CacheStoreConfigError, surrogateKeysOf, type PutInput } from '../../src/cache/store.ts';
import type { Fields } from '../../src/cache/fields.ts';
import { mulberry32 } from '../helpers/prng.ts';

let clock = 0;
function input(body: string | number, response: Fields = {}, vary: string[] = [], requestFields: Fields = {}): PutInput {
  clock++;
  return {
    vary,
    requestFields,
    response: { status: 200, fields: response, requestTime: clock, responseTime: clock },
    body: typeof body === 'number' ? Buffer.alloc(body, clock % 256) : Buffer.from(body),
  };
}

const bodyOf = (s: SharedStore, key: string, fields: Fields = {}): string | undefined => {
  const got = s.lookup(key, fields);
  return got.kind === 'hit' ? got.variant.body.toString() : undefined;
};

/** 64 KiB in four 16 KiB segments; bodies up to 1 KiB. */
const small = (): SharedStore => new SharedStore({ maxBytes: 64 * 1024, maxObjectSize: 1024 });

describe('SharedStore', () => {
  it('stores and finds by primary key, counting stores, entries and bytes', () => {
    const s = new SharedStore();
    assert.equal(s.lookup('k', {}).kind, 'uri-miss');
    s.put('k', input('hello'));
    const got = s.lookup('k', {});
    assert.equal(got.kind, 'hit');
    assert.equal(got.kind === 'hit' && got.variant.body.toString(), 'hello');
    assert.equal(got.kind === 'hit' && got.variant.hits, 1);
    assert.equal(s.counters.stores, 1);
    assert.equal(s.count, 1);
    assert.ok(s.size > 5);
    assert.equal(s.size, got.kind === 'hit' && got.variant.size);
  });

  it('keeps variants apart by their Vary fields and reports a vary-miss', () => {
    const s = new SharedStore();
    s.put('k', input('gz', {}, ['accept-encoding'], { 'accept-encoding': ['gzip'] }));
    s.put('k', input('br', {}, ['accept-encoding'], { 'accept-encoding': ['br'] }));
    const br = s.lookup('k', { 'accept-encoding': ['br'] });
    assert.equal(br.kind === 'hit' && br.variant.body.toString(), 'br');
    assert.deepEqual(br.kind === 'hit' && br.variants.map((v) => v.body.toString()), ['br', 'gz'], 'the matched variant comes first, the others follow');
    const none = s.lookup('k', { 'accept-encoding': ['zstd'] });
    assert.equal(none.kind, 'vary-miss');
    assert.deepEqual(none.kind === 'vary-miss' && none.variants.map((v) => v.body.toString()).sort(), ['br', 'gz']);
    assert.equal(s.count, 2);
    assert.equal(s.variants('k').length, 2);
  });

  it('replaces the variant the same request would select, keeping its hits', () => {
    const s = new SharedStore();
    s.put('k', input('old', {}, ['accept-encoding'], { 'accept-encoding': ['gzip, br'] }));
    s.lookup('k', { 'accept-encoding': ['gzip, br'] });
    s.put('k', input('new', {}, ['accept-encoding'], { 'accept-encoding': ['br,gzip'] }));
    assert.equal(s.count, 1);
    const got = s.lookup('k', { 'accept-encoding': ['gzip,br'] });
    assert.equal(got.kind === 'hit' && got.variant.body.toString(), 'new');
    assert.deepEqual(s.top(1), [{ key: 'k', hits: 2 }]);
  });

  it('caps variants per key, dropping the least recently used', () => {
    const s = new SharedStore({ maxVariants: 2 });
    const ae = (v: string) => ({ 'accept-encoding': [v] });
    s.put('k', input('a', {}, ['accept-encoding'], ae('a')));
    s.put('k', input('b', {}, ['accept-encoding'], ae('b')));
    s.lookup('k', ae('a'));
    s.put('k', input('c', {}, ['accept-encoding'], ae('c')));
    assert.equal(s.count, 2);
    assert.equal(s.counters.variantsCapped, 1);
    assert.equal(s.lookup('k', ae('b')).kind, 'vary-miss');
    assert.equal(s.lookup('k', ae('a')).kind, 'hit');
    assert.equal(s.lookup('k', ae('c')).kind, 'hit');
  });

  it('refuses objects above maxObjectSize, and records that do not fit a segment', () => {
    const s = new SharedStore({ maxObjectSize: 10, maxBytes: 10_000 });
    assert.deepEqual(s.put('k', input(11)), { stored: false, reason: 'too-large' });
    assert.equal(s.counters.tooLarge, 1);
    assert.equal(s.count, 0);
    // 2500-byte segments (four in 10 kB): a body under the limit with 3 kB of fields does not fit one.
    assert.deepEqual(s.put('k', input(10, { 'x-big': ['x'.repeat(3000)] })), { stored: false, reason: 'too-large' });
    assert.equal(s.counters.tooLarge, 2);
    assert.equal(s.put('k', input(10)).stored, true);
  });

  it('lowers the object limit when maxBytes holds fewer than four segments of maxObjectSize', () => {
    assert.equal(new SharedStore({ maxBytes: 256 * 1024 * 1024, maxObjectSize: 8 * 1024 * 1024 }).maxObjectSize, 8 * 1024 * 1024);
    const s = new SharedStore({ maxBytes: 1024 * 1024, maxObjectSize: 512 * 1024 });
    // Four 256 KiB segments, 64 KiB of each kept for keys and fields.
    assert.equal(s.maxObjectSize, 192 * 1024);
    assert.equal(s.put('k', input(192 * 1024 + 1)).stored, false);
    assert.equal(s.put('k', input(192 * 1024)).stored, true);
  });

  it('keeps recently hit objects over cold ones when it must evict (FIFO with reinsertion)', () => {
    const s = small();
    const key = (i: number) => `https://h/${i}`;
    let i = 0;
    // About 15 records of 900-byte bodies fill a 16 KiB segment: fill the first one, and more.
    for (; i < 20; i++) assert.ok(s.put(key(i), input(900)).stored);
    for (let h = 0; h < 5; h++) assert.equal(s.lookup(key(h), {}).kind, 'hit');
    // Three more segments: opening the last one empties the first.
    for (; i < 60; i++) s.put(key(i), input(900));
    assert.ok(s.counters.evictions >= 8, `evictions: ${s.counters.evictions}`);
    for (let h = 0; h < 5; h++) assert.equal(bodyOf(s, key(h))?.length, 900, `hit key ${h} was kept`);
    for (let c = 5; c < 12; c++) assert.equal(s.lookup(key(c), {}).kind, 'uri-miss', `cold key ${c} was evicted`);
    assert.ok(s.size <= s.maxBytes);
    // A kept record moved once; not hit again, it goes the next time round.
    for (; i < 140; i++) s.put(key(i), input(900));
    for (let h = 0; h < 5; h++) assert.equal(s.lookup(key(h), {}).kind, 'uri-miss');
  });

  it('holds the byte bound and keeps size equal to the sum of its variants through random puts, replacements, hits and removals', () => {
    const s = small();
    const random = mulberry32(7);
    for (let n = 0; n < 3000; n++) {
      const k = `k${Math.floor(random() * 80)}`;
      const r = random();
      if (r < 0.6) s.put(k, input(Math.floor(random() * 1000), {}, ['x'], { x: [String(Math.floor(random() * 3))] }));
      else if (r < 0.9) s.lookup(k, { x: [String(Math.floor(random() * 3))] });
      else for (const v of s.variants(k)) s.delete(v);
      assert.ok(s.size <= s.maxBytes);
      if (n % 100 === 0) {
        let sum = 0;
        let count = 0;
        for (let i = 0; i < 80; i++) for (const v of s.variants(`k${i}`)) (sum += v.size), count++;
        assert.equal(s.size, sum);
        assert.equal(s.count, count);
      }
    }
    assert.ok(s.counters.evictions > 0);
    s.purgePrefix('k', 'hard');
    assert.equal(s.size, 0);
    assert.equal(s.count, 0);
  });

  it('bounds the entries by its slots, evicting in a full window', () => {
    const s = small(); // 256 slots
    for (let i = 0; i < 2000; i++) s.put(`https://h/${i}`, input('x'));
    assert.ok(s.count <= 256, `entries: ${s.count}`);
    assert.ok(s.count > 128, `the slots were used: ${s.count}`);
    assert.equal(s.counters.stores, 2000);
    assert.ok(s.counters.evictions >= 2000 - 256);
  });

  it('hard-purges by key and by prefix', () => {
    const s = new SharedStore();
    s.put('https://a/x', input('1'));
    s.put('https://a/y', input('2'));
    s.put('https://b/x', input('3'));
    assert.equal(s.purge('https://a/x', 'hard'), 1);
    assert.equal(s.lookup('https://a/x', {}).kind, 'uri-miss');
    assert.equal(s.purgePrefix('https://a/', 'hard'), 1);
    assert.equal(s.count, 1);
    assert.equal(s.counters.purges, 2);
    assert.equal(bodyOf(s, 'https://b/x'), '3');
  });

  it('purges keys with extras (key headers, cookies) under their target only when asked for `target\\n`', () => {
    const s = new SharedStore();
    s.put('https://a/x', input('plain'));
    assert.equal(s.purgePrefix('https://a/x\n', 'hard'), 0);
    s.put('https://a/x\ncookie:u="1"', input('one'));
    s.put('https://a/x\ncookie:u="2"', input('two'));
    s.put('https://a/xy\ncookie:u="1"', input('other'));
    assert.equal(s.purgePrefix('https://a/x\n', 'hard'), 2);
    assert.equal(s.count, 2);
    assert.equal(bodyOf(s, 'https://a/xy\ncookie:u="1"'), 'other');
  });

  it('soft-purges by marking invalidated, and update clears the mark', () => {
    const s = new SharedStore();
    const put = s.put('k', input('1'));
    assert.equal(s.purge('k', 'soft'), 1);
    const got = s.lookup('k', {});
    assert.equal(got.kind === 'hit' && got.variant.invalidated, true);
    assert.ok(put.stored && s.update(put.variant, { status: 200, fields: { etag: ['"2"'] }, requestTime: 9, responseTime: 9 }));
    assert.equal(put.stored && put.variant.invalidated, false);
    const again = s.lookup('k', {});
    assert.equal(again.kind === 'hit' && again.variant.invalidated, false);
    assert.deepEqual(again.kind === 'hit' && again.variant.response.fields['etag'], ['"2"']);
    assert.equal(again.kind === 'hit' && again.variant.body.toString(), '1', 'update keeps the body');
    assert.equal(s.count, 1);
  });

  it('purges by surrogate key and keeps the tags consistent on update and eviction', () => {
    const s = small();
    const a = s.put('a', input(900, { 'surrogate-key': ['t1  t2'] }));
    s.put('b', input(900, { 'cache-tag': ['t2, t3'] }));
    assert.deepEqual(s.surrogateKeys().sort(), ['t1', 't2', 't3']);
    assert.equal(s.purgeSurrogate('t2', 'soft'), 2);
    assert.equal(s.count, 2);
    assert.ok(a.stored && s.update(a.variant, { status: 200, fields: { 'surrogate-key': ['t9'] }, requestTime: 1, responseTime: 1 }));
    assert.deepEqual(s.surrogateKeys().sort(), ['t2', 't3', 't9']);
    assert.equal(s.purgeSurrogate('t1', 'hard'), 0, 'the old tags went with the update');
    s.lookup('a', {});
    for (let i = 0; i < 60; i++) s.put(`filler${i}`, input(900)); // b, never hit, is evicted; a, hit, moves forward
    assert.equal(s.lookup('b', {}).kind, 'uri-miss');
    assert.ok(!s.surrogateKeys().includes('t3'));
    assert.equal(s.purgeSurrogate('t3', 'hard'), 0);
    assert.equal(s.purgeSurrogate('t9', 'hard'), 1);
    assert.equal(s.lookup('a', {}).kind, 'uri-miss');
  });

  it('deletes a variant once; a deleted or replaced variant cannot be updated', () => {
    const s = new SharedStore();
    const p = s.put('k', input('1'));
    assert.ok(p.stored);
    assert.equal(s.delete(p.variant), true);
    assert.equal(s.delete(p.variant), false);
    assert.equal(s.update(p.variant, p.variant.response), false);
    const q = s.put('k', input('2'));
    s.put('k', input('3'));
    assert.ok(q.stored && !s.update(q.variant, q.variant.response));
    assert.equal(bodyOf(s, 'k'), '3');
  });

  it('updates a variant that eviction moved forward since it was looked up', () => {
    const s = small();
    s.put('hot', input(900, { etag: ['"1"'] }));
    const seen = s.lookup('hot', {});
    assert.ok(seen.kind === 'hit');
    for (let i = 0; i < 60; i++) s.put(`filler${i}`, input(900)); // the first segment is emptied: hot moves
    assert.ok(s.update(seen.variant, { status: 200, fields: { etag: ['"2"'] }, requestTime: 5, responseTime: 5 }));
    const got = s.lookup('hot', {});
    assert.deepEqual(got.kind === 'hit' && got.variant.response.fields['etag'], ['"2"']);
    assert.equal(got.kind === 'hit' && got.variant.body.length, 900);
  });

  it('copies a body out of shared memory: the caller\'s copy survives eviction; a body never read is gone with its record', () => {
    const s = small();
    s.put('k', input('gz-body', {}, ['accept-encoding'], { 'accept-encoding': ['gzip'] }));
    s.put('k', input('br-body', {}, ['accept-encoding'], { 'accept-encoding': ['br'] }));
    const got = s.lookup('k', { 'accept-encoding': ['gzip'] });
    assert.ok(got.kind === 'hit');
    const other = got.variants.find((v) => v !== got.variant)!;
    for (let i = 0; i < 80; i++) s.put(`filler${i}`, input(900));
    assert.equal(got.variant.body.toString(), 'gz-body');
    assert.throws(() => other.body, CacheRecordGone);
  });

  it('ranks keys by hits, over their variants', () => {
    const s = new SharedStore();
    s.put('a', input('1'));
    s.put('b', input('2', {}, ['x'], { x: ['1'] }));
    s.put('b', input('2', {}, ['x'], { x: ['2'] }));
    s.put('c', input('3'));
    s.lookup('b', { x: ['1'] });
    s.lookup('b', { x: ['2'] });
    s.lookup('b', { x: ['2'] });
    s.lookup('c', {});
    assert.deepEqual(s.top(2), [{ key: 'b', hits: 3 }, { key: 'c', hits: 1 }]);
    assert.deepEqual(s.top(10).map((t) => t.key), ['b', 'c'], 'keys never hit are left out');
  });

  it('is one store for every view of its buffers: puts, hits, purges and soft purges are seen by all', () => {
    const a = new SharedStore({ maxBytes: 1024 * 1024, maxObjectSize: 64 * 1024 });
    const b = new SharedStore(a.buffers);
    assert.equal(b.id, a.id);
    assert.ok(b.sameLimits({ maxBytes: 1024 * 1024, maxObjectSize: 64 * 1024 }));
    a.put('https://h/x', input('from a', { 'surrogate-key': ['tag'] }));
    assert.equal(bodyOf(b, 'https://h/x'), 'from a');
    assert.equal(b.count, 1);
    assert.equal(b.size, a.size);
    b.put('https://h/y', input('from b'));
    assert.equal(bodyOf(a, 'https://h/y'), 'from b');
    assert.equal(a.purge('https://h/x', 'soft'), 1);
    const soft = b.lookup('https://h/x', {});
    assert.equal(soft.kind === 'hit' && soft.variant.invalidated, true, 'a soft purge is seen by every view');
    assert.ok(soft.kind === 'hit' && b.update(soft.variant, { status: 200, fields: {}, requestTime: 1, responseTime: 1 }));
    const fresh = a.lookup('https://h/x', {});
    assert.equal(fresh.kind === 'hit' && fresh.variant.invalidated, false);
    assert.equal(b.purgeSurrogate('tag', 'hard'), 0, 'the update replaced the tags');
    assert.equal(b.purgePrefix('https://h/', 'hard'), 2);
    assert.equal(a.lookup('https://h/y', {}).kind, 'uri-miss');
    assert.deepEqual({ a: a.count, b: b.count, stores: a.counters.stores, purges: b.counters.purges }, { a: 0, b: 0, stores: 2, purges: 3 });
    assert.equal(a.variants('https://h/x').length, 0);
  });

  it('takes over a lock whose holder stopped (a terminated thread) after 2 s', () => {
    const s = new SharedStore({ maxBytes: 64 * 1024, maxObjectSize: 1024 });
    const lock = new Int32Array(s.buffers.meta, 0, 1);
    lock[0] = 999_999; // a thread that died holding it
    const started = performance.now();
    assert.ok(s.put('k', input('after')).stored);
    const waited = performance.now() - started;
    assert.ok(waited >= 1900 && waited < 5000, `waited ${waited} ms`);
    assert.equal(lock[0], 0);
    assert.equal(bodyOf(s, 'k'), 'after');
  });

  it('rejects impossible options', () => {
    assert.throws(() => new SharedStore({ maxVariants: 0 }), CacheStoreConfigError);
    assert.throws(() => new SharedStore({ maxBytes: 100, maxObjectSize: 1000 }), CacheStoreConfigError);
    assert.throws(() => new SharedStore({ maxBytes: 512, maxObjectSize: 10 }), CacheStoreConfigError);
  });

  it('reads surrogate keys from both fields', () => {
    assert.deepEqual(surrogateKeysOf({ 'surrogate-key': ['a b', 'c'], 'cache-tag': ['b, d'] }), ['a', 'b', 'c', 'd']);
  });
});
