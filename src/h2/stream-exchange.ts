import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { UsherError } from '../errors.ts';
import type { PoolRuntime } from '../pool/pool-runtime.ts';
import { AttemptLoop } from '../proxy/attempt-loop.ts';
import type { LocalAnswer } from '../filter/run.ts';
import type { BodyReader, StreamedBody } from '../filter/streamed-body.ts';
import type { DownstreamSettings } from '../proxy/plan.ts';
import { resetStream, respondError } from './respond.ts';

/** The HTTP/2 connection a stream belongs to, as its exchange sees it. */
export interface StreamOwner {
  readonly clientIp: string;
  /** Scheme the client used to reach usher: `https` on TLS, else the listener's. */
  readonly proto: string;
  /** A handler threw: logs it (the stream is answered 500 or reset). */
  reportInternalError(error: unknown): void;
  /** The exchange is over (answered, failed or abandoned by the client); called once. */
  streamDone(exchange: StreamExchange): void;
}

/**
 * One HTTP/2 request stream's trip through the proxy, independent of how the
 * backend is spoken to: pick a backend (or wait in the pool's queue), run
 * attempts, retry on another backend when it is provably safe, answer errors,
 * watch the client's stream (reset, timeouts, flow control) and log.
 *
 * Picking, queueing, attempts and retries are {@link AttemptLoop}'s, the same
 * loop as the HTTP/1.1 exchange's, so a pool behaves the same whichever
 * protocol its clients speak. Subclasses speak to the backend:
 * {@link H2Exchange} over HTTP/1.1, {@link H2cExchange} over cleartext HTTP/2.
 */
export abstract class StreamExchange extends AttemptLoop {
  readonly stream: ServerHttp2Stream;
  readonly owner: StreamOwner;
  readonly method: string;
  /** `:path` as received (logged); the backend gets the route's rewrite of it. */
  readonly path: string;
  readonly startedAt: number;
  readonly settings: DownstreamSettings;
  readonly requestId: string;
  /** The request's headers, kept only when the access log shows some of them. */
  requestHeaders: IncomingHttpHeaders | undefined;
  /** The client has sent its whole request (END_STREAM seen). */
  requestBodyDone: boolean;

  /** Response headers went to the client: from here a failure can only reset the stream. */
  protected responseStarted = false;
  /** An interim (1xx) response went to the client: the response has begun. */
  protected sentInterim = false;
  #finished = false;
  #awaitingDrain = false;
  #clientPaused = false;
  /** A local answer's body still arriving, while it is being written. */
  #localBody: BodyReader | undefined;

