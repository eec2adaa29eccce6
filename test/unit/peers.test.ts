/**
 * The pure parts of src/peers/: the config hash (what counts, what does not),
 * the event bus's message checks and its receiving side (own messages
 * ignored, order kept, bad messages counted and never thrown, drains only
 * with shareAdminActions), registry entries read back, and the peers table
 * of `usher status`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { configFromYaml } from '../helpers/usher.ts';
import { configHash } from '../../src/peers/config-hash.ts';
import { parseMessage, PeerBus, type BusHandlers } from '../../src/peers/bus.ts';
import { parseEntry } from '../../src/peers/registry.ts';
import type { PeersView } from '../../src/peers/peers.ts';
import type { RedisLink } from '../../src/peers/link.ts';
import type { AdminState } from '../../src/config/types.ts';
import { formatTable, peerRows, peerSummary } from '../../src/cli/status.ts';

const yaml = (extra: { redis?: string; admin?: string; weight?: number; sticky?: string; log?: string; workers?: number } = {}) => `redis: { ${extra.redis ?? "url: 'redis://10.0.0.9:6379', instance: a"} }
${extra.admin ?? 'admin: { bind: 127.0.0.1:9090 }'}
log: { level: ${extra.log ?? 'info'} }
runtime: { workers: ${extra.workers ?? 2} }
listeners: [ { name: web, bind: '0.0.0.0:8080', routes: [ { pool: p, filters: [ { cache: {} } ] } ] } ]
pools:
  p:
    ${extra.sticky === undefined ? '' : `sticky: { secret: '${extra.sticky}' }`}
    backends: [ { address: '10.0.0.5:3000', weight: ${extra.weight ?? 1} } ]
`;

test('the config hash: same for per-instance settings and secrets, different for what instances must share', () => {
  const hash = configHash(configFromYaml(yaml()));
  assert.match(hash, /^[0-9a-f]{16}$/);
  const same = [
    yaml({ redis: "url: 'redis://:pw@10.0.0.10:6379', instance: b" }),
    yaml({ redis: "sentinel: { name: m, nodes: ['10.0.0.1:26379'] }, password: p, instance: c" }),
    yaml({ admin: "admin: { bind: 10.0.0.1:9191, token: 'a-token-of-sixteen-chars' }" }),
    yaml({ log: 'debug' }),
    yaml({ workers: 8 }),
    // Key order and defaults written out do not matter.
    yaml().replace("{ address: '10.0.0.5:3000', weight: 1 }", "{ weight: 1, address: '10.0.0.5:3000', backup: false }"),
  ];
  for (const text of same) assert.equal(configHash(configFromYaml(text)), hash, text);
  assert.equal(configHash(configFromYaml(yaml({ sticky: 'sixteen-chars-one' }))), configHash(configFromYaml(yaml({ sticky: 'sixteen-chars-two' }))), 'sticky secrets are left out');
  const different = [
    yaml({ weight: 2 }),
    yaml({ redis: "url: 'redis://10.0.0.9:6379', instance: a, shareAdminActions: true" }),
    yaml({ redis: "url: 'redis://10.0.0.9:6379', instance: a, keyPrefix: other" }),
    yaml().replace('0.0.0.0:8080', '0.0.0.0:8081'),
    yaml().replace('{ cache: {} }', "{ cache: { lockTimeout: 2s } }"),
  ];
  for (const text of different) assert.notEqual(configHash(configFromYaml(text)), hash, text);
});

test('bus messages: checked field by field, version first; never throws', () => {
  const good = { v: 1, id: 'x1', from: 'a', at: 1, type: 'backend.state', pool: 'p', backend: '10.0.0.5:3000', state: 'draining' };
  assert.deepEqual(parseMessage(JSON.stringify(good)), { ok: true, message: good });
  assert.deepEqual(parseMessage(JSON.stringify({ v: 1, id: 'x', from: 'a', at: 2, type: 'cache.purge', purge: { tag: 't' } })), { ok: true, message: { v: 1, id: 'x', from: 'a', at: 2, type: 'cache.purge', purge: { tag: 't' } } });
  const cases: [string, string][] = [
    ['not json', 'malformed'],
    ['[1]', 'malformed'],
    ['null', 'malformed'],
    [JSON.stringify({ ...good, v: 2 }), 'version'],
    [JSON.stringify({ ...good, v: undefined }), 'version'],
    [JSON.stringify({ ...good, from: '' }), 'malformed'],
    [JSON.stringify({ ...good, at: 'now' }), 'malformed'],
    [JSON.stringify({ ...good, type: 'shutdown' }), 'malformed'],
    [JSON.stringify({ ...good, state: 'gone' }), 'malformed'],
    [JSON.stringify({ ...good, pool: 7 }), 'malformed'],
    [JSON.stringify({ v: 1, id: 'x', from: 'a', at: 2, type: 'cache.purge', purge: 'all' }), 'malformed'],
    [`{"v":1,"pad":"${'x'.repeat(70_000)}"}`, 'malformed'],
  ];
  for (const [text, reason] of cases) {
    const parsed = parseMessage(text);
    assert.equal(parsed.ok, false, text.slice(0, 80));
    assert.equal(!parsed.ok && parsed.reason, reason, text.slice(0, 80));
  }
});

/** A bus with fake connections and handlers that record what they applied. */
function bus(options: { share?: boolean; slowPurge?: boolean } = {}) {
  const applied: string[] = [];
  const logLines: string[] = [];
  const published: string[] = [];
  const handlers: BusHandlers = {
    purge: async (body) => {
      if (typeof body['tag'] !== 'string') throw Object.assign(new Error('give exactly one of key, prefix and tag'), { status: 400 });
      if (options.slowPurge === true) await new Promise((resolve) => setTimeout(resolve, 20));
      applied.push(`purge ${body['tag']}`);
      return 1;
    },
    backendState: async (pool: string, backend: string, state: AdminState) => {
      if (pool === 'boom') throw new Error('exploded');
      if (pool !== 'p') return false;
      applied.push(`${backend} ${state}`);
      return true;
    },
  };
  const logger = pino({ level: 'debug' }, new Writable({ write: (chunk: Buffer, _encoding, done) => (logLines.push(chunk.toString()), done()) }));
  const subscriber = { ready: true } as unknown as RedisLink;
  const peerBus = new PeerBus({
    publisher: { publish: async (_channel: string, message: string) => (published.push(message), 3) },
    subscriber,
    channel: 'usher:events',
    instance: 'me',
    shareAdminActions: () => options.share ?? false,
    handlers,
    logger,
  });
  return { peerBus, applied, logLines, published };
}

