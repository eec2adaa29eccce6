/**
 * Check 1, the health endpoint: judges what a health request got (no I/O
 * here; `observe.ts` makes the requests). The pool's `healthCheck` decides
 * path, port, timeout, accepted statuses and body, exactly as usher's own
 * probe (`pool/health/probe.ts`) judges them, so "ok" here means usher's
 * checks will pass. A pool without `healthCheck` gets a warning and the
 * config lines to add, from what `/health` (or `/healthz`) answered.
 */
import type { HealthCheckConfig } from '../config/types.ts';
import { compileBodyTest, formatRanges, statusAccepted } from '../pool/health/probe.ts';
import type { Failure, Outcome } from './client.ts';
import type { Finding } from './findings.ts';
import { configured, measured } from './units.ts';

/** One health request and how long usher's check would have measured it. */
export interface HealthAttempt {
  readonly path: string;
  readonly outcome: Outcome;
  /** From the start of the connect to the response head (to the end of the body with `expectBody`), as usher's probe times it. */
  readonly ms: number;
  /** How long the doctor waited in all (longer than the check's timeout, to measure a slow answer). */
  readonly waitedMs: number;
}

/** What the health requests to one backend got. */
export type HealthObservation =
  /** The pool's http check. */
  | { readonly kind: 'http'; readonly check: HealthCheckConfig; readonly where: string; readonly attempt: HealthAttempt }
  /** The pool's tcp check: a connect. */
  | { readonly kind: 'tcp'; readonly check: HealthCheckConfig; readonly where: string; readonly connect: { readonly ok: true; readonly ms: number } | { readonly ok: false; readonly failure: Failure } }
  /** No `healthCheck`: the paths tried, in order, until one answered. */
  | { readonly kind: 'guess'; readonly where: string; readonly attempts: readonly HealthAttempt[] };

/** How long the doctor waits for a health answer: the check's timeout and as long again (at least 1 s more), to tell "slow" from "never". */
export function healthWaitMs(timeoutMs: number): number {
  return timeoutMs + Math.max(timeoutMs, 1000);
}

const SLOW_FIX = 'make the endpoint answer well within the timeout (report the process\'s own state; do not wait on slow dependencies), or raise healthCheck.timeout';

/** The finding for one backend's health. `pool` names the pool in fixes. */
export function healthFinding(observation: HealthObservation, pool: string): Finding {
  switch (observation.kind) {
    case 'http':
      return judgeHttp(observation.check, observation.attempt, observation.where, pool);
    case 'tcp': {
      const { connect, check, where } = observation;
      if (!connect.ok) return connectProblem(connect.failure, where, check.port !== undefined);
      if (connect.ms > check.timeoutMs) {
        return { check: 'health', severity: 'problem', message: `tcp check: connected to ${where} in ${measured(connect.ms)}, slower than the check's ${configured(check.timeoutMs)} timeout`, fix: 'raise healthCheck.timeout, or find why connecting is slow (a full accept queue?)', measured: { connectMs: round(connect.ms), timeoutMs: check.timeoutMs } };
      }
      return { check: 'health', severity: 'ok', message: `tcp check: connected to ${where} in ${measured(connect.ms)} (timeout ${configured(check.timeoutMs)}; only proves the port is open, an http check also proves the backend answers)`, measured: { connectMs: round(connect.ms), timeoutMs: check.timeoutMs } };
    }
    case 'guess':
      return judgeGuess(observation.attempts, observation.where);
    default: {
      const never: never = observation;
      throw new Error(`unknown health observation ${String(never)}`);
    }
  }
}

function judgeHttp(check: HealthCheckConfig, attempt: HealthAttempt, where: string, pool: string): Finding {
  const request = `GET ${check.path}`;
  const base = { timeoutMs: check.timeoutMs, path: check.path };
  const { outcome } = attempt;
  if (!outcome.ok) {
    const { failure } = outcome;
    if (failure.kind === 'connect') return connectProblem(failure, where, check.port !== undefined);
    if (failure.kind === 'timeout') {
      return {
        check: 'health',
        severity: 'problem',
        message: `${request}: no answer within ${measured(attempt.waitedMs)} (the check's timeout is ${configured(check.timeoutMs)}): every check of usher fails`,
        fix: SLOW_FIX,
        measured: { ...base, answered: false, waitedMs: round(attempt.waitedMs) },
      };
    }
    return {
      check: 'health',
      severity: 'problem',
      message: `${request}: ${failure.message}: usher's check fails`,
      fix: 'make the endpoint answer a complete HTTP/1.1 response (usher parses it strictly, as it parses proxied responses)',
      measured: { ...base, answered: false, error: failure.message },
    };
  }
  const { reply } = outcome;
  const status = reply.reason === '' ? String(reply.status) : `${reply.status} ${reply.reason}`;
  const numbers = { ...base, answered: true, status: reply.status, ms: round(attempt.ms) };
  if (attempt.ms > check.timeoutMs) {
    return {
      check: 'health',
      severity: 'problem',
      message: `${request} answered ${status} in ${measured(attempt.ms)}, slower than the check's ${configured(check.timeoutMs)} timeout: usher counts it as failed`,
      fix: SLOW_FIX,
      measured: numbers,
    };
  }
  if (!statusAccepted(reply.status, check.expectStatus)) {
    if (reply.status === 404) {
      return {
        check: 'health',
        severity: 'problem',
        message: `no health endpoint: ${request} answered 404 (expected ${formatRanges(check.expectStatus)}): usher takes this backend out of rotation`,
        fix: `add the endpoint to the backend (200 while it can serve requests), or set pools.${pool}.healthCheck.path to the one it has`,
        measured: numbers,
      };
    }
    const body = excerpt(reply.body);
    return {
      check: 'health',
      severity: 'problem',
      message: `${request} answered ${status}, not in ${formatRanges(check.expectStatus)}${body === '' ? '' : ` (body: ${body})`}: usher takes this backend out of rotation`,
      fix: `repair what the backend reports as broken; if ${reply.status} means healthy here, add it to pools.${pool}.healthCheck.expectStatus`,
      measured: numbers,
    };
  }
  if (check.expectBody !== undefined) {
    const test = compileBodyTest(check.expectBody);
    if (typeof test === 'string') return { check: 'health', severity: 'problem', message: test, fix: `fix pools.${pool}.healthCheck.expectBody`, measured: numbers };
    if (!test.test(reply.body)) {
      return {
        check: 'health',
        severity: 'problem',
        message: `${request} answered ${status}, but its body does not ${test.expectation} (body: ${excerpt(reply.body) || 'empty'}): usher's check fails`,
        fix: `make the endpoint's body say so when healthy, or change pools.${pool}.healthCheck.expectBody`,
        measured: numbers,
      };
    }
  }
  if (attempt.ms > check.timeoutMs / 2) {
    return {
      check: 'health',
      severity: 'warning',
      message: `${request} answered ${status} in ${measured(attempt.ms)}, more than half the check's ${configured(check.timeoutMs)} timeout: a little load will fail checks`,
      fix: SLOW_FIX,
      measured: numbers,
    };
  }
  return {
    check: 'health',
    severity: 'ok',
    message: `${request} answered ${status} in ${measured(attempt.ms)} (timeout ${configured(check.timeoutMs)}, expects ${formatRanges(check.expectStatus)}${check.expectBody === undefined ? '' : ` and a body that matches ${JSON.stringify(check.expectBody)}`})`,
    measured: numbers,
  };
}

