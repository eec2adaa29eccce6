/**
 * Data-path prototype 3: node:http downstream, a hand-written HTTP/1.1 client
 * on net.Socket upstream.
 *
 *   node bench/prototypes/raw-socket.ts <port> <host:port,host:port,...>
 *
 * Per backend: a LIFO stack of idle keep-alive sockets. Per request: the
 * request head is written as one latin1 string; the response head is found
 * with indexOf("\r\n\r\n") and parsed by splitting lines; the body is framed by
 * Content-Length, chunked (decoded here, re-framed by Node's ServerResponse)
 * or read-until-close, and written to the client with backpressure (the
 * upstream socket is paused while `res.write()` returns false). Every socket
 * carries one `Conn` object whose handlers are bound once, so a request
 * allocates no closures on the common path.
 *
 * Shortcuts (this is a benchmark prototype, not product code):
 * - no connect/header/body/idle timeouts; no cap on idle sockets per backend;
 * - trusts the backend: no limit on header count beyond a 64 KiB head, last
 *   Content-Length wins, no obs-fold, no validation of header names/values;
 * - 1xx interim responses are dropped; 101 / Upgrade and CONNECT unsupported;
 * - trailers of chunked responses are discarded;
 * - a request that fails on a reused socket before any response byte is
 *   retried once on a new socket only if it has no body;
 * - request header values are not re-validated: Node's parser already
 *   rejected CR/LF, so concatenating them into the head is safe.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const CRLFCRLF = Buffer.from('\r\n\r\n');
const MAX_HEAD = 64 * 1024;

// Body framing of the response being read.
const HEAD = 0;
const LENGTH = 1;
const CHUNK_SIZE = 2;
const CHUNK_DATA = 3;
const CHUNK_CRLF = 4;
const TRAILERS = 5;
const UNTIL_CLOSE = 6;
const IDLE = 7;

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
    return this.idle.pop() ?? new Conn(this, connect({ host: this.host, port: this.port }));
  }
}

class Conn {
  readonly upstream: Upstream;
  readonly socket: Socket;
  state = IDLE;
  /** True once the socket has completed an exchange (stale-keep-alive retry rule). */
  reused = false;
  res: ServerResponse | null = null;
  req: IncomingMessage | null = null;
  reqHead = '';
  reqHasBody = false;
  isHead = false;
  keepAlive = true;
  gotBytes = false;
  pausedFor: ServerResponse | null = null;
  partial: Buffer | null = null;
  remaining = 0;
  line = '';

  constructor(upstream: Upstream, socket: Socket) {
    this.upstream = upstream;
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
  }

  /** Sends one request on this socket; the response goes to `res`. */
  start(req: IncomingMessage, res: ServerResponse, head: string, hasBody: boolean, chunkedBody: boolean): void {
    this.state = HEAD;
    this.req = req;
    this.res = res;
    this.reqHead = head;
    this.reqHasBody = hasBody;
    this.isHead = req.method === 'HEAD';
    this.keepAlive = true;
    this.gotBytes = false;
    res.on('close', this.onClientClose);
    this.socket.write(head, 'latin1');
    if (hasBody) new BodyPump(req, this.socket, chunkedBody);
  }

  readonly onData = (chunk: Buffer): void => {
    this.gotBytes = true;
    try {
      this.consume(chunk);
    } catch (err) {
      this.fail(err as Error);
    }
  };

  consume(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      switch (this.state) {
        case HEAD: {
          const buf = this.partial === null ? chunk.subarray(pos) : Buffer.concat([this.partial, chunk.subarray(pos)]);
          const end = buf.indexOf(CRLFCRLF);
          if (end < 0) {
            if (buf.length > MAX_HEAD) throw new Error('response head too large');
            this.partial = buf;
            return;
          }
          this.partial = null;
          chunk = buf;
          pos = end + 4;
          if (this.parseHead(buf, end)) {
            // Bodiless response complete; anything after it means the socket is out of sync.
            if (pos < chunk.length) this.socket.destroy();
            return;
          }
          break;
        }
        case LENGTH: {
          const n = Math.min(this.remaining, chunk.length - pos);
          this.write(pos === 0 && n === chunk.length ? chunk : chunk.subarray(pos, pos + n));
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            if (pos < chunk.length) this.keepAlive = false; // bytes past the response: do not reuse
            this.finish();
            return;
          }
          break;
        }
        case CHUNK_SIZE: {
          const nl = chunk.indexOf(10, pos);
          if (nl < 0) {
            this.line += chunk.toString('latin1', pos);
            if (this.line.length > 1024) throw new Error('chunk size line too long');
            return;
          }
          this.line += chunk.toString('latin1', pos, nl);
          pos = nl + 1;
          const size = Number.parseInt(this.line, 16); // stops at ';' extensions and '\r'
          this.line = '';
          if (!Number.isFinite(size) || size < 0) throw new Error('bad chunk size');
          if (size === 0) this.state = TRAILERS;
          else {
            this.remaining = size;
            this.state = CHUNK_DATA;
          }
          break;
        }
        case CHUNK_DATA: {
          const n = Math.min(this.remaining, chunk.length - pos);
          this.write(chunk.subarray(pos, pos + n));
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.remaining = 2;
            this.state = CHUNK_CRLF;
          }
          break;
        }
        case CHUNK_CRLF: {
          const n = Math.min(this.remaining, chunk.length - pos);
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = CHUNK_SIZE;
          break;
        }
        case TRAILERS: {
          const nl = chunk.indexOf(10, pos);
          if (nl < 0) {
            this.line += chunk.toString('latin1', pos);
            return;
          }
          const blank = (this.line + chunk.toString('latin1', pos, nl)).trim() === '';
          this.line = '';
          pos = nl + 1;
          if (blank) {
            if (pos < chunk.length) this.keepAlive = false;
            this.finish();
            return;
          }
          break;
        }
        case UNTIL_CLOSE:
          this.write(pos === 0 ? chunk : chunk.subarray(pos));
          return;
        case IDLE:
          // Unsolicited bytes on an idle socket: it is out of sync.
          this.socket.destroy();
          return;
      }
    }
  }

  /**
   * Parses the status line and headers in buf[0, end), sends the response head
   * downstream and sets the body framing. Returns true when the exchange is
   * already complete (no body).
   */
  parseHead(buf: Buffer, end: number): boolean {
    const lines = buf.toString('latin1', 0, end).split('\r\n');
    const status = lines[0] ?? '';
    if (!status.startsWith('HTTP/1.')) throw new Error('bad status line');
    const code = Number(status.slice(9, 12));
    if (code >= 100 && code < 200) return false; // interim response: stay in HEAD, drop it
    const http10 = status.charCodeAt(7) === 48;
    const reason = status.slice(13);
    let contentLength = -1;
    let chunked = false;
    let connTokens = '';
    const headers: string[] = [];
    for (let i = 1; i < lines.length; i++) {
      const l = lines[i] as string;
      const colon = l.indexOf(':');
      if (colon <= 0) throw new Error('bad header line');
      const name = l.slice(0, colon);
      const value = l.slice(colon + 1).trim();
      const lower = name.toLowerCase();
      if (lower === 'content-length') contentLength = Number(value);
      else if (lower === 'transfer-encoding') chunked = value.toLowerCase().endsWith('chunked');
      else if (lower === 'connection') connTokens += `,${value.toLowerCase()}`;
      if (HOP_BY_HOP.has(lower)) continue;
      headers.push(name, value);
    }
    if (connTokens !== '') this.keepAlive = !connTokens.includes('close') && (!http10 || connTokens.includes('keep-alive'));
    else if (http10) this.keepAlive = false;
    const res = this.res as ServerResponse;
    res.writeHead(code, reason, connTokens === '' ? headers : dropNamed(headers, connTokens));
    if (this.isHead || code === 204 || code === 304 || contentLength === 0) {
      this.finish();
      return true;
    }
    if (chunked) this.state = CHUNK_SIZE;
    else if (contentLength > 0) {
      this.remaining = contentLength;
      this.state = LENGTH;
    } else {
      this.keepAlive = false;
      this.state = UNTIL_CLOSE;
    }
    return false;
  }

  write(data: Buffer): void {
    const res = this.res as ServerResponse;
    if (!res.write(data) && this.pausedFor === null) {
      this.pausedFor = res;
      this.socket.pause();
      res.once('drain', this.onDrain);
    }
  }

  readonly onDrain = (): void => {
    this.pausedFor = null;
    this.socket.resume();
  };

  /** Response complete: end it downstream and recycle or close the socket. */
  finish(): void {
    const res = this.res as ServerResponse;
    res.off('close', this.onClientClose);
    if (this.pausedFor !== null) {
      this.pausedFor.off('drain', this.onDrain);
      this.pausedFor = null;
      this.socket.resume();
    }
    this.res = null;
    this.req = null;
    this.state = IDLE;
    res.end();
    if (this.keepAlive && !this.socket.destroyed) {
      this.reused = true;
      this.upstream.idle.push(this);
    } else this.socket.destroy();
  }

  fail(err: Error): void {
    const res = this.res;
    this.state = IDLE;
    this.keepAlive = false;
    this.socket.destroy();
    if (res === null) return;
    res.off('close', this.onClientClose);
    this.res = null;
    if (res.headersSent) res.destroy(err);
    else {
      res.writeHead(502, ['Content-Length', '0', 'Connection', 'close']);
      res.end();
    }
  }

  readonly onError = (): void => {
    // 'close' follows and decides what happens to the exchange.
  };

  readonly onClose = (): void => {
    if (this.state === IDLE) {
      const i = this.upstream.idle.indexOf(this);
      if (i >= 0) this.upstream.idle.splice(i, 1);
      return;
    }
    const res = this.res as ServerResponse;
    const req = this.req as IncomingMessage;
    if (this.state === UNTIL_CLOSE) {
      this.keepAlive = false;
      this.finish();
    } else if (this.state === HEAD && !this.gotBytes && this.reused && !this.reqHasBody) {
      // Stale keep-alive socket closed under us before answering: retry once on a fresh one.
      res.off('close', this.onClientClose);
      this.state = IDLE;
      const fresh = new Conn(this.upstream, connect({ host: this.upstream.host, port: this.upstream.port }));
      fresh.start(req, res, this.reqHead, false, false);
    } else this.fail(new Error('upstream closed mid-response'));
  };

  /** Client left before the response was complete: the socket is mid-message, drop it. */
  readonly onClientClose = (): void => {
    this.res = null;
    this.state = IDLE;
    this.socket.destroy();
  };
}