const message = (fields: Record<string, unknown>): string => JSON.stringify({ v: 1, id: 'm', from: 'other', at: Date.now(), ...fields });

test('receiving: applies in order, ignores its own, refuses drains without shareAdminActions, counts every refusal', async () => {
  const { peerBus, applied, logLines } = bus({ slowPurge: true });
  peerBus.receive(message({ type: 'cache.purge', purge: { tag: 'first' } }));
  peerBus.receive(message({ type: 'cache.purge', purge: { tag: 'second' } }));
  peerBus.receive(message({ type: 'cache.purge', purge: { tag: 'own' }, from: 'me' }));
  peerBus.receive(message({ type: 'backend.state', pool: 'p', backend: 'b', state: 'draining' }));
  peerBus.receive('garbage');
  peerBus.receive(message({ v: 7 }));
  peerBus.receive(message({ type: 'cache.purge', purge: { prefix: 'not what the fake takes' } }));
  await peerBus.applied();
  assert.deepEqual(applied, ['purge first', 'purge second'], 'the slow first purge is still applied before the second');
  assert.deepEqual(peerBus.counters.received, { 'cache.purge': 2, 'backend.state': 0 });
  assert.deepEqual(peerBus.counters.rejected, { malformed: 2, version: 1, not_shared: 1, unknown_backend: 0, failed: 0 });
  // Logged, at most once a second.
  assert.equal(logLines.filter((line) => line.includes('peer message rejected')).length, 1);
  assert.equal(peerBus.view().lastReceived?.type, 'cache.purge');
});

