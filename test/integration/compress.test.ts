/**
 * The `compress` filter against a real origin and real clients: each coding
 * round-trips, negotiation, the responses it must leave alone, ETag suffixes
 * and conditional requests, server-sent events flushed per event, HTTP/1.0
 * and HTTP/2 clients, and its metrics.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request, type ServerResponse } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { test, type TestContext } from 'node:test';
import zlib from 'node:zlib';
import type { Usher } from '../../src/runtime/usher.ts';
import { startOrigin, type Origin, type OriginHandler } from '../helpers/origin.ts';
import { mulberry32 } from '../helpers/prng.ts';
import { generateCertificate } from '../helpers/tls.ts';
import { send } from '../helpers/send.ts';
import { startUsher } from '../helpers/usher.ts';


function decode(coding: string | undefined, raw: Buffer): Buffer {
  switch (coding) {
    case 'gzip':
      return zlib.gunzipSync(raw);
    case 'br':
      return zlib.brotliDecompressSync(raw);
    case 'zstd':
      return zlib.zstdDecompressSync(raw);
    case undefined:
      return raw;
    default:
      throw new Error(`unexpected coding ${coding}`);
  }
}

/** 50 KiB of deterministic JSON. */
const JSON_BODY = (() => {
  const random = mulberry32(42);
  const rows: string[] = [];
  let length = 2;
  for (let i = 0; length < 50 * 1024; i++) {
    const row = JSON.stringify({ id: i, user: `user-${Math.floor(random() * 5000)}`, score: Math.floor(random() * 1e6), active: random() > 0.5 });
    rows.push(row);
    length += row.length + 1;
  }
  return Buffer.from(`[${rows.join(',')}]`.slice(0, 50 * 1024 - 1) + ']');
})();

/** Events the SSE test writes: set by the test, read by the origin. */
interface Sse {
  res?: ServerResponse;
  readonly opened: Promise<ServerResponse>;
  open(res: ServerResponse): void;
}

function sse(): Sse {
  let open!: (res: ServerResponse) => void;
  const opened = new Promise<ServerResponse>((resolve) => (open = resolve));
  return { opened, open };
}

const bodyHeaders = (type: string, body: Buffer, extra: Record<string, string> = {}) => ({ 'content-type': type, 'content-length': String(body.length), ...extra });

/** The origin's routes, by path. */
function handler(events: { current: Sse }) {
  return (req: import('node:http').IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    switch (path) {
      case '/json':
        res.writeHead(200, bodyHeaders('application/json', JSON_BODY, { etag: '"v1"', 'accept-ranges': 'bytes', 'content-digest': 'sha-256=:x:' })).end(JSON_BODY);
        return;
      case '/stream':
        // No Content-Length: chunked from the origin.
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.write(JSON_BODY.subarray(0, 20_000));
        setTimeout(() => res.end(JSON_BODY.subarray(20_000)), 5);
        return;
      case '/small': {
        const small = Buffer.from('{"ok":true}');
        res.writeHead(200, bodyHeaders('application/json', small)).end(small);
        return;
      }
      case '/png':
        res.writeHead(200, bodyHeaders('image/png', JSON_BODY)).end(JSON_BODY);
        return;
      case '/encoded': {
        const gz = zlib.gzipSync(JSON_BODY);
        res.writeHead(200, bodyHeaders('application/json', gz, { 'content-encoding': 'gzip' })).end(gz);
        return;
      }
      case '/no-transform':
        res.writeHead(200, bodyHeaders('application/json', JSON_BODY, { 'cache-control': 'public, no-transform' })).end(JSON_BODY);
        return;
      case '/etag':
        if (req.headers['if-none-match'] === '"v1"') {
          res.writeHead(304, { etag: '"v1"' }).end();
          return;
        }
        res.writeHead(200, bodyHeaders('application/json', JSON_BODY, { etag: '"v1"' })).end(JSON_BODY);
        return;
      case '/range': {
        const range = req.headers['range'];
        if (range === 'bytes=0-9' && (req.headers['if-range'] === undefined || req.headers['if-range'] === '"v1"')) {
          res.writeHead(206, { 'content-type': 'application/json', 'content-range': `bytes 0-9/${JSON_BODY.length}`, 'content-length': '10', etag: '"v1"' }).end(JSON_BODY.subarray(0, 10));
          return;
        }
        res.writeHead(200, bodyHeaders('application/json', JSON_BODY, { etag: '"v1"', 'accept-ranges': 'bytes' })).end(JSON_BODY);
        return;
      }
      case '/sse':
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.flushHeaders();
        events.current.open(res);
        return;
      default:
        res.writeHead(404).end();
    }
  };
}

