import { test } from 'node:test';
import assert from 'node:assert/strict';
import { h2cRequestHeaders, responseHeaders } from '../../src/h2/headers.ts';
import { downstreamResponseHeaderLines, isUnderscoreLookalike, upstreamRequestHeaderLines } from '../../src/proxy/headers.ts';

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

// ---- underscore look-alikes (docs/http1.md "Underscores in field names") -------------------------

/** Every field usher treats specially that has a `-`, so an underscore spelling exists. */
const LOOKALIKES = [
  'Content_Length', 'Transfer_Encoding', 'Keep_Alive', 'Proxy_Connection', 'Proxy_Authenticate', 'Proxy_Authorization',
  'HTTP2_Settings', 'X_Forwarded_For', 'X_Forwarded_Proto', 'X_Forwarded_Host', 'X_Real_IP', 'X_Request_Id',
  // any case, and any mix of - and _
  'content_length', 'TRANSFER_ENCODING', 'x-forwarded_for', 'X_FORWARDED-HOST', 'x_real-ip',
];

test('upstream request headers: underscore look-alikes of special fields are dropped, in any case and mix', () => {
  for (const name of LOOKALIKES) {
    const lines = upstreamRequestHeaderLines(['Host', 'h', name, 'evil', 'Accept', '*/*'], [], info);
    assert.equal(
      lines,
      'Host: h\r\nAccept: */*\r\nx-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: http\r\nx-forwarded-host: h\r\nx-request-id: rid-1\r\n',
      name,
    );
    assert.ok(isUnderscoreLookalike(name), name);
  }
});

test('upstream request headers: other names with underscores pass, in order and case', () => {
  const raw = ['Host', 'h', 'X_Api_Key', 'k', 'tenant_id', '42', 'Content_Type', 'x', 'X_Forwarded_Port', '443', 'x_real_ipx', 'y', 'X_Request_Ids', 'z', 'Content__Length', 'w', '_', 'v'];
  assert.equal(
    upstreamRequestHeaderLines(raw, [], info),
    'Host: h\r\nX_Api_Key: k\r\ntenant_id: 42\r\nContent_Type: x\r\nX_Forwarded_Port: 443\r\nx_real_ipx: y\r\nX_Request_Ids: z\r\nContent__Length: w\r\n_: v\r\n' +
      'x-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: http\r\nx-forwarded-host: h\r\nx-request-id: rid-1\r\n',
  );
  for (let i = 0; i < raw.length; i += 2) assert.equal(isUnderscoreLookalike(raw[i]!), false, raw[i]);
  // The real spellings are the fields themselves, not look-alikes; X-Real-IP passes as sent.
  for (const name of ['Content-Length', 'X-Forwarded-For', 'x-real-ip', 'Host', 'TE']) assert.equal(isUnderscoreLookalike(name), false, name);
  assert.equal(upstreamRequestHeaderLines(['X-Real-IP', '1.2.3.4'], [], info), 'X-Real-IP: 1.2.3.4\r\nx-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: http\r\nx-request-id: rid-1\r\n');
});

test('upstream request headers: a look-alike X-Forwarded-For is not appended to', () => {
  const lines = upstreamRequestHeaderLines(['Host', 'h', 'X_Forwarded_For', '6.6.6.6', 'X-Forwarded-For', '1.1.1.1'], [], info);
  assert.equal(lines, 'Host: h\r\nx-forwarded-for: 1.1.1.1, 10.0.0.9\r\nx-forwarded-proto: http\r\nx-forwarded-host: h\r\nx-request-id: rid-1\r\n');
});

test('upstream request headers: HTTP2-Settings and the h2c Upgrade never go upstream', () => {
  const raw = ['Host', 'h', 'Connection', 'Upgrade, HTTP2-Settings', 'Upgrade', 'h2c', 'HTTP2-Settings', 'AAMAAABkAARAAAAAAAIAAAAA', 'http2-settings', 'x'];
  assert.equal(upstreamRequestHeaderLines(raw, ['upgrade', 'http2-settings'], info), 'Host: h\r\nx-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: http\r\nx-forwarded-host: h\r\nx-request-id: rid-1\r\n');
  // Not named by Connection either: still dropped.
  assert.equal(upstreamRequestHeaderLines(['HTTP2-Settings', 'x'], [], info), 'x-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: http\r\nx-request-id: rid-1\r\n');
});

test('downstream response headers: underscore names pass (only requests lose look-alikes)', () => {
  const raw = ['Content_Length', '5', 'X_Request_Id', 'r', 'HTTP2-Settings', 'x', 'Date', 'd'];
  assert.equal(downstreamResponseHeaderLines(raw, [], false), 'Content_Length: 5\r\nX_Request_Id: r\r\nDate: d\r\n');
});

// ---- the HTTP/2 side (src/h2/headers.ts) -----------------------------------------------------------

test('h2c upstream request headers: look-alikes and http2-settings dropped, other underscore names kept', () => {
  const raw = [':method', 'GET', ':path', '/', ':authority', 'a', 'transfer_encoding', 'chunked', 'x_forwarded_for', '6.6.6.6', 'http2-settings', 'x', 'x_api_key', 'k', 'content_length', '9'];
  const { list } = h2cRequestHeaders(raw, 'GET', '/', info);
  assert.deepEqual(list, [
    ':method', 'GET', ':scheme', 'http', ':authority', 'a', ':path', '/',
    'x_api_key', 'k',
    'x-forwarded-for', '10.0.0.9', 'x-forwarded-proto', 'http', 'x-forwarded-host', 'a', 'x-request-id', 'rid-1',
  ]);
});

test('h2 response headers: a 204 or 304 never carries Content-Length; HEAD keeps it', () => {
  const raw = ['Content-Length', '5', 'Transfer-Encoding', 'chunked', 'ETag', '"e"'];
  assert.deepEqual(responseHeaders(204, raw, [], true), [':status', '204', 'etag', '"e"']);
  assert.deepEqual(responseHeaders(304, raw, [], true), [':status', '304', 'etag', '"e"']);
  assert.deepEqual(responseHeaders(200, raw, [], true), [':status', '200', 'content-length', '5', 'etag', '"e"']);
  assert.deepEqual(responseHeaders(200, ['HTTP2-Settings', 'x', 'X', 'y'], [], false), [':status', '200', 'x', 'y']);
});
