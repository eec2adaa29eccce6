import type { PickContext } from '../balancer/types.ts';
import type { RetryCondition } from '../config/types.ts';
import { UsherError, type ErrorCode } from '../errors.ts';
import type { BackendRuntime } from '../pool/backend-runtime.ts';
import type { PoolRuntime } from '../pool/pool-runtime.ts';
import type { AttemptOutcome } from '../pool/published.ts';
import type { Waiter } from '../pool/wait-queue.ts';
import type { FilterRun, LocalAnswer } from '../filter/run.ts';
import type { ResponseHead } from '../http1/types.ts';
import { RequestRecord } from './request-record.ts';
import { isUnreachable, mayReplayOnFreshConnection, mayRetry, retryConditionOf } from './retry-policy.ts';
import { connectionLost, upstreamTimeout } from './upstream-errors.ts';

const nothingTried: readonly number[] = [];

/** The pool's balancer threw (the pool has logged it). */
function balancerFailed(pool: PoolRuntime): UsherError {
  return new UsherError('USHER_BALANCER_FAILED', `pool ${pool.name}: the balancer failed to pick a backend; see the usher log`);
}

/**
 * The pick → attempt → retry loop of one request, shared by the HTTP/1.1
 * exchange (`proxy/exchange.ts`) and the HTTP/2 stream exchanges (`h2/`), so a
 * pool behaves the same whichever protocol its clients speak.
 *
 * Pick a backend, or wait in the pool's bounded queue while every candidate is
 * at `maxConnections`; run an *attempt* on it (one backend, one upstream
 * connection or stream); end each attempt once, telling the pool the outcome
 * (`PoolRuntime.attemptStarted/attemptEnded`); after a failure, retry on another
 * backend when `retry-policy.ts` says it is safe, else answer the client with
 * the error. Subclasses speak to the backend and to the client.
 */
export abstract class AttemptLoop extends RequestRecord implements Waiter {
  /** The sticky cookie to set on the response: the request was not pinned to the backend that answers. */
  setCookie: string | undefined;
  /** The route's filters (response phases); undefined on routes without filters. */
  filters: FilterRun | undefined;

  protected readonly ctx: PickContext = { hash: 0, tried: nothingTried };
  protected upstreamStartedAt = 0;
  protected responseTimeoutMs = 0;
  #stickyToken: string | undefined;
  #attemptOpen = false;
  #retries = 0;
  #lastError: UsherError | undefined;
  #queued = false;
  /** The request was sent again on a fresh connection after a kept-alive one was found closed (once per request). */
  #replayed = false;

  /** The exchange is over: late upstream events are ignored. */
  abstract readonly finished: boolean;
  /** Whether any request body byte reached a backend: after that no retry can resend it. */
  bodySent = false;
  /** Request body bytes no attempt could send yet (no connection up, or waiting in the queue); bounded: the client is paused meanwhile. */
  heldBody: Buffer[] | undefined;
  /** Whether the request has a body (a request with one is never replayed). */
  protected get hasRequestBody(): boolean {
    return true;
  }

  /** Answers the client with an error usher decided itself; the exchange ends. */
  abstract fail(error: UsherError): void;
  /** Starts the current attempt on `this.backend`. */
  protected abstract connect(): void;
  /** Drops the attempt's upstream side: back to its pool when `reusable`, else closed or cancelled. */
  protected abstract releaseUpstream(reusable: boolean): void;
  /** Forgets what the failed attempt received, before a retry. */
  protected abstract resetResponse(): void;
  /** Something of the response reached the client, or the client is gone: no retry can help any more. */
  protected abstract responseBegun(): boolean;

  /** Pick phase onwards, after the route phase chose `pool`. */
  protected startAttempts(pool: PoolRuntime, hash: number, stickyToken: string | undefined): void {
    this.pool = pool;
    this.ctx.hash = hash;
    this.#stickyToken = stickyToken;
    this.responseTimeoutMs = pool.config.timeouts.responseMs;
    // The budget counts in 1 s buckets: the request's start time is close enough, and saves a clock read.
    pool.retryBudget?.onRequest(this.startedAt);
    this.#pick();
  }