interface Setup {
  readonly origin: Origin;
  readonly usher: Usher;
  readonly port: number;
  readonly events: { current: Sse };
}

/**
 * The CPU guard stops coding when the thread is saturated, as a loaded CI machine can make it: tests that
 * assert a coding turn it off (the guard itself is tested with an injected one, compress-guard.test.ts).
 */
const unguarded = (options: string): string => (options.includes('guard') ? options : options.replace(/^\{\s*/, '{ guard: false, ').replace(', }', ' }'));

async function setup(t: TestContext, options = '{}', extra = ''): Promise<Setup> {
  const events = { current: sse() };
  const origin = await startOrigin('o', handler(events));
  const usher = await startUsher(`listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
        filters:
          - compress: ${unguarded(options)}
${extra}pools:
  main:
    backends:
      - address: ${origin.address}
`);
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  return { origin, usher, port: usher.address('web').port, events };
}

test('gzip, br and zstd each round-trip a 50 KiB JSON body: Content-Encoding set, Content-Length gone, Vary, suffixed ETag, no Accept-Ranges or digest', async (t) => {
  const { port } = await setup(t);
  for (const coding of ['gzip', 'br', 'zstd']) {
    const reply = await send(port, '/json', { 'accept-encoding': coding });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['content-encoding'], coding);
    assert.equal(reply.headers['content-length'], undefined);
    assert.equal(reply.headers['vary'], 'Accept-Encoding');
    assert.equal(reply.headers['etag'], `"v1-${coding}"`);
    assert.equal(reply.headers['accept-ranges'], undefined);
    assert.equal(reply.headers['content-digest'], undefined);
    assert.ok(reply.raw.length < JSON_BODY.length / 2, `${coding}: ${reply.raw.length} bytes for ${JSON_BODY.length}`);
    assert.ok(decode(coding, reply.raw).equals(JSON_BODY), `${coding} decodes to the origin's bytes`);
  }
  // A body without Content-Length (chunked from the origin) is coded too.
  const stream = await send(port, '/stream', { 'accept-encoding': 'br' });
  assert.equal(stream.headers['content-encoding'], 'br');
  assert.ok(decode('br', stream.raw).equals(JSON_BODY));
});

test('negotiation: qvalues, *, identity;q=0, ties go to zstd; no Accept-Encoding is identity with Vary', async (t) => {
  const { port } = await setup(t);
  const cases: [string | undefined, string | undefined][] = [
    ['gzip, deflate, br, zstd', 'zstd'],
    ['gzip, br', 'br'],
    ['gzip;q=1, br;q=0.5, zstd;q=0.1', 'gzip'],
    ['zstd;q=0, br;q=0.2, gzip;q=0.2', 'br'],
    ['*', 'zstd'],
    ['*;q=0.5, zstd;q=0, br;q=0', 'gzip'],
    ['identity;q=0, gzip', 'gzip'],
    ['identity', undefined],
    ['deflate', undefined],
    [undefined, undefined],
  ];
  for (const [accept, expected] of cases) {
    const reply = await send(port, '/json', accept === undefined ? {} : { 'accept-encoding': accept });
    assert.equal(reply.headers['content-encoding'], expected, `Accept-Encoding: ${accept}`);
    assert.equal(reply.headers['vary'], 'Accept-Encoding', `Vary for ${accept}`);
    assert.ok(decode(expected, reply.raw).equals(JSON_BODY));
    if (expected === undefined) {
      assert.equal(reply.headers['content-length'], String(JSON_BODY.length), 'identity keeps its length');
      assert.equal(reply.headers['etag'], '"v1"');
    }
  }
  // The route's own order decides ties.
  const { port: ordered } = await setup(t, '{ codings: [gzip, br] }');
  assert.equal((await send(ordered, '/json', { 'accept-encoding': 'zstd, br, gzip' })).headers['content-encoding'], 'gzip');
});

