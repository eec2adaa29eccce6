import { test } from 'node:test';
import assert from 'node:assert/strict';
import { downstreamResponseHeaderLines, upstreamRequestHeaderLines } from '../../src/proxy/headers.ts';

const info = { clientIp: '10.0.0.9', proto: 'http', requestId: 'rid-1' };

test('upstream request headers: hop-by-hop and framing removed in any case, X-Forwarded-* rewritten', () => {
  const raw = [
    'Host', 'a.example',
    'CONNECTION', 'keep-alive, X-Secret',
    'X-Secret', 'no',
    'Keep-Alive', 'timeout=5',
    'TE', 'trailers',
    'Trailer', 'x',
    'Upgrade', 'h2c',
    'Proxy-Connection', 'keep-alive',
    'Proxy-Authorization', 'Basic x',
    'Proxy-Authenticate', 'Basic',
    'Content-Length', '5',
    'Transfer-Encoding', 'chunked',
    'X-Forwarded-For', '1.1.1.1',
    'x-forwarded-for', '2.2.2.2',
    'X-Forwarded-Proto', 'https',
    'X-FORWARDED-HOST', 'evil',
    'X-Forwarded-Port', '443',
    'User-Agent', 'ua',
    'X-Request-ID', 'client-id',
  ];
  const lines = upstreamRequestHeaderLines(raw, ['keep-alive', 'x-secret'], info);
  assert.equal(
    lines,
    'Host: a.example\r\nX-Forwarded-Port: 443\r\nUser-Agent: ua\r\n' +
      'x-forwarded-for: 1.1.1.1, 2.2.2.2, 10.0.0.9\r\nx-forwarded-proto: http\r\nx-forwarded-host: a.example\r\nx-request-id: rid-1\r\n',
  );
});

test('upstream request headers: a Connection token can name X-Forwarded-For, which is then not trusted', () => {
  const lines = upstreamRequestHeaderLines(['host', 'h', 'Connection', 'x-forwarded-for', 'X-Forwarded-For', '1.1.1.1'], ['x-forwarded-for'], info);
  assert.equal(lines, 'host: h\r\nx-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: http\r\nx-forwarded-host: h\r\nx-request-id: rid-1\r\n');
});

test('downstream response headers: hop-by-hop removed in any case, Content-Length kept once only when asked', () => {
  const raw = ['Server', 'nginx', 'X-Request-Id', 'backend-echo', 'Connection', 'close, X-Hop', 'x-hop', '1', 'Content-Length', '3', 'content-length', '3', 'Transfer-Encoding', 'chunked', 'Date', 'd'];
  assert.equal(downstreamResponseHeaderLines(raw, ['close', 'x-hop'], false), 'Server: nginx\r\nDate: d\r\n');
  assert.equal(downstreamResponseHeaderLines(raw, ['close', 'x-hop'], true), 'Server: nginx\r\nContent-Length: 3\r\nDate: d\r\n');
});
