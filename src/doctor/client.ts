/**
 * The doctor's network edge: one connection to a backend, spoken to the way
 * usher speaks to it (plain TCP, or TLS with the options of
 * `backendTlsOptions`), GET requests on it, and a wait for the backend to
 * close it.
 *
 * Responses go through usher's own strict parser and body framer, so a
 * response the proxy would reject as malformed is reported as such here too.
 * Every wait has a deadline, the socket is destroyed by {@link BackendConnection.close},
 * and nothing rejects: every failure is a {@link Failure} value.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { BodyFramer } from '../http1/body-framer.ts';
import { isParseError } from '../http1/errors.ts';
import { parseResponseHead } from '../http1/response-head.ts';
import { defaultHeadLimits, type ResponseHead } from '../http1/types.ts';

/** Where to connect, and how. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
  /** TLS options when the backend speaks TLS (see `backendTlsOptions`). */
  readonly tls?: ConnectionOptions | undefined;
}

/** A complete response to one GET. */
export interface Reply {
  readonly status: number;
  readonly reason: string;
  readonly minorVersion: 0 | 1;
  /** Header fields in the order received; names lowercased, values as sent. */
  readonly headers: readonly (readonly [string, string])[];
  /** The connection may carry another request (version default, `Connection`, framing), as usher's parser decides. */
  readonly keepAlive: boolean;
  /** The backend said `Connection: close`. */
  readonly connectionClose: boolean;
  /** The body had neither Content-Length nor chunked coding: it ended when the connection closed. */
  readonly untilClose: boolean;
  /** `Keep-Alive: timeout=N` in seconds, -1 when absent. */
  readonly keepAliveTimeoutSeconds: number;
  /** The body as UTF-8, at most {@link MAX_BODY_BYTES} bytes of it. */
  readonly body: string;
  /** From writing the request to the response head, in ms. */
  readonly headMs: number;
  /** From writing the request to the end of the body, in ms. */
  readonly doneMs: number;
}

/** Why a connect or a request did not give a response. */
export interface Failure {
  /**
   * `connect`: no connection (refused, DNS, TLS handshake); `timeout`: the
   * deadline passed; `closed`: the backend closed before a complete response;
   * `bad-response`: a response usher would reject; `socket`: an error after connecting.
   */
  readonly kind: 'connect' | 'timeout' | 'closed' | 'bad-response' | 'socket';
  /** Readable: "connect ECONNREFUSED", "no response head within 5000 ms", ... */
  readonly message: string;
  /** The socket error code, e.g. ECONNREFUSED, when there was one. */
  readonly code?: string | undefined;
  /** Time spent before failing, in ms. */
  readonly elapsedMs: number;
}

/** A request's result. */
export type Outcome = { readonly ok: true; readonly reply: Reply } | { readonly ok: false; readonly failure: Failure };

/** How long an idle connection stayed open. */
export type IdleResult =
  | { readonly closed: true; /** From the call to the backend's FIN or reset, in ms. */ readonly afterMs: number }
  | { readonly closed: false; /** The whole wait, in ms: still open at its end. */ readonly waitedMs: number };

/** Body bytes kept for `expectBody` and for showing; the rest is read and dropped (HAProxy and usher's probe keep 16-64 KiB). */
export const MAX_BODY_BYTES = 64 * 1024;

/** Request header names and values must not carry line breaks: they would inject fields. */
const UNSAFE = /[\r\n\0]/;

/** `ECONNREFUSED`; a code that does not explain itself (TLS) comes with its message. */
function codeOf(error: NodeJS.ErrnoException): string {
  const code = error.code;
  if (code === undefined) return error.message;
  return error.message.includes(code) ? code : `${code} (${error.message})`;
}

