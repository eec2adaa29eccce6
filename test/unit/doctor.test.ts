/**
 * The pure parts of `usher doctor`: the plan from a config, the verdicts of
 * each check on made-up observations (thresholds, tolerances, wording), cookie
 * parsing, and the text layout. The network side is in
 * test/integration/cli-doctor.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import type { HealthCheckConfig, UsherConfig } from '../../src/config/types.ts';
import type { Failure, Reply } from '../../src/doctor/client.ts';
import type { DoctorReport } from '../../src/doctor/findings.ts';
import { summarize } from '../../src/doctor/findings.ts';
import { formatReport, reportJson } from '../../src/doctor/format.ts';
import { healthFinding, healthWaitMs, missingHealthCheckFinding, type HealthAttempt } from '../../src/doctor/health.ts';
import { connectionFindings, idleWaitPlan, type ConnectionContext, type ConnectionObservation } from '../../src/doctor/keep-alive.ts';
import { planPools, validRequestPath } from '../../src/doctor/plan.ts';
import { cookieHeader, parseSetCookie, sessionsFinding, setCookies } from '../../src/doctor/sessions.ts';
import { idleBelow, measured, numericLiteral } from '../../src/doctor/units.ts';

function reply(overrides: Partial<Reply> = {}): Reply {
  return {
    status: 200,
    reason: 'OK',
    minorVersion: 1,
    headers: [],
    keepAlive: true,
    connectionClose: false,
    untilClose: false,
    keepAliveTimeoutSeconds: -1,
    body: '',
    headMs: 1,
    doneMs: 1,
    ...overrides,
  };
}

function config(yaml: string): UsherConfig {
  const result = parseConfig(yaml, 'usher.yaml', {});
  assert.ok(result.ok, result.ok ? '' : JSON.stringify(result.errors));
  return result.config;
}

const context: ConnectionContext = { pool: 'web', path: '/', idleMs: 2000, tls: false, connectReported: false, address: '127.0.0.1:3001' };

/** Two keep-alive replies, the second advertising `advertised` seconds, then the idle result. */
function measuredIdle(idle: { closed: true; afterMs: number } | { closed: false; waitedMs: number }, advertised = -1, idleMs = 2000, maxWaitMs?: number): ConnectionObservation {
  const second = reply({ keepAliveTimeoutSeconds: advertised });
  return { kind: 'two-requests', first: second, second, idle, plan: idleWaitPlan(idleMs, advertised, maxWaitMs) };
}

function keepAlive(observation: ConnectionObservation, idleMs = 2000): { severity: string; message: string; fix?: string | undefined } {
  const finding = connectionFindings(observation, { ...context, idleMs }).find((f) => f.check === 'keep-alive');
  assert.ok(finding);
  return finding;
}

test('idleWaitPlan: until usher\'s idle timeout or the advertised one, plus 1 s, capped by --max-wait', () => {
  assert.deepEqual(idleWaitPlan(60_000, -1, undefined), { waitMs: 61_000, horizonMs: 60_000, capped: false });
  assert.deepEqual(idleWaitPlan(60_000, 5, undefined), { waitMs: 6000, horizonMs: 5000, capped: false });
  assert.deepEqual(idleWaitPlan(2000, 10, undefined), { waitMs: 3000, horizonMs: 2000, capped: false });
  assert.deepEqual(idleWaitPlan(60_000, -1, 10_000), { waitMs: 10_000, horizonMs: 60_000, capped: true });
  assert.deepEqual(idleWaitPlan(2000, -1, 3000), { waitMs: 3000, horizonMs: 2000, capped: false });
});