test('left alone: small bodies, images, already encoded, no-transform, HEAD, 304, 206 and Range requests', async (t) => {
  const { port } = await setup(t);
  const ae = { 'accept-encoding': 'gzip, br, zstd' };
  const small = await send(port, '/small', ae);
  assert.equal(small.headers['content-encoding'], undefined);
  assert.equal(small.headers['content-length'], '11');
  assert.equal(small.headers['vary'], 'Accept-Encoding', 'a bigger body of the same resource could be coded');
  const png = await send(port, '/png', ae);
  assert.equal(png.headers['content-encoding'], undefined);
  assert.equal(png.headers['vary'], undefined);
  assert.ok(png.raw.equals(JSON_BODY));
  const encoded = await send(port, '/encoded', ae);
  assert.equal(encoded.headers['content-encoding'], 'gzip');
  assert.ok(zlib.gunzipSync(encoded.raw).equals(JSON_BODY), 'coded once, by the origin');
  const noTransform = await send(port, '/no-transform', ae);
  assert.equal(noTransform.headers['content-encoding'], undefined);
  assert.ok(noTransform.raw.equals(JSON_BODY));
  const head = await send(port, '/json', ae, 'HEAD');
  assert.equal(head.headers['content-encoding'], undefined);
  assert.equal(head.headers['content-length'], String(JSON_BODY.length));
  assert.equal(head.headers['vary'], 'Accept-Encoding');
  const notModified = await send(port, '/etag', { ...ae, 'if-none-match': '"v1"' });
  assert.equal(notModified.status, 304);
  assert.equal(notModified.headers['content-encoding'], undefined);
  assert.equal(notModified.headers['vary'], 'Accept-Encoding', 'a 304 carries the Vary of the 200');
  const partial = await send(port, '/range', { ...ae, range: 'bytes=0-9' });
  assert.equal(partial.status, 206);
  assert.equal(partial.headers['content-encoding'], undefined);
  assert.ok(partial.raw.equals(JSON_BODY.subarray(0, 10)));
  // A Range request answered in full (the range is ignored) is not coded either.
  const full = await send(port, '/range', { ...ae, range: 'bytes=0-9', 'if-range': '"other"' });
  assert.equal(full.status, 200);
  assert.equal(full.headers['content-encoding'], undefined);
  assert.equal(full.headers['accept-ranges'], 'bytes');
});

test('validators: a suffixed ETag revalidates at the origin with its own tag and the client gets its tag back; If-Range is passed untouched', async (t) => {
  const { origin, port } = await setup(t);
  const first = await send(port, '/etag', { 'accept-encoding': 'gzip' });
  assert.equal(first.headers['etag'], '"v1-gzip"');
  const revalidated = await send(port, '/etag', { 'accept-encoding': 'gzip', 'if-none-match': '"v1-gzip"' });
  assert.equal(revalidated.status, 304, 'the origin matched the unsuffixed tag');
  assert.equal(origin.seen.at(-1)!.headers['if-none-match'], '"v1"');
  assert.equal(revalidated.headers['etag'], '"v1-gzip"', 'the 304 names the representation the client holds');
  assert.equal(revalidated.headers['vary'], 'Accept-Encoding');
  const identity = await send(port, '/etag', { 'if-none-match': '"v1"' });
  assert.equal(identity.status, 304);
  assert.equal(identity.headers['etag'], '"v1"');
  // If-Match is unsuffixed too (the origin here ignores it; what it received is what counts).
  await send(port, '/json', { 'accept-encoding': 'br', 'if-match': '"v1-br", "x"' });
  assert.equal(origin.seen.at(-1)!.headers['if-match'], '"v1", "x"');
  // If-Range keeps the suffix: the origin must not match it, and sends the whole identity body.
  const ranged = await send(port, '/range', { 'accept-encoding': 'gzip', range: 'bytes=0-9', 'if-range': '"v1-gzip"' });
  assert.equal(origin.seen.at(-1)!.headers['if-range'], '"v1-gzip"');
  assert.equal(ranged.status, 200);
  assert.ok(ranged.raw.equals(JSON_BODY));
});

