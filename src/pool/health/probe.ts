/**
 * One active health check of one backend: a TCP connect, or an HTTP GET over
 * a fresh connection. Check traffic never uses the request pools' kept-alive
 * connections or their limits, so a saturated pool cannot fail its own checks
 * and a check cannot take a request's slot (HAProxy and Envoy do the same by
 * default; Envoy's `reuse_connection` is opt-in).
 *
 * The response head goes through usher's own strict parser, so a backend
 * whose answers the proxy would reject as malformed also fails its checks.
 * With `expectBody` the body is de-chunked and read up to 64 KiB (HAProxy
 * reads at most one buffer, `tune.bufsize`, 16 KiB by default); without it the
 * body is never waited for. The whole probe is bounded by one timer of
 * `timeoutMs`, the socket is always destroyed at the end, and the promise
 * never rejects: every failure is a `ProbeResult` with a readable `detail`.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import type { HealthCheckConfig, HostPort, StatusRange } from '../../config/types.ts';
import { BodyFramer } from '../../http1/body-framer.ts';
import { isParseError } from '../../http1/errors.ts';
import { parseResponseHead } from '../../http1/response-head.ts';
import { defaultHeadLimits, type ResponseHead } from '../../http1/types.ts';
import { formatHostPort } from '../../config/hostport.ts';

/** The outcome of one probe. */
export interface ProbeResult {
  readonly ok: boolean;
  /** From the start of the probe to its outcome, in milliseconds. */
  readonly durationMs: number;
  /** Human readable: "200 OK", "status 503 not in 200-399", "timeout after 1000 ms", "connect ECONNREFUSED", ... */
  readonly detail: string;
}

/** Most body bytes an http check reads for `expectBody`; the rest is not read. */
export const MAX_CHECK_BODY_BYTES = 64 * 1024;

/**
 * Runs one check of `target` (or of `config.port` on the same host when set).
 * Never rejects. Aborting `signal` ends the probe at once with detail "aborted".
 */
/** `tls`: connect with TLS (the backend speaks TLS); the check then runs inside it. */
export function probe(target: HostPort, config: HealthCheckConfig, signal?: AbortSignal, tls?: ConnectionOptions): Promise<ProbeResult> {
  return new Promise((resolve) => {
    new Probe(target, config, signal, resolve, tls).start();
  });
}

/** `expectBody` compiled once per config object (also used by `usher doctor`, so both judge bodies alike). */
export interface BodyTest {
  readonly test: (body: string) => boolean;
  /** Completes "body does not ...". */
  readonly expectation: string;
}

const bodyTests = new WeakMap<HealthCheckConfig, BodyTest | string>();

/** The body test of a config, or an error message when its regex does not compile (config validation should prevent that). */
function bodyTestOf(config: HealthCheckConfig, expect: string): BodyTest | string {
  let compiled = bodyTests.get(config);
  if (compiled === undefined) {
    compiled = compileBodyTest(expect);
    bodyTests.set(config, compiled);
  }
  return compiled;
}

/**
 * `text` is a substring to find; `~regex` is a regex searched anywhere in the
 * body (not anchored, unlike route match values), so `~~x` is the regex `~x`.
 */
