import type { ServerStreamResponseOptions } from 'node:http2';
import { UsherError } from '../errors.ts';
import type { BodyTransformer } from '../filter/body.ts';
import type { HeadLimits, ResponseHead } from '../http1/types.ts';
import type { Http1Upstream, Http1UpstreamHandler, ResponseBodyMode } from '../upstream/http1.ts';
import { headerObject, responseHeaders, trailerObject } from './headers.ts';
import { StreamExchange } from './stream-exchange.ts';

/** How the request body goes to the backend: none, as announced by the client's content-length, or chunked. */
export type UpstreamBodyFraming = 'none' | 'length' | 'chunked';

/**
 * An HTTP/2 client's request to an HTTP/1.1 backend, through the same
 * HTTP/1.1 client ({@link Http1Upstream}) and kept-alive connections as
 * HTTP/1.1 clients' requests use.
 *
 * The request goes up as an HTTP/1.1 head (built by the session with
 * `proxy/headers.ts`) and a body framed by Content-Length when the client
 * announced one, else chunked. Body bytes that arrive before the connection is
 * up are held (the client's stream is paused), so a connect failure can be
 * retried for any method. The response head is parsed strictly and sent with
 * `stream.respond()`; its body is de-chunked (HTTP/2 has no chunked coding) and
 * streamed with backpressure both ways: the backend's socket pauses while the
 * client's stream is full, the client's stream pauses while the backend's
 * socket is.
 *
 * Trailers of a chunked response become HTTP/2 trailers, minus fields that may
 * not be trailers (`headers.ts`). Request trailers are dropped: they would
 * have to follow a chunked body, and no HTTP/1.1 backend is known to need them.
 */
export class H2Exchange extends StreamExchange implements Http1UpstreamHandler {
  #upstream: Http1Upstream | undefined;
  #head = '';
  /** No `:authority` nor Host: the backend is named in Host (HTTP/1.1 requires one). */
  #addHost = false;
  #bodyFraming: UpstreamBodyFraming = 'none';
  #declaredLength = 0;
  #bodyBytes = 0;
  /** A filter's response body transform (filter/body.ts): the payload goes through it; the response loses its trailers. */
  #transform: BodyTransformer | undefined;
  /** The client left mid-body and a transform needs the rest: read to the end, written nowhere. */
  #headless = false;
  #trailers: string[] | undefined;
  #endedDownstream = false;

  /** The upstream request head without its final CRLF, and how its body is framed. */
  prepare(head: string, addHost: boolean, framing: UpstreamBodyFraming, length: number): void {
    this.#head = head;
    this.#addHost = addHost;
    this.#bodyFraming = framing;
    this.#declaredLength = length;
  }

  protected override get hasRequestBody(): boolean {
    return this.#bodyFraming !== 'none';
  }

  get responseLimits(): HeadLimits {
    return this.settings.limits;
  }

