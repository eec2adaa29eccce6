import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { startOrigin } from '../helpers/origin.ts';
import { simpleYaml, startUsher } from '../helpers/usher.ts';

/** Writes raw bytes, then reads until the server closes the connection (or 5 s pass). */
async function rawUntilClose(port: number, bytes: string, closeAfterWrite = false): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(bytes);
  if (closeAfterWrite) socket.end();
  let data = '';
  const deadline = setTimeout(() => socket.destroy(), 5000);
  for await (const chunk of socket) data += chunk.toString('latin1');
  clearTimeout(deadline);
  return data;
}

test('pipelined requests are answered in order, each routed and balanced on its own', async (t) => {
  const origin = await startOrigin('p', (req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end(`got ${req.url}`));
  });
  const usher = await startUsher(simpleYaml([origin.address]));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  const requests = ['/one', '/two', '/three'].map((path) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`).join('');
  const response = await rawUntilClose(
    usher.address('web').port,
    requests + 'POST /four HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody',
  );
  const bodies = [...response.matchAll(/got (\/\w+)/g)].map((m) => m[1]);
  assert.deepEqual(bodies, ['/one', '/two', '/three', '/four']);
  assert.equal(response.match(/HTTP\/1\.1 200/g)?.length, 4);
  assert.match(response, /connection: close/i, 'the last response honours Connection: close');
});

test('HTTP/1.0 client gets a de-chunked, close-delimited body from a chunked backend', async (t) => {
  const origin = await startOrigin('c', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('alpha-');
    res.end('omega');
  });
  const usher = await startUsher(simpleYaml([origin.address]));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  const response = await rawUntilClose(usher.address('web').port, 'GET / HTTP/1.0\r\n\r\n');
  const [head, body] = response.split('\r\n\r\n');
  assert.match(head!, /^HTTP\/1\.1 200/);
  assert.doesNotMatch(head!, /transfer-encoding/i);
  assert.match(head!, /connection: close/i);
  assert.equal(body, 'alpha-omega');
});

test('HEAD responses carry Content-Length but no body, and the connection stays usable', async (t) => {
  const origin = await startOrigin('h', (req, res) => {
    res.writeHead(200, { 'content-length': '1234' });
    res.end(req.method === 'HEAD' ? undefined : 'x'.repeat(1234));
  });
  const usher = await startUsher(simpleYaml([origin.address]));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  const response = await rawUntilClose(
    usher.address('web').port,
    'HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  );
  const heads = response.split('HTTP/1.1 200').slice(1);
  assert.equal(heads.length, 2);
  assert.match(heads[0]!, /content-length: 1234/i);
  assert.ok(heads[1]!.endsWith('x'.repeat(1234)));
});

test('a malformed request gets 400 and a closed connection; nothing reaches the backend', async (t) => {
  const origin = await startOrigin('m');
  const usher = await startUsher(simpleYaml([origin.address]));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  const response = await rawUntilClose(
    usher.address('web').port,
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
  );
  assert.match(response, /^HTTP\/1\.1 400/);
  assert.match(response, /connection: close/i);
  assert.equal(response.match(/HTTP\/1\.1/g)?.length, 1, 'the smuggled request is never answered');
  assert.equal(origin.seen.length, 0);
});

test('a kept-alive upstream connection the backend closed is replaced without failing the request', async (t) => {
  // The backend closes every connection right after answering, but advertises keep-alive.
  const origin = await startOrigin('k', (req, res) => {
    res.writeHead(200, { 'content-length': '2' });
    res.end('ok', () => setImmediate(() => req.socket.destroy()));
  });
  const usher = await startUsher(simpleYaml([origin.address]));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  for (let i = 0; i < 20; i++) {
    const res = await fetch(`${usher.url('web')}/r${i}`);
    assert.equal(res.status, 200, `request ${i}`);
    assert.equal(await res.text(), 'ok');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
});