export function compileBodyTest(expect: string): BodyTest | string {
  if (!expect.startsWith('~')) return { test: (body) => body.includes(expect), expectation: `contain ${JSON.stringify(expect)}` };
  try {
    const regex = new RegExp(expect.slice(1));
    return { test: (body) => regex.test(body), expectation: `match /${regex.source}/` };
  } catch (error) {
    return `invalid expectBody regex: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/** Whether `status` is in one of the `expectStatus` ranges. */
export function statusAccepted(status: number, ranges: readonly StatusRange[]): boolean {
  for (const [lo, hi] of ranges) if (status >= lo && status <= hi) return true;
  return false;
}

/** "200-399", "200-299, 404". */
export function formatRanges(ranges: readonly StatusRange[]): string {
  return ranges.map(([lo, hi]) => (lo === hi ? String(lo) : `${lo}-${hi}`)).join(', ');
}

/** Parse errors of upstream heads already say "bad upstream response: ..."; the detail says it once. */
function badResponse(message: string): string {
  return `bad response: ${message.replace(/^bad upstream response: /, '')}`;
}

/** The state of one probe. Socket listeners are bound methods; everything ends in `#finish`. */
class Probe {
  readonly #target: HostPort;
  readonly #config: HealthCheckConfig;
  readonly #signal: AbortSignal | undefined;
  readonly #resolve: (result: ProbeResult) => void;
  readonly #startedAt = performance.now();
  #socket: Socket | undefined;
  #timer: NodeJS.Timeout | undefined;
  #connected = false;
  #done = false;
  /** Bytes of an incomplete response head. */
  #pending: Buffer | undefined;
  /** Set once the head was accepted and the body is being read for `expectBody`. */
  #framer: BodyFramer | undefined;
  #summary = '';
  readonly #body: Buffer[] = [];
  #bodyBytes = 0;

  readonly #tls: ConnectionOptions | undefined;

  constructor(
    target: HostPort,
    config: HealthCheckConfig,
    signal: AbortSignal | undefined,
    resolve: (result: ProbeResult) => void,
    tls?: ConnectionOptions,
  ) {
    this.#tls = tls;
    this.#target = target;
    this.#config = config;
    this.#signal = signal;
    this.#resolve = resolve;
  }

  start(): void {
    const signal = this.#signal;
    if (signal?.aborted) {
      this.#finish(false, 'aborted');
      return;
    }
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#timer = setTimeout(this.#onTimeout, this.#config.timeoutMs);
    const host = this.#target.host;
    const port = this.#config.port ?? this.#target.port;
    const tls = this.#tls;
    const socket = tls === undefined ? connect({ host, port, noDelay: true }) : tlsConnect({ ...tls, host, port });
    this.#socket = socket;
    socket.on(tls === undefined ? 'connect' : 'secureConnect', this.#onConnect);
    // The error listener stays for the socket's life: a late error after `#finish` is swallowed by `#done`.
    socket.on('error', this.#onError);
    if (this.#config.type === 'http') {
      socket.on('data', this.#onData);
      socket.on('end', this.#onEnd);
      socket.on('close', this.#onEnd);
    }
  }

  #onConnect = (): void => {
    this.#connected = true;
    const config = this.#config;
    switch (config.type) {
      case 'tcp':
        this.#finish(true, 'connected');
        return;
      case 'http': {
        const host = config.host ?? formatHostPort(this.#target);
        this.#socket?.write(`GET ${config.path} HTTP/1.1\r\nhost: ${host}\r\nuser-agent: usher-health-check\r\naccept: */*\r\nconnection: close\r\n\r\n`);
        return;
      }
      default: {
        const never: never = config.type;
        this.#finish(false, `unknown check type ${String(never)}`);
      }
    }
  };

  #onData = (chunk: Buffer): void => {
    if (this.#done) return;
    if (this.#framer !== undefined) {
      this.#onBodyBytes(chunk, 0);
      return;
    }
    const pending = this.#pending;
    this.#onHeadBytes(pending === undefined ? chunk : Buffer.concat([pending, chunk]));
  };

  #onHeadBytes(buf: Buffer): void {
    let start = 0;
    for (;;) {
      const head = parseResponseHead(buf, start, defaultHeadLimits, 'GET');
      if (head === undefined) {
        this.#pending = start === 0 ? buf : buf.subarray(start);
        return;
      }
      if (isParseError(head)) {
        this.#finish(false, badResponse(head.message));
        return;
      }
      // An interim 1xx (not 101) is followed by the real response on the same connection.
      if (head.status < 200 && head.status !== 101) {
        start += head.headLength;
        continue;
      }
      this.#pending = undefined;
      this.#onHead(head, buf, start + head.headLength);
      return;
    }
  }

  #onHead(head: ResponseHead, buf: Buffer, bodyStart: number): void {
    const config = this.#config;
    if (!statusAccepted(head.status, config.expectStatus)) {
      this.#finish(false, `status ${head.status} not in ${formatRanges(config.expectStatus)}`);
      return;
    }
    this.#summary = head.reason === '' ? String(head.status) : `${head.status} ${head.reason}`;
    if (config.expectBody === undefined) {
      this.#finish(true, this.#summary);
      return;
    }
    const framer = new BodyFramer({ errorStatus: 502 });
    framer.reset(head.framing);
    this.#framer = framer;
    if (framer.done) this.#checkBody();
    else this.#onBodyBytes(buf, bodyStart);
  }

  #onBodyBytes(buf: Buffer, pos: number): void {
    const framer = this.#framer;
    if (framer === undefined || pos >= buf.length) return;
    const end = framer.scanPayload(buf, pos, this.#collect);
    if (this.#done) return; // the 64 KiB cap was reached inside #collect
    if (end === -2) this.#finish(false, badResponse(framer.error?.message ?? 'malformed body framing'));
    else if (end >= 0) this.#checkBody();
  }

  #collect = (buf: Buffer, start: number, end: number): void => {
    if (this.#done) return;
    const take = Math.min(end - start, MAX_CHECK_BODY_BYTES - this.#bodyBytes);
    this.#body.push(buf.subarray(start, start + take));
    this.#bodyBytes += take;
    if (this.#bodyBytes >= MAX_CHECK_BODY_BYTES) this.#checkBody();
  };

  #checkBody(): void {
    const test = bodyTestOf(this.#config, this.#config.expectBody ?? '');
    if (typeof test === 'string') {
      this.#finish(false, test);
      return;
    }
    const body = Buffer.concat(this.#body, this.#bodyBytes).toString('utf8');
    if (test.test(body)) {
      this.#finish(true, this.#summary);
      return;
    }
    const truncated = this.#bodyBytes >= MAX_CHECK_BODY_BYTES ? ` (first ${MAX_CHECK_BODY_BYTES} bytes)` : '';
    this.#finish(false, `body does not ${test.expectation}${truncated}`);
  }

  /** The backend closed (or half-closed) the connection. */
  #onEnd = (): void => {
    if (this.#done) return;
    const framer = this.#framer;
    if (!this.#connected) this.#finish(false, 'connect: connection closed');
    else if (framer === undefined) this.#finish(false, badResponse('connection closed before the response head'));
    else if (framer.untilClose) this.#checkBody();
    else this.#finish(false, badResponse('connection closed before the end of the body'));
  };

  #onError = (error: NodeJS.ErrnoException): void => {
    if (this.#done) return;
    this.#finish(false, `${this.#connected ? 'socket' : 'connect'} ${error.code ?? error.message}`);
  };

  #onTimeout = (): void => {
    this.#timer = undefined;
    this.#finish(false, `timeout after ${this.#config.timeoutMs} ms`);
  };

  #onAbort = (): void => {
    this.#finish(false, 'aborted');
  };

  #finish(ok: boolean, detail: string): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#socket?.destroy();
    this.#body.length = 0;
    this.#pending = undefined;
    const durationMs = Math.round((performance.now() - this.#startedAt) * 1000) / 1000;
    this.#resolve({ ok, durationMs, detail });
  }
}
