/**
 * Listener limits and client timeouts (`listeners[].limits`, `listeners[].timeouts`):
 * for each one, a config that sets it low, a request that exceeds it (status,
 * `x-usher-error`, connection closed, access log line) and one just within it
 * (served). Every client here is a raw socket, so the bytes on the wire are
 * exactly what the test wrote and exactly what usher answered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startOrigin, type Origin, type OriginHandler } from '../helpers/origin.ts';
import { startUsher } from '../helpers/usher.ts';
import type { Usher } from '../../src/runtime/usher.ts';
import { waitFor as until } from '../helpers/wait.ts';

// ---- a raw HTTP/1.1 client -------------------------------------------------------

interface RawResponse {
  readonly status: number;
  /** Lowercased name → values, in order. */
  readonly headers: ReadonlyMap<string, readonly string[]>;
  readonly body: Buffer;
}

/** One header value (the last), or undefined. */
function header(response: RawResponse, name: string): string | undefined {
  return response.headers.get(name)?.at(-1);
}

/**
 * Complete responses in `data` (interim 1xx skipped), framed by Content-Length,
 * chunked, or the close of the connection (`closed`). Throws on anything malformed.
 */
function parseResponses(data: Buffer, closed: boolean): RawResponse[] {
  const responses: RawResponse[] = [];
  let p = 0;
  while (p < data.length) {
    const headEnd = data.indexOf('\r\n\r\n', p, 'latin1');
    if (headEnd < 0) break;
    const lines = data.subarray(p, headEnd).toString('latin1').split('\r\n');
    const statusLine = /^HTTP\/1\.1 (\d{3}) [^\r\n]*$/.exec(lines[0]!);
    if (statusLine === null) throw new Error(`malformed status line ${JSON.stringify(lines[0])}`);
    const status = Number(statusLine[1]);
    const headers = new Map<string, string[]>();
    for (const line of lines.slice(1)) {
      const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/.exec(line);
      if (m === null) throw new Error(`malformed header line ${JSON.stringify(line)}`);
      const name = m[1]!.toLowerCase();
      headers.set(name, [...(headers.get(name) ?? []), m[2]!]);
    }
    const bodyStart = headEnd + 4;
    if (status < 200) {
      p = bodyStart;
      continue;
    }
    const length = headers.get('content-length');
    const chunked = headers.get('transfer-encoding')?.at(-1)?.toLowerCase() === 'chunked';
    if (length !== undefined) {
      const n = Number(length[0]);
      if (bodyStart + n > data.length) break;
      responses.push({ status, headers, body: data.subarray(bodyStart, bodyStart + n) });
      p = bodyStart + n;
    } else if (chunked) {
      const parts: Buffer[] = [];
      let q = bodyStart;
      let done = false;
      for (;;) {
        const lineEnd = data.indexOf('\r\n', q, 'latin1');
        if (lineEnd < 0) break;
        const size = parseInt(data.subarray(q, lineEnd).toString('latin1').split(';')[0]!, 16);
        if (Number.isNaN(size)) throw new Error('malformed chunk size');
        if (size === 0) {
          const end = data.indexOf('\r\n\r\n', lineEnd, 'latin1');
          if (end === lineEnd) q = lineEnd + 4;
          else if (end < 0) break;
          else q = end + 4;
          done = true;
          break;
        }
        if (lineEnd + 2 + size + 2 > data.length) break;
        parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
        q = lineEnd + 2 + size + 2;
      }
      if (!done) break;
      responses.push({ status, headers, body: Buffer.concat(parts) });
      p = q;
    } else {
      if (!closed) break;
      responses.push({ status, headers, body: data.subarray(bodyStart) });
      p = data.length;
    }
  }
  return responses;
}

