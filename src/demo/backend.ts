import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

/**
 * A demo backend: answers every request with its own name, so a curl loop shows
 * how usher spreads requests. Also the real-process backend the tests start.
 *
 *   GET /health        200 "ok"
 *   GET /slow?ms=N     waits N ms, then answers
 *   anything else      200 "<name> <method> <path>" with JSON details on `Accept: application/json`
 *
 * Run: node dist/demo/backend.js --name alpha --port 3001
 * When started by `child_process.fork`, it reports `{ ready: port }` on IPC once listening.
 */
export function startDemoBackend(name: string, port: number, host = '127.0.0.1'): Promise<AddressInfo> {
  const server = createServer((req, res) => answer(name, req, res));
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => resolve(server.address() as AddressInfo));
  });
}

function answer(name: string, req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  if (url === '/health') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  if (url.startsWith('/slow')) {
    const ms = Math.min(Number(new URLSearchParams(url.split('?')[1] ?? '').get('ms') ?? 1000), 60_000);
    const timer = setTimeout(() => send(name, req, res), ms);
    res.on('close', () => clearTimeout(timer));
    return;
  }
  // Drain any request body before answering.
  req.resume();
  req.on('end', () => send(name, req, res));
}

function send(name: string, req: IncomingMessage, res: ServerResponse): void {
  if (req.headers.accept === 'application/json') {
    const body = JSON.stringify({ backend: name, method: req.method, url: req.url, headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name }).end(body);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name }).end(`${name} ${req.method} ${req.url}\n`);
}

function main(): void {
  const { values } = parseArgs({
    options: { name: { type: 'string', default: 'demo' }, port: { type: 'string', default: '0' }, host: { type: 'string' } },
  });
  startDemoBackend(values.name, Number(values.port), values.host).then(
    (address) => {
      if (process.send) process.send({ ready: address.port });
      else console.log(`demo backend ${values.name} listening on ${address.address}:${address.port}`);
    },
    (err: Error) => {
      console.error(`demo backend ${values.name}: ${err.message}`);
      process.exit(1);
    },
  );
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
}

if (import.meta.main) main();
