/**
 * Data-path prototype 4: node:http downstream, undici `Pool.request()` upstream.
 *
 *   node bench/prototypes/undici-request.ts <port> <host:port,host:port,...>
 *
 * Same pools and header handling as undici-dispatch.ts, but through the
 * high-level API: a promise per request and the body as a Readable that is
 * piped into the ServerResponse (pipe() supplies the backpressure). It exists
 * to price the convenience layer against the raw dispatch handler.
 *
 * No extra features: no timeouts beyond undici's defaults, no retries, no
 * X-Forwarded-*. A benchmark prototype, not product code.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';

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

function stripResponseHeaders(headers: Headers): Headers {
  const conn = headers.connection;
  if (conn !== undefined) {
    for (const tok of String(conn).split(',')) delete headers[tok.trim().toLowerCase()];
  }
  for (const name of HOP_BY_HOP) delete headers[name];
  return headers;
}

async function proxy(pool: Pool, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const flags = { hasBody: false };
  const headers = requestHeaders(req.rawHeaders, flags);
  const ac = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  try {
    const up = await pool.request({
      path: req.url ?? '/',
      method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
      headers,
      body: flags.hasBody ? req : null,
      signal: ac.signal,
    });
    res.writeHead(up.statusCode, stripResponseHeaders(up.headers));
    up.body.on('error', (err: Error) => res.destroy(err));
    up.body.pipe(res);
  } catch (err) {
    if (res.headersSent) res.destroy(err as Error);
    else {
      res.writeHead(502, ['Content-Length', '0', 'Connection', 'close']);
      res.end();
    }
  }
}

function main(): void {
  const port = Number(process.argv[2]);
  const backends = (process.argv[3] ?? '').split(',').filter((b) => b !== '');
  if (!Number.isInteger(port) || backends.length === 0) {
    console.error('usage: undici-request.ts <port> <host:port,...>');
    process.exit(2);
  }
  const pools = backends.map((b) => new Pool(`http://${b}`, { pipelining: 1, keepAliveTimeout: 60_000 }));
  let next = 0;
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const pool = pools[next] as Pool;
    next = next + 1 === pools.length ? 0 : next + 1;
    void proxy(pool, req, res);
  });
  server.listen(port, '127.0.0.1');
}

main();
