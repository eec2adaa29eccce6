import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { createHealth, gracefulShutdown } from '../backend/index.ts';

/**
 * A demo backend: answers every request with its own name, so a curl loop shows
 * how usher spreads requests. Also the real-process backend the tests start.
 * It is a service built with usher's backend kit (`usher/backend`,
 * docs/backend-kit.md): readiness on /health, graceful shutdown on SIGTERM.
 *
 *   GET /health, /readyz   200 {"status":"ok","checks":{}}; 503 {"status":"draining"} once stopping
 *   GET /livez             200 {"status":"ok"}
 *   GET /slow?ms=N         waits N ms, then answers
 *   anything else          200 "<name> <method> <path>" with JSON details on `Accept: application/json`
 *
 * Run: node dist/demo/backend.js --name alpha --port 3001 [--drain-delay 3000]
 * When started by `child_process.fork`, it reports `{ ready: port }` on IPC once listening.
 */
export interface DemoBackendOptions {
  /**
   * ms between SIGTERM and closing the listener (default 3000): the demo's
   * checks (interval 1 s, fastInterval 500 ms, fall 3, ±10 % jitter) take a
   * draining backend out within 1.1 + 2 × 0.55 = 2.2 s.
   */
  readonly drainDelayMs?: number;
  /** Signals that start the graceful shutdown (default SIGTERM and SIGINT). */
  readonly signals?: readonly NodeJS.Signals[];
}

/** The demo's drain delay; see {@link DemoBackendOptions.drainDelayMs}. */
export const DEMO_DRAIN_DELAY_MS = 3000;

export function startDemoBackend(name: string, port: number, host = '127.0.0.1', options: DemoBackendOptions = {}): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const health = createHealth();
    const server = createServer((req, res) => {
      if (!health.handle(req, res)) answer(name, req, res);
    });
    // Longer than usher's upstream idle timeout (60 s in the demo), so usher, not the backend, closes idle connections.
    server.keepAliveTimeout = 65_000;
    // A bad --drain-delay throws here, inside the executor: a rejection with the kit's message.
    gracefulShutdown(server, {
      health,
      drainDelayMs: options.drainDelayMs ?? DEMO_DRAIN_DELAY_MS,
      ...(options.signals === undefined ? {} : { signals: options.signals }),
    });
    server.once('error', reject);
    server.listen({ port, host }, () => resolve(server.address() as AddressInfo));
  });
}

function answer(name: string, req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
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
    options: {
      name: { type: 'string', default: 'demo' },
      port: { type: 'string', default: '0' },
      host: { type: 'string' },
      'drain-delay': { type: 'string', default: String(DEMO_DRAIN_DELAY_MS) },
    },
  });
  const forked = process.send !== undefined;
  // Forked by `usher demo`, a Ctrl-C reaches the whole process group: usher then stops and
  // sends SIGTERM itself, so SIGINT is left to it here (ignored) instead of starting a second drain.
  if (forked) process.on('SIGINT', () => undefined);
  startDemoBackend(values.name, Number(values.port), values.host, {
    drainDelayMs: Number(values['drain-delay']),
    signals: forked ? ['SIGTERM'] : ['SIGTERM', 'SIGINT'],
  }).then(
    (address) => {
      if (process.send) process.send({ ready: address.port });
      else console.log(`demo backend ${values.name} listening on ${address.address}:${address.port}`);
    },
    (err: Error) => {
      console.error(`demo backend ${values.name}: ${err.message}`);
      process.exit(1);
    },
  );
  // usher (the parent) is gone: nobody is left to send requests.
  process.on('disconnect', () => process.exit(0));
}

if (import.meta.main) main();
