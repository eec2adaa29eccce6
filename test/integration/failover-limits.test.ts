/**
 * Connection limits, the wait queue, the retry budget and which requests are
 * retried, inside a running usher with real backends.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { startOrigin } from '../helpers/origin.ts';
import {
  backendAt,
  clientFor,
  closedPort,
  HOST,
  poolYaml,
  send,
  switchableOrigins,
  totalAttempts,
  usherWithPool,
  waitFor,
} from '../fixtures/health.ts';

// ---- maxConnections and the wait queue -------------------------------------------

test('maxConnections 2: at most two requests at the origin, queued ones run as slots free', async (t) => {
  const DELAY = 300;
  const [origin] = await switchableOrigins(t, 1);
  origin!.delayMs = DELAY;
  const { pool, url } = await usherWithPool(t, poolYaml('maxConnections: 2\nqueueSize: 4\nqueueTimeout: 5s', [origin!.address]));
  const client = clientFor(t, url, 6);
  const started = performance.now();
  const pending = Array.from({ length: 6 }, (_, i) => send(client, `/q${i}`));
  await waitFor(() => pool.runtime.queueLength === 4, 'four requests queued');
  assert.equal(origin!.inFlight, 2);
  const replies = await Promise.all(pending);
  const done = replies.map((r) => r.end - started).sort((a, b) => a - b);
  t.diagnostic(`completions (ms): ${done.map((d) => d.toFixed(0)).join(', ')}; max at the origin ${origin!.maxInFlight}`);
  assert.deepEqual(replies.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
  assert.equal(origin!.maxInFlight, 2);
  assert.equal(origin!.hits, 6);
  // Two at a time, each at least DELAY: the k-th completion cannot come before ceil(k/2) × DELAY.
  done.forEach((ms, i) => assert.ok(ms >= Math.ceil((i + 1) / 2) * DELAY - 10, `completion ${i + 1} after ${ms.toFixed(0)} ms`));
  assert.ok(done[5]! < 3 * DELAY + 1000, `last completion after ${done[5]!.toFixed(0)} ms`);
  assert.equal(pool.runtime.queueLength, 0);
  assert.equal(pool.control.backends[0]!.inFlight, 0);
});

test('queueSize 2: requests beyond the slots and the queue get 503 queue_full at once', async (t) => {
  const DELAY = 500;
  const [origin] = await switchableOrigins(t, 1);
  origin!.delayMs = DELAY;
  const { pool, url } = await usherWithPool(t, poolYaml('maxConnections: 2\nqueueSize: 2\nqueueTimeout: 5s', [origin!.address]));
  const client = clientFor(t, url, 6);
  const replies = await Promise.all(Array.from({ length: 6 }, (_, i) => send(client, `/f${i}`)));
  const full = replies.filter((r) => r.status === 503);
  const ok = replies.filter((r) => r.status === 200);
  const firstServed = Math.min(...ok.map((r) => r.end));
  t.diagnostic(`queue_full answered within ${Math.max(...full.map((r) => r.end - r.start)).toFixed(1)} ms; first 200 after ${Math.min(...ok.map((r) => r.end - r.start)).toFixed(0)} ms`);
  assert.equal(ok.length, 4, 'two in flight and two queued were served');
  assert.equal(full.length, 2);
  for (const r of full) {
    assert.equal(r.reason, 'queue_full');
    // At once: before any slot freed (each takes DELAY at the origin), and well under DELAY even on a loaded machine.
    assert.ok(r.end < firstServed, 'queue_full came before the first slot freed');
    assert.ok(r.end - r.start < DELAY, `queue_full after ${(r.end - r.start).toFixed(0)} ms`);
  }
  assert.equal(origin!.maxInFlight, 2);
  assert.equal(origin!.hits, 4);
  assert.equal(pool.runtime.queueLength, 0);
});

test('queueTimeout 100ms: a queued request gets 503 queue_timeout after about 100 ms', async (t) => {
  const [origin] = await switchableOrigins(t, 1);
  origin!.delayMs = 1500;
  const { pool, url } = await usherWithPool(t, poolYaml('maxConnections: 2\nqueueSize: 4\nqueueTimeout: 100ms', [origin!.address]));
  const client = clientFor(t, url, 3);
  const long = [send(client, '/l0'), send(client, '/l1')];
  await waitFor(() => origin!.inFlight === 2, 'both slots taken');
  const queued = await send(client, '/waits');
  const waited = queued.end - queued.start;
  t.diagnostic(`queue_timeout after ${waited.toFixed(0)} ms`);
  assert.equal(queued.status, 503);
  assert.equal(queued.reason, 'queue_timeout');
  assert.ok(waited >= 80 && waited <= 1000, `waited ${waited.toFixed(0)} ms`);
  assert.equal(pool.runtime.queueLength, 0);
  const replies = await Promise.all(long);
  assert.deepEqual(replies.map((r) => r.status), [200, 200]);
  assert.equal(origin!.hits, 2, 'the timed-out request never reached the origin');
});

// ---- retry budget ------------------------------------------------------------------

test('retry budget 20%: with every backend resetting, attempts stay within (1 + 0.2) × N + minRetriesPerSecond × seconds', async (t) => {
  const N = 200;
  const MIN_RETRIES_PER_SECOND = 3; // the default of retry.minRetriesPerSecond
  const resetting = await Promise.all([resetAfterHead(t), resetAfterHead(t), resetAfterHead(t)]);
  const { pool, url } = await usherWithPool(t, poolYaml('retry: { attempts: 2, on: [reset], budget: 20% }', resetting.map((r) => r.address)));
  assert.equal(pool.control.config.retry.minRetriesPerSecond, MIN_RETRIES_PER_SECOND);
  const client = clientFor(t, url);
  const startedAt = performance.now();
  for (let i = 0; i < N; i++) {
    const reply = await send(client, `/b${i}`);
    assert.equal(reply.status, 502);
    assert.equal(reply.reason, 'upstream_reset');
  }
  const endedAt = performance.now();
  const attempts = totalAttempts(pool);
  const retries = attempts - N;
  // retry-budget.ts: retries ≤ budgetPercent / 100 × requests + minRetriesPerSecond × (one-second buckets touched),
  // on the same performance.now() clock; the whole run is inside one 10 s window.
  const buckets = Math.floor(endedAt / 1000) - Math.floor(startedAt / 1000) + 1;
  const bound = N + 0.2 * N + MIN_RETRIES_PER_SECOND * buckets;
  t.diagnostic(`${N} requests in ${(endedAt - startedAt).toFixed(0)} ms (${buckets} buckets): ${attempts} attempts, ${retries} retries, bound ${bound}`);
  assert.ok(attempts <= bound, `${attempts} attempts > ${bound}`);
  assert.ok(attempts < 2 * N, `${attempts} attempts; without the budget up to ${3 * N}`);
  // Rule 1 grants a retry whenever (retries + 1) × 100 ≤ 20 × requests, and every request asks: at least 20% are granted.
  assert.ok(retries >= Math.floor(0.2 * N), `${retries} retries: the budget was not used`);
  assert.equal(resetting.reduce((sum, r) => sum + r.heads, 0), attempts, 'every attempt reached a backend');
});

test('retries after a connect failure are not charged to the budget: one refusing backend of three, budget 0%, no passive ejection, nothing fails', async (t) => {
  const N = 120;
  const dead = `${HOST}:${await closedPort()}`;
  const origins = await switchableOrigins(t, 2);
  // budget 0% and no minimum: any retry that were charged would be refused. unreachable: false keeps the dead backend in rotation.
  const { pool, url } = await usherWithPool(
    t,
    poolYaml('unreachable: false\nretry: { budget: 0%, minRetriesPerSecond: 0 }', [dead, ...origins.map((o) => o.address)]),
  );
  const client = clientFor(t, url);
  for (let i = 0; i < N; i++) {
    const reply = await send(client, `/c${i}`);
    assert.equal(reply.status, 200, `request ${i}: ${reply.status} ${reply.reason ?? ''}`);
  }
  const refused = backendAt(pool, dead).counters;
  t.diagnostic(`${N} requests: ${refused.requests} attempts on the refusing backend, all retried elsewhere`);
  // Round-robin sends every third pick to the dead backend: about N / 3 refusals, each retried for free.
  assert.ok(refused.requests >= N / 4, `${refused.requests} attempts on the refusing backend`);
  assert.equal(refused.retriedAway, refused.requests);
  assert.equal(origins[0]!.hits + origins[1]!.hits, N);
});

// ---- what is retried -----------------------------------------------------------

interface ResetServer {
  readonly address: string;
  /** Request heads received (each connection is reset right after its head). */
  heads: number;
}

