/**
 * The keep-alive race with backends: a backend closes an idle connection just
 * as usher sends a request on it. usher retires idle connections before the
 * backend's advertised `Keep-Alive: timeout=N`, and a request that loses the
 * race anyway is replayed on a fresh connection when that is safe (nothing of
 * the response came back, the method is idempotent, there is no body).
 *
 * The race is made deterministic with a backend that closes, without
 * answering, every request arriving on a connection idle for longer than a
 * threshold below what it advertises; a plain node:http server with default
 * settings is tested too.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool as UndiciPool } from 'undici';
import { retireAfterMs } from '../../src/upstream/connection.ts';
import { simpleYaml, startUsher } from '../helpers/usher.ts';

const HOST = '127.0.0.1';

interface RacingBackend {
  readonly address: string;
  /** TCP connections accepted. */
  connections: number;
  /** Requests answered. */
  answered: number;
  /** Requests closed without an answer because their connection had been idle too long. */
  closedIdle: number;
  /** Request heads seen, by method. */
  readonly methods: string[];
}

/**
 * A real HTTP/1.1 server on loopback that advertises `Keep-Alive: timeout=advertisedS`
 * but closes, without answering, any request that arrives on a connection
 * idle for more than `closeAfterIdleMs` since its last response: alternately
 * with a FIN and with a RST, the two ways a backend's idle close meets a request.
 */
