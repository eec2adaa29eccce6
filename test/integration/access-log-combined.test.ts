/**
 * `accessLog.format: combined`, read back from the file usher wrote: the
 * Apache/nginx combined format with the request id appended, for proxied,
 * error, redirect and unreadable requests; quotes and control characters a
 * client sends cannot forge a field.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { startOrigin } from '../helpers/origin.ts';
import { startUsher } from '../helpers/usher.ts';

/** One combined line: client, time, request, status, bytes, referer, user agent, request id. */
const LINE = /^(\S+) - - \[(\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000)\] "((?:[^"\\]|\\x[0-9a-f]{2})*)" (\d{3}) (\d+|-) "((?:[^"\\]|\\x[0-9a-f]{2})*)" "((?:[^"\\]|\\x[0-9a-f]{2})*)" "((?:[^"\\]|\\x[0-9a-f]{2})*)"$/;

function sendRaw(port: number, bytes: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes, 'latin1'));
    socket.resume();
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
}

test('the combined format, read from the access log file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'usher-access-'));
  const file = join(dir, 'logs', 'access.log');
  const origin = await startOrigin('hello', (req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-length': '5' }).end('hello'));
  });
  const usher = await startUsher(`listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - name: app
        match: { pathPrefix: /app }
        pool: main
      - name: moved
        match: { pathPrefix: /moved }
        redirect: { scheme: https }
pools:
  main:
    backends: [{ address: ${origin.address} }]
accessLog:
  path: ${file}
  format: combined
`);
  let stopped = false;
  t.after(async () => {
    if (!stopped) await usher.stop({ timeoutMs: 500 });
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const base = usher.url('web');

  const ok = await request(`${base}/app/page?q=1`, { headers: { referer: 'https://example.com/from', 'user-agent': 'test-agent/1.0', 'x-request-id': 'combined-1' } });
  await ok.body.text();
  const missing = await request(`${base}/missing`);
  await missing.body.text();
  const moved = await request(`${base}/moved`, { headers: { 'user-agent': 'quote " and \\ slash' } });
  await moved.body.text();
  await sendRaw(usher.address('web').port, 'NOT A REQUEST\r\n\r\n');
  await usher.stop({ timeoutMs: 500 });
  stopped = true;

  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  assert.equal(lines.length, 4, lines.join('\n'));
  const parsed = lines.map((line) => {
    const match = LINE.exec(line);
    assert.ok(match !== null, `a combined line: ${line}`);
    return match;
  });
  const [first, second, third, fourth] = parsed;

  assert.equal(first![1], '127.0.0.1');
  const now = new Date();
  assert.ok(first![2]!.includes(`/${now.getUTCFullYear()}:`), first![2]);
  assert.equal(first![3], 'GET /app/page?q=1 HTTP/1.1');
  assert.equal(first![4], '200');
  assert.equal(first![5], '5', 'response body bytes');
  assert.equal(first![6], 'https://example.com/from');
  assert.equal(first![7], 'test-agent/1.0');
  assert.equal(first![8], 'combined-1');

  assert.equal(second![3], 'GET /missing HTTP/1.1');
  assert.equal(second![4], '404');
  assert.equal(second![5], '-', 'no body bytes from a backend');
  assert.equal(second![6], '-');
  assert.equal(second![8], missing.headers['x-request-id']);

  assert.equal(third![4], '308');
  assert.equal(third![7], 'quote \\x22 and \\x5c slash', 'quotes and backslashes are escaped');
  assert.equal(third![8], moved.headers['x-request-id']);

  assert.equal(fourth![3], '-', 'a request usher could not read');
  assert.equal(fourth![4], '400');
  assert.match(fourth![8]!, /^[0-9a-f]{32}$/);
});
