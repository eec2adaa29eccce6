/**
 * Data-path prototype 1: node:http downstream, undici `Pool.dispatch()` upstream.
 *
 *   node bench/prototypes/undici-dispatch.ts <port> <host:port,host:port,...>
 *
 * One undici Pool per backend (keep-alive, pipelining 1), round-robin. The
 * low-level dispatch API takes a handler object (undici 7+ interface:
 * onRequestStart / onResponseStart / onResponseData / onResponseEnd /
 * onResponseError) and we write straight to the ServerResponse: no Readable
 * in between, no promise per request. Backpressure: when `res.write()` returns
 * false the controller pauses the upstream socket until 'drain'. Request
 * bodies are passed to undici as the IncomingMessage stream (undici honours
 * its backpressure). Hop-by-hop headers (RFC 9110 §7.6.1, plus any named in
 * Connection) are removed in both directions.
 *
 * No extra features: no timeouts beyond undici's defaults, no retries, no
 * X-Forwarded-*. A benchmark prototype, not product code.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';

type Controller = Dispatcher.DispatchController;
type Headers = Record<string, string | string[] | undefined>;

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Flat request header list without hop-by-hop headers; `hasBody` from Content-Length / Transfer-Encoding. */
function requestHeaders(raw: readonly string[], out: { hasBody: boolean }): string[] {
  let extra: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 10 && name.toLowerCase() === 'connection') {
      for (const tok of (raw[i + 1] as string).split(',')) {
        const t = tok.trim().toLowerCase();
        if (t !== 'close' && t !== 'keep-alive' && t !== '') (extra ??= new Set()).add(t);
      }
    }
  }
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || extra?.has(lower)) {
      if (lower === 'transfer-encoding') out.hasBody = true;
      continue;
    }
    if (lower === 'content-length') out.hasBody = true;
    headers.push(name, raw[i + 1] as string);
  }
  return headers;
}

/** Removes hop-by-hop response headers in place (undici already lowercased the names). */
function stripResponseHeaders(headers: Headers): Headers {
  const conn = headers.connection;
  if (conn !== undefined) {
    for (const tok of String(conn).split(',')) delete headers[tok.trim().toLowerCase()];
  }
  for (const name of HOP_BY_HOP) delete headers[name];
  return headers;
}

/** One proxied exchange: undici calls these methods; they write to `res`. */
class ProxyHandler implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse;
  #controller: Controller | undefined;
  #done = false;

  constructor(res: ServerResponse) {
    this.#res = res;
    res.once('close', this.#onClientClose);
  }

  onRequestStart(controller: Controller): void {
    this.#controller = controller;
  }

  onResponseStart(_controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    const res = this.#res;
    if (statusMessage !== undefined && statusMessage !== '') res.statusMessage = statusMessage;
    res.writeHead(statusCode, stripResponseHeaders(headers));
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (!this.#res.write(chunk)) {
      controller.pause();
      this.#res.once('drain', this.#onDrain);
    }
  }

  onResponseEnd(): void {
    this.#done = true;
    this.#res.end();
  }

  onResponseError(_controller: Controller, err: Error): void {
    this.#done = true;
    const res = this.#res;
    if (res.headersSent) {
      res.destroy(err);
      return;
    }
    res.writeHead(502, ['Content-Length', '0', 'Connection', 'close']);
    res.end();
  }

  readonly #onDrain = (): void => {
    this.#controller?.resume();
  };

  /** Client went away before the response finished: abort the upstream request. */
  readonly #onClientClose = (): void => {
    if (!this.#done && !this.#res.writableFinished) this.#controller?.abort(new Error('client closed'));
  };
}

function main(): void {
  const port = Number(process.argv[2]);
  const backends = (process.argv[3] ?? '').split(',').filter((b) => b !== '');
  if (!Number.isInteger(port) || backends.length === 0) {
    console.error('usage: undici-dispatch.ts <port> <host:port,...>');
    process.exit(2);
  }
  const pools = backends.map((b) => new Pool(`http://${b}`, { pipelining: 1, keepAliveTimeout: 60_000 }));
  let next = 0;
  const server = createServer({ keepAliveTimeout: 65_000 }, (req: IncomingMessage, res: ServerResponse) => {
    const pool = pools[next] as Pool;
    next = next + 1 === pools.length ? 0 : next + 1;
    const body = { hasBody: false };
    const headers = requestHeaders(req.rawHeaders, body);
    pool.dispatch(
      { path: req.url ?? '/', method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers, body: body.hasBody ? req : null },
      new ProxyHandler(res),
    );
  });
  server.listen(port, '127.0.0.1');
}

main();
