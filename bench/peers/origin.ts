/**
 * Fallback static origin, used only when nginx is not installed:
 * `node bench/peers/origin.ts <port,port,...>` serves GET /small ("ok\n") and
 * GET /64k (65536 bytes) with keep-alive on every listed port. Slower than
 * nginx, so with it the origin may become the bottleneck; run.ts says so.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

const SMALL = Buffer.from('ok\n');
const LARGE = Buffer.alloc(65536, 'x');

function handle(req: IncomingMessage, res: ServerResponse): void {
  const body = req.url === '/small' ? SMALL : req.url === '/64k' ? LARGE : undefined;
  if (body === undefined) {
    res.writeHead(404, ['Content-Length', '0']);
    res.end();
    return;
  }
  res.writeHead(200, ['Content-Type', 'application/octet-stream', 'Content-Length', String(body.length)]);
  res.end(body);
}

const ports = (process.argv[2] ?? '').split(',').map(Number);
if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p <= 0)) {
  console.error('usage: origin.ts <port,port,...>');
  process.exit(2);
}
for (const port of ports) {
  const server = createServer({ keepAliveTimeout: 65_000 }, handle);
  server.listen(port, '127.0.0.1');
}
