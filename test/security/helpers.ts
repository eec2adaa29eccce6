/**
 * Raw-socket helpers for the security tests: a recording backend that speaks
 * just enough HTTP/1.1 to answer what usher forwards, a backend whose every
 * connection is scripted by the test, and a client that reads responses
 * byte-exactly. Nothing here uses node:http, whose own parser would hide the
 * bytes that matter (it normalises, rejects or merges exactly what these
 * tests look for).
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { once } from 'node:events';

/** The fixed answer of the recording backend to every request it can parse. */
export const BACKEND_RESPONSE = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

/** One accepted upstream connection, as the backend saw it. */
export interface RecordedConnection {
  /** Every byte received on this connection, latin1. */
  received: string;
  closed: boolean;
}

/** A `net` server on 127.0.0.1 that records every byte and answers each request it can frame. */
export interface RecordingBackend {
  readonly address: string;
  readonly connections: RecordedConnection[];
  /** Complete requests (head and body, exactly as received), in the order they completed. */
  readonly requests: string[];
  /** All bytes received, every connection in accept order. */
  allReceived(): string;
  /** Lines of the received bytes that look like request lines (`METHOD target HTTP/x.y`). */
  requestLines(): string[];
  close(): Promise<void>;
}

const REQUEST_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ \S+ HTTP\/\d\.\d$/;
const REQUEST_LINE_ANYWHERE = /([A-Z]*) (\S+) (HTTP\/\d\.\d)(?=\r?\n)/g;

/**
 * Every request line in `bytes`, wherever it is: at a line start, or glued to
 * the end of a body (`helloGET /x HTTP/1.1`). The method is the run of
 * capital letters before the target, so `helloGET` reads as `GET`.
 */
export function requestLinesIn(bytes: string): string[] {
  return [...bytes.matchAll(REQUEST_LINE_ANYWHERE)].map((m) => `${m[1]} ${m[2]} ${m[3]}`);
}

/**
 * Starts the recording backend. It frames requests by Content-Length or a
 * final `chunked` Transfer-Encoding (bodies it cannot frame stop parsing on
 * that connection; the bytes are still recorded), sends `100 Continue` for
 * `Expect: 100-continue`, and answers {@link BACKEND_RESPONSE}.
 */
export async function startRecordingBackend(): Promise<RecordingBackend> {
  const connections: RecordedConnection[] = [];
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    const record: RecordedConnection = { received: '', closed: false };
    connections.push(record);
    sockets.add(socket);
    let pending = '';
    let continued = false;
    socket.on('data', (chunk) => {
      const text = chunk.toString('latin1');
      record.received += text;
      pending += text;
      for (;;) {
        const parsed = frameRequest(pending);
        if (parsed === 'invalid') {
          pending = '';
          socket.removeAllListeners('data');
          socket.on('data', (more: Buffer) => (record.received += more.toString('latin1')));
          return;
        }
        if (parsed.expectContinue && !continued) {
          continued = true;
          socket.write('HTTP/1.1 100 Continue\r\n\r\n');
        }
        if (parsed.length === undefined) return;
        requests.push(pending.slice(0, parsed.length));
        pending = pending.slice(parsed.length);
        continued = false;
        socket.write(BACKEND_RESPONSE);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      record.closed = true;
      sockets.delete(socket);
    });
  });
  const address = await listen(server);
  return {
    address,
    connections,
    requests,
    allReceived: () => connections.map((c) => c.received).join(''),
    requestLines: () => connections.flatMap((c) => requestLinesIn(c.received)),
    close: () => closeServer(server, sockets),
  };
}

interface Framed {
  /** Bytes of the whole request once complete, else undefined. */
  readonly length: number | undefined;
  readonly expectContinue: boolean;
}

/** Where the first request in `data` ends, as far as a simple, strict backend can tell. */
function frameRequest(data: string): Framed | 'invalid' {
  const headEnd = data.indexOf('\r\n\r\n');
  if (headEnd < 0) return { length: undefined, expectContinue: false };
  const lines = data.slice(0, headEnd).split('\r\n');
  if (!REQUEST_LINE.test(lines[0] ?? '')) return 'invalid';
  let contentLength: number | undefined;
  let chunked = false;
  let expectContinue = false;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return 'invalid';
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim().toLowerCase();
    if (name === 'content-length') {
      if (!/^\d+$/.test(value) || contentLength !== undefined) return 'invalid';
      contentLength = Number(value);
    } else if (name === 'transfer-encoding') {
      chunked = value.split(',').at(-1)?.trim() === 'chunked';
      if (!chunked) return 'invalid';
    } else if (name === 'expect' && value === '100-continue') {
      expectContinue = true;
    }
  }
  if (chunked && contentLength !== undefined) return 'invalid';
  const bodyStart = headEnd + 4;
  if (chunked) {
    const end = chunkedEnd(data, bodyStart);
    if (end === 'invalid') return 'invalid';
    return { length: end, expectContinue };
  }
  const length = bodyStart + (contentLength ?? 0);
  return { length: data.length >= length ? length : undefined, expectContinue };
}

