import type { Socket } from 'node:net';
import { UsherError } from '../errors.ts';
import type { BodyTransformer } from '../filter/body.ts';
import type { LocalAnswer } from '../filter/run.ts';
import type { BodyReader, StreamedBody } from '../filter/streamed-body.ts';
import { STATUS_REASONS } from '../http1/serialize.ts';
import type { HeadLimits, RequestHead, ResponseHead } from '../http1/types.ts';
import type { PoolRuntime } from '../pool/pool-runtime.ts';
import type { Http1Upstream, Http1UpstreamHandler, ResponseBodyMode } from '../upstream/http1.ts';
import { corkUntilTurnEnd } from '../runtime/turn-flush.ts';
import { AttemptLoop } from './attempt-loop.ts';
import type { DownstreamConnection } from './downstream.ts';
import { errorResponse } from './error-response.ts';
import { http1Answer } from './local-answer.ts';
import { downstreamResponseHeaderLines, headerValue } from './headers.ts';
import { requestIdOf } from './request-id.ts';

/** Smallest body part written at once rather than at the end of the turn (see #writeNow). */
const DIRECT_WRITE_BYTES = 16 * 1024;

/** Largest body part sent in one string with the response head (see #writeRange). */
const INLINE_BODY_BYTES = 1024;

/**
 * One request's trip through the proxy, from the parsed request head to the
 * last response byte: pick a backend (or wait in the pool's queue), connect or
 * reuse, send the head, stream the request body up and the response back with
 * backpressure both ways, retry on another backend when that is provably safe,
 * then log.
 *
 * An exchange makes one or more *attempts* ({@link AttemptLoop}, shared with
 * HTTP/2); each attempt has one backend and one upstream connection, and ends
 * (success, failure or no verdict) before the next one starts. Request body bytes that arrive before the upstream
 * connection is up are held (the client is paused meanwhile), so a connect
 * failure can be retried for any method.
 *
 * The backend is spoken to through the connection's {@link Http1Upstream},
 * the same HTTP/1.1 client as HTTP/2 clients' requests use. Bodies pass
 * through as raw bytes, framed as the backend framed them; a chunked response
 * to an HTTP/1.0 client and a body a filter transforms take the payload.
 */
export class Exchange extends AttemptLoop implements Http1UpstreamHandler {
  readonly conn: DownstreamConnection;
  readonly head: RequestHead;
  readonly startedAt: number;
  readonly requestId: string;
  /** Whether the client connection can carry another request after this one. */
  clientKeepAlive: boolean;
  requestBodyDone: boolean;

  #upstream: Http1Upstream | undefined;
  #upstreamHead = '';
  /** HTTP/1.0 clients may omit Host; HTTP/1.1 backends require it, so usher names the backend (nginx does too). */
  #addHost = false;
  /** An interim (1xx) response went to the client: the response has begun. */
  #sentInterim = false;
  /** The response head, held back to leave in one write with a small body (see {@link onResponseData}). */
  #pendingHead = '';
  /** Some body bytes given since the last {@link responseBytesReleased} are still referenced (queued, or held by a transform). */
  #keptRead = false;
  #responseStarted = false;
  /** A filter's response body transform (filter/body.ts), fed with the payload. */
  #transform: BodyTransformer | undefined;
  /** A local answer's body still arriving, while it is being written (respondStreamed). */
  #localBody: BodyReader | undefined;
  /** The client left mid-body and a transform needs the rest: the body is read to its end, written nowhere. */
  #headless = false;
  #finished = false;

  constructor(conn: DownstreamConnection, head: RequestHead, startedAt: number) {
    super();
    this.conn = conn;
    this.head = head;
    this.startedAt = startedAt;
    this.requestId = requestIdOf(head.rawHeaders);
    this.bytesIn = head.headLength;
    this.clientKeepAlive = head.keepAlive;
    this.requestBodyDone = head.framing.kind === 'none';
  }