  constructor(
    stream: ServerHttp2Stream,
    owner: StreamOwner,
    method: string,
    path: string,
    settings: DownstreamSettings,
    endStream: boolean,
    requestId: string,
  ) {
    super();
    this.stream = stream;
    this.owner = owner;
    this.method = method;
    this.path = path;
    this.settings = settings;
    this.requestId = requestId;
    this.startedAt = performance.now();
    this.requestBodyDone = endStream;
    stream.on('close', this.#onClose);
    stream.on('error', ignoreError);
    stream.on('timeout', this.#onTimeout);
    stream.on('drain', this.#onDrain);
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Pick phase onwards, after the route phase chose `pool`. */
  start(pool: PoolRuntime, hash: number, stickyToken: string | undefined): void {
    if (!this.requestBodyDone) {
      this.stream.on('data', this.#onData);
      this.stream.on('end', this.#onEnd);
      this.stream.on('trailers', this.#onTrailers);
      this.stream.setTimeout(this.settings.bodyIdleTimeoutMs);
    }
    this.startAttempts(pool, hash, stickyToken);
  }

  // ---- what a subclass does with the backend (and AttemptLoop's abstract members) ----
  /** Request body bytes for the backend; false asks for the client to be paused. */
  protected abstract sendBody(chunk: Buffer): boolean;
  /** The client finished its request body. */
  protected abstract endBody(): void;
  /** Request trailers from the client (raw list). */
  protected abstract sendTrailers(raw: readonly string[]): void;
  /** The client's stream drained after `awaitDrain`: read from the backend again. */
  protected abstract onDownstreamDrain(): void;
  /** The client left mid-body: whether the exchange goes on without it (a subclass whose transform needs the rest of the body), writing nothing more. */
  protected outliveClient(): boolean {
    return false;
  }

  protected responseBegun(): boolean {
    return this.responseStarted || this.sentInterim || this.stream.destroyed;
  }

  // ---- the client's stream ------------------------------------------------------------

  /** Stops reading the client's body (the backend is not taking more). */
  protected pauseClient(): void {
    if (this.#clientPaused) return;
    this.#clientPaused = true;
    this.stream.pause();
    // The wait is not the client's fault, so its body timer stops.
    if (!this.#awaitingDrain) this.stream.setTimeout(0);
  }

  /** Reads the client's body again. */
  protected resumeClient(): void {
    if (!this.#clientPaused || this.stream.destroyed) return;
    this.#clientPaused = false;
    if (!this.requestBodyDone && !this.#awaitingDrain) this.stream.setTimeout(this.settings.bodyIdleTimeoutMs);
    this.stream.resume();
  }

  /** The client reads slower than the backend sends: its stream gets `sendTimeoutMs` to drain. */
  protected awaitDrain(): void {
    this.#awaitingDrain = true;
    this.stream.setTimeout(this.settings.sendTimeoutMs);
  }

  #onDrain = (): void => {
    this.#localBody?.resume();
    if (!this.#awaitingDrain) return;
    this.#awaitingDrain = false;
    this.stream.setTimeout(this.requestBodyDone || this.#clientPaused ? 0 : this.settings.bodyIdleTimeoutMs);
    try {
      this.onDownstreamDrain();
    } catch (error) {
      this.internalError(error);
    }
  };

  #onData = (chunk: Buffer): void => {
    this.bytesIn += chunk.length;
    if (this.#finished || chunk.length === 0) return;
    const maxBody = this.settings.maxBodyBytes;
    if (maxBody > 0 && this.bytesIn > maxBody) {
      this.fail(new UsherError('USHER_DOWNSTREAM_BODY_TOO_LARGE', `request body exceeds maxBodyBytes ${maxBody}`));
      return;
    }
    try {
      if (!this.sendBody(chunk)) this.pauseClient();
    } catch (error) {
      this.internalError(error);
    }
  };

  #onTrailers = (_headers: unknown, _flags: number, raw: string[]): void => {
    if (this.#finished) return;
    try {
      this.sendTrailers(raw);
    } catch (error) {
      this.internalError(error);
    }
  };

  #onEnd = (): void => {
    this.requestBodyDone = true;
    if (!this.#awaitingDrain) this.stream.setTimeout(0);
    if (this.#finished) return;
    try {
      this.endBody();
    } catch (error) {
      this.internalError(error);
    }
  };

  #onTimeout = (): void => {
    if (this.#finished) return;
    if (this.#awaitingDrain) {
      // The client stopped reading its response: cut the stream, as HTTP/1.1 cuts the connection.
      resetStream(this.stream, constants.NGHTTP2_CANCEL);
      return;
    }
    if (!this.requestBodyDone && !this.#clientPaused) {
      this.fail(new UsherError('USHER_DOWNSTREAM_BODY_TIMEOUT', `no request body bytes for ${this.settings.bodyIdleTimeoutMs} ms`));
    }
  };

  /** The client reset the stream, or the connection went away, before the exchange finished. */
  #onClose = (): void => {
    if (this.#finished) return;
    this.leaveQueue();
    this.error ??= new UsherError('USHER_DOWNSTREAM_ABORTED', 'client reset the stream before the response completed');
    this.status = 499;
    this.#localBody?.cancel();
    this.#localBody = undefined;
    // A transform needs the rest of the body (a cache fill others read): it keeps coming, written nowhere.
    if (this.outliveClient()) return;
    try {
      this.releaseUpstream(false);
    } finally {
      this.#finish();
    }
  };

  /** A handler threw (a bug): log it and answer 500, or reset a begun response; never reach the process. */
  protected internalError(error: unknown): void {
    this.owner.reportInternalError(error);
    this.fail(new UsherError('USHER_INTERNAL', 'internal error while proxying; see the usher log'));
  }

  // ---- completion -------------------------------------------------------------------------

  /** Answers the client with an error usher decided itself (or resets a begun response); the exchange ends. */
  fail(error: UsherError): void {
    if (this.#finished) return;
    const stream = this.stream;
    if (!this.responseStarted && !stream.destroyed) {
      const substitute = this.answerForUpstreamError(error);
      if (substitute instanceof UsherError) error = substitute;
      else if (substitute !== undefined) {
        this.leaveQueue();
        try {
          this.releaseUpstream(false);
        } finally {
          this.answerLocally(substitute);
        }
        return;
      }
    }
    this.error ??= error;
    this.leaveQueue();
    if (this.responseStarted) {
      // Nothing truthful can follow a begun response: RST_STREAM tells the client it is incomplete.
      resetStream(stream, constants.NGHTTP2_INTERNAL_ERROR);
    } else if (respondError(stream, error.httpStatus, error.reason, this.method, this.requestId)) {
      this.status = error.httpStatus;
      this.#stopUnreadBody();
    }
    try {
      this.releaseUpstream(false);
    } finally {
      this.#finish();
    }
  }

  protected answerLocally(answer: LocalAnswer): void {
    this.answer(answer.status, answer.headers, answer.body, answer.stream);
  }

  /**
   * Answers without a backend (a redirect, a filter's response): `headers`
   * (`[name, value, ...]`, no framing fields) and `body`, with the content-length
   * and `x-request-id` the HTTP/1.1 twin (`proxy/local-answer.ts`) writes.
   */
  answer(status: number, headers: readonly string[], body: Buffer, streamed?: StreamedBody): void {
    if (this.#finished) return;
    if (!this.stream.destroyed && !this.stream.closed) {
      const list = [':status', String(status)];
      for (let i = 0; i < headers.length; i += 2) list.push(headers[i]!.toLowerCase(), headers[i + 1]!);
      if (status !== 204 && status !== 304) list.push('content-length', String(streamed?.length ?? body.length));
      list.push('x-request-id', this.requestId);
      const endStream = (streamed === undefined ? body.length === 0 : streamed.length === 0) || this.method === 'HEAD';
      this.stream.respond(list, { endStream });
      this.status = status;
      if (!endStream && streamed !== undefined) {
        this.#stream(streamed);
        return;
      }
      if (!endStream) this.stream.end(body);
      this.#stopUnreadBody();
    }
    this.#finish();
  }

  /** The body of a local answer as it arrives (a cache fill's, filter/streamed-body.ts), paced by this stream's flow control alone. */
  #stream(body: StreamedBody): void {
    const stream = this.stream;
    this.#localBody = body.read({
      write: (chunk) => {
        this.bytesOut += chunk.length;
        if (stream.write(chunk)) return true;
        this.awaitDrain();
        return false;
      },
      end: () => {
        this.#localBody = undefined;
        stream.end();
        this.#stopUnreadBody();
        this.#finish();
      },
      abort: () => {
        this.#localBody = undefined;
        this.error ??= new UsherError('USHER_UPSTREAM_RESET', 'the cache fill this response was streamed from failed');
        resetStream(stream, constants.NGHTTP2_INTERNAL_ERROR);
        this.#finish();
      },
    });
  }

  /** The response went out completely; the subclass has released its upstream side. */
  protected complete(): void {
    this.endAttempt('success', this.status);
    this.#stopUnreadBody();
    this.#finish();
  }

  /**
   * The rest of an unread request body has nowhere to go: RST_STREAM(NO_ERROR)
   * after the response asks the client to stop sending (RFC 9113 §8.1);
   * node:http2 sends it only once the response's DATA has been written.
   */
  #stopUnreadBody(): void {
    if (!this.requestBodyDone && !this.stream.destroyed) this.stream.close(constants.NGHTTP2_NO_ERROR);
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.settle();
    this.owner.streamDone(this);
  }

  protected get clientIp(): string {
    return this.owner.clientIp;
  }

  protected get target(): string {
    return this.path;
  }

  protected get protocol(): string {
    return 'HTTP/2.0';
  }

  protected requestHeader(name: string): string | undefined {
    const value = this.requestHeaders?.[name];
    return typeof value === 'string' ? value : undefined;
  }
}

/** Stream errors (a reset, a write after the client left) are followed by 'close', which does the bookkeeping. */
function ignoreError(): void {}
