import type { Socket } from 'node:net';
import { UsherError } from '../errors.ts';
import type { BodyTransformer } from '../filter/body.ts';
import type { FilterRun } from '../filter/run.ts';
import type { BodyFramer, PayloadSink } from '../http1/body-framer.ts';
import { parseResponseHead } from '../http1/response-head.ts';
import { STATUS_REASONS } from '../http1/serialize.ts';
import type { RequestHead, ResponseHead } from '../http1/types.ts';
import { disabledAccessLog, type AccessLog } from '../observe/access-log.ts';
import type { PoolRuntime } from '../pool/pool-runtime.ts';
import type { UpstreamConnection, UpstreamListener } from '../pool/upstream-connection.ts';
import { corkUntilTurnEnd } from '../runtime/turn-flush.ts';
import { AttemptLoop } from './attempt-loop.ts';
import type { DownstreamConnection } from './downstream.ts';
import { errorResponse } from './error-response.ts';
import { downstreamResponseHeaderLines, headerValue } from './headers.ts';
import type { RouteMetrics } from './metrics.ts';
import { requestIdOf } from './request-id.ts';
import { mayReplayOnFreshConnection } from './retry-policy.ts';
import { connectionLost } from './upstream-errors.ts';

/** Largest body part sent in one string with the response head (see #sendSmallResponse). */
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
 * Bodies pass through as raw bytes; `BodyFramer` only finds where each message
 * ends (strictly, so the backend can never frame it differently). The one
 * exception is a chunked response to an HTTP/1.0 client, which is de-chunked.
 */
export class Exchange extends AttemptLoop implements UpstreamListener {
  readonly conn: DownstreamConnection;
  readonly head: RequestHead;
  readonly startedAt: number;
  /** `x-request-id` (request-id.ts): the client's when valid, else a fresh one. */
  readonly requestId: string;
  listener = '';
  accessLog: AccessLog = disabledAccessLog;
  /** Where the finished request is counted; set by the route phase (undefined: the listener was removed). */
  metrics: RouteMetrics | undefined;
  route: string | undefined;
  /** The route's filters (response phases); undefined on routes without filters. */
  filters: FilterRun | undefined;
  /** Whether the client connection can carry another request after this one. */
  clientKeepAlive: boolean;
  requestBodyDone: boolean;
  error: UsherError | undefined;
  status = 0;
  /** Request head and body bytes read from the client. */
  bytesIn: number;
  bytesOut = 0;

  #upstream: UpstreamConnection | undefined;
  #upstreamHead = '';
  /** HTTP/1.0 clients may omit Host; HTTP/1.1 backends require it, so usher names the backend (nginx does too). */
  #addHost = false;
  /** Body bytes read before the upstream connection was up (bounded: the client is paused). */
  #pendingBody: Buffer[] | undefined;
  /** Whether any request body byte went to a backend: after that a retry could not resend it. */
  protected bodySent = false;
  /** An interim (1xx) response went to the client: the response has begun. */
  #sentInterim = false;
  #responseBuffer: Buffer | undefined;
  #responseHead: ResponseHead | undefined;
  readonly #responseFramer: BodyFramer;
  /** Sink for de-chunked payload (HTTP/1.0 clients only): created when needed, not per request. */
  #writePayload: PayloadSink | undefined;
  #dechunk = false;
  /** A filter's response body transform (filter/body.ts), fed like the de-chunked payload. */
  #transform: BodyTransformer | undefined;
  #responseDone = false;
  #upstreamReusable = false;
  #finished = false;
  #replayed = false;
  #pausedUpstream = false;

  constructor(conn: DownstreamConnection, head: RequestHead, startedAt: number) {
    super();
    this.conn = conn;
    this.head = head;
    this.startedAt = startedAt;
    this.requestId = requestIdOf(head.rawHeaders);
    this.bytesIn = head.headLength;
    this.clientKeepAlive = head.keepAlive;
    this.requestBodyDone = head.framing.kind === 'none';
    this.#responseFramer = conn.responseFramer;
  }

  get finished(): boolean {
    return this.#finished;
  }

