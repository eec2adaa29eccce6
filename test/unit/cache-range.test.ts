import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildPartial, coalesce, MAX_PARTS, parseRange, resolveRanges } from '../../src/cache/range.ts';

const resolve = (v: string, len: number) => resolveRanges(parseRange(v), len);

describe('Range parsing (RFC 9110 §14.1.1)', () => {
  it('reads int, open-ended and suffix ranges with whitespace and empty members', () => {
    assert.deepEqual(parseRange('bytes=0-499'), [{ kind: 'int', first: 0, last: 499 }]);
    assert.deepEqual(parseRange('Bytes = 500- , ,-200'), [{ kind: 'int', first: 500 }, { kind: 'suffix', length: 200 }]);
  });
  it('ignores the whole header on invalid syntax, an unknown unit, or last < first', () => {
    for (const v of ['bytes=', 'bytes=a-b', 'bytes=5-1', 'bytes=0-1,x', 'items=0-1', 'bytes 0-1', 'bytes=--1', 'bytes=-', 'bytes=1-2-3']) {
      assert.equal(parseRange(v), undefined, v);
    }
  });
});

describe('Range resolution', () => {
  it('caps last-pos and resolves suffixes against the length', () => {
    assert.deepEqual(resolve('bytes=0-9999', 100), { kind: 'partial', ranges: [{ first: 0, last: 99 }] });
    assert.deepEqual(resolve('bytes=-10', 100), { kind: 'partial', ranges: [{ first: 90, last: 99 }] });
    assert.deepEqual(resolve('bytes=-1000', 100), { kind: 'partial', ranges: [{ first: 0, last: 99 }] });
    assert.deepEqual(resolve('bytes=50-', 100), { kind: 'partial', ranges: [{ first: 50, last: 99 }] });
  });
  it('is 416 with bytes */length when nothing is satisfiable', () => {
    assert.deepEqual(resolve('bytes=100-', 100), { kind: 'unsatisfiable', contentRange: 'bytes */100' });
    assert.deepEqual(resolve('bytes=-0', 100), { kind: 'unsatisfiable', contentRange: 'bytes */100' });
    assert.deepEqual(resolve('bytes=200-300,-0', 100), { kind: 'unsatisfiable', contentRange: 'bytes */100' });
  });
  it('drops unsatisfiable ranges when others are satisfiable', () => {
    assert.deepEqual(resolve('bytes=200-300,0-0', 100), { kind: 'partial', ranges: [{ first: 0, last: 0 }] });
  });
  it('sends the full body for no Range, an ignored Range or an empty body', () => {
    assert.deepEqual(resolveRanges(undefined, 100), { kind: 'full' });
    assert.deepEqual(resolve('bytes=5-1', 100), { kind: 'full' });
    assert.deepEqual(resolve('bytes=-5', 0), { kind: 'full' });
  });
  it('coalesces overlapping, adjacent and nearby ranges, in ascending order', () => {
    assert.deepEqual(coalesce([{ first: 500, last: 600 }, { first: 0, last: 10 }, { first: 5, last: 20 }]), [{ first: 0, last: 20 }, { first: 500, last: 600 }]);
    // A gap smaller than a part's headers is cheaper to send than a new part.
    assert.deepEqual(coalesce([{ first: 0, last: 10 }, { first: 50, last: 60 }]), [{ first: 0, last: 60 }]);
    assert.deepEqual(coalesce([{ first: 0, last: 9 }, { first: 10, last: 19 }]), [{ first: 0, last: 19 }]);
    assert.deepEqual(coalesce([{ first: 0, last: 9 }, { first: 1000, last: 1009 }]).length, 2);
  });
  it('ignores the Range when more than MAX_PARTS parts remain', () => {
    const specs = Array.from({ length: MAX_PARTS + 1 }, (_, i) => `${i * 1000}-${i * 1000}`).join(',');
    assert.deepEqual(resolve(`bytes=${specs}`, 100_000), { kind: 'full' });
    const ok = Array.from({ length: MAX_PARTS }, (_, i) => `${i * 1000}-${i * 1000}`).join(',');
    const got = resolve(`bytes=${ok}`, 100_000);
    assert.equal(got.kind === 'partial' ? got.ranges.length : -1, MAX_PARTS);
    // 1000 one-byte ranges 2 bytes apart coalesce into one part rather than being refused.
    const dense = Array.from({ length: 1000 }, (_, i) => `${i * 2}-${i * 2}`).join(',');
    assert.deepEqual(resolve(`bytes=${dense}`, 100_000), { kind: 'partial', ranges: [{ first: 0, last: 1998 }] });
  });
});

describe('206 bodies (RFC 9110 §14.6, §15.3.7)', () => {
  const body = Buffer.from('0123456789abcdefghij');
  it('builds a single part as a view over the stored body', () => {
    const p = buildPartial(body, [{ first: 2, last: 4 }], 'text/plain', 'b');
    assert.deepEqual(p.fields, { 'content-range': 'bytes 2-4/20' });
    assert.equal(Buffer.concat(p.chunks as Buffer[]).toString(), '234');
    assert.equal(p.length, 3);
    assert.equal(p.chunks[0]!.buffer, body.buffer);
  });
  it('builds multipart/byteranges with a boundary and per-part Content-Range', () => {
    const p = buildPartial(body, [{ first: 0, last: 1 }, { first: 18, last: 19 }], 'text/plain', 'SEP');
    assert.equal(p.fields['content-type'], 'multipart/byteranges; boundary=SEP');
    const text = Buffer.concat(p.chunks as Buffer[]).toString();
    assert.equal(text,
      '--SEP\r\ncontent-type: text/plain\r\ncontent-range: bytes 0-1/20\r\n\r\n01' +
      '\r\n--SEP\r\ncontent-type: text/plain\r\ncontent-range: bytes 18-19/20\r\n\r\nij' +
      '\r\n--SEP--\r\n');
    assert.equal(p.length, Buffer.byteLength(text));
    assert.equal(p.chunks[1]!.buffer, body.buffer);
  });
  it('refuses an invalid boundary', () => {
    assert.throws(() => buildPartial(body, [{ first: 0, last: 1 }, { first: 5, last: 6 }], undefined, 'bad boundary\r\n'), RangeError);
  });
});
