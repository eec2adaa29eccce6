/**
 * Upstream responses that carry no body, and upstream connection reuse after
 * them, for HTTP/1.1 clients (HTTP/2 clients: h2-front.test.ts). The broken
 * cases are rows of broken-backends.test.ts; this file holds what a table row
 * cannot say:
 * - the legitimate no-body responses keep their upstream connection (HEAD
 *   with Content-Length, 204 and 304 without framing fields), so the repair
 *   of a 204/304 that has them costs nothing to correct backends;
 * - a 304 with Content-Length whose body arrives while usher already sent the
 *   next request never becomes that request's response;
 * - a backend that answers `101` to a request whose `Upgrade: h2c` usher did
 *   not forward gets no tunnel: the client gets 502 `bad_response`.
 * The backend is a raw `net` server that answers the request heads of each
 * connection in order from a script, and records every byte it receives.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { simpleYaml, startUsher } from '../helpers/usher.ts';
import { RawClient, startSequencedBackend, type Answer, type SequencedBackend } from './helpers.ts';

/** The request head usher sends upstream for the client's `<method> <path>` with `Host: x` (request id written as ID). */
function upstreamHead(method: string, path: string): string {
  return `${method} ${path} HTTP/1.1\r\nHost: x\r\nx-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\nx-forwarded-host: x\r\nx-request-id: ID\r\n\r\n`;
}

function sameIds(bytes: string): string {
  return bytes.replace(/x-request-id: [0-9a-f]{32}/g, 'x-request-id: ID');
}

const OK = (socket: Socket): void => void socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');

async function startClient(t: TestContext, answers: readonly Answer[]): Promise<{ backend: SequencedBackend; client: RawClient; port: number }> {
  const backend = await startSequencedBackend(answers);
  t.after(() => backend.close());
  const usher = await startUsher(simpleYaml([backend.address]));
  const port = usher.address('web').port;
  const client = await RawClient.connect(port);
  t.after(async () => {
    client.destroy();
    await usher.stop({ timeoutMs: 500 });
  });
  return { backend, client, port };
}

/** Reads the head of a response that has no body bytes (HEAD, 1xx, 204, 304), whatever its Content-Length says. */
async function readBodylessHead(client: RawClient): Promise<string> {
  assert.ok(await client.waitFor('\r\n\r\n'), `no response head: ${JSON.stringify(client.data)}`);
  const end = client.data.indexOf('\r\n\r\n', client.offset) + 4;
  const head = client.data.slice(client.offset, end);
  client.offset = end;
  return head;
}

test('no-body responses: HEAD with Content-Length keeps it, and its upstream connection is reused', async (t) => {
  const { backend, client } = await startClient(t, [(s) => void s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: "e"\r\n\r\n'), OK]);
  client.write('HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n');
  const head = await readBodylessHead(client);
  assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(head, /\r\nContent-Length: 5\r\n/, 'a HEAD response keeps the length of the body it would have (RFC 9110 §8.6)');
  client.write('GET /next HTTP/1.1\r\nHost: x\r\n\r\n');
  const next = await client.readResponse();
  assert.equal(next?.status, 200);
  assert.equal(next.body, 'ok');
  assert.equal(client.unread, '');
  assert.deepEqual(backend.received.map(sameIds), [upstreamHead('HEAD', '/h') + upstreamHead('GET', '/next')], 'one upstream connection, reused');
});

for (const status of ['204 No Content', '304 Not Modified']) {
  test(`no-body responses: a ${status} without Content-Length or Transfer-Encoding reuses its upstream connection`, async (t) => {
    const { backend, client } = await startClient(t, [(s) => void s.write(`HTTP/1.1 ${status}\r\nETag: "e"\r\n\r\n`), OK]);
    client.write('GET /first HTTP/1.1\r\nHost: x\r\n\r\n');
    const first = await client.readResponse();
    assert.equal(first?.head.split('\r\n')[0], `HTTP/1.1 ${status}`);
    client.write('GET /next HTTP/1.1\r\nHost: x\r\n\r\n');
    const next = await client.readResponse();
    assert.equal(next?.status, 200);
    assert.equal(next.body, 'ok');
    assert.equal(client.unread, '');
    assert.deepEqual(backend.received.map(sameIds), [upstreamHead('GET', '/first') + upstreamHead('GET', '/next')]);
  });
}

test('no-body responses: the body of a 304 with Content-Length, sent late, never becomes the next response', async (t) => {
  // The backend holds the stray body until the second request has arrived, on whatever connection: a proxy that
  // reused the connection would have sent that request on it and would now read "smuggle" as its response.
  let first: Socket | undefined;
  const { backend, client } = await startClient(t, [
    (s) => {
      first = s;
      s.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 49\r\n\r\n');
    },
    (s) => {
      if (first !== undefined && !first.destroyed) first.write('HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsmuggle');
      OK(s);
    },
  ]);
  client.write('GET /first HTTP/1.1\r\nHost: x\r\n\r\n');
  const head = await readBodylessHead(client);
  assert.match(head, /^HTTP\/1\.1 304 Not Modified\r\n/);
  assert.doesNotMatch(head, /content-length/i, 'no Content-Length on a 304 usher relays');
  client.write('GET /next HTTP/1.1\r\nHost: x\r\n\r\n');
  const next = await client.readResponse();
  assert.equal(next?.status, 200);
  assert.equal(next.body, 'ok', `the next request got its own response; received ${JSON.stringify(client.data)}`);
  assert.equal(client.unread, '');
  assert.equal(backend.heads(), 2);
  assert.deepEqual(backend.received.map(sameIds), [upstreamHead('GET', '/first'), upstreamHead('GET', '/next')], 'two upstream connections, one request each');
});

test('h2c upgrade: a backend that switches protocols anyway gets no tunnel; the client gets 502 bad_response', async (t) => {
  const { backend, client } = await startClient(t, [
    // 101 plus the start of an HTTP/2 server preface (an empty SETTINGS frame), as an h2c server would answer.
    (s) => void s.write(Buffer.concat([Buffer.from('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n', 'latin1'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])])),
    OK,
  ]);
  client.write('GET /h2c HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n');
  const res = await client.readResponse();
  assert.equal(res?.status, 502, `received ${JSON.stringify(client.data)}`);
  assert.equal(res.headers['x-usher-error'], 'bad_response');
  assert.equal(res.headers['upgrade'], undefined);
  // The connection is still HTTP/1.1, not a tunnel to the backend.
  client.write('GET /next HTTP/1.1\r\nHost: x\r\n\r\n');
  const next = await client.readResponse();
  assert.equal(next?.status, 200);
  assert.equal(next.body, 'ok');
  assert.equal(client.unread, '');
  assert.deepEqual(backend.received.map(sameIds), [upstreamHead('GET', '/h2c'), upstreamHead('GET', '/next')], 'no Upgrade, Connection or HTTP2-Settings went upstream; a new connection after the 101');
});

test('unsupported request Transfer-Encoding: 501, the connection closes, nothing is read as a request', async (t) => {
  const { backend, client } = await startClient(t, [OK]);
  client.write('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n');
  const res = await client.readResponse();
  assert.equal(res?.status, 501);
  assert.equal(res.headers['x-usher-error'], 'http1_unsupported_te');
  assert.match(res.headers['connection'] ?? '', /close/);
  await client.waitClosed();
  assert.equal(client.unread, '');
  assert.deepEqual(backend.received, [], 'nothing reached the backend');
});
