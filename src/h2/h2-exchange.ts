import type { ServerStreamResponseOptions } from 'node:http2';
import { UsherError } from '../errors.ts';
import { BodyFramer } from '../http1/body-framer.ts';
import type { BodyTransformer } from '../filter/body.ts';
import { parseResponseHead } from '../http1/response-head.ts';
import type { ResponseHead } from '../http1/types.ts';
import type { UpstreamConnection, UpstreamListener } from '../pool/upstream-connection.ts';
import { connectionLost } from '../proxy/upstream-errors.ts';
import { chunkedTrailers, headerObject, responseHeaders, trailerObject } from './headers.ts';
import { mayReplayOnFreshConnection } from '../proxy/retry-policy.ts';
import { StreamExchange } from './stream-exchange.ts';

/** How the request body goes to the backend: none, as announced by the client's content-length, or chunked. */
export type UpstreamBodyFraming = 'none' | 'length' | 'chunked';

const LAST_CHUNK = '0\r\n\r\n';

/**
 * An HTTP/2 client's request to an HTTP/1.1 backend, over the same kept-alive
 * `UpstreamConnection`s as HTTP/1.1 clients use.
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
export class H2Exchange extends StreamExchange implements UpstreamListener {
  #upstream: UpstreamConnection | undefined;
  #head = '';
  /** No `:authority` nor Host: the backend is named in Host (HTTP/1.1 requires one). */
  #addHost = false;
  #bodyFraming: UpstreamBodyFraming = 'none';
  #declaredLength = 0;
  #bodyBytes = 0;
  /** Body bytes read before the upstream connection was up (bounded: the client is paused). */
  #pendingBody: Buffer[] | undefined;
  /** The body ended while held: the last chunk goes with the held bytes. */
  #pendingEnd = false;
  #bodySent = false;
  #responseBuffer: Buffer | undefined;
  #responseHead: ResponseHead | undefined;
  readonly #framer = new BodyFramer({ errorStatus: 502 });
  #chunkedResponse = false;
  /** A filter's response body transform (filter/body.ts): the payload goes through it; the response loses its trailers. */
  #transform: BodyTransformer | undefined;
  /** Bytes after the last payload byte of a chunked response: where its trailers are. */
  #tail: Buffer | undefined;
  #payloadEnd = -1;
  #trailers: string[] | undefined;
  #responseDone = false;
  #endedDownstream = false;
  #upstreamReusable = false;
  #replayed = false;
  #pausedUpstream = false;

  /** The upstream request head without its final CRLF, and how its body is framed. */
  prepare(head: string, addHost: boolean, framing: UpstreamBodyFraming, length: number): void {
    this.#head = head;
    this.#addHost = addHost;
    this.#bodyFraming = framing;
    this.#declaredLength = length;
  }

  protected get bodySent(): boolean {
    return this.#bodySent;
  }

  protected connect(): void {
    const backend = this.backend!;
    const upstream = backend.connections.acquire(this.#replayed, this.upstreamStartedAt);
    this.#upstream = upstream;
    upstream.attach(this, this.responseTimeoutMs);
    upstream.socket.write(this.#addHost ? `${this.#head}host: ${backend.key}\r\n\r\n` : `${this.#head}\r\n`, 'latin1');
    if (upstream.connected) this.#flushPendingBody(upstream);
  }

  // ---- request body -------------------------------------------------------------

  protected sendBody(chunk: Buffer): boolean {
    if (this.#bodyFraming === 'length' && (this.#bodyBytes += chunk.length) > this.#declaredLength) {
      // nghttp2 checks content-length too; this guard keeps a lying client off a kept-alive backend connection.
      this.fail(new UsherError('USHER_DOWNSTREAM_BAD_REQUEST', `request body longer than its content-length ${this.#declaredLength}`));
      return true;
    }
    const upstream = this.#upstream;
    if (upstream === undefined || !upstream.connected) {
      (this.#pendingBody ??= []).push(chunk);
      return false;
    }
    if (upstream.closed) return true;
    this.#bodySent = true;
    return this.#writeBody(upstream, chunk);
  }

  #writeBody(upstream: UpstreamConnection, chunk: Buffer): boolean {
    const socket = upstream.socket;
    upstream.touch(); // body progress restarts the response timeout, as node's socket timeout did on writes
    if (this.#bodyFraming !== 'chunked') return socket.write(chunk);
    // One writev per chunk: size line, data, CRLF.
    socket.cork();
    socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    socket.write(chunk);
    const flowing = socket.write('\r\n', 'latin1');
    socket.uncork();
    return flowing;
  }

  protected endBody(): void {
    if (this.#bodyFraming === 'length' && this.#bodyBytes !== this.#declaredLength) {
      this.fail(new UsherError('USHER_DOWNSTREAM_BAD_REQUEST', `request body of ${this.#bodyBytes} bytes, content-length ${this.#declaredLength}`));
      return;
    }
    if (this.#bodyFraming !== 'chunked') return;
    const upstream = this.#upstream;
    if (upstream === undefined || !upstream.connected || this.#pendingBody !== undefined) this.#pendingEnd = true;
    else if (!upstream.closed) upstream.socket.write(LAST_CHUNK, 'latin1');
  }

  protected sendTrailers(): void {
    // Dropped (see the class comment).
  }

  #flushPendingBody(upstream: UpstreamConnection): void {
    const pending = this.#pendingBody;
    this.#pendingBody = undefined;
    let flowing = true;
    if (pending !== undefined) {
      this.#bodySent = true;
      for (const chunk of pending) flowing = this.#writeBody(upstream, chunk);
    }
    if (this.#pendingEnd) {
      this.#pendingEnd = false;
      flowing = upstream.socket.write(LAST_CHUNK, 'latin1');
    }
    if (flowing) this.resumeClient(); // else the upstream 'drain' resumes it
  }

  // ---- upstream events --------------------------------------------------------------

  onUpstreamConnect(): void {
    const upstream = this.#upstream;
    if (upstream !== undefined) this.#flushPendingBody(upstream);
  }

  onUpstreamData(chunk: Buffer): void {
    if (this.#responseHead === undefined) this.#onResponseHeadBytes(chunk);
    else this.#forwardResponseBody(chunk, 0);
  }

  #onResponseHeadBytes(chunk: Buffer): void {
    let buffer = this.#responseBuffer === undefined ? chunk : Buffer.concat([this.#responseBuffer, chunk]);
    for (;;) {
      const result = parseResponseHead(buffer, 0, this.settings.limits, this.method);
      if (result === undefined) {
        this.#responseBuffer = buffer;
        return;
      }
      if ('error' in result) {
        this.attemptFailed(new UsherError('USHER_UPSTREAM_BAD_RESPONSE', `backend ${this.backend!.key}: ${result.message}`));
        return;
      }
      if (result.status < 200) {
        if (result.status === 101) {
          this.attemptFailed(new UsherError('USHER_UPSTREAM_BAD_RESPONSE', `backend ${this.backend!.key}: unexpected 101 Switching Protocols`));
          return;
        }
        // 100 Continue and 103 Early Hints reach the client as interim HEADERS frames.
        this.stream.additionalHeaders(headerObject(responseHeaders(result.status, result.rawHeaders, result.connectionTokens, false)));
        this.sentInterim = true;
        buffer = buffer.subarray(result.headLength);
        if (buffer.length === 0) {
          this.#responseBuffer = undefined;
          return;
        }
        continue;
      }
      this.#responseBuffer = undefined;
      this.#upstream!.advertisedKeepAlive(result.keepAliveTimeoutSeconds);
      if (result.status >= 502 && result.status <= 504 && this.retryStatus(result.status)) return;
      if (!this.#startResponse(result)) return;
      if (result.headLength < buffer.length || this.#framer.done) this.#forwardResponseBody(buffer, result.headLength);
      return;
    }
  }

  #startResponse(received: ResponseHead): boolean {
    const head = this.filters === undefined ? received : this.filters.filterHead(received);
    if (head instanceof UsherError) {
      this.fail(head);
      return false;
    }
    const framing = head.framing;
    this.#transform = framing.kind === 'none' ? undefined : this.filters?.body?.attach((data) => this.#writePayload(data, 0, data.length), false, (error) => this.fail(error));
    const headers = responseHeaders(head.status, head.rawHeaders, head.connectionTokens, this.#transform === undefined && (framing.kind === 'length' || framing.kind === 'none'));
    if (this.setCookie !== undefined) headers.push('set-cookie', this.setCookie);
    headers.push('x-request-id', this.requestId);
    const options = { endStream: framing.kind === 'none', waitForTrailers: framing.kind === 'chunked' && this.#transform === undefined, sendDate: false };
    try {
      this.stream.respond(headers, options as ServerStreamResponseOptions);
    } catch (error) {
      // node:http2 refuses some fields an HTTP/1.1 backend may send (e.g. a bad value for a single-value field).
      this.attemptFailed(new UsherError('USHER_UPSTREAM_BAD_RESPONSE', `backend ${this.backend!.key}: ${(error as Error).message}`));
      return false;
    }
    this.responseStarted = true;
    this.#responseHead = head;
    this.upstreamMs = performance.now() - this.upstreamStartedAt;
    this.status = head.status;
    this.#framer.reset(framing);
    this.#upstreamReusable = head.keepAlive && framing.kind !== 'until-close';
    this.#endedDownstream = framing.kind === 'none';
    this.#chunkedResponse = framing.kind === 'chunked' && this.#transform === undefined;
    if (this.#chunkedResponse) this.stream.once('wantTrailers', this.#sendResponseTrailers);
    return true;
  }

  #forwardResponseBody(buffer: Buffer, start: number): void {
    this.#payloadEnd = -1;
    const end = this.#framer.scanPayload(buffer, start, this.#transform?.push ?? this.#writePayload);
    if (end === -2) {
      this.attemptFailed(new UsherError('USHER_UPSTREAM_BAD_RESPONSE', `backend ${this.backend!.key}: ${this.#framer.error?.message ?? 'bad body framing'}`));
      return;
    }
    if (this.#chunkedResponse) this.#keepTail(buffer, start, end < 0 ? buffer.length : end);
    if (end >= 0) {
      // Bytes after the end of the response: the backend is out of step; never reuse it.
      if (end < buffer.length) this.#upstreamReusable = false;
      this.#completeResponse();
    }
  }

  /** Keeps the bytes after the last payload byte; the framer bounds them (chunk line and trailer limits). */
  #keepTail(buffer: Buffer, start: number, stop: number): void {
    let from = start;
    if (this.#payloadEnd >= 0) {
      from = this.#payloadEnd;
      this.#tail = undefined;
    }
    if (from >= stop) return;
    const piece = buffer.subarray(from, stop);
    this.#tail = this.#tail === undefined ? piece : Buffer.concat([this.#tail, piece]);
  }

  readonly #writePayload = (buffer: Buffer, start: number, end: number): void => {
    this.#payloadEnd = end;
    const data = start === 0 && end === buffer.length ? buffer : buffer.subarray(start, end);
    this.bytesOut += data.length;
    if (!this.stream.write(data) && !this.#pausedUpstream) {
      // The client reads slower than the backend sends: stop reading upstream until its stream drains.
      this.#pausedUpstream = true;
      const upstream = this.#upstream!;
      upstream.socket.pause();
      upstream.suspendTimeout();
      this.awaitDrain();
    }
  };

  readonly #sendResponseTrailers = (): void => {
    const trailers = this.#trailers;
    this.#trailers = undefined;
    this.stream.sendTrailers(trailers === undefined ? {} : trailerObject(trailers));
  };

  protected onDownstreamDrain(): void {
    if (!this.#pausedUpstream) return;
    this.#pausedUpstream = false;
    const upstream = this.#upstream;
    if (upstream === undefined || upstream.closed) return;
    upstream.resumeTimeout(this.responseTimeoutMs);
    upstream.socket.resume();
  }

  onUpstreamDrain(): void {
    this.resumeClient();
  }

  onUpstreamInternalError(error: unknown): void {
    this.#upstream = undefined;
    this.internalError(error);
  }

  onUpstreamEnd(): void {
    if (this.#responseHead?.framing.kind === 'until-close' && !this.#responseDone) {
      this.#completeResponse();
      return;
    }
    this.onUpstreamError(undefined, 'exchange');
  }

  onUpstreamError(error: NodeJS.ErrnoException | undefined, phase: 'connect' | 'exchange'): void {
    if (this.finished || this.#responseDone) return;
    const upstream = this.#upstream;
    this.#upstream = undefined;
    upstream?.destroy();
    if (
      phase === 'exchange' &&
      upstream !== undefined &&
      mayReplayOnFreshConnection({
        uses: upstream.uses,
        answered: this.#responseHead !== undefined || this.#responseBuffer !== undefined,
        replayed: this.#replayed,
        hasBody: this.#bodyFraming !== 'none',
        method: this.method,
      })
    ) {
      this.#replayed = true;
      this.connect();
      return;
    }
    this.attemptFailed(connectionLost(error, phase, this.backend!.key));
  }

  onUpstreamTimeout(phase: 'connect' | 'exchange'): void {
    this.attemptTimedOut(phase);
  }


  // ---- completion --------------------------------------------------------------------

  #completeResponse(): void {
    this.#responseDone = true;
    if (this.#chunkedResponse && this.#tail !== undefined) this.#trailers = chunkedTrailers(this.#tail);
    this.#tail = undefined;
    this.releaseUpstream(this.#upstreamReusable && this.requestBodyDone && this.backend!.control.enabled);
    this.#transform?.end();
    if (!this.#endedDownstream) {
      this.#endedDownstream = true;
      this.stream.end();
    }
    this.complete();
  }

  protected releaseUpstream(reusable: boolean): void {
    const upstream = this.#upstream;
    if (upstream === undefined) return;
    this.#upstream = undefined;
    if (this.#pausedUpstream) {
      this.#pausedUpstream = false;
      reusable = false;
    }
    upstream.release(reusable);
  }

  protected resetResponse(): void {
    this.#responseBuffer = undefined;
    this.#responseHead = undefined;
  }
}
