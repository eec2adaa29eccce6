/**
 * Route filters end to end, each over HTTP/1.1 and HTTP/2 from the same https
 * listener (ALPN picks), against real origins on 127.0.0.1:0: the built-in
 * filters (headers, rewrite, stripPrefix, redirect, ipAllow, ipDeny), the
 * forwardAuth filter against an auth service running as its own process
 * (allow, deny with its body, down, slow, too big), and user filters loaded
 * from TypeScript modules through YAML (a synchronous and an asynchronous
 * example, a body transform, and filters that throw, time out or are left by
 * their client).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { connect as h2connect, createServer as createH2cServer, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.ts';
import { createAccessLog } from '../../src/observe/access-log.ts';
import { Usher } from '../../src/runtime/usher.ts';
import { until } from '../helpers/load.ts';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { refusedPort } from '../helpers/refused.ts';
import { generateCertificate } from '../helpers/tls.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..', '..');

type Protocol = 'HTTP/1.1' | 'HTTP/2';
const PROTOCOLS: readonly Protocol[] = ['HTTP/1.1', 'HTTP/2'];

interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

interface Request {
  readonly method?: string;
  readonly path: string;
  readonly host?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

/** What every test gets: usher on an https listener, the origin behind it, and a client per protocol. */
interface World {
  readonly usher: Usher;
  readonly origin: Origin;
  readonly logLines: string[];
  send(protocol: Protocol, request: Request): Promise<Reply>;
}

/** An auth service in a child process (test/fixtures/auth-server.ts); killed in t.after. */
async function startAuthServer(t: TestContext): Promise<number> {
  const child = spawn(process.execPath, [join(root, 'test', 'fixtures', 'auth-server.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  const deadline = Date.now() + 10_000;
  while (!out.includes('\n')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`auth server did not start: ${out}`);
    const [chunk] = (await Promise.race([once(child.stdout, 'data'), once(child, 'exit')])) as [Buffer | number];
    if (Buffer.isBuffer(chunk)) out += chunk.toString();
  }
  return (JSON.parse(out.slice(0, out.indexOf('\n'))) as { port: number }).port;
}

/**
 * Starts the world: writes the YAML (with `${CERT}`, `${KEY}`, `${ORIGIN}`,
 * `${AUTH}`, `${DOWN}` filled in) into a temp dir next to nothing, loads it
 * with the asynchronous loader (filter modules are absolute paths here), and
 * starts usher with a logger whose lines the test can read.
 */
async function startWorld(t: TestContext, routes: string, options: { auth?: boolean; pools?: string } = {}): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'usher-filters-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const certificate = generateCertificate(['filters.test', '*.filters.test']);
  writeFileSync(join(dir, 'cert.pem'), certificate.cert);
  writeFileSync(join(dir, 'key.pem'), certificate.key);
  const origin = await startOrigin('origin', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = `hello from origin${chunks.length > 0 ? `: ${Buffer.concat(chunks).toString()}` : ''}`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), server: 'origin/1.0' }).end(body);
    });
  });
  t.after(() => origin.close());
  const auth = options.auth === true ? await startAuthServer(t) : 0;
  const down = await refusedPort();
  const yaml = `listeners:
  - name: secure
    bind: 127.0.0.1:0
    protocol: https
    tls:
      certificates:
        - { cert: cert.pem, key: key.pem }
    routes:
${routes}
pools:
  main:
    backends:
      - address: ${origin.address}
${options.pools ?? ''}`
    .replaceAll('${ORIGIN}', origin.address)
    .replaceAll('${AUTH}', `127.0.0.1:${auth}`)
    .replaceAll('${DOWN}', `127.0.0.1:${down}`)
    .replaceAll('${FIXTURES}', join(root, 'test', 'fixtures', 'filters'))
    .replaceAll('${EXAMPLES}', join(root, 'examples', 'filters'));
  writeFileSync(join(dir, 'usher.yaml'), yaml);
  const result = await loadConfig(join(dir, 'usher.yaml'), {});
  if (!result.ok) throw new Error(`invalid test config:\n${result.errors.map((e) => `${e.path}: ${e.message}`).join('\n')}`);
  const logLines: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _encoding, done) => (logLines.push(chunk.toString()), done()) }));
  const usher = await Usher.start(result.config, { logger, accessLog: createAccessLog({ enabled: false }) });
  t.after(() => usher.stop({ timeoutMs: 500 }));
  const port = usher.address('secure').port;
  let session: ClientHttp2Session | undefined;
  const h2 = (): ClientHttp2Session => {
    if (session === undefined || session.closed || session.destroyed) {
      session = h2connect(`https://127.0.0.1:${port}`, { ca: certificate.cert, servername: 'filters.test' });
      session.on('error', () => {});
      const opened = session;
      t.after(() => opened.destroy());
    }
    return session;
  };
  return {
    usher,
    origin,
    logLines,
    send(protocol, request) {
      return protocol === 'HTTP/2' ? send2(h2(), request) : send1(port, certificate.cert, request);
    },
  };
}