/** Removes headers named in the upstream Connection header. */
function dropNamed(headers: string[], connTokens: string): string[] {
  const named = new Set(connTokens.split(',').map((t) => t.trim()));
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    if (!named.has(name.toLowerCase())) out.push(name, headers[i + 1] as string);
  }
  return out;
}

/** Streams a request body to the upstream socket with backpressure, optionally chunk-framed. */
class BodyPump {
  readonly #req: IncomingMessage;
  readonly #socket: Socket;
  readonly #chunked: boolean;

  constructor(req: IncomingMessage, socket: Socket, chunked: boolean) {
    this.#req = req;
    this.#socket = socket;
    this.#chunked = chunked;
    req.on('data', this.#onData);
    req.once('end', this.#onEnd);
  }

  readonly #onData = (chunk: Buffer): void => {
    const ok = this.#chunked ? this.#socket.write(`${chunk.length.toString(16)}\r\n`) && this.#socket.write(chunk) && this.#socket.write('\r\n') : this.#socket.write(chunk);
    if (!ok) {
      this.#req.pause();
      this.#socket.once('drain', this.#onDrain);
    }
  };

  readonly #onDrain = (): void => {
    this.#req.resume();
  };

  readonly #onEnd = (): void => {
    if (this.#chunked) this.#socket.write('0\r\n\r\n');
  };
}

