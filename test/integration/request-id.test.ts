/**
 * x-request-id end to end, over real sockets: generated when absent, kept
 * when valid, replaced when not, and the same id in the four places it goes:
 * the backend's request, the client's response (proxied and error
 * responses), and the access log line. HTTP/1.1 clients, and HTTP/2 clients
 * (an https listener with ALPN h2) to HTTP/1.1 and h2c backends.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as h2connect, createServer as createH2cServer, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import type { AccessLog, AccessRecord } from '../../src/observe/access-log.ts';
import { Usher } from '../../src/runtime/usher.ts';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { generateCertificate } from '../helpers/tls.ts';
import { configFromYaml } from '../helpers/usher.ts';

/** A generated id: 128 random bits in hex. */
const FRESH = /^[0-9a-f]{32}$/;

/** An access log that keeps its records, for the test to read. */
function recordingLog(): { log: AccessLog; records: AccessRecord[] } {
  const records: AccessRecord[] = [];
  return { records, log: { enabled: true, write: (record) => void records.push(record), close: async () => undefined } };
}

/** The one access log record for `path`, once the exchange has logged it. */
async function recordFor(records: readonly AccessRecord[], path: string): Promise<AccessRecord> {
  const deadline = Date.now() + 2000;
  for (;;) {
    const found = records.filter((record) => record.path === path);
    if (found.length === 1) return found[0]!;
    assert.ok(found.length === 0 && Date.now() < deadline, `expected one log record for ${path}, found ${found.length}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The request ids the origin saw for `path` (every x-request-id field). */
function seenIds(origin: Origin, path: string): string[] {
  const seen = origin.seen.find((request) => request.url === path);
  assert.ok(seen !== undefined, `the backend saw ${path}`);
  const ids: string[] = [];
  for (let i = 0; i < seen.rawHeaders.length; i += 2) if (seen.rawHeaders[i]!.toLowerCase() === 'x-request-id') ids.push(seen.rawHeaders[i + 1]!);
  return ids;
}

/** Sends raw bytes, returns what comes back until the server closes. */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => socket.destroy(), 3000);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.write(bytes, 'latin1');
  });
}

test('HTTP/1.1: the request id is generated or kept, and the backend, the response and the access log agree', async (t) => {
  const origin = await startOrigin('a');
  const { log, records } = recordingLog();
  const usher = await Usher.start(
    configFromYaml(`listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - name: api
        match: { pathPrefix: /api }
        pool: main
      - name: dead
        match: { pathPrefix: /dead }
        pool: dead
pools:
  main:
    backends:
      - address: ${origin.address}
  dead:
    backends:
      - address: 127.0.0.1:1
`),
    { accessLog: log },
  );
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  const base = usher.url('web');

  await t.test('none sent: a fresh random id, the same in all three places', async () => {
    const res = await request(`${base}/api/fresh`);
    await res.body.text();
    const id = res.headers['x-request-id'];
    assert.equal(typeof id, 'string');
    assert.match(id as string, FRESH);
    assert.deepEqual(seenIds(origin, '/api/fresh'), [id]);
    assert.equal((await recordFor(records, '/api/fresh')).requestId, id);
  });

  await t.test('ids differ per request', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const res = await request(`${base}/api/many`);
      await res.body.text();
      ids.add(res.headers['x-request-id'] as string);
    }
    assert.equal(ids.size, 5);
  });

  await t.test('a valid one is kept (printable ASCII, up to 200 characters); the backend gets exactly one', async () => {
    const given = `trace-${'x'.repeat(180)} =:/`;
    const res = await request(`${base}/api/kept`, { headers: { 'x-request-id': given } });
    await res.body.text();
    assert.equal(res.headers['x-request-id'], given);
    assert.deepEqual(seenIds(origin, '/api/kept'), [given]);
    assert.equal((await recordFor(records, '/api/kept')).requestId, given);
  });

  await t.test('an invalid one is replaced: too long, or not printable ASCII', async () => {
    for (const [path, given] of [['/api/long', 'y'.repeat(201)], ['/api/latin1', 'caf\u00e9']] as const) {
      const res = await request(`${base}${path}`, { headers: { 'x-request-id': given } });
      await res.body.text();
      const id = res.headers['x-request-id'] as string;
      assert.match(id, FRESH, path);
      assert.deepEqual(seenIds(origin, path), [id]);
      assert.equal((await recordFor(records, path)).requestId, id);
    }
  });

  await t.test('the backend\'s own x-request-id does not reach the client twice', async () => {
    const res = await request(`${base}/api/echo`, { headers: { 'x-request-id': 'client-1' } });
    await res.body.text();
    assert.equal(res.headers['x-request-id'], 'client-1');
  });

  await t.test('error responses carry it: 404 without a route, 502 from a dead backend', async () => {
    const missing = await request(`${base}/nowhere`, { headers: { 'x-request-id': 'lost-1' } });
    await missing.body.text();
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.headers['x-request-id'], 'lost-1');
    assert.equal((await recordFor(records, '/nowhere')).requestId, 'lost-1');

    const dead = await request(`${base}/dead/x`);
    await dead.body.text();
    assert.equal(dead.statusCode, 502);
    const id = dead.headers['x-request-id'] as string;
    assert.match(id, FRESH);
    const record = await recordFor(records, '/dead/x');
    assert.equal(record.requestId, id);
    assert.equal(record.error, 'USHER_UPSTREAM_CONNECT_REFUSED');
  });

  await t.test('a request usher cannot read gets a 400 with a fresh id, logged with it', async () => {
    const text = await raw(usher.address('web').port, 'GET /bad HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n');
    const id = /\r\nx-request-id: ([^\r]+)\r\n/.exec(text)?.[1];
    assert.match(text, /^HTTP\/1\.1 400 /);
    assert.ok(id !== undefined && FRESH.test(id), text);
    const deadline = Date.now() + 2000;
    while (!records.some((record) => record.method === '-') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(records.find((record) => record.method === '-')?.requestId, id);
  });
});

/** An HTTP/2 session to usher's https listener, trusting the test certificate. */
async function h2session(port: number, ca: string): Promise<ClientHttp2Session> {
  const session = h2connect(`https://localhost:${port}`, { ca, servername: 'localhost' });
  session.on('error', () => {});
  await once(session, 'connect');
  return session;
}

function h2get(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}): Promise<{ headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ...headers });
    let body = '';
    let head: IncomingHttpHeaders = {};
    stream.setEncoding('utf8');
    stream.on('response', (h) => (head = h));
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('end', () => resolve({ headers: head, body }));
    stream.on('error', reject);
    stream.end();
  });
}

