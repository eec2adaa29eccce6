import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';

/**
 * A loopback port free right now, for a process that must listen at an
 * address known in advance (a child usher's admin API). Another process could
 * take it before the child binds; the child then fails to start, loudly. For
 * a port that must stay dead, use refused.ts instead.
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
