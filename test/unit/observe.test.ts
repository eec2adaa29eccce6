/**
 * The observability building blocks on their own: latency histogram buckets
 * (edges inclusive, as Prometheus' `le`), the combined access log line and its
 * escaping, and which request ids are kept.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { combinedLine, type AccessRecord } from '../../src/observe/access-log.ts';
import { CollectedHistogram, LATENCY_BOUNDS_MS, LatencyHistogram } from '../../src/observe/histogram.ts';
import { isValidRequestId, requestIdOf } from '../../src/proxy/request-id.ts';

describe('LatencyHistogram', () => {
  it('puts a value on a bound in that bound\'s bucket, and above the last one in the overflow slot', () => {
    const histogram = new LatencyHistogram();
    for (const ms of [0, 0.5, 0.50001, 1, 30_000, 30_001]) histogram.observe(ms);
    assert.equal(histogram.counts.length, LATENCY_BOUNDS_MS.length + 1);
    assert.equal(histogram.counts[0], 2); // 0 and 0.5
    assert.equal(histogram.counts[1], 2); // 0.50001 and 1
    assert.equal(histogram.counts[LATENCY_BOUNDS_MS.length - 1], 1); // 30 000
    assert.equal(histogram.counts[LATENCY_BOUNDS_MS.length], 1); // 30 001
    assert.equal(histogram.count, 6);
    assert.equal(histogram.sumMs, 0 + 0.5 + 0.50001 + 1 + 30_000 + 30_001);
  });

  it('renders as a Prometheus histogram in seconds, cumulative, with _sum and _count', async () => {
    const registry = new Registry();
    const histogram = new LatencyHistogram();
    histogram.observe(2);
    histogram.observe(2000);
    new CollectedHistogram(registry, 'test_seconds', 'A test.', ['route'], () => [[{ route: 'r' }, histogram]]);
    const text = await registry.metrics();
    assert.match(text, /^# TYPE test_seconds histogram$/m);
    assert.match(text, /^test_seconds_bucket\{route="r",le="0\.001"\} 0$/m);
    assert.match(text, /^test_seconds_bucket\{route="r",le="0\.0025"\} 1$/m);
    assert.match(text, /^test_seconds_bucket\{route="r",le="2\.5"\} 2$/m);
    assert.match(text, /^test_seconds_bucket\{route="r",le="\+Inf"\} 2$/m);
    assert.match(text, /^test_seconds_sum\{route="r"\} 2\.002$/m);
    assert.match(text, /^test_seconds_count\{route="r"\} 2$/m);
  });
});

const RECORD: AccessRecord = {
  client: '10.0.0.1',
  method: 'GET',
  path: '/a?b=1',
  protocol: 'HTTP/1.1',
  status: 200,
  listener: 'web',
  route: 'r',
  pool: 'p',
  backend: '10.0.0.9:80',
  upstreamMs: 1,
  totalMs: 2,
  bytesIn: 100,
  bytesOut: 512,
  error: undefined,
  requestId: 'id-1',
  referer: 'https://x/',
  userAgent: 'curl/8',
};

describe('combined access log line', () => {
  const time = Date.UTC(2000, 9, 10, 13, 55, 36);

  it('is the combined format with the request id appended, time in UTC', () => {
    assert.equal(combinedLine(RECORD, time), '10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /a?b=1 HTTP/1.1" 200 512 "https://x/" "curl/8" "id-1"\n');
  });

  it('writes - for no body, no referer, no user agent, and for a request it could not read', () => {
    const line = combinedLine({ ...RECORD, method: '-', path: '-', protocol: '-', status: 400, bytesOut: 0, referer: undefined, userAgent: undefined }, time);
    assert.equal(line, '10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "-" 400 - "-" "-" "id-1"\n');
  });

  it('escapes quotes, backslashes and bytes outside printable ASCII, so no field or line can be forged', () => {
    const line = combinedLine({ ...RECORD, userAgent: 'a"b\\c\x01\xe9', referer: 'x\ny', requestId: 'q"' }, time);
    assert.equal(line, '10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /a?b=1 HTTP/1.1" 200 512 "x\\x0ay" "a\\x22b\\x5cc\\x01\\xe9" "q\\x22"\n');
  });
});

describe('request ids', () => {
  it('keeps 1-200 printable ASCII characters, nothing else', () => {
    assert.ok(isValidRequestId('a'));
    assert.ok(isValidRequestId(' ~'));
    assert.ok(isValidRequestId('x'.repeat(200)));
    assert.ok(!isValidRequestId(''));
    assert.ok(!isValidRequestId('x'.repeat(201)));
    assert.ok(!isValidRequestId('a\tb'));
    assert.ok(!isValidRequestId('\x7f'));
    assert.ok(!isValidRequestId('caf\xe9'));
  });

  it('takes the first x-request-id field, any case, and replaces an invalid one', () => {
    assert.equal(requestIdOf(['Host', 'h', 'X-Request-ID', 'abc', 'x-request-id', 'def']), 'abc');
    assert.match(requestIdOf(['x-request-id', '']), /^[0-9a-f]{32}$/);
    assert.match(requestIdOf(['Host', 'h']), /^[0-9a-f]{32}$/);
    assert.notEqual(requestIdOf([]), requestIdOf([]));
  });
});
