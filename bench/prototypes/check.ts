/**
 * Smoke test of the data-path prototypes (and the http-proxy peer): proves
 * they are correct enough for their figures to mean something.
 *
 *   node bench/prototypes/check.ts [name ...]
 *
 * A Node origin on 127.0.0.1:0 (two ports) exercises: small and 64 KiB
 * bodies, chunked responses, request bodies with Content-Length and chunked,
 * HEAD, 204, hop-by-hop headers in both directions (including ones named in
 * Connection), an 8 MiB body read slowly (backpressure), upstream
 * `Connection: close`, and keep-alive reuse. Every request has a deadline;
 * every spawned process is stopped by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Agent, createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const SCRIPTS: Readonly<Record<string, string>> = {
  'undici-dispatch': join(HERE, 'undici-dispatch.ts'),
  'undici-request': join(HERE, 'undici-request.ts'),
  'http-agent': join(HERE, 'http-agent.ts'),
  'raw-socket': join(HERE, 'raw-socket.ts'),
  'raw-both': join(HERE, 'raw-both.ts'),
  'http-proxy': join(HERE, '..', 'peers', 'http-proxy.ts'),
};
const BIG = Buffer.alloc(8 * 1024 * 1024, 'abcdefghijklmnopqrstuvwxyz0123456789');
const BIG_SHA = createHash('sha256').update(BIG).digest('hex');

let originConnections = 0;
/** The prototype process being checked, so the hard deadline can stop it by PID. */
let current: ChildProcess | undefined;

function origin(req: IncomingMessage, res: ServerResponse): void {
  switch (req.url) {
    case '/small':
      res.writeHead(200, ['Content-Length', '3']);
      res.end(req.method === 'HEAD' ? undefined : 'ok\n');
      return;
    case '/64k':
      res.writeHead(200, ['Content-Length', '65536']);
      res.end(Buffer.alloc(65536, 'x'));
      return;
    case '/chunked':
      res.writeHead(200, ['Content-Type', 'text/plain']);
      for (let i = 0; i < 5; i++) res.write('a'.repeat(1000));
      res.end();
      return;
    case '/echo': {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        res.writeHead(200, ['Content-Length', String(body.length), 'X-Seen-Headers', Object.keys(req.headers).join(',')]);
        res.end(body);
      });
      return;
    }
    case '/204':
      res.writeHead(204);
      res.end();
      return;
    case '/hop':
      res.writeHead(200, ['Connection', 'x-private', 'X-Private', 'secret', 'Keep-Alive', 'timeout=5', 'X-Keep', '1', 'Content-Length', '2']);
      res.end('ok');
      return;
    case '/big':
      res.writeHead(200, ['Content-Length', String(BIG.length)]);
      res.end(BIG);
      return;
    case '/close':
      res.shouldKeepAlive = false;
      res.writeHead(200, ['Content-Length', '2', 'Connection', 'close']);
      res.end('ok');
      return;
    default:
      res.writeHead(404, ['Content-Length', '0']);
      res.end();
  }
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a !== null ? a.port : 0);
    });
  });
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const clientAgent = new Agent({ keepAlive: true, maxSockets: 100 });

function call(port: number, method: string, path: string, opts: { headers?: Record<string, string>; body?: Buffer; chunked?: boolean; slow?: boolean } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.body && !opts.chunked) headers['content-length'] = String(opts.body.length);
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: clientAgent, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      let paused = false;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        if (opts.slow && !paused) {
          paused = true;
          res.pause();
          setTimeout(() => res.resume(), 300);
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    if (opts.body && opts.chunked) {
      for (let i = 0; i < opts.body.length; i += 10_000) req.write(opts.body.subarray(i, i + 10_000));
      req.end();
    } else req.end(opts.body);
  });
}

function waitPort(port: number, deadline: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        if (Date.now() > deadline) reject(new Error(`port ${port} never opened`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** Writes raw bytes on a fresh connection and collects everything until the peer closes or `ms` pass. */
function rawExchange(port: number, bytes: string, ms: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let out = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve(out);
    }, ms);
    s.on('data', (c: Buffer) => (out += c.toString('latin1')));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    s.on('error', () => undefined);
    s.write(bytes);
  });
}

function expect(cond: boolean, what: string, failures: string[]): void {
  if (!cond) failures.push(what);
}

