import { UsherError } from '../errors.ts';
import { BodyFramer } from '../http1/body-framer.ts';
import { parseResponseHead } from '../http1/response-head.ts';
import { STATUS_REASONS } from '../http1/serialize.ts';
import type { RequestHead, ResponseHead } from '../http1/types.ts';
import { disabledAccessLog, type AccessLog } from '../observe/access-log.ts';
import type { Backend } from '../pool/backend.ts';
import type { Pool } from '../pool/pool.ts';
import type { UpstreamConnection, UpstreamListener } from '../pool/upstream-connection.ts';
import type { DownstreamConnection } from './downstream.ts';
import { errorResponse } from './error-response.ts';
import { downstreamResponseHeaderLines } from './headers.ts';
import { upstreamError } from './upstream-errors.ts';

/** Methods whose request may be sent twice without changing the outcome (RFC 9110 §9.2.2). */
const idempotent: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/**
 * One request's trip through the proxy, from the parsed request head to the
 * last response byte: connect or reuse, send the head, stream the request body
 * up and the response back with backpressure both ways, then log.
 *
 * Bodies pass through as raw bytes; `BodyFramer` only finds where each message
 * ends (strictly, so the backend can never frame it differently). The one
 * exception is a chunked response to an HTTP/1.0 client, which is de-chunked.
 */
export class Exchange implements UpstreamListener {
  readonly conn: DownstreamConnection;
  readonly head: RequestHead;
  readonly startedAt: number;
  listener = '';
  accessLog: AccessLog = disabledAccessLog;
  route: string | undefined;
  pool: Pool | undefined;
  backend: Backend | undefined;
  setCookie: string | undefined;
  /** Whether the client connection can carry another request after this one. */
  clientKeepAlive: boolean;
  requestBodyDone: boolean;
  error: UsherError | undefined;
  status = 0;
  /** Request head and body bytes read from the client. */
  bytesIn: number;
  bytesOut = 0;
  upstreamMs = -1;

  #upstream: UpstreamConnection | undefined;
  #upstreamHead = '';
  #upstreamStartedAt = 0;
  #responseTimeoutMs = 0;
  #responseBuffer: Buffer | undefined;
  #responseHead: ResponseHead | undefined;
  readonly #responseFramer = new BodyFramer();
  #dechunk = false;
  #responseDone = false;
  #upstreamReusable = false;
  #finished = false;
  #retried = false;
  #pausedUpstream = false;

