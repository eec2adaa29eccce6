/**
 * Synchronous, streaming compressors for gzip, br and zstd: one stateful
 * encoder per response, fed chunk by chunk, each call returning at once the
 * bytes it produced.
 *
 * Why Node internals: the filter contract's body transforms are synchronous
 * (`BodyTransform.transform` returns the bytes to send), and Node's public
 * zlib API is either asynchronous streams or one-shot `*Sync` helpers. The
 * `*Sync` helpers run `zlib._processChunk(chunk, flag)`, but that closes the
 * native handle after one call (it is one-shot: verified on Node 24.21), so it
 * cannot carry a stream. This module runs the same loop `_processChunk` runs
 * (`handle.writeSync` into an output buffer, reading how much input and
 * output are left from `_writeState`) without closing the handle, so the
 * compressor keeps its window and state from one chunk to the next. It is
 * the ONLY place that touches `_handle`, `_writeState` and `_chunkSize`;
 * `test/unit/compress-codec.test.ts` fails if Node changes them.
 *
 * zstd (`zlib.createZstdCompress`) is experimental in Node 24 and is only
 * offered when it exists ({@link CODINGS_AVAILABLE}).
 */
import zlib from 'node:zlib';

/** The content codings usher can produce, in its default order of preference on ties. */
export type Coding = 'zstd' | 'br' | 'gzip';

export const ALL_CODINGS: readonly Coding[] = ['zstd', 'br', 'gzip'];

const C = zlib.constants;

/** Whether this Node has the coding (zstd is experimental and may be missing). */
export function codingAvailable(coding: Coding): boolean {
  return coding !== 'zstd' || (typeof zlib.createZstdCompress === 'function' && typeof C.ZSTD_e_flush === 'number');
}

export const CODINGS_AVAILABLE: readonly Coding[] = ALL_CODINGS.filter(codingAvailable);

/** Levels allowed on the fly: above these the CPU per byte grows far faster than the ratio (brotli 11 is ~100× quality 4). */
export const LEVEL_BOUNDS: Readonly<Record<Coding, { readonly min: number; readonly max: number }>> = {
  zstd: { min: 1, max: 9 },
  br: { min: 0, max: 5 },
  gzip: { min: 1, max: 9 },
};

/** The three flush modes: keep input for a better ratio, emit everything so far (a streamed event must not wait), end the stream. */
interface Flags {
  readonly none: number;
  readonly flush: number;
  readonly finish: number;
}

const FLAGS: Record<Coding, Flags> = {
  gzip: { none: C.Z_NO_FLUSH, flush: C.Z_SYNC_FLUSH, finish: C.Z_FINISH },
  br: { none: C.BROTLI_OPERATION_PROCESS, flush: C.BROTLI_OPERATION_FLUSH, finish: C.BROTLI_OPERATION_FINISH },
  zstd: { none: C.ZSTD_e_continue ?? 0, flush: C.ZSTD_e_flush ?? 1, finish: C.ZSTD_e_end ?? 2 },
};

/** The internals of a zlib stream this module relies on (what `_processChunk`'s synchronous path uses). */
interface NativeHandle {
  writeSync(flag: number, input: Uint8Array, inOffset: number, inLength: number, output: Uint8Array, outOffset: number, outLength: number): void;
}
interface ZlibInternals {
  readonly _handle: NativeHandle | null;
  /** Public on deflate streams (gzip): back to a fresh stream, keeping the native state's memory. */
  reset?(): void;
  /** `[availOutAfter, availInAfter]` after each write. */
  readonly _writeState: Uint32Array;
  readonly _chunkSize: number;
  readonly destroyed: boolean;
  close(): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  removeAllListeners?(event: 'error'): unknown;
}

/**
 * Finished gzip encoders, by level, kept for the next responses: creating a
 * zlib stream (its JS object and deflate's 256 KiB of native state) cost
 * more than coding a 16 KiB body. `reset()` is deflate's own (deflateReset).
 * Brotli and zstd streams have no reset and are made per response.
 */
const POOL_SIZE = 32;
const pools = new Map<number, ZlibInternals[]>();

function pooled(level: number): ZlibInternals[] {
  let pool = pools.get(level);
  if (pool === undefined) {
    pool = [];
    pools.set(level, pool);
  }
  return pool;
}

/** One output buffer per thread for every encoder: what a call produced is copied out (small, so from node's slab), and no 16 KiB buffer is allocated per call. */
const scratch = Buffer.allocUnsafeSlow(64 * 1024);

/** Thrown when Node's zlib no longer has the internals this module uses, or a compressor fails. */
export class CodecError extends Error {
  override readonly name = 'CodecError';
}