/** A backend that reads a request head, then resets the connection without answering. */
async function resetAfterHead(t: TestContext): Promise<ResetServer> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      reset.heads++;
      socket.removeAllListeners('data');
      socket.resetAndDestroy();
    });
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  server.unref();
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const reset: ResetServer = { address: `${HOST}:${(server.address() as AddressInfo).port}`, heads: 0 };
  return reset;
}

const RETRY_ALL = 'retry: { attempts: 2, on: [connect-failure, reset, timeout, "502", "503", "504"], budget: 20% }';

test('a POST with a body to a backend that resets after the head is not retried: one attempt, 502', async (t) => {
  const resetting = await resetAfterHead(t);
  const [good] = await switchableOrigins(t, 1);
  // Round-robin starts with the first backend listed.
  const { pool, url } = await usherWithPool(t, poolYaml(RETRY_ALL, [resetting.address, good!.address]));
  const reply = await send(clientFor(t, url), '/post', { method: 'POST', body: 'x'.repeat(1024) });
  assert.equal(reply.status, 502);
  assert.equal(reply.reason, 'upstream_reset');
  assert.equal(totalAttempts(pool), 1);
  assert.equal(resetting.heads, 1);
  assert.equal(good!.hits, 0, 'not retried on the other backend');
  assert.equal(backendAt(pool, resetting.address).counters.retriedAway, 0);
});

