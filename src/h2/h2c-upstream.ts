import { constants, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerStreamResponseOptions } from 'node:http2';
import { UsherError } from '../errors.ts';
import type { BodyTransformer } from '../filter/body.ts';
import { connectFailure } from '../proxy/upstream-errors.ts';
import { h2cClientFor } from './h2c-client.ts';
import { headerObject, passHeaders, statusOf, trailerObject } from './headers.ts';
import { resetStream } from './respond.ts';
import { StreamExchange } from './stream-exchange.ts';

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM, NGHTTP2_FLAG_END_STREAM } = constants;

/**
 * An HTTP/2 client's request to a pool with `protocol: h2c`: the stream is
 * relayed to the backend's shared cleartext HTTP/2 session (`h2c-client.ts`)
 * frame for frame. Headers, body and trailers pass unchanged in both
 * directions except connection-specific fields, Host (it is `:authority`) and
 * X-Forwarded-*, which is what gRPC needs: `te: trailers`, `content-type:
 * application/grpc`, length-prefixed messages in DATA frames, and
 * `grpc-status`/`grpc-message` in the response trailers (or in a
 * trailers-only response, a HEADERS frame with END_STREAM, which stays one).
 *
 * Flow control is end to end: a stream that will not take more pauses the
 * other side's reading, so neither direction buffers more than a window.
 * Body bytes are held until the backend's session is connected, so a connect
 * failure can be retried for any method; a backend's REFUSED_STREAM (RFC 9113
 * §8.7: not processed) counts as a connect failure too. A reset after the
 * response began is passed on as a reset with the backend's error code.
 *
 * The response timeout is an idle timeout on the backend's stream, as on
 * HTTP/1.1 connections: a streaming RPC silent for `timeouts.response` is cut.
 */
export class H2cExchange extends StreamExchange {
  #headers: string[] = [];
  #authority: string | undefined;
  #up: ClientHttp2Stream | undefined;
  /** The backend's session is connected and the stream has its id: body bytes may go. */
  #ready = false;
  #upError: Error | undefined;
  #pendingEnd = false;
  #requestTrailers: OutgoingHttpHeaders | undefined;
  #responseTrailers: string[] | undefined;
  #endedDownstream = false;
  #pausedUpstream = false;
  /** A filter's response body transform (filter/body.ts). */
  #transform: BodyTransformer | undefined;

  /** The request header list (pseudo-headers first, `:authority` at index 5, see `h2cRequestHeaders`). */
  prepare(headers: string[], authority: string | undefined): void {
    this.#headers = headers;
    this.#authority = authority;
  }