test('server-sent events: each event reaches the client, decoded, within 50 ms of the origin writing it, while the response is open', async (t) => {
  const { port, events } = await setup(t);
  for (const coding of ['gzip', 'br', 'zstd']) {
    events.current = sse();
    const response = new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/sse', headers: { 'accept-encoding': coding }, agent: false }, resolve);
      req.on('error', reject);
      req.end();
      t.after(() => req.destroy());
    });
    const res = await response;
    const origin = await events.current.opened;
    assert.equal(res.headers['content-encoding'], coding);
    const decoder = coding === 'gzip' ? zlib.createGunzip() : coding === 'br' ? zlib.createBrotliDecompress() : zlib.createZstdDecompress();
    res.pipe(decoder);
    let text = '';
    decoder.setEncoding('utf8');
    decoder.on('data', (chunk: string) => (text += chunk));
    decoder.on('error', () => {});
    for (const n of [1, 2, 3]) {
      const event = `id: ${n}\ndata: ${'x'.repeat(40)} ${n}\n\n`;
      const written = performance.now();
      origin.write(event);
      // A deadline, not a sleep: resolves as soon as the event is decoded.
      const elapsed = await new Promise<number>((resolve, reject) => {
        const deadline = setTimeout(() => reject(new Error(`${coding}: event ${n} not decoded within 1 s (got ${JSON.stringify(text)})`)), 1000);
        const check = (): void => {
          if (!text.includes(event)) return;
          clearTimeout(deadline);
          decoder.off('data', check);
          resolve(performance.now() - written);
        };
        decoder.on('data', check);
        check();
      });
      assert.ok(elapsed < 50, `${coding}: event ${n} took ${elapsed.toFixed(1)} ms`);
    }
    assert.equal(res.complete, false, 'the response is still open');
    origin.end();
    await once(decoder, 'end');
  }
});

test('an HTTP/1.0 client gets a close-delimited coded body', async (t) => {
  const { port } = await setup(t);
  const socket = connect(port, '127.0.0.1');
  socket.write('GET /json HTTP/1.0\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n');
  const parts: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => parts.push(chunk));
  await once(socket, 'close');
  const all = Buffer.concat(parts);
  const split = all.indexOf('\r\n\r\n');
  const head = all.subarray(0, split).toString('latin1');
  assert.match(head, /^HTTP\/1\.[01] 200/);
  assert.match(head, /\r\ncontent-encoding: gzip\r\n/i);
  assert.doesNotMatch(head, /content-length|transfer-encoding/i);
  assert.ok(zlib.gunzipSync(all.subarray(split + 4)).equals(JSON_BODY));
});