  get finished(): boolean {
    return this.#finished;
  }

  get method(): string {
    return this.head.method;
  }

  protected get clientIp(): string {
    return this.conn.clientIp;
  }

  protected get target(): string {
    return this.head.target;
  }

  protected get protocol(): string {
    return this.head.minorVersion === 1 ? 'HTTP/1.1' : 'HTTP/1.0';
  }

  protected requestHeader(name: string): string | undefined {
    return headerValue(this.head.rawHeaders, name);
  }

  get responseLimits(): HeadLimits {
    return this.conn.limits;
  }

  protected override get hasRequestBody(): boolean {
    return this.head.framing.kind !== 'none';
  }

  /**
   * Pick phase onwards: `upstreamHead` is the request head for the backend
   * without its final CRLF; body bytes follow through {@link sendRequestBody}.
   */
  start(pool: PoolRuntime, hash: number, stickyToken: string | undefined, upstreamHead: string, addHost: boolean): void {
    this.#upstreamHead = upstreamHead;
    this.#addHost = addHost;
    this.startAttempts(pool, hash, stickyToken);
  }

  protected connect(): void {
    const backend = this.backend!;
    const upstream = backend.connections.acquire(this.replayed, this.upstreamStartedAt).http;
    this.#upstream = upstream;
    const head = this.#addHost ? `${this.#upstreamHead}host: ${backend.key}\r\n\r\n` : `${this.#upstreamHead}\r\n`;
    // The client's body keeps its own framing: the bytes go up as they came.
    upstream.begin(this, head, false, this.responseTimeoutMs);
  }

