import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { BUILTIN_BALANCERS } from '../../src/balancer/names.ts';
import { configJsonSchema, parseConfig } from '../../src/config/index.ts';
import type { JsonSchemaNode } from '../../src/config/json-schema.ts';

const schema = configJsonSchema() as JsonSchemaNode;

/**
 * A small validator for the JSON Schema keywords usher's schema uses; enough
 * to show the schema describes the input format (no validator dependency).
 * Returns the paths that fail.
 */
function validate(node: JsonSchemaNode, value: unknown, path = '$'): string[] {
  const problems: string[] = [];
  const fail = (why: string): void => void problems.push(`${path}: ${why}`);
  if (node.anyOf !== undefined) {
    const options = node.anyOf.map((option) => validate(option, value, path));
    if (options.every((found) => found.length > 0)) return [`${path}: matches no alternative (${options.flat().join('; ')})`];
  }
  const type = node.type;
  if (type !== undefined) {
    const actual = Array.isArray(value) ? 'array' : value === null ? 'null' : Number.isInteger(value) ? 'integer' : typeof value;
    const ok = type === actual || (type === 'number' && actual === 'integer');
    if (!ok) return [`${path}: expected ${String(type)}, got ${actual}`];
  }
  if (node.enum !== undefined && !node.enum.includes(value)) fail(`not in enum`);
  if (node.const !== undefined && node.const !== value) fail(`not const`);
  if (typeof value === 'string') {
    if (node.pattern !== undefined && !new RegExp(node.pattern, 'u').test(value)) fail(`does not match ${node.pattern}`);
    if (node.minLength !== undefined && value.length < node.minLength) fail('too short');
  }
  if (typeof value === 'number') {
    if (node.minimum !== undefined && value < node.minimum) fail('below minimum');
    if (node.maximum !== undefined && value > node.maximum) fail('above maximum');
  }
  if (Array.isArray(value)) {
    if (node.minItems !== undefined && value.length < node.minItems) fail('too few items');
    if (node.items !== undefined) value.forEach((item, i) => problems.push(...validate(node.items as JsonSchemaNode, item, `${path}[${i}]`)));
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    for (const key of node.required ?? []) if (!(key in record)) fail(`missing ${key}`);
    for (const [key, child] of Object.entries(record)) {
      const property = node.properties?.[key];
      if (property !== undefined) problems.push(...validate(property, child, `${path}.${key}`));
      else if (node.additionalProperties === false) fail(`unknown key ${key}`);
      else if (typeof node.additionalProperties === 'object') {
        if (node.propertyNames !== undefined) problems.push(...validate(node.propertyNames, key, `${path}[key ${key}]`));
        problems.push(...validate(node.additionalProperties, child, `${path}.${key}`));
      }
    }
  }
  return problems;
}

function properties(node: JsonSchemaNode, path = ''): [string, JsonSchemaNode][] {
  const out: [string, JsonSchemaNode][] = [];
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    out.push([`${path}${key}`, child]);
    out.push(...properties(child, `${path}${key}.`));
    if (child.items !== undefined) out.push(...properties(child.items, `${path}${key}[].`));
    if (typeof child.additionalProperties === 'object') out.push(...properties(child.additionalProperties, `${path}${key}.<name>.`));
  }
  return out;
}

const examplePath = fileURLToPath(new URL('../../examples/usher.yaml', import.meta.url));

