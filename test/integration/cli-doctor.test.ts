/**
 * `usher doctor` against real backends on loopback, run with the built CLI:
 * a good backend; health endpoints that are missing, slow or failing; idle
 * keep-alive timeouts shorter than usher's (advertised or not); a backend
 * that closes after every response; in-memory sessions with and without
 * sticky; TLS, h2c and tcp pools; unreachable and garbage-speaking backends;
 * `--pool`, `--json`, `--max-wait` and the command-line errors. Every
 * backend records what it received: the doctor must send only GETs.
 *
 * Pools use `timeouts.idle: 2s`, so the idle measurement takes about 3 s;
 * the verdicts are far from their thresholds (a 300 ms close against 2 s, a
 * 10 s keep-alive against 2 s), so a busy machine does not flip them.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpsServer } from 'node:https';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import { startOrigin, type Origin, type OriginHandler } from '../helpers/origin.ts';
import { refusedPort } from '../helpers/refused.ts';
import { generateCertificate } from '../helpers/tls.ts';

/** A request as a backend received it. */
interface Seen {
  readonly method: string;
  readonly path: string;
  /** Whether it announced a body (Content-Length other than 0, or Transfer-Encoding). */
  readonly body: boolean;
}

interface Backend {
  readonly address: string;
  readonly seen: Seen[];
  close(): Promise<void>;
}

/** The JSON report, as far as the tests read it. */
interface Finding {
  readonly check: string;
  readonly severity: 'problem' | 'warning' | 'ok' | 'skip';
  readonly message: string;
  readonly fix?: string;
  readonly measured?: Record<string, number | string | boolean | null>;
}
interface Report {
  readonly ok: boolean;
  readonly config: string;
  readonly summary: { problems: number; warnings: number; ok: number; skipped: number };
  readonly pools: { name: string; kind: string; findings: Finding[]; backends: { address: string; name: string | null; tls: boolean; findings: Finding[] }[] }[];
}

/** A node:http backend with a long keep-alive (10 s: usher's idle is 2 s in these pools); records what it receives. */
async function httpBackend(name: string, handler: OriginHandler): Promise<Backend> {
  const origin: Origin = await startOrigin(name, handler);
  origin.server.keepAliveTimeout = 10_000;
  return fromOrigin(origin);
}

function fromOrigin(origin: Origin): Backend {
  return {
    address: origin.address,
    get seen() {
      return origin.seen.map((request) => ({
        method: request.method,
        path: request.url,
        body: (request.headers['content-length'] !== undefined && request.headers['content-length'] !== '0') || request.headers['transfer-encoding'] !== undefined,
      }));
    },
    close: () => origin.close(),
  };
}

/** 200 "ok" on every path; `/health` as `health` says. */
function answering(health: (res: Parameters<OriginHandler>[1]) => void = (res) => res.end('ok')): OriginHandler {
  return (req, res) => {
    req.resume();
    if (req.url === '/health') health(res);
    else res.end('hello');
  };
}

/**
 * A backend with a session in process memory, as a naive app has: a request
 * without a known `sid` gets a new random one (so another instance's sid is
 * replaced), a request with a known one is welcomed back.
 */
function inMemorySessions(): OriginHandler {
  const sessions = new Set<string>();
  return (req, res) => {
    req.resume();
    if (req.url === '/health') {
      res.end('ok');
      return;
    }
    const sid = /(?:^|;\s*)sid=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
    if (sid !== undefined && sessions.has(sid)) {
      res.end('welcome back');
      return;
    }
    const fresh = randomBytes(8).toString('hex');
    sessions.add(fresh);
    res.setHeader('set-cookie', `sid=${fresh}; Path=/; HttpOnly`);
    res.end('new session');
  };
}

/**
 * A hand-written HTTP/1.1 backend (node:net), for behaviour node:http will not
 * produce: `answer` gives the raw response to each request; `idleCloseMs`
 * closes a connection idle that long (no Keep-Alive header unless the answer
 * has one); `closeAfterResponse` ends the connection after each response.
 */