  /** Request body bytes from the client. Returns false when the caller should pause the client. */
  sendRequestBody(chunk: Buffer): boolean {
    this.bytesIn += chunk.length;
    if (this.#finished) return true; // answered already: discard
    const upstream = this.#upstream;
    if (upstream === undefined) {
      (this.heldBody ??= []).push(chunk);
      return false;
    }
    return upstream.sendBody(chunk);
  }

  onRequestBodyFlowing(): void {
    this.conn.resumeReading();
  }

  /** Answers the client with an error usher decided itself; the exchange ends. */
  fail(error: UsherError): void {
    if (this.#finished) return;
    const socket = this.conn.socket;
    if (this.status === 0 && !socket.destroyed) {
      const substitute = this.answerForUpstreamError(error);
      if (substitute instanceof UsherError) error = substitute;
      else if (substitute !== undefined) {
        this.leaveQueue();
        this.releaseUpstream(false);
        if (!this.requestBodyDone) this.clientKeepAlive = false;
        this.answerLocally(substitute);
        return;
      }
    }
    this.error ??= error;
    this.leaveQueue();
    if (this.status !== 0) {
      // The response already started: nothing truthful can be sent, so cut the connection.
      this.clientKeepAlive = false;
      socket.destroy();
    } else if (!socket.destroyed) {
      // An unread request body would be read as the next request: close after answering.
      if (!this.requestBodyDone) this.clientKeepAlive = false;
      this.status = error.httpStatus;
      corkUntilTurnEnd(socket);
      socket.write(errorResponse(error, this.clientKeepAlive, this.requestId), 'latin1');
    }
    this.releaseUpstream(false);
    this.#finish();
  }

  protected answerLocally(answer: LocalAnswer): void {
    const { head, body, bodyBytes } = http1Answer(answer, this.clientKeepAlive && !this.conn.closing, this.head.minorVersion, this.requestId, this.head.method);
    if (answer.stream !== undefined && this.head.method !== 'HEAD') this.respondStreamed(answer.status, head, answer.stream);
    else this.respond(answer.status, head, body, bodyBytes);
  }

  /**
   * Answers with a body still arriving (a cache fill's, filter/streamed-body.ts):
   * `raw` is the head with its Content-Length; the body follows as it comes,
   * paced by this client's socket alone. The exchange ends with the body, or
   * is cut if the body fails.
   */
  respondStreamed(status: number, raw: string, body: StreamedBody): void {
    if (this.#finished) return;
    this.status = status;
    if (this.conn.socket.destroyed) {
      this.#finish();
      return;
    }
    this.#client().write(raw, 'latin1');
    this.#localBody = body.read({
      write: (chunk) => {
        this.bytesOut += chunk.length;
        if (this.#client().write(chunk)) return true;
        this.conn.awaitDrain(this);
        return false;
      },
      end: () => {
        this.#localBody = undefined;
        this.#finish();
      },
      abort: () => {
        this.#localBody = undefined;
        this.error ??= new UsherError('USHER_UPSTREAM_RESET', 'the cache fill this response was streamed from failed');
        this.clientKeepAlive = false;
        this.conn.socket.destroy();
        this.#finish();
      },
    });
  }

  /** Answers the client with a complete response usher made itself (a redirect); the exchange ends. */
  respond(status: number, raw: string, body?: Buffer, bodyBytes = 0): void {
    if (this.#finished) return;
    this.status = status;
    if (!this.conn.socket.destroyed) {
      const client = this.#client();
      client.write(raw, 'latin1');
      if (body !== undefined) client.write(body);
      this.bytesOut += bodyBytes;
    }
    this.#finish();
  }

  /** The client's socket, corked until the end of this event-loop turn (runtime/turn-flush.ts): writes to it coalesce. */
  #client(): Socket {
    const socket = this.conn.socket;
    corkUntilTurnEnd(socket);
    return socket;
  }

  // ---- the response (Http1UpstreamHandler) ---------------------------------------------

  onInterim(head: ResponseHead): void {
    // 100 Continue and 103 Early Hints reach HTTP/1.1 clients; HTTP/1.0 has no interim responses.
    if (this.head.minorVersion !== 1) return;
    this.#sentInterim = true;
    this.#client().write(
      `HTTP/1.1 ${head.status} ${head.reason || (STATUS_REASONS[head.status] ?? '')}\r\n${downstreamResponseHeaderLines(head.rawHeaders, head.connectionTokens, false)}\r\n`,
      'latin1',
    );
  }

  /**
   * The backend accepted an upgrade (WebSocket): relay its 101, then the two
   * sockets become one byte tunnel. The attempt stays open while the tunnel
   * lives, so least-connections counts it and a drain can close it.
   */
  onSwitchingProtocols(head: ResponseHead, rest: Buffer): boolean {
    if (!this.head.upgrade) return false;
    const backend = this.backend!;
    this.upstreamMs = performance.now() - this.upstreamStartedAt;
    this.status = 101;
    const upgrade = headerValue(head.rawHeaders, 'upgrade') ?? 'websocket';
    const lines = downstreamResponseHeaderLines(head.rawHeaders, head.connectionTokens, true);
    const client = this.conn.socket;
    client.cork();
    client.write(`HTTP/1.1 101 Switching Protocols\r\n${lines}x-request-id: ${this.requestId}\r\nconnection: upgrade\r\nupgrade: ${upgrade}\r\n\r\n`, 'latin1');
    if (rest.length > 0) client.write(rest);
    client.uncork();
    const upstream = this.#upstream!;
    this.#upstream = undefined;
    const tunnel = this.conn.becomeTunnel(upstream.detach(), () => {
      backend.tunnels.delete(tunnel);
      this.bytesIn += tunnel.bytesFromClient;
      this.bytesOut += tunnel.bytesFromUpstream;
      this.endAttempt('success', 101);
      this.#finished = true;
      this.settle();
      this.log();
    });
    backend.tunnels.add(tunnel);
    return true;
  }

  /** Retries a 502-504 when configured, else runs the response filters and prepares the head for the client. */
  onResponseHead(received: ResponseHead): ResponseBodyMode {
    const head = this.finalHead(received);
    if (head === undefined) return 'stop';
    this.upstreamMs = performance.now() - this.upstreamStartedAt;
    this.status = head.status;
    this.#responseStarted = true;
    const framing = head.framing;
    let payload = false;
    // Content-Length of a body not sent stays for HEAD; a 204 or 304 never carries one (RFC 9110 §8.6).
    let lines = downstreamResponseHeaderLines(head.rawHeaders, head.connectionTokens, framing.kind === 'none' && head.status !== 204 && head.status !== 304);
    if (this.setCookie !== undefined) lines += `set-cookie: ${this.setCookie}\r\n`;
    lines += `x-request-id: ${this.requestId}\r\n`;
    // A transformed body has a new length: chunked to HTTP/1.1 clients, close-delimited to HTTP/1.0 ones (filter/body.ts).
    // Transforms that only observe it (a cache filling) leave a length-framed body as it is.
    const body = framing.kind === 'none' ? undefined : this.filters?.body;
    const observed = body !== undefined && framing.kind === 'length' && body.observesOnly;
    this.#transform = body?.attach(this.#writeBody, this.head.minorVersion === 1 && !observed, (error) => this.fail(error));
    if (this.#transform !== undefined && !observed) {
      payload = true;
      if (this.head.minorVersion === 1) lines += 'transfer-encoding: chunked\r\n';
      else this.clientKeepAlive = false;
    } else switch (framing.kind) {
      case 'length':
        lines += `content-length: ${framing.length}\r\n`;
        break;
      case 'chunked':
        if (this.head.minorVersion === 1) lines += 'transfer-encoding: chunked\r\n';
        else {
          payload = true; // HTTP/1.0 has no chunked coding: send the payload and close.
          this.clientKeepAlive = false;
        }
        break;
      case 'until-close':
        this.clientKeepAlive = false;
        break;
      case 'none':
        break;
    }
    if (this.conn.closing) this.clientKeepAlive = false;
    if (!this.clientKeepAlive) lines += 'connection: close\r\n';
    else if (this.head.minorVersion === 0) lines += 'connection: keep-alive\r\n';
    const reason = head.reason || (STATUS_REASONS[head.status] ?? '');
    this.#pendingHead = `HTTP/1.1 ${head.status} ${reason}\r\n${lines}\r\n`;
    return payload ? 'payload' : 'raw';
  }

  onResponseData(buffer: Buffer, start: number, end: number): void {
    const transform = this.#transform;
    if (transform !== undefined) {
      this.#keptRead = true; // a transform may hold on to what it is given
      transform.push(buffer, start, end);
    } else {
      this.#writeRange(buffer, start, end);
    }
  }

  readonly #writeBody = (data: Buffer): void => {
    if (this.#headless) return; // the client left; the body goes on for a transform (onDownstreamClose)
    this.#writeRange(data, 0, data.length);
  };

  /**
   * Body bytes to the client. The first ones go with the held head: when they
   * are at most INLINE_BODY_BYTES (a typical small API or health response),
   * decoded as latin1 (byte for byte) in one string with one write(), measured
   * cheaper than two writes in a corked socket (node's buffered-write list, a
   * writev chunk array and a second copy in C++).
   */
  #writeRange(buffer: Buffer, start: number, end: number): void {
    const length = end - start;
    this.bytesOut += length;
    const socket = this.conn.socket;
    if (length >= DIRECT_WRITE_BYTES && socket.writableLength === 0 && socket.writableCorked === 0) {
      this.#writeNow(socket, start === 0 && end === buffer.length ? buffer : buffer.subarray(start, end));
      return;
    }
    const client = this.#client();
    let flowing: boolean;
    const head = this.#pendingHead;
    if (head !== '' && length <= INLINE_BODY_BYTES) {
      this.#pendingHead = '';
      flowing = client.write(head + buffer.toString('latin1', start, end), 'latin1');
    } else {
      this.#writeHead();
      flowing = client.write(start === 0 && end === buffer.length ? buffer : buffer.subarray(start, end));
      this.#keptRead = true; // queued in the corked socket until the end of the turn
    }
    if (!flowing && this.#upstream?.pauseResponse() === true) {
      // The client reads slower than the backend sends: the backend waits until the client's socket drains.
      this.conn.awaitDrain(this);
    }
  }

