import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { detectFormat, loadConfigFile, parseConfig, type ConfigResult, type UsherConfig } from '../../src/config/index.ts';

const FULL = `listeners:
  - name: web
    bind: 127.0.0.1:8080
    protocol: http
    routes:
      - match: { host: API.example.com, pathPrefix: /api/, methods: [GET, POST], headers: { X-Canary: "1" } }
        pool: api
        stripPrefix: /api          # optional rewrite
      - pool: web                  # a route with no match is the catch-all
pools:
  web:
    algorithm: hash
    hashKey: header:X-User
    hashBalanceFactor: 150
    sticky: { cookie: usher_sticky, ttl: 1h, secret: \${STICKY_SECRET} }
    timeouts: { connect: 500ms, response: 1m30s, idle: 2s }
    backends:
      - address: 127.0.0.1:3001
        weight: 1
      - address: "[::1]:3002"
        weight: 5
  api:
    backends:
      - address: api.internal:80
accessLog: { enabled: false, path: /var/log/usher.log }
`;

const EXPECTED: UsherConfig = {
  listeners: [
    {
      name: 'web',
      bind: { host: '127.0.0.1', port: 8080 },
      protocol: 'http',
      acceptProxyProtocol: false,
      trustedProxies: [],
      routes: [
        {
          match: { host: 'api.example.com', pathPrefix: '/api/', methods: ['GET', 'POST'], headers: { 'x-canary': '1' } },
          pool: 'api',
          stripPrefix: '/api',
        },
        { pool: 'web' },
      ],
      limits: { maxHeaderBytes: 32_768, maxHeaders: 100, maxUriBytes: 8192, maxBodyBytes: 0, maxRequestsPerConnection: 1000, maxConnections: 10_000, maxConnectionsPerClient: 0 },
      timeouts: { headerMs: 10_000, bodyIdleMs: 60_000, keepAliveMs: 60_000, sendMs: 60_000, tunnelIdleMs: 3_600_000 },
    },
  ],
  pools: {
    web: {
      protocol: 'http1',
      drainTimeoutMs: 30_000,
      algorithm: 'hash',
      hashKey: { kind: 'header', name: 'x-user' },
      hashBalanceFactor: 150,
      sticky: { cookie: 'usher_sticky', ttlMs: 3_600_000, secret: 'a-long-enough-secret-value' },
      timeouts: { connectMs: 500, responseMs: 90_000, idleMs: 2000 },
      backends: [
        { address: { host: '127.0.0.1', port: 3001 }, weight: 1, backup: false, state: 'enabled' },
        { address: { host: '::1', port: 3002 }, weight: 5, backup: false, state: 'enabled' },
      ],
      queueSize: 128,
      queueTimeoutMs: 5000,
      unreachable: { backoffMs: 1000, maxBackoffMs: 10_000 },
      retry: { attempts: 2, on: ['connect-failure', 'reset'], budgetPercent: 20, minRetriesPerSecond: 3 },
    },
    api: {
      protocol: 'http1',
      drainTimeoutMs: 30_000,
      algorithm: 'p2c',
      hashKey: { kind: 'client-ip' },
      timeouts: { connectMs: 5000, responseMs: 60_000, idleMs: 60_000 },
      backends: [{ address: { host: 'api.internal', port: 80 }, weight: 1, backup: false, state: 'enabled' }],
      queueSize: 128,
      queueTimeoutMs: 5000,
      unreachable: { backoffMs: 1000, maxBackoffMs: 10_000 },
      retry: { attempts: 2, on: ['connect-failure', 'reset'], budgetPercent: 20, minRetriesPerSecond: 3 },
    },
  },
  accessLog: { enabled: false, path: '/var/log/usher.log', format: 'json' },
  log: { level: 'info', destination: 'stderr' },
  shutdownTimeoutMs: 30_000,
};

