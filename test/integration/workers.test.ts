/**
 * `runtime.workers: 2`: two data-plane worker threads under the main thread's
 * control plane, against real origins and real clients on loopback. Each
 * test checks one promise of the threading model (docs/design.md, "Every
 * core"): connections spread, one balancer across threads (shared in-flight,
 * one health checker, drains that reach every worker before the admin API
 * answers), two-phase reloads, crash isolation, graceful stop, TLS
 * resumption across workers, and one /metrics that adds up.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type SecureContextOptions } from 'node:tls';
import { connect as h2connect } from 'node:http2';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/index.ts';
import { Usher } from '../../src/runtime/usher.ts';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { spawnCli } from '../helpers/cli.ts';
import { steadyLoad, until } from '../helpers/load.ts';
import { getOnConnection } from '../helpers/one-shot.ts';
import { startOrigin, startOrigins, type Origin } from '../helpers/origin.ts';
import { generateCertificate } from '../helpers/tls.ts';
import { configFromYaml } from '../helpers/usher.ts';

const crashFilter = fileURLToPath(new URL('../fixtures/filters/crash.ts', import.meta.url));

function yamlFor(origins: readonly Origin[], options: { pool?: string; routeExtra?: string; top?: string; workers?: number } = {}): string {
  return `runtime: { workers: ${options.workers ?? 2} }
accessLog: { enabled: false }
admin: { bind: 127.0.0.1:0 }
${options.top ?? ''}
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
${options.routeExtra ?? ''}
pools:
  main:
${options.pool ?? ''}
    backends:
${origins.map((o) => `      - address: ${o.address}`).join('\n')}
`;
}

async function startWith(t: TestContext, yaml: string): Promise<Usher> {
  const usher = await Usher.start(configFromYaml(yaml));
  t.after(() => usher.stop({ timeoutMs: 1000 }));
  return usher;
}

const getOnce = getOnConnection;

/** Runs `count` one-connection GETs, `concurrency` at a time. */
async function getMany(port: number, count: number, concurrency = 8, path = '/'): Promise<{ status: number; head: string; body: string }[]> {
  const results: { status: number; head: string; body: string }[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        results.push(await getOnce(port, path).catch((err: Error) => ({ status: 0, head: err.message, body: '' })));
      }
    }),
  );
  return results;
}

/** Sum of a metric's samples whose labels include all of `labels`, from Prometheus text. */
function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** A steady load stopped once, by the test or by its cleanup. */
function loadFor(t: TestContext, url: string, options: Parameters<typeof steadyLoad>[1]): { completed: () => number; stop: () => ReturnType<ReturnType<typeof steadyLoad>['stop']> } {
  const load = steadyLoad(url, options);
  let stopped: ReturnType<ReturnType<typeof steadyLoad>['stop']> | undefined;
  const stop = () => (stopped ??= load.stop());
  t.after(() => stop());
  return { completed: load.completed, stop };
}

