import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HealthCheckConfig, HostPort } from '../../src/config/types.ts';
import { ActiveHealthCheck, type TimedProbeResult } from '../../src/pool/health/active-check.ts';
import { MAX_CHECK_BODY_BYTES, probe } from '../../src/pool/health/probe.ts';
import { startOrigin, type Origin, type OriginHandler } from '../helpers/origin.ts';
import { refusedPort } from '../helpers/refused.ts';
import { waitFor } from '../helpers/wait.ts';

const HOST = '127.0.0.1';

function checkConfig(overrides: Partial<HealthCheckConfig> = {}): HealthCheckConfig {
  return {
    type: 'http',
    path: '/health',
    intervalMs: 50,
    fastIntervalMs: 20,
    timeoutMs: 2000,
    rise: 2,
    fall: 3,
    expectStatus: [[200, 399]],
    ...overrides,
  };
}


async function origin(t: TestContext, handler: OriginHandler): Promise<Origin> {
  const started = await startOrigin('health', handler);
  t.after(() => started.close());
  return started;
}

/** An origin answering `status` with `body`. */
function answer(status: number, body = 'ok', headers: Record<string, string> = {}): OriginHandler {
  return (req, res) => {
    req.resume();
    res.writeHead(status, { 'content-type': 'text/plain', ...headers }).end(body);
  };
}

interface RawServer {
  readonly target: HostPort;
  readonly sockets: Set<Socket>;
  /** Connections accepted, with their `performance.now()` times. */
  readonly accepted: number[];
  /** Server-side sockets closed so far. */
  closed: number;
}

