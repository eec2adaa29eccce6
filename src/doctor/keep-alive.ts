/**
 * Checks 2 and 4, judged from one connection (no I/O here; `observe.ts`
 * holds the connection): whether the backend keeps connections open between
 * responses at all ("reuse"), and how long it keeps an idle one open compared
 * with how long usher keeps it ("keep-alive").
 *
 * The second is the classic source of sporadic 502s behind load balancers: a
 * backend that closes an idle connection just as the balancer sends a request
 * on it. usher keeps an idle upstream connection for the pool's
 * `timeouts.idle`, or less when the backend advertises `Keep-Alive: timeout=N`
 * (`retireAfterMs`: N minus a margin). So a backend is safe when it closes no
 * sooner than it advertises, or, advertising nothing, no sooner than usher's
 * idle timeout.
 */
import { retireAfterMs } from '../upstream/connection.ts';
import type { Failure, IdleResult, Reply } from './client.ts';
import type { Finding } from './findings.ts';
import { configured, idleBelow, measured, numericLiteral } from './units.ts';

/** How far past the horizon the doctor keeps waiting for the backend to close, so a close at the horizon is seen. */
export const IDLE_MARGIN_MS = 1000;

/** What one connection to a backend showed. */
export type ConnectionObservation =
  /** The connect failed. */
  | { readonly kind: 'unreachable'; readonly failure: Failure }
  /** The first GET got no usable response. */
  | { readonly kind: 'no-answer'; readonly failure: Failure }
  /** The first response said the connection ends with it: no second request was sent. */
  | { readonly kind: 'one-request'; readonly first: Reply }
  /** The second GET on the same connection got no response. */
  | { readonly kind: 'second-failed'; readonly first: Reply; readonly failure: Failure }
  /** Two responses; then the idle wait, unless the second response ended the connection. */
  | {
      readonly kind: 'two-requests';
      readonly first: Reply;
      readonly second: Reply;
      readonly idle: IdleResult | undefined;
      /** The wait planned by {@link idleWaitPlan}. */
      readonly plan: IdleWaitPlan;
    };

/** How long to hold the idle connection. */
export interface IdleWaitPlan {
  /** How long to wait, in ms. */
  readonly waitMs: number;
  /** Up to when a close matters: usher's idle timeout, or the advertised timeout when shorter. */
  readonly horizonMs: number;
  /** `--max-wait` cut the wait short of horizon + margin. */
  readonly capped: boolean;
}

/**
 * The idle wait for a pool with idle timeout `idleMs` and a backend that
 * advertised `advertisedSeconds` (-1: nothing): until the sooner of the two,
 * plus {@link IDLE_MARGIN_MS}, at most `maxWaitMs`.
 */
export function idleWaitPlan(idleMs: number, advertisedSeconds: number, maxWaitMs: number | undefined): IdleWaitPlan {
  const horizonMs = advertisedSeconds >= 0 ? Math.min(idleMs, advertisedSeconds * 1000) : idleMs;
  const full = horizonMs + IDLE_MARGIN_MS;
  if (maxWaitMs !== undefined && maxWaitMs < full) return { waitMs: maxWaitMs, horizonMs, capped: true };
  return { waitMs: full, horizonMs, capped: false };
}

/** The advertised `Keep-Alive: timeout` of a connection: the latest response's, else the first's (-1: none). */
export function advertisedSeconds(first: Reply, second?: Reply): number {
  if (second !== undefined && second.keepAliveTimeoutSeconds >= 0) return second.keepAliveTimeoutSeconds;
  return first.keepAliveTimeoutSeconds;
}

/**
 * A close measured at `t` counts as "at `reference`" when within this much
 * before it: the backend's timer starts when it has written the response,
 * a little before the doctor has read it, and a busy machine widens that.
 */
function tolerance(referenceMs: number): number {
  return Math.min(250, referenceMs * 0.1);
}

/** Context of one backend for the messages and fixes. */
export interface ConnectionContext {
  readonly pool: string;
  readonly path: string;
  readonly idleMs: number;
  readonly tls: boolean;
  /** The health check already reported that this address refuses connections: do not say it twice. */
  readonly connectReported: boolean;
  readonly address: string;
}

