/**
 * Collapsed misses answered from the fill as it arrives: waiters get the
 * first bytes before the backend sent the rest, the fill goes on for them
 * after its own client left, and a fill the backend cuts cuts its readers
 * and stores nothing. HTTP/1.1 clients on real sockets against a real origin
 * that sends its body in two halves on the test's signal.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { constants as h2constants, connect as h2connect, type ClientHttp2Stream } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Usher } from '../../src/runtime/usher.ts';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { send } from '../helpers/send.ts';
import { generateCertificate } from '../helpers/tls.ts';
import { startUsher } from '../helpers/usher.ts';

const HALF = 64 * 1024;
const first = Buffer.alloc(HALF, 'a');
const second = Buffer.alloc(HALF, 'b');

/** An origin whose responses to `/slow` send the first half at once and wait for `release` (or `cut`) for the rest. */
interface TwoHalves {
  readonly origin: Origin;
  /** Responses whose first half went out, waiting for the rest. */
  readonly waiting: ServerResponse[];
}

async function twoHalves(): Promise<TwoHalves> {
  const waiting: ServerResponse[] = [];
  const origin = await startOrigin('o', (req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'application/octet-stream', 'content-length': String(2 * HALF) });
    res.write(first);
    waiting.push(res);
  });
  return { origin, waiting };
}

async function cachedUsher(t: TestContext, origin: Origin): Promise<{ usher: Usher; port: number }> {
  const usher = await startUsher(`listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
        filters: [ { cache: { lockTimeout: 10s } } ]
pools:
  main:
    backends:
      - address: ${origin.address}
`);
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  return { usher, port: usher.address('web').port };
}

/** Body bytes collected as they come: `received(n)` resolves once n bytes have arrived. */
class Progress {
  readonly parts: Buffer[] = [];
  bytes = 0;
  readonly #wanted: Array<{ bytes: number; resolve: () => void }> = [];

  readonly add = (chunk: Buffer): void => {
    this.parts.push(chunk);
    this.bytes += chunk.length;
    for (const w of this.#wanted.splice(0)) if (this.bytes >= w.bytes) w.resolve();
    else this.#wanted.push(w);
  };

  received(n: number): Promise<void> {
    return this.bytes >= n ? Promise.resolve() : new Promise((resolve) => this.#wanted.push({ bytes: n, resolve }));
  }
}

/** A GET whose bytes are collected as they come; `received` resolves once `bytes` have arrived. */
interface Reader {
  readonly req: ClientRequest;
  readonly response: Promise<IncomingMessage>;
  readonly received: (bytes: number) => Promise<void>;
  /** Resolves with the whole body, or rejects when the response is cut. */
  readonly done: Promise<Buffer>;
  count(): number;
}

function reader(port: number, path: string): Reader {
  const progress = new Progress();
  let resolveResponse!: (res: IncomingMessage) => void;
  const response = new Promise<IncomingMessage>((resolve) => (resolveResponse = resolve));
  let settle!: { resolve: (b: Buffer) => void; reject: (e: Error) => void };
  const done = new Promise<Buffer>((resolve, reject) => (settle = { resolve, reject }));
  done.catch(() => {}); // a test that does not await a cut reader must not fail on it
  const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
    resolveResponse(res);
    res.on('data', progress.add);
    res.on('end', () => settle.resolve(Buffer.concat(progress.parts)));
    res.on('aborted', () => settle.reject(new Error('response cut')));
    res.on('error', (error) => settle.reject(error));
  });
  req.on('error', (error) => settle.reject(error));
  req.end();
  return { req, response, done, count: () => progress.bytes, received: (n) => progress.received(n) };
}

test('waiters on a fill get its first bytes before the backend sent the rest, and the whole body after', async (t) => {
  const { origin, waiting } = await twoHalves();
  const { port } = await cachedUsher(t, origin);
  const owner = reader(port, '/slow');
  await owner.received(HALF);
  const waiters = Array.from({ length: 20 }, () => reader(port, '/slow'));
  // Every waiter has the first half while the origin still holds the second: they stream, not wait for the end.
  await Promise.all(waiters.map((w) => w.received(HALF)));
  assert.equal(waiting.length, 1, 'one upstream request');
  for (const w of waiters) assert.match(String((await w.response).headers['cache-status']), /hit; ttl=\d+; collapsed; detail=streamed/);
  assert.equal((await waiters[0]!.response).headers['content-length'], String(2 * HALF));
  waiting[0]!.end(second);
  const expected = Buffer.concat([first, second]);
  assert.deepEqual(await owner.done, expected);
  for (const w of waiters) assert.ok((await w.done).equals(expected));
  const hit = await send(port, '/slow');
  assert.ok(hit.raw.equals(expected));
  assert.match(String(hit.headers['cache-status']), /^usher; hit/);
  assert.equal(origin.seen.length, 1);
});

