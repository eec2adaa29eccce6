import type { PickContext } from '../balancer/types.ts';
import type { RetryCondition } from '../config/types.ts';
import { errorSpecs, type ErrorCode, type ErrorSpec } from '../errors.ts';
import type { BackendRuntime } from '../pool/backend-runtime.ts';
import type { PoolRuntime } from '../pool/pool-runtime.ts';

/** Which `retry.on` condition an upstream failure is (`retryAs` in the error catalogue, errors.ts). */
export function retryConditionOf(code: ErrorCode): RetryCondition | undefined {
  return (errorSpecs[code] as ErrorSpec).retryAs;
}

/**
 * Whether the failure means the backend could not be reached at all, which
 * takes it out of rotation (the pool's `unreachable`). A refused h2c stream
 * does not: the backend is up, only busy.
 */
export function isUnreachable(code: ErrorCode): boolean {
  return (errorSpecs[code] as ErrorSpec).unreachable === true;
}

/** Methods whose request may be sent twice without changing the outcome (RFC 9110 §9.2.2). */
export const idempotentMethods: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** A failed attempt, as the retry rules see it. The caller has checked that no response byte reached the client. */
export interface FailedAttempt {
  readonly condition: RetryCondition | undefined;
  readonly code: ErrorCode | undefined;
  /** Retries this request has made so far. */
  readonly retries: number;
  readonly method: string;
  /** Whether any request body byte went to a backend (it could not be sent again). */
  readonly bodySent: boolean;
  readonly ctx: PickContext;
  readonly backend: BackendRuntime;
}

/**
 * The retry rules shared by HTTP/1.1 and HTTP/2 exchanges: the pool retries
 * this condition and has attempts left; the request either never reached the
 * backend (connect failure, body held back) or is idempotent with no body
 * sent; and another backend could take it (otherwise the backend's answer or
 * the real error stands, and no budget is spent).
 *
 * The budget (pool/retry-budget.ts) is charged only for retries that send the
 * request to a backend *again*. A connect failure reached no backend, so its
 * retry adds no work anywhere: charging it would turn one dead backend into
 * failed requests exactly when the healthy ones have room (a third of all
 * requests need a retry while one backend of three refuses, against a 20 %
 * budget). Connect-failure retries stay bounded by `attempts` per request,
 * and passive ejection (`unreachable`) takes the dead backend out after its
 * first refusal.
 */
export function mayRetry(pool: PoolRuntime, attempt: FailedAttempt): boolean {
  const retry = pool.config.retry;
  const condition = attempt.condition;
  if (condition === undefined || attempt.retries >= retry.attempts) return false;
  const applies = retry.on.includes(condition) || (attempt.code === 'USHER_UPSTREAM_CONNECT_TIMEOUT' && retry.on.includes('timeout'));
  if (!applies) return false;
  const reachedBackend = condition !== 'connect-failure';
  if (attempt.bodySent || (reachedBackend && !idempotentMethods.has(attempt.method))) return false;
  if (!pool.hasOtherCandidate(attempt.ctx, attempt.backend)) return false;
  if (!reachedBackend) return true;
  return pool.retryBudget?.tryAcquireRetry(performance.now()) ?? false;
}

/** An upstream connection that failed during the exchange, as the replay rule sees it. */
export interface LostConnection {
  /** Requests the connection has carried, this one included (> 1: it was reused). */
  readonly uses: number;
  /** Whether any byte of a response came back on it. */
  readonly answered: boolean;
  /** Whether this request was replayed once already. */
  readonly replayed: boolean;
  readonly hasBody: boolean;
  readonly method: string;
}

/**
 * A kept-alive connection the backend closed just as usher reused it (the race
 * every keep-alive pool has): nothing came back, so the request never reached
 * the application, and one without a body and with an idempotent method is
 * replayed once on a fresh connection to the same backend. Not a retry: it
 * spends no attempt and no budget.
 */
export function mayReplayOnFreshConnection(lost: LostConnection): boolean {
  return lost.uses > 1 && !lost.answered && !lost.replayed && !lost.hasBody && idempotentMethods.has(lost.method);
}