async function admin(usher: Usher, method: string, path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${usher.adminUrl!}${path}`, { method });
  return { status: res.status, body: await res.json() };
}

test('workers: 2 spreads new connections across both workers (each serves 30-70 % of 400)', async (t) => {
  const origin = await startOrigin('one');
  t.after(() => origin.close());
  const usher = await startWith(t, yamlFor([origin]));
  const port = usher.address('web').port;
  const results = await getMany(port, 400);
  assert.equal(results.filter((r) => r.status === 200).length, 400);
  await until(() => usher.workers.reduce((sum, w) => sum + w.requests, 0) >= 400, 'both workers reported their connections', 5000);
  const shares = usher.workers.map((w) => w.requests / 400);
  assert.equal(shares.length, 2);
  for (const share of shares) assert.ok(share >= 0.3 && share <= 0.7, `shares ${shares.join(', ')}`);
});

test('one balancer across workers: maxConnections holds across both threads and least-connections picks as with one thread (within 10 %)', async (t) => {
  let slowInFlight = 0;
  let slowPeak = 0;
  const slow = await startOrigin('slow', (req: IncomingMessage, res: ServerResponse) => {
    slowInFlight++;
    slowPeak = Math.max(slowPeak, slowInFlight);
    req.resume();
    setTimeout(() => {
      slowInFlight--;
      res.writeHead(200, { 'x-origin': 'slow' }).end('slow');
    }, 40);
  });
  const fast = await startOrigin('fast');
  t.after(async () => {
    await slow.close();
    await fast.close();
  });
  const yaml = (workers: number): string =>
    yamlFor([fast, slow], { workers, pool: '    algorithm: least-connections\n' }).replace(`      - address: ${slow.address}`, `      - address: ${slow.address}\n        maxConnections: 2`);
  const shareOfFast = async (workers: number): Promise<number> => {
    const usher = await Usher.start(configFromYaml(yaml(workers)));
    try {
      const results = await getMany(usher.address('web').port, 240, 8);
      assert.equal(results.filter((r) => r.status === 200).length, 240, `workers ${workers}: ${results.filter((r) => r.status !== 200).map((r) => r.head).join('; ')}`);
      return results.filter((r) => r.body === 'fast').length / 240;
    } finally {
      await usher.stop({ timeoutMs: 1000 });
    }
  };
  const single = await shareOfFast(0);
  slowPeak = 0;
  const threaded = await shareOfFast(2);
  assert.ok(slowPeak <= 2, `the slow backend saw ${slowPeak} requests at once across both workers; maxConnections is 2`);
  assert.ok(Math.abs(threaded - single) <= 0.1, `fast backend's share: ${single.toFixed(2)} with one thread, ${threaded.toFixed(2)} with two workers`);
});

test('a drain reaches every worker before the admin API answers: no new request goes to the drained backend afterwards', async (t) => {
  const origins = await startOrigins(2, 'd');
  t.after(async () => {
    for (const o of origins) await o.close();
  });
  const usher = await startWith(t, yamlFor(origins));
  const load = loadFor(t, usher.url('web'), { concurrency: 8, maxMs: 15_000 });
  await until(() => load.completed() >= 200, 'load running');
  const drained = origins[0]!.address;
  const reply = await admin(usher, 'POST', `/api/pools/main/backends/${drained}/drain`);
  assert.equal(reply.status, 200);
  // Counters read fresh from every worker, after the answer: the drained backend's may not move from here on.
  const atAnswer = metricSum(await usher.renderMetrics(), 'usher_backend_attempts_total', { backend: drained });
  const otherAtAnswer = metricSum(await usher.renderMetrics(), 'usher_backend_attempts_total', { backend: origins[1]!.address });
  await until(async () => metricSum(await usher.renderMetrics(), 'usher_backend_attempts_total', { backend: origins[1]!.address }) >= otherAtAnswer + 300, 'more load on the other backend');
  const later = metricSum(await usher.renderMetrics(), 'usher_backend_attempts_total', { backend: drained });
  const result = await load.stop();
  assert.equal(later, atAnswer, 'requests were sent to the drained backend after the drain call returned');
  assert.deepEqual(result.failures, []);
});