  constructor(conn: DownstreamConnection, head: RequestHead, startedAt: number) {
    this.conn = conn;
    this.head = head;
    this.startedAt = startedAt;
    this.bytesIn = head.headLength;
    this.clientKeepAlive = head.keepAlive;
    this.requestBodyDone = head.framing.kind === 'none';
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Sends the request head to `backend`; body bytes follow through {@link sendRequestBody}. */
  forward(pool: Pool, backend: Backend, upstreamHead: string): void {
    this.pool = pool;
    this.backend = backend;
    this.#upstreamHead = upstreamHead;
    this.#responseTimeoutMs = pool.config.timeouts.responseMs;
    backend.inFlight++;
    backend.counters.requests++;
    this.#upstreamStartedAt = performance.now();
    this.#connect();
  }

  #connect(): void {
    const upstream = this.backend!.connections.acquire();
    this.#upstream = upstream;
    upstream.attach(this, this.#responseTimeoutMs);
    upstream.socket.write(this.#upstreamHead, 'latin1');
  }

  /** Request body bytes from the client. Returns false when the upstream is full (the caller pauses the client). */
  sendRequestBody(chunk: Buffer): boolean {
    const upstream = this.#upstream;
    this.bytesIn += chunk.length;
    if (upstream === undefined || upstream.closed) return true; // answered or failed already: discard
    return upstream.socket.write(chunk);
  }

  /** Answers the client with an error usher decided itself; the exchange ends. */
  fail(error: UsherError): void {
    if (this.#finished) return;
    this.error ??= error;
    const socket = this.conn.socket;
    if (this.status !== 0) {
      // The response already started: nothing truthful can be sent, so cut the connection.
      this.clientKeepAlive = false;
      socket.destroy();
    } else if (!socket.destroyed) {
      // An unread request body would be read as the next request: close after answering.
      if (!this.requestBodyDone) this.clientKeepAlive = false;
      this.status = error.httpStatus;
      socket.write(errorResponse(error, this.clientKeepAlive), 'latin1');
    }
    this.#releaseUpstream(false);
    this.#finish();
  }

  // ---- upstream events -------------------------------------------------------

  onUpstreamConnect(): void {}

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
        this.fail(new UsherError('USHER_UPSTREAM_BAD_RESPONSE', `backend ${this.backend!.key}: ${result.message}`));
        return;
      }
      if (result.status >= 100 && result.status < 200) {
        // Interim responses: 100 Continue and 103 Early Hints reach HTTP/1.1 clients; 101 needs an upgrade usher did not ask for.
        if (result.status === 101) {
          this.fail(new UsherError('USHER_UPSTREAM_BAD_RESPONSE', `backend ${this.backend!.key}: unexpected 101 Switching Protocols`));
          return;
        }
        if (this.head.minorVersion === 1) {
          this.conn.socket.write(
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
      // Head and the first body bytes leave in one writev: one syscall per small response instead of two.
      const socket = this.conn.socket;
      socket.cork();
      this.#startResponse(result);
      if (!this.#finished && (result.headLength < buffer.length || this.#responseFramer.done)) {
        this.#forwardResponseBody(buffer, result.headLength);
      }
      socket.uncork();
      return;
    }
  }

  #startResponse(head: ResponseHead): void {
    this.#responseHead = head;
    this.upstreamMs = performance.now() - this.#upstreamStartedAt;
    this.status = head.status;
    const framing = head.framing;
    this.#responseFramer.reset(framing);
    this.#upstreamReusable = head.keepAlive;
    let lines = downstreamResponseHeaderLines(head.rawHeaders, head.connectionTokens, framing.kind === 'none');
    if (this.setCookie !== undefined) lines += `set-cookie: ${this.setCookie}\r\n`;
    switch (framing.kind) {
      case 'length':
        lines += `content-length: ${framing.length}\r\n`;
        break;
      case 'chunked':
        if (this.head.minorVersion === 1) lines += 'transfer-encoding: chunked\r\n';
        else {
          this.#dechunk = true; // HTTP/1.0 has no chunked coding: send the payload and close.
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
    this.conn.socket.write(`HTTP/1.1 ${head.status} ${reason}\r\n${lines}\r\n`, 'latin1');
  }

  #forwardResponseBody(buffer: Buffer, start: number): void {
    const framer = this.#responseFramer;
    let end: number;
    if (this.#dechunk) {
      end = framer.scanPayload(buffer, start, this.#writePayload);
    } else {
      end = framer.scan(buffer, start);
      const stop = end < 0 ? buffer.length : end;
      if (stop > start) this.#writeDownstream(start === 0 && stop === buffer.length ? buffer : buffer.subarray(start, stop));
    }
    if (end === -2) {
      this.fail(new UsherError('USHER_UPSTREAM_BAD_RESPONSE', `backend ${this.backend!.key}: ${framer.error?.message ?? 'bad body framing'}`));
      return;
    }
    if (end >= 0) {
      // Bytes after the end of the response: the backend is out of step; never reuse it.
      if (end < buffer.length) this.#upstreamReusable = false;
      this.#completeResponse();
    }
  }

  readonly #writePayload = (buffer: Buffer, start: number, end: number): void => {
    this.#writeDownstream(buffer.subarray(start, end));
  };

  #writeDownstream(data: Buffer): void {
    this.bytesOut += data.length;
    if (!this.conn.socket.write(data) && !this.#pausedUpstream) {
      // The client reads slower than the backend sends: stop reading upstream until it drains.
      this.#pausedUpstream = true;
      const upstream = this.#upstream!;
      upstream.socket.pause();
      upstream.socket.setTimeout(0);
      this.conn.awaitDrain(this);
    }
  }

  /** The client's socket drained: read from the backend again. */
  onDownstreamDrain(): void {
    if (!this.#pausedUpstream) return;
    this.#pausedUpstream = false;
    const upstream = this.#upstream;
    if (upstream === undefined || upstream.closed) return;
    upstream.socket.setTimeout(this.#responseTimeoutMs);
    upstream.socket.resume();
  }

  onUpstreamDrain(): void {
    this.conn.resumeReading();
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
    // A kept-alive connection the backend closed just as we reused it: the request never
    // reached the application, so a replay on a fresh connection is safe for requests without a body.
    if (
      phase === 'exchange' &&
      upstream !== undefined &&
      upstream.uses > 1 &&
      this.#responseHead === undefined &&
      this.#responseBuffer === undefined &&
      !this.#retried &&
      this.head.framing.kind === 'none' &&
      idempotent.has(this.head.method)
    ) {
      this.#retried = true;
      this.#connect();
      return;
    }
    const cause = error ?? Object.assign(new Error('backend closed the connection'), { code: 'UND_ERR_SOCKET' });
    this.#countFailure(this.#toError(cause, phase));
  }

  onUpstreamTimeout(phase: 'connect' | 'exchange'): void {
    if (this.#finished) return;
    const code = phase === 'connect' ? 'USHER_UPSTREAM_CONNECT_TIMEOUT' : 'USHER_UPSTREAM_RESPONSE_TIMEOUT';
    const after = phase === 'connect' ? this.pool!.config.timeouts.connectMs : this.#responseTimeoutMs;
    this.#countFailure(new UsherError(code, `backend ${this.backend!.key}: no ${phase === 'connect' ? 'connection' : 'response'} within ${after} ms`));
  }

  #toError(cause: NodeJS.ErrnoException, phase: 'connect' | 'exchange'): UsherError {
    const error = upstreamError(cause, this.backend!.key);
    // A connect-phase failure with an unmapped code is still a connect failure (safe to retry).
    if (phase === 'connect' && error.code === 'USHER_UPSTREAM_RESET') {
      return new UsherError('USHER_UPSTREAM_CONNECT_FAILED', error.message, { cause });
    }
    return error;
  }

  #countFailure(error: UsherError): void {
    this.backend!.counters.failures++;
    this.fail(error);
  }

  // ---- completion --------------------------------------------------------------

  #completeResponse(): void {
    this.#responseDone = true;
    this.#releaseUpstream(this.#upstreamReusable && this.requestBodyDone);
    if (!this.requestBodyDone) this.clientKeepAlive = false; // the rest of the body is still on the wire
    this.#finish();
  }

  #releaseUpstream(reusable: boolean): void {
    const upstream = this.#upstream;
    if (upstream === undefined) return;
    this.#upstream = undefined;
    if (this.#pausedUpstream) {
      this.#pausedUpstream = false;
      reusable = false;
    }
    if (reusable) upstream.socket.setTimeout(0);
    upstream.release(reusable);
  }

  /** The client went away before the exchange finished: cancel the upstream side. */
  onDownstreamClose(): void {
    if (this.#finished) return;
    this.error ??= new UsherError('USHER_DOWNSTREAM_ABORTED', 'client closed the connection before the response completed');
    this.status = 499;
    this.clientKeepAlive = false;
    this.#releaseUpstream(false);
    this.#finish();
  }

  /** Writes the access log line (called once, by the connection, when the exchange is done). */
  log(): void {
    const accessLog = this.accessLog;
    if (!accessLog.enabled) return;
    accessLog.write({
      client: this.conn.clientIp,
      method: this.head.method,
      path: this.head.target,
      status: this.status,
      listener: this.listener,
      route: this.route,
      pool: this.pool?.name,
      backend: this.backend?.key,
      upstreamMs: round(this.upstreamMs),
      totalMs: round(performance.now() - this.startedAt),
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      error: this.error?.code,
    });
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    const backend = this.backend;
    if (backend !== undefined) {
      backend.inFlight--;
      backend.counters.bytesOut += this.bytesOut;
      if (this.error === undefined) this.pool?.balancer.observe?.(backend, this.upstreamMs, performance.now());
    }
    this.conn.exchangeDone(this);
  }
}

function round(ms: number): number {
  return ms < 0 ? -1 : Math.round(ms * 1000) / 1000;
}
