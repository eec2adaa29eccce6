import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { UsherError } from '../errors.ts';
import type { AccessLog } from '../observe/access-log.ts';
import type { Backend } from '../pool/backend.ts';
import type { Pool } from '../pool/pool.ts';
import { sendError } from './error-response.ts';
import { downstreamResponseHeaders, type ParsedHeaders } from './headers.ts';
import { upstreamError } from './upstream-errors.ts';

/**
 * One request's trip through the proxy, and the upstream response handler for
 * it. undici calls the `on*` methods as the backend answers; the exchange copies
 * the response to the client with backpressure both ways, keeps the backend's
 * in-flight count and writes the access log line when the client side closes.
 *
 * Listeners on the downstream response are shared functions that find their
 * exchange through a symbol, so a request allocates no closures.
 */
const kExchange = Symbol('usher.exchange');
type TaggedResponse = ServerResponse & { [kExchange]?: Exchange };

export interface ExchangeInit {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly listener: string;
  readonly clientIp: string;
  readonly accessLog: AccessLog;
  readonly startedAt: number;
  readonly bytesReadAtStart: number;
}

export class Exchange implements Dispatcher.DispatchHandler {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly #init: ExchangeInit;
  route: string | undefined;
  pool: Pool | undefined;
  backend: Backend | undefined;
  /** A `Set-Cookie` value to add to the response (sticky sessions). */
  setCookie: string | undefined;
  #controller: Dispatcher.DispatchController | undefined;
  #upstreamStartedAt = 0;
  #upstreamMs = -1;
  #bytesOut = 0;
  #error: UsherError | undefined;
  #upstreamOpen = false;

  constructor(init: ExchangeInit) {
    this.#init = init;
    this.req = init.req;
    this.res = init.res;
    (init.res as TaggedResponse)[kExchange] = this;
    init.res.on('close', onDownstreamClose);
  }

  /** Sends the request to `backend`; the response arrives through the handler methods. */
  forward(backend: Backend, options: Dispatcher.DispatchOptions): void {
    this.backend = backend;
    backend.inFlight++;
    backend.counters.requests++;
    this.#upstreamOpen = true;
    this.#upstreamStartedAt = performance.now();
    try {
      backend.connections.dispatch(options, this);
    } catch (err) {
      // undici validates synchronously (e.g. a header value it refuses).
      this.onResponseError(undefined, err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Answers the client with an error usher decided itself (no route, no backend). */
  fail(error: UsherError): void {
    this.#error = error;
    sendError(this.res, error);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.res.destroyed) controller.abort(clientGone());
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: ParsedHeaders,
    statusMessage?: string,
  ): void {
    if (statusCode < 200) return; // 1xx interim responses are not forwarded; undici waits for the final one.
    this.#upstreamMs = performance.now() - this.#upstreamStartedAt;
    const out = downstreamResponseHeaders(headers);
    if (this.setCookie !== undefined) out.push('set-cookie', this.setCookie);
    const res = this.res;
    if (res.destroyed) return;
    if (statusMessage) res.writeHead(statusCode, statusMessage, out);
    else res.writeHead(statusCode, out);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#bytesOut += chunk.length;
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', onDownstreamDrain);
    }
  }

  onResponseEnd(): void {
    this.#closeUpstream(undefined);
    this.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    const error = upstreamError(err, this.backend?.key ?? 'unknown');
    this.#closeUpstream(error);
    if (!this.res.destroyed) sendError(this.res, error);
  }

  #closeUpstream(error: UsherError | undefined): void {
    if (!this.#upstreamOpen) return;
    this.#upstreamOpen = false;
    const backend = this.backend!;
    backend.inFlight--;
    backend.counters.bytesOut += this.#bytesOut;
    if (error === undefined) {
      this.pool?.balancer.observe?.(backend, this.#upstreamMs, performance.now());
    } else {
      this.#error ??= error;
      if (error.source === 'upstream') backend.counters.failures++;
    }
  }

  /** The client side closed: finished normally, or gone early (then the upstream request is cancelled). */
  downstreamClosed(): void {
    const res = this.res;
    if (!res.writableFinished && this.#upstreamOpen) {
      const reason = clientGone();
      this.#error ??= reason;
      this.#controller?.abort(reason);
    }
    const init = this.#init;
    if (!init.accessLog.enabled) return;
    init.accessLog.write({
      client: init.clientIp,
      method: this.req.method ?? '',
      path: this.req.url ?? '',
      status: res.writableFinished ? res.statusCode : 499,
      listener: init.listener,
      route: this.route,
      pool: this.pool?.name,
      backend: this.backend?.key,
      upstreamMs: round(this.#upstreamMs),
      totalMs: round(performance.now() - init.startedAt),
      bytesIn: (this.req.socket?.bytesRead ?? init.bytesReadAtStart) - init.bytesReadAtStart,
      bytesOut: this.#bytesOut,
      error: this.#error?.code,
    });
  }

  resumeUpstream(): void {
    this.#controller?.resume();
  }
}

function onDownstreamClose(this: TaggedResponse): void {
  this[kExchange]?.downstreamClosed();
}

function onDownstreamDrain(this: TaggedResponse): void {
  this[kExchange]?.resumeUpstream();
}

function clientGone(): UsherError {
  return new UsherError('USHER_DOWNSTREAM_ABORTED', 'client closed the connection before the response completed');
}

function round(ms: number): number {
  return ms < 0 ? -1 : Math.round(ms * 1000) / 1000;
}