test('the fill goes on for its waiters after its own client left, and is stored', async (t) => {
  const { origin, waiting } = await twoHalves();
  const { port } = await cachedUsher(t, origin);
  const owner = reader(port, '/slow');
  await owner.received(HALF);
  const waiters = Array.from({ length: 5 }, () => reader(port, '/slow'));
  await Promise.all(waiters.map((w) => w.received(HALF)));
  owner.req.destroy();
  await assert.rejects(owner.done);
  // The origin's connection stays: usher still reads the body for the waiters.
  const upstream = waiting[0]!;
  assert.equal(upstream.destroyed, false);
  upstream.end(second);
  const expected = Buffer.concat([first, second]);
  for (const w of waiters) assert.ok((await w.done).equals(expected), 'each waiter gets the whole body');
  const hit = await send(port, '/slow');
  assert.ok(hit.raw.equals(expected));
  assert.match(String(hit.headers['cache-status']), /^usher; hit/, 'the fill was stored though its client left');
  assert.equal(origin.seen.length, 1);
});

test('a fill whose client leaves with nobody reading is cancelled; the next request fills again', async (t) => {
  const { origin, waiting } = await twoHalves();
  const { port } = await cachedUsher(t, origin);
  const owner = reader(port, '/slow');
  await owner.received(HALF);
  const upstream = waiting[0]!;
  owner.req.destroy();
  await once(upstream, 'close'); // usher gave up the backend's response
  const next = reader(port, '/slow');
  await next.received(HALF);
  assert.equal(waiting.length, 2, 'a new fill went upstream');
  waiting[1]!.end(second);
  assert.equal((await next.done).length, 2 * HALF);
});

test('a fill the backend cuts cuts its readers, and nothing is stored', async (t) => {
  const { origin, waiting } = await twoHalves();
  const { port } = await cachedUsher(t, origin);
  const owner = reader(port, '/slow');
  await owner.received(HALF);
  const waiters = Array.from({ length: 5 }, () => reader(port, '/slow'));
  await Promise.all(waiters.map((w) => w.received(HALF)));
  waiting[0]!.destroy(); // the backend's body stops half-way
  await assert.rejects(owner.done);
  for (const w of waiters) await assert.rejects(w.done, 'a reader of a failed fill is cut, never given a short body as complete');
  const next = reader(port, '/slow');
  await next.received(HALF);
  assert.equal(waiting.length, 2, 'nothing was stored: the next request goes upstream');
  waiting[1]!.end(second);
  assert.equal((await next.done).length, 2 * HALF);
});

test('HTTP/2 clients: waiters stream the fill, and the fill goes on after its own stream is reset', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'usher-fill-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const certificate = generateCertificate(['fill.test']);
  writeFileSync(join(dir, 'cert.pem'), certificate.cert);
  writeFileSync(join(dir, 'key.pem'), certificate.key);
  const { origin, waiting } = await twoHalves();
  const usher = await startUsher(`listeners:
  - name: secure
    bind: 127.0.0.1:0
    protocol: https
    tls:
      certificates:
        - { cert: ${join(dir, 'cert.pem')}, key: ${join(dir, 'key.pem')} }
    routes:
      - pool: main
        filters: [ { cache: { lockTimeout: 10s } } ]
pools:
  main:
    backends:
      - address: ${origin.address}
`);
  const session = h2connect(`https://127.0.0.1:${usher.address('secure').port}`, { ca: certificate.cert, servername: 'fill.test' });
  session.on('error', () => {});
  t.after(async () => {
    session.destroy();
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  /** A stream's status and bytes; `received(n)` resolves once n bytes came. */
  const open = (): { stream: ClientHttp2Stream; status: Promise<string>; received: (n: number) => Promise<void>; done: Promise<Buffer> } => {
    const stream = session.request({ ':path': '/slow' });
    const progress = new Progress();
    stream.on('data', progress.add);
    const status = new Promise<string>((resolve) => stream.on('response', (headers) => resolve(String(headers['cache-status'] ?? ''))));
    const done = new Promise<Buffer>((resolve, reject) => {
      stream.on('end', () => resolve(Buffer.concat(progress.parts)));
      stream.on('error', reject);
      stream.on('close', () => (stream.rstCode !== 0 ? reject(new Error(`reset ${stream.rstCode}`)) : undefined));
    });
    done.catch(() => {});
    return { stream, status, done, received: (n) => progress.received(n) };
  };
  const owner = open();
  await owner.received(HALF);
  const waiters = [open(), open(), open()];
  await Promise.all(waiters.map((w) => w.received(HALF)));
  for (const w of waiters) assert.match(await w.status, /collapsed; detail=streamed/);
  owner.stream.close(h2constants.NGHTTP2_CANCEL); // RST_STREAM from the client
  if (!owner.stream.closed) await once(owner.stream, 'close');
  assert.equal(waiting[0]!.destroyed, false, 'usher still reads the backend\'s body for the waiters');
  waiting[0]!.end(second);
  const expected = Buffer.concat([first, second]);
  for (const w of waiters) assert.ok((await w.done).equals(expected));
  const hit = open();
  assert.ok((await hit.done).equals(expected));
  assert.match(await hit.status, /^usher; hit/);
  assert.equal(origin.seen.length, 1);
});