function send1(port: number, ca: string, request: Request): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path: request.path, method: request.method ?? 'GET', servername: 'filters.test', ca, agent: false, ...({ ALPNProtocols: ['http/1.1'] } as object), headers: { host: request.host ?? 'filters.test', ...request.headers } },
      (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(request.body);
  });
}

function send2(session: ClientHttp2Session, request: Request): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': request.method ?? 'GET', ':path': request.path, ':authority': request.host ?? 'filters.test', ...request.headers }, { endStream: request.body === undefined });
    let headers: IncomingHttpHeaders = {};
    let body = '';
    stream.setEncoding('latin1');
    stream.on('response', (h) => (headers = h));
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('error', reject);
    stream.on('close', () => resolve({ status: Number(headers[':status'] ?? 0), headers, body }));
    if (request.body !== undefined) stream.end(request.body);
  });
}

/** The origin's record of the last request whose path is `path`. */
function seen(origin: Origin, path: string) {
  const found = origin.seen.findLast((request) => request.url === path);
  assert.ok(found, `the origin saw ${path} (it saw ${origin.seen.map((r) => r.url).join(', ')})`);
  return found;
}

test('headers: request set/add/remove reach the backend, response set/remove reach the client, on HTTP/1.1 and HTTP/2', async (t) => {
  const world = await startWorld(t, `      - match: { pathPrefix: /h }
        pool: main
        filters:
          - headers:
              request: { set: { x-env: prod, X-Shout: Loud }, add: { via: [usher-a, usher-b] }, remove: [x-debug] }
              response: { set: { x-frame-options: DENY }, add: { cache-control: no-store }, remove: [server] }`);
  for (const protocol of PROTOCOLS) {
    const reply = await world.send(protocol, { path: `/h/${protocol === 'HTTP/2' ? 2 : 1}`, headers: { 'x-env': 'dev', 'x-debug': '1', 'x-keep': 'yes' } });
    assert.equal(reply.status, 200, protocol);
    assert.equal(reply.body, 'hello from origin');
    assert.equal(reply.headers['x-frame-options'], 'DENY', protocol);
    assert.equal(reply.headers['cache-control'], 'no-store', protocol);
    assert.equal(reply.headers['server'], undefined, `${protocol}: server removed`);
    assert.equal(reply.headers['content-type'], 'text/plain', protocol);
    const at = seen(world.origin, `/h/${protocol === 'HTTP/2' ? 2 : 1}`);
    assert.equal(at.headers['x-env'], 'prod', `${protocol}: set replaces the client's value`);
    assert.equal(at.headers['x-shout'], 'Loud');
    assert.equal(at.headers['x-debug'], undefined, `${protocol}: removed`);
    assert.equal(at.headers['x-keep'], 'yes');
    assert.equal(at.headers['via'], 'usher-a, usher-b');
    assert.equal(at.headers['x-forwarded-proto'], 'https');
    assert.equal(at.rawHeaders.filter((name) => name.toLowerCase() === 'x-env').length, 1, 'one x-env field');
  }
});