/** A raw TCP server on 127.0.0.1:0 for answers node:http cannot produce. Closed in `t.after`. */
async function rawServer(t: TestContext, onConnection: (socket: Socket) => void = () => undefined): Promise<RawServer> {
  const server = createServer();
  const raw: RawServer = { target: { host: HOST, port: 0 }, sockets: new Set(), accepted: [], closed: 0 };
  server.on('connection', (socket: Socket) => {
    raw.accepted.push(performance.now());
    raw.sockets.add(socket);
    // The probe destroys its side at will; a reset here is expected.
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      raw.sockets.delete(socket);
      raw.closed++;
    });
    // Flowing, so a close by the probe is seen (a paused socket never emits 'end').
    socket.resume();
    onConnection(socket);
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  server.unref();
  t.after(async () => {
    for (const socket of raw.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  Object.assign(raw, { target: { host: HOST, port: (server.address() as AddressInfo).port } });
  return raw;
}

function targetOf(o: Origin): HostPort {
  return { host: HOST, port: o.port };
}

test('probe: 200 is ok; the request is GET <path> with Host, user-agent and connection: close', async (t) => {
  const o = await origin(t, answer(200));
  const result = await probe(targetOf(o), checkConfig());
  assert.equal(result.ok, true);
  assert.equal(result.detail, '200 OK');
  assert.ok(result.durationMs >= 0 && result.durationMs < 2000, `durationMs ${result.durationMs}`);
  assert.equal(o.seen.length, 1);
  const seen = o.seen[0]!;
  assert.equal(seen.method, 'GET');
  assert.equal(seen.url, '/health');
  assert.equal(seen.headers.host, `127.0.0.1:${o.port}`);
  assert.equal(seen.headers['user-agent'], 'usher-health-check');
  assert.equal(seen.headers.connection, 'close');
});

test('probe: 503 fails with the status and the accepted ranges in the detail', async (t) => {
  const o = await origin(t, answer(503, 'down'));
  const result = await probe(targetOf(o), checkConfig());
  assert.equal(result.ok, false);
  assert.equal(result.detail, 'status 503 not in 200-399');
});

test('probe: expectStatus is a list of inclusive ranges', async (t) => {
  let status = 404;
  const o = await origin(t, (req, res) => {
    req.resume();
    res.writeHead(status).end();
  });
  const config = checkConfig({ expectStatus: [[200, 204], [404, 404]] });
  for (const [code, ok] of [[404, true], [200, true], [204, true], [205, false], [302, false], [500, false]] as const) {
    status = code;
    const result = await probe(targetOf(o), config);
    assert.equal(result.ok, ok, `status ${code}: ${result.detail}`);
    if (!ok) assert.equal(result.detail, `status ${code} not in 200-204, 404`);
  }
});

test('probe: expectBody as a substring, also across chunks of a chunked body', async (t) => {
  let parts = ['status: ', 'ok'];
  const o = await origin(t, (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' }); // no content-length: chunked
    for (const part of parts.slice(0, -1)) res.write(part);
    res.end(parts.at(-1));
  });
  const config = checkConfig({ expectBody: 'status: ok' });
  const ok = await probe(targetOf(o), config);
  assert.equal(ok.ok, true, ok.detail);
  assert.equal(ok.detail, '200 OK');
  parts = ['status: ', 'degraded'];
  const bad = await probe(targetOf(o), config);
  assert.equal(bad.ok, false);
  assert.equal(bad.detail, 'body does not contain "status: ok"');
});

test('probe: expectBody "~regex" is searched in the body; "~~x" is the regex "~x"', async (t) => {
  let body = 'up 42';
  const o = await origin(t, (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-length': String(Buffer.byteLength(body)) }).end(body);
  });
  const regex = checkConfig({ expectBody: '~^up( \\d+)?$' });
  assert.equal((await probe(targetOf(o), regex)).ok, true);
  body = 'upgrade';
  const bad = await probe(targetOf(o), regex);
  assert.equal(bad.ok, false);
  assert.equal(bad.detail, 'body does not match /^up( \\d+)?$/');

  const tilde = checkConfig({ expectBody: '~~x+y' });
  body = 'a ~xxy b';
  assert.equal((await probe(targetOf(o), tilde)).ok, true);
  body = 'xxy';
  assert.equal((await probe(targetOf(o), tilde)).ok, false);
  body = 'a ~x+y'; // literally "~x+y" does not match the regex ~x+y
  assert.equal((await probe(targetOf(o), tilde)).ok, false);
});

test('probe: an endless body is read only up to 64 KiB; text past 64 KiB is not seen', async (t) => {
  const chunk = Buffer.alloc(16 * 1024, 'a');
  const endless = await rawServer(t, (socket) => {
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nhealthy ');
      const pump = (): void => {
        while (!socket.destroyed && socket.write(chunk));
      };
      socket.on('drain', pump);
      pump();
    });
  });
  const config = checkConfig({ expectBody: 'healthy', timeoutMs: 5000 });
  const result = await probe(endless.target, config);
  assert.equal(result.ok, true, result.detail);
  assert.ok(result.durationMs < 5000);

  const late = await origin(t, answer(200, `${'a'.repeat(MAX_CHECK_BODY_BYTES)}healthy`));
  const missed = await probe(targetOf(late), config);
  assert.equal(missed.ok, false);
  assert.equal(missed.detail, `body does not contain "healthy" (first ${MAX_CHECK_BODY_BYTES} bytes)`);
  await waitFor(() => endless.sockets.size === 0, 'the endless response socket to close');
});

test('probe: a server that accepts but never answers times out, and the socket is closed', async (t) => {
  const silent = await rawServer(t);
  const result = await probe(silent.target, checkConfig({ timeoutMs: 100 }));
  assert.equal(result.ok, false);
  assert.equal(result.detail, 'timeout after 100 ms');
  assert.ok(result.durationMs >= 90 && result.durationMs < 2000, `durationMs ${result.durationMs}`);
  await waitFor(() => silent.closed === 1, 'the server side of the probe to close');
});

test('probe: a refused port fails with connect ECONNREFUSED, http and tcp', async () => {
  const port = await refusedPort();
  for (const type of ['http', 'tcp'] as const) {
    const result = await probe({ host: HOST, port }, checkConfig({ type }));
    assert.equal(result.ok, false);
    assert.equal(result.detail, 'connect ECONNREFUSED', type);
  }
});

test('probe: tcp connects and closes without sending anything', async (t) => {
  let received = 0;
  const server = await rawServer(t, (socket) => socket.on('data', (data: Buffer) => (received += data.length)));
  const result = await probe(server.target, checkConfig({ type: 'tcp' }));
  assert.equal(result.ok, true);
  assert.equal(result.detail, 'connected');
  await waitFor(() => server.closed === 1, 'the tcp probe connection to close');
  assert.equal(received, 0);
});

test('probe: garbage, a truncated head and a close without answer are bad responses', async (t) => {
  const garbage = await rawServer(t, (socket) => socket.once('data', () => socket.end('garbage\r\n\r\n')));
  const g = await probe(garbage.target, checkConfig());
  assert.equal(g.ok, false);
  assert.equal(g.detail, 'bad response: malformed status line');

  const truncated = await rawServer(t, (socket) => socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\ncontent-')));
  const tr = await probe(truncated.target, checkConfig());
  assert.equal(tr.ok, false);
  assert.equal(tr.detail, 'bad response: connection closed before the response head');

  const mute = await rawServer(t, (socket) => socket.once('data', () => socket.end()));
  assert.equal((await probe(mute.target, checkConfig())).detail, 'bad response: connection closed before the response head');

  const smuggle = await rawServer(t, (socket) =>
    socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\nok')),
  );
  const s = await probe(smuggle.target, checkConfig());
  assert.equal(s.ok, false);
  assert.match(s.detail, /^bad response: both Content-Length and Transfer-Encoding/);

  const shortBody = await rawServer(t, (socket) => socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nok')));
  const sb = await probe(shortBody.target, checkConfig({ expectBody: 'ok' }));
  assert.equal(sb.ok, false);
  assert.equal(sb.detail, 'bad response: connection closed before the end of the body');
});

test('probe: interim 1xx responses are skipped; a body until close is read to the end', async (t) => {
  const server = await rawServer(t, (socket) =>
    socket.once('data', () => socket.end('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Fine\r\nconnection: close\r\n\r\nall good')),
  );
  const result = await probe(server.target, checkConfig({ expectBody: 'good' }));
  assert.equal(result.ok, true, result.detail);
  assert.equal(result.detail, '200 Fine');
});

test('probe: config.port and config.host override the target port and the Host header', async (t) => {
  const o = await origin(t, answer(200));
  const unused = await refusedPort();
  const target = { host: HOST, port: unused };
  const withHost = await probe(target, checkConfig({ port: o.port, host: 'health.internal' }));
  assert.equal(withHost.ok, true, withHost.detail);
  assert.equal(o.seen.at(-1)?.headers.host, 'health.internal');
  const portOnly = await probe(target, checkConfig({ port: o.port, path: '/ready?x=1' }));
  assert.equal(portOnly.ok, true, portOnly.detail);
  assert.equal(o.seen.at(-1)?.url, '/ready?x=1');
  assert.equal(o.seen.at(-1)?.headers.host, `127.0.0.1:${unused}`, 'Host names the backend, not the check port');
});

test('probe: an aborted signal ends the probe at once and closes the socket', async (t) => {
  const silent = await rawServer(t);
  const controller = new AbortController();
  const pending = probe(silent.target, checkConfig({ timeoutMs: 10_000 }), controller.signal);
  await waitFor(() => silent.accepted.length === 1, 'the probe to connect');
  controller.abort();
  const result = await pending;
  assert.equal(result.ok, false);
  assert.equal(result.detail, 'aborted');
  await waitFor(() => silent.closed === 1, 'the aborted probe connection to close');
  const already = await probe(silent.target, checkConfig(), AbortSignal.abort());
  assert.equal(already.detail, 'aborted');
});

/** An origin whose status the test switches. */
async function switchable(t: TestContext): Promise<{ origin: Origin; set(status: number): void }> {
  let status = 200;
  const o = await origin(t, (req, res) => {
    req.resume();
    res.writeHead(status).end();
  });
  return { origin: o, set: (next) => (status = next) };
}

/** Length of the run of results with `ok` at the end of `results`. */
function tailRun(results: readonly TimedProbeResult[], ok: boolean): number {
  let n = 0;
  for (let i = results.length - 1; i >= 0 && results[i]!.ok === ok; i--) n++;
  return n;
}

test('ActiveHealthCheck: out after exactly `fall` failures, back after exactly `rise` successes, one transition each', async (t) => {
  const backend = await switchable(t);
  const results: TimedProbeResult[] = [];
  const transitions: { healthy: boolean; detail: string; failuresBefore: number; successesBefore: number }[] = [];
  const check = new ActiveHealthCheck(targetOf(backend.origin), checkConfig({ rise: 2, fall: 3, intervalMs: 30, fastIntervalMs: 20 }), {
    onResult: (r) => results.push(r),
    onTransition: (healthy, last) =>
      transitions.push({ healthy, detail: last.detail, failuresBefore: tailRun(results, false), successesBefore: tailRun(results, true) }),
  });
  t.after(() => check.stop());
  assert.equal(check.healthy, true, 'healthy before the first result');
  check.start();
  await waitFor(() => results.length >= 2, 'two successful checks');
  assert.equal(transitions.length, 0);
  assert.equal(check.healthy, true);

  backend.set(503);
  await waitFor(() => transitions.length === 1, 'the backend to go unhealthy');
  assert.deepEqual(transitions[0], { healthy: false, detail: 'status 503 not in 200-399', failuresBefore: 3, successesBefore: 0 });
  assert.equal(check.healthy, false);

  backend.set(200);
  await waitFor(() => transitions.length === 2, 'the backend to come back');
  assert.deepEqual(transitions[1], { healthy: true, detail: '200 OK', failuresBefore: 0, successesBefore: 2 });
  assert.equal(check.healthy, true);
  const countAtStop = results.length;
  check.stop();
  assert.equal(check.running, false);
  assert.ok(check.recent.length <= 20 && check.recent.length === Math.min(countAtStop, 20));
  assert.deepEqual(check.lastResult, results.at(-1));
  const ats = check.recent.map((r) => r.at);
  assert.deepEqual(ats, [...ats].sort((a, b) => a - b), 'recent is oldest first');
});

test('ActiveHealthCheck: a backend dead at start leaves on the first failed check', async (t) => {
  const port = await refusedPort();
  const transitions: [boolean, string][] = [];
  let results = 0;
  const check = new ActiveHealthCheck({ host: HOST, port }, checkConfig({ fall: 5 }), {
    onResult: () => results++,
    onTransition: (healthy, last) => transitions.push([healthy, last.detail]),
  });
  t.after(() => check.stop());
  check.start();
  await waitFor(() => transitions.length === 1, 'the first transition');
  assert.equal(results, 1);
  assert.deepEqual(transitions, [[false, 'connect ECONNREFUSED']]);
});

test('ActiveHealthCheck: an initially unhealthy backend comes in on the first success', async (t) => {
  const o = await origin(t, answer(200));
  const transitions: boolean[] = [];
  const check = new ActiveHealthCheck(targetOf(o), checkConfig({ rise: 5 }), { onTransition: (healthy) => transitions.push(healthy) }, { initiallyHealthy: false });
  t.after(() => check.stop());
  assert.equal(check.healthy, false);
  check.start();
  await waitFor(() => transitions.length === 1, 'the first transition');
  assert.deepEqual(transitions, [true]);
  assert.equal(check.lastResult?.detail, '200 OK');
});

test('ActiveHealthCheck: first probes of 10 checks are spread over [0, fastIntervalMs)', async (t) => {
  const server = await rawServer(t);
  const config = checkConfig({ type: 'tcp', fastIntervalMs: 200, intervalMs: 10_000 });
  const checks = Array.from({ length: 10 }, () => new ActiveHealthCheck(server.target, config, { onTransition: () => undefined }));
  t.after(() => {
    for (const check of checks) check.stop();
  });
  const start = performance.now();
  for (const check of checks) check.start();
  await waitFor(() => server.accepted.length === 10, 'ten first probes');
  const offsets = server.accepted.map((at) => at - start);
  assert.ok(new Set(server.accepted).size > 1, `all first probes at the same time: ${offsets.join(', ')}`);
  assert.ok(Math.max(...offsets) - Math.min(...offsets) > 1, `first probes within 1 ms: ${offsets.join(', ')}`);
});

test('ActiveHealthCheck: the injected random decides the first delay', async (t) => {
  const server = await rawServer(t);
  const config = checkConfig({ type: 'tcp', fastIntervalMs: 300, intervalMs: 10_000 });
  const firstAt: Record<string, number> = {};
  const start = Date.now();
  const make = (name: string, value: number): ActiveHealthCheck =>
    new ActiveHealthCheck(server.target, config, { onTransition: () => undefined, onResult: (r) => (firstAt[name] ??= r.at - start) }, { random: () => value });
  const early = make('early', 0);
  const late = make('late', 0.99);
  t.after(() => {
    early.stop();
    late.stop();
  });
  late.start();
  early.start();
  await waitFor(() => firstAt.late !== undefined && firstAt.early !== undefined, 'both first probes');
  assert.ok(firstAt.early! < firstAt.late!, `early ${firstAt.early} ms, late ${firstAt.late} ms`);
  assert.ok(firstAt.late! >= 0.99 * 300 - 5, `late first probe after ${firstAt.late} ms`);
});

test('ActiveHealthCheck: fastIntervalMs while transitioning, intervalMs when steady, never overlapping', async (t) => {
  const backend = await switchable(t);
  const results: TimedProbeResult[] = [];
  let concurrent = 0;
  let maxConcurrent = 0;
  backend.origin.server.on('request', (req) => {
    concurrent++;
    maxConcurrent = Math.max(maxConcurrent, concurrent);
    req.on('close', () => concurrent--);
  });
  const check = new ActiveHealthCheck(
    targetOf(backend.origin),
    checkConfig({ rise: 3, fall: 3, intervalMs: 400, fastIntervalMs: 20 }),
    {
      onTransition: () => undefined,
      onResult: (r) => {
        results.push(r);
        if (results.length === 1) backend.set(500);
      },
    },
    { random: () => 0.5 }, // no jitter
  );
  t.after(() => check.stop());
  check.start();
  // ok (steady, 400 ms) → fail (fast) → fail (fast) → fail = flip (steady, 400 ms) → fail
  await waitFor(() => results.length === 5, 'five results');
  check.stop();
  const gaps = results.slice(1).map((r, i) => r.at - results[i]!.at);
  const shown = gaps.join(', ');
  assert.deepEqual(results.map((r) => r.ok), [true, false, false, false, false]);
  assert.ok(gaps[0]! >= 395, `steady gap ${shown}`);
  assert.ok(gaps[1]! < 300 && gaps[2]! < 300, `fast gaps ${shown}`);
  assert.ok(gaps[3]! >= 395, `steady gap after the flip ${shown}`);
  assert.equal(maxConcurrent, 1);
  assert.equal(check.healthy, false);
});

/** Runs an ES module script with this Node; resolves with its exit code and output, or fails after `timeoutMs`. */
async function runScript(t: TestContext, source: string, timeoutMs = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', source], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await exited;
  clearTimeout(timer);
  if (code === null) throw new Error(`script did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`);
  return { code, stdout, stderr };
}

const activeCheckUrl = new URL('../../src/pool/health/active-check.ts', import.meta.url).href;

/** A child process with a server that accepts and never answers, and a check of it. */
function silentBackendScript(body: string): string {
  return `
    import { createServer } from 'node:net';
    import { setTimeout as sleep } from 'node:timers/promises';
    import { ActiveHealthCheck } from ${JSON.stringify(activeCheckUrl)};
    let accepted = 0;
    const server = createServer((socket) => {
      accepted++;
      socket.resume();
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const target = { host: '127.0.0.1', port: server.address().port };
    const config = { type: 'http', path: '/', intervalMs: 20, fastIntervalMs: 10, timeoutMs: 60000, rise: 1, fall: 1, expectStatus: [[200, 399]] };
    const deadline = Date.now() + 5000;
    ${body}
  `;
}

test('ActiveHealthCheck: stop() aborts an in-flight probe and leaves nothing keeping the process alive', async (t) => {
  const script = silentBackendScript(`
    const check = new ActiveHealthCheck(target, config, { onTransition() {} });
    check.start();
    while (accepted === 0 && Date.now() < deadline) await sleep(5);
    check.stop();
    check.stop();
    server.close(() => console.log('server closed'));
  `);
  const { code, stdout, stderr } = await runScript(t, script);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /server closed/);
});

test('ActiveHealthCheck: a running check between probes does not keep the process alive (unref\'d timers)', async (t) => {
  const script = silentBackendScript(`
    await new Promise((resolve) => server.close(resolve));
    // Held only until the first result: afterwards the next probe is 60 s away on an unref'd timer.
    const keepAlive = setTimeout(() => console.log('no result within 5 s'), 5000);
    const tcp = { ...config, type: 'tcp', intervalMs: 60000, fastIntervalMs: 1 };
    const check = new ActiveHealthCheck(target, tcp, {
      onResult: () => clearTimeout(keepAlive),
      onTransition: (healthy, last) => console.log('transition', healthy, last.detail),
    });
    check.start();
  `);
  const { code, stdout, stderr } = await runScript(t, script);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /transition false connect E/);
});
