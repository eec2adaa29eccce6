/**
 * The `accessLog.format` and `log` keys: defaults, accepted values and their
 * messages, the rules across them (a process log in the access log's file is
 * an error, both on standard output a warning), and the JSON Schema and docs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configJsonSchema, formatIssue, parseConfig, quickConfig, type ConfigResult, type UsherConfig } from '../../src/config/index.ts';
import { renderConfigDocs } from '../../src/config/docs.ts';
import type { JsonSchemaNode } from '../../src/config/json-schema.ts';

const BASE = 'listeners: [{ name: web, bind: "127.0.0.1:8080", routes: [{ pool: web }] }]\npools: { web: { backends: [{ address: "h:1" }] } }\n';

function resolved(extra: string): { readonly config: UsherConfig; readonly warnings: readonly string[] } {
  const result = parseConfig(`${BASE}${extra}`, 'u.yaml', {});
  if (!result.ok) assert.fail(`expected a valid config, got:\n${result.errors.map(formatIssue).join('\n')}`);
  return { config: result.config, warnings: result.warnings.map(formatIssue) };
}

function errors(extra: string): string[] {
  const result: ConfigResult = parseConfig(`${BASE}${extra}`, 'u.yaml', {});
  if (result.ok) assert.fail('expected errors, the config is valid');
  return result.errors.map(formatIssue);
}

const schema = configJsonSchema() as JsonSchemaNode;

describe('accessLog.format', () => {
  it('defaults to json, also in quick mode', () => {
    assert.equal(resolved('').config.accessLog.format, 'json');
    const quick = quickConfig({ bind: '127.0.0.1:0', backends: ['h:1'] });
    assert.ok(quick.ok);
    assert.equal(quick.config.accessLog.format, 'json');
  });

  it('accepts json and combined', () => {
    assert.deepEqual(resolved('accessLog: { format: combined, path: /var/log/a.log }\n').config.accessLog, { enabled: true, path: '/var/log/a.log', format: 'combined' });
    assert.equal(resolved('accessLog: { format: json }\n').config.accessLog.format, 'json');
  });

  it('names the accepted values when given another', () => {
    assert.deepEqual(errors('accessLog: { format: apache }\n'), ['u.yaml:3:22 accessLog.format: expected one of json, combined, got "apache"']);
  });
});

describe('log', () => {
  it('defaults to info on stderr', () => {
    assert.deepEqual(resolved('').config.log, { level: 'info', destination: 'stderr' });
    assert.deepEqual(resolved('log: {}\n').config.log, { level: 'info', destination: 'stderr' });
  });

  it('takes every pino level and silent, and a stream or file destination', () => {
    for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']) {
      assert.equal(resolved(`log: { level: ${level} }\n`).config.log.level, level);
    }
    assert.deepEqual(resolved('log: { level: warn, destination: stdout }\naccessLog: { path: /var/log/a.log }\n').config.log, { level: 'warn', destination: 'stdout' });
    assert.deepEqual(resolved('log: { destination: /var/log/usher.log }\n').config.log, { level: 'info', destination: '/var/log/usher.log' });
  });

  it('refuses unknown levels, keys and an empty destination with exact messages', () => {
    assert.deepEqual(errors('log: { level: verbose }\n'), ['u.yaml:3:15 log.level: expected one of trace, debug, info, warn, error, fatal, silent, got "verbose"']);
    assert.deepEqual(errors('log: { destination: "" }\n'), ['u.yaml:3:21 log.destination: expected stderr, stdout or a file path, got ""']);
    assert.deepEqual(errors('log: { levle: info }\n'), ['u.yaml:3:8 log.levle: unknown key "levle" (did you mean "level"?)']);
  });
});

describe('rules across the two logs', () => {
  it('refuses a process log written to the access log\'s file (however the path is spelled)', () => {
    assert.deepEqual(errors('accessLog: { path: /var/log/usher.log }\nlog: { destination: /var/log/../log/usher.log }\n'), [
      'u.yaml:4:21 log.destination: log.destination "/var/log/../log/usher.log" is the access log\'s file (accessLog.path); write the process log to another file, stderr or stdout',
    ]);
  });

  it('allows it when the access log is off', () => {
    assert.deepEqual(resolved('accessLog: { enabled: false, path: /var/log/usher.log }\nlog: { destination: /var/log/usher.log }\n').warnings, []);
  });

  it('warns when both go to standard output', () => {
    assert.deepEqual(resolved('log: { destination: stdout }\n').warnings, [
      'u.yaml:3:21 log.destination: the process log and the access log both go to standard output, so their lines interleave; set accessLog.path, or log.destination: stderr',
    ]);
    assert.deepEqual(resolved('log: { destination: stdout }\naccessLog: { path: "-" }\n').warnings.length, 1);
    assert.deepEqual(resolved('log: { destination: stdout }\naccessLog: { path: /var/log/a.log }\n').warnings, []);
  });
});

describe('JSON Schema and docs', () => {
  it('documents the defaults as written in the file', () => {
    const log = schema.properties?.['log'] as JsonSchemaNode;
    assert.deepEqual(Object.keys(log.properties ?? {}), ['level', 'destination']);
    assert.equal(log.properties?.['level']?.default, 'info');
    assert.deepEqual(log.properties?.['level']?.enum, ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);
    assert.equal(log.properties?.['destination']?.default, 'stderr');
    assert.equal(log.additionalProperties, false);
    const format = (schema.properties?.['accessLog'] as JsonSchemaNode).properties?.['format'];
    assert.equal(format?.default, 'json');
    assert.deepEqual(format?.enum, ['json', 'combined']);
  });

  it('has a section for log in docs/config.md and both rules', () => {
    const docs = renderConfigDocs('');
    assert.match(docs, /^### `log`$/m);
    assert.match(docs, /^\| `level` \| one of `trace`, `debug`, `info`, `warn`, `error`, `fatal`, `silent` \| `info` \|/m);
    assert.match(docs, /^\| `format` \| one of `json`, `combined` \| `json` \|/m);
    assert.match(docs, /`log\.destination` cannot be the access log's file/);
    assert.match(docs, /`log\.destination: stdout` while the access log also goes to standard output/);
  });
});