  /**
   * A large body part, with the held head if any, written at once instead of
   * at the end of the turn: coalescing gains nothing on a write this size,
   * and a write that completes at once lets the upstream connection read
   * into the same buffer again ({@link responseBytesReleased}). Node's
   * write() answers false for any write above the high-water mark, even one
   * the kernel took whole, so the backend pauses only if bytes stay queued.
   */
  #writeNow(socket: Socket, data: Buffer): void {
    const head = this.#pendingHead;
    if (head !== '') {
      this.#pendingHead = '';
      socket.cork();
      socket.write(head, 'latin1');
      socket.write(data);
      socket.uncork();
    } else {
      socket.write(data);
    }
    const queued = socket.writableLength;
    if (queued > 0) this.#keptRead = true;
    if (queued >= socket.writableHighWaterMark && this.#upstream?.pauseResponse() === true) this.conn.awaitDrain(this);
  }

  responseBytesReleased(): boolean {
    const kept = this.#keptRead;
    this.#keptRead = false;
    return !kept;
  }

  onResponseHeadRead(): void {
    this.#writeHead();
  }

  #writeHead(): void {
    const head = this.#pendingHead;
    if (head === '' || this.#headless) return;
    this.#pendingHead = '';
    this.#client().write(head, 'latin1');
  }

