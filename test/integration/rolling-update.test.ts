import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BackendView, PoolView } from '../../src/admin/views.ts';
import type { Usher } from '../../src/runtime/usher.ts';
import { startOrigins } from '../helpers/origin.ts';
import { simpleYaml, startUsher } from '../helpers/usher.ts';

const SCRIPT = fileURLToPath(new URL('../../scripts/rolling-update.sh', import.meta.url));
const TOKEN = 'rolling-update-token-0123456789';

/**
 * An origin that can be restarted like a real server process: it stops
 * listening and cuts its connections, is down for a moment, listens again on
 * the same port, then answers 503 (health checks included) while it warms up.
 */
interface RestartableOrigin {
  readonly name: string;
  readonly address: string;
  /** 1 before any restart, then 2, 3, ... */
  generation: number;
  restarts: number;
  /** Load requests answered 200, per generation. */
  readonly served: Map<number, number>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Down briefly, then warming for longer than usher's checks need to notice
 * (fall 3 at 100 ms): enabled right after the restart, it would take traffic
 * and answer 503. Only waiting for passing checks avoids that.
 */
const DOWN_MS = 20;
const WARMING_MS = 400;

async function restartableOrigin(t: TestContext, name: string): Promise<RestartableOrigin> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let warming = false;
  let port = 0;
  const origin: RestartableOrigin = {
    name,
    address: '',
    generation: 1,
    restarts: 0,
    served: new Map(),
    async restart() {
      origin.restarts++;
      await stop();
      await sleep(DOWN_MS);
      origin.generation++;
      warming = true;
      await listen();
      setTimeout(() => (warming = false), WARMING_MS).unref();
    },
    close: stop,
  };
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    req.resume();
    req.on('end', () => {
      if (warming) {
        res.writeHead(503, { 'content-length': '7' }).end('warming');
        return;
      }
      if (req.url !== '/health') origin.served.set(origin.generation, (origin.served.get(origin.generation) ?? 0) + 1);
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(name.length) }).end(name);
    });
  };
  async function listen(): Promise<void> {
    const next = createServer(handle);
    next.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    next.listen(port, '127.0.0.1');
    await once(next, 'listening');
    next.unref();
    port = (next.address() as AddressInfo).port;
    server = next;
  }
  async function stop(): Promise<void> {
    const current = server;
    server = undefined;
    if (current === undefined) return;
    const closed = new Promise<void>((resolve) => current.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  }
  await listen();
  Object.assign(origin, { address: `127.0.0.1:${port}` });
  t.after(() => origin.close());
  return origin;
}

