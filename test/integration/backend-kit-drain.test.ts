/**
 * The backend kit's direct drain: on shutdown the service drains itself
 * through usher's admin API instead of waiting for health checks, and enables
 * itself again when it starts. Against a real in-process usher, plus a fake
 * admin API for the retry path.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import type { BackendView } from '../../src/admin/views.ts';
import type { Usher } from '../../src/runtime/usher.ts';
import { createHealth, gracefulShutdown, type Shutdown, type UsherDrainOptions } from '../../src/backend/index.ts';
import { until } from '../fixtures/kit-process.ts';
import { simpleYaml, startUsher } from '../helpers/usher.ts';

const TOKEN = 'backend-kit-drain-token-0123456789';

interface KitServer {
  readonly server: Server;
  readonly port: number;
  readonly shutdown: Shutdown;
  readonly exits: number[];
  readonly logs: string[];
}

/** An in-process service using the kit on `port` (0: ephemeral), with direct drain when `usher` is given. */
async function kitServer(t: TestContext, port: number, usher: ((port: number) => UsherDrainOptions) | undefined, drainDelayMs: number): Promise<KitServer> {
  const health = createHealth();
  const server = createServer((req, res) => health.handle(req, res) || res.writeHead(200, { 'content-type': 'text/plain' }).end('kit'));
  const exits: number[] = [];
  const logs: string[] = [];
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const bound = (server.address() as AddressInfo).port;
  const shutdown = gracefulShutdown(server, {
    health,
    drainDelayMs,
    timeoutMs: 30_000,
    signals: [],
    exit: (code) => exits.push(code),
    logger: { info: (m) => logs.push(`info: ${m}`), warn: (m) => logs.push(`warn: ${m}`), error: (m) => logs.push(`error: ${m}`) },
    ...(usher === undefined ? {} : { usher: usher(bound) }),
  });
  t.after(() => shutdown.dispose());
  return { server, port: bound, shutdown, exits, logs };
}

