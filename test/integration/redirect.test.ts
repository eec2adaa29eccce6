import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { request } from 'undici';
import type { AccessLog, AccessRecord } from '../../src/observe/access-log.ts';
import { startOrigin } from '../helpers/origin.ts';
import { configFromYaml } from '../helpers/usher.ts';
import { Usher } from '../../src/runtime/usher.ts';

/** Sends raw bytes and resolves with everything the server sends until it closes (or `ms` passes). */
function raw(url: string, bytes: string, ms = 1000): Promise<{ text: string; closed: boolean }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, ms);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    socket.write(bytes, 'latin1');
  });
}

test('redirect routes answer with Location built from the request, and are logged with their status', async (t) => {
  const origin = await startOrigin('web');
  const records: AccessRecord[] = [];
  const accessLog: AccessLog = { enabled: true, write: (record) => void records.push(record), close: async () => undefined };
  const usher = await Usher.start(
    configFromYaml(`listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - name: moved
        match: { pathPrefix: /old }
        redirect: { host: new.example.com, port: 8443, scheme: https, code: 301 }
      - name: same-port
        match: { pathPrefix: /default-port }
        redirect: { scheme: https, port: 443 }
      - name: other-host
        match: { pathPrefix: /elsewhere }
        redirect: { host: "[::1]", code: 302 }
      - name: api
        match: { pathPrefix: /api }
        pool: web
      - name: to-https
        redirect: { scheme: https, code: 308 }
pools:
  web:
    backends:
      - address: ${origin.address}
`),
    { accessLog },
  );
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  const base = usher.url('web');

  await t.test('308 to https on the same host, without the port, keeping path and query', async () => {
    const res = await request(`${base}/shop/cart?item=1&x=%20y`, { headers: { host: 'Shop.Example.com:8080' } });
    assert.equal(res.statusCode, 308);
    assert.equal(res.headers['location'], 'https://shop.example.com/shop/cart?item=1&x=%20y');
    assert.equal(res.headers['content-length'], '0');
    assert.equal(res.headers['connection'], undefined, 'no connection: close unless the client asked');
    assert.equal(await res.body.text(), '');
  });

  await t.test('a POST is redirected with 308 too, and the connection closes since its body was not read', async () => {
    const res = await request(`${base}/form?q`, { method: 'POST', body: 'a=1', headers: { host: 'example.com' } });
    assert.equal(res.statusCode, 308);
    assert.equal(res.headers['location'], 'https://example.com/form?q');
    assert.equal(res.headers['connection'], 'close');
    await res.body.text();
  });

  await t.test('host, port and scheme overrides, and 301', async () => {
    const res = await request(`${base}/old/page?id=7`, { headers: { host: 'example.com' } });
    assert.equal(res.statusCode, 301);
    assert.equal(res.headers['location'], 'https://new.example.com:8443/old/page?id=7');
    await res.body.text();
  });

  await t.test('the scheme\'s default port is not written; an IPv6 host keeps its brackets; the scheme defaults to the listener\'s', async () => {
    const a = await request(`${base}/default-port`, { headers: { host: 'example.com:9000' } });
    assert.equal(a.headers['location'], 'https://example.com/default-port');
    await a.body.text();
    const b = await request(`${base}/elsewhere/x`, { headers: { host: 'example.com' } });
    assert.equal(b.statusCode, 302);
    assert.equal(b.headers['location'], 'http://[::1]/elsewhere/x');
    await b.body.text();
  });

  await t.test('routes with a pool still proxy', async () => {
    const res = await request(`${base}/api/x`);
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'web');
  });

  await t.test('connection: close only when the client asks, keep-alive for an HTTP/1.0 client that asks', async () => {
    const closed = await raw(base, 'GET /a?b HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\nX-Request-Id: r1\r\n\r\n');
    assert.equal(closed.text, 'HTTP/1.1 308 Permanent Redirect\r\nlocation: https://example.com/a?b\r\ncontent-length: 0\r\nx-request-id: r1\r\nconnection: close\r\n\r\n');
    assert.equal(closed.closed, true);
    const kept = await raw(base, 'GET /a HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive\r\nX-Request-Id: r2\r\n\r\n', 300);
    assert.equal(kept.text, 'HTTP/1.1 308 Permanent Redirect\r\nlocation: https://example.com/a\r\ncontent-length: 0\r\nx-request-id: r2\r\nconnection: keep-alive\r\n\r\n');
    assert.equal(kept.closed, false);
    const pipelined = await raw(base, 'GET /1 HTTP/1.1\r\nHost: a.example\r\n\r\nGET /2 HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n');
    assert.match(pipelined.text, /^HTTP\/1\.1 308 [^]*location: https:\/\/a\.example\/1\r\n[^]*HTTP\/1\.1 308 [^]*location: https:\/\/b\.example\/2\r\n/);
  });

  await t.test('an HTTP/1.0 request without Host cannot be redirected: 400', async () => {
    const res = await raw(base, 'GET /x HTTP/1.0\r\n\r\n');
    assert.match(res.text, /^HTTP\/1\.1 400 /);
    assert.doesNotMatch(res.text, /location:/i);
  });

  await t.test('the access log shows the redirect status and route, and no pool', () => {
    const moved = records.find((record) => record.route === 'moved');
    assert.ok(moved !== undefined);
    assert.equal(moved.status, 301);
    assert.equal(moved.pool, undefined);
    assert.equal(moved.backend, undefined);
    assert.equal(moved.error, undefined);
    const toHttps = records.filter((record) => record.route === 'to-https');
    assert.ok(toHttps.length >= 2);
    assert.ok(toHttps.every((record) => record.status === 308 || record.status === 400));
    assert.equal(records.find((record) => record.route === 'api')?.status, 200);
  });
});