test('rewrite: prefix, regex with captures and Host; stripPrefix and rewrite run in order; the query is kept', async (t) => {
  const world = await startWorld(t, `      - match: { pathPrefix: /old }
        pool: main
        filters:
          - rewrite: { prefix: { from: /old, to: /new } }
      - match: { pathPrefix: /users }
        pool: main
        filters:
          - rewrite: { regex: { pattern: '^/users/([0-9]+)/(\\w+)$', replacement: '/u/$1?tab=$2' }, host: internal.example }
      - match: { pathPrefix: /api }
        pool: main
        stripPrefix: /api
        filters:
          - rewrite: { prefix: { from: /v1, to: /v2 } }
      - match: { path: /fixed }
        pool: main
        filters:
          - rewrite: { path: /elsewhere }`);
  for (const protocol of PROTOCOLS) {
    const n = protocol === 'HTTP/2' ? 2 : 1;
    assert.equal((await world.send(protocol, { path: `/old/a${n}?q=1` })).status, 200);
    seen(world.origin, `/new/a${n}?q=1`);
    if (n === 1) {
      assert.equal((await world.send(protocol, { path: '/old' })).status, 200);
      seen(world.origin, '/new');
    }
    assert.equal((await world.send(protocol, { path: `/api/v1/items${n}` })).status, 200);
    seen(world.origin, `/v2/items${n}`);
    assert.equal((await world.send(protocol, { path: `/fixed?k=${n}` })).status, 200);
    seen(world.origin, `/elsewhere?k=${n}`);
  }
  // A regex replacement that writes a `?` into the path is refused: the request fails, the process goes on.
  for (const protocol of PROTOCOLS) {
    const reply = await world.send(protocol, { path: '/users/7/posts', host: 'front.example' });
    assert.equal(reply.status, 500, protocol);
    assert.equal(reply.headers['x-usher-error'], 'filter_error');
  }
  assert.ok(world.logLines.some((line) => line.includes('"filter":"rewrite"') && line.includes('setPath')), 'logged with the filter name');
});

test('rewrite host: the backend gets the new Host, X-Forwarded-Host keeps the client\'s', async (t) => {
  const world = await startWorld(t, `      - pool: main
        filters:
          - rewrite: { regex: { pattern: '^/users/([0-9]+)$', replacement: '/u/$1' }, host: internal.example }`);
  for (const protocol of PROTOCOLS) {
    const n = protocol === 'HTTP/2' ? 22 : 11;
    assert.equal((await world.send(protocol, { path: `/users/${n}`, host: 'front.example' })).status, 200);
    const at = seen(world.origin, `/u/${n}`);
    assert.equal(at.headers['host'], 'internal.example', protocol);
    assert.equal(at.headers['x-forwarded-host'], 'front.example', protocol);
  }
});

test('redirect is the last filter: earlier filters still run, and their response phase edits the redirect', async (t) => {
  const world = await startWorld(t, `      - match: { pathPrefix: /private }
        redirect: { scheme: https, host: login.example }
        filters:
          - ipDeny: [203.0.113.0/24]
          - headers: { response: { set: { x-redirected-by: usher } } }
      - match: { pathPrefix: /go }
        redirect: { host: new.example, code: 301 }`);
  for (const protocol of PROTOCOLS) {
    const reply = await world.send(protocol, { path: '/private/x?y=1' });
    assert.equal(reply.status, 308, protocol);
    assert.equal(reply.headers['location'], 'https://login.example/private/x?y=1');
    assert.equal(reply.headers['x-redirected-by'], 'usher', `${protocol}: the headers filter's response phase ran on the redirect`);
    assert.equal(reply.headers['content-length'], '0');
    const plain = await world.send(protocol, { path: '/go/z' });
    assert.equal(plain.status, 301);
    assert.equal(plain.headers['location'], 'https://new.example/go/z');
  }
  assert.equal(world.origin.seen.length, 0, 'no request reached a backend');
});