describe('configJsonSchema', () => {
  it('is a draft 2020-12 object schema requiring listeners and pools, closed to unknown keys', () => {
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.equal(schema.type, 'object');
    assert.deepEqual(schema.required, ['listeners', 'pools']);
    assert.equal(schema.additionalProperties, false);
    assert.deepEqual(Object.keys(schema.properties ?? {}), ['$schema', 'listeners', 'pools', 'accessLog', 'log', 'admin', 'shutdownTimeout', 'runtime', 'cache', 'rateLimits', 'redis', 'kubernetes']);
    assert.equal(typeof schema.title, 'string');
  });

  it('describes the input format: durations, addresses and hash keys are strings, defaults as written in YAML', () => {
    const pool = schema.properties?.['pools']?.additionalProperties as JsonSchemaNode;
    const listener = schema.properties?.['listeners']?.items as JsonSchemaNode;
    const backend = pool.properties?.['backends']?.items as JsonSchemaNode;
    const timeouts = pool.properties?.['timeouts'] as JsonSchemaNode;
    // A built-in name or a balancer module; names registered in code are not offered to editors.
    const algorithm = pool.properties?.['algorithm'];
    assert.equal(algorithm?.anyOf?.length, 2);
    assert.deepEqual(algorithm?.anyOf?.[0]?.enum, [...BUILTIN_BALANCERS]);
    assert.deepEqual(Object.keys(algorithm?.anyOf?.[1]?.properties ?? {}), ['module', 'options']);
    assert.deepEqual(algorithm?.anyOf?.[1]?.required, ['module']);
    assert.ok(!JSON.stringify(schema).includes('x-usher'), 'no internal marks in the published schema');
    assert.equal(algorithm?.default, 'p2c');
    // A pool may be empty (backends added later through the admin API): nothing is required.
    assert.equal(pool.required, undefined);
    assert.deepEqual(validate(schema, { listeners: [{ name: 'a', bind: 'h:1', routes: [{ pool: 'p' }] }], pools: { p: {} } }), []);
    assert.equal(listener.properties?.['bind']?.type, 'string');
    assert.deepEqual(listener.required, ['name', 'bind', 'routes']);
    assert.equal(backend.properties?.['address']?.type, 'string');
    assert.deepEqual([backend.properties?.['weight']?.type, backend.properties?.['weight']?.minimum, backend.properties?.['weight']?.maximum, backend.properties?.['weight']?.default], ['integer', 1, 1000, 1]);
    assert.deepEqual(Object.keys(timeouts.properties ?? {}), ['connect', 'response', 'idle']);
    assert.deepEqual(Object.values(timeouts.properties ?? {}).map((t) => [t.type, t.default]), [['string', '5s'], ['string', '60s'], ['string', '60s']]);
    assert.equal(pool.properties?.['hashKey']?.default, 'client-ip');
    assert.equal(pool.properties?.['sticky']?.properties?.['ttl']?.default, '1h');
  });

  it('documents every key with a description and an example', () => {
    const all = properties(schema).filter(([path]) => path !== '$schema');
    assert.ok(all.length > 30, `only ${all.length} keys found`);
    for (const [path, node] of all) {
      assert.ok((node.description ?? '').length > 5, `${path} has no description`);
      assert.ok(Array.isArray(node.examples) && node.examples.length > 0, `${path} has no example`);
    }
  });

  it('accepts examples/usher.yaml and every key example, including ${VAR} values', () => {
    assert.deepEqual(validate(schema, parse(readFileSync(examplePath, 'utf8'))), []);
    for (const [path, node] of properties(schema)) {
      for (const example of node.examples ?? []) assert.deepEqual(validate(node, example), [], `${path} example ${JSON.stringify(example)}`);
    }
    const withEnv = { listeners: [{ name: 'a', bind: '${BIND}', routes: [{ pool: 'p' }] }], pools: { p: { backends: [{ address: '127.0.0.1:${PORT}' }], timeouts: { connect: '${T}' } } } };
    assert.deepEqual(validate(schema, withEnv), []);
  });

  it('rejects what the loader rejects, for the checks it can express', () => {
    const base = (pool: Record<string, unknown>): unknown => ({ listeners: [{ name: 'a', bind: 'h:1', routes: [{ pool: 'p' }] }], pools: { p: { backends: [{ address: 'h:2' }], ...pool } } });
    assert.deepEqual(validate(schema, base({})), []);
    const cases: [Record<string, unknown>, string][] = [
      [{ algorithm: 'roundrobin' }, 'not in enum'],
      [{ algoritm: 'p2c' }, 'unknown key algoritm'],
      [{ unreachable: true }, 'matches no alternative'],
      [{ backends: [{ address: 'h:1', name: 'a b' }] }, 'does not match'],
      [{ backends: [{ address: 'localhost' }] }, 'does not match'],
      [{ backends: [{ address: 'h:1', weight: 0 }] }, 'below minimum'],
      [{ timeouts: { connect: 5 } }, 'expected string'],
      [{ timeouts: { connect: '5' } }, 'does not match'],
      [{ hashKey: 'hdr:x' }, 'does not match'],
      [{ panicThreshold: 0 }, 'matches no alternative'],
      [{ panicThreshold: '50 percent' }, 'matches no alternative'],
      [{ healthCheck: { type: 'udp' } }, 'not in enum'],
      [{ healthCheck: { expectStatus: 'ok' } }, 'matches no alternative'],
      [{ healthCheck: { rise: 0 } }, 'below minimum'],
      [{ retry: { on: [] } }, 'too few items'],
      [{ retry: { on: [500] } }, 'matches no alternative'],
      [{ queueSize: -1 }, 'below minimum'],
      [{ backends: [{ address: 'h:1', state: 'off' }] }, 'not in enum'],
    ];
    for (const [pool, why] of cases) {
      const problems = validate(schema, base(pool));
      assert.ok(problems.some((p) => p.includes(why)), `${JSON.stringify(pool)}: ${problems.join('; ')}`);
      assert.equal(parseConfig(JSON.stringify(base(pool)), 'x.json', {}).ok, false, 'the loader rejects it too');
    }
  });

  it('returns a fresh copy each call', () => {
    const copy = configJsonSchema() as { title?: string };
    copy.title = 'changed';
    assert.notEqual((configJsonSchema() as { title?: string }).title, 'changed');
  });
});
