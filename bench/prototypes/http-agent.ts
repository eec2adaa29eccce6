/**
 * Data-path prototype 2: node:http downstream, `http.request()` upstream with a
 * keep-alive `http.Agent` per backend.
 *
 *   node bench/prototypes/http-agent.ts <port> <host:port,host:port,...>
 *
 * Agents: keepAlive, maxSockets unlimited, LIFO scheduling (hot sockets first,
 * cold ones time out). Both directions are piped, so stream backpressure comes
 * from pipe(). Headers travel as flat raw arrays (no header objects built),
 * without hop-by-hop headers (RFC 9110 §7.6.1, plus any named in Connection).
 *
 * No extra features: no timeouts, no retries, no X-Forwarded-*. A benchmark
 * prototype, not product code.
 */
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Copy of a raw header list without hop-by-hop headers. Sets `hasBody` / `hasHost` for requests. */
function stripRaw(raw: readonly string[], out: { hasBody: boolean; hasHost: boolean }): string[] {
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
    else if (lower === 'host') out.hasHost = true;
    headers.push(name, raw[i + 1] as string);
  }
  return headers;
}

interface Backend {
  readonly host: string;
  readonly port: number;
  readonly hostPort: string;
  readonly agent: Agent;
}

function proxy(backend: Backend, req: IncomingMessage, res: ServerResponse): void {
  const flags = { hasBody: false, hasHost: false };
  const headers = stripRaw(req.rawHeaders, flags);
  // A raw header array is sent as given: Node adds neither Host nor Connection.
  if (!flags.hasHost) headers.push('Host', backend.hostPort);
  headers.push('Connection', 'keep-alive');
  const up = request({ host: backend.host, port: backend.port, method: req.method, path: req.url, headers, agent: backend.agent });
  up.on('response', (pres: IncomingMessage) => {
    const ignore = { hasBody: false, hasHost: false };
    res.writeHead(pres.statusCode ?? 502, pres.statusMessage, stripRaw(pres.rawHeaders, ignore));
    pres.pipe(res);
  });
  up.on('error', (err: Error) => {
    if (res.headersSent) res.destroy(err);
    else {
      res.writeHead(502, ['Content-Length', '0', 'Connection', 'close']);
      res.end();
    }
  });
  res.once('close', () => {
    if (!res.writableFinished) up.destroy();
  });
  if (flags.hasBody) req.pipe(up);
  else up.end();
}

function main(): void {
  const port = Number(process.argv[2]);
  const backends: Backend[] = (process.argv[3] ?? '')
    .split(',')
    .filter((b) => b !== '')
    .map((hostPort) => {
      const [host, p] = hostPort.split(':');
      return { host: host ?? '127.0.0.1', port: Number(p), hostPort, agent: new Agent({ keepAlive: true, maxSockets: Infinity, scheduling: 'lifo', keepAliveMsecs: 1000 }) };
    });
  if (!Number.isInteger(port) || backends.length === 0 || backends.some((b) => !Number.isInteger(b.port))) {
    console.error('usage: http-agent.ts <port> <host:port,...>');
    process.exit(2);
  }
  let next = 0;
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const backend = backends[next] as Backend;
    next = next + 1 === backends.length ? 0 : next + 1;
    proxy(backend, req, res);
  });
  server.listen(port, '127.0.0.1');
}

main();
