import { constants, type ServerHttp2Stream } from 'node:http2';
import type { PickContext } from '../balancer/types.ts';
import type { RetryCondition } from '../config/types.ts';
import { UsherError, type ErrorCode } from '../errors.ts';
import { disabledAccessLog, type AccessLog } from '../observe/access-log.ts';
import type { Backend } from '../pool/backend.ts';
import type { Pool } from '../pool/pool.ts';
import type { Waiter } from '../pool/wait-queue.ts';
import type { DownstreamSettings } from '../proxy/downstream.ts';
import type { RouteMetrics } from '../proxy/metrics.ts';
import { mayRetry, retryConditionOf } from '../proxy/retry-policy.ts';
import { resetStream, respondError } from './respond.ts';

const nothingTried: readonly number[] = [];

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
 * The same rules as `proxy/exchange.ts` (the HTTP/1.1 exchange) apply, so a
 * pool behaves the same whichever protocol its clients speak: attempts go
 * through `Pool.attemptStarted/attemptEnded`, and a retry needs the condition
 * in `retry.on`, attempts and budget left, nothing of the response sent, and
 * either a failure before the request reached the backend or an idempotent
 * method with no body byte sent. Subclasses speak to the backend:
 * {@link H2Exchange} over HTTP/1.1, {@link H2cExchange} over cleartext HTTP/2.
 */
export abstract class StreamExchange implements Waiter {
  readonly stream: ServerHttp2Stream;
  readonly owner: StreamOwner;
  readonly method: string;
  /** `:path` as received (logged); the backend gets the route's rewrite of it. */
  readonly path: string;
  readonly startedAt: number;
  readonly settings: DownstreamSettings;
  /** `x-request-id` (proxy/request-id.ts): the client's when valid, else a fresh one. */
  readonly requestId: string;
  listener = '';
  accessLog: AccessLog = disabledAccessLog;
  /** Where the finished request is counted; set by the route phase (undefined: the listener was removed). */
  metrics: RouteMetrics | undefined;
  /** Referer and User-Agent, kept only when the access log shows them. */
  referer: string | undefined;
  userAgent: string | undefined;
  route: string | undefined;
  pool: Pool | undefined;
  backend: Backend | undefined;
  setCookie: string | undefined;
  error: UsherError | undefined;
  status = 0;
  /** Request body bytes read from the client (HTTP/2 heads are compressed: not counted). */
  bytesIn = 0;
  /** Response body bytes sent to the client (DATA payload). */
  bytesOut = 0;
  upstreamMs = -1;
  /** The client has sent its whole request (END_STREAM seen). */
  requestBodyDone: boolean;

  protected readonly ctx: PickContext = { hash: 0, tried: nothingTried };
  protected upstreamStartedAt = 0;
  protected responseTimeoutMs = 0;
  /** Response headers went to the client: from here a failure can only reset the stream. */
  protected responseStarted = false;
  /** An interim (1xx) response went to the client: the response has begun. */
  protected sentInterim = false;
  #stickyToken: string | undefined;
  #attemptOpen = false;
  #retries = 0;
  #lastError: UsherError | undefined;
  #queued = false;
  #finished = false;
  #awaitingDrain = false;
  #clientPaused = false;

