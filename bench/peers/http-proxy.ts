/**
 * The `http-proxy` npm package as a bench peer:
 * `node bench/peers/http-proxy.ts <port> <host:port,host:port,...>`.
 *
 * Round-robin over the backends with one keep-alive agent. http-proxy forwards
 * the client's Connection header as-is, which would turn scenario (b)'s
 * `Connection: close` into a new upstream connection per request; the
 * `proxyReq` hook drops it so upstream keep-alive matches the other peers, and
 * the `proxyRes` hook keeps the upstream's keep-alive from leaking downstream.
 * Run with --no-deprecation: http-proxy calls util._extend.
 */
import { Agent, createServer, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import httpProxy from 'http-proxy';

const port = Number(process.argv[2]);
const targets = (process.argv[3] ?? '').split(',').map((hp) => {
  const [host, p] = hp.split(':');
  return { protocol: 'http:', host: host ?? '127.0.0.1', port: Number(p) };
});
if (!Number.isInteger(port) || targets.length === 0 || targets.some((t) => !Number.isInteger(t.port))) {
  console.error('usage: http-proxy.ts <port> <host:port,...>');
  process.exit(2);
}

const agent = new Agent({ keepAlive: true, maxSockets: Infinity, scheduling: 'lifo' });
const proxy = httpProxy.createProxyServer({ agent, xfwd: false });

proxy.on('proxyReq', (proxyReq: ClientRequest) => {
  proxyReq.removeHeader('connection');
});
// The upstream now answers `connection: keep-alive`; drop it so http-proxy
// derives the downstream value from the client's own Connection header.
proxy.on('proxyRes', (proxyRes: IncomingMessage) => {
  delete proxyRes.headers.connection;
});
proxy.on('error', (err: Error, _req: IncomingMessage, res: ServerResponse | Socket) => {
  if (res instanceof Socket) res.destroy(err);
  else if (!res.headersSent) {
    res.writeHead(502, ['Content-Length', '0']);
    res.end();
  } else res.destroy(err);
});

let next = 0;
const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const target = targets[next] ?? targets[0];
  next = (next + 1) % targets.length;
  proxy.web(req, res, { target });
});
server.listen(port, '127.0.0.1');
