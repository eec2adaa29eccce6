/**
 * Upstream connections read into a buffer they reuse when the bytes of the
 * last read have left (upstream/connection.ts, "Read buffers"). These tests
 * move large bodies of distinct random bytes through usher to fast, slow
 * and HTTP/1.0 clients (HTTP/2 clients never share read buffers), several at once on kept-alive upstream
 * connections, and compare digests: a buffer read into while its bytes were
 * still queued for a client would corrupt some body.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { request, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { startOrigin } from '../helpers/origin.ts';
import { simpleYaml, startUsher } from '../helpers/usher.ts';

const BODIES = Array.from({ length: 6 }, (_, i) => randomBytes(256 * 1024 + i * 9973));
const digest = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** An origin that answers `/n` with body n, in writes of uneven sizes; `?chunked` drops the length. */
async function bodiesOrigin() {
  return startOrigin('bodies', (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const body = BODIES[Number(url.pathname.slice(1))]!;
    if (!url.searchParams.has('chunked')) res.setHeader('content-length', body.length);
    let at = 0;
    let step = 1;
    const next = (): void => {
      while (at < body.length) {
        const size = Math.min(body.length - at, 1000 + ((step++ * 7919) % 90_000));
        const more = res.write(body.subarray(at, at + size));
        at += size;
        if (!more) {
          res.once('drain', next);
          return;
        }
      }
      res.end();
    };
    next();
  });
}

function get(port: number, path: string, slow: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res: IncomingMessage) => {
      const parts: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        parts.push(chunk);
        if (slow) {
          res.pause();
          setTimeout(() => res.resume(), 2);
        }
      });
      res.on('end', () => resolve(digest(Buffer.concat(parts))));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

/** A raw HTTP/1.0 request: usher sends the payload and closes (a chunked upstream body is unframed on the way). */
async function get10(port: number, path: string): Promise<string> {
  const socket: Socket = connect(port, '127.0.0.1');
  socket.write(`GET ${path} HTTP/1.0\r\nhost: x\r\n\r\n`);
  const parts: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => parts.push(chunk));
  await once(socket, 'end');
  const raw = Buffer.concat(parts);
  return digest(raw.subarray(raw.indexOf('\r\n\r\n') + 4));
}

test('large bodies reach fast, slow, and HTTP/1.0 clients intact while upstream connections reuse their read buffers', async (t) => {
  const origin = await bodiesOrigin();
  const usher = await startUsher(simpleYaml([origin.address]));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  const port = usher.address('web').port;
  const jobs: Promise<[string, string]>[] = [];
  for (let round = 0; round < 3; round++) {
    BODIES.forEach((body, i) => {
      const want = digest(body);
      const path = round === 1 ? `/${i}?chunked` : `/${i}`;
      jobs.push(get(port, path, false).then((got) => [got, want]));
      jobs.push(get(port, path, true).then((got) => [got, want]));
      jobs.push(get10(port, path).then((got) => [got, want]));
    });
  }
  const results = await Promise.all(jobs);
  const bad = results.filter(([got, want]) => got !== want).length;
  assert.equal(bad, 0, `${bad} of ${results.length} bodies arrived different from what the origin sent`);
  assert.ok(origin.connections < results.length, 'upstream connections were kept alive and reused');
});

test('a tcp listener moves large random streams to fast and slow clients intact while it reuses its read buffers', async (t) => {
  // Larger than the kernel buffers between usher and a slow reader, so some writes must queue in usher.
  const payload = randomBytes(24 * 1024 * 1024 + 12345);
  const { createServer } = await import('node:net');
  const server = createServer((socket) => {
    socket.on('error', () => {});
    // Uneven writes, so reads come in every size.
    let at = 0;
    let step = 1;
    const next = (): void => {
      while (at < payload.length) {
        const size = Math.min(payload.length - at, 500 + ((step++ * 7919) % 120_000));
        const more = socket.write(payload.subarray(at, at + size));
        at += size;
        if (!more) {
          socket.once('drain', next);
          return;
        }
      }
      socket.end();
    };
    next();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const origin = `127.0.0.1:${(server.address() as { port: number }).port}`;
  const usher = await startUsher(`listeners:
  - name: tcp
    bind: 127.0.0.1:0
    protocol: tcp
    routes:
      - pool: raw
pools:
  raw:
    backends:
      - address: ${origin}
`);
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    server.close();
  });
  const port = usher.address('tcp').port;
  const read = (slow: boolean): Promise<string> =>
    new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      const parts: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => {
        parts.push(chunk);
        if (slow) {
          socket.pause();
          setTimeout(() => socket.resume(), 2);
        }
      });
      socket.on('end', () => resolve(digest(Buffer.concat(parts))));
      socket.on('error', reject);
    });
  const want = digest(payload);
  const got = await Promise.all([read(false), read(true), read(false), read(true)]);
  assert.deepEqual(got, [want, want, want, want]);
});