test('a GET to a backend that resets after the head is retried on another backend: 200 after two attempts', async (t) => {
  const resetting = await resetAfterHead(t);
  const [good] = await switchableOrigins(t, 1);
  const { pool, url } = await usherWithPool(t, poolYaml(RETRY_ALL, [resetting.address, good!.address]));
  const reply = await send(clientFor(t, url), '/get');
  assert.equal(reply.status, 200);
  assert.equal(reply.origin, good!.name);
  assert.equal(totalAttempts(pool), 2);
  assert.equal(backendAt(pool, resetting.address).counters.requests, 1);
  assert.equal(backendAt(pool, resetting.address).counters.retriedAway, 1);
  assert.equal(backendAt(pool, good!.address).counters.requests, 1);
  assert.equal(resetting.heads, 1);
});

test('a POST whose first backend refuses the connection is retried and the second backend gets the 1 MiB body intact', async (t) => {
  const body = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 10)) & 0xff;
  const expected = createHash('sha256').update(body).digest('hex');
  const hasher = await startOrigin('hasher', (req, res) => {
    const hash = createHash('sha256');
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      length += chunk.length;
    });
    req.on('end', () => res.writeHead(200, { 'x-length': String(length) }).end(hash.digest('hex')));
  });
  t.after(() => hasher.close());
  const refused = `${HOST}:${await closedPort()}`;
  const { pool, url } = await usherWithPool(t, poolYaml(RETRY_ALL, [refused, hasher.address]));
  const reply = await send(clientFor(t, url), '/upload', { method: 'POST', body });
  assert.equal(reply.status, 200, `${reply.status} ${reply.reason}`);
  assert.equal(reply.body, expected, 'sha256 of the body the second backend received');
  assert.equal(hasher.seen.length, 1);
  assert.equal(hasher.seen[0]!.headers['content-length'], String(body.length));
  assert.equal(totalAttempts(pool), 2);
  assert.equal(backendAt(pool, refused).counters.failures, 1);
  assert.equal(backendAt(pool, refused).counters.retriedAway, 1);
});
