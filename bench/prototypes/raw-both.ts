/**
 * Data-path prototype 5: hand-written HTTP/1.1 on both sides, net.Server
 * downstream and net.Socket upstream; no node:http objects at all.
 *
 *   node bench/prototypes/raw-both.ts <port> <host:port,host:port,...>
 *
 * Why it exists: the node:http server alone (bench/peers/origin.ts answering
 * directly, no upstream) already costs more CPU per request than the product
 * target allows, so any design that keeps node:http downstream cannot reach
 * it. This prototype prices the alternative.
 *
 * Per downstream socket a `Client`, per upstream socket a `Conn`, handlers
 * bound once. Request head: found with indexOf("\r\n\r\n"), parsed strictly
 * (see `parseRequest`), rebuilt without hop-by-hop headers and written to an
 * idle upstream socket (LIFO per backend). Bodies in both directions are
 * forwarded as raw bytes, framing (Content-Length or chunked) tracked by
 * `Framer` only to find where the message ends, so chunked bodies pass through
 * unchanged. Response head rebuilt the same way. Backpressure both ways: the
 * reading socket is paused while the writing one's write() returns false.
 * Pipelined requests are read one at a time (the client socket is paused
 * until the current response is complete).
 *
 * Shortcuts (benchmark prototype, not product code):
 * - no timeouts of any kind (header, idle, upstream connect/response);
 * - no limit on header count beyond a 64 KiB head; no obs-fold (rejected);
 * - 1xx interim responses dropped; Upgrade/CONNECT rejected with 501;
 * - upstream failures before the response head give 502, no retry except one
 *   retry of a body-less request whose reused upstream socket closed silently;
 * - absolute-form request targets are passed through unchanged.
 */
import { connect, createServer, type Socket } from 'node:net';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const CRLFCRLF = Buffer.from('\r\n\r\n');
const MAX_HEAD = 64 * 1024;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\0-\x08\x0a-\x1f\x7f]/;

// Framer states.
const DONE = 0;
const LENGTH = 1;
const C_SIZE = 2;
const C_DATA = 3;
const C_CRLF = 4;
const C_TRAILER = 5;
const UNTIL_CLOSE = 6;

/** Tracks Content-Length / chunked framing over raw bytes to find where a message body ends. */
class Framer {
  state = DONE;
  remaining = 0;
  line = '';

  reset(state: number, length: number): void {
    this.state = state;
    this.remaining = length;
    this.line = '';
  }

  /** Scans buf from pos; returns the offset just past the body's end, or -1 if it does not end in buf. */
  scan(buf: Buffer, pos: number): number {
    while (pos < buf.length) {
      switch (this.state) {
        case DONE:
          return pos;
        case LENGTH: {
          const n = Math.min(this.remaining, buf.length - pos);
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.state = DONE;
            return pos;
          }
          break;
        }
        case C_SIZE:
        case C_TRAILER: {
          const nl = buf.indexOf(10, pos);
          if (nl < 0) {
            this.line += buf.toString('latin1', pos);
            if (this.line.length > 4096) throw new Error('chunk line too long');
            return -1;
          }
          const line = this.line + buf.toString('latin1', pos, nl);
          this.line = '';
          pos = nl + 1;
          if (this.state === C_TRAILER) {
            if (line === '\r' || line === '') {
              this.state = DONE;
              return pos;
            }
            break;
          }
          const m = /^([0-9a-fA-F]{1,12})(?:;[^\r]*)?\r$/.exec(line);
          if (m === null) throw new Error('bad chunk size line');
          const size = Number.parseInt(m[1] as string, 16);
          if (size === 0) this.state = C_TRAILER;
          else {
            this.remaining = size;
            this.state = C_DATA;
          }
          break;
        }
        case C_DATA: {
          const n = Math.min(this.remaining, buf.length - pos);
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.remaining = 2;
            this.state = C_CRLF;
          }
          break;
        }
        case C_CRLF: {
          const n = Math.min(this.remaining, buf.length - pos);
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = C_SIZE;
          break;
        }
        case UNTIL_CLOSE:
          return -1;
      }
    }
    return this.state === DONE ? pos : -1;
  }
}

/** Thrown for malformed requests; answered with `status` and a closed connection. */
class BadRequest extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

class Upstream {
  readonly host: string;
  readonly port: number;
  readonly hostPort: string;
  readonly idle: Conn[] = [];

  constructor(hostPort: string) {
    const [host, port] = hostPort.split(':');
    this.host = host ?? '127.0.0.1';
    this.port = Number(port);
    this.hostPort = hostPort;
  }

  acquire(): Conn {
    return this.idle.pop() ?? new Conn(this);
  }
}