/** A client connection that records every byte it receives and when it closed. */
class RawClient {
  readonly socket: Socket;
  #chunks: Buffer[] = [];
  #received = 0;
  #data = Buffer.alloc(0);
  #parsed: { bytes: number; closed: boolean; responses: RawResponse[] } | undefined;
  /** The server sent FIN (or reset): nothing more will arrive. */
  closed = false;
  closedAt = 0;
  reset = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#received += chunk.length;
    });
    socket.on('error', () => (this.reset = true));
    const onGone = (): void => {
      if (this.closed) return;
      this.closed = true;
      this.closedAt = performance.now();
    };
    socket.on('end', onGone);
    socket.on('close', onGone);
  }

  static async open(usher: Usher): Promise<RawClient> {
    const socket = connect(usher.address('web').port, '127.0.0.1');
    const client = new RawClient(socket);
    await once(socket, 'connect');
    return client;
  }

  send(bytes: string | Buffer): void {
    this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  /** Every byte received so far. */
  get data(): Buffer {
    if (this.#chunks.length > 0) {
      this.#data = Buffer.concat([this.#data, ...this.#chunks]);
      this.#chunks = [];
    }
    return this.#data;
  }

  /** Bytes received so far, without copying them. */
  get received(): number {
    return this.#received;
  }

  responses(): RawResponse[] {
    const cached = this.#parsed;
    if (cached !== undefined && cached.bytes === this.#received && cached.closed === this.closed) return cached.responses;
    const responses = parseResponses(this.data, this.closed);
    this.#parsed = { bytes: this.#received, closed: this.closed, responses };
    return responses;
  }

  /** Waits for the `n`-th response (from 1) and returns it. */
  async response(n = 1, timeoutMs = 5000): Promise<RawResponse> {
    await until(() => this.responses().length >= n || (this.closed && this.responses().length < n), `response ${n}`, timeoutMs);
    const response = this.responses()[n - 1];
    if (response === undefined) throw new Error(`connection closed after ${this.responses().length} responses: ${this.data.toString('latin1').slice(0, 300)}`);
    return response;
  }

  async waitClosed(timeoutMs = 5000): Promise<number> {
    await until(() => this.closed, 'the connection to close', timeoutMs);
    return this.closedAt;
  }

  destroy(): void {
    this.socket.destroy();
  }
}


const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---- a usher per test, with an access log file ---------------------------------------

interface AccessLine {
  readonly status: number;
  readonly method: string;
  readonly path: string;
  readonly error?: string;
}

interface Setup {
  readonly usher: Usher;
  readonly origin: Origin;
  readonly logPath: string;
  /** Every access log line written so far. */
  log(): AccessLine[];
  /** Polls the access log until a line matches; returns it. */
  logLine(match: (line: AccessLine) => boolean, what: string): Promise<AccessLine>;
}

async function setup(t: { after(fn: () => Promise<void> | void): void }, listener: string, handler?: OriginHandler): Promise<Setup> {
  const origin = await startOrigin('o', handler);
  const dir = mkdtempSync(join(tmpdir(), 'usher-limits-'));
  const logPath = join(dir, 'access.log');
  const usher = await startUsher(`listeners:
  - name: web
    bind: 127.0.0.1:0
${listener}
    routes:
      - pool: main
pools:
  main:
    backends:
      - address: ${origin.address}
accessLog: { path: ${JSON.stringify(logPath)} }
`);
  t.after(async () => {
    await usher.stop({ timeoutMs: 200 });
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const log = (): AccessLine[] => {
    let text = '';
    try {
      text = readFileSync(logPath, 'utf8');
    } catch {
      return [];
    }
    return text
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as AccessLine);
  };
  return {
    usher,
    origin,
    logPath,
    log,
    async logLine(match, what) {
      let found: AccessLine | undefined;
      try {
        await until(() => (found = log().find(match)) !== undefined, `an access log line with ${what}`, 3000);
      } catch (err) {
        throw new Error(`${(err as Error).message}; the log has ${JSON.stringify(log())}`);
      }
      return found!;
    },
  };
}

/** An origin handler that counts requests whose body arrived completely, and their sizes. */
function bodyRecorder(): { handler: OriginHandler; complete: number[]; aborted: () => number } {
  const complete: number[] = [];
  let aborted = 0;
  const handler: OriginHandler = (req: IncomingMessage, res: ServerResponse) => {
    let size = 0;
    let ended = false;
    req.on('data', (chunk: Buffer) => (size += chunk.length));
    req.on('end', () => {
      ended = true;
      complete.push(size);
      res.writeHead(200, { 'content-type': 'text/plain' }).end(String(size));
    });
    req.on('close', () => {
      if (!ended) aborted++;
    });
  };
  return { handler, complete, aborted: () => aborted };
}

const get = (path = '/', extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: usher.test\r\n${extra}\r\n`;

/** Asserts a usher rejection: status, reason, `connection: close` and the connection closed. */
async function assertRejected(client: RawClient, status: number, reason: string): Promise<void> {
  const response = await client.response();
  assert.equal(response.status, status, `status; got ${client.data.toString('latin1').slice(0, 200)}`);
  assert.equal(header(response, 'x-usher-error'), reason);
  assert.equal(header(response, 'connection'), 'close');
  await client.waitClosed(3000);
}

// ---- head size limits ------------------------------------------------------------------

/** A GET whose head is exactly `size` bytes, padded in one header. */
function headOfSize(size: number): string {
  const base = get('/', 'X-Pad: \r\n');
  assert.ok(size >= base.length);
  return get('/', `X-Pad: ${'a'.repeat(size - base.length)}\r\n`);
}

test('maxHeaderBytes: a head of exactly the limit is served, one byte more is 431 and closes', async (t) => {
  const s = await setup(t, '    limits: { maxHeaderBytes: 1KiB, maxUriBytes: 256B }');
  const within = await RawClient.open(s.usher);
  t.after(() => within.destroy());
  const exact = headOfSize(1024);
  assert.equal(exact.length, 1024);
  within.send(exact);
  const ok = await within.response();
  assert.equal(ok.status, 200);
  assert.equal(within.closed, false, 'a request within the limit keeps the connection');

  const over = await RawClient.open(s.usher);
  t.after(() => over.destroy());
  over.send(headOfSize(1025));
  await assertRejected(over, 431, 'http1_head_too_large');
  assert.equal(s.origin.seen.length, 1, 'the oversized head never reached the backend');
  const line = await s.logLine((l) => l.status === 431, 'status 431');
  assert.equal(line.error, 'http1_head_too_large');
});

test('maxHeaderBytes: an unfinished head is answered 431 as soon as it passes the limit, not at the header timeout', async (t) => {
  const s = await setup(t, '    limits: { maxHeaderBytes: 1KiB, maxUriBytes: 256B }\n    timeouts: { header: 10s }');
  const client = await RawClient.open(s.usher);
  t.after(() => client.destroy());
  const started = performance.now();
  client.send(`GET / HTTP/1.1\r\nHost: usher.test\r\nX-Pad: ${'a'.repeat(1100)}`);
  await assertRejected(client, 431, 'http1_head_too_large');
  const elapsed = performance.now() - started;
  t.diagnostic(`431 after ${elapsed.toFixed(0)} ms`);
  assert.ok(elapsed < 2000, `answered after ${elapsed.toFixed(0)} ms (header timeout is 10 s)`);
  assert.equal(s.origin.seen.length, 0);
  await s.logLine((l) => l.status === 431, 'status 431');
});

test('maxHeaders: exactly the limit of header fields is served, one more is 431 and closes', async (t) => {
  const s = await setup(t, '    limits: { maxHeaders: 10 }');
  const fields = (n: number): string => Array.from({ length: n - 1 }, (_, i) => `X-F${i}: ${i}\r\n`).join(''); // plus Host
  const within = await RawClient.open(s.usher);
  t.after(() => within.destroy());
  within.send(get('/', fields(10)));
  assert.equal((await within.response()).status, 200);
  assert.equal(s.origin.seen[0]?.headers['x-f8'], '8', 'all ten fields reached the backend');

  const over = await RawClient.open(s.usher);
  t.after(() => over.destroy());
  over.send(get('/', fields(11)));
  await assertRejected(over, 431, 'http1_too_many_headers');
  assert.equal(s.origin.seen.length, 1);
  const line = await s.logLine((l) => l.status === 431, 'status 431');
  assert.equal(line.error, 'http1_too_many_headers');
});

test('maxUriBytes: a target of exactly the limit is served, one byte more is 414 and closes', async (t) => {
  const s = await setup(t, '    limits: { maxUriBytes: 256B }');
  const target = (n: number): string => `/${'p'.repeat(n - 1)}`;
  const within = await RawClient.open(s.usher);
  t.after(() => within.destroy());
  within.send(get(target(256)));
  assert.equal((await within.response()).status, 200);
  assert.equal(s.origin.seen[0]?.url.length, 256);

  const over = await RawClient.open(s.usher);
  t.after(() => over.destroy());
  over.send(get(target(257)));
  await assertRejected(over, 414, 'http1_target_too_long');
  assert.equal(s.origin.seen.length, 1);
  const line = await s.logLine((l) => l.status === 414, 'status 414');
  assert.equal(line.error, 'http1_target_too_long');

  // A request line that never ends is cut once the target alone is past the limit.
  const streaming = await RawClient.open(s.usher);
  t.after(() => streaming.destroy());
  streaming.send(`GET ${target(400)}`);
  await assertRejected(streaming, 414, 'http1_target_too_long');
  assert.equal(s.origin.seen.length, 1);
});

// ---- body size ------------------------------------------------------------------------

test('maxBodyBytes with Content-Length: the limit is served; one byte more is 413 before any byte reaches the backend', async (t) => {
  const recorder = bodyRecorder();
  const s = await setup(t, '    limits: { maxBodyBytes: 100 }', recorder.handler);
  const within = await RawClient.open(s.usher);
  t.after(() => within.destroy());
  within.send(`POST /up HTTP/1.1\r\nHost: usher.test\r\nContent-Length: 100\r\n\r\n${'b'.repeat(100)}`);
  const ok = await within.response();
  assert.equal(ok.status, 200);
  assert.equal(ok.body.toString(), '100');
  const connectionsBefore = s.origin.connections;

  const over = await RawClient.open(s.usher);
  t.after(() => over.destroy());
  over.send(`POST /up HTTP/1.1\r\nHost: usher.test\r\nContent-Length: 101\r\n\r\n${'b'.repeat(101)}`);
  await assertRejected(over, 413, 'body_too_large');
  assert.equal(s.origin.seen.length, 1, 'the backend saw no request head of the rejected request');
  assert.deepEqual(recorder.complete, [100]);
  assert.equal(recorder.aborted(), 0, 'no request was started and cut at the backend');
  assert.equal(s.origin.connections, connectionsBefore, 'no new backend connection was even opened');
  const line = await s.logLine((l) => l.status === 413, 'status 413');
  assert.equal(line.method, 'POST');
});

test('maxBodyBytes with a chunked body: within the limit is served; past it is 413, the connection closes, the backend never gets a complete body', async (t) => {
  const recorder = bodyRecorder();
  const s = await setup(t, '    limits: { maxBodyBytes: 100 }', recorder.handler);
  const head = 'POST /up HTTP/1.1\r\nHost: usher.test\r\nTransfer-Encoding: chunked\r\n\r\n';
  // The limit counts chunked bodies on the wire, framing included: 4 + 40 + 2 + 5 = 51 bytes.
  const within = await RawClient.open(s.usher);
  t.after(() => within.destroy());
  within.send(`${head}28\r\n${'c'.repeat(40)}\r\n0\r\n\r\n`);
  const ok = await within.response();
  assert.equal(ok.status, 200);
  assert.equal(ok.body.toString(), '40');

  const over = await RawClient.open(s.usher);
  t.after(() => over.destroy());
  over.send(`${head}3c\r\n${'c'.repeat(60)}\r\n`); // 66 bytes: within
  await until(() => s.origin.seen.length === 2, 'the backend to see the second request start');
  over.send(`3c\r\n${'c'.repeat(60)}\r\n`); // 132: past the limit
  await assertRejected(over, 413, 'body_too_large');
  await until(() => recorder.aborted() === 1, 'the backend request to be aborted');
  assert.deepEqual(recorder.complete, [40], 'only the first request body ever completed at the backend');
  const line = await s.logLine((l) => l.status === 413, 'status 413');
  assert.equal(line.method, 'POST');
});

test('maxBodyBytes: body bytes a client keeps sending after its 413 are not read as a new request', async (t) => {
  const s = await setup(t, '    limits: { maxBodyBytes: 100 }');
  const over = await RawClient.open(s.usher);
  t.after(() => over.destroy());
  over.send('POST /up HTTP/1.1\r\nHost: usher.test\r\nContent-Length: 1000\r\n\r\n');
  await assertRejected(over, 413, 'body_too_large');
  // usher closed its side; a client that has not noticed keeps sending its body.
  if (!over.socket.destroyed) over.send('x'.repeat(1000));
  await s.logLine((l) => l.status === 413, 'status 413');
  await delay(100);
  const statuses = s.log().map((l) => l.status);
  assert.deepEqual(statuses, [413], `one access log line for one request; got ${JSON.stringify(s.log())}`);
  assert.equal(s.origin.seen.length, 0);
});

// ---- requests per connection --------------------------------------------------------

test('maxRequestsPerConnection: the N-th response says connection: close and the socket closes', async (t) => {
  const s = await setup(t, '    limits: { maxRequestsPerConnection: 3 }');
  const client = await RawClient.open(s.usher);
  t.after(() => client.destroy());
  for (let n = 1; n <= 3; n++) {
    client.send(get(`/r${n}`));
    const response = await client.response(n);
    assert.equal(response.status, 200);
    assert.equal(header(response, 'connection'), n === 3 ? 'close' : undefined, `response ${n}`);
  }
  await client.waitClosed(3000);
  assert.equal(s.origin.seen.length, 3);
  await until(() => s.log().filter((l) => l.status === 200).length === 3, 'three access log lines');

  // Pipelined past the limit: exactly N answered, the rest is never forwarded.
  const pipelined = await RawClient.open(s.usher);
  t.after(() => pipelined.destroy());
  pipelined.send(get('/p1') + get('/p2') + get('/p3') + get('/p4') + get('/p5'));
  await pipelined.waitClosed(3000);
  const responses = pipelined.responses();
  assert.deepEqual(
    responses.map((r) => r.status),
    [200, 200, 200],
  );
  assert.equal(header(responses[2]!, 'connection'), 'close');
  assert.deepEqual(
    s.origin.seen.slice(3).map((r) => r.url),
    ['/p1', '/p2', '/p3'],
  );
});

// ---- connection limits ----------------------------------------------------------------

async function assertConnectionLimit(t: Parameters<typeof setup>[0], listener: string, reason: string, limit: number): Promise<void> {
  const s = await setup(t, listener);
  const held: RawClient[] = [];
  for (let i = 0; i < limit; i++) {
    const client = await RawClient.open(s.usher);
    t.after(() => client.destroy());
    client.send(get(`/held${i}`));
    assert.equal((await client.response()).status, 200, `connection ${i + 1} of ${limit} is served`);
    held.push(client);
  }
  const refused = await RawClient.open(s.usher);
  t.after(() => refused.destroy());
  refused.send(get('/refused'));
  await assertRejected(refused, 503, reason);
  assert.equal(s.origin.seen.length, limit, 'the refused connection reached no backend');
  for (const client of held) assert.equal(client.closed, false, 'the held connections stay open');

  // One closes: a new connection is accepted again (once usher has seen the close).
  held[0]!.destroy();
  let served: RawResponse | undefined;
  for (let attempt = 0; attempt < 50 && served === undefined; attempt++) {
    const client = await RawClient.open(s.usher);
    t.after(() => client.destroy());
    client.send(get('/again'));
    const response = await client.response();
    if (response.status === 200) served = response;
    else await delay(20);
  }
  assert.equal(served?.status, 200, 'a connection is accepted after one closed');
  assert.deepEqual(s.origin.seen.at(-1)?.url, '/again');
}

test('maxConnections: the (N+1)-th connection gets 503 max_connections and is closed; after one closes a new one is accepted', async (t) => {
  await assertConnectionLimit(t, '    limits: { maxConnections: 3 }', 'max_connections', 3);
});

test('maxConnectionsPerClient: the third connection from 127.0.0.1 gets 503 max_connections_per_client; after one closes a new one is accepted', async (t) => {
  await assertConnectionLimit(t, '    limits: { maxConnectionsPerClient: 2 }', 'max_connections_per_client', 2);
});

// ---- timeouts ------------------------------------------------------------------------

test('header timeout: a partial head is answered 408 after ~timeouts.header; a head completed in time is served', async (t) => {
  const s = await setup(t, '    timeouts: { header: 300ms }');
  const slowButInTime = await RawClient.open(s.usher);
  t.after(() => slowButInTime.destroy());
  slowButInTime.send('GET /in-time HTTP/1.1\r\n');
  await delay(100);
  slowButInTime.send('Host: usher.test\r\n');
  await delay(100);
  slowButInTime.send('\r\n');
  assert.equal((await slowButInTime.response()).status, 200);

  const stalled = await RawClient.open(s.usher);
  t.after(() => stalled.destroy());
  const started = performance.now();
  stalled.send('GET /stalled HTTP/1.1\r\nHost: usher.test\r\n');
  await assertRejected(stalled, 408, 'header_timeout');
  const elapsed = stalled.closedAt - started;
  t.diagnostic(`408 and close after ${elapsed.toFixed(0)} ms (header: 300ms)`);
  assert.ok(elapsed >= 280 && elapsed < 1500, `closed after ${elapsed.toFixed(0)} ms`);
  assert.deepEqual(
    s.origin.seen.map((r) => r.url),
    ['/in-time'],
  );
  const line = await s.logLine((l) => l.status === 408, 'status 408');
  assert.equal(line.error, 'header_timeout');
});

test('body idle timeout: a body that stops is answered 408 body_timeout after ~timeouts.bodyIdle and the backend request is aborted', async (t) => {
  const recorder = bodyRecorder();
  const s = await setup(t, '    timeouts: { bodyIdle: 300ms }', recorder.handler);
  const head = 'POST /up HTTP/1.1\r\nHost: usher.test\r\nContent-Length: 10\r\n\r\n';
  const slowButSteady = await RawClient.open(s.usher);
  t.after(() => slowButSteady.destroy());
  slowButSteady.send(`${head}abc`);
  for (const part of ['defg', 'hij']) {
    await delay(120);
    slowButSteady.send(part);
  }
  const ok = await slowButSteady.response();
  assert.equal(ok.status, 200);
  assert.equal(ok.body.toString(), '10');

  const stalled = await RawClient.open(s.usher);
  t.after(() => stalled.destroy());
  stalled.send(`${head}abc`);
  await until(() => s.origin.seen.length === 2, 'the backend to see the stalled request');
  const stalledAt = performance.now();
  await assertRejected(stalled, 408, 'body_timeout');
  const elapsed = stalled.closedAt - stalledAt;
  t.diagnostic(`408 and close ${elapsed.toFixed(0)} ms after the body stalled (bodyIdle: 300ms)`);
  assert.ok(elapsed >= 200 && elapsed < 1500, `closed after ${elapsed.toFixed(0)} ms`);
  await until(() => recorder.aborted() === 1, 'the backend request to be aborted');
  assert.deepEqual(recorder.complete, [10], 'the stalled body never completed at the backend');
  const line = await s.logLine((l) => l.status === 408, 'status 408');
  assert.equal(line.method, 'POST');
});

test('keepAlive timeout: a connection reused within the timeout is served; an idle one is closed after ~timeouts.keepAlive', async (t) => {
  const s = await setup(t, '    timeouts: { keepAlive: 400ms }');
  const client = await RawClient.open(s.usher);
  t.after(() => client.destroy());
  client.send(get('/one'));
  await client.response(1);
  await delay(150);
  client.send(get('/two'));
  await client.response(2);
  const idleFrom = performance.now();
  await client.waitClosed(3000);
  const idle = client.closedAt - idleFrom;
  t.diagnostic(`idle connection closed after ${idle.toFixed(0)} ms (keepAlive: 400ms)`);
  assert.ok(idle >= 350 && idle < 1500, `closed after ${idle.toFixed(0)} ms`);
  assert.equal(client.responses().length, 2, 'an idle close sends nothing');
  assert.equal(s.origin.connections, 1, 'both requests went over one upstream connection');
  await until(() => s.log().length === 2, 'two access log lines');
  assert.deepEqual(
    s.log().map((l) => l.status),
    [200, 200],
    'closing an idle connection writes no access log line',
  );
});

interface SendCut {
  /** Backend body bytes written before the cut. */
  readonly written: number;
  /** The backend's last write progress (its socket accepted more) before the cut. */
  readonly lastProgressAt: number;
  /** When the backend saw its response closed. */
  readonly closedAt: number;
  readonly finished: boolean;
}

const SEND_TOTAL = 256 * 1024 * 1024;

/**
 * A usher with `timeouts.send` = `send`, in front of a backend that writes
 * `/small` (8 MiB) or `/large` (256 MiB) as fast as it is read.
 */
async function sendTimeoutSetup(t: Parameters<typeof setup>[0], send: string): Promise<{ s: Setup; cuts: SendCut[] }> {
  const chunk = Buffer.alloc(64 * 1024, 0x62);
  const cuts: { written: number; lastProgressAt: number; closedAt: number; finished: boolean }[] = [];
  const s = await setup(t, `    timeouts: { send: ${send} }`, (req, res) => {
    req.resume();
    const size = req.url === '/small' ? 8 * 1024 * 1024 : SEND_TOTAL;
    const record = { written: 0, lastProgressAt: performance.now(), closedAt: 0, finished: false };
    cuts.push(record);
    res.writeHead(200, { 'content-length': String(size) });
    const pump = (): void => {
      record.lastProgressAt = performance.now();
      while (record.written < size && !res.destroyed) {
        const n = Math.min(chunk.length, size - record.written);
        record.written += n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once('drain', pump);
      }
      if (record.written >= size) res.end();
    };
    res.on('finish', () => (record.finished = true));
    res.on('close', () => (record.closedAt = performance.now()));
    pump();
  });
  return { s, cuts };
}

/** Sends GET /large from a client that never reads; resolves with the backend's view of the cut. */
async function stuckClient(t: Parameters<typeof setup>[0], s: Setup, cuts: SendCut[]): Promise<{ cut: SendCut; client: RawClient; sentAt: number }> {
  const client = await RawClient.open(s.usher);
  t.after(() => client.destroy());
  client.socket.pause();
  const before = cuts.length;
  const sentAt = performance.now();
  client.send(get('/large'));
  await until(() => cuts.length > before && cuts[before]!.closedAt > 0, 'the backend response to be cut', 10_000);
  return { cut: cuts[before]!, client, sentAt };
}

test('send timeout: a client that stops reading is cut while the backend keeps writing; a short pause is not cut', async (t) => {
  const { s, cuts } = await sendTimeoutSetup(t, '300ms');

  // A client that pauses for half the send timeout, then reads: gets every byte.
  const pausing = await RawClient.open(s.usher);
  t.after(() => pausing.destroy());
  pausing.socket.pause();
  pausing.send(get('/small'));
  await delay(150);
  pausing.socket.resume();
  const small = await pausing.response(1, 10_000);
  assert.equal(small.status, 200);
  assert.equal(small.body.length, 8 * 1024 * 1024, 'the pausing client got the whole body');

  // A client that never reads.
  const { cut, client: stuck, sentAt } = await stuckClient(t, s, cuts);
  const stalledFor = cut.closedAt - cut.lastProgressAt;
  t.diagnostic(
    `cut ${(cut.closedAt - sentAt).toFixed(0)} ms after the request, ${stalledFor.toFixed(0)} ms after the backend last made progress; ` +
      `backend wrote ${(cut.written / 1024 / 1024).toFixed(1)} MiB of ${SEND_TOTAL / 1024 / 1024} MiB`,
  );
  assert.equal(cut.finished, false, 'the backend response was cut, not completed');
  assert.ok(cut.written < SEND_TOTAL / 4, `the backend wrote ${cut.written} bytes`);
  // Bounded, not precise: see the next test for how close to `send` the cut comes.
  assert.ok(stalledFor >= 150 && stalledFor < 2000, `cut ${stalledFor.toFixed(0)} ms after the last progress (send: 300ms)`);
  assert.ok(cut.closedAt - sentAt < 5000);
  // The client's side: what was already in flight arrives, then the connection ends short.
  stuck.socket.resume();
  await stuck.waitClosed(5000);
  assert.ok(stuck.received < SEND_TOTAL / 4, `the stuck client received ${stuck.received} bytes`);
  const line = await s.logLine((l) => l.path === '/large', 'path /large');
  t.diagnostic(`access log for the cut response: ${JSON.stringify(line)}`);
  assert.notEqual(line.status, 200, 'the log does not record the cut response as a complete 200');
});

test(
  'send timeout: the cut comes ~timeouts.send after the last progress, not twice that',
  async (t) => {
    const { s, cuts } = await sendTimeoutSetup(t, '1s');
    const { cut } = await stuckClient(t, s, cuts);
    const stalledFor = cut.closedAt - cut.lastProgressAt;
    t.diagnostic(`cut ${stalledFor.toFixed(0)} ms after the backend last made progress (send: 1s)`);
    assert.equal(cut.finished, false);
    assert.ok(stalledFor >= 900 && stalledFor < 1500, `cut ${stalledFor.toFixed(0)} ms after the last progress (send: 1s)`);
  },
);