async function rawBackend(options: { answer: (path: string) => string; idleCloseMs?: number; closeAfterResponse?: boolean }): Promise<Backend> {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending = '';
    let idle: NodeJS.Timeout | undefined;
    socket.on('data', (chunk: Buffer) => {
      if (idle !== undefined) clearTimeout(idle);
      pending += chunk.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end !== -1; end = pending.indexOf('\r\n\r\n')) {
        const head = pending.slice(0, end);
        pending = pending.slice(end + 4);
        const [method = '', path = ''] = head.split('\r\n')[0]!.split(' ');
        const body = /^(content-length:\s*[1-9]|transfer-encoding:)/im.test(head);
        seen.push({ method, path, body });
        socket.write(options.answer(path));
        if (options.closeAfterResponse === true) {
          socket.end();
          return;
        }
      }
      if (options.idleCloseMs !== undefined) idle = setTimeout(() => socket.end(), options.idleCloseMs);
    });
    socket.on('close', () => clearTimeout(idle));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  server.unref();
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    seen,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A complete response with a Content-Length. */
function response(status: string, body: string, headers: readonly string[] = []): string {
  return [`HTTP/1.1 ${status}`, `content-length: ${Buffer.byteLength(body)}`, ...headers, '', body].join('\r\n');
}

/** One pool of the config: backends and extra keys. */
type PoolSpec = Record<string, unknown> & { backends: readonly Record<string, unknown>[] };