  get method(): string {
    return this.head.method;
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
    const upstream = backend.connections.acquire(this.#replayed, this.upstreamStartedAt);
    this.#upstream = upstream;
    upstream.attach(this, this.responseTimeoutMs);
    const head = this.#addHost ? `${this.#upstreamHead}host: ${backend.key}\r\n\r\n` : `${this.#upstreamHead}\r\n`;
    corkUntilTurnEnd(upstream.socket);
    upstream.socket.write(head, 'latin1');
    if (upstream.connected && this.#pendingBody !== undefined) this.#flushPendingBody(upstream);
  }

  /** Request body bytes from the client. Returns false when the caller should pause the client. */
  sendRequestBody(chunk: Buffer): boolean {
    this.bytesIn += chunk.length;
    if (this.#finished) return true; // answered already: discard
    const upstream = this.#upstream;
    if (upstream === undefined || !upstream.connected) {
      (this.#pendingBody ??= []).push(chunk);
      return false;
    }
    if (upstream.closed) return true;
    this.bodySent = true;
    upstream.touch();
    corkUntilTurnEnd(upstream.socket);
    return upstream.socket.write(chunk);
  }

  #flushPendingBody(upstream: UpstreamConnection): void {
    const pending = this.#pendingBody!;
    this.#pendingBody = undefined;
    this.bodySent = true;
    let flowing = true;
    corkUntilTurnEnd(upstream.socket);
    for (const chunk of pending) flowing = upstream.socket.write(chunk);
    if (flowing) this.conn.resumeReading(); // else 'drain' resumes it
  }

  /** Answers the client with an error usher decided itself; the exchange ends. */
  fail(error: UsherError): void {
    if (this.#finished) return;
    this.error ??= error;
    this.leaveQueue();
    const socket = this.conn.socket;
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

  /** Answers the client with a complete response usher made itself (a redirect); the exchange ends. */
  respond(status: number, raw: string): void {
    if (this.#finished) return;
    this.status = status;
    if (!this.conn.socket.destroyed) this.#client().write(raw, 'latin1');
    this.#finish();
  }

  /**
   * The backend accepted an upgrade (WebSocket): relay its 101, then the two
   * sockets become one byte tunnel. The attempt stays open while the tunnel
   * lives, so least-connections counts it and a drain can close it.
   */
  #startTunnel(head: ResponseHead, rest: Buffer): void {
    const backend = this.backend!;
    this.upstreamMs = performance.now() - this.upstreamStartedAt;
    this.status = 101;
    this.#responseHead = head;
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
      backend.metrics.bytesIn += this.bytesIn;
      backend.counters.bytesOut += this.bytesOut;
      this.log();
    });
    backend.tunnels.add(tunnel);
  }

  /** The client's socket, corked until the end of this event-loop turn (runtime/turn-flush.ts): writes to it coalesce. */
  #client(): Socket {
    const socket = this.conn.socket;
    corkUntilTurnEnd(socket);
    return socket;
  }

  // ---- upstream events -------------------------------------------------------

  onUpstreamConnect(): void {
    const upstream = this.#upstream;
    if (upstream !== undefined && this.#pendingBody !== undefined) this.#flushPendingBody(upstream);
  }

  onUpstreamData(chunk: Buffer): void {
    if (this.#responseHead === undefined) {
      this.#onResponseHeadBytes(chunk);
      return;
    }
    this.#forwardResponseBody(chunk, 0);
  }

  #onResponseHeadBytes(chunk: Buffer): void {
    let buffer = this.#responseBuffer === undefined ? chunk : Buffer.concat([this.#responseBuffer, chunk]);
    for (;;) {
      const result = parseResponseHead(buffer, 0, this.conn.limits, this.head.method);
      if (result === undefined) {
        this.#responseBuffer = buffer;
        return;
      }
      if ('error' in result) {
        this.attemptFailed(new UsherError('USHER_UPSTREAM_BAD_RESPONSE', `backend ${this.backend!.key}: ${result.message}`));
        return;
      }
      if (result.status >= 100 && result.status < 200) {
        // Interim responses: 100 Continue and 103 Early Hints reach HTTP/1.1 clients; 101 needs an upgrade usher did not ask for.
        if (result.status === 101) {
          if (this.head.upgrade) this.#startTunnel(result, buffer.subarray(result.headLength));
          else this.attemptFailed(new UsherError('USHER_UPSTREAM_BAD_RESPONSE', `backend ${this.backend!.key}: unexpected 101 Switching Protocols`));
          return;
        }
        if (this.head.minorVersion === 1) {
          this.#sentInterim = true;
          this.#client().write(
            `HTTP/1.1 ${result.status} ${result.reason || (STATUS_REASONS[result.status] ?? '')}\r\n${downstreamResponseHeaderLines(result.rawHeaders, result.connectionTokens, false)}\r\n`,
            'latin1',
          );
        }
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
      const filtered = this.filters === undefined ? result : this.filters.filterHead(result);
      if (filtered instanceof UsherError) return this.fail(filtered);
      const head = this.#startResponse(filtered);
      const start = result.headLength;
      if (!this.#dechunk && buffer.length - start <= INLINE_BODY_BYTES) {
        this.#sendSmallResponse(head, buffer, start);
        return;
      }
      // Head and the first body bytes leave in one writev at the end of the turn.
      this.#client().write(head, 'latin1');
      if (start < buffer.length || this.#responseFramer.done) this.#forwardResponseBody(buffer, start);
      return;
    }
  }

  /** Sets up the response and returns its head for the client (ending in the blank line); the caller writes it. */
  #startResponse(head: ResponseHead): string {
    this.#responseHead = head;
    this.upstreamMs = performance.now() - this.upstreamStartedAt;
    this.status = head.status;
    const framing = head.framing;
    this.#responseFramer.reset(framing);
    this.#upstreamReusable = head.keepAlive;
    // Content-Length of a body not sent stays for HEAD; a 204 or 304 never carries one (RFC 9110 §8.6).
    let lines = downstreamResponseHeaderLines(head.rawHeaders, head.connectionTokens, framing.kind === 'none' && head.status !== 204 && head.status !== 304);
    if (this.setCookie !== undefined) lines += `set-cookie: ${this.setCookie}\r\n`;
    lines += `x-request-id: ${this.requestId}\r\n`;
    // A transformed body has a new length: chunked to HTTP/1.1 clients, close-delimited to HTTP/1.0 ones (filter/body.ts).
    this.#transform = framing.kind === 'none' ? undefined : this.filters?.body?.attach((data) => this.#writeDownstream(data), this.head.minorVersion === 1, (error) => this.fail(error));
    if (this.#transform !== undefined) {
      this.#dechunk = true;
      this.#writePayload = this.#transform.push;
      if (framing.kind === 'until-close') this.#upstreamReusable = false;
      if (this.head.minorVersion === 1) lines += 'transfer-encoding: chunked\r\n';
      else this.clientKeepAlive = false;
    } else switch (framing.kind) {
      case 'length':
        lines += `content-length: ${framing.length}\r\n`;
        break;
      case 'chunked':
        if (this.head.minorVersion === 1) lines += 'transfer-encoding: chunked\r\n';
        else {
          this.#dechunk = true; // HTTP/1.0 has no chunked coding: send the payload and close.
          this.#writePayload = (buffer, start, end) => this.#writeDownstream(buffer.subarray(start, end));
          this.clientKeepAlive = false;
        }
        break;
      case 'until-close':
        this.clientKeepAlive = false;
        this.#upstreamReusable = false;
        break;
      case 'none':
        break;
    }
    if (this.conn.closing) this.clientKeepAlive = false;
    if (!this.clientKeepAlive) lines += 'connection: close\r\n';
    else if (this.head.minorVersion === 0) lines += 'connection: keep-alive\r\n';
    const reason = head.reason || (STATUS_REASONS[head.status] ?? '');
    return `HTTP/1.1 ${head.status} ${reason}\r\n${lines}\r\n`;
  }

  /**
   * The head plus the body bytes read with it, when those are at most
   * INLINE_BODY_BYTES (a typical small API or health response): decoded as
   * latin1 (byte for byte) and sent in one string with one write(). Measured
   * cheaper than cork + two writes + uncork, which goes through node's
   * buffered-write list, a writev chunk array and a second copy in C++.
   */
  #sendSmallResponse(head: string, buffer: Buffer, start: number): void {
    const end = this.#responseFramer.scan(buffer, start);
    if (end === -2) {
      // The head is not sent: the connection is cut at once, as on the corked path (which drops its buffered head).
      this.#badResponseBody();
      return;
    }
    const stop = end < 0 ? buffer.length : end;
    if (stop > start) {
      this.bytesOut += stop - start;
      this.#afterDownstreamWrite(this.#client().write(head + buffer.toString('latin1', start, stop), 'latin1'));
    } else {
      this.#client().write(head, 'latin1');
    }
    if (end >= 0) this.#bodyEnded(buffer, end);
  }

  #forwardResponseBody(buffer: Buffer, start: number): void {
    const framer = this.#responseFramer;
    let end: number;
    if (this.#dechunk) {
      end = framer.scanPayload(buffer, start, this.#writePayload!);
    } else {
      end = framer.scan(buffer, start);
      // On a framing error nothing of this buffer goes out: the client must not see a forged end of body.
      const stop = end === -2 ? start : end < 0 ? buffer.length : end;
      if (stop > start) this.#writeDownstream(start === 0 && stop === buffer.length ? buffer : buffer.subarray(start, stop));
    }
    if (end === -2) {
      this.#badResponseBody();
      return;
    }
    if (end >= 0) this.#bodyEnded(buffer, end);
  }

  #badResponseBody(): void {
    const message = this.#responseFramer.error?.message ?? 'bad body framing';
    this.attemptFailed(new UsherError('USHER_UPSTREAM_BAD_RESPONSE', `backend ${this.backend!.key}: ${message}`));
  }