  constructor(
    stream: ServerHttp2Stream,
    owner: StreamOwner,
    method: string,
    path: string,
    settings: DownstreamSettings,
    endStream: boolean,
    requestId: string,
  ) {
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
  start(pool: Pool, hash: number, stickyToken: string | undefined): void {
    this.pool = pool;
    this.ctx.hash = hash;
    this.#stickyToken = stickyToken;
    this.responseTimeoutMs = pool.config.timeouts.responseMs;
    pool.retryBudget?.onRequest(performance.now());
    if (!this.requestBodyDone) {
      this.stream.on('data', this.#onData);
      this.stream.on('end', this.#onEnd);
      this.stream.on('trailers', this.#onTrailers);
      this.stream.setTimeout(this.settings.bodyIdleTimeoutMs);
    }
    this.#pick();
  }

  // ---- what a subclass does with the backend ------------------------------------

  /** Starts the current attempt on `this.backend`. */
  protected abstract connect(): void;
  /** Request body bytes for the backend; false asks for the client to be paused. */
  protected abstract sendBody(chunk: Buffer): boolean;
  /** The client finished its request body. */
  protected abstract endBody(): void;
  /** Request trailers from the client (raw list). */
  protected abstract sendTrailers(raw: readonly string[]): void;
  /** Whether any request body byte reached a backend: after that no retry can resend it. */
  protected abstract get bodySent(): boolean;
  /** Drops the attempt's upstream side: back to its pool when `reusable`, else cancelled. */
  protected abstract releaseUpstream(reusable: boolean): void;
  /** Forgets what the failed attempt received, before a retry. */
  protected abstract resetResponse(): void;
  /** The client's stream drained after `awaitDrain`: read from the backend again. */
  protected abstract onDownstreamDrain(): void;

  // ---- pick, attempts and retries -------------------------------------------------

  #pick(): void {
    const pool = this.pool!;
    const selection = pool.select(this.ctx, this.#stickyToken);
    if (selection === 'none') {
      // On a retry with nowhere else to go, the client learns what actually failed.
      this.fail(this.#lastError ?? new UsherError('USHER_NO_BACKEND', `pool ${pool.name} has no available backend`));
    } else if (selection === 'full') {
      if (pool.enqueue(this)) this.#queued = true;
      else this.fail(new UsherError('USHER_QUEUE_FULL', `pool ${pool.name}: every backend is at maxConnections and the queue is full`));
    } else {
      this.#attempt(selection);
    }
  }

  /** Waiter: a slot may have freed up in the pool. */
  retry(): boolean {
    const selection = this.pool!.select(this.ctx, this.#stickyToken);
    if (selection === 'full') return false;
    this.#queued = false;
    if (selection === 'none') this.fail(this.#lastError ?? new UsherError('USHER_NO_BACKEND', `pool ${this.pool!.name} has no available backend`));
    else this.#attempt(selection);
    return true;
  }

  /** Waiter: the queue timeout passed. */
  expire(): void {
    this.#queued = false;
    this.fail(new UsherError('USHER_QUEUE_TIMEOUT', `pool ${this.pool!.name}: no backend slot within ${this.pool!.config.queueTimeoutMs} ms`));
  }

  #attempt(backend: Backend): void {
    const pool = this.pool!;
    this.backend = backend;
    pool.attemptStarted(backend);
    this.#attemptOpen = true;
    if (this.setCookie === undefined && pool.sticky !== undefined && this.#stickyToken !== backend.stickyToken) {
      this.setCookie = pool.sticky.setCookie(backend.stickyToken);
    }
    this.upstreamStartedAt = performance.now();
    this.connect();
  }

  /** The current attempt failed on the upstream side: retry elsewhere when safe, else answer. */
  protected attemptFailed(error: UsherError): void {
    if (this.#finished) return;
    this.endAttempt('failure', 0);
    if (this.#mayRetry(retryConditionOf(error.code), error.code)) {
      this.#lastError = error;
      this.#retryElsewhere();
      return;
    }
    this.fail(error);
  }

  /** A 502/503/504 from the backend, before anything went to the client: retried when configured. */
  protected retryStatus(status: number): boolean {
    const condition = status === 502 ? '502' : status === 503 ? '503' : '504';
    if (!this.#mayRetry(condition, undefined)) return false;
    this.endAttempt('failure', status);
    this.#lastError = undefined;
    this.#retryElsewhere();
    return true;
  }

  /** Whether this failed attempt may be retried elsewhere: the response has not started, and {@link mayRetry}. */
  #mayRetry(condition: RetryCondition | undefined, code: ErrorCode | undefined): boolean {
    if (this.responseStarted || this.sentInterim || this.stream.destroyed) return false;
    return mayRetry(this.pool!, {
      condition,
      code,
      retries: this.#retries,
      method: this.method,
      bodySent: this.bodySent,
      ctx: this.ctx,
      backend: this.backend!,
    });
  }

  #retryElsewhere(): void {
    const backend = this.backend!;
    backend.counters.retriedAway++;
    this.#retries++;
    this.ctx.tried = [...this.ctx.tried, backend.index];
    this.resetResponse();
    this.#pick();
  }

  /** Ends the current attempt (once): releases its upstream side and tells the pool the outcome. */
  protected endAttempt(outcome: 'success' | 'failure' | 'unknown', status: number): void {
    if (!this.#attemptOpen) return;
    this.#attemptOpen = false;
    if (outcome !== 'success') this.releaseUpstream(false);
    this.pool!.attemptEnded(this.backend!, outcome, status, outcome === 'success' ? this.upstreamMs : -1);
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
    if (this.#queued) {
      this.#queued = false;
      this.pool?.dequeue(this);
    }
    this.error ??= new UsherError('USHER_DOWNSTREAM_ABORTED', 'client reset the stream before the response completed');
    this.status = 499;
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
    this.error ??= error;
    if (this.#queued) {
      this.#queued = false;
      this.pool?.dequeue(this);
    }
    const stream = this.stream;
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

  /** Answers without a backend (a redirect route): `headers` is the whole response, which has no body. */
  answer(status: number, headers: Readonly<Record<string, string>>): void {
    if (this.#finished) return;
    if (!this.stream.destroyed && !this.stream.closed) {
      this.stream.respond({ ...headers, 'x-request-id': this.requestId, ':status': status }, { endStream: true });
      this.status = status;
      this.#stopUnreadBody();
    }
    this.#finish();
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
    this.endAttempt('unknown', this.status);
    const backend = this.backend;
    if (backend !== undefined) {
      backend.metrics.bytesIn += this.bytesIn;
      backend.counters.bytesOut += this.bytesOut;
    }
    this.owner.streamDone(this);
  }

  /** Records the finished exchange, once (called by the session): the one place its metrics and access log line are written. */
  log(): void {
    const totalMs = performance.now() - this.startedAt;
    this.metrics?.observe(this.backend, this.status, totalMs, this.upstreamMs, this.bytesIn, this.bytesOut);
    const accessLog = this.accessLog;
    if (!accessLog.enabled) return;
    accessLog.write({
      client: this.owner.clientIp,
      method: this.method,
      path: this.path,
      protocol: 'HTTP/2.0',
      status: this.status,
      listener: this.listener,
      route: this.route,
      pool: this.pool?.name,
      backend: this.backend?.key,
      upstreamMs: round(this.upstreamMs),
      totalMs: round(totalMs),
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      error: this.error?.code,
      requestId: this.requestId,
      referer: this.referer,
      userAgent: this.userAgent,
    });
  }
}

/** Stream errors (a reset, a write after the client left) are followed by 'close', which does the bookkeeping. */
function ignoreError(): void {}

function round(ms: number): number {
  return ms < 0 ? -1 : Math.round(ms * 1000) / 1000;
}
