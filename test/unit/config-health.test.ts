/**
 * Config keys for health checks, outlier detection, slow start, panic mode,
 * retries, connection limits, backend states, the admin API and the shutdown
 * timeout: defaults, ranges, value formats and the rules across keys.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configJsonSchema, formatIssue, parseConfig, quickConfig, type ConfigResult, type PoolConfig, type UsherConfig } from '../../src/config/index.ts';
import type { JsonSchemaNode } from '../../src/config/json-schema.ts';

const LISTENER = 'listeners: [{ name: web, bind: "127.0.0.1:8080", routes: [{ pool: web }] }]\n';

/** A file with one listener and the pool `web` whose body (indented 4) is `pool`; `top` is appended at the top level. */
function file(pool: string, top = ''): string {
  const body = pool.split('\n').filter((line) => line !== '').map((line) => `    ${line}`).join('\n');
  return `${LISTENER}pools:\n  web:\n${body}\n${top}`;
}

function ok(result: ConfigResult): { readonly config: UsherConfig; readonly warnings: readonly string[] } {
  if (!result.ok) assert.fail(`expected a valid config, got:\n${result.errors.map(formatIssue).join('\n')}`);
  return { config: result.config, warnings: result.warnings.map(formatIssue) };
}

function poolOf(text: string, env: NodeJS.ProcessEnv = {}): PoolConfig {
  const pool = ok(parseConfig(text, 'u.yaml', env)).config.pools['web'];
  assert.ok(pool !== undefined);
  return pool;
}

/** `path: message` for every error (positions are checked where rules span keys). */
function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  const result = parseConfig(text, 'u.yaml', env);
  if (result.ok) assert.fail('expected errors, the config is valid');
  return result.errors.map((e) => `${e.path}: ${e.message}`);
}

/** Every error formatted with its position. */
function located(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  const result = parseConfig(text, 'u.yaml', env);
  if (result.ok) assert.fail('expected errors, the config is valid');
  return result.errors.map(formatIssue);
}

const BACKEND = 'backends: [{ address: "h:1" }]';

describe('config defaults for the new keys', () => {
  it('fills every default: checks, ejection and retries when their keys are present, limits and backend state always', () => {
    const pool = poolOf(file(`healthCheck: {}\noutlier: {}\nretry: {}\n${BACKEND}`));
    assert.deepEqual(pool, {
      protocol: 'http1',
      drainTimeoutMs: 30_000,
      algorithm: 'p2c',
      hashKey: { kind: 'client-ip' },
      timeouts: { connectMs: 5000, responseMs: 60_000, idleMs: 60_000 },
      healthCheck: {
        type: 'http',
        path: '/health',
        intervalMs: 2000,
        fastIntervalMs: 500,
        timeoutMs: 1000,
        rise: 2,
        fall: 3,
        expectStatus: [[200, 399]],
        expectBody: undefined,
        host: undefined,
        port: undefined,
      },
      outlier: { consecutiveFailures: 5, ejectionTimeMs: 30_000, maxEjectionTimeMs: 300_000, maxEjectionPercent: 50 },
      unreachable: { backoffMs: 1000, maxBackoffMs: 10_000 },
      retry: { attempts: 2, on: ['connect-failure', 'reset'], budgetPercent: 20, minRetriesPerSecond: 3 },
      queueSize: 128,
      queueTimeoutMs: 5000,
      backends: [{ address: { host: 'h', port: 1 }, weight: 1, backup: false, state: 'enabled' }],
    });
  });

  it('leaves optional features off when their keys are absent', () => {
    const { config } = ok(parseConfig(file(BACKEND), 'u.yaml', {}));
    const pool = config.pools['web'];
    for (const key of ['healthCheck', 'outlier', 'slowStartMs', 'panicThresholdPercent', 'maxConnections'] as const) {
      assert.equal(pool !== undefined && key in pool, false, key);
    }
    // What keeps requests alive when a backend dies is on without a key: retries of connect failures and resets, and passive ejection.
    assert.deepEqual(pool?.retry, { attempts: 2, on: ['connect-failure', 'reset'], budgetPercent: 20, minRetriesPerSecond: 3 });
    assert.deepEqual(pool?.unreachable, { backoffMs: 1000, maxBackoffMs: 10_000 });
    assert.equal('maxConnections' in (pool?.backends[0] ?? {}), false);
    assert.equal('admin' in config, false);
    assert.equal(config.shutdownTimeoutMs, 30_000);
  });

  it('caps the default fastInterval at the interval', () => {
    assert.equal(poolOf(file(`healthCheck: { interval: 200ms }\n${BACKEND}`)).healthCheck?.fastIntervalMs, 200);
    assert.equal(poolOf(file(`healthCheck: { interval: 500ms }\n${BACKEND}`)).healthCheck?.fastIntervalMs, 500);
    assert.equal(poolOf(file(`healthCheck: { interval: 10s }\n${BACKEND}`)).healthCheck?.fastIntervalMs, 500);
    assert.equal(poolOf(file(`healthCheck: { interval: 10s, fastInterval: 10s }\n${BACKEND}`)).healthCheck?.fastIntervalMs, 10_000);
  });

  it('quick mode gets the same defaults', () => {
    const { config } = ok(quickConfig({ bind: '127.0.0.1:0', backends: ['h:1'] }));
    assert.equal(config.shutdownTimeoutMs, 30_000);
    assert.equal(config.pools['default']?.queueSize, 128);
    assert.equal(config.pools['default']?.queueTimeoutMs, 5000);
    assert.deepEqual(config.pools['default']?.backends[0], { address: { host: 'h', port: 1 }, weight: 1, backup: false, state: 'enabled' });
  });

  it('documents the defaults in the JSON Schema, including the computed fastInterval and secrets as writeOnly', () => {
    const schema = configJsonSchema() as JsonSchemaNode;
    const pool = schema.properties?.['pools']?.additionalProperties as JsonSchemaNode;
    const check = pool.properties?.['healthCheck']?.properties ?? {};
    assert.deepEqual(
      Object.fromEntries(Object.entries(check).map(([key, node]) => [key, node.default])),
      { type: 'http', path: '/health', interval: '2s', fastInterval: '500ms', timeout: '1s', rise: 2, fall: 3, expectStatus: '200-399', expectBody: undefined, host: undefined, port: undefined },
    );
    assert.deepEqual(pool.properties?.['retry']?.properties?.['on']?.default, ['connect-failure', 'reset']);
    assert.equal(pool.properties?.['retry']?.properties?.['budget']?.default, 20);
    assert.equal(pool.properties?.['outlier']?.properties?.['maxEjectionPercent']?.default, 50);
    assert.equal(schema.properties?.['shutdownTimeout']?.default, '30s');
    assert.deepEqual(schema.properties?.['admin']?.required, ['bind']);
    assert.equal(schema.properties?.['admin']?.properties?.['token']?.writeOnly, true);
    assert.equal(pool.properties?.['sticky']?.properties?.['secret']?.writeOnly, true);
  });
});

