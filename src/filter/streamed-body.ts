/**
 * A local answer's body that is still arriving: requests that waited on a
 * cache fill are answered from the fill's bytes as the backend sends them
 * (Varnish and nginx's `proxy_cache_lock` make them wait for the whole body).
 * Each reader has its own position and its own backpressure: a slow client
 * pauses only its own delivery, never the fill or the other readers. The
 * length is known before the first byte (only responses with a
 * Content-Length are streamed this way), so every protocol frames it as a
 * plain length-delimited body.
 */

/** Where one reader's bytes go (an exchange's client socket or stream). */
export interface BodySink {
  /** One piece, in order. Returns false when the client's buffer is full: no more until the reader's `resume`. */
  write(chunk: Buffer): boolean;
  /** Every byte was delivered. */
  end(): void;
  /** The body will not complete (the fill failed): the response can only be cut. */
  abort(): void;
}

/** One reader's delivery. */
export interface BodyReader {
  /** The client drained: deliver what arrived meanwhile. */
  resume(): void;
  /** The client left: deliver nothing more. */
  cancel(): void;
}

/** A body that arrives over time. */
export interface StreamedBody {
  /** Its Content-Length. */
  readonly length: number;
  /** Starts delivering to `sink` from the first byte; `sink.end` may be called before this returns (everything had arrived). */
  read(sink: BodySink): BodyReader;
}
