/**
 * The backend kit's graceful shutdown: in real child processes
 * (test/fixtures/kit-backend.ts) stopped with real signals, and in-process for
 * the cleanup step.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { gracefulShutdown } from '../../src/backend/index.ts';
import { holdBody } from '../fixtures/kit-backend.ts';
import { idleKeepAlive, refused, startKitBackend, until } from '../fixtures/kit-process.ts';

const HOLD_BYTES = 300_000;

/** One request on its own connection; resolves with what came back, or the transport error. */
async function get(url: string): Promise<{ status: number; connection: string | undefined; body: string } | { error: string }> {
  const dispatcher = new Agent({ connections: 1 });
  try {
    const res = await request(url, { dispatcher, headersTimeout: 30_000, bodyTimeout: 30_000 });
    const connection = res.headers['connection'];
    return { status: res.statusCode, connection: Array.isArray(connection) ? connection[0] : connection, body: await res.body.text() };
  } catch (err) {
    return { error: (err as Error).message };
  } finally {
    await dispatcher.destroy();
  }
}

test('SIGTERM: readiness fails at once while requests are still served, then the listener closes, idle connections close, the in-flight response completes with Connection: close, exit 0', async (t) => {
  const drainDelayMs = 3000;
  const kit = await startKitBackend(t, { name: 'kit', port: 0, drainDelayMs, timeoutMs: 20_000, holdBytes: HOLD_BYTES });
  const base = `http://${kit.address}`;

  const before = await get(`${base}/health`);
  assert.deepEqual(before, { status: 200, connection: 'keep-alive', body: '{"status":"ok","checks":{}}' });
  const idle = await idleKeepAlive(t, kit.port, '/hello');
  assert.match(idle.firstResponse, /^HTTP\/1\.1 200 OK\r\n[^]*Connection: keep-alive\r\n[^]*\r\n\r\nkit$/);
  const held = get(`${base}/hold`);
  await until(() => kit.held === 1, 'the /hold request at the backend');

  const signalledAt = performance.now();
  kit.child.kill('SIGTERM');
  // Readiness fails at once (well within the drain delay)...
  const tookMs = await until(async () => {
    const reply = await get(`${base}/health`);
    return 'status' in reply && reply.status === 503 && reply.body === '{"status":"draining"}';
  }, 'readiness 503 draining', drainDelayMs / 2);
  // ...and liveness and ordinary requests are still served normally.
  assert.deepEqual(await get(`${base}/livez`), { status: 200, connection: 'keep-alive', body: '{"status":"ok"}' });
  assert.deepEqual(await get(`${base}/x`), { status: 200, connection: 'keep-alive', body: 'kit' });
  assert.equal(idle.isClosed(), false, 'the idle keep-alive connection stays open during the drain delay');
  assert.ok(!kit.logs.some((l) => l.includes('stopped accepting')), `closed too early: ${kit.logs.join('\n')}`);

  // After the drain delay: no new connections, idle keep-alive connections closed at once.
  await kit.waitForLog(/stopped accepting; 1 response\(s\) in flight finish with Connection: close/);
  const closedAt = performance.now() - signalledAt;
  assert.ok(closedAt >= drainDelayMs - 50, `the listener closed ${closedAt.toFixed(0)} ms after the signal, before the ${drainDelayMs} ms drain delay`);
  await until(() => refused(kit.port), 'new connections to be refused', 5000);
  await until(() => idle.isClosed(), 'the idle keep-alive connection to be closed', 5000);
  assert.equal(kit.child.exitCode, null, 'still running: a response is in flight');

  // The in-flight response completes, whole, with Connection: close; then the process exits 0.
  kit.release();
  assert.deepEqual(await held, { status: 200, connection: 'close', body: holdBody(HOLD_BYTES) });
  assert.deepEqual(await kit.exited, { code: 0, signal: null });
  const totalMs = performance.now() - signalledAt;
  t.diagnostic(`readiness 503 after ${tookMs.toFixed(0)} ms, listener closed after ${closedAt.toFixed(0)} ms, exit after ${totalMs.toFixed(0)} ms`);
  assert.ok(totalMs < 15_000, `exit took ${totalMs.toFixed(0)} ms`);
  assert.match(kit.logs.at(-1)!, /^info: shut down cleanly in \d+ ms$/);
});