test('an HTTP/2 client over the https listener gets coded DATA frames; metrics count codings, skips and bytes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'usher-compress-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const certificate = generateCertificate(['compress.test']);
  writeFileSync(join(dir, 'cert.pem'), certificate.cert);
  writeFileSync(join(dir, 'key.pem'), certificate.key);
  const { usher, port } = await setup(
    t,
    '{}',
    `  - name: secure
    bind: 127.0.0.1:0
    protocol: https
    tls:
      certificates:
        - { cert: ${join(dir, 'cert.pem')}, key: ${join(dir, 'key.pem')} }
      alpn: [h2, http/1.1]
    routes:
      - pool: main
        filters:
          - compress: { guard: false }
admin: { bind: 127.0.0.1:0 }
`,
  );
  const session = h2connect(`https://127.0.0.1:${usher.address('secure').port}`, { ca: certificate.cert, servername: 'compress.test' });
  session.on('error', () => {});
  t.after(() => session.destroy());
  const stream = session.request({ ':path': '/json', 'accept-encoding': 'br;q=1, gzip;q=0.5' });
  const [headers] = (await once(stream, 'response')) as [Record<string, string>];
  const parts: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => parts.push(chunk));
  await once(stream, 'end');
  assert.equal(headers[':status'], 200);
  assert.equal(headers['content-encoding'], 'br');
  assert.equal(headers['content-length'], undefined);
  assert.equal(headers['vary'], 'Accept-Encoding');
  assert.ok(decode('br', Buffer.concat(parts)).equals(JSON_BODY));

  await send(port, '/png', { 'accept-encoding': 'gzip' });
  const metrics = await (await fetch(`${usher.adminUrl!}/metrics`)).text();
  assert.match(metrics, /usher_compress_responses_total\{coding="br"\} [1-9]/);
  assert.match(metrics, /usher_compress_responses_total\{coding="identity",reason="type"\} [1-9]/);
  const bytes = (direction: string) => Number(new RegExp(`usher_compress_bytes_total\\{direction="${direction}"\\} (\\d+)`).exec(metrics)?.[1]);
  assert.ok(bytes('in') >= JSON_BODY.length && bytes('out') > 0 && bytes('out') < bytes('in'), `in ${bytes('in')}, out ${bytes('out')}`);
  assert.match(metrics, /usher_compress_guard_steps_total\{direction="down"\} \d+/);
});

test('cache listed before compress stores the coded variants per Accept-Encoding and serves them without the origin', async (t) => {
  const origin = await startOrigin('o', (req, res) => {
    res.writeHead(200, bodyHeaders('application/json', JSON_BODY, { 'cache-control': 'max-age=60', etag: '"v1"' })).end(JSON_BODY);
  });
  const usher = await startUsher(`listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
        filters:
          - cache: {}
          - compress: { guard: false }
pools:
  main:
    backends:
      - address: ${origin.address}
`);
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  const port = usher.address('web').port;
  for (const round of [1, 2]) {
    for (const coding of ['gzip', 'br', undefined]) {
      const reply = await send(port, '/c', coding === undefined ? {} : { 'accept-encoding': coding });
      assert.equal(reply.headers['content-encoding'], coding, `round ${round}, ${coding}`);
      assert.ok(decode(coding, reply.raw).equals(JSON_BODY));
      if (round === 2) assert.match(String(reply.headers['cache-status']), /hit/, `round 2 is a hit (${coding})`);
    }
  }
  assert.equal(origin.seen.length, 3, 'one fill per coding');
});

/** An origin and usher with `compress` listed before `cache` on one route (the guard off), and an admin API. */
async function compressBeforeCache(t: TestContext, handler: OriginHandler): Promise<{ origin: Origin; usher: Usher; port: number }> {
  const origin = await startOrigin('o', handler);
  const usher = await startUsher(`admin: { bind: 127.0.0.1:0 }
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
        filters:
          - compress: { guard: false }
          - cache: {}
pools:
  main:
    backends:
      - address: ${origin.address}
`);
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  return { origin, usher, port: usher.address('web').port };
}

