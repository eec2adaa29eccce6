/**
 * The backend kit's adapters on the real frameworks (dev dependencies only):
 * Express 5, Fastify 5 and Hono on @hono/node-server. Each serves the health
 * paths and stops gracefully: the shutdown is started in-process (as a
 * signal would) with an injected exit.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { serve } from '@hono/node-server';
import { Agent, request } from 'undici';
import {
  createHealth,
  expressHealth,
  fastifyHealth,
  fastifyShutdown,
  gracefulShutdown,
  honoHealth,
  honoShutdown,
  type Health,
  type Logger,
  type Shutdown,
  type ShutdownOptions,
} from '../../src/backend/index.ts';
import { refused, until } from '../fixtures/kit-process.ts';

const BODY = 'z'.repeat(150_000);

/** A promise the test resolves to let held requests answer. */
function gate(): { readonly wait: Promise<void>; open(): void; arrived: number } {
  let open: () => void = () => undefined;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open: () => open(), arrived: 0 };
}

interface Running {
  readonly port: number;
  readonly shutdown: Shutdown;
  readonly exits: number[];
  readonly logs: string[];
  readonly listening: () => boolean;
}

interface Reply {
  readonly status: number;
  readonly connection: string | undefined;
  readonly contentType: string | undefined;
  readonly body: string;
}

async function get(url: string, method: 'GET' | 'HEAD' = 'GET'): Promise<Reply> {
  const dispatcher = new Agent({ connections: 1 });
  try {
    const res = await request(url, { method, dispatcher, headersTimeout: 10_000, bodyTimeout: 10_000 });
    const header = (name: string): string | undefined => {
      const value = res.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    return { status: res.statusCode, connection: header('connection'), contentType: header('content-type'), body: await res.body.text() };
  } finally {
    await dispatcher.destroy();
  }
}

function shutdownOptions(health: Health, exits: number[], logs: string[]): ShutdownOptions {
  const logger: Logger = { info: (m) => logs.push(`info: ${m}`), warn: (m) => logs.push(`warn: ${m}`), error: (m) => logs.push(`error: ${m}`) };
  return { health, drainDelayMs: 1000, timeoutMs: 15_000, signals: [], exit: (code) => exits.push(code), logger };
}

/**
 * The same checks for every framework: health paths, then a shutdown with a
 * request held in flight across the close.
 */
async function exercise(t: TestContext, running: Running, held: ReturnType<typeof gate>): Promise<void> {
  const base = `http://127.0.0.1:${running.port}`;
  const ready = await get(`${base}/health`);
  assert.equal(ready.status, 200);
  assert.match(ready.body, /^\{"status":"ok","checks":\{"app":\{"ok":true,"ms":\d+\}\}\}$/);
  assert.match(ready.contentType ?? '', /^application\/json/);
  assert.equal((await get(`${base}/readyz`)).status, 200);
  assert.deepEqual(await get(`${base}/livez`).then((r) => [r.status, r.body]), [200, '{"status":"ok"}']);
  const head = await get(`${base}/health`, 'HEAD');
  assert.deepEqual([head.status, head.body], [200, '']);
  assert.deepEqual(await get(`${base}/hello`).then((r) => [r.status, r.body]), [200, 'hello']);

  const inFlight = get(`${base}/hold`);
  await until(() => held.arrived === 1, 'the held request at the app');
  const result = running.shutdown.shutdown('test stop');
  assert.equal(running.shutdown.state, 'draining');
  const draining = await get(`${base}/health`);
  assert.deepEqual([draining.status, draining.body], [503, '{"status":"draining"}']);
  assert.deepEqual(await get(`${base}/hello`).then((r) => [r.status, r.body]), [200, 'hello'], 'served during the drain delay');

  await until(() => running.shutdown.state === 'closing', 'the shutdown to stop accepting', 5000);
  await until(() => refused(running.port), 'new connections to be refused', 5000);
  assert.deepEqual(running.exits, [], 'no exit while a request is in flight');
  held.open();
  const reply = await inFlight;
  assert.deepEqual([reply.status, reply.connection, reply.body.length, reply.body === BODY], [200, 'close', BODY.length, true]);
  assert.equal(await result, 0);
  assert.deepEqual(running.exits, [0]);
  assert.equal(running.listening(), false);
  assert.equal(running.shutdown.state, 'done');
  assert.ok(running.logs.some((l) => /^info: shut down cleanly in \d+ ms$/.test(l)), running.logs.join('\n'));
  t.diagnostic(running.logs.join(' | '));
}

function appHealth(): Health {
  return createHealth({ checks: { app: () => true } });
}

test('Express 5: expressHealth answers the health paths; gracefulShutdown lets an in-flight request finish with Connection: close', async (t) => {
  const health = appHealth();
  const held = gate();
  const app = express();
  app.use(expressHealth(health));
  app.get('/hello', (_req, res) => {
    res.type('text/plain').send('hello');
  });
  app.get('/hold', async (_req, res) => {
    held.arrived++;
    await held.wait;
    res.type('text/plain').send(BODY);
  });
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const exits: number[] = [];
  const logs: string[] = [];
  const shutdown = gracefulShutdown(server, shutdownOptions(health, exits, logs));
  t.after(() => shutdown.dispose());
  await exercise(t, { port: (server.address() as AddressInfo).port, shutdown, exits, logs, listening: () => server.listening }, held);
});

test('Fastify 5: fastifyHealth routes and fastifyShutdown (fastify.close, onClose hooks) let an in-flight request finish with Connection: close', async (t) => {
  const health = appHealth();
  const held = gate();
  const app = Fastify({ logger: false });
  fastifyHealth(app, health);
  let onCloseRan = false;
  app.addHook('onClose', async () => {
    onCloseRan = true;
  });
  app.get('/hello', async (_request, reply) => reply.type('text/plain').send('hello'));
  app.get('/hold', async (_request, reply) => {
    held.arrived++;
    await held.wait;
    return reply.type('text/plain').send(BODY);
  });
  const exits: number[] = [];
  const logs: string[] = [];
  const shutdown = fastifyShutdown(app, shutdownOptions(health, exits, logs));
  t.after(() => shutdown.dispose());
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.after(() => app.close());
  await exercise(t, { port: (app.server.address() as AddressInfo).port, shutdown, exits, logs, listening: () => app.server.listening }, held);
  assert.equal(onCloseRan, true, "Fastify's onClose hooks ran");
});

test('Hono on @hono/node-server: honoHealth middleware and honoShutdown let an in-flight request finish with Connection: close', async (t) => {
  const health = appHealth();
  const held = gate();
  const app = new Hono();
  app.use(honoHealth(health));
  app.get('/hello', (c) => c.text('hello'));
  app.get('/hold', async (c) => {
    held.arrived++;
    await held.wait;
    return c.text(BODY);
  });
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await once(server, 'listening');
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const exits: number[] = [];
  const logs: string[] = [];
  const shutdown = honoShutdown(server, shutdownOptions(health, exits, logs));
  t.after(() => shutdown.dispose());
  await exercise(t, { port: (server.address() as AddressInfo).port, shutdown, exits, logs, listening: () => server.listening }, held);
  assert.throws(() => honoShutdown({} as never), /honoShutdown needs the node:http or node:https server serve\(\) returns/);
});