/** Writes a JSON config (YAML's superset, and no quoting to get wrong) with one HTTP listener routing to `http` pools and one tcp listener per `tcp` pool. */
function writeConfig(dir: string, name: string, pools: Record<string, PoolSpec>, tcpPools: readonly string[] = []): string {
  const httpPools = Object.keys(pools).filter((pool) => !tcpPools.includes(pool));
  const config = {
    listeners: [
      { name: 'web', bind: '127.0.0.1:0', routes: httpPools.map((pool, i) => ({ match: { pathPrefix: `/${i}/` }, pool })) },
      ...tcpPools.map((pool) => ({ name: `tcp-${pool}`, protocol: 'tcp', bind: '127.0.0.1:0', routes: [{ pool }] })),
    ],
    pools,
    accessLog: { enabled: false },
  };
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

function poolOf(report: Report, name: string): Report['pools'][number] {
  const pool = report.pools.find((p) => p.name === name);
  assert.ok(pool, `pool ${name} in the report: ${report.pools.map((p) => p.name).join(', ')}`);
  return pool;
}

/** The finding of `check` for backend `index` of `pool` (or of the pool itself when index is undefined). */
function findingOf(report: Report, pool: string, check: string, index?: number): Finding {
  const entry = poolOf(report, pool);
  const findings = index === undefined ? entry.findings : entry.backends[index]!.findings;
  const finding = findings.find((f) => f.check === check);
  assert.ok(finding, `${pool}${index === undefined ? '' : `[${index}]`} has a ${check} finding: ${JSON.stringify(findings, null, 2)}`);
  return finding;
}

test('usher doctor: findings with fixes, grouped by pool and backend; only GET requests', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'usher-doctor-'));
  const backends: Backend[] = [];
  t.after(async () => {
    await Promise.all(backends.map((backend) => backend.close()));
    rmSync(dir, { recursive: true, force: true });
  });
  const keep = <B extends Backend>(backend: B): B => {
    backends.push(backend);
    return backend;
  };

  const good = keep(await httpBackend('good', answering()));
  const missing = keep(
    await httpBackend('missing', (req, res) => {
      req.resume();
      if (req.url === '/health') res.writeHead(404).end('not found');
      else res.end('hello');
    }),
  );
  const slow = keep(await httpBackend('slow', answering((res) => setTimeout(() => res.end('ok'), 1000))));
  const failing = keep(await httpBackend('failing', answering((res) => res.writeHead(500).end('database unreachable'))));
  // Closes idle connections after 300 ms and says nothing about it.
  const shortIdle = keep(await rawBackend({ answer: () => response('200 OK', 'ok'), idleCloseMs: 300 }));
  // Says Keep-Alive: timeout=1 and keeps its word (closes after 1.5 s): usher retires its connections first.
  const advertised = keep(await rawBackend({ answer: () => response('200 OK', 'ok', ['keep-alive: timeout=1']), idleCloseMs: 1500 }));
  const closer = keep(await rawBackend({ answer: () => response('200 OK', 'ok', ['connection: close']), closeAfterResponse: true }));
  // Hangs up after each response without saying so.
  const hangup = keep(await rawBackend({ answer: () => response('200 OK', 'ok'), closeAfterResponse: true }));
  const sessionA = keep(await httpBackend('session-a', inMemorySessions()));
  const sessionB = keep(await httpBackend('session-b', inMemorySessions()));
  const stickyA = keep(await httpBackend('sticky-a', inMemorySessions()));
  const stickyB = keep(await httpBackend('sticky-b', inMemorySessions()));
  const garbage = keep(await rawBackend({ answer: () => 'HELLO THERE\r\n\r\n' }));
  const dead = `127.0.0.1:${await refusedPort()}`;
  const cert = generateCertificate(['backend.test']);
  writeFileSync(join(dir, 'ca.pem'), cert.cert);
  const secure = await (async (): Promise<Backend> => {
    const seen: Seen[] = [];
    const server = createHttpsServer({ cert: cert.cert, key: cert.key }, (req, res) => {
      seen.push({ method: req.method ?? '', path: req.url ?? '', body: req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined });
      req.resume();
      res.end('ok');
    });
    server.keepAliveTimeout = 10_000;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    server.unref();
    const { port } = server.address() as AddressInfo;
    return {
      address: `127.0.0.1:${port}`,
      seen,
      close: async () => {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  })();
  keep(secure);

  const idle = { idle: '2s' };
  // A generous timeout: an answer in more than half of it is a warning, and a busy machine must not cause one.
  const health = { path: '/health', timeout: '2s' };
  const file = writeConfig(
    dir,
    'usher.json',
    {
      good: { healthCheck: health, timeouts: idle, backends: [{ address: good.address, name: 'alpha' }] },
      missing: { healthCheck: health, timeouts: idle, backends: [{ address: missing.address }] },
      slow: { healthCheck: { path: '/health', timeout: '300ms' }, timeouts: idle, backends: [{ address: slow.address }] },
      failing: { healthCheck: health, timeouts: idle, backends: [{ address: failing.address }] },
      idle: { healthCheck: health, timeouts: idle, backends: [{ address: shortIdle.address }, { address: advertised.address }] },
      closer: { healthCheck: health, timeouts: idle, backends: [{ address: closer.address }] },
      hangup: { healthCheck: health, timeouts: idle, backends: [{ address: hangup.address }] },
      sessions: { timeouts: idle, backends: [{ address: sessionA.address }, { address: sessionB.address }] },
      sticky: { sticky: { cookie: 'lb' }, healthCheck: health, timeouts: idle, backends: [{ address: stickyA.address }, { address: stickyB.address }] },
      broken: { healthCheck: health, timeouts: idle, backends: [{ address: garbage.address }, { address: dead }] },
      secure: { healthCheck: health, timeouts: idle, backends: [{ address: secure.address, tls: { servername: 'backend.test', ca: 'ca.pem' } }] },
      grpc: { protocol: 'h2c', healthCheck: health, backends: [{ address: good.address }] },
      raw: { backends: [{ address: good.address }] },
      forever: { healthCheck: health, backends: [{ address: good.address }] }, // default idle: 60s, for --max-wait
    },
    ['raw'],
  );

  await t.test('a good backend: exit 0, ok lines for health, reuse and keep-alive', async () => {
    const result = await runCli(['doctor', '-c', file, '--pool', 'good']);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /^pool good: http1, 1 backend, idle timeout 2s$/m);
    assert.match(result.stdout, new RegExp(`^  backend alpha ${good.address}$`, 'm'), 'the backend\'s name before its address, as usher status shows it');
    assert.match(result.stdout, /^ {4}ok {7}health {6}GET \/health answered 200 OK in \d+ms \(timeout 2s, expects 200-399\)$/m);
    assert.match(result.stdout, /^ {4}ok {7}reuse {7}served 2 requests on one connection$/m);
    assert.match(result.stdout, /^ {4}ok {7}keep-alive {2}kept the idle connection open \d\.\ds, longer than usher keeps it: usher keeps idle connections 2s/m);
    assert.match(result.stdout, /^ {2}skip {5}sessions {4}one backend: there is no other backend to lose a session to$/m);
    assert.doesNotMatch(result.stdout, /^ +(problem|warning) /m);
    assert.match(result.stdout, /^no problems \(3 ok, 1 skipped\) in 1 pool, 1 backend$/m);
    assert.match(result.stderr, /checking 1 backend in 1 pool; holding idle connections up to 3\.0s/);
  });

  let report: Report;
  await t.test('--json: every pool at once, findings and measurements', async () => {
    const result = await runCli(['doctor', '-c', file, '--json', '--max-wait', '3s']);
    assert.equal(result.code, 1, result.stderr);
    report = JSON.parse(result.stdout) as Report;
    assert.equal(report.ok, false);
    assert.equal(report.config, file);
    assert.deepEqual(
      report.pools.map((pool) => [pool.name, pool.kind]),
      [['good', 'http1'], ['missing', 'http1'], ['slow', 'http1'], ['failing', 'http1'], ['idle', 'http1'], ['closer', 'http1'], ['hangup', 'http1'], ['sessions', 'http1'], ['sticky', 'http1'], ['broken', 'http1'], ['secure', 'http1'], ['grpc', 'h2c'], ['raw', 'tcp'], ['forever', 'http1']],
    );
    const all = report.pools.flatMap((pool) => [...pool.findings, ...pool.backends.flatMap((backend) => backend.findings)]);
    assert.equal(report.summary.problems, all.filter((f) => f.severity === 'problem').length);
    assert.equal(report.summary.ok, all.filter((f) => f.severity === 'ok').length);
    for (const finding of all) if (finding.severity === 'problem' || finding.severity === 'warning') assert.ok(finding.fix, `a fix for ${JSON.stringify(finding)}`);
    assert.deepEqual([poolOf(report, 'good').backends[0]!.name, poolOf(report, 'missing').backends[0]!.name], ['alpha', null]);
  });

  await t.test('health: 404 is a missing endpoint, 500 and slow answers fail, all problems', () => {
    const missingHealth = findingOf(report, 'missing', 'health', 0);
    assert.equal(missingHealth.severity, 'problem');
    assert.match(missingHealth.message, /^no health endpoint: GET \/health answered 404/);
    assert.match(missingHealth.fix!, /add the endpoint to the backend .*pools\.missing\.healthCheck\.path/);

    const failed = findingOf(report, 'failing', 'health', 0);
    assert.equal(failed.severity, 'problem');
    assert.match(failed.message, /answered 500 Internal Server Error, not in 200-399 \(body: "database unreachable"\)/);
    assert.equal(failed.measured?.['status'], 500);

    const slowHealth = findingOf(report, 'slow', 'health', 0);
    assert.equal(slowHealth.severity, 'problem');
    // Answered at about 1 s: measured, or (on a very busy machine) past the doctor's 1.3 s wait.
    assert.match(slowHealth.message, /slower than the check's 300ms timeout|no answer within 1\.3s \(the check's timeout is 300ms\)/);
    assert.match(slowHealth.fix!, /raise healthCheck\.timeout/);

    assert.equal(findingOf(report, 'good', 'health', 0).severity, 'ok');
    assert.equal(findingOf(report, 'missing', 'reuse', 0).severity, 'ok', 'the other checks still run');
  });

  await t.test('keep-alive: a silent 300 ms close is a problem naming the measured value; an advertised timeout=1 kept is fine', () => {
    const short = findingOf(report, 'idle', 'keep-alive', 0);
    assert.equal(short.severity, 'problem', short.message);
    const closedAfter = short.measured?.['closedAfterMs'];
    assert.equal(typeof closedAfter, 'number');
    assert.ok((closedAfter as number) >= 250 && (closedAfter as number) < 1800, `closed after ${String(closedAfter)} ms`);
    assert.match(short.message, new RegExp(`^closed the idle connection after ${closedAfter}ms without advertising Keep-Alive: timeout; usher keeps idle connections 2s`));
    assert.match(short.fix!, /raise the backend's keep-alive timeout above 2s \(Node: server\.keepAliveTimeout = 7_000/);
    assert.match(short.fix!, /or set `timeouts: \{ idle: \d+ms \}` in pools\.idle/);

    const kept = findingOf(report, 'idle', 'keep-alive', 1);
    assert.equal(kept.severity, 'ok', kept.message);
    assert.equal(kept.measured?.['advertisedTimeoutSeconds'], 1);
    assert.equal(kept.measured?.['usherKeepsMs'], 500, 'usher retires it at N - min(2 s, N/2)');
    assert.equal(findingOf(report, 'idle', 'reuse', 1).severity, 'ok');
  });

  await t.test('reuse: Connection: close on every response, or a silent hang-up after it, is a problem', () => {
    const reuse = findingOf(report, 'closer', 'reuse', 0);
    assert.equal(reuse.severity, 'problem');
    assert.match(reuse.message, /^closes the connection after every response: it answers GET \/ with Connection: close; every request then pays a new TCP connection$/);
    assert.match(reuse.fix!, /enable keep-alive on the backend/);
    assert.equal(findingOf(report, 'closer', 'keep-alive', 0).severity, 'skip');

    const silent = findingOf(report, 'hangup', 'reuse', 0);
    assert.equal(silent.severity, 'problem');
    assert.match(silent.message, /^closes the connection right after each response: it answered GET \/, then a second request on the same connection got no answer/);
    assert.equal(silent.measured?.['requestsPerConnection'], 1);
  });

  await t.test('sessions: in-memory sessions without sticky are a problem; with sticky the check is skipped', () => {
    const sessions = findingOf(report, 'sessions', 'sessions');
    assert.equal(sessions.severity, 'problem');
    assert.match(sessions.message, new RegExp(`^backends set session cookie sid that another backend does not accept: ${sessionA.address} set it, ${sessionB.address} replaced sid`));
    assert.match(sessions.fix!, /add `sticky: \{ cookie: usher_sticky \}` to pools\.sessions .* shared store \(e\.g\. Redis\)/);
    assert.doesNotMatch(JSON.stringify(sessions), /[0-9a-f]{16}/, 'session ids are secrets: never printed');
    // No healthCheck: a warning with the lines to add, found by probing /health.
    const config = findingOf(report, 'sessions', 'config');
    assert.equal(config.severity, 'warning');
    assert.match(config.fix!, /add `healthCheck: \{ path: \/health \}` to pools\.sessions \(2 of 2 backends answer on \/health\)/);

    const sticky = findingOf(report, 'sticky', 'sessions');
    assert.equal(sticky.severity, 'skip');
    assert.match(sticky.message, /the pool has sticky \(cookie lb\)/);
    assert.ok(poolOf(report, 'sticky').backends.every((backend) => backend.findings.every((f) => f.severity === 'ok')));
  });

  await t.test('a garbage-speaking and a dead backend are findings, not crashes', () => {
    const garbageHealth = findingOf(report, 'broken', 'health', 0);
    assert.equal(garbageHealth.severity, 'problem');
    assert.match(garbageHealth.message, /^GET \/health: bad response: .*usher's check fails$/);
    assert.equal(findingOf(report, 'broken', 'request', 0).severity, 'problem');
    const deadHealth = findingOf(report, 'broken', 'health', 1);
    assert.equal(deadHealth.severity, 'problem');
    assert.equal(deadHealth.message, `no health endpoint: connection refused at ${dead}`);
    assert.deepEqual(
      poolOf(report, 'broken').backends[1]!.findings.slice(1).map((f) => [f.check, f.severity]),
      [['reuse', 'skip'], ['keep-alive', 'skip']],
    );
  });

  await t.test('TLS backends are checked over TLS; h2c and tcp pools skip what does not apply', () => {
    const backend = poolOf(report, 'secure').backends[0]!;
    assert.equal(backend.tls, true);
    assert.deepEqual(backend.findings.map((f) => [f.check, f.severity]), [['health', 'ok'], ['reuse', 'ok'], ['keep-alive', 'ok']]);
    assert.ok(secure.seen.length >= 3, 'the TLS backend answered the doctor');

    assert.equal(findingOf(report, 'grpc', 'health', 0).severity, 'ok');
    assert.equal(poolOf(report, 'grpc').backends[0]!.findings.length, 1, 'h2c: health only');
    assert.match(findingOf(report, 'grpc', 'reuse').message, /^h2c pool/);

    assert.equal(findingOf(report, 'raw', 'connect', 0).severity, 'ok');
    assert.match(findingOf(report, 'raw', 'keep-alive').message, /only tcp and tls-passthrough listeners use this pool/);
    assert.match(findingOf(report, 'raw', 'config').fix!, /healthCheck: \{ type: tcp \}/);
  });

  await t.test('--max-wait caps the idle wait: not measured further is a warning', () => {
    const forever = findingOf(report, 'forever', 'keep-alive', 0);
    assert.equal(forever.severity, 'warning');
    assert.match(forever.message, /^still open after 3\.0s idle \(--max-wait\), not measured further/);
    assert.match(forever.fix!, /--max-wait 11s/, 'good advertises timeout=10: the horizon is 10 s');
  });

  await t.test('text output: --pool sessions, then --pool sticky', async () => {
    const sessions = await runCli(['doctor', '-c', file, '--pool', 'sessions', '--max-wait', '500ms']);
    assert.equal(sessions.code, 1);
    assert.match(sessions.stdout, /^pool sessions: http1, 2 backends, idle timeout 2s$/m);
    assert.match(sessions.stdout, /^ {2}problem {2}sessions {4}backends set session cookie sid that another backend does not accept/m);
    assert.match(sessions.stdout, /^ {23}fix: add `sticky: \{ cookie: usher_sticky \}` to pools\.sessions/m);
    assert.doesNotMatch(sessions.stdout, /^pool (?!sessions)/m, 'only the pool asked for');
    assert.match(sessions.stdout, /^1 problem, 3 warnings \(\d+ ok, 0 skipped\) in 1 pool, 2 backends$/m);

    const sticky = await runCli(['doctor', '-c', file, '--pool', 'sticky']);
    assert.equal(sticky.code, 0, sticky.stdout);
    assert.match(sticky.stdout, /^ {2}skip {5}sessions {4}the pool has sticky \(cookie lb\)/m);
    assert.match(sticky.stdout, /^no problems \(6 ok, 1 skipped\) in 1 pool, 2 backends$/m);
  });

  await t.test('the backends saw only GET requests without bodies', () => {
    const seen = backends.flatMap((backend) => backend.seen);
    assert.ok(seen.length >= 30, `the doctor made its requests (${seen.length})`);
    assert.deepEqual(
      seen.filter((request) => request.method !== 'GET' || request.body),
      [],
    );
    assert.ok(sessionB.seen.some((request) => request.path === '/'), 'the session check reached the second backend');
  });
});

