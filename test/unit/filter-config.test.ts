/**
 * The `filters:` key of a route: schema and cross-key errors with file, line
 * and column, and user filter modules loaded by the asynchronous loader
 * (relative to the config file), including `usher check`'s output.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DEFAULT_TYPES } from '../../src/compress/eligible.ts';
import { formatIssue, loadConfig, parseConfig, parseConfigAsync, type ConfigIssue } from '../../src/config/index.ts';
import { compileSnapshotRoutes } from '../../src/runtime/snapshot.ts';
import { runCli } from '../helpers/cli.ts';

const fixtures = fileURLToPath(new URL('../fixtures/filters/', import.meta.url));

function yaml(filters: string, protocol = 'http'): string {
  return `listeners:
  - name: web
    bind: 127.0.0.1:0
    protocol: ${protocol}
    routes:
      - pool: main
        filters:
${filters}
pools:
  main:
    backends:
      - address: 127.0.0.1:9
`;
}

function errorsOf(text: string): ConfigIssue[] {
  const result = parseConfig(text, 'usher.yaml', {});
  assert.equal(result.ok, false, 'the config is refused');
  return result.ok ? [] : [...result.errors];
}

test('built-in filters are validated with positions: framing fields, one kind per entry, options without module, rewrite forms, URLs', () => {
  const framing = errorsOf(yaml('          - headers: { request: { set: { content-length: "1" } } }'));
  assert.equal(framing.length, 1);
  assert.match(formatIssue(framing[0]!), /^usher\.yaml:8:\d+ listeners\[0\]\.routes\[0\]\.filters\[0\]\.headers\.request\.set.*content-length is a framing or hop-by-hop field/);
  const host = errorsOf(yaml('          - headers: { request: { remove: [Host] } }'));
  assert.match(host[0]!.message, /rewrite\.host/);
  const forwarded = errorsOf(yaml('          - headers: { request: { add: { X_Forwarded_For: 1.2.3.4 } } }'));
  assert.match(forwarded[0]!.message, /X_Forwarded_For reads as a field usher sets itself/);
  const two = errorsOf(yaml('          - { ipAllow: [10.0.0.0/8], ipDeny: [10.1.0.0/16] }'));
  assert.match(two[0]!.message, /a filter names one kind, found ipAllow and ipDeny/);
  assert.equal(two[0]!.path, 'listeners[0].routes[0].filters[0]');
  const options = errorsOf(yaml('          - { headers: { response: { remove: [server] } }, options: { a: 1 } }'));
  assert.match(options[0]!.message, /"options" goes with "module"/);
  const forms = errorsOf(yaml('          - rewrite: { path: /a, prefix: { from: /b, to: /c } }'));
  assert.match(forms[0]!.message, /use only one of path, prefix and regex/);
  const url = errorsOf(yaml('          - forwardAuth: { url: https://auth.example/verify }'));
  assert.match(url[0]!.message, /only http:\/\/ URLs/);
  const cidr = errorsOf(yaml('          - ipAllow: [10.0.0.0/33]'));
  assert.match(cidr[0]!.message, /prefix length/);
  const unknown = errorsOf(yaml('          - { hedaers: {} }'));
  assert.ok(unknown.some((issue) => /unknown key "hedaers".*headers/.test(issue.message)), JSON.stringify(unknown));
  const module = errorsOf(yaml('          - module: filters/x.ts'));
  assert.match(module[0]!.message, /starting with "\.\/"/);
});

test('filters only apply to http and https listeners', () => {
  const errors = errorsOf(yaml('          - ipAllow: [10.0.0.0/8]', 'tcp').replace('      - pool: main\n', '      - pool: main\n'));
  assert.ok(errors.some((issue) => issue.path === 'listeners[0].routes[0].filters' && /only applies to "http" and "https" listeners/.test(issue.message)), JSON.stringify(errors));
});

test('forwardAuth defaults: 1s timeout, onError 503, 64 KiB answers', () => {
  const result = parseConfig(yaml('          - forwardAuth: { url: "http://127.0.0.1:9000/verify" }'), 'usher.yaml', {});
  assert.ok(result.ok);
  assert.deepEqual(result.config.listeners[0]!.routes[0]!.filters, [
    { kind: 'forwardAuth', url: 'http://127.0.0.1:9000/verify', timeoutMs: 1000, requestHeaders: [], copyHeaders: [], onError: 503, maxResponseBytes: 65536 },
  ]);
});

test('filter modules load relative to the config file; the synchronous parse leaves them unloaded and says so at start', async () => {
  const file = join(fixtures, 'example.yaml');
  const loaded = await loadConfig(file, {});
  assert.ok(loaded.ok, loaded.ok ? '' : loaded.errors.map(formatIssue).join('\n'));
  const filters = loaded.config.listeners[0]!.routes[0]!.filters!;
  assert.equal(filters[0]!.kind, 'module');
  assert.equal(filters[0]!.kind === 'module' ? filters[0]!.loaded?.definition.name : '', 'tenant');
  assert.deepEqual(filters[0]!.kind === 'module' ? filters[0]!.loaded?.options : undefined, { tenants: ['acme'], header: 'x-tenant' });
  assert.ok(compileSnapshotRoutes(loaded.config).filters.get('web')![0]!.length === 1);

  const { readFileSync } = await import('node:fs');
  const sync = parseConfig(readFileSync(file, 'utf8'), file, {});
  assert.ok(sync.ok);
  assert.throws(() => compileSnapshotRoutes(sync.config), /filter module \.\.\/\.\.\/\.\.\/examples\/filters\/tenant\.ts was not loaded; load the config with loadConfig/);
});

test('invalid module options and a missing module are config errors with file:line:col', async () => {
  const result = await loadConfig(join(fixtures, 'bad-options.yaml'), {});
  assert.equal(result.ok, false);
  const lines = result.ok ? [] : result.errors.map(formatIssue);
  assert.equal(lines.length, 3, lines.join('\n'));
  assert.match(lines[0]!, /bad-options\.yaml:10:25 listeners\[0\]\.routes\[0\]\.filters\[0\]\.options\.tenants\[0\]: /);
  assert.match(lines[1]!, /bad-options\.yaml:11:15 listeners\[0\]\.routes\[0\]\.filters\[0\]\.options\.colour: unknown key "colour"/);
  assert.match(lines[2]!, /bad-options\.yaml:12:21 listeners\[0\]\.routes\[0\]\.filters\[1\]\.module: cannot load .*missing\.ts: no such file \(ENOENT\)/);
});

test('a module that takes no options but gets some; a file that is not a module', async () => {
  const noOptions = await parseConfigAsync(yaml(`          - module: ${join(fixtures, 'faulty.ts')}\n            options: { a: 1 }`), join(fixtures, 'x.yaml'), {});
  assert.equal(noOptions.ok, false);
  assert.match(noOptions.ok ? '' : noOptions.errors[0]!.message, /filter faulty takes no options; remove "options"/);
  const yamlModule = await parseConfigAsync(yaml(`          - module: ${join(fixtures, 'example.yaml').replace(/\.yaml$/, '.js')}`), join(fixtures, 'x.yaml'), {});
  assert.equal(yamlModule.ok, false);
  assert.match(yamlModule.ok ? '' : yamlModule.errors[0]!.message, /cannot load .*example\.js: no such file \(ENOENT\)/);
});

test('usher check loads filter modules: ok for the example, every problem with its position otherwise', async () => {
  const ok = await runCli(['check', '-c', join(fixtures, 'example.yaml')]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^ok: /);
  const bad = await runCli(['check', '-c', join(fixtures, 'bad-options.yaml')]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /bad-options\.yaml:11:15 listeners\[0\]\.routes\[0\]\.filters\[0\]\.options\.colour: unknown key "colour"/);
  assert.match(bad.stderr, /3 problems in the config/);
});

test('compress: defaults, levels bounded for on-the-fly use (brotli 11 refused), codings and media-type patterns checked', () => {
  const result = parseConfig(yaml('          - compress: {}'), 'usher.yaml', {});
  assert.ok(result.ok);
  assert.deepEqual(result.config.listeners[0]!.routes[0]!.filters![0], {
    kind: 'compress',
    guard: true,
    codings: ['zstd', 'br', 'gzip'],
    levels: { zstd: 3, br: 4, gzip: 4 },
    minSize: 1024,
    types: [...DEFAULT_TYPES],
  });
  const custom = parseConfig(yaml('          - compress: { codings: [gzip], levels: { gzip: 6 }, minSize: 2KiB, types: [Text/HTML] }'), 'usher.yaml', {});
  assert.ok(custom.ok);
  assert.deepEqual(custom.config.listeners[0]!.routes[0]!.filters![0], { kind: 'compress', codings: ['gzip'], levels: { zstd: 3, br: 4, gzip: 6 }, minSize: 2048, types: ['text/html'], guard: true });
  const brotli = errorsOf(yaml('          - compress: { levels: { br: 11 } }'));
  assert.match(formatIssue(brotli[0]!), /^usher\.yaml:8:\d+ .*filters\[0\]\.compress\.levels\.br.*levels\.br must be an integer in \[0, 5\]/);
  assert.match(errorsOf(yaml('          - compress: { codings: [gzip, gzip] }'))[0]!.message, /list each coding once/);
  assert.match(errorsOf(yaml('          - compress: { codings: [deflate] }'))[0]!.message, /expected one of zstd, br, gzip/);
  assert.match(errorsOf(yaml('          - compress: { types: ["*/*"] }'))[0]!.message, /expected a media-type pattern/);
  assert.match(errorsOf(yaml('          - compress: { minsize: 1KiB }'))[0]!.message, /unknown key "minsize".*minSize/);
});