function proxy(upstream: Upstream, req: IncomingMessage, res: ServerResponse): void {
  const raw = req.rawHeaders;
  let extra: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 10 && name.toLowerCase() === 'connection') extra = `${extra ?? ''},${(raw[i + 1] as string).toLowerCase()}`;
  }
  const named = extra === undefined ? undefined : new Set(extra.split(',').map((t) => t.trim()));
  let head = `${req.method} ${req.url} HTTP/1.1\r\n`;
  let hasHost = false;
  let hasLength = false;
  let chunked = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || named?.has(lower)) {
      if (lower === 'transfer-encoding') chunked = true;
      continue;
    }
    if (lower === 'host') hasHost = true;
    else if (lower === 'content-length') hasLength = true;
    head += `${name}: ${raw[i + 1] as string}\r\n`;
  }
  if (!hasHost) head += `Host: ${upstream.hostPort}\r\n`;
  const useChunked = chunked && !hasLength;
  if (useChunked) head += 'Transfer-Encoding: chunked\r\n';
  head += '\r\n';
  upstream.acquire().start(req, res, head, hasLength || useChunked, useChunked);
}

function main(): void {
  const port = Number(process.argv[2]);
  const upstreams = (process.argv[3] ?? '')
    .split(',')
    .filter((b) => b !== '')
    .map((b) => new Upstream(b));
  if (!Number.isInteger(port) || upstreams.length === 0 || upstreams.some((u) => !Number.isInteger(u.port))) {
    console.error('usage: raw-socket.ts <port> <host:port,...>');
    process.exit(2);
  }
  let next = 0;
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const upstream = upstreams[next] as Upstream;
    next = next + 1 === upstreams.length ? 0 : next + 1;
    proxy(upstream, req, res);
  });
  server.listen(port, '127.0.0.1');
}

main();