describe('config values for the new keys', () => {
  it('resolves every key as written', () => {
    const text = file(`healthCheck:
  type: http
  path: /healthz
  interval: 5s
  fastInterval: 1s
  timeout: 1500ms
  rise: 4
  fall: 1
  expectStatus: 204
  expectBody: "~^ok$"
  host: health.internal:8443
  port: 9000
outlier: { consecutiveFailures: 1000, ejectionTime: 1s, maxEjectionTime: 1s, maxEjectionPercent: 0 }
slowStart: 1m
panicThreshold: 100
retry: { attempts: 0, on: [503], budget: 0%, minRetriesPerSecond: 0 }
maxConnections: 1000000
queueSize: 0
queueTimeout: 250ms
backends:
  - { address: "h:1", backup: true, state: draining, maxConnections: 1 }
  - { address: "h:2", state: disabled }
`, 'admin: { bind: "[::1]:0", token: "0123456789abcdef" }\nshutdownTimeout: 1m30s\n');
    const { config, warnings } = ok(parseConfig(text, 'u.yaml', {}));
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.admin, { bind: { host: '::1', port: 0 }, token: '0123456789abcdef' });
    assert.equal(config.shutdownTimeoutMs, 90_000);
    const pool = config.pools['web'];
    assert.deepEqual(pool?.healthCheck, {
      type: 'http', path: '/healthz', intervalMs: 5000, fastIntervalMs: 1000, timeoutMs: 1500, rise: 4, fall: 1,
      expectStatus: [[204, 204]], expectBody: '~^ok$', host: 'health.internal:8443', port: 9000,
    });
    assert.deepEqual(pool?.outlier, { consecutiveFailures: 1000, ejectionTimeMs: 1000, maxEjectionTimeMs: 1000, maxEjectionPercent: 0 });
    assert.equal(pool?.slowStartMs, 60_000);
    assert.equal(pool?.panicThresholdPercent, 100);
    assert.deepEqual(pool?.retry, { attempts: 0, on: ['503'], budgetPercent: 0, minRetriesPerSecond: 0 });
    assert.equal(pool?.maxConnections, 1_000_000);
    assert.equal(pool?.queueSize, 0);
    assert.equal(pool?.queueTimeoutMs, 250);
    assert.deepEqual(pool?.backends, [
      { address: { host: 'h', port: 1 }, weight: 1, backup: true, state: 'draining', maxConnections: 1 },
      { address: { host: 'h', port: 2 }, weight: 1, backup: false, state: 'disabled' },
    ]);
  });

  it('parses expectStatus: one code, or codes and ranges separated by commas', () => {
    const cases: [string, readonly (readonly [number, number])[]][] = [
      ['200', [[200, 200]]],
      ['"200"', [[200, 200]]],
      ['"200-399"', [[200, 399]]],
      ['"200,204,300-399"', [[200, 200], [204, 204], [300, 399]]],
      ['" 200 , 204-204 ,500 - 599 "', [[200, 200], [204, 204], [500, 599]]],
      ['"100-599"', [[100, 599]]],
    ];
    for (const [written, expected] of cases) {
      assert.deepEqual(poolOf(file(`healthCheck: { expectStatus: ${written} }\n${BACKEND}`)).healthCheck?.expectStatus, expected, written);
    }
  });

  it('rejects malformed expectStatus values, saying what is expected', () => {
    const expected = 'expected a status code such as 200, or codes and ranges such as "200,204,300-399" (codes 100–599)';
    const range = 'status codes must be in [100, 599]';
    const cases: [string, string][] = [
      ['99', `${range}, got 99`],
      ['600', `${range}, got 600`],
      ['200.5', `${expected}, got 200.5`],
      ['"99-200"', `${range}, got "99-200"`],
      ['"200-600"', `${range}, got "200-600"`],
      ['"1000"', `${expected}, got "1000"`],
      ['"300-200"', 'a status range is written low-high, e.g. "300-399", got "300-200"'],
      ['"2xx"', `${expected}, got "2xx"`],
      ['"200,,300"', `${expected}, got "200,,300"`],
      ['"200;300"', `${expected}, got "200;300"`],
      ['""', `${expected}, got ""`],
      ['[200, 204]', expected],
      ['true', `${expected}, got true`],
    ];
    for (const [written, message] of cases) {
      assert.deepEqual(problems(file(`healthCheck: { expectStatus: ${written} }\n${BACKEND}`)), [`pools.web.healthCheck.expectStatus: ${message}`], written);
    }
  });

  it('accepts percentages as integers or "N%" text (or digits as text, for ${VAR})', () => {
    const at = (key: string, written: string): unknown => {
      const pool = poolOf(file(`${key}: ${written}\n${BACKEND}`));
      return pool.panicThresholdPercent;
    };
    assert.equal(at('panicThreshold', '50'), 50);
    assert.equal(at('panicThreshold', '"50%"'), 50);
    assert.equal(at('panicThreshold', '50%'), 50);
    assert.equal(at('panicThreshold', '"50"'), 50);
    assert.equal(at('panicThreshold', '100%'), 100);
    assert.equal(at('panicThreshold', '1%'), 1);
    assert.equal(poolOf(file(`retry: { budget: 0% }\n${BACKEND}`)).retry?.budgetPercent, 0);
    assert.equal(poolOf(file(`retry: { budget: 100 }\n${BACKEND}`)).retry?.budgetPercent, 100);
    assert.equal(poolOf(file(`outlier: { maxEjectionPercent: "30%" }\n${BACKEND}`)).outlier?.maxEjectionPercent, 30);
  });

  it('rejects percentages out of range or not whole, with one message per key', () => {
    const panic = 'panicThreshold must be a whole percentage in [1, 100], written like 50 or "50%"';
    const budget = 'budget must be a whole percentage in [0, 100], written like 50 or "50%"';
    const ejection = 'maxEjectionPercent must be a whole percentage in [0, 100], written like 50 or "50%"';
    const cases: [string, string][] = [
      ['panicThreshold: 0', `pools.web.panicThreshold: ${panic}, got 0`],
      ['panicThreshold: 0%', `pools.web.panicThreshold: ${panic}, got "0%"`],
      ['panicThreshold: 101%', `pools.web.panicThreshold: ${panic}, got "101%"`],
      ['panicThreshold: 50.5', `pools.web.panicThreshold: ${panic}, got 50.5`],
      ['panicThreshold: 50.5%', `pools.web.panicThreshold: ${panic}, got "50.5%"`],
      ['panicThreshold: "%"', `pools.web.panicThreshold: ${panic}, got "%"`],
      ['panicThreshold: "-5%"', `pools.web.panicThreshold: ${panic}, got "-5%"`],
      ['panicThreshold: "50 %"', `pools.web.panicThreshold: ${panic}, got "50 %"`],
      ['panicThreshold: true', `pools.web.panicThreshold: ${panic}, got true`],
      ['panicThreshold: [50]', `pools.web.panicThreshold: ${panic}`],
      ['retry: { budget: -1 }', `pools.web.retry.budget: ${budget}, got -1`],
      ['retry: { budget: 101 }', `pools.web.retry.budget: ${budget}, got 101`],
      ['retry: { budget: "1000%" }', `pools.web.retry.budget: ${budget}, got "1000%"`],
      ['outlier: { maxEjectionPercent: 101 }', `pools.web.outlier.maxEjectionPercent: ${ejection}, got 101`],
      ['outlier: { maxEjectionPercent: "half" }', `pools.web.outlier.maxEjectionPercent: ${ejection}, got "half"`],
    ];
    for (const [written, message] of cases) assert.deepEqual(problems(file(`${written}\n${BACKEND}`)), [message], written);
  });

  it('reports every range error with the key, the range and what was found', () => {
    const cases: [string, string][] = [
      ['healthCheck: { rise: 0 }', 'pools.web.healthCheck.rise: rise must be an integer in [1, 100], got 0'],
      ['healthCheck: { rise: 101 }', 'pools.web.healthCheck.rise: rise must be an integer in [1, 100], got 101'],
      ['healthCheck: { fall: 0 }', 'pools.web.healthCheck.fall: fall must be an integer in [1, 100], got 0'],
      ['healthCheck: { fall: 2.5 }', 'pools.web.healthCheck.fall: fall must be an integer in [1, 100], got 2.5'],
      ['healthCheck: { port: 0 }', 'pools.web.healthCheck.port: port must be an integer in [1, 65535], got 0'],
      ['healthCheck: { port: 65536 }', 'pools.web.healthCheck.port: port must be an integer in [1, 65535], got 65536'],
      ['healthCheck: { port: "80" }', 'pools.web.healthCheck.port: port must be an integer in [1, 65535], got "80"'],
      ['healthCheck: { type: udp }', 'pools.web.healthCheck.type: expected one of http, tcp (did you mean "tcp"?), got "udp"'],
      ['healthCheck: { type: ping }', 'pools.web.healthCheck.type: expected one of http, tcp, got "ping"'],
      ['healthCheck: { type: HTTP }', 'pools.web.healthCheck.type: expected one of http, tcp (did you mean "http"?), got "HTTP"'],
      ['healthCheck: { path: health }', 'pools.web.healthCheck.path: expected a path starting with "/", got "health"'],
      ['healthCheck: { interval: 0s }', 'pools.web.healthCheck.interval: duration must be greater than 0, got "0s"'],
      ['healthCheck: { interval: 2 }', 'pools.web.healthCheck.interval: expected a duration such as "500ms", "5s", "1m", "1h" or "1d" (the unit is required), got 2'],
      ['healthCheck: { fastInterval: "0" }', 'pools.web.healthCheck.fastInterval: duration must be greater than 0, got "0"'],
      ['healthCheck: { timeout: 1 sec }', 'pools.web.healthCheck.timeout: expected a duration such as "500ms", "5s", "1m", "1h" or "1d", got "1 sec"'],
      ['healthCheck: { expectBody: "" }', 'pools.web.healthCheck.expectBody: expected text the body must contain; leave the key out to accept any body, got ""'],
      ['healthCheck: { expectBody: "~(" }', 'pools.web.healthCheck.expectBody: invalid regular expression: Unterminated group (after "~"), got "~("'],
      ['healthCheck: { expectBody: 200 }', 'pools.web.healthCheck.expectBody: expected a string (quote numbers and booleans, e.g. "1"), got 200'],
      ['healthCheck: { host: "a b" }', 'pools.web.healthCheck.host: expected a host name such as "health.internal", optionally with ":port", got "a b"'],
      ['healthCheck: { host: "http://h" }', 'pools.web.healthCheck.host: expected a host name such as "health.internal", optionally with ":port" (a name, not a URL), got "http://h"'],
      ['healthCheck: { host: "h:x" }', 'pools.web.healthCheck.host: expected a host name such as "health.internal", optionally with ":port", got "h:x"'],
      ['healthCheck: { host: "h:" }', 'pools.web.healthCheck.host: expected a host name such as "health.internal", optionally with ":port", got "h:"'],
      ['healthCheck: { host: "h:0" }', 'pools.web.healthCheck.host: port must be an integer in [1, 65535], got "h:0"'],
      ['healthCheck: { host: "[zz]" }', 'pools.web.healthCheck.host: expected a host name such as "health.internal", optionally with ":port" (with a valid IPv6 address inside the brackets), got "[zz]"'],
      ['healthCheck: { intervall: 2s }', 'pools.web.healthCheck.intervall: unknown key "intervall" (did you mean "interval"?)'],
      ['healthCheck: tcp', 'pools.web.healthCheck: expected a healthCheck mapping, got "tcp"'],
      ['outlier: { consecutiveFailures: 0 }', 'pools.web.outlier.consecutiveFailures: consecutiveFailures must be an integer in [1, 1000], got 0'],
      ['outlier: { consecutiveFailures: 1001 }', 'pools.web.outlier.consecutiveFailures: consecutiveFailures must be an integer in [1, 1000], got 1001'],
      ['outlier: { ejectionTime: 0s }', 'pools.web.outlier.ejectionTime: duration must be greater than 0, got "0s"'],
      ['outlier: { maxEjectionTime: 30 }', 'pools.web.outlier.maxEjectionTime: expected a duration such as "500ms", "5s", "1m", "1h" or "1d" (the unit is required), got 30'],
      ['outlier: true', 'pools.web.outlier: expected an outlier mapping, got true'],
      ['slowStart: 0s', 'pools.web.slowStart: duration must be greater than 0, got "0s"'],
      ['slowStart: 30', 'pools.web.slowStart: expected a duration such as "500ms", "5s", "1m", "1h" or "1d" (the unit is required), got 30'],
      ['retry: { attempts: -1 }', 'pools.web.retry.attempts: attempts must be an integer in [0, 10], got -1'],
      ['retry: { attempts: 11 }', 'pools.web.retry.attempts: attempts must be an integer in [0, 10], got 11'],
      ['retry: { minRetriesPerSecond: -1 }', 'pools.web.retry.minRetriesPerSecond: minRetriesPerSecond must be an integer in [0, 1000], got -1'],
      ['retry: { minRetriesPerSecond: 1001 }', 'pools.web.retry.minRetriesPerSecond: minRetriesPerSecond must be an integer in [0, 1000], got 1001'],
      ['retry: { on: [] }', 'pools.web.retry.on: list at least one condition, or set attempts: 0 to turn retries off'],
      ['retry: { on: 503 }', 'pools.web.retry.on: expected a list of retry conditions, got 503'],
      ['retry: { on: [connect-failures] }', 'pools.web.retry.on[0]: expected one of connect-failure, reset, timeout, 502, 503, 504 (did you mean "connect-failure"?), got "connect-failures"'],
      ['retry: { on: [500] }', 'pools.web.retry.on[0]: expected one of connect-failure, reset, timeout, 502, 503, 504, got 500'],
      ['retry: { on: ["5xx"] }', 'pools.web.retry.on[0]: expected one of connect-failure, reset, timeout, 502, 503, 504, got "5xx"'],
      ['retry: 2', 'pools.web.retry: expected a retry mapping, got 2'],
      ['maxConnections: 0', 'pools.web.maxConnections: maxConnections must be an integer in [1, 1000000], got 0'],
      ['maxConnections: 1000001', 'pools.web.maxConnections: maxConnections must be an integer in [1, 1000000], got 1000001'],
      ['queueSize: -1', 'pools.web.queueSize: queueSize must be an integer in [0, 1000000], got -1'],
      ['queueSize: 1000001', 'pools.web.queueSize: queueSize must be an integer in [0, 1000000], got 1000001'],
      ['queueTimeout: 0s', 'pools.web.queueTimeout: duration must be greater than 0, got "0s"'],
    ];
    for (const [written, message] of cases) assert.deepEqual(problems(file(`${written}\n${BACKEND}`)), [message], written);
  });

  it('reports range errors on backends, admin and the shutdown timeout', () => {
    const backend = (extra: string): string => file(`backends: [{ address: "h:1", ${extra} }]`);
    const cases: [string, string][] = [
      [backend('backup: yes'), 'pools.web.backends[0].backup: expected true or false, got "yes"'],
      [backend('backup: 1'), 'pools.web.backends[0].backup: expected true or false, got 1'],
      [backend('state: drainig'), 'pools.web.backends[0].state: expected one of enabled, draining, disabled (did you mean "draining"?), got "drainig"'],
      [backend('state: off'), 'pools.web.backends[0].state: expected one of enabled, draining, disabled, got "off"'],
      [backend('maxConnections: 0'), 'pools.web.backends[0].maxConnections: maxConnections must be an integer in [1, 1000000], got 0'],
      [backend('maxConnections: 2000000'), 'pools.web.backends[0].maxConnections: maxConnections must be an integer in [1, 1000000], got 2000000'],
      [file(BACKEND, 'shutdownTimeout: 0s\n'), 'shutdownTimeout: duration must be greater than 0, got "0s"'],
      [file(BACKEND, 'shutdownTimeout: 30\n'), 'shutdownTimeout: expected a duration such as "500ms", "5s", "1m", "1h" or "1d" (the unit is required), got 30'],
      [file(BACKEND, 'admin: {}\n'), 'admin: missing required key "bind"'],
      [file(BACKEND, 'admin: "127.0.0.1:9090"\n'), 'admin: expected an admin mapping with "bind", got "127.0.0.1:9090"'],
      [file(BACKEND, 'admin: { bind: localhost }\n'), 'admin.bind: expected host:port, got "localhost"'],
      [file(BACKEND, 'admin: { bind: "127.0.0.1:65536" }\n'), 'admin.bind: port must be an integer in [0, 65535], got "127.0.0.1:65536"'],
      [file(BACKEND, 'admin: { bind: "127.0.0.1:9090", tokn: x }\n'), 'admin.tokn: unknown key "tokn" (did you mean "token"?)'],
    ];
    for (const [text, message] of cases) assert.deepEqual(problems(text), [message], text);
  });

  it('accepts retry statuses as numbers or text, in any order, and rejects repeats', () => {
    assert.deepEqual(poolOf(file(`retry: { on: [504, "502", timeout, connect-failure] }\n${BACKEND}`)).retry?.on, ['504', '502', 'timeout', 'connect-failure']);
    assert.deepEqual(located(file(`retry: { on: [503, reset, "503", reset] }\n${BACKEND}`)), [
      'u.yaml:4:31 pools.web.retry.on[2]: retry condition "503" is listed twice (also on[0])',
      'u.yaml:4:38 pools.web.retry.on[3]: retry condition "reset" is listed twice (also on[1])',
    ]);
  });

  it('accepts Host headers with or without a port', () => {
    for (const host of ['health.internal', 'health.internal:8080', '10.0.0.1', '10.0.0.1:80', '"[::1]"', '"[::1]:80"', 'my_service']) {
      assert.equal(poolOf(file(`healthCheck: { host: ${host} }\n${BACKEND}`)).healthCheck?.host, host.replaceAll('"', ''), host);
    }
  });

  it('reads ${VAR} values as the type each key expects', () => {
    const text = file(`healthCheck: { port: \${PORT}, rise: \${RISE}, expectStatus: \${STATUS} }
panicThreshold: \${PANIC}
retry: { budget: \${BUDGET}, on: [\${ON}] }
backends: [{ address: "h:1", backup: \${BACKUP} }, { address: "h:2" }]`);
    const pool = poolOf(text, { PORT: '9000', RISE: '5', STATUS: '200', PANIC: '40', BUDGET: '25%', ON: '503', BACKUP: 'true' });
    assert.equal(pool.healthCheck?.port, 9000);
    assert.equal(pool.healthCheck?.rise, 5);
    assert.deepEqual(pool.healthCheck?.expectStatus, [[200, 200]]);
    assert.equal(pool.panicThresholdPercent, 40);
    assert.equal(pool.retry?.budgetPercent, 25);
    assert.deepEqual(pool.retry?.on, ['503']);
    assert.equal(pool.backends[0]?.backup, true);
    assert.deepEqual(problems(text, { PORT: '0', RISE: '5', STATUS: '2xx', PANIC: '400', BUDGET: '25%', ON: '500', BACKUP: 'true' }), [
      'pools.web.healthCheck.port: port must be an integer in [1, 65535], got "${PORT}"',
      'pools.web.healthCheck.expectStatus: expected a status code such as 200, or codes and ranges such as "200,204,300-399" (codes 100–599), got "${STATUS}"',
      'pools.web.panicThreshold: panicThreshold must be a whole percentage in [1, 100], written like 50 or "50%", got "${PANIC}"',
      'pools.web.retry.on[0]: expected one of connect-failure, reset, timeout, 502, 503, 504, got "${ON}"',
    ]);
  });
});