test('ipAllow and ipDeny: the client address decides, 403 forbidden otherwise', async (t) => {
  const world = await startWorld(t, `      - match: { pathPrefix: /allow-local }
        pool: main
        filters: [ { ipAllow: [127.0.0.0/8, '::1'] } ]
      - match: { pathPrefix: /allow-ten }
        pool: main
        filters: [ { ipAllow: [10.0.0.0/8] } ]
      - match: { pathPrefix: /deny-local }
        pool: main
        filters: [ { ipDeny: [127.0.0.1] } ]
      - match: { pathPrefix: /deny-other }
        pool: main
        filters: [ { ipDeny: [192.0.2.0/24] } ]`);
  for (const protocol of PROTOCOLS) {
    assert.equal((await world.send(protocol, { path: '/allow-local' })).status, 200, protocol);
    assert.equal((await world.send(protocol, { path: '/deny-other' })).status, 200, protocol);
    for (const path of ['/allow-ten', '/deny-local']) {
      const reply = await world.send(protocol, { path });
      assert.equal(reply.status, 403, `${protocol} ${path}`);
      assert.equal(reply.headers['x-usher-error'], 'forbidden');
    }
  }
  assert.deepEqual(world.origin.seen.map((r) => r.url).sort(), ['/allow-local', '/allow-local', '/deny-other', '/deny-other']);
});

test('forwardAuth against an auth service process: allow copies headers (never the client\'s forgery), deny passes its answer through', async (t) => {
  const world = await startWorld(
    t,
    `      - match: { pathPrefix: /app }
        pool: main
        filters:
          - forwardAuth:
              url: http://\${AUTH}/verify
              requestHeaders: [authorization, cookie]
              copyHeaders: [x-user-id, x-auth-saw]`,
    { auth: true },
  );
  for (const protocol of PROTOCOLS) {
    const n = protocol === 'HTTP/2' ? 2 : 1;
    const allowed = await world.send(protocol, { method: 'POST', path: `/app/${n}?a=b`, headers: { authorization: 'Bearer good', cookie: 'sid=s1', 'x-user-id': 'forged' }, body: 'payload' });
    assert.equal(allowed.status, 200, protocol);
    assert.equal(allowed.body, 'hello from origin: payload', `${protocol}: the held body reached the backend whole`);
    const at = seen(world.origin, `/app/${n}?a=b`);
    assert.equal(at.headers['x-user-id'], '42', `${protocol}: the auth service's value, not the client's`);
    assert.equal(at.headers['x-not-copied'], undefined);
    assert.equal(at.headers['x-auth-saw'], `POST /app/${n}?a=b filters.test https 127.0.0.1 cookie=sid=s1`, `${protocol}: what the auth service was told`);

    await world.send(protocol, { path: `/app/anon${n}`, headers: { authorization: 'Bearer anon', 'x-user-id': 'forged' } });
    assert.equal(seen(world.origin, `/app/anon${n}`).headers['x-user-id'], undefined, `${protocol}: a 2xx without x-user-id removes the client's`);

    const denied = await world.send(protocol, { path: `/app/secret${n}`, headers: { authorization: 'Bearer bad' } });
    assert.equal(denied.status, 401, protocol);
    assert.equal(denied.body, 'denied by auth\n');
    assert.equal(denied.headers['www-authenticate'], 'Bearer realm="usher-test"');
    assert.equal(denied.headers['x-auth-reason'], 'bad token');
    assert.equal(denied.headers['content-length'], String('denied by auth\n'.length));
    assert.ok(typeof denied.headers['x-request-id'] === 'string');
    const login = await world.send(protocol, { path: `/app/login${n}`, headers: { authorization: 'Bearer login' } });
    assert.equal(login.status, 302);
    assert.equal(login.headers['location'], '/login?next=x');
  }
  assert.equal(world.origin.seen.filter((r) => r.url.includes('secret') || r.url.includes('login')).length, 0, 'denied requests never reached the backend');
});

test('forwardAuth when the auth service is down, slow or too chatty: 503 auth_unavailable, or 401 with onError: 401', async (t) => {
  const world = await startWorld(
    t,
    `      - match: { pathPrefix: /down }
        pool: main
        filters: [ { forwardAuth: { url: http://\${DOWN}/verify } } ]
      - match: { pathPrefix: /down401 }
        pool: main
        filters: [ { forwardAuth: { url: http://\${DOWN}/verify, onError: 401 } } ]
      - match: { pathPrefix: /slow }
        pool: main
        filters: [ { forwardAuth: { url: http://\${AUTH}/slow, timeout: 200ms } } ]
      - match: { pathPrefix: /huge }
        pool: main
        filters: [ { forwardAuth: { url: http://\${AUTH}/huge, maxResponseBytes: 1KiB } } ]`,
    { auth: true },
  );
  for (const protocol of PROTOCOLS) {
    for (const [path, status, reason] of [['/down401', 401, 'unauthorized'], ['/down', 503, 'auth_unavailable'], ['/slow', 503, 'auth_unavailable'], ['/huge', 503, 'auth_unavailable']] as const) {
      const reply = await world.send(protocol, { path });
      assert.equal(reply.status, status, `${protocol} ${path}`);
      assert.equal(reply.headers['x-usher-error'], reason, `${protocol} ${path}`);
    }
  }
  assert.equal(world.origin.seen.length, 0);
  assert.ok(world.logLines.some((line) => line.includes('auth service unavailable')), 'logged');
});

