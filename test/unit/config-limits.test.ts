/**
 * A listener's `limits` and `timeouts`: defaults, sizes as bytes or with
 * binary units, ranges and their messages, the maxUriBytes < maxHeaderBytes
 * rule, and the JSON Schema and docs for them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configJsonSchema, formatIssue, parseConfig, quickConfig, type ConfigResult, type ListenerConfig, type UsherConfig } from '../../src/config/index.ts';
import { renderConfigDocs } from '../../src/config/docs.ts';
import type { JsonSchemaNode } from '../../src/config/json-schema.ts';

const KIB = 1024;
const MIB = 1024 * 1024;

const DEFAULT_LIMITS = {
  maxHeaderBytes: 32 * KIB,
  maxHeaders: 100,
  maxUriBytes: 8 * KIB,
  maxBodyBytes: 0,
  maxRequestsPerConnection: 1000,
  maxConnections: 10_000,
  maxConnectionsPerClient: 0,
};
const DEFAULT_TIMEOUTS = { headerMs: 10_000, bodyIdleMs: 60_000, keepAliveMs: 60_000, sendMs: 60_000, tunnelIdleMs: 3_600_000 };

/** A file with the listener `web` whose extra keys (indented 4) are `listener`. */
function file(listener = ''): string {
  const body = listener.split('\n').filter((line) => line !== '').map((line) => `    ${line}\n`).join('');
  return `listeners:\n  - name: web\n    bind: 127.0.0.1:8080\n    routes: [{ pool: web }]\n${body}pools: { web: { backends: [{ address: "h:1" }] } }\n`;
}

function ok(result: ConfigResult): UsherConfig {
  if (!result.ok) assert.fail(`expected a valid config, got:\n${result.errors.map(formatIssue).join('\n')}`);
  assert.deepEqual(result.warnings, []);
  return result.config;
}

function listenerOf(text: string, env: NodeJS.ProcessEnv = {}): ListenerConfig {
  const listener = ok(parseConfig(text, 'u.yaml', env)).listeners[0];
  assert.ok(listener !== undefined);
  return listener;
}

/** `path: message` for every error. */
function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  const result = parseConfig(text, 'u.yaml', env);
  if (result.ok) assert.fail('expected errors, the config is valid');
  return result.errors.map((e) => `${e.path}: ${e.message}`);
}

/** Every error formatted with its position. */
function located(text: string): string[] {
  const result = parseConfig(text, 'u.yaml', {});
  if (result.ok) assert.fail('expected errors, the config is valid');
  return result.errors.map(formatIssue);
}

const schema = configJsonSchema() as JsonSchemaNode;
const listenerNode = schema.properties?.['listeners']?.items as JsonSchemaNode;
const limitsNode = listenerNode.properties?.['limits'] as JsonSchemaNode;
const timeoutsNode = listenerNode.properties?.['timeouts'] as JsonSchemaNode;

/** Whether `value` fits a size key's JSON Schema (an anyOf of a bounded integer and a patterned string). */
function schemaAccepts(node: JsonSchemaNode, value: unknown): boolean {
  return (node.anyOf ?? []).some((option) => {
    if (option.type === 'integer') return Number.isInteger(value) && (value as number) >= (option.minimum ?? -Infinity) && (value as number) <= (option.maximum ?? Infinity);
    return option.type === 'string' && typeof value === 'string' && new RegExp(option.pattern ?? '', 'u').test(value);
  });
}

