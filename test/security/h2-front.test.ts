/**
 * The same hardening for HTTP/2 clients (an https listener with ALPN h2, as
 * deployed) in front of raw HTTP/1.1 backends that record every byte:
 * - underscore look-alikes of special fields and `http2-settings` never go
 *   upstream; other underscore names do;
 * - connection-specific fields (`upgrade: h2c`, `connection`) are malformed
 *   in HTTP/2 (RFC 9113 §8.2.2): the stream is reset and nothing reaches a
 *   backend. node's HTTP/2 client refuses to send them, so these requests go
 *   out through a raw client that writes the frames itself (HPACK literals);
 * - a response Transfer-Encoding other than `chunked` is 502 `bad_response`;
 *   a 204/304 with Content-Length or Transfer-Encoding is relayed without a
 *   content-length or body, and the next request goes out on a new upstream
 *   connection; a HEAD response keeps its content-length and its connection.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as h2connect, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { generateCertificate, type TestCertificate } from '../helpers/tls.ts';
import { startUsher } from '../helpers/usher.ts';
import { startSequencedBackend, type Answer, type SequencedBackend } from './helpers.ts';

let certificate: TestCertificate | undefined;

interface Front {
  readonly port: number;
  readonly ca: string;
  readonly backend: SequencedBackend;
}

/** usher with one https listener (ALPN h2) in front of a sequenced backend. */
async function startFront(t: TestContext, answers: readonly Answer[]): Promise<Front> {
  certificate ??= generateCertificate(['localhost']);
  const dir = mkdtempSync(join(tmpdir(), 'usher-h2-front-'));
  writeFileSync(join(dir, 'cert.pem'), certificate.cert);
  writeFileSync(join(dir, 'key.pem'), certificate.key);
  const backend = await startSequencedBackend(answers);
  const usher = await startUsher(`listeners:
  - name: secure
    bind: 127.0.0.1:0
    protocol: https
    tls:
      certificates: [{ cert: ${join(dir, 'cert.pem')}, key: ${join(dir, 'key.pem')} }]
    routes:
      - pool: main
pools:
  main:
    backends: [{ address: ${JSON.stringify(backend.address)} }]
`);
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { port: usher.address('secure').port, ca: certificate.cert, backend };
}

async function session(t: TestContext, front: Front): Promise<ClientHttp2Session> {
  const s = h2connect(`https://localhost:${front.port}`, { ca: front.ca, servername: 'localhost' });
  s.on('error', () => {});
  t.after(() => s.destroy());
  await once(s, 'connect');
  return s;
}

interface H2Response {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

function request(s: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = s.request({ ':authority': 'localhost', ...headers }, { endStream: body === undefined });
    let head: IncomingHttpHeaders = {};
    let text = '';
    stream.setEncoding('latin1');
    stream.on('response', (h) => (head = h));
    stream.on('data', (chunk: string) => (text += chunk));
    stream.on('end', () => resolve({ headers: head, body: text }));
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

/** The HTTP/1.1 request head usher sends upstream for an HTTP/2 request to `localhost` (request id written as ID). */
function upstreamHead(method: string, path: string, fields: readonly string[] = [], framing = ''): string {
  return (
    `${method} ${path} HTTP/1.1\r\nhost: localhost\r\n${fields.map((f) => `${f}\r\n`).join('')}` +
    'x-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: https\r\nx-forwarded-host: localhost\r\nx-request-id: ID\r\n' +
    (framing === '' ? '' : `${framing}\r\n`) +
    '\r\n'
  );
}

function sameIds(bytes: string): string {
  return bytes.replace(/x-request-id: [0-9a-f]{32}/g, 'x-request-id: ID');
}

const OK: Answer = (socket) => void socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');

// ---- a raw HTTP/2 client, for fields node:http2 refuses to send ------------------------------------

/** One frame as read off the wire. */
interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}

const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const GOAWAY = 0x7;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PROTOCOL_ERROR = 0x1;

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK "literal header field without indexing, new name", no Huffman (RFC 7541 §6.2.2); strings under 127 bytes. */
function literal(name: string, value: string): Buffer {
  assert.ok(name.length < 127 && value.length < 127);
  return Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name, 'latin1'), Buffer.from([value.length]), Buffer.from(value, 'latin1')]);
}