  /** The response body ended at `buffer[end]`. */
  #bodyEnded(buffer: Buffer, end: number): void {
    // Bytes after the end of the response: the backend is out of step; never reuse it.
    if (end < buffer.length) this.#upstreamReusable = false;
    this.#completeResponse();
  }

  #writeDownstream(data: Buffer): void {
    this.bytesOut += data.length;
    this.#afterDownstreamWrite(this.#client().write(data));
  }

  /** `flowing` is what the client socket's write() returned for body bytes. */
  #afterDownstreamWrite(flowing: boolean): void {
    if (!flowing && !this.#pausedUpstream) {
      // The client reads slower than the backend sends: stop reading upstream until it drains.
      this.#pausedUpstream = true;
      const upstream = this.#upstream!;
      upstream.socket.pause();
      upstream.suspendTimeout();
      this.conn.awaitDrain(this);
    }
  }

  /** The client's socket drained: read from the backend again. */
  onDownstreamDrain(): void {
    if (!this.#pausedUpstream) return;
    this.#pausedUpstream = false;
    const upstream = this.#upstream;
    if (upstream === undefined || upstream.closed) return;
    upstream.resumeTimeout(this.responseTimeoutMs);
    upstream.socket.resume();
  }

  onUpstreamDrain(): void {
    this.conn.resumeReading();
  }

  onUpstreamInternalError(error: unknown): void {
    this.#upstream = undefined;
    this.conn.reportInternalError(error);
    this.fail(new UsherError('USHER_INTERNAL', 'internal error while proxying; see the usher log'));
  }

  onUpstreamEnd(): void {
    const framing = this.#responseHead?.framing;
    if (framing !== undefined && framing.kind === 'until-close' && !this.#responseDone) {
      this.#completeResponse();
      return;
    }
    this.onUpstreamError(undefined, 'exchange');
  }

  onUpstreamError(error: NodeJS.ErrnoException | undefined, phase: 'connect' | 'exchange'): void {
    if (this.#finished || this.#responseDone) return;
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
        hasBody: this.head.framing.kind !== 'none',
        method: this.head.method,
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

  // ---- AttemptLoop ---------------------------------------------------------------

  protected responseBegun(): boolean {
    return this.status !== 0 || this.#sentInterim || this.#responseHead !== undefined || this.conn.socket.destroyed;
  }

  protected resetResponse(): void {
    this.#responseBuffer = undefined;
    this.#responseHead = undefined;
  }

  // ---- completion --------------------------------------------------------------

  #completeResponse(): void {
    this.#transform?.end();
    this.#responseDone = true;
    this.releaseUpstream(this.#upstreamReusable && this.requestBodyDone && this.backend!.control.enabled);
    this.endAttempt('success', this.status);
    if (!this.requestBodyDone) this.clientKeepAlive = false; // the rest of the body is still on the wire
    this.#finish();
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

  /** The client went away before the exchange finished: cancel the upstream side. */
  onDownstreamClose(): void {
    if (this.#finished) return;
    this.leaveQueue();
    this.error ??= new UsherError('USHER_DOWNSTREAM_ABORTED', 'client closed the connection before the response completed');
    this.status = 499;
    this.clientKeepAlive = false;
    this.releaseUpstream(false);
    this.#finish();
  }

  /**
   * Records the finished exchange, once (called by the connection, or by the
   * tunnel's end): the one place its metrics and its access log line are written.
   */
  log(): void {
    const totalMs = performance.now() - this.startedAt;
    this.metrics?.observe(this.backend, this.status, totalMs, this.upstreamMs, this.bytesIn, this.bytesOut);
    const accessLog = this.accessLog;
    if (!accessLog.enabled) return;
    const raw = this.head.rawHeaders;
    accessLog.write({
      client: this.conn.clientIp,
      method: this.head.method,
      path: this.head.target,
      protocol: this.head.minorVersion === 1 ? 'HTTP/1.1' : 'HTTP/1.0',
      status: this.status,
      listener: this.listener,
      route: this.route,
      pool: this.pool?.name,
      backend: this.backend?.key,
      backendName: this.backend?.control.name,
      upstreamMs: round(this.upstreamMs),
      totalMs: round(totalMs),
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      error: this.error?.code,
      requestId: this.requestId,
      referer: accessLog.needsHeaders ? headerValue(raw, 'referer') : undefined,
      userAgent: accessLog.needsHeaders ? headerValue(raw, 'user-agent') : undefined,
    });
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.endAttempt('unknown', this.status);
    const backend = this.backend;
    if (backend !== undefined) {
      backend.metrics.bytesIn += this.bytesIn;
      backend.counters.bytesOut += this.bytesOut;
    }
    this.#pendingBody = undefined;
    this.conn.exchangeDone(this);
  }
}

function round(ms: number): number {
  return ms < 0 ? -1 : Math.round(ms * 1000) / 1000;
}