test('compress listed before cache: the identity body is stored once, each coding is made once and kept with it, and a purge removes both', async (t) => {
  const { origin, usher, port } = await compressBeforeCache(t, (req, res) => {
    res.writeHead(200, bodyHeaders('application/json', JSON_BODY, { 'cache-control': 'max-age=60', etag: '"v1"', 'surrogate-key': 'json' })).end(JSON_BODY);
  });
  const reused = (metrics: string): number => Number(/usher_compress_reused_total (\d+)/.exec(metrics)?.[1] ?? 'NaN');
  const admin = usher.adminUrl!;
  const metrics = async (): Promise<string> => (await fetch(`${admin}/metrics`)).text();
  const before = reused(await metrics());
  for (const round of [1, 2, 3]) {
    for (const coding of ['gzip', 'br', undefined]) {
      const reply = await send(port, '/c', coding === undefined ? {} : { 'accept-encoding': coding });
      assert.equal(reply.headers['content-encoding'], coding, `round ${round}, ${coding}`);
      assert.ok(decode(coding, reply.raw).equals(JSON_BODY), `round ${round}, ${coding}: the body decodes to the origin's`);
      assert.equal(reply.headers['etag'], coding === undefined ? '"v1"' : `"v1-${coding}"`);
      if (round > 1) assert.match(String(reply.headers['cache-status']), /hit/, `round ${round} is a hit (${coding})`);
    }
  }
  assert.equal(origin.seen.length, 1, 'one fill for every coding: the cache holds the identity body');
  // gzip is coded on the miss (streamed) and once more on its first hit, which keeps it; br once, on its
  // first hit. Every later hit reuses: br in rounds 2 and 3, gzip in round 3.
  assert.equal(reused(await metrics()) - before, 3, 'each coding is made once for the store, then taken from it');
  const purge = await fetch(`${admin}/api/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tag: 'json' }) });
  assert.equal(purge.status, 200);
  const after = await send(port, '/c', { 'accept-encoding': 'gzip' });
  assert.match(String(after.headers['cache-status']), /fwd=uri-miss/, 'the purge by tag removed the stored response');
  const stats = (await (await fetch(`${admin}/api/cache`)).json()) as { entries: number };
  assert.equal(stats.entries, 1, 'and the coded bodies kept with it: only the new fill is stored');
});

test('a large cache hit is sent uncoded while its coding is made on the thread pool, then coded from the store', async (t) => {
  const large = Buffer.from(JSON.stringify(Array.from({ length: 6000 }, (_, i) => ({ id: i, name: `item-${i}`, price: (i * 7919) % 1000 }))));
  assert.ok(large.length >= 128 * 1024, `a body past the thread-pool threshold (${large.length})`);
  const { origin, port } = await compressBeforeCache(t, (req, res) => {
    res.writeHead(200, bodyHeaders('application/json', large, { 'cache-control': 'max-age=60' })).end(large);
  });
  const miss = await send(port, '/big', { 'accept-encoding': 'br' });
  assert.equal(miss.headers['content-encoding'], 'br', 'the miss is coded as it streams');
  const first = await send(port, '/big', { 'accept-encoding': 'br' });
  assert.match(String(first.headers['cache-status']), /hit/);
  assert.equal(first.headers['content-encoding'], undefined, 'the first hit does not wait for the thread pool');
  assert.ok(first.raw.equals(large));
  const deadline = Date.now() + 10_000;
  let coded: Awaited<ReturnType<typeof send>> | undefined;
  while (Date.now() < deadline) {
    const reply = await send(port, '/big', { 'accept-encoding': 'br' });
    if (reply.headers['content-encoding'] === 'br') {
      coded = reply;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(coded !== undefined, 'a later hit is coded, from the store');
  assert.ok(decode('br', coded.raw).equals(large));
  assert.ok(coded.raw.length < large.length / 2);
  assert.equal(origin.seen.length, 1);
});

test('a body the backend coded is decoded for a client that refuses its coding, and passed coded to one that accepts it or sent no Accept-Encoding', async (t) => {
  const { port } = await setup(t);
  const identityOnly = await send(port, '/encoded', { 'accept-encoding': 'identity' });
  assert.equal(identityOnly.headers['content-encoding'], undefined);
  assert.equal(identityOnly.headers['content-length'], undefined, 'the decoded length is not known in advance');
  assert.ok(identityOnly.raw.equals(JSON_BODY), 'decoded to the original bytes');
  const refusesGzip = await send(port, '/encoded', { 'accept-encoding': 'br;q=1, gzip;q=0' });
  assert.equal(refusesGzip.headers['content-encoding'], undefined);
  assert.ok(refusesGzip.raw.equals(JSON_BODY));
  const acceptsGzip = await send(port, '/encoded', { 'accept-encoding': 'gzip' });
  assert.equal(acceptsGzip.headers['content-encoding'], 'gzip');
  assert.ok(zlib.gunzipSync(acceptsGzip.raw).equals(JSON_BODY));
  const noHeader = await send(port, '/encoded');
  assert.equal(noHeader.headers['content-encoding'], 'gzip', 'no Accept-Encoding: any coding is acceptable (RFC 9110 §12.5.3)');
});