/** End of a chunked body starting at `i` (after trailers), undefined if incomplete. */
function chunkedEnd(data: string, i: number): number | undefined | 'invalid' {
  for (;;) {
    const lineEnd = data.indexOf('\r\n', i);
    if (lineEnd < 0) return undefined;
    const sizeText = data.slice(i, lineEnd).split(';')[0]!;
    if (!/^[0-9a-fA-F]{1,16}$/.test(sizeText)) return 'invalid';
    const size = parseInt(sizeText, 16);
    i = lineEnd + 2;
    if (size === 0) {
      // Trailer section: lines until an empty one.
      for (;;) {
        const end = data.indexOf('\r\n', i);
        if (end < 0) return undefined;
        if (end === i) return end + 2;
        i = end + 2;
      }
    }
    if (data.length < i + size + 2) return undefined;
    if (data.slice(i + size, i + size + 2) !== '\r\n') return 'invalid';
    i += size + 2;
  }
}

/** One accepted connection of a {@link ScriptedBackend}, handed to the test's script. */
export interface ScriptedConnection {
  readonly socket: Socket;
  /** Index of the connection, from 0, in accept order. */
  readonly index: number;
  /** Resolves with the bytes received so far once they contain a complete request head. */
  head(): Promise<string>;
}

/** A backend whose connections each run a script the test supplies. */
export interface ScriptedBackend {
  readonly address: string;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Resolves when the connection with this index has closed (from either side). */
  closed(index: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts a backend that runs `script(connection)` for every accepted
 * connection. Sockets are destroyed on close; a script error destroys its socket.
 */
export async function startScriptedBackend(script: (connection: ScriptedConnection) => Promise<void> | void): Promise<ScriptedBackend> {
  const sockets = new Set<Socket>();
  const closedPromises: Promise<void>[] = [];
  const closedWaiters: (() => void)[] = [];
  let accepted = 0;
  const server = createServer((socket) => {
    const index = accepted++;
    sockets.add(socket);
    let received = '';
    let wake: (() => void) | undefined;
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      wake?.();
    });
    socket.on('error', () => {});
    // Not `once(socket, 'close')`: it rejects on an 'error' first, and a reset is still a close here.
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve())).then(() => {
      sockets.delete(socket);
      wake?.();
    });
    closedPromises[index] = closed;
    closedWaiters.splice(0).forEach((resolve) => resolve());
    const connection: ScriptedConnection = {
      socket,
      index,
      async head() {
        while (!received.includes('\r\n\r\n')) {
          if (socket.destroyed) throw new Error(`backend connection ${index} closed before a request head arrived`);
          await new Promise<void>((resolve) => (wake = resolve));
        }
        return received;
      },
    };
    Promise.resolve()
      .then(() => script(connection))
      .catch(() => socket.destroy());
  });
  const address = await listen(server);
  return {
    address,
    get accepted() {
      return accepted;
    },
    async closed(index: number) {
      while (closedPromises[index] === undefined) await new Promise<void>((resolve) => closedWaiters.push(resolve));
      await closedPromises[index];
    },
    close: () => closeServer(server, sockets),
  };
}

/** What a {@link SequencedBackend} does for one request: write its answer (and maybe close). */
export type Answer = (socket: Socket) => void;

/** A backend that answers the n-th request it receives, on any connection, with the n-th {@link Answer}. */
export interface SequencedBackend {
  readonly address: string;
  /** Every byte received, per accepted connection, in accept order (latin1). */
  readonly received: string[];
  /** Requests received so far, all connections. */
  heads(): number;
  close(): Promise<void>;
}

/**
 * Starts a {@link SequencedBackend}. Requests are framed by their head and
 * Content-Length only (no chunked bodies): enough for the requests usher
 * forwards in these tests, and a request beyond `answers` gets no answer.
 */
