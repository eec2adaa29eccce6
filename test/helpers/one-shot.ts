import { connect } from 'node:net';

/** What {@link getOnConnection} read: the status, the head (status line and fields) and the body. */
export interface OneShotReply {
  readonly status: number;
  readonly head: string;
  readonly body: string;
}

/**
 * One GET on its own TCP connection, as HTTP/1.0: the response comes back
 * unchunked and the connection closes after it, so every call is a new
 * connection (the kernel picks the worker that accepts it).
 */
export function getOnConnection(port: number, path = '/'): Promise<OneShotReply> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const split = data.indexOf('\r\n\r\n');
      const head = split === -1 ? data : data.slice(0, split);
      resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 0), head, body: split === -1 ? '' : data.slice(split + 4) });
    });
    socket.write(`GET ${path} HTTP/1.0\r\nhost: test\r\n\r\n`);
  });
}
