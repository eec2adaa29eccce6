/**
 * The ways `redis:` reaches a server (src/redis/options.ts), each against a
 * real redis-server of the test's own, through in-process ushers' peer
 * registries and event bus: TLS with the server's CA and a client
 * certificate (and refused with the wrong CA or without the certificate), a
 * password from `${ENV}` (never shown in the admin API, metrics, log, `usher
 * check` or `usher explain`), Sentinel (one master, one sentinel) and Cluster
 * (one node holding every slot).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/index.ts';
import { createAccessLog } from '../../src/observe/access-log.ts';
import { Usher } from '../../src/runtime/usher.ts';
import { runCli } from '../helpers/cli.ts';
import { startOrigin } from '../helpers/origin.ts';
import { redisCommand, startClusterNode, startRedis, startSentinel } from '../helpers/redis.ts';
import { generateCertificate } from '../helpers/tls.ts';
import { send } from '../helpers/send.ts';
import { waitFor } from '../helpers/wait.ts';

/** An in-process usher with `redisSection` (YAML flow mapping body) and an admin API; its log lines are kept. */
async function usherWith(t: TestContext, redisSection: string, env: NodeJS.ProcessEnv = {}): Promise<{ usher: Usher; log: string[] }> {
  const origin = await startOrigin('o');
  t.after(() => origin.close());
  const yaml = `redis: { ${redisSection}, heartbeat: 200ms, peerTimeout: 1s }
admin: { bind: '127.0.0.1:0' }
listeners: [ { name: web, bind: '127.0.0.1:0', routes: [ { pool: main, filters: [ { cache: {} } ] } ] } ]
pools: { main: { backends: [ { address: '${origin.address}' } ] } }
`;
  const parsed = parseConfig(yaml, join(tmpdir(), 'peers-redis.yaml'), env);
  if (!parsed.ok) throw new Error(parsed.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  const log: string[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write: (chunk: Buffer, _encoding, done) => (log.push(chunk.toString()), done()) }));
  const usher = await Usher.start(parsed.config, { logger, accessLog: createAccessLog({ enabled: false }) });
  t.after(() => usher.stop({ timeoutMs: 500 }));
  return { usher, log };
}

const connected = (usher: Usher): boolean => usher.peersView()?.connected === true;
const listed = (usher: Usher): string[] => (usher.peersView()?.peers ?? []).map((p) => p.instance).sort();

/** Two ushers on the same Redis list each other, and a purge published by one is applied by the other. */
async function assertSharing(a: Usher, b: Usher): Promise<void> {
  await waitFor(() => JSON.stringify(listed(a)) === '["a","b"]' && JSON.stringify(listed(b)) === '["a","b"]', 'both to list a and b', 15_000, 20);
  await waitFor(() => b.peersView()!.bus.subscribed, 'b subscribed', 10_000, 20);
  const shared = await a.sharePurge({ prefix: 'http://x.test/' });
  assert.deepEqual(shared, { shared: true, receivers: 1 });
  await waitFor(() => b.peersView()!.bus.received['cache.purge'] === 1, 'b to apply the purge', 5000, 10);
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'usher-redis-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('TLS: rediss:// with the server\'s CA and a client certificate; the wrong CA or no certificate is refused and said', async (t) => {
  const dir = tempDir(t);
  const server = generateCertificate(['redis.test']);
  const client = generateCertificate(['usher-client']);
  const other = generateCertificate(['someone-else']);
  const file = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const serverCert = file('server.pem', server.cert);
  const serverKey = file('server-key.pem', server.key);
  const clientCert = file('client.pem', client.cert);
  const clientKey = file('client-key.pem', client.key);
  const otherCa = file('other.pem', other.cert);
  const redis = await startRedis(t, {
    portArgs: (port) => ['--port', '0', '--tls-port', String(port)],
    args: ['--tls-cert-file', serverCert, '--tls-key-file', serverKey, '--tls-ca-cert-file', clientCert, '--tls-auth-clients', 'yes'],
    // Up when it takes a TLS handshake with the client certificate.
    ready: (port) =>
      new Promise((resolve) => {
        const socket = tlsConnect({ port, host: '127.0.0.1', ca: server.cert, cert: client.cert, key: client.key, servername: 'redis.test' });
        socket.once('secureConnect', () => (socket.destroy(), resolve(true)));
        socket.once('error', () => resolve(false));
      }),
  });
  const url = `rediss://127.0.0.1:${redis.port}`;
  const tls = `tls: { ca: '${serverCert}', cert: '${clientCert}', key: '${clientKey}', servername: redis.test }`;
  const a = await usherWith(t, `url: '${url}', instance: a, ${tls}`);
  const b = await usherWith(t, `url: '${url}', instance: b, ${tls}`);
  await assertSharing(a.usher, b.usher);

  const wrongCa = await usherWith(t, `url: '${url}', instance: c, tls: { ca: '${otherCa}', cert: '${clientCert}', key: '${clientKey}', servername: redis.test }`);
  const noCert = await usherWith(t, `url: '${url}', instance: d, tls: { ca: '${serverCert}', servername: redis.test }`);
  await waitFor(() => /certificate/i.test(wrongCa.usher.peersView()!.error ?? ''), 'the wrong CA to be reported', 10_000, 20);
  await waitFor(() => noCert.usher.peersView()!.error !== null, 'the missing client certificate to be reported', 10_000, 20);
  assert.equal(connected(wrongCa.usher), false);
  assert.equal(connected(noCert.usher), false);
  // Neither made it into the registry.
  assert.deepEqual(listed(a.usher), ['a', 'b']);
});