/** The findings for reuse and keep-alive (or why they could not run). */
export function connectionFindings(observation: ConnectionObservation, context: ConnectionContext): Finding[] {
  const request = `GET ${context.path}`;
  switch (observation.kind) {
    case 'unreachable': {
      const why = `cannot connect (${observation.failure.message.replace(/^connect:? /, '')})`;
      const skips = skipBoth(why);
      if (context.connectReported) return skips;
      return [
        { check: 'connect', severity: 'problem', message: `cannot connect to ${context.address}: ${observation.failure.message.replace(/^connect:? /, '')}`, fix: 'start the backend, or correct its address (and tls settings) in the config', measured: { connected: false, error: observation.failure.code ?? observation.failure.message } },
        ...skips,
      ];
    }
    case 'no-answer': {
      const { failure } = observation;
      const fix =
        failure.kind === 'timeout'
          ? `find why the backend does not answer ${request}, or point the doctor at a cheap path with --path`
          : failure.kind === 'bad-response'
            ? 'usher answers 502 for such a response: make the backend send valid HTTP/1.1'
            : 'the backend dropped the connection without an answer: see its logs';
      return [{ check: 'request', severity: 'problem', message: `${request}: ${failure.message}`, fix, measured: { error: failure.message } }, ...skipBoth(`no answer to ${request}`)];
    }
    case 'one-request':
      return [closesAfterResponse(observation.first, context, 'every response'), skip(`the backend closes the connection after every response (see reuse)`)];
    case 'second-failed':
      return [
        {
          check: 'reuse',
          severity: 'problem',
          message: `closes the connection right after each response: it answered ${request}, then a second request on the same connection got no answer (${observation.failure.message})`,
          fix: reuseFix(context),
          measured: { requestsPerConnection: 1, error: observation.failure.message },
        },
        skip('the backend closes the connection after every response (see reuse)'),
      ];
    case 'two-requests': {
      const { first, second, idle, plan } = observation;
      if (!second.keepAlive) return [closesAfterResponse(second, context, 'its second response'), skip('the backend closes the connection after its second response (see reuse)')];
      const advertised = advertisedSeconds(first, second);
      if (advertised === 0) {
        return [
          {
            check: 'reuse',
            severity: 'problem',
            message: 'advertises Keep-Alive: timeout=0, so usher closes each connection after one request: every request pays a new connection',
            fix: `raise the backend's keep-alive timeout to at least a few seconds (Node: a server.keepAliveTimeout under 1000 advertises timeout=0; set it to ${numericLiteral(context.idleMs + 5000)})`,
            measured: { advertisedTimeoutSeconds: 0 },
          },
          skip('usher does not keep connections the backend advertises timeout=0 for (see reuse)'),
        ];
      }
      const reuse: Finding = { check: 'reuse', severity: 'ok', message: `served 2 requests on one connection`, measured: { requestsPerConnection: 2 } };
      return [reuse, idle === undefined ? skip('the connection closed with the second response') : keepAliveFinding(idle, plan, advertised, context)];
    }
    default: {
      const never: never = observation;
      throw new Error(`unknown connection observation ${String(never)}`);
    }
  }
}