/** One downstream connection. */
class Client {
  readonly socket: Socket;
  partial: Buffer | null = null;
  /** Bytes that arrived while an exchange was in flight (pipelining), replayed after it. */
  pending: Buffer | null = null;
  conn: Conn | null = null;
  /** Request body still being forwarded. */
  readonly body = new Framer();
  keepAlive = true;
  http10 = false;
  isHead = false;
  head = '';
  hasBody = false;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
    socket.on('drain', this.onDrain);
  }

  readonly onData = (chunk: Buffer): void => {
    try {
      this.consume(chunk);
    } catch (err) {
      if (err instanceof BadRequest) this.reject(err.status);
      else this.socket.destroy();
    }
  };

  consume(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      const conn = this.conn;
      if (conn !== null) {
        if (this.body.state === DONE) {
          // Next pipelined request: hold it until this exchange completes.
          const rest = pos === 0 ? chunk : chunk.subarray(pos);
          this.pending = this.pending === null ? rest : Buffer.concat([this.pending, rest]);
          this.socket.pause();
          return;
        }
        const end = this.body.scan(chunk, pos);
        const stop = end < 0 ? chunk.length : end;
        if (!conn.socket.write(pos === 0 && stop === chunk.length ? chunk : chunk.subarray(pos, stop))) {
          this.socket.pause();
          conn.socket.once('drain', this.resume);
        }
        pos = stop;
        continue;
      }
      const buf = this.partial === null ? (pos === 0 ? chunk : chunk.subarray(pos)) : Buffer.concat([this.partial, chunk.subarray(pos)]);
      const end = buf.indexOf(CRLFCRLF);
      if (end < 0) {
        if (buf.length > MAX_HEAD) throw new BadRequest(431, 'request head too large');
        this.partial = buf;
        return;
      }
      this.partial = null;
      this.parseRequest(buf, end);
      this.conn = UPSTREAMS[(next = next + 1 === UPSTREAMS.length ? 0 : next + 1)]!.acquire();
      this.conn.start(this);
      chunk = buf;
      pos = end + 4;
    }
  }

  readonly resume = (): void => {
    this.socket.resume();
  };

  /**
   * Strict request parse: method and header names are tokens, values have no
   * control characters, no obs-fold, Transfer-Encoding must be exactly
   * "chunked" and excludes Content-Length, Content-Length must be one decimal
   * value. Sets the framing of the body and builds the upstream head.
   */
  parseRequest(buf: Buffer, end: number): void {
    const lines = buf.toString('latin1', 0, end).split('\r\n');
    const reqLine = lines[0] as string;
    const sp1 = reqLine.indexOf(' ');
    const sp2 = reqLine.indexOf(' ', sp1 + 1);
    if (sp1 <= 0 || sp2 < 0 || reqLine.indexOf(' ', sp2 + 1) >= 0) throw new BadRequest(400, 'bad request line');
    const method = reqLine.slice(0, sp1);
    const target = reqLine.slice(sp1 + 1, sp2);
    const version = reqLine.slice(sp2 + 1);
    if (!TOKEN.test(method) || target === '' || BAD_VALUE.test(target)) throw new BadRequest(400, 'bad request line');
    if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') throw new BadRequest(505, 'unsupported version');
    if (method === 'CONNECT') throw new BadRequest(501, 'CONNECT unsupported');
    let head = `${method} ${target} HTTP/1.1\r\n`;
    let contentLength = -1;
    let chunked = false;
    let hasHost = false;
    let conn = '';
    for (let i = 1; i < lines.length; i++) {
      const l = lines[i] as string;
      const colon = l.indexOf(':');
      if (colon <= 0) throw new BadRequest(400, 'bad header line');
      const name = l.slice(0, colon);
      if (!TOKEN.test(name)) throw new BadRequest(400, 'bad header name');
      const value = l.slice(colon + 1).trim();
      if (BAD_VALUE.test(value)) throw new BadRequest(400, 'bad header value');
      const lower = name.toLowerCase();
      if (lower === 'content-length') {
        if (!/^\d{1,15}$/.test(value) || (contentLength >= 0 && Number(value) !== contentLength)) throw new BadRequest(400, 'bad content-length');
        contentLength = Number(value);
      } else if (lower === 'transfer-encoding') {
        if (value.toLowerCase() !== 'chunked' || chunked) throw new BadRequest(501, 'unsupported transfer-encoding');
        chunked = true;
      } else if (lower === 'connection') conn += `,${value.toLowerCase()}`;
      else if (lower === 'upgrade') throw new BadRequest(501, 'upgrade unsupported');
      else if (lower === 'host') {
        if (hasHost) throw new BadRequest(400, 'duplicate host');
        hasHost = true;
      }
      if (HOP_BY_HOP.has(lower)) continue;
      head += `${name}: ${value}\r\n`;
    }
    if (chunked && contentLength >= 0) throw new BadRequest(400, 'both transfer-encoding and content-length');
    if (!hasHost && version === 'HTTP/1.1') throw new BadRequest(400, 'missing host');
    if (conn !== '') {
      head = dropNamed(head, conn);
      this.keepAlive = !conn.includes('close') && (version === 'HTTP/1.1' || conn.includes('keep-alive'));
    } else this.keepAlive = version === 'HTTP/1.1';
    if (chunked) {
      head += 'Transfer-Encoding: chunked\r\n';
      this.body.reset(C_SIZE, 0);
    } else this.body.reset(contentLength > 0 ? LENGTH : DONE, contentLength);
    this.isHead = method === 'HEAD';
    this.http10 = version === 'HTTP/1.0';
    this.hasBody = this.body.state !== DONE;
    this.head = `${head}\r\n`;
  }

  /** The exchange is complete: keep reading this client or close it. */
  exchangeDone(closeClient: boolean): void {
    this.conn = null;
    if (closeClient || !this.keepAlive) {
      this.socket.end();
      return;
    }
    const pending = this.pending;
    this.pending = null;
    this.socket.resume();
    if (pending !== null) this.onData(pending);
  }

  reject(status: number): void {
    this.keepAlive = false;
    this.socket.end(`HTTP/1.1 ${status} ${status === 502 ? 'Bad Gateway' : 'Error'}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    this.socket.pause();
  }

  readonly onDrain = (): void => {
    this.conn?.socket.resume();
  };

  readonly onError = (): void => {
    // 'close' follows.
  };

  readonly onClose = (): void => {
    const conn = this.conn;
    this.conn = null;
    if (conn !== null) conn.abandon();
  };
}

/** One upstream connection. */
class Conn {
  readonly upstream: Upstream;
  readonly socket: Socket;
  client: Client | null = null;
  readonly body = new Framer();
  partial: Buffer | null = null;
  inHead = false;
  keepAlive = true;
  reused = false;
  gotBytes = false;

  constructor(upstream: Upstream) {
    this.upstream = upstream;
    this.socket = connect({ host: upstream.host, port: upstream.port });
    this.socket.setNoDelay(true);
    this.socket.on('data', this.onData);
    this.socket.on('close', this.onClose);
    this.socket.on('error', this.onError);
  }

  start(client: Client): void {
    this.client = client;
    this.inHead = true;
    this.keepAlive = true;
    this.gotBytes = false;
    this.socket.write(client.head, 'latin1');
  }

  readonly onData = (chunk: Buffer): void => {
    this.gotBytes = true;
    // Corked so a response head and the body bytes of the same read leave in one writev.
    const out = this.client?.socket;
    out?.cork();
    try {
      this.consume(chunk);
    } catch {
      this.fail();
    } finally {
      out?.uncork();
    }
  };

  consume(chunk: Buffer): void {
    const client = this.client;
    if (client === null) {
      this.socket.destroy(); // bytes on an idle socket: out of sync
      return;
    }
    let pos = 0;
    if (this.inHead) {
      const buf = this.partial === null ? chunk : Buffer.concat([this.partial, chunk]);
      const end = buf.indexOf(CRLFCRLF);
      if (end < 0) {
        if (buf.length > MAX_HEAD) throw new Error('response head too large');
        this.partial = buf;
        return;
      }
      this.partial = null;
      const head = this.parseResponse(buf, end, client);
      pos = end + 4;
      if (head === '') {
        // Interim 1xx response: parse what follows as a new head.
        if (pos < buf.length) this.consume(buf.subarray(pos));
        return;
      }
      this.inHead = false;
      client.socket.write(head, 'latin1');
      chunk = buf;
    }
    const stop = this.body.scan(chunk, pos);
    if (stop >= 0) {
      this.finish(chunk, pos, stop);
      return;
    }
    if (pos < chunk.length && !client.socket.write(pos === 0 ? chunk : chunk.subarray(pos))) this.socket.pause();
  }

  /** Forwards buf[pos, stop) as the last body bytes and completes the exchange. */
  finish(buf: Buffer, pos: number, stop: number): void {
    const client = this.client as Client;
    if (stop > pos) client.socket.write(pos === 0 && stop === buf.length ? buf : buf.subarray(pos, stop));
    if (stop < buf.length) this.keepAlive = false; // bytes past the response: do not reuse
    this.client = null;
    this.socket.resume();
    if (this.keepAlive && !this.socket.destroyed) {
      this.reused = true;
      this.upstream.idle.push(this);
    } else this.socket.destroy();
    client.exchangeDone(false);
  }

  /**
   * Parses the response head and returns the downstream head ('' for 1xx).
   * Sets the body framing; bodiless responses are framed as DONE.
   */
  parseResponse(buf: Buffer, end: number, client: Client): string {
    const lines = buf.toString('latin1', 0, end).split('\r\n');
    const status = lines[0] as string;
    if (!status.startsWith('HTTP/1.')) throw new Error('bad status line');
    const code = Number(status.slice(9, 12));
    if (code >= 100 && code < 200) return '';
    const http10 = status.charCodeAt(7) === 48;
    let head = `HTTP/1.1 ${status.slice(9)}\r\n`;
    let contentLength = -1;
    let chunked = false;
    let conn = '';
    for (let i = 1; i < lines.length; i++) {
      const l = lines[i] as string;
      const colon = l.indexOf(':');
      if (colon <= 0) throw new Error('bad header line');
      const name = l.slice(0, colon);
      const value = l.slice(colon + 1).trim();
      const lower = name.toLowerCase();
      if (lower === 'content-length') contentLength = Number(value);
      else if (lower === 'transfer-encoding') chunked = value.toLowerCase().endsWith('chunked');
      else if (lower === 'connection') conn += `,${value.toLowerCase()}`;
      if (HOP_BY_HOP.has(lower) && !(chunked && lower === 'transfer-encoding')) continue;
      head += `${name}: ${value}\r\n`;
    }
    if (chunked && contentLength >= 0) throw new Error('both transfer-encoding and content-length');
    if (conn !== '') {
      head = dropNamed(head, conn);
      this.keepAlive = !conn.includes('close') && (!http10 || conn.includes('keep-alive'));
    } else if (http10) this.keepAlive = false;
    if (client.isHead || code === 204 || code === 304) this.body.reset(DONE, 0);
    else if (chunked) this.body.reset(C_SIZE, 0);
    else if (contentLength >= 0) this.body.reset(contentLength > 0 ? LENGTH : DONE, contentLength);
    else {
      // Body delimited by the upstream closing: the client connection must close too.
      this.keepAlive = false;
      client.keepAlive = false;
      this.body.reset(UNTIL_CLOSE, 0);
    }
    if (!client.keepAlive) head += 'Connection: close\r\n';
    else if (client.http10) head += 'Connection: keep-alive\r\n';
    return `${head}\r\n`;
  }

  /** Upstream failed: 502 before the response head, otherwise cut the client off. */
  fail(): void {
    const client = this.client;
    this.client = null;
    this.socket.destroy();
    if (client === null) return;
    client.conn = null;
    if (this.inHead) client.reject(502);
    else client.socket.destroy();
  }

  /** The client went away mid-exchange: this socket is mid-message, drop it. */
  abandon(): void {
    this.client = null;
    this.socket.destroy();
  }

  readonly onError = (): void => {
    // 'close' follows.
  };

  readonly onClose = (): void => {
    const client = this.client;
    if (client === null) {
      const i = this.upstream.idle.indexOf(this);
      if (i >= 0) this.upstream.idle.splice(i, 1);
      return;
    }
    if (!this.inHead && this.body.state === UNTIL_CLOSE) {
      this.client = null;
      client.exchangeDone(true);
    } else if (this.inHead && !this.gotBytes && this.reused && !client.hasBody) {
      // Stale keep-alive socket closed before answering: retry once on a fresh one.
      this.client = null;
      const fresh = new Conn(this.upstream);
      client.conn = fresh;
      fresh.start(client);
    } else this.fail();
  };
}

/** Removes header lines named in a Connection header value from a built head. */
function dropNamed(head: string, connTokens: string): string {
  const named = new Set(connTokens.split(',').map((t) => t.trim()));
  named.delete('close');
  named.delete('keep-alive');
  named.delete('');
  if (named.size === 0) return head;
  return head
    .split('\r\n')
    .filter((line, i) => i === 0 || !named.has(line.slice(0, line.indexOf(':')).toLowerCase()))
    .join('\r\n');
}

let UPSTREAMS: Upstream[] = [];
let next = -1;

function main(): void {
  const port = Number(process.argv[2]);
  UPSTREAMS = (process.argv[3] ?? '')
    .split(',')
    .filter((b) => b !== '')
    .map((b) => new Upstream(b));
  if (!Number.isInteger(port) || UPSTREAMS.length === 0 || UPSTREAMS.some((u) => !Number.isInteger(u.port))) {
    console.error('usage: raw-both.ts <port> <host:port,...>');
    process.exit(2);
  }
  const server = createServer({ noDelay: true }, (socket) => {
    new Client(socket);
  });
  server.listen(port, '127.0.0.1');
}

main();