/**
 * Sends one GET on stream 1 with `fields` after the pseudo-headers, over TLS
 * with ALPN h2, and returns the frames the server sent for stream 1 (and any
 * GOAWAY) until the stream ended or was reset.
 */
async function rawRequest(front: Front, path: string, fields: readonly (readonly [string, string])[]): Promise<Frame[]> {
  const socket: Socket = tlsConnect({ port: front.port, host: '127.0.0.1', servername: 'localhost', ca: front.ca, ALPNProtocols: ['h2'] });
  socket.on('error', () => {});
  await once(socket, 'secureConnect');
  const block = Buffer.concat([
    literal(':method', 'GET'),
    literal(':scheme', 'https'),
    literal(':path', path),
    literal(':authority', 'localhost'),
    ...fields.map(([name, value]) => literal(name, value)),
  ]);
  let data = Buffer.alloc(0);
  const frames: Frame[] = [];
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  socket.on('data', (chunk: Buffer) => {
    data = Buffer.concat([data, chunk]);
    while (data.length >= 9 && data.length >= 9 + data.readUIntBE(0, 3)) {
      const length = data.readUIntBE(0, 3);
      const f: Frame = { type: data[3]!, flags: data[4]!, stream: data.readUInt32BE(5) & 0x7fffffff, payload: data.subarray(9, 9 + length) };
      data = data.subarray(9 + length);
      if (f.type === SETTINGS && (f.flags & 1) === 0) socket.write(frame(SETTINGS, 1, 0, Buffer.alloc(0)));
      if (f.stream === 1 || f.type === GOAWAY) frames.push(f);
      if (f.type === GOAWAY || (f.stream === 1 && (f.type === RST_STREAM || (f.flags & END_STREAM) !== 0))) done();
    }
  });
  socket.on('close', () => done());
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), frame(SETTINGS, 0, 0, Buffer.alloc(0)), frame(HEADERS, END_STREAM | END_HEADERS, 1, block)]));
  const timer = setTimeout(done, 5000);
  await finished;
  clearTimeout(timer);
  socket.destroy();
  return frames;
}

// ---- requests -------------------------------------------------------------------------------------------

test('h2 front: underscore look-alikes are dropped before the HTTP/1.1 backend, other underscore names pass', async (t) => {
  const front = await startFront(t, [OK, OK]);
  const s = await session(t, front);
  const get = await request(s, {
    ':path': '/u',
    x_forwarded_for: '6.6.6.6',
    x_forwarded_proto: 'http',
    x_forwarded_host: 'evil',
    x_real_ip: '6.6.6.6',
    x_request_id: 'spoofed',
    transfer_encoding: 'chunked',
    content_length: '40',
    keep_alive: 'timeout=1',
    proxy_authorization: 'Basic eDp5',
    x_api_key: 'k',
    tenant_id: '42',
  });
  assert.equal(get.headers[':status'], 200);
  assert.equal(get.body, 'ok');
  const post = await request(s, { ':method': 'POST', ':path': '/p', 'content-length': '5', content_length: '0', transfer_encoding: 'chunked' }, 'hello');
  assert.equal(post.headers[':status'], 200);
  assert.deepEqual(front.backend.received.map(sameIds), [
    upstreamHead('GET', '/u', ['x_api_key: k', 'tenant_id: 42']) + upstreamHead('POST', '/p', [], 'content-length: 5') + 'hello',
  ]);
});

