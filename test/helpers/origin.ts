import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { once } from 'node:events';

/** What an origin saw of one request. */
export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly rawHeaders: readonly string[];
}

export interface Origin {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  readonly server: Server;
  readonly seen: SeenRequest[];
  /** TCP connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

export type OriginHandler = (req: IncomingMessage, res: ServerResponse, origin: Origin) => void;

/** By default an origin answers with its name, after reading the whole request body. */
export const answerWithName: OriginHandler = (req, res, origin) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain', 'x-origin': origin.name }).end(origin.name));
};

/**
 * A real HTTP server on 127.0.0.1 with an ephemeral port (or at `at`: another
 * loopback address, a given port), recording what it receives. Close it in
 * `t.after`.
 */
export async function startOrigin(name: string, handler: OriginHandler = answerWithName, at: { readonly host?: string; readonly port?: number } = {}): Promise<Origin> {
  const server = createServer();
  const sockets = new Set<Socket>();
  const origin: Origin = {
    name,
    port: 0,
    address: '',
    server,
    seen: [],
    connections: 0,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  server.on('connection', (socket: Socket) => {
    origin.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    origin.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders });
    handler(req, res, origin);
  });
  const host = at.host ?? '127.0.0.1';
  server.listen(at.port ?? 0, host);
  await once(server, 'listening'); // rejects on 'error' (EADDRINUSE)
  // A test that fails before registering its cleanup must not hang the run on an open origin.
  server.unref();
  const { port } = server.address() as AddressInfo;
  Object.assign(origin, { port, address: `${host}:${port}` });
  return origin;
}

/** Starts `count` origins named `${prefix}0`, `${prefix}1`, ... */
export function startOrigins(count: number, prefix = 'origin', handler?: OriginHandler): Promise<Origin[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => startOrigin(`${prefix}${i}`, handler)));
}

/**
 * One origin on each of `hosts` (loopback addresses: 127.0.0.2, ::1, …), all
 * on the same port, each named by its host: what a DNS name's A/AAAA records
 * point at (they carry no port). Retries with another port when one is taken
 * on some address.
 */
export async function startOriginsOnOnePort(hosts: readonly string[], handler: OriginHandler = answerWithName): Promise<Origin[]> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const first = await startOrigin(hosts[0]!, handler, { host: hosts[0]! });
    const all = [first];
    try {
      for (const host of hosts.slice(1)) all.push(await startOrigin(host, handler, { host, port: first.port }));
      return all;
    } catch {
      await Promise.all(all.map((origin) => origin.close()));
    }
  }
  throw new Error(`no port free on every one of ${hosts.join(', ')}`);
}
