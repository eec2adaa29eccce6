import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { startOrigin } from '../helpers/origin.ts';
import { simpleYaml, startUsher } from '../helpers/usher.ts';

/** Sends raw bytes and returns everything read until the server closes or `until` appears. */
async function rawExchange(port: number, bytes: string, until = '\r\n\r\n'): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(bytes);
  let data = '';
  const deadline = setTimeout(() => socket.destroy(), 5000);
  for await (const chunk of socket) {
    data += chunk.toString('latin1');
    if (data.includes(until)) break;
  }
  clearTimeout(deadline);
  socket.destroy();
  return data;
}

test('request headers: X-Forwarded-*, Host kept, hop-by-hop removed', async (t) => {
  const origin = await startOrigin('o');
  const usher = await startUsher(simpleYaml([origin.address]));
  t.after(async () => {
    await usher.stop({ timeoutMs: 1000 });
    await origin.close();
  });
  const port = usher.address('web').port;
  const response = await rawExchange(
    port,
    'GET /h HTTP/1.1\r\n' +
      'Host: app.example.com\r\n' +
      'X-Forwarded-For: 203.0.113.9\r\n' +
      'X-Forwarded-Proto: https\r\n' +
      'X-Forwarded-Host: evil.example\r\n' +
      'Connection: keep-alive, X-Secret-Hop\r\n' +
      'X-Secret-Hop: 1\r\n' +
      'Keep-Alive: timeout=5\r\n' +
      'TE: trailers\r\n' +
      'Trailer: X-Foo\r\n' +
      'Upgrade: h2c\r\n' +
      'Proxy-Authorization: Basic eA==\r\n' +
      'Proxy-Connection: keep-alive\r\n' +
      'X-Custom: Kept\r\n' +
      '\r\n',
    'o',
  );
  assert.match(response, /^HTTP\/1\.1 200/);
  const seen = origin.seen[0]!;
  assert.equal(seen.headers['host'], 'app.example.com', 'Host is preserved');
  assert.equal(seen.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1', 'X-Forwarded-For is appended to');
  assert.equal(seen.headers['x-forwarded-proto'], 'http', 'X-Forwarded-Proto is set by usher, not trusted from the client');
  assert.equal(seen.headers['x-forwarded-host'], 'app.example.com');
  assert.equal(seen.headers['x-custom'], 'Kept');
  for (const hop of ['x-secret-hop', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-connection']) {
    assert.equal(seen.headers[hop], undefined, `${hop} must not reach the backend`);
  }
  // Case of forwarded header names is preserved.
  assert.ok(seen.rawHeaders.includes('X-Custom'));
});

test('response headers: hop-by-hop removed, body re-framed', async (t) => {
  const origin = await startOrigin('o', (req, res) => {
    res.setHeader('Connection', 'X-Hop-Response');
    res.setHeader('X-Hop-Response', 'secret');
    res.setHeader('Keep-Alive', 'timeout=99');
    res.setHeader('Proxy-Authenticate', 'Basic');
    res.setHeader('X-End-To-End', 'yes');
    res.setHeader('Set-Cookie', ['a=1', 'b=2']);
    res.write('chunk-1;');
    res.end('chunk-2');
  });
  const usher = await startUsher(simpleYaml([origin.address]));
  t.after(async () => {
    await usher.stop({ timeoutMs: 1000 });
    await origin.close();
  });
  const response = await fetch(`${usher.url('web')}/`);
  assert.equal(await response.text(), 'chunk-1;chunk-2');
  assert.equal(response.headers.get('x-hop-response'), null);
  assert.equal(response.headers.get('proxy-authenticate'), null);
  assert.equal(response.headers.get('x-end-to-end'), 'yes');
  assert.deepEqual(response.headers.getSetCookie(), ['a=1', 'b=2']);
  const raw = await rawExchange(usher.address('web').port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'chunk-2');
  assert.doesNotMatch(raw.toLowerCase(), /keep-alive: timeout=99/);
});