test('a password from ${ENV} (or in the URL) connects, and is never shown: admin API, metrics, log, usher check, usher explain', async (t) => {
  const password = 'correct-horse-battery-staple-42';
  const redis = await startRedis(t, { args: ['--requirepass', password] });
  const env = { REDIS_PASSWORD: password };
  const a = await usherWith(t, `url: 'redis://127.0.0.1:${redis.port}', password: '\${REDIS_PASSWORD}', instance: a`, env);
  const b = await usherWith(t, `url: 'redis://:\${REDIS_PASSWORD}@127.0.0.1:${redis.port}', instance: b`, env);
  await assertSharing(a.usher, b.usher);
  const wrong = await usherWith(t, `url: 'redis://127.0.0.1:${redis.port}', password: not-the-password-${password}, instance: w`);
  await waitFor(() => /WRONGPASS|invalid|auth/i.test(wrong.usher.peersView()!.error ?? ''), 'the wrong password to be reported', 10_000, 20);

  for (const { usher, log } of [a, b, wrong]) {
    const api = await (await fetch(`${usher.adminUrl}/api/peers`)).text();
    const metrics = await usher.renderMetrics();
    const events = JSON.stringify((await import('../../src/admin/events.ts')).dashboardSnapshot(usher));
    for (const [where, text] of [['api', api], ['metrics', metrics], ['dashboard', events], ['log', log.join('')]] as const) {
      assert.ok(!text.includes(password), `the password is in the ${where}: ${text.slice(0, 2000)}`);
    }
    assert.match(api, new RegExp(`redis://127\\.0\\.0\\.1:${redis.port}`));
  }
  assert.ok(wrong.log.join('').includes('peer registry: redis unreachable'), 'the wrong password is logged (without it)');

  const dir = tempDir(t);
  const file = join(dir, 'usher.yaml');
  writeFileSync(file, `redis: { url: 'redis://:\${REDIS_PASSWORD}@127.0.0.1:${redis.port}', password: '\${REDIS_PASSWORD}' }
listeners: [ { name: web, bind: '127.0.0.1:0', routes: [ { pool: p } ] } ]
pools: { p: { backends: [ { address: '127.0.0.1:1' } ] } }
`);
  // Both places at once is an error; its message must not show the value either.
  const check = await runCli(['check', '-c', file], env);
  assert.equal(check.code, 1);
  assert.match(check.stderr + check.stdout, /redis\.password: the URL already holds a password/);
  writeFileSync(file, `redis: { url: 'redis://:\${REDIS_PASSWORD}@127.0.0.1:${redis.port}' }
listeners: [ { name: web, bind: '127.0.0.1:0', routes: [ { pool: p } ] } ]
pools: { p: { backends: [ { address: '127.0.0.1:1' } ] } }
`);
  const explain = await runCli(['explain', '-c', file, 'GET', 'http://x.test/'], env);
  assert.equal(explain.code, 0, explain.stderr);
  for (const text of [check.stdout, check.stderr, explain.stdout, explain.stderr]) assert.ok(!text.includes(password), text);
});

test('Sentinel: two ushers find the master through a sentinel, list each other and share a purge', async (t) => {
  const master = await startRedis(t);
  const sentinel = await startSentinel(t, 'usher-master', master.port);
  const section = (instance: string) => `sentinel: { name: usher-master, nodes: ['127.0.0.1:${sentinel.port}'] }, instance: ${instance}`;
  const a = await usherWith(t, section('a'));
  const b = await usherWith(t, section('b'));
  await assertSharing(a.usher, b.usher);
  // The entries are on the master the sentinel named.
  assert.match(await redisCommand(master.port, 'EXISTS {usher:peers}:a'), /^:1/);
  assert.match(a.usher.peersView()!.redis, new RegExp(`^sentinel master usher-master via 127\\.0\\.0\\.1:${sentinel.port}$`));
});