test('SIGTERM: a response slower than the shutdown timeout is cut and the process exits 1 at the timeout', async (t) => {
  const timeoutMs = 1500;
  const kit = await startKitBackend(t, { name: 'kit', port: 0, drainDelayMs: 200, timeoutMs });
  const held = get(`http://${kit.address}/hold`);
  await until(() => kit.held === 1, 'the /hold request at the backend');
  const signalledAt = performance.now();
  kit.child.kill('SIGTERM');
  assert.deepEqual(await kit.exited, { code: 1, signal: null });
  const elapsed = performance.now() - signalledAt;
  assert.ok(elapsed >= timeoutMs - 50 && elapsed < 10_000, `exited ${elapsed.toFixed(0)} ms after the signal`);
  const reply = await held;
  assert.ok('error' in reply, `the held request was cut, got ${JSON.stringify(reply).slice(0, 100)}`);
  assert.ok(kit.logs.some((l) => /^error: shutdown timeout \(1500 ms\): cutting 1 response\(s\) still in flight; exiting 1$/.test(l)), kit.logs.join('\n'));
});

test('a second SIGTERM during the drain delay exits 130 at once', async (t) => {
  const kit = await startKitBackend(t, { name: 'kit', port: 0, drainDelayMs: 30_000, timeoutMs: 60_000 });
  kit.child.kill('SIGTERM');
  await kit.waitForLog(/SIGTERM: shutting down; readiness answers 503 draining, still serving for 30000 ms/);
  const secondAt = performance.now();
  kit.child.kill('SIGTERM');
  assert.deepEqual(await kit.exited, { code: 130, signal: null });
  const elapsed = performance.now() - secondAt;
  assert.ok(elapsed < 5000, `exited ${elapsed.toFixed(0)} ms after the second signal`);
  assert.ok(kit.logs.includes('warn: SIGTERM during the shutdown: exiting now'), kit.logs.join('\n'));
});

test('onShutdown runs after the last response finished; a failing one makes the exit code 2; a server that never listened shuts down at once', async (t) => {
  const events: string[] = [];
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  const server = createServer((req, res) => {
    req.resume();
    events.push('request');
    void released.then(() => res.end('done', () => events.push('response finished')));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const exits: number[] = [];
  const logs: string[] = [];
  const shutdown = gracefulShutdown(server, {
    drainDelayMs: 0,
    signals: [],
    exit: (code) => exits.push(code),
    logger: { info: (m) => logs.push(`info: ${m}`), warn: (m) => logs.push(`warn: ${m}`), error: (m) => logs.push(`error: ${m}`) },
    onShutdown: async () => {
      events.push('onShutdown');
      throw new Error('the pool would not close');
    },
  });
  const reply = get(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  await until(() => events.includes('request'), 'the request at the server');
  const code = shutdown.shutdown('test');
  assert.equal(shutdown.shutdown('again'), code, 'a second call returns the same shutdown');
  await until(() => shutdown.state === 'closing', 'closing');
  assert.equal(shutdown.inFlight, 1);
  release();
  assert.equal(await code, 2);
  assert.deepEqual(exits, [2]);
  assert.deepEqual(events, ['request', 'response finished', 'onShutdown']);
  assert.deepEqual(await reply, { status: 200, connection: 'close', body: 'done' });
  assert.ok(logs.some((l) => l.startsWith('error: onShutdown failed: Error: the pool would not close')), logs.join('\n'));

  const idle = gracefulShutdown(createServer(), { drainDelayMs: 0, signals: [], exit: () => undefined, logger: { info() {}, warn() {}, error() {} } });
  assert.equal(await idle.shutdown(), 0);
  assert.throws(() => gracefulShutdown({} as never), /gracefulShutdown needs a node:http or node:https server, got \{\}/);
  assert.throws(() => gracefulShutdown(createServer(), { drainDelayMs: Number.NaN }), /drainDelayMs must be a number of milliseconds ≥ 0, got NaN/);
});