async function backendView(usher: Usher, address: string): Promise<BackendView> {
  const res = await fetch(`${usher.adminUrl!}/api/pools/main/backends/${encodeURIComponent(address)}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200);
  return (await res.json()) as BackendView;
}

async function usherFor(t: TestContext, address: string): Promise<Usher> {
  const usher = await startUsher(`${simpleYaml([address])}admin:\n  bind: 127.0.0.1:0\n  token: ${TOKEN}\n`);
  t.after(() => usher.stop({ timeoutMs: 500 }));
  return usher;
}

test('direct drain: shutdown drains the backend in usher long before the drain delay; the next start enables it again', async (t) => {
  // The first start needs the backend's port before usher's config can name it.
  const first = await kitServer(t, 0, undefined, 20_000);
  first.shutdown.dispose();
  const address = `127.0.0.1:${first.port}`;
  const usher = await usherFor(t, address);
  const options = (): UsherDrainOptions => ({ admin: usher.adminUrl!, token: TOKEN, pool: 'main', backend: address, settleDelayMs: 200 });
  await new Promise<void>((resolve) => first.server.close(() => resolve()));

  const kit = await kitServer(t, first.port, options, 20_000);
  await until(() => kit.logs.some((l) => l.startsWith('info: usher enabled')), 'the start-up enable call', 10_000);
  assert.equal((await fetch(`${usher.url('web')}/a`).then((r) => r.text())), 'kit');

  const started = performance.now();
  assert.equal(await kit.shutdown.shutdown('SIGTERM'), 0);
  const elapsed = performance.now() - started;
  assert.ok(elapsed < 10_000, `shutdown took ${elapsed.toFixed(0)} ms: it waited for the 20 s drain delay instead of draining through usher`);
  const drained = await backendView(usher, address);
  assert.deepEqual([drained.adminState, drained.state], ['draining', 'draining']);
  assert.ok(kit.logs.includes(`info: usher drained backend ${address} of pool main at ${usher.adminUrl!}`), kit.logs.join('\n'));
  const noBackend = await fetch(`${usher.url('web')}/b`);
  assert.deepEqual([noBackend.status, noBackend.headers.get('x-usher-error')], [503, 'no_backend'], 'usher sends nothing to the drained backend');
  await noBackend.text();

  // The restarted service, on the same port, enables itself once it listens.
  const restarted = await kitServer(t, first.port, options, 20_000);
  await until(async () => (await backendView(usher, address)).adminState === 'enabled', 'usher to show the backend enabled', 10_000);
  assert.equal((await fetch(`${usher.url('web')}/c`).then((r) => r.text())), 'kit');
  assert.deepEqual(restarted.exits, []);
});

test('direct drain: a refused admin call (wrong token) is logged with usher\'s reason and the shutdown falls back to the drain delay', async (t) => {
  const first = await kitServer(t, 0, undefined, 0);
  first.shutdown.dispose();
  const address = `127.0.0.1:${first.port}`;
  const usher = await usherFor(t, address);
  await new Promise<void>((resolve) => first.server.close(() => resolve()));
  const drainDelayMs = 800;
  const kit = await kitServer(t, first.port, () => ({ admin: usher.adminUrl!, token: 'wrong-token-0123456789', pool: 'main', backend: address }), drainDelayMs);
  await until(() => kit.logs.some((l) => l.startsWith('error: could not enable')), 'the failed enable call');
  // A 401 is not retried: the token will not become right.
  assert.match(kit.logs.find((l) => l.startsWith('error: could not enable'))!, /HTTP 401: missing or wrong admin token/);
  const started = performance.now();
  assert.equal(await kit.shutdown.shutdown('SIGTERM'), 0);
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= drainDelayMs - 50, `closed after ${elapsed.toFixed(0)} ms, before the ${drainDelayMs} ms drain delay`);
  assert.ok(kit.logs.some((l) => /^warn: could not drain .*POST \/api\/pools\/main\/backends\/127\.0\.0\.1%3A\d+\/drain: HTTP 401: missing or wrong admin token/.test(l)), kit.logs.join('\n'));
  assert.ok(kit.logs.includes(`warn: falling back to the drain delay (${drainDelayMs} ms from the signal)`), kit.logs.join('\n'));
  assert.equal((await backendView(usher, address)).adminState, 'enabled', 'nothing changed in usher');
});

test('direct drain: the start-up enable retries with backoff while usher is unavailable, and gives up without crashing when it never is', async (t) => {
  // A fake admin API: 503 for the first two calls (usher starting), then the real answers.
  const calls: string[] = [];
  const admin = createServer((req, res) => {
    calls.push(`${req.method} ${req.url}`);
    req.resume();
    if (calls.length <= 2) {
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"code":"starting","message":"not ready yet"}}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ address: 'x', adminState: req.method === 'GET' ? 'draining' : 'enabled' }));
  });
  admin.listen(0, '127.0.0.1');
  await once(admin, 'listening');
  t.after(() => admin.close());
  const adminUrl = `http://127.0.0.1:${(admin.address() as AddressInfo).port}`;
  const kit = await kitServer(t, 0, (port) => ({ admin: adminUrl, pool: 'web pool', backend: `127.0.0.1:${port}`, retryDelayMs: 50 }), 0);
  await until(() => kit.logs.some((l) => l.startsWith('info: usher enabled')), 'the enable call to succeed', 10_000);
  const path = `/api/pools/web%20pool/backends/127.0.0.1%3A${kit.port}`;
  assert.deepEqual(calls, [`GET ${path}`, `GET ${path}`, `GET ${path}`, `POST ${path}/enable`]);
  assert.equal(kit.logs.filter((l) => /^warn: could not enable .* yet \(GET .*: HTTP 503: not ready yet\); retrying in (50|100) ms$/.test(l)).length, 2, kit.logs.join('\n'));

  // usher never answers (every connection is cut): a few tries, one error line, no exception anywhere.
  const cutter = createNetServer((socket) => socket.destroy());
  cutter.listen(0, '127.0.0.1');
  await once(cutter, 'listening');
  t.after(() => cutter.close());
  const cutUrl = `http://127.0.0.1:${(cutter.address() as AddressInfo).port}`;
  const lonely = await kitServer(t, 0, (port) => ({ admin: cutUrl, pool: 'main', backend: `127.0.0.1:${port}`, retryDelayMs: 20, enableAttempts: 3 }), 0);
  await until(() => lonely.logs.some((l) => l.startsWith('error: could not enable')), 'the enable call to give up', 10_000);
  assert.match(lonely.logs.find((l) => l.startsWith('error: could not enable'))!, /: GET \/api\/pools\/main\/backends\/127\.0\.0\.1%3A\d+: (other side closed|socket hang up|read ECONNRESET).* \(gave up after 3 tries\)$/);
  assert.equal(lonely.logs.filter((l) => l.startsWith('warn: could not enable')).length, 2);
  // A port fetch refuses outright (6000 is on the Fetch standard's blocked list; nothing is contacted): said so, not retried.
  const blocked = await kitServer(t, 0, (port) => ({ admin: 'http://127.0.0.1:6000', pool: 'main', backend: `127.0.0.1:${port}`, retryDelayMs: 20 }), 0);
  await until(() => blocked.logs.some((l) => l.startsWith('error: could not enable')), 'the enable call to give up', 10_000);
  assert.match(blocked.logs.find((l) => l.startsWith('error: could not enable'))!, /fetch refuses to connect to port 6000 \(a port blocked by the Fetch standard\); give usher's admin API another port$/);
  assert.equal(blocked.logs.filter((l) => l.startsWith('warn: could not enable')).length, 0);
  // The service itself is unaffected.
  assert.equal(await fetch(`http://127.0.0.1:${lonely.port}/livez`).then((r) => r.status), 200);
  assert.deepEqual([lonely.exits, blocked.exits], [[], []]);
});