test('user filters from YAML: the synchronous and asynchronous examples, on HTTP/1.1 and HTTP/2', async (t) => {
  const world = await startWorld(t, `      - match: { pathPrefix: /t }
        pool: main
        filters:
          - module: \${EXAMPLES}/tenant.ts
            options: { tenants: [acme, globex] }
      - match: { pathPrefix: /k }
        pool: main
        filters:
          - module: \${EXAMPLES}/api-keys.ts
            options: { keys: { k-123: team-a }, delayMs: 1 }`);
  for (const protocol of PROTOCOLS) {
    const n = protocol === 'HTTP/2' ? 2 : 1;
    const ok = await world.send(protocol, { path: `/t/${n}`, host: 'acme.filters.test', headers: { 'x-tenant': 'evil' } });
    assert.equal(ok.status, 200, protocol);
    assert.equal(ok.headers['x-served-tenant'], 'acme');
    assert.equal(seen(world.origin, `/t/${n}`).headers['x-tenant'], 'acme');
    const unknown = await world.send(protocol, { path: '/t/x', host: 'initech.filters.test' });
    assert.equal(unknown.status, 404, protocol);
    assert.equal(unknown.body, 'unknown tenant\n');

    const keyed = await world.send(protocol, { method: 'PUT', path: `/k/${n}`, headers: { 'x-api-key': 'k-123' }, body: 'b'.repeat(100_000) });
    assert.equal(keyed.status, 200, protocol);
    assert.equal(keyed.body, `hello from origin: ${'b'.repeat(100_000)}`, `${protocol}: a body sent while the filter waited arrives whole`);
    const at = seen(world.origin, `/k/${n}`);
    assert.equal(at.headers['x-api-owner'], 'team-a');
    assert.equal(at.headers['x-api-key'], undefined);
    const refused = await world.send(protocol, { path: '/k/x', headers: { 'x-api-key': 'nope' } });
    assert.equal(refused.status, 401);
    assert.equal(refused.headers['www-authenticate'], 'ApiKey');
  }
});

test('a filter that throws (sync or async), returns nonsense or makes a forbidden edit: 500 filter_error, logged and counted, and the next request is fine', async (t) => {
  const world = await startWorld(t, `      - name: faulty-route
        match: { pathPrefix: /f }
        pool: main
        filters:
          - headers: { response: { set: { x-outer: seen } } }
          - module: \${FIXTURES}/faulty.ts`);
  let failures = 0;
  for (const protocol of PROTOCOLS) {
    for (const path of ['/f/sync-throw', '/f/async-throw', '/f/bad-verdict', '/f/bad-edit', '/f/response-throw']) {
      const reply = await world.send(protocol, { path });
      failures++;
      assert.equal(reply.status, 500, `${protocol} ${path}`);
      assert.equal(reply.headers['x-usher-error'], 'filter_error', `${protocol} ${path}`);
      const next = await world.send(protocol, { path: '/f/fine' });
      assert.equal(next.status, 200, `${protocol}: the request after ${path}`);
      assert.equal(next.headers['x-faulty'], 'passed');
      assert.equal(next.headers['x-outer'], 'seen');
    }
  }
  const logged = world.logLines.filter((line) => line.includes('"filter":"faulty"') && line.includes('"route":"faulty-route"'));
  assert.equal(logged.length, failures, 'each failure logged once, with route and filter');
  const metrics = await world.usher.metrics.metrics();
  assert.match(metrics, new RegExp(`usher_filter_errors_total\\{listener="secure",route="faulty-route",filter="faulty"\\} ${failures}`));
});