test('HTTP/2: the same rules towards HTTP/1.1 and h2c backends, and on error responses', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'usher-reqid-'));
  const cert = generateCertificate(['localhost']);
  writeFileSync(join(dir, 'cert.pem'), cert.cert);
  writeFileSync(join(dir, 'key.pem'), cert.key);
  const origin = await startOrigin('h1');
  const h2cSeen: IncomingHttpHeaders[] = [];
  const h2c = createH2cServer();
  h2c.on('stream', (stream, headers) => {
    h2cSeen.push(headers);
    stream.respond({ ':status': 200, 'x-request-id': 'from-backend' });
    stream.end('h2c');
  });
  h2c.listen(0, '127.0.0.1');
  await once(h2c, 'listening');
  const h2cPort = (h2c.address() as AddressInfo).port;
  const { log, records } = recordingLog();
  const usher = await Usher.start(
    configFromYaml(`listeners:
  - name: secure
    bind: 127.0.0.1:0
    protocol: https
    tls:
      certificates: [{ cert: ${join(dir, 'cert.pem')}, key: ${join(dir, 'key.pem')} }]
    routes:
      - name: grpc
        match: { pathPrefix: /grpc }
        pool: grpc
      - name: web
        match: { pathPrefix: /web }
        pool: web
pools:
  web:
    backends: [{ address: ${origin.address} }]
  grpc:
    protocol: h2c
    backends: [{ address: 127.0.0.1:${h2cPort} }]
`),
    { accessLog: log },
  );
  const session = await h2session(usher.address('secure').port, cert.cert);
  t.after(async () => {
    session.close();
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
    h2c.close();
    rmSync(dir, { recursive: true, force: true });
  });

  await t.test('to an HTTP/1.1 backend: generated, then kept', async () => {
    const fresh = await h2get(session, '/web/fresh');
    const id = fresh.headers['x-request-id'] as string;
    assert.match(id, FRESH);
    assert.deepEqual(seenIds(origin, '/web/fresh'), [id]);
    const record = await recordFor(records, '/web/fresh');
    assert.equal(record.requestId, id);
    assert.equal(record.protocol, 'HTTP/2.0');

    const kept = await h2get(session, '/web/kept', { 'x-request-id': 'h2-kept' });
    assert.equal(kept.headers['x-request-id'], 'h2-kept');
    assert.deepEqual(seenIds(origin, '/web/kept'), ['h2-kept']);
    assert.equal((await recordFor(records, '/web/kept')).requestId, 'h2-kept');
  });

  await t.test('to an h2c backend: its own id is replaced by the request\'s', async () => {
    const res = await h2get(session, '/grpc/x', { 'x-request-id': 'h2c-kept' });
    assert.equal(res.body, 'h2c');
    assert.equal(res.headers['x-request-id'], 'h2c-kept');
    assert.equal(h2cSeen.at(-1)?.['x-request-id'], 'h2c-kept');
    const replaced = await h2get(session, '/grpc/y', { 'x-request-id': 'bad\u0001id' });
    const id = replaced.headers['x-request-id'] as string;
    assert.match(id, FRESH);
    assert.equal(h2cSeen.at(-1)?.['x-request-id'], id);
    assert.equal((await recordFor(records, '/grpc/y')).requestId, id);
  });

  await t.test('an error response (404) carries it', async () => {
    const res = await h2get(session, '/nowhere', { 'x-request-id': 'h2-lost' });
    assert.equal(res.headers[':status'], 404);
    assert.equal(res.headers['x-request-id'], 'h2-lost');
    assert.equal((await recordFor(records, '/nowhere')).requestId, 'h2-lost');
  });
});