const EMPTY = Buffer.alloc(0);

/** Options of one encoder. */
export interface EncoderOptions {
  readonly level: number;
  /** The body's length when known: a hint that lets brotli size its window to it (less memory for small bodies). */
  readonly sizeHint?: number | undefined;
}

/**
 * What {@link Encoder} and {@link Decoder} share: one zlib stream, driven
 * synchronously ({@link drive}), whose native state is freed once.
 */
abstract class SyncStream {
  readonly coding: Coding;
  protected readonly flags: Flags;
  protected readonly stream: ZlibInternals;
  #error: Error | undefined;
  #done = false;

  protected constructor(coding: Coding, stream: ZlibInternals) {
    this.coding = coding;
    this.flags = FLAGS[coding];
    this.stream = stream;
    // A failing native write destroys the stream with the error; without a listener that error would crash the process.
    stream.removeAllListeners?.('error');
    stream.on('error', (error) => (this.#error = error));
  }

  /** Frees the native state without ending the stream (the response was cut). Idempotent. */
  close(): void {
    if (this.#done) return;
    this.#done = true;
    this.stream.close();
  }

  /** Whether the stream failed: a failed one is never reused. */
  protected get failed(): boolean {
    return this.#error !== undefined || this.stream.destroyed;
  }

  /** Done with the stream without freeing it (it goes back to a pool). */
  protected retire(): void {
    this.#done = true;
  }

  protected run(input: Uint8Array, flag: number, maxOutput: number): Buffer {
    if (this.#done) throw new CodecError(`the ${this.coding} stream was already finished or closed`);
    try {
      return drive(this.stream, input, flag, () => this.#error, maxOutput);
    } catch (error) {
      this.close();
      throw error;
    }
  }
}

/** A zlib stream made for usher's synchronous use, checked for the internals {@link drive} needs. */
function checked(stream: ZlibInternals): ZlibInternals {
  const handle = stream._handle;
  if (handle === null || typeof handle?.writeSync !== 'function' || !(stream._writeState instanceof Uint32Array) || !(stream._chunkSize > 0)) {
    stream.close();
    throw new CodecError(`Node ${process.version}'s zlib streams no longer have _handle.writeSync/_writeState/_chunkSize, which usher's synchronous compression needs (src/compress/codec.ts)`);
  }
  return stream;
}

/** A stateful compressor for one response body. Not reusable once {@link finish}ed or {@link close}d. */
export class Encoder extends SyncStream {
  readonly #level: number;

  constructor(coding: Coding, options: EncoderOptions) {
    if (!codingAvailable(coding)) throw new CodecError(`${coding} is not available in Node ${process.version} (zlib.createZstdCompress is missing)`);
    super(coding, (coding === 'gzip' ? pooled(options.level).pop() : undefined) ?? checked(create(coding, options) as unknown as ZlibInternals));
    this.#level = options.level;
  }

  /** Compresses `chunk`; with `flush`, also emits everything buffered so the client can decode all input so far. */
  write(chunk: Uint8Array, flush: boolean): Buffer {
    return this.run(chunk, flush ? this.flags.flush : this.flags.none, Number.POSITIVE_INFINITY);
  }

  /** Ends the stream: the last bytes. Frees the native state, or keeps a gzip one for the next response. */
  finish(): Buffer {
    const out = this.run(EMPTY, this.flags.finish, Number.POSITIVE_INFINITY);
    const pool = pooled(this.#level);
    if (this.coding === 'gzip' && !this.failed && pool.length < POOL_SIZE) {
      this.retire();
      this.stream.reset!();
      pool.push(this.stream);
      return out;
    }
    this.close();
    return out;
  }
}

/**
 * Runs `input` through a zlib stream's native handle synchronously: the loop
 * of Node's `processChunkSync`, without its closing of the handle. Output
 * goes through the thread's scratch buffer and is copied out. Throws
 * {@link CodecError} when the stream fails or the output passes `maxOutput`
 * bytes (a decompression bomb).
 */
function drive(stream: ZlibInternals, input: Uint8Array, flag: number, failure: () => Error | undefined, maxOutput: number): Buffer {
  const handle = stream._handle!;
  const state = stream._writeState;
  const size = scratch.length;
  const parts: Buffer[] = [];
  let total = 0;
  let inOffset = 0;
  let inLength = input.byteLength;
  for (;;) {
    handle.writeSync(flag, input, inOffset, inLength, scratch, 0, size);
    const error = failure();
    if (error !== undefined || stream.destroyed) throw new CodecError(`zlib failed: ${error?.message ?? 'the stream was destroyed'}`, { cause: error });
    const availOut = state[0]!;
    const availIn = state[1]!;
    const produced = size - availOut;
    if (produced > 0) {
      parts.push(Buffer.from(scratch.subarray(0, produced))); // the scratch buffer is written again next time
      total += produced;
      if (total > maxOutput) throw new CodecError(`one piece of the body decodes to more than ${maxOutput} bytes`);
    }
    inOffset += inLength - availIn;
    inLength = availIn;
    // Output space left over means the stream took all it could for this flag.
    if (availOut !== 0) break;
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
}

/** Most bytes one upstream chunk may decode to: a small coded chunk can expand enormously (a decompression bomb). */
const MAX_DECODED_PER_CHUNK = 16 * 1024 * 1024;

/**
 * A stateful decompressor for one response body coded upstream, for a client
 * that does not accept that coding. Each piece decodes at once (streams and
 * server-sent events are not held back).
 */
export class Decoder extends SyncStream {
  constructor(coding: Coding) {
    if (!codingAvailable(coding)) throw new CodecError(`${coding} is not available in Node ${process.version}`);
    const stream = coding === 'gzip' ? zlib.createGunzip() : coding === 'br' ? zlib.createBrotliDecompress() : zlib.createZstdDecompress();
    super(coding, checked(stream as unknown as ZlibInternals));
  }

  /** Decodes a piece of the body. @throws CodecError on corrupt input or a piece that decodes past 16 MiB. */
  write(chunk: Uint8Array): Buffer {
    return this.run(chunk, this.flags.flush, MAX_DECODED_PER_CHUNK);
  }

  /** The end of the body: what is left. */
  finish(): Buffer {
    const out = this.run(EMPTY, this.flags.finish, MAX_DECODED_PER_CHUNK);
    this.close();
    return out;
  }
}

function create(coding: Coding, { level, sizeHint }: EncoderOptions): zlib.Gzip | zlib.BrotliCompress | zlib.ZstdCompress {
  switch (coding) {
    case 'gzip':
      return zlib.createGzip({ level });
    case 'br':
      return zlib.createBrotliCompress({
        params: {
          [C.BROTLI_PARAM_QUALITY]: level,
          [C.BROTLI_PARAM_MODE]: C.BROTLI_MODE_TEXT,
          ...(sizeHint === undefined ? {} : { [C.BROTLI_PARAM_SIZE_HINT]: Math.min(sizeHint, 2 ** 30) }),
        },
      });
    case 'zstd':
      // No pledged size: a later filter's transform may change the length, and a wrong pledge fails the frame.
      return zlib.createZstdCompress({ params: { [C.ZSTD_c_compressionLevel]: level } });
  }
}

/**
 * Codes a whole body on libuv's thread pool (zlib's one-shot asynchronous
 * functions): the event loop only hands it over (a few µs) and takes the
 * result back, where the synchronous encoders would hold it for the whole
 * body (about 4.7 ms per MiB at gzip 4 on this machine). The hand-over costs
 * 60-170 µs of latency, more than coding 16 KiB takes, so only large bodies
 * go this way (see {@link ASYNC_CODING_BYTES}).
 */
export function codeOnThreadPool(coding: Coding, level: number, body: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, out: Buffer): void => (error === null ? resolve(out) : reject(error));
    switch (coding) {
      case 'gzip':
        zlib.gzip(body, { level }, done);
        return;
      case 'br':
        zlib.brotliCompress(body, { params: { [C.BROTLI_PARAM_QUALITY]: level, [C.BROTLI_PARAM_MODE]: C.BROTLI_MODE_TEXT, [C.BROTLI_PARAM_SIZE_HINT]: Math.min(body.length, 2 ** 30) } }, done);
        return;
      case 'zstd':
        if (!codingAvailable('zstd')) {
          reject(new CodecError(`zstd is not available in Node ${process.version}`));
          return;
        }
        zlib.zstdCompress(body, { params: { [C.ZSTD_c_compressionLevel]: level } }, done);
        return;
    }
  });
}

/**
 * Whole bodies at least this long are coded on the thread pool
 * ({@link codeOnThreadPool}). Measured with gzip 4 on 16-64 KiB JSON
 * (Node 24, this 2-core VM): synchronous coding costs 64 µs at 16 KiB and 274
 * µs at 64 KiB; the pool's hand-over adds 60-170 µs of latency. From 64 KiB
 * the synchronous cost is well above the hand-over, and the loop is free.
 */
export const ASYNC_CODING_BYTES = 64 * 1024;