test('an asynchronous filter is bounded by its timeout (504 filter_timeout), and a client that leaves aborts it', async (t) => {
  const world = await startWorld(t, `      - match: { pathPrefix: /wait }
        pool: main
        filters:
          - module: \${FIXTURES}/waiter.ts`);
  globalThis.usherWaiterAborts = 0;
  globalThis.usherWaiterStarts = 0;
  for (const protocol of PROTOCOLS) {
    const reply = await world.send(protocol, { path: '/wait/timeout' });
    assert.equal(reply.status, 504, protocol);
    assert.equal(reply.headers['x-usher-error'], 'filter_timeout');
  }
  await until(() => globalThis.usherWaiterAborts === 2, 'both timeouts aborted the filter signal');
  // HTTP/1.1: the client sends a request and leaves.
  const port = world.usher.address('secure').port;
  const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'filters.test', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
  await once(socket, 'secureConnect');
  socket.write('GET /wait/leave HTTP/1.1\r\nHost: filters.test\r\n\r\n');
  await until(() => globalThis.usherWaiterStarts === 3, 'the request is waiting on the filter');
  socket.destroy();
  await until(() => globalThis.usherWaiterAborts === 3, 'leaving aborted the filter (HTTP/1.1)');
  // HTTP/2: the client resets the stream.
  const session = h2connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, servername: 'filters.test' });
  session.on('error', () => {});
  t.after(() => session.destroy());
  const stream = session.request({ ':path': '/wait/leave2', ':authority': 'filters.test' });
  stream.on('error', () => {});
  await until(() => globalThis.usherWaiterStarts === 4, 'the stream is waiting on the filter');
  stream.close();
  await until(() => globalThis.usherWaiterAborts === 4, 'a reset aborted the filter (HTTP/2)');
  assert.equal(world.origin.seen.length, 0);
});

test('a response body transform: HTTP/1.1 clients get it chunked, HTTP/2 clients without content-length; other routes keep theirs', async (t) => {
  const world = await startWorld(t, `      - match: { pathPrefix: /upper }
        pool: main
        filters:
          - module: \${FIXTURES}/upper.ts
      - pool: main`);
  for (const protocol of PROTOCOLS) {
    const reply = await world.send(protocol, { path: '/upper/x' });
    assert.equal(reply.status, 200, protocol);
    assert.equal(reply.body, 'HELLO FROM ORIGIN|END', protocol);
    assert.equal(reply.headers['content-length'], undefined, protocol);
    assert.equal(reply.headers['x-transformed'], 'upper');
    if (protocol === 'HTTP/1.1') assert.equal(reply.headers['transfer-encoding'], 'chunked');
    const plain = await world.send(protocol, { path: '/plain' });
    assert.equal(plain.body, 'hello from origin');
    assert.equal(plain.headers['content-length'], String('hello from origin'.length), `${protocol}: untouched route`);
    // A transform that throws once the response began can only cut it; the next request is fine.
    await assert.rejects(world.send(protocol, { path: '/upper/explode' }), `${protocol}: the response is cut`);
    assert.equal((await world.send(protocol, { path: '/upper/y' })).body, 'HELLO FROM ORIGIN|END');
  }
  assert.equal(world.logLines.filter((line) => line.includes('"filter":"upper"') && line.includes('transform failure on purpose')).length, 2);
});

