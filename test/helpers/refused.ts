import { connect } from 'node:net';

/**
 * Loopback ports nothing listens on, so a connect to one is refused at once: a
 * dead backend for tests.
 *
 * They are taken from the low ports, below Linux's ephemeral range
 * (32768-60999). The obvious trick, listening on port 0 and closing the server
 * to reuse its number, races when test files run in parallel. The freed port
 * can be handed to another test's server, which then answers or hangs in place
 * of a dead backend (seen once in CI: an h2c test waited 60 s and got a 504).
 * It can also be chosen as the source port of a connect to itself (TCP
 * self-connect). Each candidate is checked (the connect must be refused) and
 * each call returns a different port, for tests that need several dead backends.
 */
const FIRST = 1;
const LAST = 1023;
let next = FIRST;

export async function refusedPort(): Promise<number> {
  while (next <= LAST) {
    const port = next++;
    if (await isRefused(port)) return port;
  }
  throw new Error(`no refused loopback port left in ${FIRST}-${LAST}`);
}

/** `127.0.0.1:PORT` of a {@link refusedPort}: a dead backend's address. */
export async function refusedAddress(): Promise<string> {
  return `127.0.0.1:${await refusedPort()}`;
}

function isRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (refused: boolean): void => {
      socket.destroy();
      resolve(refused);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(false));
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code === 'ECONNREFUSED'));
  });
}
