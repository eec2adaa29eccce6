import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatIssue, parseConfig, type ConfigResult, type UsherConfig } from '../../src/config/index.ts';

const SECRET = 'hunter2-very-secret-value';

function config(result: ConfigResult): UsherConfig {
  if (!result.ok) assert.fail(result.errors.map(formatIssue).join('\n'));
  return result.config;
}

function errors(result: ConfigResult): string[] {
  if (result.ok) assert.fail('expected errors');
  return result.errors.map(formatIssue);
}

const yaml = (pool: string): string => `listeners:
  - name: web
    bind: \${BIND:-127.0.0.1:8080}
    routes: [{ pool: web }]
pools:
  web:
${pool}`;

describe('config: ${ENV} interpolation', () => {
  it('interpolates any string value, inside plain, quoted and flow scalars', () => {
    const result = parseConfig(
      yaml(`    sticky: { secret: \${SECRET}, cookie: "\${COOKIE}" }
    backends:
      - address: \${HOST}:\${PORT}
`),
      'u.yaml',
      { SECRET, COOKIE: 'sid', HOST: '10.0.0.1', PORT: '3000' },
    );
    const pool = config(result).pools['web'];
    assert.equal(pool?.sticky?.secret, SECRET);
    assert.equal(pool?.sticky?.cookie, 'sid');
    assert.deepEqual(pool?.backends[0]?.address, { host: '10.0.0.1', port: 3000 });
    assert.deepEqual(config(result).listeners[0]?.bind, { host: '127.0.0.1', port: 8080 });
  });

  it('uses ${VAR:-default} when the variable is unset', () => {
    const result = parseConfig(yaml('    backends: [{ address: "${HOST:-backend}:${PORT:-80}" }]\n'), 'u.yaml', { BIND: '0.0.0.0:9000' });
    assert.deepEqual(config(result).pools['web']?.backends[0]?.address, { host: 'backend', port: 80 });
    assert.deepEqual(config(result).listeners[0]?.bind, { host: '0.0.0.0', port: 9000 });
  });

  it('reads interpolated text as a number or boolean only where the schema expects one', () => {
    const result = parseConfig(
      `${yaml(`    algorithm: \${ALG}
    hashKey: \${KEY}
    hashBalanceFactor: \${FACTOR}
    sticky: { secret: "\${DIGITS}" }
    backends: [{ address: "h:1", weight: \${WEIGHT} }]
`)}accessLog: { enabled: \${LOG} }
`,
      'u.yaml',
      { ALG: 'hash', KEY: 'header:x-id', FACTOR: '125', DIGITS: '12345678901234567890', WEIGHT: '7', LOG: 'false' },
    );
    const resolved = config(result);
    assert.equal(resolved.pools['web']?.backends[0]?.weight, 7);
    assert.equal(resolved.pools['web']?.hashBalanceFactor, 125);
    assert.equal(resolved.pools['web']?.sticky?.secret, '12345678901234567890', 'a numeric secret stays a string');
    assert.equal(resolved.accessLog.enabled, false);
  });

  it('reports an unset variable with its name, key path and position', () => {
    const result = parseConfig(yaml('    sticky: { secret: ${STICKY_SECRET} }\n    backends: [{ address: "h:1" }]\n'), 'usher.yaml', {});
    assert.deepEqual(errors(result), [
      'usher.yaml:7:23 pools.web.sticky.secret: environment variable STICKY_SECRET is not set (referenced as ${STICKY_SECRET}; use ${STICKY_SECRET:-default} for a default)',
    ]);
  });

  it('reports every unset variable at once, and no follow-on errors for those keys', () => {
    const result = parseConfig(yaml('    backends:\n      - address: ${A}\n      - address: ${B}\n        weight: ${C}\n'), 'u.yaml', {});
    assert.deepEqual(errors(result), [
      'u.yaml:8:18 pools.web.backends[0].address: environment variable A is not set (referenced as ${A}; use ${A:-default} for a default)',
      'u.yaml:9:18 pools.web.backends[1].address: environment variable B is not set (referenced as ${B}; use ${B:-default} for a default)',
      'u.yaml:10:17 pools.web.backends[1].weight: environment variable C is not set (referenced as ${C}; use ${C:-default} for a default)',
    ]);
  });

  it('never prints an interpolated value: messages show the ${VAR} template', () => {
    const env = { SECRET: SECRET.slice(0, 10), ADDR: SECRET, W: `${SECRET}x`, ALG: SECRET, POOL: SECRET, NAME: `-${SECRET}` };
    const text = `listeners:
  - name: \${NAME}
    bind: 127.0.0.1:1
    routes: [{ pool: "\${POOL}" }]
pools:
  web:
    algorithm: \${ALG}
    sticky: { secret: \${SECRET} }
    backends:
      - address: \${ADDR}
        weight: \${W}
`;
    const messages = errors(parseConfig(text, 'u.yaml', env));
    assert.deepEqual(messages, [
      'u.yaml:2:11 listeners[0].name: listener names start with a letter or digit and contain only letters, digits, "_", "." and "-" (at most 63), got "${NAME}"',
      'u.yaml:4:22 listeners[0].routes[0].pool: unknown pool "${POOL}"; defined pools: web',
      'u.yaml:7:16 pools.web.algorithm: expected one of p2c, round-robin, least-connections, random, ewma, hash, maglev, or a balancer module ({ module: ./balancer.ts }), got "${ALG}"',
      'u.yaml:8:23 pools.web.sticky.secret: secret must be at least 16 characters, got "${SECRET}"',
      'u.yaml:10:18 pools.web.backends[0].address: expected host:port, got "${ADDR}"',
      'u.yaml:11:17 pools.web.backends[0].weight: weight must be an integer in [1, 1000], got "${W}"',
    ]);
    for (const message of messages) assert.ok(!message.includes(SECRET.slice(0, 10)), message);
  });

  it('keeps $${ as a literal ${ and does not treat it as a reference', () => {
    const result = parseConfig(yaml('    backends: [{ address: "h:1" }]\n    sticky: { cookie: "c", secret: "literal-$${NOT_A_VAR}-x" }\n'), 'u.yaml', {});
    assert.equal(config(result).pools['web']?.sticky?.secret, 'literal-${NOT_A_VAR}-x');
  });

  it('does not let an environment value change the document structure', () => {
    const result = parseConfig(yaml('    backends: [{ address: "${EVIL}" }]\n'), 'u.yaml', { EVIL: 'h:1" }, { address: "h:2' });
    assert.deepEqual(errors(result), ['u.yaml:7:27 pools.web.backends[0].address: expected host:port, got "${EVIL}"']);
  });

  it('defaults env to process.env', () => {
    process.env['USHER_TEST_CONFIG_PORT'] = '4321';
    try {
      const resolved = config(parseConfig(yaml('    backends: [{ address: "h:${USHER_TEST_CONFIG_PORT}" }]\n'), 'u.yaml'));
      assert.equal(resolved.pools['web']?.backends[0]?.address.port, 4321);
    } finally {
      delete process.env['USHER_TEST_CONFIG_PORT'];
    }
  });
});