test('keep-alive verdicts', () => {
  // Closes before usher's idle timeout without advertising: a problem naming the measured time and both fixes.
  const silent = keepAlive(measuredIdle({ closed: true, afterMs: 300 }));
  assert.equal(silent.severity, 'problem');
  assert.match(silent.message, /^closed the idle connection after 300ms without advertising Keep-Alive: timeout; usher keeps idle connections 2s \(pools\.web\.timeouts\.idle\)/);
  assert.match(silent.fix!, /server\.keepAliveTimeout = 7_000/);
  assert.match(silent.fix!, /`timeouts: \{ idle: 200ms \}` in pools\.web \(below the measured 300ms\)/);
  // Advertises 1 s and keeps it: fine, usher retires the connection at 500 ms.
  const honest = keepAlive(measuredIdle({ closed: true, afterMs: 1500 }, 1));
  assert.equal(honest.severity, 'ok');
  assert.match(honest.message, /as its Keep-Alive: timeout=1 says; usher retires idle connections to it after 500ms/);
  // Just under the advertised time (the backend's timer starts before the doctor reads the response): still fine.
  assert.equal(keepAlive(measuredIdle({ closed: true, afterMs: 950 }, 1)).severity, 'ok');
  // Advertises 5 s, closes at 2 s with usher's idle at 60 s: a problem.
  const liar = keepAlive(measuredIdle({ closed: true, afterMs: 2000 }, 5, 60_000), 60_000);
  assert.equal(liar.severity, 'problem');
  assert.match(liar.message, /sooner than its Keep-Alive: timeout=5 says: usher keeps it up to 3\.0s/);
  // Advertises 90 s but closes at usher's 60 s: usher is not affected, the header is still wrong.
  assert.equal(keepAlive(measuredIdle({ closed: true, afterMs: 60_500 }, 90, 60_000), 60_000).severity, 'warning');
  // No header, closes within the margin after usher's idle timeout: a race, a warning.
  const close = keepAlive(measuredIdle({ closed: true, afterMs: 2100 }));
  assert.equal(close.severity, 'warning');
  assert.match(close.message, /just after usher's idle timeout \(2s\)/);
  // Still open after the whole wait: fine. Cut short by --max-wait: not measured, a warning.
  assert.equal(keepAlive(measuredIdle({ closed: false, waitedMs: 3000 })).severity, 'ok');
  const capped = keepAlive(measuredIdle({ closed: false, waitedMs: 500 }, -1, 60_000, 500), 60_000);
  assert.equal(capped.severity, 'warning');
  assert.match(capped.fix!, /--max-wait 1m1s/);
});

test('reuse verdicts: what ends a connection with the response', () => {
  const findings = (observation: ConnectionObservation) => connectionFindings(observation, context).map((f) => [f.check, f.severity, f.message] as const);
  const [close] = findings({ kind: 'one-request', first: reply({ keepAlive: false, connectionClose: true }) });
  assert.deepEqual(close?.slice(0, 2), ['reuse', 'problem']);
  assert.match(close![2], /answers GET \/ with Connection: close/);
  assert.match(findings({ kind: 'one-request', first: reply({ keepAlive: false, minorVersion: 0 }) })[0]![2], /HTTP\/1\.0 and no Connection: keep-alive/);
  assert.match(findings({ kind: 'one-request', first: reply({ keepAlive: false, untilClose: true }) })[0]![2], /without Content-Length or chunked coding/);
  assert.match(
    connectionFindings({ kind: 'one-request', first: reply({ keepAlive: false, connectionClose: true }) }, { ...context, tls: true })[0]!.message,
    /a new TCP and TLS connection/,
  );
  const zero = findings(measuredIdle({ closed: true, afterMs: 5 }, 0));
  assert.deepEqual(zero.map(([check, severity]) => [check, severity]), [['reuse', 'problem'], ['keep-alive', 'skip']]);
  assert.match(zero[0]![2], /Keep-Alive: timeout=0, so usher closes each connection after one request/);

  const refused: Failure = { kind: 'connect', message: 'connect ECONNREFUSED', code: 'ECONNREFUSED', elapsedMs: 1 };
  assert.deepEqual(
    findings({ kind: 'unreachable', failure: refused }).map(([check, severity]) => [check, severity]),
    [['connect', 'problem'], ['reuse', 'skip'], ['keep-alive', 'skip']],
  );
  // Said once: when the health check already reported the refused connect, only the skips remain.
  assert.deepEqual(connectionFindings({ kind: 'unreachable', failure: refused }, { ...context, connectReported: true }).map((f) => f.severity), ['skip', 'skip']);
});

const check: HealthCheckConfig = { type: 'http', path: '/health', intervalMs: 2000, fastIntervalMs: 500, timeoutMs: 1000, rise: 2, fall: 3, expectStatus: [[200, 399]] };

function attempt(ms: number, overrides: Partial<Reply> = {}): HealthAttempt {
  return { path: '/health', outcome: { ok: true, reply: reply(overrides) }, ms, waitedMs: ms };
}

test('health verdicts follow the pool\'s healthCheck as usher\'s probe does', () => {
  const judge = (a: HealthAttempt, c: HealthCheckConfig = check) => healthFinding({ kind: 'http', check: c, where: '127.0.0.1:3001', attempt: a }, 'web');
  assert.equal(judge(attempt(3)).severity, 'ok');
  assert.match(judge(attempt(3, { status: 404, reason: 'Not Found' })).message, /^no health endpoint: GET \/health answered 404/);
  assert.equal(judge(attempt(3, { status: 404 }), { ...check, expectStatus: [[200, 404]] }).severity, 'ok', '404 accepted when expectStatus says so');
  assert.match(judge(attempt(3, { status: 503, reason: 'Service Unavailable', body: 'db\n down' })).message, /answered 503 Service Unavailable, not in 200-399 \(body: "db down"\)/);
  assert.match(judge(attempt(1200)).message, /answered 200 OK in 1\.2s, slower than the check's 1s timeout/);
  assert.equal(judge(attempt(600)).severity, 'warning', 'more than half the timeout');
  assert.match(judge(attempt(3, { body: 'starting' }), { ...check, expectBody: 'ready' }).message, /body does not contain "ready"/);
  assert.equal(judge(attempt(3, { body: 'status: ready' }), { ...check, expectBody: '~read[y]' }).severity, 'ok');
  const timeout = judge({ path: '/health', outcome: { ok: false, failure: { kind: 'timeout', message: 'no response head within 1000 ms', elapsedMs: 2000 } }, ms: 2000, waitedMs: 2000 });
  assert.match(timeout.message, /no answer within 2\.0s \(the check's timeout is 1s\)/);
  assert.equal(healthWaitMs(1000), 2000);
  assert.equal(healthWaitMs(300), 1300);
  assert.equal(healthWaitMs(5000), 10_000);
});

test('no healthCheck: the warning suggests the path the backends answer on', () => {
  const notFound = attempt(2, { status: 404 });
  const found = { ...attempt(2), path: '/healthz' };
  const guess = (attempts: HealthAttempt[]) => ({ kind: 'guess' as const, where: '127.0.0.1:3001', attempts });
  const finding = missingHealthCheckFinding('web', [guess([notFound, found]), guess([notFound, found])]);
  assert.equal(finding.severity, 'warning');
  assert.match(finding.fix!, /^add `healthCheck: \{ path: \/healthz \}` to pools\.web \(2 of 2 backends answer on \/healthz\)$/);
  assert.match(missingHealthCheckFinding('web', [guess([notFound])]).fix!, /^add a health endpoint to the backends, then `healthCheck: \{ path: \/health \}`/);
  assert.equal(healthFinding(guess([notFound]), 'web').severity, 'warning');
  assert.equal(healthFinding(guess([notFound, found]), 'web').severity, 'ok');
});

test('cookies: Set-Cookie parsing, deletions, the Cookie header sent back', () => {
  assert.deepEqual(parseSetCookie('sid=abc; Path=/; HttpOnly'), { name: 'sid', value: 'abc', deletes: false });
  assert.deepEqual(parseSetCookie('q="a b"'), { name: 'q', value: 'a b', deletes: false });
  assert.equal(parseSetCookie('sid=; Max-Age=0')?.deletes, true);
  assert.equal(parseSetCookie('sid=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT')?.deletes, true);
  assert.equal(parseSetCookie('sid=x; Expires=Fri, 01 Jan 2100 00:00:00 GMT')?.deletes, false);
  assert.equal(parseSetCookie('novalue'), undefined);
  assert.equal(parseSetCookie('=x'), undefined);
  const cookies = setCookies(reply({ headers: [['set-cookie', 'a=1'], ['content-type', 'text/plain'], ['set-cookie', 'b=2; Path=/'], ['set-cookie', 'a=3']] }));
  assert.deepEqual(cookies.map((c) => `${c.name}=${c.value}`), ['a=3', 'b=2']);
  assert.equal(cookieHeader(cookies), 'a=3; b=2');
});

test('sessions verdicts', () => {
  const setsSid = reply({ headers: [['set-cookie', 'sid=aaa; Path=/']] });
  const observed = (control: Reply, other: Reply) => sessionsFinding({ kind: 'observed', origin: 'A', first: setsSid, control: { ok: true, reply: control }, others: [{ address: 'B', outcome: { ok: true, reply: other } }] }, 'web', '/');
  const replaced = observed(reply(), reply({ headers: [['set-cookie', 'sid=bbb']] }));
  assert.equal(replaced.severity, 'problem');
  assert.equal(replaced.message, 'backends set session cookie sid that another backend does not accept: A set it, B replaced sid; a client moved to another backend loses its session');
  assert.doesNotMatch(JSON.stringify(replaced), /aaa|bbb/, 'cookie values are never shown');
  assert.equal(observed(reply(), reply()).severity, 'ok');
  assert.equal(observed(reply(), reply({ headers: [['set-cookie', 'sid=aaa']] })).severity, 'ok', 'the same value set again is accepted');
  assert.match(observed(reply(), reply({ status: 401 })).message, /B answered 401/);
  assert.match(observed(reply(), reply({ status: 302, headers: [['location', '/login']] })).message, /B redirected \(302 to \/login\)/);
  // A itself replaces it every time: a rotating token, not a session.
  const rotating = observed(reply({ headers: [['set-cookie', 'sid=ccc']] }), reply({ headers: [['set-cookie', 'sid=bbb']] }));
  assert.equal(rotating.severity, 'ok');
  assert.match(rotating.message, /change.* on every response, even from A itself/);
  const none = sessionsFinding({ kind: 'observed', origin: 'A', first: reply(), control: undefined, others: [] }, 'web', '/app');
  assert.equal(none.severity, 'ok');
  assert.match(none.message, /^GET \/app on A sets no cookie/);
  assert.equal(sessionsFinding({ kind: 'no-answer', tried: [{ address: 'A', message: 'connect ECONNREFUSED' }] }, 'web', '/').severity, 'skip');
});

test('plan: pools by name, how usher talks to each, which checks apply', () => {
  const cfg = config(`
listeners:
  - name: web
    bind: 127.0.0.1:8080
    routes:
      - match: { pathPrefix: /grpc/ }
        pool: grpc
      - match: { pathPrefix: /both/ }
        pool: both
      - pool: web
  - name: db
    protocol: tcp
    bind: 127.0.0.1:5432
    routes:
      - pool: db
  - name: both-tcp
    protocol: tcp
    bind: 127.0.0.1:5433
    routes:
      - pool: both
pools:
  web:
    sticky: { cookie: lb }
    backends: [{ address: 127.0.0.1:3001 }, { address: 127.0.0.1:3002 }]
  grpc:
    protocol: h2c
    backends: [{ address: 127.0.0.1:4001 }]
  db:
    backends: [{ address: 127.0.0.1:5001 }]
  both:
    backends: [{ address: 127.0.0.1:6001 }, { address: 127.0.0.1:6002 }]
  lonely:
    backends: [{ address: 127.0.0.1:7001 }]
`);
  const plans = planPools(cfg);
  assert.ok(!('error' in plans));
  assert.deepEqual(plans.map((plan) => [plan.name, plan.kind]), [['web', 'http1'], ['grpc', 'h2c'], ['db', 'tcp'], ['both', 'http1'], ['lonely', 'http1']]);
  assert.match(plans[0]!.sessionsSkipped!, /sticky \(cookie lb\)/);
  assert.equal(plans[3]!.sessionsSkipped, undefined);
  assert.match(plans[4]!.sessionsSkipped!, /one backend/);
  assert.deepEqual(planPools(cfg, 'nope'), { error: 'no pool named "nope"; pools: web, grpc, db, both, lonely' });
  const one = planPools(cfg, 'db');
  assert.ok(!('error' in one));
  assert.deepEqual(one.map((plan) => plan.name), ['db']);
  assert.equal(validRequestPath('/'), true);
  assert.equal(validRequestPath('/a?b=c'), true);
  assert.equal(validRequestPath('a'), false);
  assert.equal(validRequestPath('/a b'), false);
  assert.equal(validRequestPath('/a\r\nx: y'), false);
});

test('text layout: one line per finding, fixes aligned below, repeated skips merged, summary last', () => {
  const pools: DoctorReport['pools'] = [
    {
      name: 'web',
      kind: 'http1',
      idleTimeoutMs: 60_000,
      sticky: false,
      findings: [
        { check: 'reuse', severity: 'skip', message: 'same reason' },
        { check: 'keep-alive', severity: 'skip', message: 'same reason' },
      ],
      backends: [{ address: '127.0.0.1:3001', name: 'alpha', tls: true, findings: [{ check: 'health', severity: 'problem', message: 'no health endpoint', fix: 'add one' }] }],
    },
  ];
  const report: DoctorReport = { config: 'usher.yaml', pools, summary: summarize(pools) };
  assert.equal(
    formatReport(report),
    [
      'usher doctor: usher.yaml',
      '',
      'pool web: http1, 1 backend, idle timeout 1m',
      '  skip     reuse, keep-alive  same reason',
      '  backend alpha 127.0.0.1:3001 (tls)',
      '    problem  health      no health endpoint',
      '                         fix: add one',
      '',
      '1 problem (0 ok, 2 skipped) in 1 pool, 1 backend',
      '',
    ].join('\n'),
  );
  assert.match(formatReport(report, { color: true }), /\x1b\[31mproblem\x1b\[0m/);
  assert.deepEqual(reportJson(report).summary, { problems: 1, warnings: 0, ok: 0, skipped: 2 });
  assert.equal(reportJson(report).ok, false);
});

test('units: measured times, idle suggestions, numeric literals', () => {
  assert.equal(measured(3.4), '3ms');
  assert.equal(measured(999.4), '999ms');
  assert.equal(measured(1549), '1.5s');
  assert.equal(measured(61_000), '61s');
  assert.equal(idleBelow(300), '200ms');
  assert.equal(idleBelow(4000), '3s');
  assert.equal(idleBelow(50), '100ms');
  assert.equal(idleBelow(3990), '2900ms');
  assert.equal(idleBelow(59_000), '44s');
  assert.equal(idleBelow(100_000), '1m15s');
  assert.equal(numericLiteral(65_000), '65_000');
  assert.equal(numericLiteral(7000), '7_000');
  assert.equal(numericLiteral(500), '500');
});