/** A control server: `POST /restart/<address>` restarts that origin and answers once it listens again. */
async function controlServer(t: TestContext, origins: readonly RestartableOrigin[], onRestart: (origin: RestartableOrigin) => void): Promise<string> {
  const server = createServer((req, res) => {
    req.resume();
    const address = decodeURIComponent((req.url ?? '').replace(/^\/restart\//, ''));
    const origin = origins.find((o) => o.address === address);
    if (req.method !== 'POST' || origin === undefined) {
      res.writeHead(404).end(`no origin ${address}\n`);
      return;
    }
    onRestart(origin);
    origin.restart().then(
      () => res.writeHead(200).end('restarted\n'),
      (err: unknown) => res.writeHead(500).end(`${String(err)}\n`),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  server.unref();
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const healthCheck = { path: '/health', interval: '200ms', fastInterval: '100ms', timeout: '1s', rise: 2, fall: 3 };

function yaml(backends: readonly string[], checked: boolean): string {
  return `${simpleYaml(backends, { algorithm: 'round-robin', ...(checked ? { healthCheck } : {}) })}admin:\n  bind: 127.0.0.1:0\n  token: ${TOKEN}\n`;
}

interface ScriptRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the script without blocking the event loop (usher runs in this process). */
function runScript(args: readonly string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<ScriptRun> {
  const child = spawn('bash', [SCRIPT, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

interface Outcome {
  readonly status: number;
  readonly body: string;
}

/** Steady load from `workers` sequential loops, GETs and POSTs with a body, until `stop()` or `max` requests. */
async function steadyLoad(usher: Usher, workers: number, max: number, stop: () => boolean): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  let sent = 0;
  const worker = async (w: number): Promise<void> => {
    while (!stop() && sent < max) {
      const i = sent++;
      try {
        const res = await fetch(`${usher.url('web')}/item/${i}`, i % 3 === 0 ? { method: 'POST', body: `payload ${w} ${i}` } : {});
        outcomes.push({ status: res.status, body: await res.text() });
      } catch (err) {
        outcomes.push({ status: 0, body: String(err) });
      }
    }
  };
  await Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
  return outcomes;
}

async function poolView(usher: Usher): Promise<PoolView> {
  const res = await fetch(`${usher.adminUrl!}/api/pools/main`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200);
  return (await res.json()) as PoolView;
}

test('scripts/rolling-update.sh restarts every backend of a pool under steady load with zero failed requests', { timeout: 90_000 }, async (t) => {
  const origins = [await restartableOrigin(t, 'app0'), await restartableOrigin(t, 'app1'), await restartableOrigin(t, 'app2')];
  const usher = await startUsher(yaml(origins.map((o) => o.address), true));
  t.after(() => usher.stop({ timeoutMs: 500 }));
  const outOfRotationAtRestart: string[][] = [];
  const control = await controlServer(t, origins, () => {
    // At the moment of a restart exactly one backend is out of rotation: the one restarting.
    const pool = usher.snapshot.pools.get('main')!;
    outOfRotationAtRestart.push(pool.control.backends.filter((b) => b.adminState !== 'enabled').map((b) => `${b.key} ${b.adminState} inFlight=${b.inFlight}`));
  });

  let finished = false;
  const load = steadyLoad(usher, 4, 50_000, () => finished);
  const run = await runScript(
    ['--admin', usher.adminUrl!, '--pool', 'main', '--health-timeout', '20', '--', 'sh', '-c', 'curl -sSf -X POST "$CONTROL/restart/$USHER_BACKEND"'],
    { USHER_ADMIN_TOKEN: TOKEN, CONTROL: control },
  );
  // A little more load after the last enable, so the last backend is seen taking traffic again.
  const servedBefore = origins[2]!.served.get(origins[2]!.generation) ?? 0;
  const deadline = Date.now() + 10_000;
  while ((origins[2]!.served.get(origins[2]!.generation) ?? 0) < servedBefore + 10 && Date.now() < deadline) await sleep(10);
  finished = true;
  const outcomes = await load;

  assert.ok(outcomes.length >= 100 && outcomes.length < 50_000, `${outcomes.length} requests`);
  const failed = outcomes.filter((o) => o.status !== 200 || !origins.some((origin) => origin.name === o.body));
  assert.deepEqual(failed, [], `${failed.length} of ${outcomes.length} requests failed`);
  assert.equal(run.code, 0, `script failed:\n${run.stderr}`);
  assert.match(run.stderr, /rolling-update: pool main: 3 backend\(s\) updated\n$/);
  for (const origin of origins) {
    assert.match(run.stderr, new RegExp(`${origin.address}: draining\n[^]*${origin.address}: health checks pass\n[^]*${origin.address}: enabled \\(healthy\\)\n`));
  }

  assert.deepEqual(origins.map((o) => [o.restarts, o.generation]), [[1, 2], [1, 2], [1, 2]]);
  assert.deepEqual(
    outOfRotationAtRestart,
    origins.map((o) => [`${o.address} draining inFlight=0`]),
  );
  // Every restarted backend took traffic again, and none was served while warming up.
  for (const origin of origins) assert.ok((origin.served.get(2) ?? 0) > 0, `${origin.name} served after its restart`);
  const pool = await poolView(usher);
  assert.deepEqual(pool.backends.map((b) => [b.address, b.adminState, b.state, b.inFlight]), origins.map((o) => [o.address, 'enabled', 'healthy', 0]));
});

test('scripts/rolling-update.sh stops with the backend left draining when the restart fails, and never drains the last healthy backend', async (t) => {
  const [a, b] = await startOrigins(2);
  t.after(() => Promise.all([a!.close(), b!.close()]));
  const usher = await startUsher(yaml([a!.address, b!.address], true));
  t.after(() => usher.stop({ timeoutMs: 500 }));

  const failed = await runScript(['--admin', usher.adminUrl!, '--pool', 'main', '--token', TOKEN, '--', 'false']);
  assert.equal(failed.code, 1, failed.stderr);
  assert.match(failed.stderr, new RegExp(`${a!.address}: the restart command failed\n$`));
  assert.ok(failed.stderr.includes(`${a!.address} is left draining; when it is fine: curl -X POST -H "Authorization: Bearer $USHER_ADMIN_TOKEN" ${usher.adminUrl!}/api/pools/main/backends/127.0.0.1%3A${a!.port}/enable`), failed.stderr);
  let pool = await poolView(usher);
  assert.deepEqual(pool.backends.map((v) => v.adminState), ['draining', 'enabled']);

  // a is draining, so b is the only healthy backend: the script refuses to take it out and skips a.
  const refused = await runScript(['--admin', usher.adminUrl!, '--pool', 'main', '--token', TOKEN, '--', 'true']);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, new RegExp(`${a!.address}: skipped, an operator set it draining\n`));
  assert.match(refused.stderr, new RegExp(`${b!.address}: not drained: no other backend of pool main is healthy\n$`));
  pool = await poolView(usher);
  assert.deepEqual(pool.backends.map((v) => v.adminState), ['draining', 'enabled']);

  // Wrong token, unknown pool and wrong usage are reported.
  const unauthorized = await runScript(['--admin', usher.adminUrl!, '--pool', 'main', '--token', 'wrong-token-0123456789', '--', 'true']);
  assert.equal(unauthorized.code, 1);
  assert.match(unauthorized.stderr, /GET \/api\/pools\/main: HTTP 401: .*missing or wrong admin token/);
  const unknown = await runScript(['--admin', usher.adminUrl!, '--pool', 'nope', '--token', TOKEN, '--', 'true']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /HTTP 404: .*no pool named \\"nope\\"; pools: main/);
  const usage = await runScript(['--pool', 'main']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /Usage: scripts\/rolling-update\.sh --admin URL --pool NAME/);
  const view = await fetch(`${usher.adminUrl!}/api/pools/main/backends/${encodeURIComponent(a!.address)}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(((await view.json()) as BackendView).inFlight, 0);
});
