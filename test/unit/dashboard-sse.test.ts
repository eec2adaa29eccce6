import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes, formatErrorRate, formatMs, formatPercent, formatRate, formatWeight, sparklinePoints } from '../../src/dashboard/format.ts';
import { SseParser, type SseEvent } from '../../src/dashboard/sse.ts';

/** The dashboard's DOM-free parts: the server-sent events parser and number formatting. */

function parseAll(chunks: readonly string[]): SseEvent[] {
  const parser = new SseParser();
  return chunks.flatMap((chunk) => parser.push(chunk));
}

const STREAM = 'event: snapshot\ndata: {"a":1}\n\n: a comment\n\ndata: line one\ndata: line two\nid: 7\n\nevent: snapshot\ndata:no-space\n\n';
const EXPECTED: SseEvent[] = [
  { type: 'snapshot', data: '{"a":1}', id: '' },
  { type: 'message', data: 'line one\nline two', id: '7' },
  { type: 'snapshot', data: 'no-space', id: '7' },
];

test('sse: events, multi-line data, comments, ids, default type', () => {
  assert.deepEqual(parseAll([STREAM]), EXPECTED);
});

test('sse: the same events whatever the chunking, and with CRLF or CR line ends', () => {
  for (const ending of ['\n', '\r\n', '\r']) {
    const text = STREAM.replaceAll('\n', ending);
    for (let size = 1; size <= 7; size++) {
      const chunks: string[] = [];
      for (let i = 0; i < text.length; i += size) chunks.push(text.slice(i, i + size));
      assert.deepEqual(parseAll(chunks), EXPECTED, `ending ${JSON.stringify(ending)}, chunks of ${size}`);
    }
  }
});

test('sse: an event is not dispatched before its blank line; one without data is dropped', () => {
  const parser = new SseParser();
  assert.deepEqual(parser.push('event: snapshot\ndata: x\n'), []);
  assert.deepEqual(parser.push('\n'), [{ type: 'snapshot', data: 'x', id: '' }]);
  assert.deepEqual(parser.push('event: empty\n\nretry: 10\nunknown: y\n\n'), []);
});

test('format: rates, latencies, error rates, weights, CPU', () => {
  assert.deepEqual([0, 0.25, 3, 12.6, 999, 1234, 25_000].map(formatRate), ['0', '0.3', '3', '13', '999', '1.2k', '25k']);
  assert.deepEqual([null, 0.05, 2.934, 47, 1500].map(formatMs), ['–', '0.05 ms', '2.93 ms', '47 ms', '1.50 s']);
  assert.equal(formatErrorRate(0, 0), '–');
  assert.equal(formatErrorRate(0, 10), '0%');
  assert.equal(formatErrorRate(1, 12), '8.3%');
  assert.equal(formatErrorRate(3, 10), '30%');
  assert.equal(formatWeight(1, 1), '1');
  assert.equal(formatWeight(0.4213, 1), '0.42 of 1');
  assert.deepEqual([0, 0.04, 3.26, 37.4, 100].map(formatPercent), ['0%', '<0.1%', '3.3%', '37%', '100%']);
});

test('format: sparkline points span the box, the peak at the top', () => {
  assert.equal(sparklinePoints([], 100, 20), '');
  assert.equal(sparklinePoints([0, 0, 0], 100, 20), '0,20 50,20 100,20');
  assert.equal(sparklinePoints([0, 5, 10], 100, 20), '0,20 50,10 100,0');
});

test('formatBytes: bytes, then binary units with one decimal below 10', () => {
  assert.deepEqual([0, 512, 1536, 10 * 1024, 12 * 1024 * 1024, 1.25 * 1024 ** 3].map(formatBytes), ['0 B', '512 B', '1.5 KiB', '10 KiB', '12 MiB', '1.3 GiB']);
});