  protected connect(): void {
    const backend = this.backend!;
    if (this.#authority === undefined) this.#headers[5] = backend.key;
    const client = h2cClientFor(backend);
    const noBody = this.requestBodyDone && this.heldBody === undefined;
    if (noBody) this.#pendingEnd = false;
    const up = client.request(this.#headers, noBody ? { endStream: true } : { waitForTrailers: true }, this.pool!.config.timeouts);
    this.#up = up;
    this.#ready = false;
    this.#upError = undefined;
    up.on('response', this.#onResponse);
    up.on('headers', this.#onInterim);
    up.on('data', this.#onUpData);
    up.on('trailers', this.#onUpTrailers);
    up.on('end', this.#onUpEnd);
    up.on('drain', this.#onUpDrain);
    up.on('wantTrailers', this.#onWantTrailers);
    up.on('error', this.#onUpError);
    up.on('close', this.#onUpClose);
    up.setTimeout(this.responseTimeoutMs, this.#onUpTimeout);
    if (up.pending) up.once('ready', this.#onReady);
    else this.#onReady();
  }

  /** Detaches from a stream this exchange no longer follows (a failed attempt, or done). */
  #detach(up: ClientHttp2Stream): void {
    up.off('response', this.#onResponse);
    up.off('headers', this.#onInterim);
    up.off('data', this.#onUpData);
    up.off('trailers', this.#onUpTrailers);
    up.off('end', this.#onUpEnd);
    up.off('drain', this.#onUpDrain);
    up.off('wantTrailers', this.#onWantTrailers);
    up.off('ready', this.#onReady);
    up.off('error', this.#onUpError);
    up.off('close', this.#onUpClose);
    up.off('timeout', this.#onUpTimeout);
    up.setTimeout(0);
    up.on('error', ignoreError);
    // A stream left open waits for its trailers; it gets none, so it can close.
    up.on('wantTrailers', sendNoTrailers);
  }

  // ---- request: client → backend ----------------------------------------------------

  readonly #onReady = (): void => {
    this.#ready = true;
    const up = this.#up!;
    const pending = this.heldBody;
    this.heldBody = undefined;
    let flowing = true;
    if (pending !== undefined) {
      this.bodySent = true;
      for (const chunk of pending) flowing = up.write(chunk);
    }
    if (this.#pendingEnd) {
      this.#pendingEnd = false;
      up.end();
    }
    if (flowing) this.resumeClient();
  };

  protected sendBody(chunk: Buffer): boolean {
    const up = this.#up;
    if (up === undefined || !this.#ready) {
      (this.heldBody ??= []).push(chunk);
      return false;
    }
    this.bodySent = true;
    return up.write(chunk);
  }

  protected endBody(): void {
    const up = this.#up;
    if (up === undefined || !this.#ready) this.#pendingEnd = true;
    else up.end();
  }

  protected sendTrailers(raw: readonly string[]): void {
    this.#requestTrailers = trailerObject(raw);
  }

  readonly #onWantTrailers = (): void => {
    this.#up!.sendTrailers(this.#requestTrailers ?? {});
  };

  readonly #onUpDrain = (): void => {
    this.resumeClient();
  };

  // ---- response: backend → client --------------------------------------------------

  readonly #onInterim = (headers: IncomingHttpHeaders, _flags: number, raw: string[]): void => {
    const status = statusOf(headers);
    if (status < 100 || status >= 200 || this.responseStarted) return;
    try {
      this.stream.additionalHeaders(headerObject(passHeaders(raw, [])));
      this.sentInterim = true;
    } catch (error) {
      this.internalError(error);
    }
  };

  readonly #onResponse = (headers: IncomingHttpHeaders, flags: number, raw: string[]): void => {
    const status = statusOf(headers);
    if (status >= 502 && status <= 504 && this.retryStatus(status)) return;
    const filtered = this.filters === undefined ? passHeaders(raw, []) : this.filters.filterFields(status, passHeaders(raw, []));
    if (filtered instanceof UsherError) return this.fail(filtered);
    const endStream = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    if ('replaced' in filtered) return this.replacedBy(filtered.replaced, endStream);
    const list = filtered;
    this.#transform = endStream ? undefined : this.filters?.body?.attach((data) => this.#writeDownstream(data), false, (error) => this.fail(error));
    if (this.setCookie !== undefined) list.push('set-cookie', this.setCookie);
    list.push('x-request-id', this.requestId);
    try {
      this.stream.respond(list, { endStream, waitForTrailers: !endStream, sendDate: false } as ServerStreamResponseOptions);
    } catch (error) {
      this.attemptFailed(new UsherError('USHER_UPSTREAM_BAD_RESPONSE', `backend ${this.backend!.key}: ${(error as Error).message}`));
      return;
    }
    this.responseStarted = true;
    this.#endedDownstream = endStream;
    this.status = this.filters === undefined ? status : Number(list[1]);
    this.upstreamMs = performance.now() - this.upstreamStartedAt;
  };

  readonly #onUpData = (chunk: Buffer): void => {
    if (!this.responseStarted) return;
    if (this.#transform !== undefined) return this.#transform.push(chunk, 0, chunk.length);
    this.#writeDownstream(chunk);
  };

  #writeDownstream(chunk: Buffer): void {
    this.bytesOut += chunk.length;
    if (!this.stream.write(chunk) && !this.#pausedUpstream) {
      // The client reads slower than the backend sends: stop reading (and granting window) upstream.
      this.#pausedUpstream = true;
      this.#up!.pause();
      this.#up!.setTimeout(0);
      this.awaitDrain();
    }
  }

  protected onDownstreamDrain(): void {
    if (!this.#pausedUpstream) return;
    this.#pausedUpstream = false;
    const up = this.#up;
    if (up === undefined) return;
    up.setTimeout(this.responseTimeoutMs);
    up.resume();
  }

  readonly #onUpTrailers = (_headers: IncomingHttpHeaders, _flags: number, raw: string[]): void => {
    this.#responseTrailers = raw;
  };

  readonly #sendResponseTrailers = (): void => {
    const trailers = this.#responseTrailers;
    this.stream.sendTrailers(trailers === undefined ? {} : trailerObject(trailers));
  };

  readonly #onUpEnd = (): void => {
    if (this.finished || !this.responseStarted) return;
    // node:http2 also ends the readable side when the backend resets the stream: that is 'close''s to handle.
    const code = this.#up?.rstCode;
    if (code !== undefined && code !== NGHTTP2_NO_ERROR) return;
    try {
      if (!this.#endedDownstream) {
        this.#endedDownstream = true;
        this.#transform?.end();
        this.stream.once('wantTrailers', this.#sendResponseTrailers);
        this.stream.end();
      }
      this.releaseUpstream(true);
      this.complete();
    } catch (error) {
      this.internalError(error);
    }
  };

  // ---- failures --------------------------------------------------------------------------

  readonly #onUpError = (error: Error): void => {
    this.#upError ??= error;
  };

  readonly #onUpTimeout = (): void => {
    if (this.finished) return;
    this.onUpstreamTimeout('exchange');
  };

  readonly #onUpClose = (): void => {
    const up = this.#up;
    if (up === undefined || this.finished) return;
    const code = up.rstCode ?? NGHTTP2_NO_ERROR;
    // Pass the backend's reason on (gRPC clients tell CANCEL from INTERNAL_ERROR).
    if (this.responseStarted && code !== NGHTTP2_NO_ERROR) resetStream(this.stream, code);
    this.attemptFailed(this.#closeError(code));
  };

  /** Why the backend's stream closed before its response ended. */
  #closeError(code: number): UsherError {
    const key = this.backend!.key;
    if (!this.#ready) {
      // The session never connected: nothing reached the backend.
      // node:http2 cancels pending streams with its own error; the socket's (ECONNREFUSED...) is its cause.
      const cause = (this.#upError?.cause as Error | undefined) ?? this.#upError ?? new Error('connection closed before it was established');
      return connectFailure(cause, key);
    }
    if (code === NGHTTP2_REFUSED_STREAM) return new UsherError('USHER_UPSTREAM_STREAM_REFUSED', `backend ${key}: stream refused (REFUSED_STREAM)`);
    return new UsherError('USHER_UPSTREAM_RESET', `backend ${key}: stream closed (HTTP/2 error code ${code}) before the response completed`, { cause: this.#upError });
  }

  protected releaseUpstream(reusable: boolean): void {
    const up = this.#up;
    if (up === undefined) return;
    this.#up = undefined;
    this.#pausedUpstream = false;
    this.#detach(up);
    // A finished exchange closes by itself; a request still sending is told to stop; anything else is cancelled.
    if (up.closed || (reusable && this.requestBodyDone)) return;
    resetStream(up, NGHTTP2_CANCEL); // never an END_STREAM that makes a cut request body look whole
  }

  protected resetResponse(): void {
    this.#responseTrailers = undefined;
  }
}

function ignoreError(): void {}

function sendNoTrailers(this: ClientHttp2Stream): void {
  this.sendTrailers({});
}