function ok(result: ConfigResult): { config: UsherConfig; warnings: readonly unknown[] } {
  if (!result.ok) assert.fail(`expected a valid config, got:\n${result.errors.map((e) => `${e.line}:${e.column} ${e.path}: ${e.message}`).join('\n')}`);
  return result;
}

describe('parseConfig: valid files', () => {
  it('resolves the full example: durations in ms, addresses split, names normalised, defaults applied', () => {
    const { config, warnings } = ok(parseConfig(FULL, 'usher.yaml', { STICKY_SECRET: 'a-long-enough-secret-value' }));
    assert.deepEqual(config, EXPECTED);
    assert.deepEqual(warnings, []);
  });

  it('applies every default to a minimal file', () => {
    const { config } = ok(parseConfig('listeners: [{ name: a, bind: "0.0.0.0:0", routes: [{ pool: p }] }]\npools: { p: { backends: [{ address: "h:1" }], sticky: {} } }\n', 'min.yaml', {}));
    assert.deepEqual(config, {
      listeners: [{ name: 'a', bind: { host: '0.0.0.0', port: 0 }, protocol: 'http', acceptProxyProtocol: false, trustedProxies: [], routes: [{ pool: 'p' }], limits: { maxHeaderBytes: 32_768, maxHeaders: 100, maxUriBytes: 8192, maxBodyBytes: 0, maxRequestsPerConnection: 1000, maxConnections: 10_000, maxConnectionsPerClient: 0 }, timeouts: { headerMs: 10_000, bodyIdleMs: 60_000, keepAliveMs: 60_000, sendMs: 60_000, tunnelIdleMs: 3_600_000 } }],
      pools: {
        p: {
          protocol: 'http1',
          drainTimeoutMs: 30_000,
          algorithm: 'p2c',
          hashKey: { kind: 'client-ip' },
          sticky: { cookie: 'usher_sticky', ttlMs: 3_600_000, secret: undefined },
          timeouts: { connectMs: 5000, responseMs: 60_000, idleMs: 60_000 },
          backends: [{ address: { host: 'h', port: 1 }, weight: 1, backup: false, state: 'enabled' }],
          queueSize: 128,
          queueTimeoutMs: 5000,
          unreachable: { backoffMs: 1000, maxBackoffMs: 10_000 },
          retry: { attempts: 2, on: ['connect-failure', 'reset'], budgetPercent: 20, minRetriesPerSecond: 3 },
        },
      },
      accessLog: { enabled: true, format: 'json' },
      log: { level: 'info', destination: 'stderr' },
      shutdownTimeoutMs: 30_000,
    });
  });

  it('parses every hash key form', () => {
    const cases = {
      'client-ip': { kind: 'client-ip' },
      path: { kind: 'path' },
      'header:X-Id': { kind: 'header', name: 'x-id' },
      'cookie:Sid': { kind: 'cookie', name: 'Sid' },
      'query:user id': { kind: 'query', name: 'user id' },
    };
    for (const [hashKey, expected] of Object.entries(cases)) {
      const yaml = `listeners: [{ name: a, bind: "h:1", routes: [{ pool: p }] }]\npools: { p: { algorithm: maglev, hashKey: "${hashKey}", backends: [{ address: "h:2" }] } }\n`;
      assert.deepEqual(ok(parseConfig(yaml, 'u.yaml', {})).config.pools['p']?.hashKey, expected, hashKey);
    }
  });

  it('accepts JSON, by extension or by content, with positions in errors', () => {
    const json = JSON.stringify({
      listeners: [{ name: 'web', bind: '127.0.0.1:8080', routes: [{ pool: 'web' }] }],
      pools: { web: { backends: [{ address: '127.0.0.1:3001', weight: 2 }] } },
    }, null, 2);
    assert.deepEqual(ok(parseConfig(json, 'usher.json', {})).config.pools['web']?.backends, [{ address: { host: '127.0.0.1', port: 3001 }, weight: 2, backup: false, state: 'enabled' }]);
    assert.equal(ok(parseConfig(json, 'config', {})).config.listeners[0]?.name, 'web');
    assert.equal(detectFormat('config', json), 'json');
    assert.equal(detectFormat('x.JSON', 'a: 1'), 'json');
    assert.equal(detectFormat('x.yml', '{}'), 'yaml');

    const bad = json.replace('127.0.0.1:3001', 'localhost');
    const result = parseConfig(bad, 'usher.json', {});
    assert.equal(result.ok, false);
    assert.deepEqual(!result.ok && result.errors, [
      { file: 'usher.json', line: 17, column: 22, path: 'pools.web.backends[0].address', message: 'expected host:port, got "localhost"' },
    ]);
  });

  it('accepts a top-level $schema key (for editors) and drops it', () => {
    const { config } = ok(parseConfig('$schema: ./usher.schema.json\nlisteners: [{ name: a, bind: "h:1", routes: [{ pool: p }] }]\npools: { p: { backends: [{ address: "h:2" }] } }\n', 'u.yaml', {}));
    assert.equal('$schema' in config, false);
  });

  it('warns (but loads) on unreachable routes, unused pools and a stripPrefix that never applies', () => {
    const yaml = `listeners:
  - name: a
    bind: h:1
    routes:
      - pool: p
      - match: { pathPrefix: /v2 }
        pool: p
        stripPrefix: /api
pools:
  p: { backends: [{ address: "h:2" }] }
  unused: { backends: [{ address: "h:3" }] }
`;
    const { warnings } = ok(parseConfig(yaml, 'w.yaml', {}));
    assert.deepEqual(warnings, [
      { file: 'w.yaml', line: 6, column: 9, path: 'listeners[0].routes[1]', message: 'this route is never reached: routes[0] before it matches every request' },
      { file: 'w.yaml', line: 8, column: 22, path: 'listeners[0].routes[1].stripPrefix', message: 'stripPrefix never applies: every matching path starts with "/v2"' },
      { file: 'w.yaml', line: 11, column: 3, path: 'pools.unused', message: 'pool "unused" is not used by any route' },
    ]);
  });
});