async function checkOne(name: string, script: string, backends: string): Promise<string[]> {
  const probe = createServer();
  const port = await listen(probe);
  await new Promise<void>((r) => probe.close(() => r()));
  const child = spawn(process.execPath, ['--no-deprecation', script, String(port), backends], { stdio: ['ignore', 'inherit', 'inherit'] });
  current = child;
  const failures: string[] = [];
  try {
    await waitPort(port, Date.now() + 10_000);
    const small = await call(port, 'GET', '/small');
    expect(small.status === 200 && small.body.toString() === 'ok\n', `GET /small: ${small.status} ${JSON.stringify(small.body.toString())}`, failures);
    const k64 = await call(port, 'GET', '/64k');
    expect(k64.body.length === 65536, `GET /64k: ${k64.body.length} bytes`, failures);
    const chunked = await call(port, 'GET', '/chunked');
    expect(chunked.body.length === 5000, `GET /chunked: ${chunked.body.length} bytes`, failures);
    const payload = Buffer.alloc(100_000, 'p');
    const echo = await call(port, 'POST', '/echo', { body: payload });
    expect(echo.body.equals(payload), `POST /echo (Content-Length): ${echo.body.length} bytes back`, failures);
    const echoChunked = await call(port, 'POST', '/echo', { body: payload, chunked: true });
    expect(echoChunked.body.equals(payload), `POST /echo (chunked): ${echoChunked.body.length} bytes back`, failures);
    const head = await call(port, 'HEAD', '/small');
    expect(head.status === 200 && head.body.length === 0 && head.headers['content-length'] === '3', `HEAD /small: ${head.status} len ${head.headers['content-length']}`, failures);
    const nc = await call(port, 'GET', '/204');
    expect(nc.status === 204, `GET /204: ${nc.status}`, failures);
    const hop = await call(port, 'GET', '/hop');
    expect(hop.headers['x-private'] === undefined && hop.headers['x-keep'] === '1', `GET /hop response headers: ${JSON.stringify(hop.headers)}`, failures);
    const seen = await call(port, 'POST', '/echo', { headers: { connection: 'keep-alive, x-foo', 'x-foo': '1', 'x-bar': '2', te: 'trailers' }, body: Buffer.from('x') });
    const seenHeaders = String(seen.headers['x-seen-headers'] ?? '').split(',');
    expect(!seenHeaders.includes('x-foo') && !seenHeaders.includes('te') && seenHeaders.includes('x-bar'), `request hop-by-hop: origin saw ${seenHeaders.join(',')}`, failures);
    const big = await call(port, 'GET', '/big', { slow: true });
    expect(createHash('sha256').update(big.body).digest('hex') === BIG_SHA, `GET /big (slow reader): ${big.body.length} bytes, hash mismatch`, failures);
    for (let i = 0; i < 3; i++) {
      const c = await call(port, 'GET', '/close');
      expect(c.status === 200 && c.body.toString() === 'ok', `GET /close #${i}: ${c.status}`, failures);
    }
    const piped = await rawExchange(port, 'GET /small HTTP/1.1\r\nHost: a\r\n\r\nGET /64k HTTP/1.1\r\nHost: a\r\n\r\nGET /small HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 3000);
    const statuses = piped.match(/HTTP\/1\.1 \d{3}/g) ?? [];
    expect(statuses.length === 3 && statuses.every((x) => x.endsWith('200')) && piped.length > 65536, `pipelined requests: ${statuses.join(',')} (${piped.length} bytes)`, failures);
    const smuggle = await rawExchange(port, 'POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 2000);
    expect(/^HTTP\/1\.1 400/.test(smuggle), `Content-Length + Transfer-Encoding: ${JSON.stringify(smuggle.slice(0, 40))}`, failures);
    const before = originConnections;
    const replies = await Promise.all(Array.from({ length: 500 }, () => call(port, 'GET', '/small')));
    expect(replies.every((r) => r.status === 200 && r.body.toString() === 'ok\n'), '500 concurrent GET /small: some failed', failures);
    const opened = originConnections - before;
    expect(opened <= 150, `keep-alive reuse: ${opened} upstream connections for 500 requests`, failures);
  } catch (err) {
    failures.push(`error: ${(err as Error).message}`);
  } finally {
    child.kill('SIGTERM');
    const deadline = Date.now() + 2000;
    while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) await sleep(20);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  return failures;
}

async function main(): Promise<number> {
  const names = process.argv.length > 2 ? process.argv.slice(2) : Object.keys(SCRIPTS);
  const servers = [createServer(origin), createServer(origin)];
  for (const s of servers) s.on('connection', () => originConnections++);
  const ports = await Promise.all(servers.map(listen));
  const backends = ports.map((p) => `127.0.0.1:${p}`).join(',');
  let failed = 0;
  for (const name of names) {
    const script = SCRIPTS[name];
    if (script === undefined) {
      console.log(`${name}: unknown (known: ${Object.keys(SCRIPTS).join(', ')})`);
      failed++;
      continue;
    }
    const failures = await checkOne(name, script, backends);
    console.log(failures.length === 0 ? `${name}: ok` : `${name}: FAIL\n  ${failures.join('\n  ')}`);
    if (failures.length > 0) failed++;
  }
  clientAgent.destroy();
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return failed === 0 ? 0 : 1;
}

const hard = setTimeout(() => {
  console.error('check: hard deadline (120 s) reached');
  current?.kill('SIGKILL');
  process.exit(3);
}, 120_000);
hard.unref();
process.exitCode = await main();