test('one health checker for all workers; a killed backend leaves every worker rotation within fall x interval + timeout', async (t) => {
  let probes = 0;
  const handler = (name: string) => (req: IncomingMessage, res: ServerResponse): void => {
    if (req.url === '/healthz') probes++;
    req.resume();
    res.writeHead(200, { 'x-origin': name }).end(name);
  };
  const a = await startOrigin('a', handler('a'));
  const b = await startOrigin('b', (req, res) => (req.url === '/healthz' ? res.writeHead(200).end() : handler('b')(req, res)));
  t.after(async () => {
    await a.close();
    await b.close();
  });
  const pool = '    healthCheck: { path: /healthz, interval: 200ms, timeout: 100ms, fall: 2, rise: 1 }\n    unreachable: false\n    retry: { attempts: 0 }\n';
  const usher = await startWith(t, yamlFor([a, b], { pool }));
  probes = 0;
  const from = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const seconds = (performance.now() - from) / 1000;
  // One checker probes `a` every 200 ms (with jitter): about 10 in 2 s. One per worker would be 20 or more.
  assert.ok(probes >= 5 && probes <= Math.ceil(seconds * 5 * 1.4), `${probes} probes of one backend in ${seconds.toFixed(1)} s at a 200 ms interval`);

  await b.close();
  const killedAt = performance.now();
  const outMs = await until(async () => {
    const reply = await admin(usher, 'GET', '/api/pools/main');
    const backends = (reply.body as { backends: { address: string; state: string }[] }).backends;
    return backends.find((x) => x.address === b.address)?.state === 'unhealthy';
  }, 'b unhealthy', 5000, 20);
  assert.ok(outMs <= 2 * 200 + 100 + 400, `left rotation ${Math.round(performance.now() - killedAt)} ms after the kill`);
  await usher.settled();
  const before = metricSum(await usher.renderMetrics(), 'usher_backend_attempts_total', { backend: b.address });
  const results = await getMany(usher.address('web').port, 60);
  assert.deepEqual([...new Set(results.map((r) => `${r.status} ${r.body}`))], ['200 a'], 'every worker sends everything to a');
  assert.equal(metricSum(await usher.renderMetrics(), 'usher_backend_attempts_total', { backend: b.address }), before, 'no worker tried b');
});