export async function startSequencedBackend(answers: readonly Answer[]): Promise<SequencedBackend> {
  const received: string[] = [];
  const sockets = new Set<Socket>();
  let heads = 0;
  const server = createServer((socket) => {
    const index = received.push('') - 1;
    sockets.add(socket);
    let pending = '';
    socket.on('data', (chunk) => {
      const text = chunk.toString('latin1');
      received[index] += text;
      pending += text;
      for (;;) {
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(pending.slice(0, end))?.[1] ?? 0);
        if (pending.length < end + 4 + length) return;
        pending = pending.slice(end + 4 + length);
        answers[heads++]?.(socket);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  const address = await listen(server);
  return { address, received, heads: () => heads, close: () => closeServer(server, sockets) };
}

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  server.unref(); // a test that fails before its cleanup must not hang the run
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A response as read from the raw client stream. */
export interface RawResponse {
  readonly status: number;
  /** Status line and header lines, without the final CRLFCRLF. */
  readonly head: string;
  /** Lowercased header names; repeated headers joined with ', '. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/**
 * A raw client connection that reads HTTP/1.1 responses exactly as sent.
 * Every wait has a deadline, so a wrong answer fails the test instead of hanging it.
 */
export class RawClient {
  readonly socket: Socket;
  /** Everything received, latin1. */
  data = '';
  /** How much of `data` the responses read so far consumed. */
  offset = 0;
  closed = false;
  /** The peer sent FIN (or the connection closed). */
  ended = false;
  /** Set when the connection ended by a reset instead of a FIN. */
  resetError: Error | undefined;
  #wake: (() => void) | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk) => {
      this.data += chunk.toString('latin1');
      this.#wake?.();
    });
    socket.on('error', (err) => {
      this.resetError = err;
    });
    socket.on('end', () => {
      this.ended = true;
      this.#wake?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.closed = true;
      this.#wake?.();
    });
  }

  /**
   * Connects to 127.0.0.1:`port`. With `halfOpen`, the client keeps its side
   * open after the server's FIN and can still send, as a raw attacker would.
   */
  static async connect(port: number, halfOpen = false): Promise<RawClient> {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: halfOpen });
    await once(socket, 'connect');
    return new RawClient(socket);
  }

  write(bytes: string | Buffer): void {
    this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  /** Waits until `ready()` holds or the connection closes; throws at the deadline. */
  async #until(ready: () => boolean, what: string, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!ready() && !this.ended) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; received so far: ${JSON.stringify(this.data)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /**
   * Reads the next response (1xx included). Returns undefined when the
   * connection closed before a complete response arrived.
   */
  async readResponse(timeoutMs = 5000): Promise<RawResponse | undefined> {
    let parsed: { response: RawResponse; end: number } | undefined;
    await this.#until(() => (parsed = parseResponse(this.data, this.offset)) !== undefined, 'a response', timeoutMs);
    parsed ??= parseResponse(this.data, this.offset);
    if (parsed === undefined) return undefined;
    this.offset = parsed.end;
    return parsed.response;
  }

  /** Waits for `text` to appear after the responses read so far. */
  async waitFor(text: string, timeoutMs = 5000): Promise<boolean> {
    await this.#until(() => this.data.includes(text, this.offset), JSON.stringify(text), timeoutMs);
    return this.data.includes(text, this.offset);
  }

  /** Waits until the peer closes its side of the connection (FIN or reset); throws at the deadline. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    await this.#until(() => false, 'the connection to close', timeoutMs);
  }

  /** Bytes received after the responses read so far. */
  get unread(): string {
    return this.data.slice(this.offset);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Parses one response at `data[from..]` framed by Content-Length, chunked or no body (1xx, 204, 304). */
function parseResponse(data: string, from: number): { response: RawResponse; end: number } | undefined {
  const headEnd = data.indexOf('\r\n\r\n', from);
  if (headEnd < 0) return undefined;
  const head = data.slice(from, headEnd);
  const lines = head.split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? NaN);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const bodyStart = headEnd + 4;
  let end = bodyStart;
  if (status >= 200 && status !== 204 && status !== 304) {
    if (headers['content-length'] !== undefined) {
      end = bodyStart + Number(headers['content-length']);
      if (data.length < end) return undefined;
    } else if (headers['transfer-encoding'] !== undefined) {
      const chunkedStop = chunkedEnd(data, bodyStart);
      if (chunkedStop === undefined || chunkedStop === 'invalid') return undefined;
      end = chunkedStop;
    } else {
      return undefined; // read until close: not complete while open
    }
  }
  return { response: { status, head, headers, body: data.slice(bodyStart, end) }, end };
}
