import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';

/** The servers the kit can stop gracefully: `node:http` and `node:https` (what Express, Fastify and Hono's node server run on). */
export type NodeServer = HttpServer | HttpsServer;

interface SocketState {
  /** Requests seen on this socket, in total. */
  requests: number;
  /** Responses not yet closed. */
  readonly open: Set<ServerResponse>;
}

/**
 * Follows every connection and response of a server so a shutdown can close
 * them without cutting a response: once {@link startClosing} is called,
 * responses whose head is not out yet get `Connection: close` (node then
 * closes the connection after them), a connection whose response already went
 * out keep-alive is closed right after that response, and idle connections
 * are closed at once.
 */
export class ConnectionTracker {
  readonly #server: NodeServer;
  /** TCP sockets from 'connection', and the socket each request arrived on (for https, its TLS socket). */
  readonly #sockets = new Map<Socket, SocketState>();
  #closing = false;

  constructor(server: NodeServer) {
    this.#server = server;
    server.on('connection', this.#onConnection);
    // Prepended so the header is set before the application's handler can send the head.
    server.prependListener('request', this.#onRequest);
  }

  /** Responses in progress. */
  get inFlight(): number {
    let count = 0;
    for (const state of this.#sockets.values()) count += state.open.size;
    return count;
  }

  /** Switches every connection to closing; call it right after the server stopped accepting. */
  startClosing(): void {
    if (this.#closing) return;
    this.#closing = true;
    for (const state of this.#sockets.values()) for (const res of state.open) closeAfter(res);
    // Idle keep-alive connections: node knows exactly which ones have no request in progress.
    this.#server.closeIdleConnections();
    // A connection that never sent a byte counts as busy for node (its header timer runs), and
    // would hold server.close() open; nothing is lost by closing it. (Under TLS the handshake
    // counts as bytes, so such connections are left to node and the timeout.)
    for (const [socket, state] of this.#sockets) {
      if (state.requests === 0 && socket.bytesRead === 0) socket.destroy();
    }
  }

  /** Cuts every connection, responses in flight included (the shutdown timeout). */
  cutAll(): void {
    this.#server.closeAllConnections();
    for (const socket of this.#sockets.keys()) socket.destroy();
  }

  /** Stops following the server. */
  dispose(): void {
    this.#server.off('connection', this.#onConnection);
    this.#server.off('request', this.#onRequest);
  }

  #state(socket: Socket): SocketState {
    let state = this.#sockets.get(socket);
    if (state === undefined) {
      state = { requests: 0, open: new Set() };
      this.#sockets.set(socket, state);
      socket.once('close', () => this.#sockets.delete(socket));
    }
    return state;
  }

  readonly #onConnection = (socket: Socket): void => {
    this.#state(socket);
  };

  readonly #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket;
    const state = this.#state(socket);
    state.requests++;
    state.open.add(res);
    if (this.#closing) closeAfter(res);
    res.once('close', () => {
      state.open.delete(res);
      // A response that went out keep-alive before the shutdown: close its connection now that it is done.
      if (this.#closing && state.open.size === 0 && !socket.destroyed) socket.destroySoon();
    });
  };
}

/** `Connection: close` on a response whose head has not been sent; the others are closed after they finish. */
function closeAfter(res: ServerResponse): void {
  if (res.headersSent) return;
  res.setHeader('connection', 'close');
}
