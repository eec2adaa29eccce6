import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import { parseConfig } from '../../src/config/index.ts';
import { createAccessLog } from '../../src/observe/access-log.ts';
import { Usher } from '../../src/runtime/usher.ts';
import { spawnCli } from '../helpers/cli.ts';
import { steadyLoad, until } from '../helpers/load.ts';
import { startOrigin, startOrigins, type Origin } from '../helpers/origin.ts';
import { configFromYaml } from '../helpers/usher.ts';

function yaml(backends: readonly Origin[], extra = ''): string {
  return `listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
${extra}pools:
  main:
    algorithm: round-robin
    backends:
${backends.map((o) => `      - address: ${o.address}\n`).join('')}`;
}

/**
 * Whether anything serves HTTP on a loopback port: 'refused', 'http' (an HTTP
 * answer came back) or 'other'. A bare connect is not enough: connecting to a
 * free port in the ephemeral range can, rarely, connect the socket to itself.
 */
function probeListener(port: number): Promise<'refused' | 'http' | 'other'> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let received = '';
    socket.setTimeout(2000, () => socket.destroy());
    socket.on('connect', () => socket.write('GET / HTTP/1.1\r\nhost: probe\r\nconnection: close\r\n\r\n'));
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') resolve('refused');
    });
    socket.on('close', () => resolve(received.startsWith('HTTP/1.1 ') ? 'http' : 'other'));
  });
}

/** An usher whose reload source is a mutable YAML text, as a file would be. */
async function reloadableUsher(initial: string): Promise<{ usher: Usher; setSource(text: string): void }> {
  let source = initial;
  const usher = await Usher.start(configFromYaml(initial), {
    accessLog: createAccessLog({ enabled: false }),
    configSource: () => parseConfig(source, 'test.yaml', {}),
  });
  return { usher, setSource: (text) => (source = text) };
}

test('reload during load changes a pool\'s backends with zero failed requests and keeps unchanged backends\' state', async (t) => {
  const origins = await startOrigins(3, 'o');
  const [o0, o1, o2] = origins as [Origin, Origin, Origin];
  const { usher, setSource } = await reloadableUsher(yaml([o0, o1]));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await Promise.all(origins.map((o) => o.close()));
  });
  const pool = usher.snapshot.pools.get('main')!;
  const keptBackend = pool.control.find(o1.address)!;

  const load = steadyLoad(usher.url('web'), { concurrency: 4, maxMs: 15_000 });
  await until(() => load.completed() >= 300, '300 responses before the reload');

  setSource(yaml([o1, o2]));
  const first = await usher.reload();
  assert.deepEqual(first, { ok: true, warnings: [] });
  const reloadedAt = performance.now();
  const o0SeenAtReload = o0.seen.length;
  await until(() => o2.seen.length >= 200, 'the added backend to take traffic');

  // An invalid file changes nothing: same snapshot, traffic continues.
  const before = usher.snapshot;
  setSource(`${yaml([o1, o2])}    algorithm: fastest\n`);
  const rejected = await usher.reload();
  assert.equal(rejected.ok, false);
  assert.match(rejected.ok ? '' : rejected.errors.join('\n'), /test\.yaml:\d+:\d+ .*algorithm/);
  assert.equal(usher.snapshot, before);

  const completedBefore = load.completed();
  await until(() => load.completed() >= completedBefore + 200, 'traffic after the rejected reload');
  const result = await load.stop();

  assert.deepEqual(result.failures, [], 'no request failed across two reloads');
  // Requests already sent to o0 when the reload returned may finish; none start there afterwards.
  assert.ok(o0.seen.length <= o0SeenAtReload + 4, `o0 got ${o0.seen.length - o0SeenAtReload} requests after it was removed`);
  assert.ok((result.lastSeen.get('o0') ?? 0) < reloadedAt + 1000);
  // The backend that stayed is the same object: health, counters and pooled connections carried over.
  assert.equal(usher.snapshot.pools.get('main'), pool);
  assert.equal(pool.control.find(o1.address), keptBackend);
  assert.ok(keptBackend.counters.requests > 300 / 2, 'counters kept across the reload');
  assert.equal(pool.control.find(o0.address), undefined);
});

