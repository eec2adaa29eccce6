/**
 * The doctor's requests: what each check needs to see, gathered over real
 * connections (`client.ts`) and returned as plain observations for the pure
 * judges (`health.ts`, `keep-alive.ts`, `sessions.ts`). Only GET requests,
 * never a body, never the admin API: the doctor changes no state. Every wait
 * is bounded, every socket closed, nothing rejects.
 */
import type { HealthCheckConfig } from '../config/types.ts';
import { formatHostPort } from '../config/hostport.ts';
import { BackendConnection, type Endpoint, type Outcome } from './client.ts';
import { healthWaitMs, type HealthAttempt, type HealthObservation } from './health.ts';
import { advertisedSeconds, idleWaitPlan, type ConnectionObservation } from './keep-alive.ts';
import { GUESSED_HEALTH, GUESSED_HEALTH_PATHS } from './plan.ts';
import { cookieHeader, setCookies, type SessionsObservation } from './sessions.ts';

/** A backend ready to be spoken to. */
export interface Reachable {
  readonly address: string;
  readonly endpoint: Endpoint;
  /** Host header of the doctor's requests: the pool's `healthCheck.host`, else the backend's address, as usher's probe sends. */
  readonly host: string;
}

/** Limits of one run. */
export interface Limits {
  /** Connect timeout (the pool's `timeouts.connect`). */
  readonly connectMs: number;
  /** Wait for each answer outside health checks (`--timeout`). */
  readonly requestMs: number;
  /** Cap on the idle wait (`--max-wait`), or undefined. */
  readonly maxWaitMs: number | undefined;
}

/** Check 1: the pool's health check as configured, or the guessed paths when there is none. */
export async function observeHealth(backend: Reachable, check: HealthCheckConfig | undefined): Promise<HealthObservation> {
  const { endpoint } = backend;
  if (check === undefined) {
    const attempts: HealthAttempt[] = [];
    const where = formatHostPort(endpoint);
    for (const path of GUESSED_HEALTH_PATHS) {
      const attempt = await timedGet(endpoint, path, backend.host, healthWaitMs(GUESSED_HEALTH.timeoutMs), false);
      attempts.push(attempt);
      // Only a missing endpoint is worth a second guess; a refused connect or a real answer settles it.
      if (!attempt.outcome.ok || attempt.outcome.reply.status !== 404) break;
    }
    return { kind: 'guess', where, attempts };
  }
  const target: Endpoint = { ...endpoint, port: check.port ?? endpoint.port };
  const where = formatHostPort(target);
  if (check.type === 'tcp') {
    const connection = await BackendConnection.open(target, healthWaitMs(check.timeoutMs));
    if (!(connection instanceof BackendConnection)) return { kind: 'tcp', check, where, connect: { ok: false, failure: connection } };
    connection.close();
    return { kind: 'tcp', check, where, connect: { ok: true, ms: connection.connectMs } };
  }
  const attempt = await timedGet(target, check.path, backend.host, healthWaitMs(check.timeoutMs), check.expectBody !== undefined);
  return { kind: 'http', check, where, attempt };
}

/**
 * One GET on a fresh connection closed afterwards (`Connection: close`, as
 * usher's probe sends), timed from the connect as the probe times it: to the
 * head, or to the end of the body when the body is judged.
 */
async function timedGet(endpoint: Endpoint, path: string, host: string, totalMs: number, toBodyEnd: boolean): Promise<HealthAttempt> {
  const started = performance.now();
  const connection = await BackendConnection.open(endpoint, totalMs);
  if (!(connection instanceof BackendConnection)) {
    return { path, outcome: { ok: false, failure: connection }, ms: connection.elapsedMs, waitedMs: performance.now() - started };
  }
  try {
    const outcome = await connection.get(path, host, { connection: 'close' }, Math.max(0, totalMs - connection.connectMs));
    const requestMs = outcome.ok ? (toBodyEnd ? outcome.reply.doneMs : outcome.reply.headMs) : outcome.failure.elapsedMs;
    return { path, outcome, ms: connection.connectMs + requestMs, waitedMs: performance.now() - started };
  } finally {
    connection.close();
  }
}

/**
 * Checks 2 and 4 on one kept-alive connection: a GET, a second GET on the
 * same connection, then the connection held idle until the backend closes
 * it or the planned wait ends.
 */
export async function observeConnection(backend: Reachable, path: string, idleMs: number, limits: Limits): Promise<ConnectionObservation> {
  const connection = await BackendConnection.open(backend.endpoint, limits.connectMs);
  if (!(connection instanceof BackendConnection)) return { kind: 'unreachable', failure: connection };
  try {
    const first = await connection.get(path, backend.host, {}, limits.requestMs);
    if (!first.ok) return { kind: 'no-answer', failure: first.failure };
    if (!first.reply.keepAlive) return { kind: 'one-request', first: first.reply };
    const second = await connection.get(path, backend.host, {}, limits.requestMs);
    if (!second.ok) return { kind: 'second-failed', first: first.reply, failure: second.failure };
    const plan = idleWaitPlan(idleMs, advertisedSeconds(first.reply, second.reply), limits.maxWaitMs);
    const idle = second.reply.keepAlive ? await connection.waitForClose(plan.waitMs) : undefined;
    return { kind: 'two-requests', first: first.reply, second: second.reply, idle, plan };
  } finally {
    connection.close();
  }
}

/**
 * Check 3: a GET to the first backend that answers (A); when it sets
 * cookies, the same GET with them to A again and to every other backend, in
 * parallel. Each on its own short-lived connection.
 */
export async function observeSessions(backends: readonly Reachable[], path: string, limits: Limits): Promise<SessionsObservation> {
  const tried: { address: string; message: string }[] = [];
  for (const [index, origin] of backends.entries()) {
    const first = await singleGet(origin, path, {}, limits);
    if (!first.ok) {
      tried.push({ address: origin.address, message: first.failure.message });
      continue;
    }
    const cookies = setCookies(first.reply).filter((cookie) => !cookie.deletes);
    if (cookies.length === 0) return { kind: 'observed', origin: origin.address, first: first.reply, control: undefined, others: [] };
    const headers = { cookie: cookieHeader(cookies) };
    const others = backends.filter((_, i) => i !== index);
    const [control, ...answers] = await Promise.all([origin, ...others].map((backend) => singleGet(backend, path, headers, limits)));
    return {
      kind: 'observed',
      origin: origin.address,
      first: first.reply,
      control,
      others: others.map((backend, i) => ({ address: backend.address, outcome: answers[i]! })),
    };
  }
  return { kind: 'no-answer', tried };
}

/** A check for pools only tcp and tls-passthrough listeners use: does the backend accept a TCP connection? */
export async function observeConnect(backend: Reachable, limits: Limits): Promise<{ readonly ok: true; readonly ms: number } | { readonly ok: false; readonly message: string; readonly code: string | undefined }> {
  const connection = await BackendConnection.open({ host: backend.endpoint.host, port: backend.endpoint.port }, limits.connectMs);
  if (!(connection instanceof BackendConnection)) return { ok: false, message: connection.message, code: connection.code };
  connection.close();
  return { ok: true, ms: connection.connectMs };
}

async function singleGet(backend: Reachable, path: string, headers: Readonly<Record<string, string>>, limits: Limits): Promise<Outcome> {
  const connection = await BackendConnection.open(backend.endpoint, limits.connectMs);
  if (!(connection instanceof BackendConnection)) return { ok: false, failure: connection };
  try {
    return await connection.get(path, backend.host, { ...headers, connection: 'close' }, limits.requestMs);
  } finally {
    connection.close();
  }
}