test('Cluster: two ushers on a one-node cluster list each other and share a purge', async (t) => {
  const node = await startClusterNode(t);
  const section = (instance: string) => `cluster: { nodes: ['127.0.0.1:${node.port}'] }, instance: ${instance}`;
  const a = await usherWith(t, section('a'));
  const b = await usherWith(t, section('b'));
  await assertSharing(a.usher, b.usher);
  assert.match(await redisCommand(node.port, 'EXISTS {usher:peers}:b'), /^:1/);
});

test('rate limits with store: redis decide on the master a sentinel names, and on a cluster', async (t) => {
  const master = await startRedis(t);
  const sentinel = await startSentinel(t, 'rl-master', master.port);
  const node = await startClusterNode(t);
  const origin = await startOrigin('o');
  t.after(() => origin.close());
  for (const [name, section, port] of [
    ['sentinel', `sentinel: { name: rl-master, nodes: ['127.0.0.1:${sentinel.port}'] }`, master.port],
    ['cluster', `cluster: { nodes: ['127.0.0.1:${node.port}'] }`, node.port],
  ] as const) {
    const yaml = `redis: { ${section}, keyPrefix: rl-${name}, timeout: 1s, instance: ${name} }
rateLimits: { api: { algorithm: sliding-window, limit: 3, window: 1h, key: ['header:x-user'], store: redis, onStoreError: closed } }
listeners: [ { name: web, bind: '127.0.0.1:0', routes: [ { pool: main, filters: [ { rateLimit: [api] } ] } ] } ]
pools: { main: { backends: [ { address: '${origin.address}' } ] } }
`;
    const parsed = parseConfig(yaml, join(tmpdir(), `rl-${name}.yaml`));
    if (!parsed.ok) throw new Error(parsed.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
    const usher = await Usher.start(parsed.config, { accessLog: createAccessLog({ enabled: false }) });
    t.after(() => usher.stop({ timeoutMs: 500 }));
    const webPort = usher.address('web').port;
    // onStoreError: closed answers 503 until the connection is up; then Redis decides.
    await waitFor(async () => (await send(webPort, '/', { 'x-user': 'warm' })).status === 200, `${name}: deciding on redis`, 15_000, 20);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await send(webPort, '/', { 'x-user': 'u1' })).status);
    assert.deepEqual(statuses, [200, 200, 200, 429, 429], `${name}: the limit of 3 held`);
    assert.match(await redisCommand(port, `EXISTS {rl-${name}:api}:u1`), /^:1/, `${name}: the state is on the server the connection reached`);
  }
});

test('a reload applies shareAdminActions and the new config hash at once; other redis changes wait for a restart', async (t) => {
  const redis = await startRedis(t);
  const origin = await startOrigin('o');
  t.after(() => origin.close());
  const yaml = (redisExtra: string, weight: number) => `redis: { url: 'redis://127.0.0.1:${redis.port}', instance: a, heartbeat: 200ms, peerTimeout: 1s${redisExtra} }
listeners: [ { name: web, bind: '127.0.0.1:0', routes: [ { pool: main } ] } ]
pools: { main: { backends: [ { address: '${origin.address}', weight: ${weight} } ] } }
`;
  const { configFromYaml } = await import('../helpers/usher.ts');
  const usher = await Usher.start(configFromYaml(yaml('', 1)), { accessLog: createAccessLog({ enabled: false }) });
  t.after(() => usher.stop({ timeoutMs: 500 }));
  await waitFor(() => connected(usher), 'connected', 10_000, 20);
  const before = usher.peersView()!;
  assert.equal(before.shareAdminActions, false);

  const shared = await usher.reload(configFromYaml(yaml(', shareAdminActions: true', 2)));
  assert.deepEqual(shared, { ok: true, warnings: [] });
  const after = usher.peersView()!;
  assert.equal(after.shareAdminActions, true);
  assert.notEqual(after.configHash, before.configHash);
  assert.equal(after.peers[0]!.configHash, after.configHash, 'this instance\'s row shows its new hash');
  // What Redis holds follows at the next heartbeat.
  await waitFor(async () => (await redisCommand(redis.port, 'GET {usher:peers}:a', (text) => text.includes('}'))).includes(after.configHash), 'the entry to carry the new hash', 5000, 20);

  const moved = await usher.reload(configFromYaml(yaml(', shareAdminActions: true, keyPrefix: other', 2)));
  assert.ok(moved.ok);
  assert.deepEqual(moved.warnings, ['redis changes other than shareAdminActions take effect at the next restart']);
  assert.equal(usher.peersView()!.keyPrefix, 'usher');
});