describe('listener limits and timeouts: defaults', () => {
  it('fills every default when the keys are left out', () => {
    const listener = listenerOf(file());
    assert.deepEqual(listener.limits, DEFAULT_LIMITS);
    assert.deepEqual(listener.timeouts, DEFAULT_TIMEOUTS);
  });

  it('fills every default in empty mappings, and in each key left out of a partial one', () => {
    assert.deepEqual(listenerOf(file('limits: {}\ntimeouts: {}')).limits, DEFAULT_LIMITS);
    assert.deepEqual(listenerOf(file('limits: {}\ntimeouts: {}')).timeouts, DEFAULT_TIMEOUTS);
    assert.deepEqual(listenerOf(file('limits: { maxHeaders: 50 }')).limits, { ...DEFAULT_LIMITS, maxHeaders: 50 });
    assert.deepEqual(listenerOf(file('timeouts: { send: 5s }')).timeouts, { ...DEFAULT_TIMEOUTS, sendMs: 5000 });
  });

  it('quick mode gets the same defaults', () => {
    const config = ok(quickConfig({ bind: '127.0.0.1:0', backends: ['h:1'] }));
    assert.deepEqual(config.listeners[0]?.limits, DEFAULT_LIMITS);
    assert.deepEqual(config.listeners[0]?.timeouts, DEFAULT_TIMEOUTS);
  });

  it('documents the defaults in the JSON Schema as they are written in the file', () => {
    assert.deepEqual(
      Object.fromEntries(Object.entries(limitsNode.properties ?? {}).map(([key, node]) => [key, node.default])),
      { maxHeaderBytes: '32KiB', maxHeaders: 100, maxUriBytes: '8KiB', maxBodyBytes: 0, maxRequestsPerConnection: 1000, maxConnections: 10_000, maxConnectionsPerClient: 0 },
    );
    assert.deepEqual(
      Object.fromEntries(Object.entries(timeoutsNode.properties ?? {}).map(([key, node]) => [key, node.default])),
      { header: '10s', bodyIdle: '60s', keepAlive: '60s', send: '60s', tunnelIdle: '1h' },
    );
    assert.deepEqual(listenerNode.required, ['name', 'bind', 'routes']);
    assert.equal(limitsNode.additionalProperties, false);
    assert.equal(timeoutsNode.additionalProperties, false);
  });

  it('shows sizes in docs/config.md as written, with ranges in units', () => {
    const docs = renderConfigDocs('');
    assert.match(docs, /^### `listeners\[\]\.limits`$/m);
    assert.match(docs, /^### `listeners\[\]\.timeouts`$/m);
    assert.match(docs, /^\| `maxHeaderBytes` \| size 1KiB–1MiB \| `32KiB` \|/m);
    assert.match(docs, /^\| `maxUriBytes` \| size 256B–1MiB \| `8KiB` \|/m);
    assert.match(docs, /^\| `maxBodyBytes` \| size \| `0` \|.*unlimited/m);
    assert.match(docs, /^\| `maxHeaders` \| integer 1–10000 \| `100` \|/m);
    assert.match(docs, /^\| `maxConnectionsPerClient` \| integer 0–1000000 \| `0` \|/m);
    assert.match(docs, /^\| `header` \| duration \| `10s` \|/m);
    assert.match(docs, /^- \*\*Sizes\*\* /m);
  });
});

describe('listener limits and timeouts: values', () => {
  it('resolves every key as written, sizes in units or in bytes', () => {
    const listener = listenerOf(file(`limits:
  maxHeaderBytes: 64KiB
  maxHeaders: 200
  maxUriBytes: 16384
  maxBodyBytes: 10 MiB
  maxRequestsPerConnection: 1
  maxConnections: 1000000
  maxConnectionsPerClient: 50
timeouts:
  header: 5s
  bodyIdle: 1m30s
  keepAlive: 75s
  send: 500ms`));
    assert.deepEqual(listener.limits, {
      maxHeaderBytes: 64 * KIB,
      maxHeaders: 200,
      maxUriBytes: 16 * KIB,
      maxBodyBytes: 10 * MIB,
      maxRequestsPerConnection: 1,
      maxConnections: 1_000_000,
      maxConnectionsPerClient: 50,
    });
    assert.deepEqual(listener.timeouts, { headerMs: 5000, bodyIdleMs: 90_000, keepAliveMs: 75_000, sendMs: 500, tunnelIdleMs: 3_600_000 });
  });

  it('accepts every unit spelling and each end of every range', () => {
    const size = (key: string, written: string): number => {
      // The other of maxHeaderBytes and maxUriBytes is set so their order never fails.
      const other = key === 'maxHeaderBytes' ? 'maxUriBytes: 256' : 'maxHeaderBytes: 1MiB';
      const limits = listenerOf(file(`limits: { ${other}, ${key}: ${written} }`)).limits;
      return limits[key as keyof typeof limits];
    };
    const cases: [string, string, number][] = [
      ['maxHeaderBytes', '1KiB', KIB], ['maxHeaderBytes', '1k', KIB], ['maxHeaderBytes', '1024', KIB], ['maxHeaderBytes', '"1024"', KIB],
      ['maxHeaderBytes', '1MiB', MIB], ['maxHeaderBytes', '1m', MIB], ['maxHeaderBytes', '1048576', MIB], ['maxHeaderBytes', '1024 KIB', MIB],
      ['maxUriBytes', '256B', 256], ['maxUriBytes', '256 b', 256], ['maxUriBytes', '256', 256], ['maxUriBytes', '1023KiB', 1023 * KIB],
      ['maxBodyBytes', '0', 0], ['maxBodyBytes', '0B', 0], ['maxBodyBytes', '1', 1], ['maxBodyBytes', '1GiB', 1024 * MIB], ['maxBodyBytes', '2g', 2048 * MIB],
      ['maxBodyBytes', '9007199254740991', Number.MAX_SAFE_INTEGER],
    ];
    for (const [key, written, bytes] of cases) assert.equal(size(key, written), bytes, `${key}: ${written}`);
    const ends = listenerOf(file('limits: { maxHeaders: 10000, maxRequestsPerConnection: 1000000, maxConnections: 1, maxConnectionsPerClient: 1000000 }')).limits;
    assert.deepEqual([ends.maxHeaders, ends.maxRequestsPerConnection, ends.maxConnections, ends.maxConnectionsPerClient], [10_000, 1_000_000, 1, 1_000_000]);
    assert.equal(listenerOf(file('limits: { maxHeaders: 1, maxConnectionsPerClient: 0 }')).limits.maxHeaders, 1);
  });

  it('reads ${VAR} sizes and counts as the key expects', () => {
    const env = { HEAD: '64KiB', URI: '4096', BODY: '10M', CONNS: '500', IDLE: '2m' };
    const listener = listenerOf(file('limits: { maxHeaderBytes: "${HEAD}", maxUriBytes: "${URI}", maxBodyBytes: "${BODY}", maxConnections: "${CONNS}" }\ntimeouts: { keepAlive: "${IDLE}" }'), env);
    assert.deepEqual([listener.limits.maxHeaderBytes, listener.limits.maxUriBytes, listener.limits.maxBodyBytes, listener.limits.maxConnections], [64 * KIB, 4096, 10 * MIB, 500]);
    assert.equal(listener.timeouts.keepAliveMs, 120_000);
    // A bad value from the environment is reported by its template, never its value.
    assert.deepEqual(problems(file('limits: { maxBodyBytes: "${BODY}" }'), { BODY: '10MB' }), [
      'listeners[0].limits.maxBodyBytes: write KiB, MiB or GiB (binary units, 1 KiB = 1024 bytes), got "${BODY}"',
    ]);
  });
});

describe('listener limits and timeouts: errors', () => {
  const EXPECTED = 'expected a size such as 65536 (bytes), "64KiB", "10MiB" or "1GiB"';
  const DECIMAL = 'write KiB, MiB or GiB (binary units, 1 KiB = 1024 bytes)';
  const FRACTION = 'sizes are whole numbers; use a smaller unit instead of a fraction (1536KiB, not 1.5MiB)';
  const HEADER_RANGE = 'maxHeaderBytes must be a size from 1KiB to 1MiB (1024 to 1048576 bytes)';
  const URI_RANGE = 'maxUriBytes must be a size from 256B to 1MiB (256 to 1048576 bytes)';

  it('reports every range and unit error with the key, what is expected and what was found', () => {
    const cases: [string, string][] = [
      // maxHeaderBytes: 1KiB..1MiB (maxUriBytes lowered so only the range is at issue)
      ['maxHeaderBytes: 1023', `maxHeaderBytes: ${HEADER_RANGE}, got 1023`],
      ['maxHeaderBytes: 0', `maxHeaderBytes: ${HEADER_RANGE}, got 0`],
      ['maxHeaderBytes: 1023B', `maxHeaderBytes: ${HEADER_RANGE}, got "1023B"`],
      ['maxHeaderBytes: 1048577', `maxHeaderBytes: ${HEADER_RANGE}, got 1048577`],
      ['maxHeaderBytes: 2MiB', `maxHeaderBytes: ${HEADER_RANGE}, got "2MiB"`],
      ['maxHeaderBytes: 1G', `maxHeaderBytes: ${HEADER_RANGE}, got "1G"`],
      ['maxHeaderBytes: 32KB', `maxHeaderBytes: ${DECIMAL}, got "32KB"`],
      ['maxHeaderBytes: 32kb', `maxHeaderBytes: ${DECIMAL}, got "32kb"`],
      ['maxHeaderBytes: 1MB', `maxHeaderBytes: ${DECIMAL}, got "1MB"`],
      ['maxHeaderBytes: 1.5KiB', `maxHeaderBytes: ${FRACTION}, got "1.5KiB"`],
      ['maxHeaderBytes: 2048.5', 'maxHeaderBytes: sizes are whole numbers of bytes, got 2048.5'],
      ['maxHeaderBytes: -1', 'maxHeaderBytes: a size cannot be negative, got -1'],
      ['maxHeaderBytes: -32KiB', 'maxHeaderBytes: a size cannot be negative, got "-32KiB"'],
      ['maxHeaderBytes: 32 kilobytes', `maxHeaderBytes: ${EXPECTED}; the units are B, KiB (or K), MiB (M) and GiB (G), got "32 kilobytes"`],
      ['maxHeaderBytes: 32TiB', `maxHeaderBytes: ${EXPECTED}; the units are B, KiB (or K), MiB (M) and GiB (G), got "32TiB"`],
      ['maxHeaderBytes: big', `maxHeaderBytes: ${EXPECTED}, got "big"`],
      ['maxHeaderBytes: "32  KiB"', `maxHeaderBytes: ${EXPECTED}, got "32  KiB"`],
      ['maxHeaderBytes: true', `maxHeaderBytes: ${EXPECTED}, got true`],
      ['maxHeaderBytes: [32KiB]', `maxHeaderBytes: ${EXPECTED}`],
      // maxUriBytes: 256B..1MiB
      ['maxUriBytes: 255', `maxUriBytes: ${URI_RANGE}, got 255`],
      ['maxUriBytes: 255B', `maxUriBytes: ${URI_RANGE}, got "255B"`],
      ['maxUriBytes: 1048577', `maxUriBytes: ${URI_RANGE}, got 1048577`],
      ['maxUriBytes: 2M', `maxUriBytes: ${URI_RANGE}, got "2M"`],
      ['maxUriBytes: 8KB', `maxUriBytes: ${DECIMAL}, got "8KB"`],
      ['maxUriBytes: 0.5KiB', `maxUriBytes: ${FRACTION}, got "0.5KiB"`],
      // maxBodyBytes: 0..2^53-1
      ['maxBodyBytes: -1', 'maxBodyBytes: a size cannot be negative, got -1'],
      ['maxBodyBytes: 10GB', `maxBodyBytes: ${DECIMAL}, got "10GB"`],
      ['maxBodyBytes: 1.5MiB', `maxBodyBytes: ${FRACTION}, got "1.5MiB"`],
      ['maxBodyBytes: 9007199254740992', 'maxBodyBytes: size must be at most 9007199254740991 bytes (2^53 - 1, about 8 PiB), got 9007199254740992'],
      ['maxBodyBytes: 8388608GiB', 'maxBodyBytes: size must be at most 9007199254740991 bytes (2^53 - 1, about 8 PiB), got "8388608GiB"'],
      ['maxBodyBytes: unlimited', `maxBodyBytes: ${EXPECTED}, got "unlimited"`],
      ['maxBodyBytes: ~', `maxBodyBytes: ${EXPECTED}, got an empty value`],
      // counts
      ['maxHeaders: 0', 'maxHeaders: maxHeaders must be an integer in [1, 10000], got 0'],
      ['maxHeaders: 10001', 'maxHeaders: maxHeaders must be an integer in [1, 10000], got 10001'],
      ['maxHeaders: 1.5', 'maxHeaders: maxHeaders must be an integer in [1, 10000], got 1.5'],
      ['maxHeaders: "100"', 'maxHeaders: maxHeaders must be an integer in [1, 10000], got "100"'],
      ['maxRequestsPerConnection: 0', 'maxRequestsPerConnection: maxRequestsPerConnection must be an integer in [1, 1000000], got 0'],
      ['maxRequestsPerConnection: 1000001', 'maxRequestsPerConnection: maxRequestsPerConnection must be an integer in [1, 1000000], got 1000001'],
      ['maxConnections: 0', 'maxConnections: maxConnections must be an integer in [1, 1000000], got 0'],
      ['maxConnections: 1000001', 'maxConnections: maxConnections must be an integer in [1, 1000000], got 1000001'],
      ['maxConnectionsPerClient: -1', 'maxConnectionsPerClient: maxConnectionsPerClient must be an integer in [0, 1000000], got -1'],
      ['maxConnectionsPerClient: 1000001', 'maxConnectionsPerClient: maxConnectionsPerClient must be an integer in [0, 1000000], got 1000001'],
      // keys
      ['maxHeaderByte: 32KiB', 'maxHeaderByte: unknown key "maxHeaderByte" (did you mean "maxHeaderBytes"?)'],
      ['maxBodySize: 1MiB', 'maxBodySize: unknown key "maxBodySize"; expected one of: maxHeaderBytes, maxHeaders, maxUriBytes, maxBodyBytes, maxRequestsPerConnection, maxConnections, maxConnectionsPerClient'],
    ];
    for (const [written, message] of cases) {
      // A small maxUriBytes keeps the maxUriBytes < maxHeaderBytes rule out of the header cases.
      const extra = written.startsWith('maxHeaderBytes') ? ', maxUriBytes: 256' : '';
      assert.deepEqual(problems(file(`limits: { ${written}${extra} }`)), [`listeners[0].limits.${message}`], written);
    }
  });

  it('reports timeouts that are zero, have no unit or are not durations', () => {
    const cases: [string, string][] = [
      ['header: 0s', 'header: duration must be greater than 0, got "0s"'],
      ['header: 10', 'header: expected a duration such as "500ms", "5s", "1m", "1h" or "1d" (the unit is required), got 10'],
      ['bodyIdle: "0"', 'bodyIdle: duration must be greater than 0, got "0"'],
      ['bodyIdle: 1 min', 'bodyIdle: expected a duration such as "500ms", "5s", "1m", "1h" or "1d", got "1 min"'],
      ['keepAlive: 0ms', 'keepAlive: duration must be greater than 0, got "0ms"'],
      ['keepAlive: 30d', 'keepAlive: duration must be at most 2147483647ms (about 24.8 days), got "30d"'],
      ['send: 60', 'send: expected a duration such as "500ms", "5s", "1m", "1h" or "1d" (the unit is required), got 60'],
      ['send: false', 'send: expected a duration such as "500ms", "5s", "1m", "1h" or "1d", got false'],
      ['headers: 10s', 'headers: unknown key "headers" (did you mean "header"?)'],
      ['connect: 5s', 'connect: unknown key "connect"; expected one of: header, bodyIdle, keepAlive, send, tunnelIdle'],
    ];
    for (const [written, message] of cases) assert.deepEqual(problems(file(`timeouts: { ${written} }`)), [`listeners[0].timeouts.${message}`], written);
  });

  it('reports limits and timeouts that are not mappings', () => {
    assert.deepEqual(problems(file('limits: 32KiB')), ['listeners[0].limits: expected a limits mapping, got "32KiB"']);
    assert.deepEqual(problems(file('timeouts: 10s')), ['listeners[0].timeouts: expected a timeouts mapping, got "10s"']);
    assert.deepEqual(problems(file('limit: {}')), ['listeners[0].limit: unknown key "limit" (did you mean "limits"?)']);
  });

  it('reports every problem at once, across keys', () => {
    assert.deepEqual(problems(file('limits: { maxHeaderBytes: 1MB, maxHeaders: 0, maxBodyBytes: -1 }\ntimeouts: { header: 0s, send: 5 }')), [
      `listeners[0].limits.maxHeaderBytes: ${DECIMAL}, got "1MB"`,
      'listeners[0].limits.maxHeaders: maxHeaders must be an integer in [1, 10000], got 0',
      'listeners[0].limits.maxBodyBytes: a size cannot be negative, got -1',
      'listeners[0].timeouts.header: duration must be greater than 0, got "0s"',
      'listeners[0].timeouts.send: expected a duration such as "500ms", "5s", "1m", "1h" or "1d" (the unit is required), got 5',
    ]);
  });
});

describe('listener limits: maxUriBytes < maxHeaderBytes', () => {
  const WHY = 'the request target is part of the request head that maxHeaderBytes limits';

  it('accepts a maxUriBytes below maxHeaderBytes, written or default', () => {
    for (const limits of ['{}', '{ maxUriBytes: 16KiB }', '{ maxHeaderBytes: 9KiB }', '{ maxHeaderBytes: 1KiB, maxUriBytes: 1023 }', '{ maxHeaderBytes: 1MiB, maxUriBytes: 1023KiB }', '{ maxHeaderBytes: 4096, maxUriBytes: 4095 }']) {
      ok(parseConfig(file(`limits: ${limits}`), 'u.yaml', {}));
    }
  });

  it('rejects a written maxUriBytes that is not below maxHeaderBytes, pointing at maxUriBytes', () => {
    assert.deepEqual(located(file('limits: { maxUriBytes: 64KiB }')), [
      `u.yaml:5:28 listeners[0].limits.maxUriBytes: maxUriBytes "64KiB" must be less than maxHeaderBytes ("32KiB", the default): ${WHY}; lower maxUriBytes or raise maxHeaderBytes`,
    ]);
    assert.deepEqual(problems(file('limits: { maxUriBytes: 32KiB }')), [
      `listeners[0].limits.maxUriBytes: maxUriBytes "32KiB" must be less than maxHeaderBytes ("32KiB", the default): ${WHY}; lower maxUriBytes or raise maxHeaderBytes`,
    ]);
    assert.deepEqual(problems(file('limits: { maxHeaderBytes: 16KiB, maxUriBytes: 16384 }')), [
      `listeners[0].limits.maxUriBytes: maxUriBytes 16384 must be less than maxHeaderBytes "16KiB": ${WHY}; lower maxUriBytes or raise maxHeaderBytes`,
    ]);
  });

  it('rejects a written maxHeaderBytes not above the default maxUriBytes, pointing at maxHeaderBytes', () => {
    assert.deepEqual(located(file('limits: { maxHeaderBytes: 4KiB }')), [
      `u.yaml:5:31 listeners[0].limits.maxHeaderBytes: maxHeaderBytes "4KiB" must be more than maxUriBytes ("8KiB", the default): ${WHY}; raise maxHeaderBytes or set a lower maxUriBytes`,
    ]);
    assert.deepEqual(problems(file('limits: { maxHeaderBytes: 8192 }')), [
      `listeners[0].limits.maxHeaderBytes: maxHeaderBytes 8192 must be more than maxUriBytes ("8KiB", the default): ${WHY}; raise maxHeaderBytes or set a lower maxUriBytes`,
    ]);
  });

  it('shows ${VAR} templates in the message, not their values', () => {
    assert.deepEqual(problems(file('limits: { maxHeaderBytes: "${H}", maxUriBytes: "${U}" }'), { H: '8KiB', U: '8KiB' }), [
      `listeners[0].limits.maxUriBytes: maxUriBytes "\${U}" must be less than maxHeaderBytes "\${H}": ${WHY}; lower maxUriBytes or raise maxHeaderBytes`,
    ]);
  });

  it('stays quiet when either value is already wrong on its own', () => {
    assert.deepEqual(problems(file('limits: { maxUriBytes: 2MiB }')), [
      'listeners[0].limits.maxUriBytes: maxUriBytes must be a size from 256B to 1MiB (256 to 1048576 bytes), got "2MiB"',
    ]);
    assert.deepEqual(problems(file('limits: { maxHeaderBytes: 512 }')), [
      'listeners[0].limits.maxHeaderBytes: maxHeaderBytes must be a size from 1KiB to 1MiB (1024 to 1048576 bytes), got 512',
    ]);
    assert.deepEqual(problems(file('limits: { maxHeaderBytes: 4KB }')), [
      'listeners[0].limits.maxHeaderBytes: write KiB, MiB or GiB (binary units, 1 KiB = 1024 bytes), got "4KB"',
    ]);
  });

  it('checks each listener on its own', () => {
    const text = `listeners:
  - { name: a, bind: "127.0.0.1:1", routes: [{ pool: web }], limits: { maxUriBytes: 16KiB } }
  - { name: b, bind: "127.0.0.1:2", routes: [{ pool: web }], limits: { maxHeaderBytes: 8KiB } }
pools: { web: { backends: [{ address: "h:1" }] } }
`;
    assert.deepEqual(problems(text).map((p) => p.slice(0, p.indexOf(':'))), ['listeners[1].limits.maxHeaderBytes']);
  });
});

describe('listener limits and timeouts: JSON Schema', () => {
  it('accepts a size as text with a unit or as a number of bytes, including ${VAR}', () => {
    const header = limitsNode.properties?.['maxHeaderBytes'] as JsonSchemaNode;
    for (const value of ['32KiB', 32_768, '32768', '32 kib', '1M', '${MAX_HEADER}']) assert.ok(schemaAccepts(header, value), JSON.stringify(value));
    for (const value of ['32KB', '1.5KiB', '-1', 'big', 512, 2 * MIB, 1.5, true]) assert.ok(!schemaAccepts(header, value), JSON.stringify(value));
    const body = limitsNode.properties?.['maxBodyBytes'] as JsonSchemaNode;
    for (const value of [0, '0', '10MiB', Number.MAX_SAFE_INTEGER]) assert.ok(schemaAccepts(body, value), JSON.stringify(value));
    assert.ok(!schemaAccepts(body, -1));
  });

  it('gives size keys an integer range in bytes and a string form', () => {
    const node = limitsNode.properties?.['maxUriBytes'] as JsonSchemaNode;
    assert.deepEqual(node.anyOf?.map((option) => option.type), ['integer', 'string']);
    assert.deepEqual([node.anyOf?.[0]?.minimum, node.anyOf?.[0]?.maximum], [256, MIB]);
    assert.deepEqual(node.examples, ['16KiB']);
    assert.deepEqual(Object.keys(limitsNode.properties ?? {}), ['maxHeaderBytes', 'maxHeaders', 'maxUriBytes', 'maxBodyBytes', 'maxRequestsPerConnection', 'maxConnections', 'maxConnectionsPerClient']);
    assert.deepEqual(Object.keys(timeoutsNode.properties ?? {}), ['header', 'bodyIdle', 'keepAlive', 'send', 'tunnelIdle']);
  });
});
