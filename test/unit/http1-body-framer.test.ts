/**
 * BodyFramer: Content-Length and chunked framing over arbitrary splits of the
 * input, strict chunk-size / extension / trailer validation, de-chunking.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BodyFramer, type BodyFramerOptions } from '../../src/http1/body-framer.ts';
import type { BodyFraming } from '../../src/http1/types.ts';

const CHUNKED: BodyFraming = { kind: 'chunked' };

/** Feeds `pieces` in order; returns the absolute end offset (or -1 / -2) and the payload collected. */
function feed(framing: BodyFraming, pieces: readonly Buffer[], options?: BodyFramerOptions): { end: number; payload: string; framer: BodyFramer } {
  const framer = new BodyFramer(options);
  framer.reset(framing);
  let payload = '';
  const sink = (buf: Buffer, start: number, end: number): void => {
    assert.ok(start < end && end <= buf.length);
    payload += buf.toString('latin1', start, end);
  };
  let offset = 0;
  for (const piece of pieces) {
    const r = framer.scanPayload(piece, 0, sink);
    if (r === -2) return { end: -2, payload, framer };
    if (r >= 0) return { end: offset + r, payload, framer };
    offset += piece.length;
  }
  return { end: -1, payload, framer };
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

test('length: exact, split, and followed by the next message', () => {
  assert.deepEqual(pick(feed({ kind: 'length', length: 5 }, [b('hello')])), { end: 5, payload: 'hello' });
  assert.deepEqual(pick(feed({ kind: 'length', length: 5 }, [b('he'), b('llo'), b('XX')])), { end: 5, payload: 'hello' });
  assert.deepEqual(pick(feed({ kind: 'length', length: 5 }, [b('hel'), b('loNEXT')])), { end: 5, payload: 'hello' });
  const f = new BodyFramer();
  f.reset({ kind: 'length', length: 3 });
  assert.equal(f.scan(b('HEADabcGET'), 4), 7);
  assert.equal(f.done, true);
  assert.equal(f.scan(b('more'), 0), 0, 'a finished body ends where the next scan starts');
  f.reset({ kind: 'length', length: 3 });
  assert.equal(f.scan(b('HEADab'), 4), -1);
  assert.equal(f.done, false);
  assert.equal(f.scan(b(''), 0), -1);
  assert.equal(f.scan(b('cX'), 0), 1);
});

test('none and length 0 are done at once; until-close never is', () => {
  const f = new BodyFramer();
  f.reset({ kind: 'none' });
  assert.equal(f.done, true);
  assert.equal(f.scan(b('GET'), 2), 2);
  f.reset({ kind: 'length', length: 0 });
  assert.equal(f.scan(b('x'), 0), 0);
  const r = feed({ kind: 'until-close' }, [b('ab'), b(''), b('cd')]);
  assert.deepEqual(pick(r), { end: -1, payload: 'abcd' });
  assert.equal(r.framer.untilClose, true);
  assert.equal(r.framer.done, false);
});

const sample = '5;name=val;q="a\\"b;c"\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n000\r\nX-Trailer: one\r\nY:two \xe9\r\n\r\n';
const samplePayload = 'helloabcdefghijklmnopqrstuvwxyz';

test('chunked: a sample body split at every point, and byte by byte', () => {
  const whole = b(`${sample}NEXT`);
  for (let cut = 0; cut <= sample.length; cut++) {
    const r = feed(CHUNKED, [whole.subarray(0, cut), whole.subarray(cut)]);
    assert.deepEqual(pick(r), { end: sample.length, payload: samplePayload }, `cut at ${cut}`);
    assert.equal(r.framer.done, true);
  }
  const bytes = [...whole].map((x) => Buffer.from([x]));
  assert.deepEqual(pick(feed(CHUNKED, bytes)), { end: sample.length, payload: samplePayload });
  const f = new BodyFramer();
  f.reset(CHUNKED);
  assert.equal(f.scan(whole, 0), sample.length, 'scan without payload sink');
  f.reset(CHUNKED);
  assert.equal(f.scan(whole.subarray(0, 20), 0), -1);
  assert.equal(f.done, false);
});

test('chunked: accepted size lines and extensions', () => {
  for (const line of ['5', '0005', '5;a', '5 ;a', '5\t; a = b', '5;a=b;c', '5;a="x y\t\xe9"', '5;a="\\""', '5;a=b ;c', '5;a="b" ;c', 'A', 'a', '0000000000000005']) {
    const body = line.toLowerCase() === 'a' ? 'abcdefghij' : 'hello';
    const raw = `${line}\r\n${body}\r\n0\r\n\r\n`;
    assert.deepEqual(pick(feed(CHUNKED, [b(raw)])), { end: raw.length, payload: body }, JSON.stringify(line));
  }
});

test('chunked: largest size is 2^53-1', () => {
  const f = new BodyFramer();
  f.reset(CHUNKED);
  assert.equal(f.scan(b('1fffffffffffff\r\nabc'), 0), -1);
  assert.equal(f.error, undefined);
});

const badChunks: readonly (readonly [string, string, string])[] = [
  ['empty size', '\r\nhello\r\n0\r\n\r\n', 'HTTP1_BAD_CHUNK_SIZE'],
  ['non-hex size', 'g\r\n', 'HTTP1_BAD_CHUNK_SIZE'],
  ['hex digit then junk', '5g\r\n', 'HTTP1_BAD_CHUNK_SIZE'],
  ['0x prefix', '0x5\r\n', 'HTTP1_BAD_CHUNK_SIZE'],
  ['negative size', '-5\r\n', 'HTTP1_BAD_CHUNK_SIZE'],
  ['plus sign', '+5\r\n', 'HTTP1_BAD_CHUNK_SIZE'],
  ['leading space', ' 5\r\n', 'HTTP1_BAD_CHUNK_SIZE'],
  ['trailing space without extension', '5 \r\n', 'HTTP1_BAD_CHUNK_EXT'],
  ['overflow 18 f', 'ffffffffffffffffff\r\n', 'HTTP1_CHUNK_SIZE_OVERFLOW'],
  ['2^53', '20000000000000\r\n', 'HTTP1_CHUNK_SIZE_OVERFLOW'],
  ['17 digits', '00000000000000005\r\n', 'HTTP1_CHUNK_SIZE_OVERFLOW'],
  ['LF-only size line', '5\nhello\r\n0\r\n\r\n', 'HTTP1_BARE_LF'],
  ['CR without LF after size', '5\rhello', 'HTTP1_BARE_CR'],
  ['empty extension', '5;\r\n', 'HTTP1_BAD_CHUNK_EXT'],
  ['extension without name', '5;=a\r\n', 'HTTP1_BAD_CHUNK_EXT'],
  ['extension with empty value', '5;a=\r\n', 'HTTP1_BAD_CHUNK_EXT'],
  ['extension value not a token', '5;a=b@c\r\n', 'HTTP1_BAD_CHUNK_EXT'],
  ['extension name then space then junk', '5;a b\r\n', 'HTTP1_BAD_CHUNK_EXT'],
  ['unterminated quoted value', '5;a="b\r\n', 'HTTP1_BAD_CHUNK_EXT'],
  ['control in quoted value', '5;a="\x01"\r\n', 'HTTP1_BAD_CHUNK_EXT'],
  ['NUL in extension', '5;a\x00\r\n', 'HTTP1_BAD_CHUNK_EXT'],
  ['bare LF in extension', '5;a\nhello', 'HTTP1_BARE_LF'],
  ['junk after quoted value', '5;a="b"c\r\n', 'HTTP1_BAD_CHUNK_EXT'],
  ['missing CRLF after data', '5\r\nhelloX\r\n', 'HTTP1_BAD_CHUNK_DATA_END'],
  ['LF only after data', '5\r\nhello\n0\r\n\r\n', 'HTTP1_BAD_CHUNK_DATA_END'],
  ['CR then junk after data', '5\r\nhello\rX', 'HTTP1_BAD_CHUNK_DATA_END'],
  ['data longer than size', '3\r\nhello\r\n', 'HTTP1_BAD_CHUNK_DATA_END'],
  ['LF-only last chunk', '0\n\r\n', 'HTTP1_BARE_LF'],
  ['LF-only final line', '0\r\n\n', 'HTTP1_BARE_LF'],
  ['trailer obs-fold', '0\r\nX: a\r\n b\r\n\r\n', 'HTTP1_OBS_FOLD'],
  ['trailer space before colon', '0\r\nX : a\r\n\r\n', 'HTTP1_BAD_TRAILER'],
  ['trailer without colon', '0\r\nXa\r\n\r\n', 'HTTP1_BAD_TRAILER'],
  ['trailer empty name', '0\r\n: a\r\n\r\n', 'HTTP1_BAD_TRAILER'],
  ['trailer NUL in value', '0\r\nX: a\x00\r\n\r\n', 'HTTP1_BAD_TRAILER'],
  ['trailer bare LF', '0\r\nX: a\n\r\n', 'HTTP1_BARE_LF'],
  ['trailer bare CR', '0\r\nX: a\rb\r\n\r\n', 'HTTP1_BARE_CR'],
  ['final CR without LF', '0\r\n\rX', 'HTTP1_BARE_CR'],
  ['trailer Content-Length', '0\r\nContent-Length: 5\r\n\r\n', 'HTTP1_FORBIDDEN_TRAILER'],
  ['trailer HOST (case)', '0\r\nHOST: x\r\n\r\n', 'HTTP1_FORBIDDEN_TRAILER'],
  ['trailer Content_Length (underscore look-alike)', '0\r\nContent_Length: 5\r\n\r\n', 'HTTP1_FORBIDDEN_TRAILER'],
  ['trailer TRANSFER_ENCODING (underscore look-alike)', '0\r\nTRANSFER_ENCODING: chunked\r\n\r\n', 'HTTP1_FORBIDDEN_TRAILER'],
];

test('chunked: trailer names with _ that are not look-alikes of forbidden fields pass', () => {
  const raw = '0\r\nX_Checksum: 1\r\ncontent_lengthx: 2\r\n\r\n';
  assert.equal(feed(CHUNKED, [b(raw)]).end, raw.length);
});

test('chunked: malformed framing is an error (-2) with a code, split anywhere', async (t) => {
  for (const [name, raw, code] of badChunks) {
    await t.test(name, () => {
      const whole = b(raw);
      for (let cut = 0; cut <= whole.length; cut++) {
        const r = feed(CHUNKED, [whole.subarray(0, cut), whole.subarray(cut)]);
        assert.equal(r.end, -2, `cut at ${cut}`);
        assert.equal(r.framer.error?.code, code, `cut at ${cut}`);
        assert.equal(r.framer.error?.status, 400);
      }
    });
  }
});

test('chunked: an error is sticky until reset; reset clears it', () => {
  const f = new BodyFramer({ errorStatus: 502 });
  f.reset(CHUNKED);
  assert.equal(f.scan(b('zz\r\n'), 0), -2);
  assert.equal(f.error?.status, 502);
  assert.equal(f.scan(b('5\r\nhello\r\n0\r\n\r\n'), 0), -2);
  f.reset(CHUNKED);
  assert.equal(f.error, undefined);
  assert.equal(f.scan(b('5\r\nhello\r\n0\r\n\r\n'), 0), 15);
});

test('chunked: size line and trailer bounds', () => {
  const longExt = `5;${'a'.repeat(100)}\r\nhello\r\n0\r\n\r\n`;
  assert.equal(feed(CHUNKED, [b(longExt)], { maxChunkLineBytes: 64 }).framer.error?.code, 'HTTP1_CHUNK_LINE_TOO_LONG');
  assert.equal(feed(CHUNKED, [b(longExt)], { maxChunkLineBytes: 103 }).end, longExt.length, 'line of exactly the limit (size + ext + CR)');
  assert.equal(feed(CHUNKED, [b(longExt)], { maxChunkLineBytes: 102 }).framer.error?.code, 'HTTP1_CHUNK_LINE_TOO_LONG');
  const trailers = `0\r\n${'X: 1234567\r\n'.repeat(10)}\r\n`;
  assert.equal(feed(CHUNKED, [b(trailers)], { maxTrailerBytes: 122 }).end, trailers.length);
  assert.equal(feed(CHUNKED, [b(trailers)], { maxTrailerBytes: 121 }).framer.error?.code, 'HTTP1_TRAILER_TOO_LARGE');
  const many = `${'1\r\nx\r\n'.repeat(1000)}0\r\n\r\n`;
  assert.deepEqual(pick(feed(CHUNKED, [b(many)], { maxChunkLineBytes: 8 })), { end: many.length, payload: 'x'.repeat(1000) }, 'the line limit is per line');
});

test('decode mode yields exactly the chunk data, in order, without framing bytes', () => {
  const chunks = ['a', 'bc', 'x'.repeat(300), '\r\n0\r\n', ';'];
  const raw = `${chunks.map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join('')}0\r\n\r\n`;
  for (let cut = 0; cut <= raw.length; cut += 7) {
    const whole = b(raw);
    const r = feed(CHUNKED, [whole.subarray(0, cut), whole.subarray(cut)]);
    assert.deepEqual(pick(r), { end: raw.length, payload: chunks.join('') });
  }
});

function pick(r: { end: number; payload: string }): { end: number; payload: string } {
  return { end: r.end, payload: r.payload };
}