test('reload adds and removes listeners cleanly', async (t) => {
  const origin = await startOrigin('o');
  const { usher, setSource } = await reloadableUsher(yaml([origin]));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  const extra = `  - name: extra
    bind: 127.0.0.1:0
    routes:
      - pool: main
`;
  setSource(yaml([origin], extra));
  assert.equal((await usher.reload()).ok, true);
  assert.deepEqual([...usher.listenerNames].sort(), ['extra', 'web']);
  const extraUrl = usher.url('extra');
  const res = await request(`${extraUrl}/x`);
  assert.equal(res.statusCode, 200);
  assert.equal(await res.body.text(), 'o');

  setSource(yaml([origin]));
  assert.equal((await usher.reload()).ok, true);
  assert.deepEqual(usher.listenerNames, ['web']);
  const refused = await probeListener(Number(new URL(extraUrl).port));
  assert.notEqual(refused, 'http', 'the removed listener no longer serves');
  assert.equal((await request(`${usher.url('web')}/y`)).statusCode, 200);
});

test('a reload that cannot bind a new listener changes nothing', async (t) => {
  const origin = await startOrigin('o');
  const { usher, setSource } = await reloadableUsher(yaml([origin]));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  const before = usher.snapshot;
  // The origin's own port is taken.
  setSource(yaml([origin], `  - name: clash\n    bind: ${origin.address}\n    routes:\n      - pool: main\n`));
  const result = await usher.reload();
  assert.equal(result.ok, false);
  assert.match(result.ok ? '' : result.errors[0]!, /listener clash: cannot bind/);
  assert.equal(usher.snapshot, before);
  assert.deepEqual(usher.listenerNames, ['web']);
});

test('drain during load: zero failures, in-flight requests finish, nothing new reaches the drained backend', async (t) => {
  const origins = await startOrigins(3, 'o', (req, res, origin) => {
    req.resume();
    // Some requests are slow, so a drain always finds requests in flight.
    const delay = req.url === '/load' && Math.random() < 0.2 ? 50 : 0;
    setTimeout(() => res.writeHead(200, { 'x-origin': origin.name }).end(origin.name), delay);
  });
  const config = configFromYaml(`${yaml(origins)}admin:\n  bind: 127.0.0.1:0\n`);
  const usher = await Usher.start(config, { accessLog: createAccessLog({ enabled: false }) });
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await Promise.all(origins.map((o) => o.close()));
  });
  const drained = origins[0]!;
  const load = steadyLoad(usher.url('web'), { concurrency: 6, maxMs: 15_000 });
  await until(() => load.completed() >= 300, 'load to warm up');

  const api = `${usher.adminUrl}/api/pools/main/backends/${encodeURIComponent(drained.address)}`;
  const drainReply = await fetch(`${api}/drain`, { method: 'POST' });
  assert.equal(drainReply.status, 200);
  // Attempts usher had started on the backend when the drain took effect (in the same turn): an upstream request
  // picked just before it may still reach the origin a turn later (writes coalesce until the turn ends), so the
  // origin's own count is not the measure; usher's count of attempts started is.
  const view = (await drainReply.json()) as { state: string; inFlight: number; counters: { requests: number } };
  const attemptsAtDrain = view.counters.requests;
  assert.equal(view.state, 'draining');

  // The deploy script's wait: in-flight reaches 0.
  const deadline = performance.now() + 5000;
  let inFlight = view.inFlight;
  while (inFlight > 0 && performance.now() < deadline) {
    inFlight = ((await (await fetch(api)).json()) as { inFlight: number }).inFlight;
  }
  assert.equal(inFlight, 0);
  const completed = load.completed();
  await until(() => load.completed() >= completed + 300, 'load to continue on the others');
  const result = await load.stop();

  assert.deepEqual(result.failures, []);
  const end = (await (await fetch(api)).json()) as { counters: { requests: number } };
  assert.equal(end.counters.requests, attemptsAtDrain, 'no attempt was started on the drained backend after the drain');
  assert.equal(drained.seen.length, attemptsAtDrain, 'every attempt started before the drain reached the backend, and no other');
  assert.ok((result.byOrigin.get('o1') ?? 0) > 0 && (result.byOrigin.get('o2') ?? 0) > 0);
});