  onResponseEnd(): void {
    this.#writeHead();
    this.#transform?.end();
    this.releaseUpstream(this.requestBodyDone && this.backend!.control.enabled);
    this.endAttempt('success', this.status);
    if (!this.requestBodyDone) this.clientKeepAlive = false; // the rest of the body is still on the wire
    this.#finish();
  }

  /** The client's socket drained: read from the backend again. */
  onDownstreamDrain(): void {
    this.#upstream?.resumeResponse();
    this.#localBody?.resume();
  }

  onUpstreamInternalError(error: unknown): void {
    this.#upstream = undefined;
    this.conn.reportInternalError(error);
    this.fail(new UsherError('USHER_INTERNAL', 'internal error while proxying; see the usher log'));
  }

  // ---- AttemptLoop ---------------------------------------------------------------

  protected responseBegun(): boolean {
    return this.status !== 0 || this.#sentInterim || this.#responseStarted || this.conn.socket.destroyed;
  }

  protected resetResponse(): void {
    this.#pendingHead = '';
  }

  protected releaseUpstream(reusable: boolean): void {
    const upstream = this.#upstream;
    this.#upstream = undefined;
    upstream?.release(reusable);
  }

  // ---- completion --------------------------------------------------------------

  /**
   * The client went away before the exchange finished: cancel the upstream
   * side, unless a transform needs the rest of the body (a cache fill other
   * requests are reading): then the body keeps coming, written nowhere, and
   * the exchange ends (and is logged) with it.
   */
  onDownstreamClose(): void {
    if (this.#finished) return;
    this.leaveQueue();
    this.error ??= new UsherError('USHER_DOWNSTREAM_ABORTED', 'client closed the connection before the response completed');
    this.status = 499;
    this.clientKeepAlive = false;
    this.#localBody?.cancel();
    this.#localBody = undefined;
    if (this.#upstream !== undefined && this.#transform?.outlivesClient() === true) {
      this.#headless = true;
      this.#upstream.resumeResponse(); // it may have been paused for this client's socket
      return;
    }
    this.releaseUpstream(false);
    this.#finish();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.settle();
    // A headless exchange's connection has moved on: the request is logged here.
    if (this.#headless) this.log();
    else this.conn.exchangeDone(this);
  }
}
