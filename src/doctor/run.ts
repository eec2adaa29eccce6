/**
 * `usher doctor` from plan to report: every pool and every backend examined
 * in parallel (`observe.ts`), each observation judged (`health.ts`,
 * `keep-alive.ts`, `sessions.ts`), the findings grouped by pool and backend.
 */
import type { ConnectionOptions } from 'node:tls';
import { formatHostPort } from '../config/hostport.ts';
import { backendTlsOptions } from '../upstream/connection.ts';
import { summarize, type BackendReport, type CheckName, type DoctorReport, type Finding, type PoolReport } from './findings.ts';
import { healthFinding, missingHealthCheckFinding, type HealthObservation } from './health.ts';
import { connectionFindings, IDLE_MARGIN_MS } from './keep-alive.ts';
import { observeConnect, observeConnection, observeHealth, observeSessions, type Limits, type Reachable } from './observe.ts';
import type { BackendPlan, PoolPlan } from './plan.ts';
import { sessionsFinding } from './sessions.ts';
import { measured } from './units.ts';

/** Options of one run (the command line's). */
export interface DoctorOptions {
  /** Path of the reuse, keep-alive and session requests (`--path`, default `/`). */
  readonly path: string;
  /** Wait for each answer outside health checks (`--timeout`). */
  readonly requestTimeoutMs: number;
  /** Cap on the idle keep-alive wait (`--max-wait`). */
  readonly maxWaitMs: number | undefined;
}

/** Examines `plans` and returns the report. Never rejects on anything a backend does. */
export async function runDoctor(configFile: string, plans: readonly PoolPlan[], options: DoctorOptions): Promise<DoctorReport> {
  const pools = await Promise.all(plans.map((plan) => examinePool(plan, options)));
  return { config: configFile, pools, summary: summarize(pools) };
}

/** The longest idle wait a run can take (for the "this takes up to ..." note): each HTTP/1.1 pool's idle timeout plus the margin, capped. */
export function longestIdleWaitMs(plans: readonly PoolPlan[], maxWaitMs: number | undefined): number {
  let longest = 0;
  for (const plan of plans) {
    if (plan.kind !== 'http1' || plan.backends.length === 0) continue;
    const full = plan.pool.timeouts.idleMs + IDLE_MARGIN_MS;
    longest = Math.max(longest, maxWaitMs === undefined ? full : Math.min(full, maxWaitMs));
  }
  return longest;
}

/** A backend and its TLS options, or why they could not be built (an unreadable CA file). */
type Prepared = { readonly plan: BackendPlan; readonly reachable: Reachable } | { readonly plan: BackendPlan; readonly error: string };

function prepare(plan: BackendPlan, pool: PoolPlan): Prepared {
  let tls: ConnectionOptions | undefined;
  try {
    tls = plan.tls === undefined || pool.kind === 'tcp' ? undefined : backendTlsOptions(plan.target, plan.tls);
  } catch (error) {
    return { plan, error: `cannot set up TLS: ${error instanceof Error ? error.message : String(error)}` };
  }
  const host = pool.pool.healthCheck?.host ?? formatHostPort(plan.target);
  return { plan, reachable: { address: plan.address, endpoint: { host: plan.target.host, port: plan.target.port, tls }, host } };
}