test('SIGTERM: in-flight slow requests complete with full bodies and Connection: close, new connections are refused, exit 0', async (t) => {
  const body = 'x'.repeat(100_000);
  let started = 0;
  const origin = await startOrigin('slow', (req, res) => {
    req.resume();
    started++;
    setTimeout(() => res.writeHead(200, { 'content-length': body.length }).end(body), 600);
  });
  const dir = mkdtempSync(join(tmpdir(), 'usher-sigterm-'));
  const file = join(dir, 'usher.yaml');
  writeFileSync(file, `${yaml([origin])}accessLog:\n  enabled: false\n`);
  const cli = spawnCli(['start', '-c', file]);
  t.after(async () => {
    cli.child.kill('SIGKILL');
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const [, url] = (await cli.waitFor(/"address":"(http:\/\/[^"]+)"/)) as RegExpMatchArray as [string, string];
  const agent = new Agent({ connections: 3 });
  const inFlight = Array.from({ length: 3 }, (_, i) =>
    request(`${url}/slow/${i}`, { dispatcher: agent }).then(async (res) => ({
      status: res.statusCode,
      connection: res.headers['connection'],
      length: (await res.body.text()).length,
    })),
  );
  await until(() => started === 3, 'three slow requests at the origin');
  const stoppedAt = performance.now();
  cli.child.kill('SIGTERM');
  await cli.waitFor(/stopping: finishing in-flight requests/);

  const refused = await probeListener(Number(new URL(url).port));
  assert.notEqual(refused, 'http', 'new connections are refused once stopping');

  const results = await Promise.all(inFlight);
  for (const result of results) assert.deepEqual(result, { status: 200, connection: 'close', length: body.length });
  assert.equal(await cli.exited, 0);
  assert.ok(performance.now() - stoppedAt < 5000);
  await agent.close();
});

test('SIGTERM: requests slower than shutdownTimeout are cut at the timeout and usher still exits 0', async (t) => {
  const origin = await startOrigin('never', (req) => {
    req.resume(); // never answers
  });
  const dir = mkdtempSync(join(tmpdir(), 'usher-sigterm-'));
  const file = join(dir, 'usher.yaml');
  writeFileSync(file, `${yaml([origin])}shutdownTimeout: 300ms\naccessLog:\n  enabled: false\n`);
  const cli = spawnCli(['start', '-c', file]);
  t.after(async () => {
    cli.child.kill('SIGKILL');
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const [, url] = (await cli.waitFor(/"address":"(http:\/\/[^"]+)"/)) as RegExpMatchArray as [string, string];
  const pending = request(`${url}/hang`).then(
    (res) => `status ${res.statusCode}`,
    (err: Error) => err.message,
  );
  await until(() => origin.seen.length === 1, 'the request at the origin');
  const stoppedAt = performance.now();
  cli.child.kill('SIGTERM');
  assert.equal(await cli.exited, 0);
  const elapsed = performance.now() - stoppedAt;
  assert.ok(elapsed >= 250 && elapsed < 3000, `exited after ${elapsed.toFixed(0)} ms`);
  assert.match(await pending, /other side closed|socket|terminated/i);
  assert.match(cli.stderr, /shutdown timeout: cut the remaining connections/);
});