describe('config rules across the new keys', () => {
  it('rejects http-only keys on a tcp health check, pointing at each key', () => {
    const text = file(`healthCheck:
  type: tcp
  path: /healthz
  expectStatus: 200
  expectBody: ok
  host: h.internal
  port: 9000
  interval: 1s
${BACKEND}`);
    assert.deepEqual(located(text), [
      'u.yaml:6:7 pools.web.healthCheck.path: path only applies to type "http" health checks, but this one uses "tcp"',
      'u.yaml:7:7 pools.web.healthCheck.expectStatus: expectStatus only applies to type "http" health checks, but this one uses "tcp"',
      'u.yaml:8:7 pools.web.healthCheck.expectBody: expectBody only applies to type "http" health checks, but this one uses "tcp"',
      'u.yaml:9:7 pools.web.healthCheck.host: host only applies to type "http" health checks, but this one uses "tcp"',
    ]);
    assert.deepEqual(problems(file(`healthCheck: { type: \${T}, path: /x }\n${BACKEND}`), { T: 'tcp' }), [
      'pools.web.healthCheck.path: path only applies to type "http" health checks, but this one uses "${T}"',
    ]);
  });

  it('applies defaults only for keys written: a tcp check gets no http complaints from defaults, an http check allows them all', () => {
    assert.equal(poolOf(file(`healthCheck: { type: tcp, port: 9000, rise: 1 }\n${BACKEND}`)).healthCheck?.type, 'tcp');
    assert.equal(poolOf(file(`healthCheck: { path: /x, expectStatus: 200, expectBody: ok, host: h }\n${BACKEND}`)).healthCheck?.type, 'http');
    assert.equal(poolOf(file(`healthCheck: { type: http, path: /x }\n${BACKEND}`)).healthCheck?.path, '/x');
  });

  it('rejects an explicit fastInterval longer than the interval, written or default', () => {
    assert.deepEqual(located(file(`healthCheck: { interval: 1s, fastInterval: 1500ms }\n${BACKEND}`)), [
      'u.yaml:4:48 pools.web.healthCheck.fastInterval: fastInterval "1500ms" is longer than interval "1s"; it is the shorter interval used while a backend changes state',
    ]);
    assert.deepEqual(located(file(`healthCheck: { fastInterval: 3s }\n${BACKEND}`)), [
      'u.yaml:4:34 pools.web.healthCheck.fastInterval: fastInterval "3s" is longer than interval ("2s", the default); it is the shorter interval used while a backend changes state',
    ]);
    assert.equal(poolOf(file(`healthCheck: { fastInterval: 2s }\n${BACKEND}`)).healthCheck?.fastIntervalMs, 2000);
  });

  it('rejects a maxEjectionTime shorter than the ejectionTime, written or default', () => {
    assert.deepEqual(located(file(`outlier: { ejectionTime: 1m, maxEjectionTime: 30s }\n${BACKEND}`)), [
      'u.yaml:4:51 pools.web.outlier.maxEjectionTime: maxEjectionTime "30s" is shorter than ejectionTime "1m"; it caps how long one ejection lasts',
    ]);
    assert.deepEqual(located(file(`outlier: { maxEjectionTime: 10s }\n${BACKEND}`)), [
      'u.yaml:4:33 pools.web.outlier.maxEjectionTime: maxEjectionTime "10s" is shorter than ejectionTime ("30s", the default); it caps how long one ejection lasts',
    ]);
    assert.deepEqual(located(file(`outlier: { ejectionTime: 10m }\n${BACKEND}`)), [
      'u.yaml:4:30 pools.web.outlier.ejectionTime: ejectionTime "10m" is longer than maxEjectionTime ("300s", the default); raise maxEjectionTime too',
    ]);
  });

  it('takes unreachable backoffs, or false to turn passive ejection of refusing backends off', () => {
    assert.deepEqual(poolOf(file(`unreachable: { backoff: 250ms, maxBackoff: 1m }\n${BACKEND}`)).unreachable, { backoffMs: 250, maxBackoffMs: 60_000 });
    assert.deepEqual(poolOf(file(`unreachable: {}\n${BACKEND}`)).unreachable, { backoffMs: 1000, maxBackoffMs: 10_000 });
    assert.equal(poolOf(file(`unreachable: false\n${BACKEND}`)).unreachable, false);
    assert.deepEqual(problems(file(`unreachable: true\n${BACKEND}`)), ['pools.web.unreachable: expected false (off) or an unreachable mapping, got true']);
    assert.deepEqual(located(file(`unreachable: { backoff: 30s }\n${BACKEND}`)), [
      'u.yaml:4:29 pools.web.unreachable.backoff: backoff "30s" is longer than maxBackoff ("10s", the default); raise maxBackoff too',
    ]);
    assert.deepEqual(located(file(`unreachable: { backoff: 2s, maxBackoff: 1s }\n${BACKEND}`)), [
      'u.yaml:4:45 pools.web.unreachable.maxBackoff: maxBackoff "1s" is shorter than backoff "2s"; it caps how long a backend stays out',
    ]);
  });

  it('takes retry: { attempts: 0 } to turn the default retries off', () => {
    assert.deepEqual(poolOf(file(`retry: { attempts: 0 }\n${BACKEND}`)).retry, { attempts: 0, on: ['connect-failure', 'reset'], budgetPercent: 20, minRetriesPerSecond: 3 });
  });

  it('accepts an empty pool with a warning: requests to it get 503 until backends are added', () => {
    for (const pool of ['backends: []', 'algorithm: round-robin']) {
      const { config, warnings } = ok(parseConfig(file(pool), 'u.yaml', {}));
      assert.deepEqual(config.pools['web']?.backends, []);
      assert.equal(warnings.length, 1, pool);
      assert.match(warnings[0]!, /pools\.web(\.backends)?: pool "web" has no backends: requests routed to it get 503 no_backend until backends are added through the admin API$/);
    }
  });

  it('takes backend names, unique within a pool', () => {
    assert.deepEqual(poolOf(file('backends: [{ address: "h:1", name: alpha }, { address: "h:2" }]')).backends.map((b) => b.name), ['alpha', undefined]);
    assert.deepEqual(problems(file('backends: [{ address: "h:1", name: alpha }, { address: "h:2", name: alpha }]')), [
      'pools.web.backends[1].name: duplicate backend name "alpha" (also backends[0]); names tell backends apart in the dashboard and logs',
    ]);
    assert.deepEqual(problems(file('backends: [{ address: "h:1", name: "al pha" }]')).length, 1);
  });

  it('warns when every backend of a pool is a backup', () => {
    const { warnings } = ok(parseConfig(file('backends:\n  - { address: "h:1", backup: true }\n  - { address: "h:2", backup: true }'), 'u.yaml', {}));
    assert.deepEqual(warnings, [
      'u.yaml:5:7 pools.web.backends: every backend has backup: true, so the pool has no primary; backups only stand in for primaries (set backup: false on at least one)',
    ]);
    assert.deepEqual(ok(parseConfig(file('backends:\n  - { address: "h:1", backup: true }\n  - { address: "h:2" }'), 'u.yaml', {})).warnings, []);
    assert.deepEqual(ok(parseConfig(file('backends:\n  - { address: "h:1", backup: true }\n  - { address: "h:2", backup: false }'), 'u.yaml', {})).warnings, []);
  });

  it('requires a token for an admin API on anything but a loopback address', () => {
    for (const bind of ['127.0.0.1:9090', '127.8.9.10:9090', '[::1]:9090', '[0:0:0:0:0:0:0:1]:9090', '[::ffff:127.0.0.1]:9090', 'localhost:9090', 'LocalHost:9090', '127.0.0.1:0']) {
      assert.deepEqual(ok(parseConfig(file(BACKEND, `admin: { bind: "${bind}" }\n`), 'u.yaml', {})).warnings, [], bind);
    }
    for (const bind of ['0.0.0.0:9090', '10.0.0.1:9090', '[::]:9090', 'admin.internal:9090', '128.0.0.1:9090', '0.0.0.0:0']) {
      assert.deepEqual(located(file(BACKEND, `admin:\n  bind: "${bind}"\n`)), [
        `u.yaml:6:9 admin.bind: admin.bind "${bind}" is not a loopback address; set admin.token (e.g. \${USHER_ADMIN_TOKEN}) or bind 127.0.0.1`,
      ], bind);
      assert.ok(ok(parseConfig(file(BACKEND, `admin:\n  bind: "${bind}"\n  token: \${T}\n`), 'u.yaml', { T: 'x'.repeat(32) })).config.admin);
    }
    assert.deepEqual(problems(file(BACKEND, 'admin: { bind: "${ADMIN_BIND}" }\n'), { ADMIN_BIND: '0.0.0.0:9090' }), [
      'admin.bind: admin.bind "${ADMIN_BIND}" is not a loopback address; set admin.token (e.g. ${USHER_ADMIN_TOKEN}) or bind 127.0.0.1',
    ]);
  });

  it('rejects an admin bind that a listener already uses, like two listeners on one port', () => {
    const listeners = 'listeners:\n  - { name: a, bind: "127.0.0.1:8080", routes: [{ pool: web }] }\n  - { name: b, bind: "0.0.0.0:8081", routes: [{ pool: web }] }\n  - { name: c, bind: "127.0.0.1:0", routes: [{ pool: web }] }\n';
    const text = (bind: string): string => `${listeners}pools: { web: { ${BACKEND} } }\nadmin: { bind: "${bind}", token: "\${T}" }\n`;
    const env = { T: 'x'.repeat(16) };
    assert.deepEqual(located(text('127.0.0.1:8080'), env), ['u.yaml:6:16 admin.bind: bind "127.0.0.1:8080" is also used by listeners[0] (same port)']);
    assert.deepEqual(located(text('127.0.0.1:8081'), env), ['u.yaml:6:16 admin.bind: bind "127.0.0.1:8081" overlaps listeners[1] (same port)']);
    assert.deepEqual(located(text('0.0.0.0:8080'), env), ['u.yaml:6:16 admin.bind: bind "0.0.0.0:8080" overlaps listeners[0] (same port)']);
    for (const bind of ['127.0.0.1:9090', '127.0.0.2:8080', '127.0.0.1:0']) assert.ok(ok(parseConfig(text(bind), 'u.yaml', env)).config.admin, bind);
  });

  it('reports every cross-key problem at once, in line order, with schema errors', () => {
    const text = `${LISTENER}pools:
  web:
    healthCheck: { type: tcp, path: /x, fastInterval: 5s, rise: 0 }
    outlier: { maxEjectionTime: 1s }
    retry: { on: [502, 502] }
    backends: [{ address: "h:1", backup: true }]
admin: { bind: "0.0.0.0:8080" }
`;
    assert.deepEqual(located(text), [
      'u.yaml:4:31 pools.web.healthCheck.path: path only applies to type "http" health checks, but this one uses "tcp"',
      'u.yaml:4:55 pools.web.healthCheck.fastInterval: fastInterval "5s" is longer than interval ("2s", the default); it is the shorter interval used while a backend changes state',
      'u.yaml:4:65 pools.web.healthCheck.rise: rise must be an integer in [1, 100], got 0',
      'u.yaml:5:33 pools.web.outlier.maxEjectionTime: maxEjectionTime "1s" is shorter than ejectionTime ("30s", the default); it caps how long one ejection lasts',
      'u.yaml:6:24 pools.web.retry.on[1]: retry condition 502 is listed twice (also on[0])',
      'u.yaml:8:16 admin.bind: bind "0.0.0.0:8080" overlaps listeners[0] (same port)',
      'u.yaml:8:16 admin.bind: admin.bind "0.0.0.0:8080" is not a loopback address; set admin.token (e.g. ${USHER_ADMIN_TOKEN}) or bind 127.0.0.1',
    ]);
  });
});