test('receiving with shareAdminActions: applies drains; an unknown backend and a failing handler are counted', async () => {
  const { peerBus, applied } = bus({ share: true });
  peerBus.receive(message({ type: 'backend.state', pool: 'p', backend: '10.0.0.5:3000', state: 'draining' }));
  peerBus.receive(message({ type: 'backend.state', pool: 'q', backend: '10.0.0.5:3000', state: 'enabled' }));
  peerBus.receive(message({ type: 'backend.state', pool: 'boom', backend: 'x:1', state: 'enabled' }));
  peerBus.receive(message({ type: 'backend.state', pool: 'p', backend: '10.0.0.5:3000', state: 'enabled' }));
  await peerBus.applied();
  assert.deepEqual(applied, ['10.0.0.5:3000 draining', '10.0.0.5:3000 enabled']);
  assert.deepEqual(peerBus.counters.received, { 'cache.purge': 0, 'backend.state': 2 });
  assert.equal(peerBus.counters.rejected.unknown_backend, 1);
  assert.equal(peerBus.counters.rejected.failed, 1);
});

test('publishing: purges always, backend states only with shareAdminActions; a message names its sender', async () => {
  const off = bus();
  assert.deepEqual(await off.peerBus.publishBackendState('p', 'b:1', 'draining'), { shared: false, reason: 'redis.shareAdminActions is off' });
  assert.equal(off.published.length, 0);
  // Not subscribed yet: every receiver counted is another instance.
  assert.deepEqual(await off.peerBus.publishPurge({ tag: 't' }), { shared: true, receivers: 3 });
  const sent = parseMessage(off.published[0]!);
  assert.ok(sent.ok && sent.message.from === 'me' && sent.message.type === 'cache.purge');
  const on = bus({ share: true });
  assert.deepEqual(await on.peerBus.publishBackendState('p', 'b:1', 'enabled'), { shared: true, receivers: 3 });
  assert.deepEqual(on.peerBus.counters.published, { 'cache.purge': 0, 'backend.state': 1 });
});

test('registry entries read back: anything that is not one is skipped', () => {
  const entry = { instance: 'a', hostname: 'h', pid: 1, version: '0.1.0', configHash: 'ab', admin: null, startedAt: 'x', boot: 'b', ttlMs: 5000 };
  assert.deepEqual(parseEntry(JSON.stringify(entry)), entry);
  for (const bad of ['nope', '7', JSON.stringify({ ...entry, pid: '1' }), JSON.stringify({ ...entry, ttlMs: 0 }), JSON.stringify({ ...entry, admin: 3 }), JSON.stringify({ ...entry, instance: undefined }), 42]) {
    assert.equal(parseEntry(bad), undefined, String(bad));
  }
});

test('usher status: the peers table and what is said above it', () => {
  const peer = (instance: string, fields: Partial<PeersView['peers'][number]> = {}) => ({ instance, hostname: 'host', pid: 41, version: '0.1.0', configHash: '0123456789abcdef', admin: 'http://10.0.0.1:9090', startedAt: '', lastSeen: '', ageMs: 250, self: false, sameConfig: true, ...fields });
  const view = {
    instance: 'a',
    redis: 'redis://10.0.0.9:6379',
    keyPrefix: 'usher',
    shareAdminActions: true,
    connected: false,
    listAgeMs: 4200,
    error: 'The client is offline',
    liveInstances: 2,
    configMismatch: true,
    duplicateInstance: false,
    peers: [peer('a', { self: true }), peer('b', { configHash: 'fedcba9876543210', sameConfig: false, admin: null, ageMs: 1234 })],
  } as unknown as PeersView;
  assert.deepEqual(peerSummary(view), [
    'peers: 2 instances on redis://10.0.0.9:6379 (prefix usher, admin actions shared)',
    'redis unreachable: The client is offline; peers as of 4.2s ago',
    'config mismatch: the live instances do not all serve the same config (see CONFIG)',
  ]);
  assert.equal(
    formatTable(peerRows(view)),
    [
      'INSTANCE  HOST  PID  VERSION  CONFIG                      ADMIN                 LAST SEEN',
      'a (this)  host   41  0.1.0    0123456789abcdef            http://10.0.0.1:9090  0.3s ago',
      'b         host   41  0.1.0    fedcba9876543210 (differs)  -                     1.2s ago',
    ].join('\n'),
  );
});
