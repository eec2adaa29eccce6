import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { once } from 'node:events';
import { request } from 'undici';
import { startOrigin } from '../helpers/origin.ts';
import { startUsher } from '../helpers/usher.ts';
import { refusedAddress } from '../helpers/refused.ts';

/** A TCP server that answers every connection with `reply` (or nothing) — a broken backend. */
async function startRawBackend(reply: string | undefined): Promise<{ server: Server; address: string }> {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => {
      if (reply !== undefined) socket.end(reply);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return { server, address: `127.0.0.1:${port}` };
}

function yamlFor(address: string, timeouts = '{ connect: 1s, response: 300ms, idle: 5s }'): string {
  return `listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: { pathPrefix: /app/ }
        pool: main
pools:
  main:
    timeouts: ${timeouts}
    backends:
      - address: ${address}
`;
}

async function get(url: string) {
  const res = await request(url, { headersTimeout: 10_000 });
  return { status: res.statusCode, reason: res.headers['x-usher-error'], body: await res.body.text() };
}

test('502 when the backend refuses the connection', async (t) => {
  const usher = await startUsher(yamlFor(await refusedAddress()));
  t.after(() => usher.stop({ timeoutMs: 500 }));
  const res = await get(`${usher.url('web')}/app/x`);
  assert.equal(res.status, 502);
  assert.equal(res.reason, 'connect_refused');
  assert.match(res.body, /502 Bad Gateway/);
  assert.doesNotMatch(res.body, /127\.0\.0\.1/, 'no backend address leaks to the client');
});

test('502 when the backend answers garbage', async (t) => {
  const backend = await startRawBackend('THIS IS NOT HTTP\r\n\r\n');
  const usher = await startUsher(yamlFor(backend.address));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    backend.server.close();
  });
  const res = await get(`${usher.url('web')}/app/x`);
  assert.equal(res.status, 502);
  assert.equal(res.reason, 'bad_response');
});

test('502 when the backend closes without answering', async (t) => {
  const backend = await startRawBackend('');
  const usher = await startUsher(yamlFor(backend.address));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    backend.server.close();
  });
  const res = await get(`${usher.url('web')}/app/x`);
  assert.equal(res.status, 502);
  assert.equal(res.reason, 'upstream_reset');
});

test('504 when the backend does not answer within the response timeout', async (t) => {
  const backend = await startRawBackend(undefined);
  const usher = await startUsher(yamlFor(backend.address));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    backend.server.close();
  });
  const started = performance.now();
  const res = await get(`${usher.url('web')}/app/x`);
  const elapsed = performance.now() - started;
  assert.equal(res.status, 504);
  assert.equal(res.reason, 'response_timeout');
  assert.ok(elapsed >= 250 && elapsed < 5000, `answered after ${elapsed} ms`);
});

test('503 when the pool has no available backend, 404 when no route matches', async (t) => {
  const origin = await startOrigin('o');
  const usher = await startUsher(yamlFor(origin.address));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  const notFound = await get(`${usher.url('web')}/elsewhere`);
  assert.equal(notFound.status, 404);
  assert.equal(notFound.reason, 'no_route');

  const pool = usher.snapshot.pools.get('main')!;
  for (const backend of pool.control.backends) pool.control.setAdminState(backend, 'disabled');
  const unavailable = await get(`${usher.url('web')}/app/x`);
  assert.equal(unavailable.status, 503);
  assert.equal(unavailable.reason, 'no_backend');
  assert.equal(origin.seen.length, 0);
});

test('a client that disconnects cancels its upstream request', async (t) => {
  let upstreamClosed: () => void;
  const closed = new Promise<void>((resolve) => (upstreamClosed = resolve));
  const origin = await startOrigin('slow', (req, res) => {
    res.on('close', () => upstreamClosed());
    res.writeHead(200);
    res.write('first bytes');
    // Never ends: only a cancelled upstream request closes this response.
  });
  const usher = await startUsher(yamlFor(origin.address, '{ connect: 1s, response: 30s, idle: 5s }'));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  const controller = new AbortController();
  const res = await request(`${usher.url('web')}/app/slow`, { signal: controller.signal });
  assert.equal(res.statusCode, 200);
  const backend = usher.snapshot.pools.get('main')!.control.backends[0]!;
  const inFlight = (): number => backend.inFlight;
  assert.equal(inFlight(), 1);
  controller.abort();
  await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('upstream not cancelled')), 5000))]);
  const deadline = Date.now() + 5000;
  while (inFlight() !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(backend.inFlight, 0);
});

test('an idle upstream connection is closed after the idle timeout', async (t) => {
  let closedAt = 0;
  const origin = await startOrigin('idle');
  origin.server.on('connection', (socket: import('node:net').Socket) => socket.on('close', () => (closedAt = performance.now())));
  const usher = await startUsher(yamlFor(origin.address, '{ connect: 1s, response: 5s, idle: 200ms }'));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  const res = await get(`${usher.url('web')}/app/x`);
  assert.equal(res.status, 200);
  const idleFrom = performance.now();
  const backend = usher.snapshot.pools.get('main')!.control.backends[0]!;
  assert.equal(backend.connections.idle, 1);
  const deadline = Date.now() + 5000;
  while (closedAt === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.ok(closedAt > 0, 'idle upstream connection not closed');
  assert.ok(closedAt - idleFrom >= 150 && closedAt - idleFrom < 2000, `closed after ${closedAt - idleFrom} ms`);
  assert.equal(backend.connections.idle, 0);
});

test('the response timeout restarts on every chunk: a slow but steady response is not cut', async (t) => {
  const origin = await startOrigin('steady', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    let sent = 0;
    const timer = setInterval(() => {
      res.write('x');
      if (++sent === 6) {
        clearInterval(timer);
        res.end();
      }
    }, 150);
    res.on('close', () => clearInterval(timer));
  });
  const usher = await startUsher(yamlFor(origin.address, '{ connect: 1s, response: 400ms, idle: 5s }'));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  const res = await get(`${usher.url('web')}/app/x`);
  assert.equal(res.status, 200);
  assert.equal(res.body, 'xxxxxx');
});

for (const [what, reply] of [
  ['in the bytes read with the head', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
  ['after a large first read', `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n${'a'.repeat(0x800)}\r\nzz\r\n`],
] as const) {
  test(`a response body with bad chunked framing ${what} cuts the client connection after the head`, async (t) => {
    const backend = await startRawBackend(reply);
    const usher = await startUsher(yamlFor(backend.address));
    t.after(async () => {
      await usher.stop({ timeoutMs: 500 });
      await new Promise<void>((resolve) => backend.server.close(() => resolve()));
    });
    const { port } = new URL(usher.url('web'));
    const { connect } = await import('node:net');
    const client = connect(Number(port), '127.0.0.1');
    client.write('GET /app/x HTTP/1.1\r\nHost: h\r\n\r\n');
    let received = '';
    client.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    client.on('error', () => {});
    const timer = setTimeout(() => client.destroy(), 5000);
    await once(client, 'close');
    clearTimeout(timer);
    // The connection is cut before anything that could pass for a complete response.
    assert.ok(!received.endsWith('0\r\n\r\n'), `got ${JSON.stringify(received.slice(0, 80))}`);
  });
}
