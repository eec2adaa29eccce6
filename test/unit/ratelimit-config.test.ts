/**
 * `rateLimits` and the `rateLimit` filter in the config: defaults, and the
 * errors `usher check` prints (unknown policy names with a suggestion, bad
 * rates, keys of another algorithm, missing numbers, bad key parts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';

function config(policies: string, filter = '[api]'): string {
  return `rateLimits:
${policies}
listeners:
  - name: web
    bind: 127.0.0.1:8080
    routes:
      - pool: main
        filters:
          - rateLimit: ${filter}
pools:
  main:
    backends:
      - address: 127.0.0.1:9000
`;
}

function errors(yaml: string): string[] {
  const result = parseConfig(yaml, 'test.yaml', {});
  assert.equal(result.ok, false, 'expected errors');
  return result.ok ? [] : result.errors.map((e) => `${e.path}: ${e.message}`);
}

test('a gcra policy gets its defaults; the filter names its policies', () => {
  const result = parseConfig(config('  api: { rate: 100/s, burst: 50 }'), 'test.yaml', {});
  assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
  assert.deepEqual(result.config.rateLimits?.['api'], {
    key: ['client-ip'], ipv6Prefix: 64, dryRun: false, status: 429, xRateLimitHeaders: false, maxKeys: 100_000, store: 'local', onStoreError: 'local',
    algorithm: 'gcra', rate: { count: 100, periodMs: 1000 }, burst: 50, maxDelayMs: 0,
  });
  assert.deepEqual(result.config.listeners[0]!.routes[0]!.filters, [{ kind: 'rateLimit', policies: ['api'] }]);
});

test('sliding-window and concurrency policies', () => {
  const result = parseConfig(config("  api: { algorithm: sliding-window, limit: 1000, window: 1h, key: ['header:X-Api-Key'] }\n  up: { algorithm: concurrency, limit: 10 }", '[api, up]'), 'test.yaml', {});
  assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
  assert.equal(result.config.rateLimits?.['api']?.algorithm, 'sliding-window');
  assert.deepEqual(result.config.rateLimits?.['up'], { key: ['client-ip'], ipv6Prefix: 64, dryRun: false, status: 429, xRateLimitHeaders: false, maxKeys: 100_000, store: 'local', onStoreError: 'local', algorithm: 'concurrency', limit: 10, leaseTimeoutMs: 60_000 });
});

test('a route naming an unknown policy is an error with a suggestion', () => {
  const found = errors(config('  api: { rate: 10/s }\n  hourly: { algorithm: sliding-window, limit: 5, window: 1h }', '[api, hourli]'));
  assert.ok(found.some((e) => e.includes('unknown rate-limit policy "hourli"') && e.includes('did you mean "hourly"')), found.join('\n'));
});

test('bad rates, keys of another algorithm, missing numbers and bad key parts are errors', () => {
  assert.ok(errors(config('  api: { rate: 10/x }')).some((e) => e.includes('expected a rate such as 100/s')));
  assert.ok(errors(config('  api: { rate: 0/s }')).some((e) => e.includes('above 0')));
  assert.ok(errors(config('  api: { rate: 10/s, window: 1m }')).some((e) => e.includes('window does not apply to algorithm gcra')));
  assert.ok(errors(config('  api: { burst: 3 }')).some((e) => e.includes('algorithm gcra needs rate')));
  assert.ok(errors(config('  api: { algorithm: sliding-window, limit: 5 }')).some((e) => e.includes('needs window')));
  assert.ok(errors(config('  api: { algorithm: concurrency, limit: 5, rate: 1/s }')).some((e) => e.includes('rate does not apply')));
  assert.ok(errors(config("  api: { rate: 1/s, key: ['ip'] }")).some((e) => e.includes('expected client-ip, header:<name>')));
  assert.ok(errors(config('  api: { rate: 1/s, status: 403 }')).some((e) => e.includes('expected 429 or 503')));
  assert.ok(errors(config('  api: { rate: 1/s }', '[api, api]')).some((e) => e.includes('list each policy once')));
});