describe('config secrets: admin.token and sticky.secret never reach a message', () => {
  const TOKEN = 'tok3n-Sup3r-s3cret-v4lue';
  const SHORT = 'tok3n-short';

  /** Every error and warning message of `text`. */
  function messages(text: string, env: NodeJS.ProcessEnv): string[] {
    const result = parseConfig(text, 'u.yaml', env);
    return (result.ok ? result.warnings : result.errors).map(formatIssue);
  }

  it('shows a too-short secret written in the file only by its length', () => {
    assert.deepEqual(problems(file(BACKEND, `admin: { bind: "127.0.0.1:9090", token: ${SHORT} }\n`)), [
      'admin.token: token must be at least 16 characters, got 11 characters (not shown: it is a secret)',
    ]);
    assert.deepEqual(problems(file(`sticky: { secret: "${SHORT}" }\n${BACKEND}`)), [
      'pools.web.sticky.secret: secret must be at least 16 characters, got 11 characters (not shown: it is a secret)',
    ]);
    assert.deepEqual(problems(file(BACKEND, 'admin: { bind: "127.0.0.1:9090", token: 1234567890123456789 }\n')), [
      'admin.token: expected a string, got a number (not shown: it is a secret)',
    ]);
  });

  it('shows an interpolated secret as its ${VAR} template', () => {
    assert.deepEqual(problems(file(BACKEND, 'admin: { bind: "0.0.0.0:9090", token: "${USHER_ADMIN_TOKEN}" }\n'), { USHER_ADMIN_TOKEN: SHORT }), [
      'admin.token: token must be at least 16 characters, got "${USHER_ADMIN_TOKEN}"',
    ]);
    assert.deepEqual(problems(file(BACKEND, 'admin: { bind: "0.0.0.0:9090", token: "${USHER_ADMIN_TOKEN}" }\n'), {}), [
      'admin.token: environment variable USHER_ADMIN_TOKEN is not set (referenced as ${USHER_ADMIN_TOKEN}; use ${USHER_ADMIN_TOKEN:-default} for a default)',
    ]);
  });

  it('never prints the token, whatever else is wrong around it', () => {
    const texts: [string, NodeJS.ProcessEnv, string][] = [];
    for (const token of [TOKEN, SHORT]) {
      // The part after the first 5 characters must never show, however the token was written.
      const hidden = token.slice(5);
      for (const [written, env] of [[token, {}], [`"${token}"`, {}], ['${TOK}', { TOK: token }], [`"${token.slice(0, 5)}\${TOK}"`, { TOK: hidden }]] as const) {
        texts.push(
          [file(BACKEND, `admin: { bind: "0.0.0.0:8080", token: ${written} }\n`), env, hidden],
          [file(BACKEND, `admin: { bind: "127.0.0.1:8080", token: ${written}, extra: 1 }\n`), env, hidden],
          [file(BACKEND, `admin: { bind: nope, token: ${written} }\n`), env, hidden],
          [file(BACKEND, `admin: { token: ${written} }\n`), env, hidden],
          [file(BACKEND, `admin: { bind: "127.0.0.1:9090", tokens: ${written} }\n`), env, hidden],
          [file(`sticky: { secret: ${written}, ttl: 1ms }\n${BACKEND}`), env, hidden],
          [`${LISTENER}pools: { web: { ${BACKEND} }, idle: { ${BACKEND} } }\nadmin: { bind: "127.0.0.1:9090", token: ${written} }\n`, env, hidden],
          [file(BACKEND, `admin: { bind: "127.0.0.1:9090", token: [${written}] }\n`), env, hidden],
          [file(BACKEND, `admin: { bind: "127.0.0.1:9090", token: { t: ${written} } }\n`), env, hidden],
        );
      }
    }
    let seen = 0;
    for (const [text, env, hidden] of texts) {
      for (const message of messages(text, env)) {
        seen++;
        assert.ok(!message.includes(hidden), `${message}\nfrom:\n${text}`);
      }
    }
    assert.ok(seen >= texts.length, 'every case produced a message');
  });
});