describe('loadConfigFile', () => {
  it('loads examples/usher.yaml without errors or warnings', () => {
    const path = fileURLToPath(new URL('../../examples/usher.yaml', import.meta.url));
    const { config, warnings } = ok(loadConfigFile(path, { STICKY_SECRET: 'x'.repeat(64) }));
    assert.deepEqual(warnings, []);
    assert.deepEqual(Object.keys(config.pools), ['api', 'api-canary', 'assets', 'web']);
    assert.equal(config.pools['web']?.sticky?.ttlMs, 12 * 3_600_000);
  });

  it('reports a missing file as a config error, not an exception', () => {
    assert.deepEqual(loadConfigFile('/nonexistent/usher.yaml', {}), {
      ok: false,
      errors: [{ file: '/nonexistent/usher.yaml', line: undefined, column: undefined, path: '', message: 'cannot read the config file: no such file (ENOENT)' }],
    });
  });

  it('reports a directory as a config error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'usher-config-'));
    try {
      const result = loadConfigFile(dir, {});
      assert.equal(result.ok, false);
      assert.equal(!result.ok && result.errors[0]?.message, 'cannot read the config file: it is a directory (EISDIR)');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads a file from disk with its name in every issue', () => {
    const dir = mkdtempSync(join(tmpdir(), 'usher-config-'));
    try {
      const file = join(dir, 'u.yaml');
      writeFileSync(file, 'listeners: []\npools: {}\n');
      const result = loadConfigFile(file, {});
      assert.equal(result.ok, false);
      assert.deepEqual(!result.ok && result.errors.map((e) => [e.file, e.line, e.column, e.path, e.message]), [
        [file, 1, 12, 'listeners', 'define at least one listener'],
      ]);
      assert.equal(readFileSync(file, 'utf8').length > 0, true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