test('h2 front: http2-settings is dropped; upgrade: h2c and connection are refused by the HTTP/2 layer, nothing reaches the backend', async (t) => {
  const front = await startFront(t, [OK]);
  const settings = await rawRequest(front, '/s', [['http2-settings', 'AAMAAABkAARAAAAAAAIAAAAA']]);
  assert.ok(settings.some((f) => f.type === HEADERS), `a response, frames ${JSON.stringify(settings.map((f) => f.type))}`);
  assert.equal(settings[0]!.payload[0], 0x88, ':status 200 (HPACK static index 8)');
  for (const fields of [
    [['upgrade', 'h2c']],
    [['connection', 'Upgrade, HTTP2-Settings'], ['upgrade', 'h2c'], ['http2-settings', 'AAMAAABkAARAAAAAAAIAAAAA']],
    [['transfer-encoding', 'chunked']],
  ] as const) {
    const frames = await rawRequest(front, '/refused', fields);
    const reset = frames.find((f) => f.type === RST_STREAM);
    assert.ok(reset !== undefined, `${JSON.stringify(fields)}: RST_STREAM, got frames ${JSON.stringify(frames.map((f) => f.type))}`);
    assert.equal(reset.payload.readUInt32BE(0), PROTOCOL_ERROR);
    assert.ok(!frames.some((f) => f.type === HEADERS), 'no response');
  }
  assert.deepEqual(front.backend.received.map(sameIds), [upstreamHead('GET', '/s')], 'only the first request went upstream, without http2-settings');
});

// ---- responses ------------------------------------------------------------------------------------------

for (const [name, bytes] of [
  ['Transfer-Encoding gzip', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\nsmuggle'],
  ['Transfer-Encoding gzip, chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n7\r\nsmuggle\r\n0\r\n\r\n'],
  ['Transfer-Encoding chunked, gzip', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n7\r\nsmuggle\r\n0\r\n\r\n'],
  ['304 with Transfer-Encoding gzip', 'HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: gzip\r\n\r\n'],
] as const) {
  test(`h2 front: backend response with ${name} → 502 bad_response, the next request on a new upstream connection`, async (t) => {
    const front = await startFront(t, [(socket) => void socket.write(bytes), OK]);
    const s = await session(t, front);
    const bad = await request(s, { ':path': '/first' });
    assert.equal(bad.headers[':status'], 502);
    assert.equal(bad.headers['x-usher-error'], 'bad_response');
    assert.doesNotMatch(bad.body, /smuggle/);
    const next = await request(s, { ':path': '/next' });
    assert.equal(next.headers[':status'], 200);
    assert.equal(next.body, 'ok');
    assert.deepEqual(front.backend.received.map(sameIds), [upstreamHead('GET', '/first'), upstreamHead('GET', '/next')]);
  });
}

for (const [name, status, bytes] of [
  ['204 with Content-Length and a body', 204, 'HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\nsmuggle'],
  ['204 with Transfer-Encoding chunked and a body', 204, 'HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nsmuggle\r\n0\r\n\r\n'],
  ['304 with Content-Length and a body', 304, 'HTTP/1.1 304 Not Modified\r\nETag: "e"\r\nContent-Length: 7\r\n\r\nsmuggle'],
  ['304 with Transfer-Encoding chunked and a body', 304, 'HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nsmuggle\r\n0\r\n\r\n'],
] as const) {
  test(`h2 front: backend ${name} → relayed without content-length or body, the next request on a new upstream connection`, async (t) => {
    const front = await startFront(t, [(socket) => void socket.write(bytes), OK]);
    const s = await session(t, front);
    const res = await request(s, { ':path': '/first' });
    assert.equal(res.headers[':status'], status);
    assert.equal(res.headers['content-length'], undefined);
    assert.equal(res.headers['x-usher-error'], undefined);
    assert.equal(res.body, '');
    const next = await request(s, { ':path': '/next' });
    assert.equal(next.headers[':status'], 200);
    assert.equal(next.body, 'ok');
    assert.deepEqual(front.backend.received.map(sameIds), [upstreamHead('GET', '/first'), upstreamHead('GET', '/next')]);
  });
}

test('h2 front: a HEAD response keeps its content-length and its upstream connection', async (t) => {
  const front = await startFront(t, [(socket) => void socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n'), OK]);
  const s = await session(t, front);
  const head = await request(s, { ':method': 'HEAD', ':path': '/h' });
  assert.equal(head.headers[':status'], 200);
  assert.equal(head.headers['content-length'], '5');
  assert.equal(head.body, '');
  const next = await request(s, { ':path': '/next' });
  assert.equal(next.body, 'ok');
  assert.deepEqual(front.backend.received.map(sameIds), [upstreamHead('HEAD', '/h') + upstreamHead('GET', '/next')]);
});