  protected connect(): void {
    const backend = this.backend!;
    const upstream = backend.connections.acquire(this.replayed, this.upstreamStartedAt).http;
    this.#upstream = upstream;
    const head = this.#addHost ? `${this.#head}host: ${backend.key}\r\n\r\n` : `${this.#head}\r\n`;
    upstream.begin(this, head, this.#bodyFraming === 'chunked', this.responseTimeoutMs);
  }

  // ---- request body -------------------------------------------------------------

  protected sendBody(chunk: Buffer): boolean {
    if (this.#bodyFraming === 'length' && (this.#bodyBytes += chunk.length) > this.#declaredLength) {
      // nghttp2 checks content-length too; this guard keeps a lying client off a kept-alive backend connection.
      this.fail(new UsherError('USHER_DOWNSTREAM_BAD_REQUEST', `request body longer than its content-length ${this.#declaredLength}`));
      return true;
    }
    const upstream = this.#upstream;
    if (upstream === undefined) {
      (this.heldBody ??= []).push(chunk);
      return false;
    }
    return upstream.sendBody(chunk);
  }

  protected endBody(): void {
    if (this.#bodyFraming === 'length' && this.#bodyBytes !== this.#declaredLength) {
      this.fail(new UsherError('USHER_DOWNSTREAM_BAD_REQUEST', `request body of ${this.#bodyBytes} bytes, content-length ${this.#declaredLength}`));
      return;
    }
    this.#upstream?.endBody(); // with no connection yet, the next attempt's begin() sends the last chunk
  }

  protected sendTrailers(): void {
    // Dropped (see the class comment).
  }

  onRequestBodyFlowing(): void {
    this.resumeClient();
  }

  // ---- the response (Http1UpstreamHandler) ------------------------------------------

  onInterim(head: ResponseHead): void {
    // 100 Continue and 103 Early Hints reach the client as interim HEADERS frames.
    this.stream.additionalHeaders(headerObject(responseHeaders(head.status, head.rawHeaders, head.connectionTokens, false)));
    this.sentInterim = true;
  }

  onSwitchingProtocols(): boolean {
    return false; // HTTP/2 has no 101: usher never asks an HTTP/1.1 backend for an upgrade on its behalf
  }

  onResponseHead(received: ResponseHead): ResponseBodyMode {
    const head = this.finalHead(received);
    if (head === undefined) return 'stop';
    const framing = head.framing;
    this.#transform = framing.kind === 'none' ? undefined : this.filters?.body?.attach(this.#writeBody, false, (error) => this.fail(error));
    const lengthKept = this.#transform === undefined || (framing.kind === 'length' && this.#transform.observesOnly);
    const headers = responseHeaders(head.status, head.rawHeaders, head.connectionTokens, lengthKept && (framing.kind === 'length' || framing.kind === 'none'));
    if (this.setCookie !== undefined) headers.push('set-cookie', this.setCookie);
    headers.push('x-request-id', this.requestId);
    const withTrailers = framing.kind === 'chunked' && this.#transform === undefined;
    const options = { endStream: framing.kind === 'none', waitForTrailers: withTrailers, sendDate: false };
    try {
      this.stream.respond(headers, options as ServerStreamResponseOptions);
    } catch (error) {
      // node:http2 refuses some fields an HTTP/1.1 backend may send (e.g. a bad value for a single-value field).
      this.attemptFailed(new UsherError('USHER_UPSTREAM_BAD_RESPONSE', `backend ${this.backend!.key}: ${(error as Error).message}`));
      return 'stop';
    }
    this.responseStarted = true;
    this.upstreamMs = performance.now() - this.upstreamStartedAt;
    this.status = head.status;
    this.#endedDownstream = framing.kind === 'none';
    if (withTrailers) this.stream.once('wantTrailers', this.#sendResponseTrailers);
    return withTrailers ? 'payload-and-trailers' : 'payload';
  }

  onResponseData(buffer: Buffer, start: number, end: number): void {
    const transform = this.#transform;
    if (transform !== undefined) transform.push(buffer, start, end);
    else this.#write(start === 0 && end === buffer.length ? buffer : buffer.subarray(start, end));
  }

  onResponseHeadRead(): void {
    // The head went out with respond().
  }

  responseBytesReleased(): boolean {
    return false; // node's HTTP/2 session queues DATA frames that point into the bytes: never read into them again
  }

  readonly #writeBody = (data: Buffer): void => {
    this.#write(data);
  };

  #write(data: Buffer): void {
    if (this.#headless) return; // the client left; the body goes on for a transform (outliveClient)
    this.bytesOut += data.length;
    if (!this.stream.write(data) && this.#upstream?.pauseResponse() === true) {
      // The client reads slower than the backend sends: the backend waits until its stream drains.
      this.awaitDrain();
    }
  }

  readonly #sendResponseTrailers = (): void => {
    const trailers = this.#trailers;
    this.#trailers = undefined;
    this.stream.sendTrailers(trailers === undefined ? {} : trailerObject(trailers));
  };

  onResponseEnd(trailers: string[] | undefined): void {
    this.#trailers = trailers;
    this.releaseUpstream(this.requestBodyDone && this.backend!.control.enabled);
    this.#transform?.end();
    if (!this.#endedDownstream) {
      this.#endedDownstream = true;
      this.stream.end();
    }
    this.complete();
  }

  protected onDownstreamDrain(): void {
    this.#upstream?.resumeResponse();
  }

  protected override outliveClient(): boolean {
    if (this.#upstream === undefined || this.#transform?.outlivesClient() !== true) return false;
    this.#headless = true;
    this.#endedDownstream = true;
    this.#upstream.resumeResponse(); // it may have been paused for this client's stream
    return true;
  }

  onUpstreamInternalError(error: unknown): void {
    this.#upstream = undefined;
    this.internalError(error);
  }

  // ---- completion --------------------------------------------------------------------

  protected releaseUpstream(reusable: boolean): void {
    const upstream = this.#upstream;
    this.#upstream = undefined;
    upstream?.release(reusable);
  }

  protected resetResponse(): void {}
}
