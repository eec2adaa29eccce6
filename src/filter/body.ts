/**
 * Response body transforms (`transformBody`), chained in the response
 * phases' reverse order: the backend's payload goes through the last filter's
 * transform first. Output is written to the client as it comes, chunk-encoded
 * for HTTP/1.1 clients (the length is no longer known), raw for HTTP/1.0
 * (close-delimited) and HTTP/2 (DATA frames). The writer is the exchange's
 * own, so the client's backpressure pauses the backend as for any body.
 *
 * A transformed response never takes the one-write small-response path, and
 * an HTTP/2 response loses its trailers; routes without a transform are
 * unaffected.
 */
import type { UsherError } from '../errors.ts';
import type { BodyTransform } from './filter.ts';

/** A built-in transform that may need the rest of the body after the client left (a cache fill others read). */
export interface OutlivingTransform {
  /** Asked when the client leaves mid-body: true keeps the backend's body coming, output discarded, until it ends. */
  outlivesClient?(): boolean;
}

/** What the transformer needs from the run that made it. */
interface FailureSink {
  bodyFailed(filter: string, error: unknown): UsherError;
}

const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

function asBuffer(out: Uint8Array | string | undefined): Buffer | undefined {
  if (out === undefined) return undefined;
  const buffer = typeof out === 'string' ? Buffer.from(out, 'utf8') : Buffer.isBuffer(out) ? out : Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  return buffer.length === 0 ? undefined : buffer;
}

/** The transforms of one response, bound to the exchange's writer by {@link BodyTransformer.attach}. */
export class BodyTransformer {
  readonly #transforms: readonly BodyTransform[];
  /** The filter of each transform, for logs and metrics. */
  readonly #names: readonly string[];
  readonly #run: FailureSink;
  #write: (data: Buffer) => void = () => {};
  #fail: (error: UsherError) => void = () => {};
  #chunked = false;
  #failed = false;

  constructor(transforms: readonly BodyTransform[], names: readonly string[], run: FailureSink) {
    this.#transforms = transforms;
    this.#names = names;
    this.#run = run;
  }

  /** Some transform needs the rest of the body though the client left ({@link OutlivingTransform}). */
  outlivesClient(): boolean {
    return !this.#failed && this.#transforms.some((transform) => (transform as OutlivingTransform).outlivesClient?.() === true);
  }

  /** Every transform only observes the body: the response keeps its length and framing. */
  get observesOnly(): boolean {
    return this.#transforms.every((transform) => transform.observesOnly === true);
  }

  /**
   * Binds the exchange's writer. `chunked`: frame the output as HTTP/1.1
   * chunks. `fail` is called once if a transform throws (the response has
   * begun, so the exchange can only cut it).
   */
  attach(write: (data: Buffer) => void, chunked: boolean, fail: (error: UsherError) => void): this {
    this.#write = write;
    this.#chunked = chunked;
    this.#fail = fail;
    return this;
  }

  /** Payload bytes `buffer[start, end)` from the backend (a `PayloadSink`). */
  readonly push = (buffer: Buffer, start: number, end: number): void => {
    if (this.#failed || end <= start) return;
    this.#through(0, start === 0 && end === buffer.length ? buffer : buffer.subarray(start, end));
  };

  /** The backend's body ended: flush every transform, then the last chunk. */
  end(): void {
    if (this.#failed) return;
    for (let i = 0; i < this.#transforms.length; i++) {
      const transform = this.#transforms[i]!;
      let out: Buffer | undefined;
      try {
        const result = transform.flush?.();
        if (transform.observesOnly !== true) out = asBuffer(result);
      } catch (error) {
        this.#failure(i, error);
        return;
      }
      if (out !== undefined) this.#through(i + 1, out);
      if (this.#failed) return;
    }
    if (this.#chunked) this.#write(LAST_CHUNK);
  }

  /** Runs `data` through transforms `from` onwards and writes what comes out. */
  #through(from: number, data: Buffer): void {
    let out: Buffer | undefined = data;
    for (let i = from; i < this.#transforms.length && out !== undefined; i++) {
      const transform = this.#transforms[i]!;
      try {
        const result = transform.transform(out);
        // An observer's output is ignored: the bytes go on as they were, so the length stays true.
        if (transform.observesOnly !== true) out = asBuffer(result);
      } catch (error) {
        this.#failure(i, error);
        return;
      }
    }
    if (out === undefined) return;
    if (this.#chunked) this.#write(Buffer.concat([Buffer.from(`${out.length.toString(16)}\r\n`, 'latin1'), out, CRLF]));
    else this.#write(out);
  }

  #failure(index: number, error: unknown): void {
    this.#failed = true;
    this.#fail(this.#run.bodyFailed(this.#names[index]!, error));
  }
}

const CRLF = Buffer.from('\r\n', 'latin1');