/** Check 2's verdict on the idle wait. */
function keepAliveFinding(idle: IdleResult, plan: IdleWaitPlan, advertised: number, context: ConnectionContext): Finding {
  const { idleMs, pool } = context;
  const advertisedMs = advertised > 0 ? advertised * 1000 : undefined;
  const usherKeepsMs = advertisedMs === undefined ? idleMs : Math.min(idleMs, retireAfterMs(advertised));
  const header = advertisedMs === undefined ? 'no Keep-Alive header' : `Keep-Alive: timeout=${advertised}`;
  const usherSays = advertisedMs === undefined || usherKeepsMs === idleMs ? `usher keeps idle connections ${configured(idleMs)} (pools.${pool}.timeouts.idle)` : `usher retires idle connections to it after ${measured(usherKeepsMs)}, before the advertised ${advertised}s`;
  const numbers = { advertisedTimeoutSeconds: advertisedMs === undefined ? null : advertised, usherIdleMs: idleMs, usherKeepsMs: Math.round(usherKeepsMs) };
  const raise = `raise the backend's keep-alive timeout above ${configured(idleMs)} (Node: server.keepAliveTimeout = ${numericLiteral(idleMs + 5000)}; nginx: keepalive_timeout ${Math.ceil((idleMs + 5000) / 1000)}s; gunicorn: --keep-alive ${Math.ceil((idleMs + 5000) / 1000)})`;
  if (!idle.closed) {
    if (plan.capped) {
      return {
        check: 'keep-alive',
        severity: 'warning',
        message: `still open after ${measured(idle.waitedMs)} idle (--max-wait), not measured further; ${usherSays}`,
        fix: `run again with --max-wait ${configured(plan.horizonMs + IDLE_MARGIN_MS)} (or without it) to measure it`,
        measured: { ...numbers, closed: false, waitedMs: Math.round(idle.waitedMs) },
      };
    }
    return {
      check: 'keep-alive',
      severity: 'ok',
      message: `kept the idle connection open ${measured(idle.waitedMs)}, longer than usher keeps it: ${usherSays}${advertisedMs === undefined ? '' : `; the backend advertises ${header}`}`,
      measured: { ...numbers, closed: false, waitedMs: Math.round(idle.waitedMs) },
    };
  }
  const t = idle.afterMs;
  const closedNumbers = { ...numbers, closed: true, closedAfterMs: Math.round(t) };
  if (advertisedMs !== undefined && t >= advertisedMs - tolerance(advertisedMs)) {
    return {
      check: 'keep-alive',
      severity: 'ok',
      message: `closed the idle connection after ${measured(t)}, as its ${header} says; ${usherSays}`,
      measured: closedNumbers,
    };
  }
  if (t >= idleMs - tolerance(idleMs)) {
    if (advertisedMs !== undefined) {
      return {
        check: 'keep-alive',
        severity: 'warning',
        message: `closed the idle connection after ${measured(t)}, sooner than its ${header} says; usher lets it go after ${configured(idleMs)} anyway, but clients that trust the header will meet closed connections`,
        fix: 'make the backend advertise the keep-alive timeout it really has',
        measured: closedNumbers,
      };
    }
    return {
      check: 'keep-alive',
      severity: 'warning',
      message: `closed the idle connection after ${measured(t)}, just after usher's idle timeout (${configured(idleMs)}): a request usher sends at the end of that window can meet the close`,
      fix: `${raise}, a few seconds more than usher's`,
      measured: closedNumbers,
    };
  }
  const lower = `or set \`timeouts: { idle: ${idleBelow(t)} }\` in pools.${pool} (below the measured ${measured(t)})`;
  if (advertisedMs !== undefined) {
    return {
      check: 'keep-alive',
      severity: 'problem',
      message: `closed the idle connection after ${measured(t)}, sooner than its ${header} says: usher keeps it up to ${measured(usherKeepsMs)} and may send a request just as the backend closes it (a 502, or a replay)`,
      fix: `make the backend keep idle connections as long as it advertises; ${lower}`,
      measured: closedNumbers,
    };
  }
  return {
    check: 'keep-alive',
    severity: 'problem',
    message: `closed the idle connection after ${measured(t)} without advertising Keep-Alive: timeout; ${usherSays} and may send a request on one the backend is closing (a 502, or a replay)`,
    fix: `${raise}, ${lower}`,
    measured: closedNumbers,
  };
}

/** Check 4's problem: the response itself says the connection ends with it. */
function closesAfterResponse(reply: Reply, context: ConnectionContext, which: string): Finding {
  const request = `GET ${context.path}`;
  let reason: string;
  let fix: string;
  if (reply.connectionClose) {
    reason = `answers ${request} with Connection: close`;
    fix = reuseFix(context);
  } else if (reply.untilClose) {
    reason = `sends the body of ${request} without Content-Length or chunked coding, so only closing the connection can end it`;
    fix = 'send Content-Length (or chunked transfer coding) with every response, then keep-alive works';
  } else if (reply.minorVersion === 0) {
    reason = `answers ${request} with HTTP/1.0 and no Connection: keep-alive`;
    fix = 'make the backend answer HTTP/1.1 (or HTTP/1.0 with Connection: keep-alive)';
  } else {
    reason = `ends the connection with ${which}`;
    fix = reuseFix(context);
  }
  return {
    check: 'reuse',
    severity: 'problem',
    message: `closes the connection after ${which}: it ${reason}; every request then pays a new TCP${context.tls ? ' and TLS' : ''} connection`,
    fix,
    measured: { requestsPerConnection: which === 'every response' ? 1 : 2, connectionClose: reply.connectionClose, httpVersion: `1.${reply.minorVersion}` },
  };
}

function reuseFix(context: ConnectionContext): string {
  return `enable keep-alive on the backend: stop sending Connection: close, keep its keep-alive timeout above ${configured(context.idleMs)} (Node: server.keepAliveTimeout = ${numericLiteral(context.idleMs + 5000)})`;
}

function skip(why: string): Finding {
  return { check: 'keep-alive', severity: 'skip', message: why };
}

function skipBoth(why: string): Finding[] {
  return [
    { check: 'reuse', severity: 'skip', message: why },
    { check: 'keep-alive', severity: 'skip', message: why },
  ];
}
