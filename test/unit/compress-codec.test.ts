/**
 * The synchronous streaming encoders (src/compress/codec.ts) rely on Node
 * zlib internals (`_handle.writeSync`, `_writeState`, `_chunkSize`): these
 * tests fail if a Node release changes them, for each coding.
 */
import assert from 'node:assert/strict';
import { describe, it, test } from 'node:test';
import zlib from 'node:zlib';
import { CODINGS_AVAILABLE, Decoder, Encoder, type Coding } from '../../src/compress/codec.ts';
import { mulberry32 } from '../helpers/prng.ts';

const C = zlib.constants;
const decoders: Record<Coding, (data: Buffer, flushed?: boolean) => Buffer> = {
  gzip: (data, flushed) => zlib.gunzipSync(data, flushed ? { finishFlush: C.Z_SYNC_FLUSH } : {}),
  br: (data, flushed) => zlib.brotliDecompressSync(data, flushed ? { finishFlush: C.BROTLI_OPERATION_FLUSH } : {}),
  zstd: (data, flushed) => zlib.zstdDecompressSync(data, flushed ? { finishFlush: C.ZSTD_e_flush } : {}),
};

/** ~600 KiB of JSON-ish text with some random bytes: more than one output buffer per call. */
function corpus(): Buffer {
  const random = mulberry32(7);
  const rows = Array.from({ length: 6000 }, (_, i) => JSON.stringify({ id: i, name: `user-${i}`, score: Math.floor(random() * 1e6), tags: ['a', 'b', String(Math.floor(random() * 100))] }));
  return Buffer.from(`[${rows.join(',\n')}]`);
}

describe('codec', () => {
  it('Node 24 offers zstd, br and gzip', () => {
    assert.deepEqual([...CODINGS_AVAILABLE], ['zstd', 'br', 'gzip']);
  });

  for (const coding of ['zstd', 'br', 'gzip'] as const) {
    it(`${coding}: a body written in pieces without flushes decodes to the same bytes, (one stream: state kept across calls)`, () => {
      const data = corpus();
      const encoder = new Encoder(coding, { level: coding === 'br' ? 4 : 3 });
      const parts: Buffer[] = [];
      for (let at = 0; at < data.length; at += 10_000) parts.push(encoder.write(data.subarray(at, at + 10_000), false));
      parts.push(encoder.finish());
      const coded = Buffer.concat(parts);
      assert.ok(decoders[coding](coded).equals(data), 'round trip');
      assert.ok(coded.length < data.length / 3, `${coding} compresses: ${coded.length} of ${data.length}`);
      assert.throws(() => encoder.write(Buffer.from('x'), false), /already finished/);
    });

    it(`${coding}: a flushed write can be decoded at once, before the stream ends`, () => {
      const encoder = new Encoder(coding, { level: 1 });
      const first = encoder.write(Buffer.from('data: one\n\n'), true);
      assert.ok(first.length > 0, 'a flush emits bytes');
      assert.equal(decoders[coding](first, true).toString(), 'data: one\n\n');
      const second = encoder.write(Buffer.from('data: two\n\n'), true);
      assert.equal(decoders[coding](Buffer.concat([first, second]), true).toString(), 'data: one\n\ndata: two\n\n');
      const all = Buffer.concat([first, second, encoder.finish()]);
      assert.equal(decoders[coding](all).toString(), 'data: one\n\ndata: two\n\n');
    });

    it(`${coding}: an empty body is a valid empty stream; close() frees the encoder without ending it`, () => {
      assert.equal(decoders[coding](new Encoder(coding, { level: 1 }).finish()).length, 0);
      const cut = new Encoder(coding, { level: 1 });
      cut.write(Buffer.from('abc'), false);
      cut.close();
      cut.close();
      assert.throws(() => cut.finish(), /already finished or closed/);
    });
  }
});

test('finished gzip encoders are reset and reused: each of many sequential bodies decodes to itself', () => {
  for (let i = 0; i < 40; i++) {
    const input = Buffer.from(JSON.stringify({ i, data: 'abc'.repeat(500 + i * 300) }));
    const encoder = new Encoder('gzip', { level: 4 });
    const out = Buffer.concat([encoder.write(input.subarray(0, 1000), false), encoder.write(input.subarray(1000), true), encoder.finish()]);
    assert.ok(zlib.gunzipSync(out).equals(input), `body ${i}`);
  }
});

describe('Decoder', () => {
  for (const coding of CODINGS_AVAILABLE) {
    it(`${coding}: decodes a body coded upstream, piece by piece, to the same bytes`, () => {
      const input = Buffer.from(JSON.stringify({ coding, items: Array.from({ length: 2000 }, (_, i) => ({ i, name: `item-${i}` })) }));
      const coded = coding === 'gzip' ? zlib.gzipSync(input) : coding === 'br' ? zlib.brotliCompressSync(input) : zlib.zstdCompressSync(input);
      const decoder = new Decoder(coding);
      const parts: Buffer[] = [];
      for (let at = 0; at < coded.length; at += 777) parts.push(decoder.write(coded.subarray(at, at + 777)));
      parts.push(decoder.finish());
      assert.ok(Buffer.concat(parts).equals(input));
    });
  }

  it('refuses a piece that decodes past 16 MiB (a decompression bomb) with a CodecError', () => {
    const bomb = zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024));
    const decoder = new Decoder('gzip');
    assert.throws(() => decoder.write(bomb), /decodes to more than/);
  });

  it('refuses corrupt input with a CodecError', () => {
    const decoder = new Decoder('gzip');
    assert.throws(() => decoder.write(Buffer.from('definitely not gzip')), /zlib failed/);
  });
});