test('a reload under load fails no request, and afterwards every worker serves the new config', async (t) => {
  const origins = await startOrigins(2, 'r');
  t.after(async () => {
    for (const o of origins) await o.close();
  });
  const dir = mkdtempSync(join(tmpdir(), 'usher-workers-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'usher.yaml');
  writeFileSync(file, yamlFor(origins));
  const first = await loadConfig(file, {});
  assert.ok(first.ok);
  const usher = await Usher.start(first.config, { configSource: () => loadConfig(file, {}) });
  t.after(() => usher.stop({ timeoutMs: 1000 }));
  const load = loadFor(t, usher.url('web'), { concurrency: 6, maxMs: 15_000 });
  await until(() => load.completed() >= 200, 'load running');
  writeFileSync(file, yamlFor(origins, { routeExtra: '        filters:\n          - headers: { response: { set: { x-generation: "2" } } }\n' }));
  const reloaded = await admin(usher, 'POST', '/api/reload');
  assert.equal(reloaded.status, 200, JSON.stringify(reloaded.body));
  const after = await getMany(usher.address('web').port, 80);
  const result = await load.stop();
  assert.deepEqual(result.failures, []);
  assert.equal(after.filter((r) => r.status === 200 && /\r\nx-generation: 2/i.test(r.head)).length, 80, 'a response without the new header came from a worker on the old config');
});

test('a worker that dies of an uncaught exception is replaced; its in-flight counts return to 0; the other worker loses nothing', async (t) => {
  const origins = await startOrigins(2, 'c');
  t.after(async () => {
    for (const o of origins) await o.close();
  });
  const routeExtra = `        filters:\n          - module: ${crashFilter}\n`;
  const config = await loadConfigFromText(yamlFor(origins, { routeExtra }));
  const usher = await Usher.start(config);
  t.after(() => usher.stop({ timeoutMs: 1000 }));
  const port = usher.address('web').port;
  const load = loadFor(t, usher.url('web'), { concurrency: 8, maxMs: 20_000 });
  await until(() => load.completed() >= 300, 'load running');
  const crashedAt = performance.now();
  await getOnce(port, '/crash').catch(() => undefined);
  // Deadlines for a busy CI machine; how fast the replacement serves is a figure (diagnostic below), not a test.
  await until(() => usher.workers.some((w) => w.restarts > 0), 'a worker restart', 15_000);
  await until(() => usher.workers.every((w) => w.state === 'serving'), 'the replacement serving', 15_000);
  const replacedMs = performance.now() - crashedAt;
  t.diagnostic(`replacement serving ${Math.round(replacedMs)} ms after the crash`);
  const result = await load.stop();
  // Each kept-alive connection the dead worker held loses at most its one request in flight; no other fails.
  assert.ok(result.failures.length <= 8, `${result.failures.length} failures: ${result.failures.map((f) => f.error).join('; ')}`);
  const after = await getMany(port, 60);
  assert.equal(after.filter((r) => r.status === 200).length, 60);
  await until(async () => {
    const reply = await admin(usher, 'GET', '/api/pools/main');
    return (reply.body as { backends: { inFlight: number }[] }).backends.every((b) => b.inFlight === 0);
  }, 'in-flight counts back to 0', 3000);
});

test('a planned worker restart under continuous new connections resets and refuses none: the sockets are handed back open', async (t) => {
  const origins = await startOrigins(2, 'p');
  t.after(async () => {
    for (const o of origins) await o.close();
  });
  const usher = await startWith(t, yamlFor(origins));
  const port = usher.address('web').port;
  let stop = false;
  const results: { status: number; head: string; body: string }[] = [];
  const clients = Array.from({ length: 8 }, async () => {
    while (!stop) results.push(await getOnce(port).catch((err: Error) => ({ status: 0, head: err.message, body: '' })));
  });
  await until(() => results.length >= 200, 'new connections flowing');
  for (const index of [0, 1, 0]) {
    const before = results.length;
    const reply = await admin(usher, 'POST', `/api/workers/${index}/restart`);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    await until(() => results.length >= before + 100, 'connections after the restart');
  }
  assert.equal((await admin(usher, 'POST', '/api/workers/2/restart')).status, 404);
  stop = true;
  await Promise.all(clients);
  const failed = results.filter((r) => r.status !== 200);
  assert.deepEqual(failed.map((r) => r.head), [], `${failed.length} of ${results.length} connections failed`);
  assert.deepEqual(usher.workers.map((w) => [w.state, w.restarts]), [['serving', 2], ['serving', 1]]);
  await until(async () => {
    const reply = await admin(usher, 'GET', '/api/pools/main');
    return (reply.body as { backends: { inFlight: number }[] }).backends.every((b) => b.inFlight === 0);
  }, 'in-flight counts back to 0 (the old threads\' rows cleared)', 5000);
});

test('a worker that keeps crashing is replaced with a growing delay (100, 200, 400 ms ...), logged each time; the process stays up', async (t) => {
  const origin = await startOrigin('loop');
  t.after(() => origin.close());
  const routeExtra = `        filters:\n          - module: ${fileURLToPath(new URL('../fixtures/filters/crash-on-load.ts', import.meta.url))}\n`;
  const config = await loadConfigFromText(yamlFor([origin], { routeExtra, workers: 1 }));
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _encoding, done) => (lines.push(chunk.toString()), done()) }));
  const usher = await Usher.start(config, { logger });
  t.after(() => usher.stop({ timeoutMs: 500 }));
  await until(() => (usher.workers[0]?.restarts ?? 0) >= 4, 'four restarts', 20_000, 50);
  const delays = lines.filter((line) => line.includes('worker thread exited; replacing it')).map((line) => (JSON.parse(line) as { respawnInMs: number }).respawnInMs);
  assert.deepEqual(delays.slice(0, 4), [100, 200, 400, 800], lines.join(''));
  assert.equal(usher.workers[0]?.restarts, delays.length);
});

