/**
 * src/redis/options.ts: the `redis` config → node-redis options, for a
 * standalone server, Sentinel and Cluster (credentials, TLS files, the
 * rate limiter's defaults: short command timeout, no offline queue, capped
 * reconnects), and the text about a connection that is safe to show.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RedisConfig } from '../../src/config/types.ts';
import { createRedisConnection, describeRedis, reconnectDelay, redactSecrets, redisConnectionOptions } from '../../src/redis/options.ts';

const base = { keyPrefix: 'usher', timeoutMs: 20, shareAdminActions: false, heartbeatMs: 1000, peerTimeoutMs: 5000 } as const;
const files: Record<string, string> = { '/ca.pem': 'CA', '/c.pem': 'CERT', '/k.pem': 'KEY' };
const readFile = (path: string): Buffer => {
  const text = files[path];
  if (text === undefined) throw new Error(`no such file ${path}`);
  return Buffer.from(text);
};
const tls = { ca: '/ca.pem', cert: '/c.pem', key: '/k.pem', servername: 'redis.internal', rejectUnauthorized: true };

test('standalone: the URL, the rate limiter\'s defaults, credentials and scripts', () => {
  const scripts = { noop: { SCRIPT: 'return 1', NUMBER_OF_KEYS: 0, parseCommand() {}, transformReply: () => 1 } };
  const made = redisConnectionOptions({ ...base, url: 'redis://10.0.0.9:6379/2', username: 'usher', password: 'pw' } as RedisConfig, scripts as never);
  assert.equal(made.kind, 'standalone');
  if (made.kind !== 'standalone') return;
  const o = made.options;
  assert.equal(o.url, 'redis://10.0.0.9:6379/2');
  assert.equal(o.username, 'usher');
  assert.equal(o.password, 'pw');
  assert.equal(o.disableOfflineQueue, true);
  assert.deepEqual(o.commandOptions, { timeout: 20, rejectInFlight: true });
  assert.equal(o.scripts, scripts);
  const socket = o.socket as Record<string, unknown>;
  assert.equal(socket['tls'], false);
  assert.equal(socket['connectTimeout'], 1000);
  assert.equal(socket['reconnectStrategy'], reconnectDelay);
});

test('standalone over TLS: rediss:// with the files read, servername and rejectUnauthorized', () => {
  const made = redisConnectionOptions({ ...base, url: 'rediss://redis.internal:6380', tls } as RedisConfig, undefined, { readFile, commandTimeoutMs: 1000, clientName: 'usher:a' });
  assert.equal(made.kind, 'standalone');
  if (made.kind !== 'standalone') return;
  const socket = made.options.socket as Record<string, unknown>;
  assert.equal(socket['tls'], true);
  assert.deepEqual([String(socket['ca']), String(socket['cert']), String(socket['key'])], ['CA', 'CERT', 'KEY']);
  assert.equal(socket['servername'], 'redis.internal');
  assert.equal(socket['rejectUnauthorized'], true);
  assert.deepEqual(made.options.commandOptions, { timeout: 1000, rejectInFlight: true });
  assert.equal(made.options.name, 'usher:a');
  assert.equal(made.options.scripts, undefined);
  // A file that cannot be read fails when the connection is made, naming it.
  assert.throws(() => redisConnectionOptions({ ...base, url: 'rediss://h:1', tls: { ...tls, ca: '/missing.pem' } } as RedisConfig, undefined, { readFile }), /missing\.pem/);
});

test('Sentinel: createSentinel options, the master\'s and the sentinels\' credentials apart, TLS on both', () => {
  const config = { ...base, sentinel: { name: 'mymaster', nodes: [{ host: '10.0.0.1', port: 26379 }, { host: '::1', port: 26380 }], password: 'sentinel-pw' }, username: 'usher', password: 'node-pw', tls } as RedisConfig;
  const made = redisConnectionOptions(config, undefined, { readFile });
  assert.equal(made.kind, 'sentinel');
  if (made.kind !== 'sentinel') return;
  const o = made.options;
  assert.equal(o.name, 'mymaster');
  assert.deepEqual(o.sentinelRootNodes, [{ host: '10.0.0.1', port: 26379 }, { host: '::1', port: 26380 }]);
  assert.deepEqual(o.commandOptions, { timeout: 20, rejectInFlight: true });
  assert.equal(o.passthroughClientErrorEvents, true);
  const node = o.nodeClientOptions as Record<string, unknown>;
  assert.deepEqual([node['username'], node['password'], node['disableOfflineQueue']], ['usher', 'node-pw', true]);
  assert.equal((node['socket'] as Record<string, unknown>)['tls'], true);
  const sentinel = o.sentinelClientOptions as Record<string, unknown>;
  assert.deepEqual([sentinel['username'], sentinel['password']], [undefined, 'sentinel-pw']);
  assert.equal(String((sentinel['socket'] as Record<string, unknown>)['ca']), 'CA');
  // Without a tls mapping: plain TCP everywhere.
  const plain = redisConnectionOptions({ ...base, sentinel: { name: 'm', nodes: [{ host: 'h', port: 1 }] } } as RedisConfig);
  assert.equal(plain.kind === 'sentinel' && (plain.options.nodeClientOptions?.socket as Record<string, unknown>)['tls'], undefined);
});

test('Cluster: createCluster options, credentials and TLS in the defaults every node connection gets', () => {
  const made = redisConnectionOptions({ ...base, cluster: { nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7000 }] }, password: 'pw', tls } as RedisConfig, undefined, { readFile });
  assert.equal(made.kind, 'cluster');
  if (made.kind !== 'cluster') return;
  assert.deepEqual(made.options.rootNodes, [{ socket: { host: '10.0.0.1', port: 7000 } }, { socket: { host: '10.0.0.2', port: 7000 } }]);
  const defaults = made.options.defaults as Record<string, unknown>;
  assert.deepEqual([defaults['password'], defaults['disableOfflineQueue']], ['pw', true]);
  assert.equal((defaults['socket'] as Record<string, unknown>)['tls'], true);
  assert.deepEqual(made.options.commandOptions, { timeout: 20, rejectInFlight: true });
});

test('createRedisConnection makes the client of each kind without connecting', () => {
  for (const config of [{ url: 'redis://127.0.0.1:1' }, { sentinel: { name: 'm', nodes: [{ host: '127.0.0.1', port: 1 }] } }, { cluster: { nodes: [{ host: '127.0.0.1', port: 1 }] } }]) {
    const connection = createRedisConnection({ ...base, ...config } as RedisConfig);
    assert.equal(connection.isOpen, false);
    assert.equal(typeof connection.connect, 'function');
  }
});

test('reconnects: 50 ms doubling to 1 s, plus under 50 ms of jitter', () => {
  for (let i = 0; i < 20; i++) {
    const first = reconnectDelay(0);
    assert.ok(first >= 50 && first < 100, String(first));
    const later = reconnectDelay(30);
    assert.ok(later >= 1000 && later < 1050, String(later));
  }
  assert.ok(reconnectDelay(2) >= 200 && reconnectDelay(2) < 250);
});

test('describeRedis and redactSecrets never show a password', () => {
  const config = { ...base, url: 'redis://usher:s3cr%40t@10.0.0.9:6379/3', password: undefined } as RedisConfig;
  assert.equal(describeRedis(config), 'redis://10.0.0.9:6379/3');
  assert.equal(describeRedis({ ...base, url: 'rediss://[::1]:6380' } as RedisConfig), 'rediss://[::1]:6380');
  assert.equal(describeRedis({ ...base, sentinel: { name: 'm', nodes: [{ host: 'a', port: 1 }, { host: 'b', port: 2 }], password: 'x' }, tls } as RedisConfig), 'sentinel master m via a:1, b:2 (tls)');
  assert.equal(describeRedis({ ...base, cluster: { nodes: [{ host: '::1', port: 7000 }] } } as RedisConfig), 'cluster [::1]:7000');
  assert.equal(redactSecrets('auth s3cr@t failed (s3cr%40t)', config), 'auth *** failed (***)');
  assert.equal(redactSecrets('WRONGPASS hunter2-hunter2', { ...base, url: 'redis://h:1', password: 'hunter2-hunter2' } as RedisConfig), 'WRONGPASS ***');
  assert.equal(redactSecrets('sentinel said pw-of-sentinel', { ...base, sentinel: { name: 'm', nodes: [], password: 'pw-of-sentinel' } } as unknown as RedisConfig), 'sentinel said ***');
});