test('usher doctor explains wrong command lines and bad configs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'usher-doctor-args-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = writeConfig(dir, 'usher.json', { web: { backends: [{ address: '127.0.0.1:3001' }] }, api: { backends: [{ address: '127.0.0.1:3002' }] } });

  const unknown = await runCli(['doctor', '-c', file, '--pool', 'nope']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /no pool named "nope"; pools: web, api/);
  assert.equal(unknown.stdout, '');

  const noConfig = await runCli(['doctor']);
  assert.equal(noConfig.code, 2);
  assert.match(noConfig.stderr, /give the config file with -c FILE/);

  const badWait = await runCli(['doctor', '-c', file, '--max-wait', '30']);
  assert.equal(badWait.code, 2);
  assert.match(badWait.stderr, /--max-wait: expected a duration .*the unit is required/);

  const badPath = await runCli(['doctor', '-c', file, '--path', 'x y']);
  assert.equal(badPath.code, 2);
  assert.match(badPath.stderr, /--path takes a path starting with "\/"/);

  const unreadable = await runCli(['doctor', '-c', join(dir, 'missing.yaml')]);
  assert.equal(unreadable.code, 1);
  assert.match(unreadable.stderr, /cannot read the config file/);

  const help = await runCli(['doctor', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--max-wait DURATION/);
  assert.match(help.stdout, /Exit codes: 0 no problem/);
  const main = await runCli(['--help']);
  assert.match(main.stdout, /usher doctor -c usher\.yaml \[--pool NAME\]/);
});