async function examinePool(plan: PoolPlan, options: DoctorOptions): Promise<PoolReport> {
  const limits: Limits = { connectMs: plan.pool.timeouts.connectMs, requestMs: options.requestTimeoutMs, maxWaitMs: options.maxWaitMs };
  const prepared = plan.backends.map((backend) => prepare(backend, plan));
  const reachable = prepared.flatMap((entry) => ('reachable' in entry ? [entry.reachable] : []));
  const runSessions = plan.kind === 'http1' && plan.sessionsSkipped === undefined && reachable.length >= 2;
  const sessions = runSessions ? observeSessions(reachable, options.path, limits) : undefined;
  const healths: HealthObservation[] = [];
  const backends = await Promise.all(
    prepared.map(async (entry): Promise<BackendReport> => {
      const tls = entry.plan.tls !== undefined && plan.kind !== 'tcp';
      if (!('reachable' in entry)) {
        return { address: entry.plan.address, name: entry.plan.name ?? null, tls, findings: [{ check: 'connect', severity: 'problem', message: entry.error, fix: `correct the backend's tls.ca in pools.${plan.name} (a readable PEM file)` }] };
      }
      const findings = await examineBackend(plan, entry.reachable, options, limits, (health) => healths.push(health));
      return { address: entry.plan.address, name: entry.plan.name ?? null, tls, findings };
    }),
  );
  const findings: Finding[] = [];
  if (plan.backends.length === 0) findings.push({ check: 'config', severity: 'warning', message: 'the pool has no backends: every request to it gets 503', fix: `add backends to pools.${plan.name}` });
  else if (plan.pool.healthCheck === undefined) {
    findings.push(
      plan.kind === 'tcp'
        ? { check: 'config', severity: 'warning', message: 'no healthCheck: usher cannot tell a dead backend from a live one', fix: `add \`healthCheck: { type: tcp }\` to pools.${plan.name} (or an http check when the backends speak HTTP)` }
        : missingHealthCheckFinding(plan.name, healths),
    );
  }
  if (plan.kind === 'tcp') findings.push(...skipped(['reuse', 'keep-alive', 'sessions'], 'only tcp and tls-passthrough listeners use this pool: usher forwards bytes and speaks no HTTP to its backends (connect check only)'));
  else if (plan.kind === 'h2c') findings.push(...skipped(['reuse', 'keep-alive', 'sessions'], 'h2c pool: usher keeps one multiplexed HTTP/2 connection per backend, so HTTP/1.1 keep-alive does not apply (health only)'));
  else if (plan.sessionsSkipped !== undefined) findings.push(...skipped(['sessions'], plan.sessionsSkipped));
  else if (sessions !== undefined) findings.push(sessionsFinding(await sessions, plan.name, options.path));
  else if (plan.backends.length >= 2) findings.push(...skipped(['sessions'], 'fewer than two backends could be reached'));
  return { name: plan.name, kind: plan.kind, idleTimeoutMs: plan.pool.timeouts.idleMs, sticky: plan.pool.sticky !== undefined, findings, backends };
}

/** The findings of one backend, its checks run in parallel. `onHealth` collects health observations for the pool's own finding. */
async function examineBackend(plan: PoolPlan, backend: Reachable, options: DoctorOptions, limits: Limits, onHealth: (health: HealthObservation) => void): Promise<Finding[]> {
  const check = plan.pool.healthCheck;
  if (plan.kind === 'tcp') {
    const [connect, health] = await Promise.all([observeConnect(backend, limits), check === undefined ? undefined : observeHealth(backend, check)]);
    const findings: Finding[] = [];
    if (connect.ok) findings.push({ check: 'connect', severity: 'ok', message: `accepts a TCP connection in ${measured(connect.ms)}`, measured: { connectMs: Math.round(connect.ms * 10) / 10 } });
    else findings.push({ check: 'connect', severity: 'problem', message: `cannot connect to ${backend.address}: ${connect.message.replace(/^connect:? /, '')}`, fix: 'start the backend, or correct its address in the config', measured: { connected: false, error: connect.code ?? connect.message } });
    if (health !== undefined) findings.unshift(healthFinding(health, plan.name));
    return findings;
  }
  const [health, connection] = await Promise.all([
    observeHealth(backend, check),
    plan.kind === 'http1' ? observeConnection(backend, options.path, plan.pool.timeouts.idleMs, limits) : undefined,
  ]);
  onHealth(health);
  const findings: Finding[] = [healthFinding(health, plan.name)];
  if (connection !== undefined) {
    findings.push(
      ...connectionFindings(connection, {
        pool: plan.name,
        path: options.path,
        idleMs: plan.pool.timeouts.idleMs,
        tls: backend.endpoint.tls !== undefined,
        connectReported: healthReportedConnect(health, backend),
        address: backend.address,
      }),
    );
  }
  return findings;
}

/** Whether the health finding already says the backend's own address refuses connections. */
function healthReportedConnect(health: HealthObservation, backend: Reachable): boolean {
  if (health.where !== formatHostPort(backend.endpoint)) return false;
  switch (health.kind) {
    case 'http':
      return !health.attempt.outcome.ok && health.attempt.outcome.failure.kind === 'connect';
    case 'guess': {
      const first = health.attempts[0];
      return first !== undefined && !first.outcome.ok && first.outcome.failure.kind === 'connect';
    }
    case 'tcp':
      return !health.connect.ok;
    default:
      return false;
  }
}

function skipped(checks: readonly CheckName[], message: string): Finding[] {
  return checks.map((check) => ({ check, severity: 'skip', message }));
}