test('SIGTERM with slow requests in flight on both workers completes them and exits 0', async (t) => {
  const slow = await startOrigin('slow', (req, res) => {
    req.resume();
    setTimeout(() => res.writeHead(200).end('done'), 600);
  });
  t.after(() => slow.close());
  const dir = mkdtempSync(join(tmpdir(), 'usher-workers-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'usher.yaml');
  writeFileSync(file, yamlFor([slow]).replace('admin: { bind: 127.0.0.1:0 }\n', ''));
  const cli = spawnCli(['start', '-c', file], { USHER_WORKERS: '2' });
  t.after(() => {
    if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
  });
  const match = await cli.waitFor(/"address":"http:\/\/127\.0\.0\.1:(\d+)","workers":2/);
  const port = Number(match[1]);
  const inFlight = Array.from({ length: 12 }, () => getOnce(port));
  await until(() => slow.seen.length >= 12, 'all 12 requests at the origin', 5000);
  cli.child.kill('SIGTERM');
  const results = await Promise.all(inFlight);
  assert.deepEqual(results.map((r) => `${r.status} ${r.body}`), Array(12).fill('200 done'));
  assert.equal(await cli.exited, 0, cli.stderr);
});

test('TLS sessions resume across workers: the workers share ticket keys, and rotate them together', async (t) => {
  const origin = await startOrigin('tls-backend');
  t.after(() => origin.close());
  const cert = generateCertificate(['resume.example']);
  const dir = mkdtempSync(join(tmpdir(), 'usher-workers-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'cert.pem'), cert.cert);
  writeFileSync(join(dir, 'key.pem'), cert.key);
  const yaml = yamlFor([origin]).replace(
    '    bind: 127.0.0.1:0\n    routes:',
    `    bind: 127.0.0.1:0\n    protocol: https\n    tls:\n      certificates:\n        - { cert: ${join(dir, 'cert.pem')}, key: ${join(dir, 'key.pem')} }\n      alpn: [http/1.1]\n    routes:`,
  );
  const usher = await startWith(t, yaml);
  const port = usher.address('web').port;
  /** One request on a new connection offering `session`: whether it resumed, and the ticket it was given. */
  const reconnect = async (session: Buffer | undefined): Promise<{ resumed: boolean; ticket: Buffer | undefined }> => {
    const options: SecureContextOptions & { host: string; port: number; servername: string; ca: string; session?: Buffer } = { host: '127.0.0.1', port, servername: 'resume.example', ca: cert.cert, ...(session ? { session } : {}) };
    const socket = tlsConnect(options);
    let ticket: Buffer | undefined;
    // TLS 1.3 tickets arrive after the handshake; the last one seen is offered on the next connection.
    socket.on('session', (given: Buffer) => (ticket = given));
    await once(socket, 'secureConnect');
    const resumed = socket.isSessionReused();
    socket.write('GET / HTTP/1.1\r\nhost: resume.example\r\nconnection: close\r\n\r\n');
    socket.resume();
    await once(socket, 'close');
    return { resumed, ticket };
  };
  /** Reconnects `count` times offering the latest ticket each time; counts the resumed ones. */
  const resumptions = async (count: number, first: Buffer): Promise<number> => {
    let session = first;
    let resumed = 0;
    for (let i = 0; i < count; i++) {
      const got = await reconnect(session);
      if (got.resumed) resumed++;
      if (got.ticket !== undefined) session = got.ticket;
    }
    return resumed;
  };
  const before = (await reconnect(undefined)).ticket;
  assert.ok(before !== undefined, 'the first connection got a session ticket');
  const reconnects = 20;
  const resumed = await resumptions(reconnects, before);
  assert.ok(resumed >= reconnects * 0.9, `${resumed} of ${reconnects} reconnects resumed`);

  // A rotation reaches every worker before it resolves: the old ticket resumes nowhere, a new one everywhere.
  await usher.rotateTicketKeys();
  let oldResumed = 0;
  for (let i = 0; i < 10; i++) if ((await reconnect(before)).resumed) oldResumed++;
  assert.equal(oldResumed, 0, 'a ticket from before the rotation is refused by every worker');
  const after = (await reconnect(undefined)).ticket;
  assert.ok(after !== undefined);
  const resumedAfter = await resumptions(10, after);
  assert.ok(resumedAfter >= 9, `${resumedAfter} of 10 reconnects resumed after the rotation`);
});

test('/metrics totals over both workers equal what the clients sent', async (t) => {
  const origins = await startOrigins(2, 'm');
  t.after(async () => {
    for (const o of origins) await o.close();
  });
  const usher = await startWith(t, yamlFor(origins));
  const results = await getMany(usher.address('web').port, 300);
  const load = loadFor(t, usher.url('web'), { concurrency: 4, maxRequests: 200 });
  await until(() => load.completed() >= 200, 'the kept-alive requests', 10_000);
  const kept = await load.stop();
  assert.equal(results.filter((r) => r.status === 200).length + kept.ok, 500);
  const res = await fetch(`${usher.adminUrl!}/metrics`);
  const text = await res.text();
  assert.equal(metricSum(text, 'usher_http_requests_total', { listener: 'web' }), 500, text.split('\n').filter((l) => l.startsWith('usher_http_requests_total')).join('\n'));
  assert.equal(metricSum(text, 'usher_backend_attempts_total'), 500);
  assert.equal(metricSum(text, 'usher_upstream_duration_seconds_count'), 500, 'the workers\' upstream latency histograms are summed');
  // The dashboard's recent traffic merges every worker's window too (reports arrive each second).
  await until(async () => {
    const reply = await admin(usher, 'GET', '/api/pools/main');
    const recent = (reply.body as { backends: { recent: { requests: number } }[] }).backends.reduce((sum, b) => sum + b.recent.requests, 0);
    return recent === 500;
  }, 'recent traffic of both workers summed to 500', 5000, 50);
  const address = (origins[0]!.server.address() as AddressInfo).port;
  assert.ok(address > 0);
});

/** A config from YAML text with its modules loaded (a filter module), as `usher start` loads a file. */
async function loadConfigFromText(yaml: string) {
  const dir = mkdtempSync(join(tmpdir(), 'usher-workers-'));
  const file = join(dir, 'usher.yaml');
  writeFileSync(file, yaml);
  try {
    const result = await loadConfig(file, {});
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    return result.config;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void createServer;

test('every listener protocol runs in the workers: HTTP/2 over TLS, a WebSocket upgrade and a tcp listener', async (t) => {
  // An HTTP/1.1 origin that also completes WebSocket handshakes, then echoes bytes.
  const origin = await startOrigin('multi');
  origin.server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    const key = String(req.headers['sec-websocket-key']);
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\n\r\n`);
    socket.on('data', (chunk: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), chunk])));
  });
  t.after(() => origin.close());
  const cert = generateCertificate(['multi.example']);
  const dir = mkdtempSync(join(tmpdir(), 'usher-workers-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'cert.pem'), cert.cert);
  writeFileSync(join(dir, 'key.pem'), cert.key);
  const usher = await startWith(
    t,
    `runtime: { workers: 2 }
accessLog: { enabled: false }
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes: [ { pool: main } ]
  - name: secure
    bind: 127.0.0.1:0
    protocol: https
    tls:
      certificates:
        - { cert: ${join(dir, 'cert.pem')}, key: ${join(dir, 'key.pem')} }
    routes: [ { pool: main } ]
  - name: raw
    bind: 127.0.0.1:0
    protocol: tcp
    routes: [ { pool: main } ]
pools:
  main:
    backends: [ { address: ${origin.address} } ]
`,
  );
  // HTTP/2 (ALPN h2), several streams on one session.
  const session = h2connect(`https://127.0.0.1:${usher.address('secure').port}`, { ca: cert.cert, servername: 'multi.example' });
  t.after(() => session.destroy());
  const bodies = await Promise.all(
    Array.from({ length: 4 }, () =>
      new Promise<string>((resolve, reject) => {
        const stream = session.request({ ':path': '/h2', ':authority': 'multi.example' });
        let body = '';
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => (body += chunk));
        stream.on('end', () => resolve(body));
        stream.on('error', reject);
      }),
    ),
  );
  assert.deepEqual(bodies, Array(4).fill('multi'));
  // A WebSocket upgrade, then bytes both ways through the tunnel.
  const ws = netConnect(usher.address('web').port, '127.0.0.1');
  t.after(() => ws.destroy());
  let received = '';
  ws.setEncoding('latin1');
  ws.on('data', (chunk: string) => (received += chunk));
  ws.write('GET /ws HTTP/1.1\r\nhost: multi.example\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n');
  await until(() => received.includes('\r\n\r\n'), 'the 101');
  assert.match(received, /^HTTP\/1\.1 101 /);
  ws.write('ping');
  await until(() => received.endsWith('echo:ping'), 'the echo through the tunnel');
  // The tcp listener relays the bytes of an HTTP/1.0 exchange untouched.
  const tcp = await getOnConnection(usher.address('raw').port, '/tcp');
  assert.equal(tcp.status, 200);
  assert.equal(tcp.body, 'multi');
});