  #pick(): void {
    const pool = this.pool!;
    const selection = pool.select(this.ctx, this.#stickyToken);
    if (selection === 'none') {
      // On a retry with nowhere else to go, the client learns what actually failed.
      this.fail(this.#lastError ?? new UsherError('USHER_NO_BACKEND', `pool ${pool.name} has no available backend`));
    } else if (selection === 'failed') {
      this.fail(balancerFailed(pool));
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
    else if (selection === 'failed') this.fail(balancerFailed(this.pool!));
    else this.#attempt(selection);
    return true;
  }

  /** Waiter: the queue timeout passed. */
  expire(): void {
    this.#queued = false;
    this.fail(new UsherError('USHER_QUEUE_TIMEOUT', `pool ${this.pool!.name}: no backend slot within ${this.pool!.config.queueTimeoutMs} ms`));
  }

  /** The exchange ends while waiting in the pool's queue: leave it. */
  protected leaveQueue(): void {
    if (!this.#queued) return;
    this.#queued = false;
    this.pool?.dequeue(this);
  }

  #attempt(backend: BackendRuntime): void {
    const pool = this.pool!;
    this.backend = backend;
    pool.attemptStarted(backend);
    this.#attemptOpen = true;
    if (this.setCookie === undefined && pool.sticky !== undefined && this.#stickyToken !== backend.control.stickyToken) {
      this.setCookie = pool.sticky.setCookie(backend.control.stickyToken);
    }
    this.upstreamStartedAt = performance.now();
    this.connect();
  }

  /** The current attempt failed on the upstream side: retry elsewhere when safe, else answer. */
  protected attemptFailed(error: UsherError): void {
    if (this.finished) return;
    // A backend that could not be reached leaves rotation at once (the pool's `unreachable`).
    this.endAttempt(isUnreachable(error.code) ? 'unreachable' : 'failure', 0);
    if (this.#mayRetry(retryConditionOf(error.code), error.code)) {
      this.#lastError = error;
      this.#retryElsewhere();
      return;
    }
    this.fail(error);
  }

  /** The attempt's connect or response timeout ran out. */
  onUpstreamTimeout(phase: 'connect' | 'exchange'): void {
    const afterMs = phase === 'connect' ? this.pool!.config.timeouts.connectMs : this.responseTimeoutMs;
    this.attemptFailed(upstreamTimeout(phase, this.backend!.key, afterMs));
  }

  /** The backend answered something usher cannot pass on (upstream/http1.ts): the attempt failed. */
  onUpstreamFailed(error: UsherError): void {
    this.attemptFailed(error);
  }

  /**
   * The attempt's connection closed or failed before the response ended.
   * A kept-alive connection the backend closed just as the request went out
   * is replayed once on a fresh connection when that is safe
   * ({@link mayReplayOnFreshConnection}); anything else fails the attempt.
   */
  onUpstreamLost(error: NodeJS.ErrnoException | undefined, phase: 'connect' | 'exchange', answered: boolean, uses: number): void {
    if (this.finished) return;
    this.releaseUpstream(false);
    if (phase === 'exchange' && mayReplayOnFreshConnection({ uses, answered, replayed: this.#replayed, hasBody: this.hasRequestBody, method: this.method })) {
      this.#replayed = true;
      this.connect();
      return;
    }
    this.attemptFailed(connectionLost(error, phase, this.backend!.key));
  }

  /** Whether the current attempt is a replay: it must use a fresh connection. */
  protected get replayed(): boolean {
    return this.#replayed;
  }

  /**
   * The final response head from an HTTP/1.1 backend, as the client gets it:
   * a 502-504 retried elsewhere when configured, else the head through the
   * route's response filters. Undefined: the exchange went on without it
   * (retried, or failed by a filter).
   */
  protected finalHead(received: ResponseHead): ResponseHead | undefined {
    if (received.status >= 502 && received.status <= 504 && this.retryStatus(received.status)) return undefined;
    const head = this.filters === undefined ? received : this.filters.filterHead(received);
    if (head instanceof UsherError) {
      this.fail(head);
      return undefined;
    }
    if ('replaced' in head) {
      this.replacedBy(head.replaced, received.framing.kind === 'none');
      return undefined;
    }
    return head;
  }

  /**
   * A response filter answered instead of the backend: the attempt succeeded
   * (the backend answered), its connection is kept when the response had no
   * body to skip, and the client gets the filter's answer.
   */
  protected replacedBy(answer: LocalAnswer, bodiless: boolean): void {
    this.upstreamMs = performance.now() - this.upstreamStartedAt;
    this.releaseUpstream(bodiless);
    this.endAttempt('success', answer.status);
    this.answerLocally(answer);
  }

  /**
   * The backends failed with `error` and nothing was sent yet: a filter's
   * answer to send instead (a cache's stale copy), undefined to send the
   * error. A filter's own error replaces `error`. Callers check that the
   * response has not begun.
   */
  protected answerForUpstreamError(error: UsherError): LocalAnswer | UsherError | undefined {
    if (error.source !== 'upstream' || this.filters === undefined) return undefined;
    return this.filters.answerUpstreamError(error);
  }

  /** Sends a complete response usher made (a filter's) and ends the exchange. */
  protected abstract answerLocally(answer: LocalAnswer): void;

  /** Logs the finished request, then tells its filters it is over and whether it completed (a concurrency limit frees its slot; a request that failed or lost its client aborts `request.signal`). */
  override log(): void {
    super.log();
    this.filters?.ended(this.error === undefined);
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

  /** Whether this failed attempt may be retried elsewhere: the response has not begun, and {@link mayRetry}. */
  #mayRetry(condition: RetryCondition | undefined, code: ErrorCode | undefined): boolean {
    if (this.responseBegun()) return false;
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

  /** The exchange is over: ends an attempt still open, and adds the request's bytes to its last backend's counters. */
  protected settle(): void {
    this.endAttempt('unknown', this.status);
    this.heldBody = undefined;
    const backend = this.backend;
    if (backend !== undefined) {
      backend.metrics.bytesIn += this.bytesIn;
      backend.counters.bytesOut += this.bytesOut;
    }
  }

  /** Ends the current attempt (once): releases its upstream side unless it succeeded, and tells the pool the outcome. */
  protected endAttempt(outcome: AttemptOutcome, status: number): void {
    if (!this.#attemptOpen) return;
    this.#attemptOpen = false;
    if (outcome !== 'success') this.releaseUpstream(false);
    this.pool!.attemptEnded(this.backend!, outcome, status, outcome === 'success' ? this.upstreamMs : -1);
  }
}