test('an h2c pool: request edits reach the HTTP/2 backend (Host as :authority), response edits and a body transform reach the client', async (t) => {
  const server = createH2cServer();
  const received: IncomingHttpHeaders[] = [];
  server.on('stream', (stream, headers) => {
    received.push(headers);
    stream.on('error', () => {});
    stream.respond({ ':status': 200, server: 'h2c-origin', 'content-type': 'text/plain', 'content-length': 5 });
    stream.end('grpc!');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  const world = await startWorld(
    t,
    `      - match: { pathPrefix: /rpc }
        pool: grpc
        filters:
          - headers: { request: { set: { x-env: prod }, remove: [x-debug] }, response: { remove: [server], set: { x-edge: usher } } }
          - rewrite: { prefix: { from: /rpc, to: /svc }, host: grpc.internal }
          - module: \${FIXTURES}/upper.ts`,
    { pools: `  grpc:\n    protocol: h2c\n    backends:\n      - address: 127.0.0.1:${port}\n` },
  );
  const reply = await world.send('HTTP/2', { path: '/rpc/Call', host: 'front.example', headers: { 'x-debug': '1', 'x-env': 'dev' } });
  assert.equal(reply.status, 200);
  assert.equal(reply.body, 'GRPC!|END');
  assert.equal(reply.headers['server'], undefined);
  assert.equal(reply.headers['x-edge'], 'usher');
  assert.equal(reply.headers['content-length'], undefined, 'a transformed body has no content-length');
  const at = received.at(-1)!;
  assert.equal(at[':path'], '/svc/Call');
  assert.equal(at[':authority'], 'grpc.internal');
  assert.equal(at['x-forwarded-host'], 'front.example');
  assert.equal(at['x-env'], 'prod');
  assert.equal(at['x-debug'], undefined);
});

test('HTTP/1.1 pipelining: a request answered by a filter (or refused) keeps the connection, and the next one is served', async (t) => {
  const world = await startWorld(t, `      - match: { pathPrefix: /no }
        pool: main
        filters: [ { ipDeny: [127.0.0.0/8] } ]
      - match: { pathPrefix: /plain }
        pool: main`);
  const port = world.usher.address('secure').port;
  const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'filters.test', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
  t.after(() => socket.destroy());
  await once(socket, 'secureConnect');
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.write('GET /no HTTP/1.1\r\nHost: filters.test\r\n\r\nGET /missing HTTP/1.1\r\nHost: filters.test\r\n\r\nGET /plain HTTP/1.1\r\nHost: filters.test\r\n\r\n');
  await until(() => text.includes('hello from origin'), 'three pipelined answers');
  const statuses = [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((match) => match[1]);
  assert.deepEqual(statuses, ['403', '404', '200']);
  assert.doesNotMatch(text, /connection: close/i);
});

test('reload: a changed filter module runs its new code; a broken one rejects the reload and the old code keeps serving', async (t) => {
  const origin = await startOrigin('reload-origin');
  t.after(() => origin.close());
  const dir = mkdtempSync(join(tmpdir(), 'usher-filter-reload-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // A module needs no import of usher: the default export only has to look like defineFilter's result.
  const writeModule = (version: string, mtimeSeconds: number): void => {
    const file = join(dir, 'version.mjs');
    writeFileSync(file, `export default { name: 'version', create: () => ({ onRequest(request) { request.setHeader('x-version', '${version}'); } }) };\n`);
    utimesSync(file, mtimeSeconds, mtimeSeconds);
  };
  writeModule('1', 1_000_000);
  const configFile = join(dir, 'usher.yaml');
  writeFileSync(configFile, `listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
        filters: [ { module: ./version.mjs } ]
pools:
  main:
    backends:
      - address: ${origin.address}
`);
  const first = await loadConfig(configFile, {});
  assert.ok(first.ok);
  const usher = await Usher.start(first.config, { accessLog: createAccessLog({ enabled: false }), configSource: () => loadConfig(configFile, {}) });
  t.after(() => usher.stop({ timeoutMs: 500 }));
  const get = async (): Promise<string | string[] | undefined> => {
    const response = await fetch(`${usher.url('web')}/v`);
    await response.text();
    return origin.seen.at(-1)?.headers['x-version'];
  };
  assert.equal(await get(), '1');
  writeModule('2', 2_000_000);
  assert.deepEqual(await usher.reload(), { ok: true, warnings: [] });
  assert.equal(await get(), '2');
  writeFileSync(join(dir, 'version.mjs'), 'export default { name: "version" };\n');
  utimesSync(join(dir, 'version.mjs'), 3_000_000, 3_000_000);
  const rejected = await usher.reload();
  assert.equal(rejected.ok, false);
  assert.match(rejected.ok ? '' : rejected.errors.join('\n'), /usher\.yaml:6:\d+ listeners\[0\]\.routes\[0\]\.filters\[0\]\.module: filter module "\.\/version\.mjs": filter version has no create\(\) function/);
  assert.equal(await get(), '2', 'the old config keeps serving');
});