/** No health check configured: whether the backend has an endpoint usher could use. */
function judgeGuess(attempts: readonly HealthAttempt[], where: string): Finding {
  const first = attempts[0];
  if (first !== undefined && !first.outcome.ok && first.outcome.failure.kind === 'connect') return connectProblem(first.outcome.failure, where, false);
  const found = usableGuess(attempts);
  if (found !== undefined && found.outcome.ok) {
    return {
      check: 'health',
      severity: 'ok',
      message: `GET ${found.path} answered ${found.outcome.reply.status} in ${measured(found.ms)}: usher can check it (the pool has no healthCheck yet)`,
      measured: { path: found.path, status: found.outcome.reply.status, ms: round(found.ms) },
    };
  }
  const tried = attempts.map((attempt) => `GET ${attempt.path} ${attempt.outcome.ok ? `answered ${attempt.outcome.reply.status}${attempt.ms > 1000 ? ` in ${measured(attempt.ms)}` : ''}` : `failed: ${attempt.outcome.failure.message}`}`);
  return {
    check: 'health',
    severity: 'warning',
    message: `no usable health endpoint: ${tried.join(', ')}`,
    fix: 'add one to the backend: 200 within a few ms while it can serve requests, 503 when it cannot',
  };
}

/** The first guessed path that answered like a health endpoint: an accepted status within the default 1 s timeout. */
export function usableGuess(attempts: readonly HealthAttempt[]): HealthAttempt | undefined {
  return attempts.find((attempt) => attempt.outcome.ok && statusAccepted(attempt.outcome.reply.status, [[200, 399]]) && attempt.ms <= 1000);
}

/**
 * The pool-level warning for a pool without `healthCheck`, with the lines to
 * add: the path most of its backends answered on, else `/health`.
 */
export function missingHealthCheckFinding(pool: string, observations: readonly HealthObservation[]): Finding {
  const counts = new Map<string, number>();
  for (const observation of observations) {
    if (observation.kind !== 'guess') continue;
    const found = usableGuess(observation.attempts);
    if (found !== undefined) counts.set(found.path, (counts.get(found.path) ?? 0) + 1);
  }
  const best = [...counts].sort((a, b) => b[1] - a[1])[0];
  const path = best?.[0] ?? '/health';
  const lines = `healthCheck: { path: ${path} }`;
  return {
    check: 'config',
    severity: 'warning',
    message: 'no healthCheck: usher cannot tell a broken backend from a live one; one that answers errors or hangs keeps getting requests (only refused connections take a backend out)',
    fix: best === undefined
      ? `add a health endpoint to the backends, then \`${lines}\` to pools.${pool}`
      : `add \`${lines}\` to pools.${pool} (${best[1]} of ${observations.length} backends answer on ${path})`,
    measured: { suggestedPath: best === undefined ? null : path },
  };
}

/** A connect failure: refused means nothing listens there, the classic "no health endpoint". */
function connectProblem(failure: Failure, where: string, ownPort: boolean): Finding {
  if (failure.code === 'ECONNREFUSED') {
    return {
      check: 'health',
      severity: 'problem',
      message: `no health endpoint: connection refused at ${where}`,
      fix: ownPort ? 'start the health listener on that port, or correct healthCheck.port' : 'start the backend, or correct its address in the config',
      measured: { connected: false, error: failure.code },
    };
  }
  return {
    check: 'health',
    severity: 'problem',
    message: `cannot connect to ${where}: ${failure.message.replace(/^connect:? /, '')}`,
    fix: 'check that the backend runs and that its address (and tls settings) in the config are right',
    measured: { connected: false, error: failure.code ?? failure.message },
  };
}

/** The start of a body for a message: one line, at most 60 characters. */
function excerpt(body: string): string {
  const line = body.replace(/\s+/g, ' ').trim();
  return line.length > 60 ? `${JSON.stringify(line.slice(0, 59))}…` : line === '' ? '' : JSON.stringify(line);
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
