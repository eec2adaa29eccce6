/**
 * The top-level `redis` section (src/config/redis-schema.ts): exactly one of
 * url, sentinel and cluster, credentials once, TLS rules and files, the
 * heartbeat rule, the instance id, defaults, and passwords never shown in a
 * message (from `${ENV}` or written in the file, in `password` or the URL).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';

const rest = `listeners: [ { name: web, bind: '127.0.0.1:0', routes: [ { pool: p } ] } ]
pools: { p: { backends: [ { address: '127.0.0.1:1' } ] } }
`;

function parse(redis: string, env: NodeJS.ProcessEnv = {}, file = 'usher.yaml') {
  return parseConfig(`redis: ${redis}\n${rest}`, file, env);
}

function errors(redis: string, env: NodeJS.ProcessEnv = {}): string[] {
  const result = parse(redis, env);
  assert.equal(result.ok, false, `expected errors for ${redis}`);
  return result.ok ? [] : result.errors.map((e) => `${e.path}: ${e.message}`);
}

test('defaults, and each way to reach Redis', () => {
  const url = parse(`{ url: 'redis://127.0.0.1:6379' }`);
  assert.ok(url.ok);
  assert.deepEqual(url.config.redis, { url: 'redis://127.0.0.1:6379', keyPrefix: 'usher', timeoutMs: 20, shareAdminActions: false, heartbeatMs: 1000, peerTimeoutMs: 5000 });
  const sentinel = parse(`{ sentinel: { name: mymaster, nodes: ['10.0.0.1:26379', '[::1]:26380'], password: '\${SP}' }, password: '\${P}', username: usher, instance: edge-1, shareAdminActions: true, heartbeat: 2s, peerTimeout: 10s }`, { SP: 's', P: 'p' });
  assert.ok(sentinel.ok);
  assert.deepEqual(sentinel.config.redis, {
    sentinel: { name: 'mymaster', nodes: [{ host: '10.0.0.1', port: 26379 }, { host: '::1', port: 26380 }], password: 's' },
    username: 'usher',
    password: 'p',
    keyPrefix: 'usher',
    timeoutMs: 20,
    instance: 'edge-1',
    shareAdminActions: true,
    heartbeatMs: 2000,
    peerTimeoutMs: 10_000,
  });
  const cluster = parse(`{ cluster: { nodes: ['10.0.0.1:7000'] }, tls: {} }`);
  assert.ok(cluster.ok);
  assert.deepEqual(cluster.config.redis?.cluster, { nodes: [{ host: '10.0.0.1', port: 7000 }] });
  assert.deepEqual(cluster.config.redis?.tls, { rejectUnauthorized: true });
});

test('exactly one of url, sentinel and cluster', () => {
  assert.deepEqual(errors(`{ keyPrefix: x }`), ['redis: give one of url (a standalone Redis), sentinel or cluster']);
  assert.deepEqual(errors(`{ url: 'redis://h:1', cluster: { nodes: ['h:2'] } }`), ['redis.cluster: give only one of url, sentinel and cluster (got url and cluster)']);
  assert.deepEqual(errors(`{ sentinel: { name: m, nodes: ['h:1'] }, cluster: { nodes: ['h:2'] } }`), ['redis.cluster: give only one of url, sentinel and cluster (got sentinel and cluster)']);
  assert.match(errors(`{ sentinel: { nodes: ['h:1'] } }`).join(), /missing required key "name"/);
  assert.match(errors(`{ cluster: { nodes: [] } }`).join(), /list at least one cluster node/);
  assert.match(errors(`{ cluster: { nodes: ['no-port'] } }`).join(), /expected host:port/);
});

test('URL checks, TLS rules, the heartbeat rule, the instance id', () => {
  assert.match(errors(`{ url: 'http://h:1' }`).join(), /redis\.url: expected a redis:\/\/ or rediss:\/\/ URL/);
  assert.match(errors(`{ url: 'redis://h:1/x' }`).join(), /the URL path is the database number/);
  assert.match(errors(`{ url: 'redis://h:1?tls=1' }`).join(), /no query or fragment/);
  assert.deepEqual(errors(`{ url: 'redis://h:1', tls: { ca: /etc/hosts } }`), ['redis.tls: tls needs a rediss:// URL (redis:// is plain TCP)']);
  assert.deepEqual(errors(`{ url: 'rediss://h:1', tls: { cert: /etc/hosts } }`), ['redis.tls.key: cert and key go together']);
  assert.deepEqual(errors(`{ url: 'redis://u@h:1', username: v }`), ['redis.username: the URL already names a user: give it in url or username, not both, got "v"']);
  assert.match(errors(`{ url: 'redis://h:1', heartbeat: 2s, peerTimeout: 3s }`).join(), /redis\.peerTimeout: peerTimeout must be at least twice heartbeat \(4s\)/);
  assert.match(errors(`{ url: 'redis://h:1', heartbeat: 10ms }`).join(), /at least 100ms/);
  assert.match(errors(`{ url: 'redis://h:1', instance: 'a{b}' }`).join(), /redis\.instance: expected 1 to 128 letters/);
  assert.match(errors(`{ url: 'redis://h:1', keyPrefix: 'a b' }`).join(), /redis\.keyPrefix/);
});

test('TLS files are relative to the config file and must be readable', () => {
  const dir = mkdtempSync(join(tmpdir(), 'usher-redis-config-'));
  try {
    writeFileSync(join(dir, 'ca.pem'), 'x');
    const ok = parseConfig(`redis: { url: 'rediss://h:1', tls: { ca: ca.pem } }\n${rest}`, join(dir, 'usher.yaml'));
    assert.ok(ok.ok);
    assert.equal(ok.config.redis?.tls?.ca, join(dir, 'ca.pem'));
    const missing = parseConfig(`redis: { url: 'rediss://h:1', tls: { ca: nope.pem } }\n${rest}`, join(dir, 'usher.yaml'));
    assert.equal(missing.ok, false);
    assert.match(missing.ok ? '' : missing.errors.map((e) => `${e.path}: ${e.message}`).join(), /redis\.tls\.ca: cannot read ".*nope\.pem": no such file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a password is never shown in a message, from ${ENV} or written in the file, in password or in the URL', () => {
  const secret = 'Tr0ub4dor-and-3-more';
  const cases = [
    [`{ url: 'redis://:\${PW}@h:1', password: '\${PW}' }`, 'redis.password: the URL already holds a password'],
    [`{ url: 'redis://:${secret}@h:1', password: '${secret}' }`, 'redis.password: the URL already holds a password'],
    [`{ url: 'http://:${secret}@h:1' }`, 'redis.url: expected a redis:// or rediss:// URL'],
    [`{ url: 'redis://:${secret}@h:1/notadb' }`, 'redis.url: the URL path is the database number'],
    [`{ sentinel: { name: m, nodes: ['h:1'], password: 42 }, password: '${secret}' }`, 'redis.sentinel.password: expected a string'],
  ] as const;
  for (const [redis, expected] of cases) {
    const messages = errors(redis, { PW: secret }).join('\n');
    assert.ok(messages.includes(expected), `${redis}: ${messages}`);
    assert.ok(!messages.includes(secret), `the secret is shown: ${messages}`);
  }
});

test('store: redis rate limits take every connection setting of the redis section (Sentinel, Cluster, TLS, credentials)', () => {
  const yaml = (redis: string) => `redis: ${redis}\nrateLimits: { api: { rate: 10/s, store: redis } }\n${rest}`;
  assert.ok(parseConfig(yaml(`{ sentinel: { name: m, nodes: ['h:1'] } }`), 'usher.yaml').ok);
  assert.ok(parseConfig(yaml(`{ cluster: { nodes: ['h:1'] } }`), 'usher.yaml').ok);
  assert.ok(parseConfig(yaml(`{ url: 'rediss://:pw@h:1' }`), 'usher.yaml').ok, 'everything in the URL works');
});