async function racingBackend(t: TestContext, advertisedS: number, closeAfterIdleMs: number): Promise<RacingBackend> {
  const sockets = new Set<Socket>();
  const backend: RacingBackend = { address: '', connections: 0, answered: 0, closedIdle: 0, methods: [] };
  const server = createServer((socket) => {
    backend.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = '';
    let lastResponseAt = -1;
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (let end = buffered.indexOf('\r\n\r\n'); end !== -1; end = buffered.indexOf('\r\n\r\n')) {
        const head = buffered.slice(0, end);
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return; // body still coming
        buffered = buffered.slice(end + 4 + length);
        backend.methods.push(head.slice(0, head.indexOf(' ')));
        if (lastResponseAt >= 0 && performance.now() - lastResponseAt > closeAfterIdleMs) {
          backend.closedIdle++;
          if (backend.closedIdle % 2 === 0) socket.resetAndDestroy();
          else socket.destroy();
          return;
        }
        backend.answered++;
        socket.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nkeep-alive: timeout=${advertisedS}\r\n\r\nok`);
        lastResponseAt = performance.now();
      }
    });
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  server.unref();
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return Object.assign(backend, { address: `${HOST}:${(server.address() as AddressInfo).port}` });
}

/** usher in front of `address` (a config that names only the backend), and one kept-alive client connection to it. */
async function through(t: TestContext, address: string): Promise<UndiciPool> {
  const usher = await startUsher(simpleYaml([address]));
  t.after(() => usher.stop({ timeoutMs: 500 }));
  const client = new UndiciPool(usher.url('web'), { connections: 1, pipelining: 1, keepAliveTimeout: 60_000 });
  t.after(() => client.destroy());
  return client;
}

/** Sends one request per gap, waiting that gap (the upstream connection's idle time) before each; returns the statuses. */
async function withGaps(client: UndiciPool, gapsMs: readonly number[], method: 'GET' | 'POST' = 'GET'): Promise<number[]> {
  const statuses: number[] = [];
  const send = async (): Promise<void> => {
    const res = await client.request({ path: '/', method, ...(method === 'POST' ? { body: 'payload' } : {}), headersTimeout: 10_000, bodyTimeout: 10_000 });
    await res.body.text();
    statuses.push(res.statusCode);
  };
  await send();
  for (const gap of gapsMs) {
    await sleep(gap);
    await send();
  }
  return statuses;
}

test('retireAfterMs keeps a margin of min(2 s, N/2) before the advertised timeout', () => {
  assert.equal(retireAfterMs(5), 3000); // node:http's default
  assert.equal(retireAfterMs(2), 1000);
  assert.equal(retireAfterMs(1), 500);
  assert.equal(retireAfterMs(0), 0); // "do not reuse"
  assert.equal(retireAfterMs(60), 58_000);
});

test('usher retires idle connections before the advertised Keep-Alive timeout: no request meets a closing connection', async (t) => {
  // Advertises 2 s, closes requests after 1.5 s idle; usher retires at 1 s (retireAfterMs(2)).
  const backend = await racingBackend(t, 2, 1500);
  const client = await through(t, backend.address);
  const gaps = [200, 700, 1200, 1400, 1600, 1900, 300, 1300];
  const statuses = await withGaps(client, gaps);
  t.diagnostic(`${statuses.length} requests, ${backend.connections} upstream connections, ${backend.closedIdle} closed idle`);
  assert.deepEqual(statuses, gaps.map(() => 200).concat(200));
  assert.equal(backend.closedIdle, 0, 'usher never sent a request on a connection idle past the backend threshold');
  // Every gap above 1 s found the connection retired: a new one was opened.
  assert.equal(backend.connections, 1 + gaps.filter((gap) => gap > 1000).length);
});

test('a GET that loses the race anyway is replayed on a fresh connection: zero failures', async (t) => {
  // Closes after 0.5 s idle, below usher's 1 s retirement: gaps in between hit a closing connection.
  const backend = await racingBackend(t, 2, 500);
  const client = await through(t, backend.address);
  const gaps = [300, 600, 700, 200, 800, 900, 650, 400];
  const statuses = await withGaps(client, gaps);
  t.diagnostic(`${statuses.length} requests, ${backend.connections} upstream connections, ${backend.closedIdle} closed idle, ${backend.answered} answered`);
  assert.deepEqual(statuses, gaps.map(() => 200).concat(200));
  assert.equal(backend.closedIdle, gaps.filter((gap) => gap > 500 && gap < 1000).length, 'each gap between threshold and retirement lost the race');
  assert.equal(backend.answered, statuses.length, 'each lost request was answered once, on its replay');
});

test('a POST that loses the race is not replayed: the backend may have acted on it, so the client gets 502', async (t) => {
  const backend = await racingBackend(t, 2, 300);
  const client = await through(t, backend.address);
  const statuses = await withGaps(client, [700], 'POST');
  assert.deepEqual(statuses, [200, 502]);
  assert.deepEqual(backend.methods, ['POST', 'POST'], 'the lost POST reached the backend once');
  assert.equal(backend.closedIdle, 1);
});

test('plain node:http backend with default settings (Keep-Alive: timeout=5, closes ~1 s later): idle gaps around its timeout lose nothing', async (t) => {
  // node:http advertises timeout=5 and closes idle sockets at keepAliveTimeout + keepAliveTimeoutBuffer (about 6 s).
  // usher retires them at 3 s: a gap longer than that goes over a new connection; one shorter reuses it.
  const gaps = [2500, 3500, 4900, 5500, 5990, 6000, 6020, 6500];
  const runs = await Promise.all(
    gaps.map(async (gap) => {
      let connections = 0;
      const server = createHttpServer((req, res) => {
        req.resume();
        req.on('end', () => res.end('ok'));
      });
      server.on('connection', () => connections++);
      server.listen(0, HOST);
      await once(server, 'listening');
      t.after(() => {
        server.closeAllConnections();
        server.close();
      });
      const client = await through(t, `${HOST}:${(server.address() as AddressInfo).port}`);
      const statuses = await withGaps(client, [gap, 100]);
      return { gap, statuses, connections: () => connections };
    }),
  );
  for (const run of runs) {
    t.diagnostic(`gap ${run.gap} ms: ${run.statuses.join(' ')}, ${run.connections()} upstream connections`);
    assert.deepEqual(run.statuses, [200, 200, 200], `gap ${run.gap}`);
    assert.equal(run.connections(), run.gap > 3000 ? 2 : 1, `gap ${run.gap}: retired after 3 s idle, reused before`);
  }
});