/** One connection to a backend. Open with {@link BackendConnection.open}; always {@link BackendConnection.close} it. */
export class BackendConnection {
  readonly #socket: Socket;
  /** Bytes received and not consumed yet. */
  #inbox: Buffer = Buffer.alloc(0);
  #connected = false;
  /** When the backend ended or reset the connection (performance.now()); 0 while open. */
  #endedAt = 0;
  #error: NodeJS.ErrnoException | undefined;
  /** Wakes the operation waiting for the next socket event. */
  #wake: (() => void) | undefined;
  /** Time the TCP (and TLS) connect took, in ms. */
  connectMs = 0;

  private constructor(endpoint: Endpoint) {
    const { host, port, tls } = endpoint;
    const socket = tls === undefined ? connect({ host, port, noDelay: true }) : tlsConnect({ ...tls, host, port });
    this.#socket = socket;
    socket.on(tls === undefined ? 'connect' : 'secureConnect', () => {
      this.#connected = true;
      if (tls !== undefined) socket.setNoDelay(true);
      this.#notify();
    });
    socket.on('data', (chunk: Buffer) => {
      this.#inbox = this.#inbox.length === 0 ? chunk : Buffer.concat([this.#inbox, chunk]);
      this.#notify();
    });
    socket.on('end', this.#onGone);
    socket.on('close', this.#onGone);
    // Stays for the socket's life: a late error must never become an uncaught exception.
    socket.on('error', (error: NodeJS.ErrnoException) => {
      this.#error ??= error;
      this.#onGone();
    });
  }

  /** Connects within `timeoutMs`; a failure is returned, with the socket already destroyed. */
  static async open(endpoint: Endpoint, timeoutMs: number): Promise<BackendConnection | Failure> {
    const started = performance.now();
    const connection = new BackendConnection(endpoint);
    const deadline = started + timeoutMs;
    while (!connection.#connected) {
      const elapsedMs = performance.now() - started;
      if (connection.#error !== undefined || connection.#endedAt !== 0) {
        connection.close();
        const error = connection.#error;
        const message = error === undefined ? 'connect: connection closed' : `connect ${codeOf(error)}`;
        return { kind: 'connect', message, code: error?.code, elapsedMs };
      }
      if (!(await connection.#nextEvent(deadline))) {
        connection.close();
        return { kind: 'connect', message: `connect: no connection within ${timeoutMs} ms`, code: 'ETIMEDOUT', elapsedMs: performance.now() - started };
      }
    }
    connection.connectMs = performance.now() - started;
    return connection;
  }

  /** Whether the backend has closed (or reset) the connection. */
  get ended(): boolean {
    return this.#endedAt !== 0;
  }

  /**
   * Sends `GET path` with `headers` and reads the whole response (interim 1xx
   * skipped), within `timeoutMs`. `host` is the Host header.
   */
  async get(path: string, host: string, headers: Readonly<Record<string, string>>, timeoutMs: number): Promise<Outcome> {
    const started = performance.now();
    const deadline = started + timeoutMs;
    const fail = (kind: Failure['kind'], message: string, code?: string): Outcome => ({
      ok: false,
      failure: { kind, message, code, elapsedMs: performance.now() - started },
    });
    if (UNSAFE.test(path) || UNSAFE.test(host) || Object.entries(headers).some(([name, value]) => UNSAFE.test(name) || UNSAFE.test(value))) {
      return fail('socket', 'refused to send a request with a line break in its path or headers');
    }
    if (this.ended) return this.#gone(fail, 'before the request was sent');
    this.#inbox = Buffer.alloc(0); // anything the backend sent unasked is not part of this answer
    let head = `GET ${path} HTTP/1.1\r\nhost: ${host}\r\nuser-agent: usher-doctor\r\naccept: */*\r\n`;
    for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
    this.#socket.write(`${head}\r\n`);

    // The head; an interim 1xx (not 101) is followed by the real response.
    let response: ResponseHead | undefined;
    while (response === undefined) {
      const parsed = parseResponseHead(this.#inbox, 0, defaultHeadLimits, 'GET');
      if (isParseError(parsed)) return fail('bad-response', `bad response: ${parsed.message.replace(/^bad upstream response: /, '')}`);
      if (parsed !== undefined) {
        this.#inbox = this.#inbox.subarray(parsed.headLength);
        if (parsed.status >= 200 || parsed.status === 101) response = parsed;
        continue;
      }
      if (this.ended) return this.#gone(fail, 'before the response head');
      if (!(await this.#nextEvent(deadline))) return fail('timeout', `no response head within ${timeoutMs} ms`);
    }
    const headMs = performance.now() - started;
    if (response.status === 101) return fail('bad-response', 'bad response: 101 Switching Protocols to a GET that asked for no upgrade');

    // The body, through the same framer the proxy uses.
    const framer = new BodyFramer({ errorStatus: 502 });
    framer.reset(response.framing);
    const kept: Buffer[] = [];
    let keptBytes = 0;
    const collect = (buf: Buffer, start: number, end: number): void => {
      const take = Math.min(end - start, MAX_BODY_BYTES - keptBytes);
      if (take <= 0) return;
      kept.push(Buffer.from(buf.subarray(start, start + take)));
      keptBytes += take;
    };
    while (!framer.done) {
      if (this.#inbox.length > 0) {
        const end = framer.scanPayload(this.#inbox, 0, collect);
        if (end === -2) return fail('bad-response', `bad response: ${framer.error?.message ?? 'malformed body framing'}`);
        this.#inbox = end === -1 ? Buffer.alloc(0) : this.#inbox.subarray(end);
        if (end >= 0) break;
      }
      if (this.ended) {
        if (framer.untilClose) break;
        return this.#gone(fail, 'before the end of the body');
      }
      if (!(await this.#nextEvent(deadline))) return fail('timeout', `the body did not end within ${timeoutMs} ms`);
    }
    const raw = response.rawHeaders;
    const fields: (readonly [string, string])[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) fields.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
    return {
      ok: true,
      reply: {
        status: response.status,
        reason: response.reason,
        minorVersion: response.minorVersion,
        headers: fields,
        keepAlive: response.keepAlive,
        connectionClose: response.connectionTokens.includes('close'),
        untilClose: response.framing.kind === 'until-close',
        keepAliveTimeoutSeconds: response.keepAliveTimeoutSeconds,
        body: Buffer.concat(kept, keptBytes).toString('utf8'),
        headMs,
        doneMs: performance.now() - started,
      },
    };
  }

  /**
   * Holds the connection idle until the backend closes it or `maxMs` passes.
   * Measured from this call, so call it right after reading a response.
   */
  async waitForClose(maxMs: number): Promise<IdleResult> {
    const started = performance.now();
    const deadline = started + maxMs;
    while (!this.ended) {
      if (!(await this.#nextEvent(deadline))) return { closed: false, waitedMs: performance.now() - started };
      this.#inbox = Buffer.alloc(0); // bytes nobody asked for (a 408 before closing, noise): dropped, so they cannot pile up
    }
    return { closed: true, afterMs: Math.max(0, this.#endedAt - started) };
  }

  /** Destroys the socket. Safe to call more than once. */
  close(): void {
    this.#socket.destroy();
  }

  /** The failure for a connection the backend closed or reset: `when` says at which point. */
  #gone(fail: (kind: Failure['kind'], message: string, code?: string) => Outcome, when: string): Outcome {
    const error = this.#error;
    if (error !== undefined) return fail('socket', `connection reset ${when} (${codeOf(error)})`, error.code);
    return fail('closed', `connection closed ${when}`);
  }

  #onGone = (): void => {
    if (this.#endedAt === 0) this.#endedAt = performance.now();
    this.#notify();
  };

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Resolves true at the next socket event, false when `deadline` (performance.now() time) passes first. */
  #nextEvent(deadline: number): Promise<boolean> {
    const left = deadline - performance.now();
    if (left <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve(false);
      }, Math.ceil(left));
      this.#wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }
}
