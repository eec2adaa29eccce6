/**
 * A bounded, seeded property-based run of mutated requests against one live
 * usher (a child process, so its memory is its own) in front of a strict,
 * recording origin. Valid requests are generated, then mutated: byte flips,
 * inserted CR/LF/NUL/SP/colon/HT/DEL/obs-text, dropped bytes, duplicated or
 * dropped lines, Content-Length/Transfer-Encoding combinations, random chunk
 * framing, truncation, pipelines of 1-3 requests, and writes split in two.
 *
 * Properties, checked after every batch of cases:
 *  - usher stays up: a health GET on a fresh connection is answered 200;
 *  - every byte usher sends a client parses as well-formed HTTP/1.1 responses
 *    (status line, header fields, body framed by Content-Length, chunked or
 *    the close), usher's own errors are client errors (never 5xx), and nothing
 *    follows a `connection: close` response;
 *  - usher closes every connection by itself within its timeouts (no hang);
 *  - the origin's strict parser never fails on what usher forwards, and the
 *    origin completes exactly as many requests as usher delivered responses
 *    from it (a request smuggled past usher's framing would be one more), and
 *    each of those answers a request that client sent;
 *  - usher logs no internal error, and its peak RSS grows less than 100 MiB.
 *
 * Reproduce a failure with USHER_FUZZ_SEED=<seed printed> (and USHER_FUZZ_SHRINK=1
 * to let fast-check shrink the counterexample); USHER_FUZZ_BATCHES changes the
 * number of batches of 10 cases, USHER_FUZZ_DEBUG=1 prints every case and its statuses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { peakRssMiB } from '../helpers/cli.ts';

const SEED = Number(process.env['USHER_FUZZ_SEED'] ?? 20261124);
const BATCHES = Number(process.env['USHER_FUZZ_BATCHES'] ?? 40);
const CASES_PER_BATCH = 10;
/** A connection usher has not closed by then is a hang (its timeouts are all at most 300 ms). */
const CONNECTION_DEADLINE_MS = 4000;

// ---- the strict recording origin ---------------------------------------------------------

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

interface OriginStats {
  /** Requests parsed completely and answered. */
  completed: number;
  /** Connections closed with a request started but not complete (usher cut it). */
  partial: number;
  /** Anything the origin's parser rejected, with the bytes: must stay empty. */
  readonly errors: string[];
}

/** Where the first request in `data` ends: its length, undefined if incomplete, or an error. */
function originFrame(data: string): { length: number; method: string; target: string; body: number } | undefined | string {
  const headEnd = data.indexOf('\r\n\r\n');
  if (headEnd < 0) return data.length > 65536 ? 'head over 64 KiB' : undefined;
  const lines = data.slice(0, headEnd).split('\r\n');
  const requestLine = /^(\S+) ([\x21-\x7e]+) HTTP\/1\.1$/.exec(lines[0]!);
  if (requestLine === null || !TOKEN.test(requestLine[1]!)) return `bad request line ${JSON.stringify(lines[0])}`;
  let contentLength: number | undefined;
  let chunked = false;
  let hosts = 0;
  for (const line of lines.slice(1)) {
    const m = /^([^:]*):[ \t]*(.*)$/.exec(line);
    if (m === null || !TOKEN.test(m[1]!)) return `bad field line ${JSON.stringify(line)}`;
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(m[2]!)) return `control byte in field ${JSON.stringify(line)}`;
    const name = m[1]!.toLowerCase();
    const value = m[2]!.trim();
    if (name === 'content-length') {
      if (contentLength !== undefined || !/^\d{1,15}$/.test(value)) return `content-length ${JSON.stringify(value)} (or repeated)`;
      contentLength = Number(value);
    } else if (name === 'transfer-encoding') {
      // Other codings may pass through end to end; chunked must be there once, last.
      const codings = value.split(',').map((c) => c.trim().toLowerCase());
      if (chunked || codings.at(-1) !== 'chunked' || codings.filter((c) => c === 'chunked').length !== 1 || !codings.every((c) => TOKEN.test(c))) {
        return `transfer-encoding ${JSON.stringify(value)} (or repeated)`;
      }
      chunked = true;
    } else if (name === 'host') {
      hosts++;
    }
  }
  if (chunked && contentLength !== undefined) return 'both content-length and transfer-encoding';
  if (hosts !== 1) return `${hosts} host fields`;
  const bodyStart = headEnd + 4;
  const frame = (length: number, body: number) => ({ length, method: requestLine[1]!, target: requestLine[2]!, body });
  if (!chunked) {
    const n = contentLength ?? 0;
    return data.length >= bodyStart + n ? frame(bodyStart + n, n) : undefined;
  }
  let i = bodyStart;
  let body = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', i);
    if (lineEnd < 0) return undefined;
    const sizeLine = /^([0-9a-fA-F]{1,16})(;.*)?$/.exec(data.slice(i, lineEnd));
    if (sizeLine === null) return `bad chunk size line ${JSON.stringify(data.slice(i, lineEnd))}`;
    const size = parseInt(sizeLine[1]!, 16);
    i = lineEnd + 2;
    if (size === 0) {
      for (;;) {
        const end = data.indexOf('\r\n', i);
        if (end < 0) return undefined;
        if (end === i) return frame(end + 2, body);
        if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:/.test(data.slice(i, end))) return `bad trailer ${JSON.stringify(data.slice(i, end))}`;
        i = end + 2;
      }
    }
    if (data.length < i + size + 2) return undefined;
    if (data.slice(i + size, i + size + 2) !== '\r\n') return 'chunk data not followed by CRLF';
    body += size;
    i += size + 2;
  }
}

async function startStrictOrigin(): Promise<{ server: Server; address: string; stats: OriginStats; close(): Promise<void> }> {
  const stats: OriginStats = { completed: 0, partial: 0, errors: [] };
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      for (;;) {
        const framed = originFrame(pending);
        if (framed === undefined) return;
        if (typeof framed === 'string') {
          stats.errors.push(`${framed}; received ${JSON.stringify(pending.slice(0, 400))}`);
          pending = '';
          socket.destroy();
          return;
        }
        pending = pending.slice(framed.length);
        stats.completed++;
        const body = `${framed.method} ${framed.target} ${framed.body}`;
        socket.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-origin: ${stats.completed}\r\ncontent-length: ${body.length}\r\n\r\n${body}`, 'latin1');
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      if (pending.length > 0) stats.partial++;
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    server,
    address: `127.0.0.1:${port}`,
    stats,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---- the client side: send, read everything until usher closes, check the responses -------

/** Statuses usher itself may answer a malformed request with. */
const USHER_CLIENT_ERRORS: ReadonlySet<number> = new Set([400, 404, 405, 408, 413, 414, 417, 421, 431, 501, 505]);

interface Conversation {
  readonly received: Buffer;
  /** Closed by a reset (ECONNRESET/EPIPE) rather than a FIN. */
  readonly reset: boolean;
  readonly ms: number;
}

async function converse(port: number, parts: readonly Buffer[], gapMs: number): Promise<Conversation> {
  const started = performance.now();
  const socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  const chunks: Buffer[] = [];
  let reset = false;
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => (reset = true));
  // Not events.once: it would reject on the 'error' that precedes the close of a reset connection.
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await once(socket, 'connect').catch(() => {});
  const deadline = setTimeout(() => socket.destroy(new Error('deadline')), CONNECTION_DEADLINE_MS);
  let hung = false;
  socket.once('error', (err) => (hung = err.message === 'deadline'));
  for (const [i, part] of parts.entries()) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
    if (socket.destroyed || !socket.writable) break;
    if (part.length > 0) socket.write(part);
  }
  await closed;
  clearTimeout(deadline);
  if (hung) throw new Error(`usher kept the connection open for ${CONNECTION_DEADLINE_MS} ms; received ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 400))}`);
  return { received: Buffer.concat(chunks), reset, ms: performance.now() - started };
}

interface CheckedResponse {
  readonly status: number;
  readonly fromOrigin: boolean;
  readonly body: string;
}

/** Parses everything usher sent on one connection; throws on anything that is not well-formed HTTP/1.1. */
function checkResponses(conversation: Conversation): CheckedResponse[] {
  const data = conversation.received;
  const responses: CheckedResponse[] = [];
  let p = 0;
  while (p < data.length) {
    const headEnd = data.indexOf('\r\n\r\n', p, 'latin1');
    if (headEnd < 0) {
      if (conversation.reset) break; // a reset may cut what was in flight
      throw new Error(`incomplete or malformed response head at byte ${p}`);
    }
    const lines = data.subarray(p, headEnd).toString('latin1').split('\r\n');
    const statusLine = /^HTTP\/1\.1 ([1-5]\d\d) [\x20-\x7e]*$/.exec(lines[0]!);
    if (statusLine === null) throw new Error(`malformed status line ${JSON.stringify(lines[0])}`);
    const status = Number(statusLine[1]);
    const fields = new Map<string, string[]>();
    for (const line of lines.slice(1)) {
      const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*)$/.exec(line);
      if (m === null) throw new Error(`malformed response field ${JSON.stringify(line)}`);
      const name = m[1]!.toLowerCase();
      fields.set(name, [...(fields.get(name) ?? []), m[2]!.trim()]);
    }
    const bodyStart = headEnd + 4;
    if (status < 200) {
      p = bodyStart;
      continue;
    }
    const usherError = fields.get('x-usher-error');
    if (usherError !== undefined && !USHER_CLIENT_ERRORS.has(status)) throw new Error(`usher answered ${status} ${usherError.join()}`);
    const lengths = fields.get('content-length');
    const te = fields.get('transfer-encoding');
    if (lengths !== undefined && te !== undefined) throw new Error('response with both content-length and transfer-encoding');
    if (lengths !== undefined && (lengths.length !== 1 || !/^\d+$/.test(lengths[0]!))) throw new Error(`bad response content-length ${lengths.join()}`);
    const closes = fields.get('connection')?.some((v) => /(^|,)\s*close\s*(,|$)/i.test(v)) ?? false;
    let end: number;
    if (lengths !== undefined) {
      end = bodyStart + Number(lengths[0]);
      if (end > data.length) {
        if (conversation.reset) break;
        throw new Error(`response body shorter than its content-length ${lengths[0]}`);
      }
    } else if (te !== undefined) {
      if (te.join(',').toLowerCase() !== 'chunked') throw new Error(`response transfer-encoding ${te.join()}`);
      let q = bodyStart;
      for (;;) {
        const lineEnd = data.indexOf('\r\n', q, 'latin1');
        if (lineEnd < 0) throw new Error('incomplete chunked response');
        const size = parseInt(data.subarray(q, lineEnd).toString('latin1'), 16);
        if (Number.isNaN(size)) throw new Error('bad chunk size in response');
        q = lineEnd + 2;
        if (size === 0) {
          if (data.subarray(q, q + 2).toString('latin1') !== '\r\n') throw new Error('response trailers');
          q += 2;
          break;
        }
        q += size + 2;
      }
      end = q;
    } else {
      if (!closes) throw new Error(`response ${status} framed by close without connection: close`);
      end = data.length;
    }
    const body = lengths !== undefined ? data.subarray(bodyStart, end).toString('latin1') : '';
    responses.push({ status, fromOrigin: fields.has('x-origin') && usherError === undefined, body });
    p = end;
    if (closes && p < data.length) throw new Error(`${data.length - p} bytes after a connection: close response`);
  }
  return responses;
}

// ---- generating requests and mutations ----------------------------------------------------

interface RequestSpec {
  readonly method: string;
  readonly target: string;
  readonly version: string;
  readonly host: string | undefined;
  readonly extra: readonly string[];
  readonly tricky: string | undefined;
  readonly framing: Framing;
}

type Framing =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly form: number; readonly declared: number; readonly actual: number }
  | {
      readonly kind: 'chunked';
      readonly te: string;
      readonly alsoLength: boolean;
      readonly chunks: readonly number[];
      readonly ext: boolean;
      readonly trailer: boolean;
      readonly badSize: boolean;
    };

type Mutation =
  | { readonly kind: 'flip'; readonly at: number; readonly mask: number }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: string }
  | { readonly kind: 'delete'; readonly at: number; readonly length: number }
  | { readonly kind: 'dupLine'; readonly line: number }
  | { readonly kind: 'dropLine'; readonly line: number }
  | { readonly kind: 'truncate'; readonly at: number };

interface Case {
  readonly requests: readonly RequestSpec[];
  readonly mutations: readonly Mutation[];
  /** Write the bytes in two parts split here (fraction of the length), or all at once. */
  readonly split: number | null;
}

const contentLengthForms: readonly ((n: number) => string)[] = [
  (n) => `${n}`,
  (n) => `${n}`,
  (n) => `${n}`,
  (n) => `${n}`,
  (n) => `${n}`,
  (n) => `00${n}`,
  (n) => `${n}, ${n}`,
  (n) => `${n}, ${n + 1}`,
  (n) => `+${n}`,
  () => '-1',
  (n) => `${n} ${n}`,
  (n) => `0x${n.toString(16)}`,
  () => '',
  () => '99999999999999999999',
];

/** Header lines a valid request may carry. */
const extraHeaders = [
  'Accept: */*',
  'User-Agent: fuzz/1.0',
  'Connection: keep-alive',
  'Connection: close',
  'Connection: x-hop',
  'X-Hop: 1',
  'Expect: 100-continue',
  'Cookie: a=b; c=d',
  'X-Forwarded-For: 10.9.8.7',
  'Upgrade: websocket',
  'Keep-Alive: timeout=5',
  'X-Empty:',
  'X-Obs: caf\xe9',
];

/** Header lines that make a request ambiguous or invalid (one at most per request). */
const trickyHeaders = [
  'Transfer-Encoding: chunked',
  'Content-Length: 3',
  'Content-Length: 0',
  'Host: second.test',
  'Expect: 102-processing',
  'Transfer-Encoding: identity',
  'X-Bad Name: 1',
  'X-Fold: a\r\n b',
];

const framingArb: fc.Arbitrary<Framing> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'none' } as const) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('length' as const),
      form: fc.nat({ max: contentLengthForms.length - 1 }),
      declared: fc.oneof({ weight: 6, arbitrary: fc.nat({ max: 40 }) }, { weight: 1, arbitrary: fc.constant(70_000) }),
      // Usually the declared length; sometimes fewer bytes (a stall) or more (a pipelined tail).
      actual: fc.oneof({ weight: 4, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: fc.nat({ max: 45 }) }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('chunked' as const),
      te: fc.constantFrom('chunked', 'chunked', 'chunked', 'chunked', 'Chunked', 'gzip, chunked', 'chunked, gzip', ' chunked', 'chunked, chunked', 'identity', 'chunked;q=1', 'x-chunked'),
      alsoLength: fc.constantFrom(false, false, false, false, false, true),
      chunks: fc.array(fc.nat({ max: 20 }), { maxLength: 4 }),
      ext: fc.boolean(),
      trailer: fc.boolean(),
      badSize: fc.constantFrom(false, false, false, false, false, true),
    }),
  },
);

/** Requests usher and the origin both accept as they are: mutations start from these. */
const validRequestArb: fc.Arbitrary<RequestSpec> = fc
  .record({
    method: fc.constantFrom('GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE', 'PATCH', 'get'),
    target: fc.constantFrom('/', '/a/b?c=d', '/x%20y/z', '/fuzz', 'http://usher.test/abs', `/${'p'.repeat(300)}`),
    version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0'),
    host: fc.constantFrom('usher.test', 'usher.test', 'usher.test:80'),
    extra: fc.subarray(extraHeaders, { maxLength: 3 }),
    tricky: fc.constant(undefined),
    framing: fc.oneof(
      fc.constant({ kind: 'none' } as const),
      fc.record({ kind: fc.constant('length' as const), form: fc.constant(0), declared: fc.nat({ max: 40 }), actual: fc.constant(-1) }),
      fc.record({
        kind: fc.constant('chunked' as const),
        te: fc.constantFrom('chunked', 'gzip, chunked'),
        alsoLength: fc.constant(false),
        chunks: fc.array(fc.nat({ max: 20 }), { maxLength: 4 }),
        ext: fc.boolean(),
        trailer: fc.boolean(),
        badSize: fc.constant(false),
      }),
    ),
  })
  // HTTP/1.0 has no chunked coding.
  .map((r) => (r.version === 'HTTP/1.0' && r.framing.kind === 'chunked' ? { ...r, version: 'HTTP/1.1' } : r));

/** Anything from the same vocabulary, including ambiguous framing, versions and fields. */
const anyRequestArb: fc.Arbitrary<RequestSpec> = fc.record({
  method: fc.constantFrom('GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'get'),
  target: fc.constantFrom('/', '/a/b?c=d', '/x%20y/z', '/fuzz', 'http://usher.test/abs', 'http://other.test/abs', '*', `/${'p'.repeat(300)}`),
  version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.2'),
  host: fc.constantFrom('usher.test', 'usher.test', 'usher.test', 'usher.test:80', 'other.test', undefined),
  extra: fc.subarray(extraHeaders, { maxLength: 3 }),
  tricky: fc.oneof({ weight: 2, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(...trickyHeaders) }),
  framing: framingArb,
});

const requestArb: fc.Arbitrary<RequestSpec> = fc.oneof({ weight: 3, arbitrary: validRequestArb }, { weight: 1, arbitrary: anyRequestArb });

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.constantFrom('\r', '\n', '\r\n', '\0', ' ', ':', '\t', '\x7f', '\xff', 'a', '\r\n\r\n', '0\r\n\r\n', 'GET /smuggled HTTP/1.1\r\nHost: usher.test\r\n\r\n'),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant('dupLine' as const), line: fc.nat() }),
  fc.record({ kind: fc.constant('dropLine' as const), line: fc.nat() }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

const caseArb: fc.Arbitrary<Case> = fc.record({
  requests: fc.array(requestArb, { minLength: 1, maxLength: 3 }),
  // Two cases in five go unmutated: valid requests and pipelines must keep flowing too.
  mutations: fc.oneof({ weight: 2, arbitrary: fc.constant([]) }, { weight: 3, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 3 }) }),
  split: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: null }),
});

function serialize(request: RequestSpec): string {
  let head = `${request.method} ${request.target} ${request.version}\r\n`;
  if (request.host !== undefined) head += `Host: ${request.host}\r\n`;
  for (const line of request.extra) head += `${line}\r\n`;
  if (request.tricky !== undefined) head += `${request.tricky}\r\n`;
  const f = request.framing;
  let body = '';
  if (f.kind === 'length') {
    head += `Content-Length: ${contentLengthForms[f.form]!(f.declared)}\r\n`;
    body = 'b'.repeat(f.actual < 0 ? Math.min(f.declared, 64) : Math.min(f.actual, f.declared + 5));
  } else if (f.kind === 'chunked') {
    head += `Transfer-Encoding: ${f.te}\r\n`;
    const total = f.chunks.reduce((a, b) => a + b, 0);
    if (f.alsoLength) head += `Content-Length: ${total}\r\n`;
    for (const size of f.chunks) {
      if (size === 0) continue;
      body += `${f.badSize ? `+${size.toString(16)}` : size.toString(16)}${f.ext ? ';ext=1' : ''}\r\n${'c'.repeat(size)}\r\n`;
    }
    body += f.trailer ? '0\r\nX-Trailer: t\r\n\r\n' : '0\r\n\r\n';
  }
  return `${head}\r\n${body}`;
}

function mutate(bytes: string, mutation: Mutation): string {
  const n = bytes.length;
  switch (mutation.kind) {
    case 'flip': {
      if (n === 0) return bytes;
      const at = mutation.at % n;
      return bytes.slice(0, at) + String.fromCharCode(bytes.charCodeAt(at) ^ mutation.mask) + bytes.slice(at + 1);
    }
    case 'insert': {
      const at = mutation.at % (n + 1);
      return bytes.slice(0, at) + mutation.bytes + bytes.slice(at);
    }
    case 'delete': {
      if (n === 0) return bytes;
      const at = mutation.at % n;
      return bytes.slice(0, at) + bytes.slice(at + mutation.length);
    }
    case 'dupLine':
    case 'dropLine': {
      const lines = bytes.split('\r\n');
      const i = mutation.line % lines.length;
      if (mutation.kind === 'dupLine') lines.splice(i, 0, lines[i]!);
      else lines.splice(i, 1);
      return lines.join('\r\n');
    }
    case 'truncate':
      return n === 0 ? bytes : bytes.slice(0, mutation.at % n);
  }
}

function bytesOf(c: Case): Buffer {
  let text = c.requests.map(serialize).join('');
  for (const mutation of c.mutations) text = mutate(text, mutation);
  return Buffer.from(text, 'latin1');
}

// ---- usher in a child process --------------------------------------------------------------

const cliSource = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

interface Child {
  readonly child: ChildProcess;
  stderr: string;
  readonly port: number;
}

/**
 * Runs usher from source (`node src/cli.ts`, type-stripped) rather than the
 * built dist/cli.js, so the run always checks the code under test without a
 * build step.
 */
async function startUsherChild(configFile: string): Promise<Child> {
  const child = spawn(process.execPath, [cliSource, 'start', '-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, USHER_LOG_LEVEL: 'info' } });
  const state = { child, stderr: '', port: 0 };
  child.stderr!.on('data', (chunk: Buffer) => (state.stderr += chunk.toString()));
  const deadline = performance.now() + 15_000;
  for (;;) {
    const match = /"listener":"web","address":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(state.stderr);
    if (match !== null) {
      state.port = Number(match[1]);
      return state;
    }
    if (child.exitCode !== null || performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`usher did not start: ${state.stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function healthCheck(port: number): Promise<void> {
  const conversation = await converse(port, [Buffer.from('GET /health HTTP/1.1\r\nHost: usher.test\r\nConnection: close\r\n\r\n', 'latin1')], 0);
  const responses = checkResponses(conversation);
  if (responses.length !== 1 || responses[0]!.status !== 200 || !responses[0]!.fromOrigin) {
    throw new Error(`health GET failed: ${JSON.stringify(conversation.received.toString('latin1'))}`);
  }
}

test('fuzz: mutated requests never desynchronise usher from its backend, never get a malformed answer, never hang or grow memory', { timeout: 120_000 }, async (t) => {
  const origin = await startStrictOrigin();
  const dir = mkdtempSync(join(tmpdir(), 'usher-fuzz-'));
  const configFile = join(dir, 'usher.yaml');
  writeFileSync(
    configFile,
    `listeners:
  - name: web
    bind: 127.0.0.1:0
    limits: { maxHeaderBytes: 8KiB, maxUriBytes: 1KiB, maxHeaders: 30, maxBodyBytes: 64KiB }
    timeouts: { header: 250ms, bodyIdle: 250ms, keepAlive: 150ms, send: 2s }
    routes:
      - match: { host: usher.test }
        pool: main
      - pool: main
pools:
  main:
    timeouts: { connect: 1s, response: 2s }
    backends:
      - address: ${origin.address}
accessLog: { enabled: false }
`,
  );
  t.after(async () => {
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const usher = await startUsherChild(configFile);
  t.after(() => {
    usher.child.kill('SIGKILL');
  });
  const port = usher.port;
  await healthCheck(port);
  const baseline = peakRssMiB(usher.child.pid!);

  let cases = 0;
  let answered = 0;
  let fromOrigin = 0;
  let resets = 0;
  let longest = 0;
  const statuses = new Map<number, number>();
  let batches = 0;

  const property = fc.asyncProperty(fc.array(caseArb, { minLength: CASES_PER_BATCH, maxLength: CASES_PER_BATCH }), async (batch) => {
    const completedBefore = origin.stats.completed;
    const results = await Promise.all(
      batch.map(async (c) => {
        const bytes = bytesOf(c);
        const parts = c.split === null ? [bytes] : [bytes.subarray(0, Math.floor(c.split * bytes.length)), bytes.subarray(Math.floor(c.split * bytes.length))];
        let conversation: Conversation | undefined;
        try {
          conversation = await converse(port, parts, 15);
          const responses = checkResponses(conversation);
          // The origin echoes what it parsed: a response must answer something this client sent.
          const sent = bytes.toString('latin1');
          for (const r of responses.filter((x) => x.fromOrigin)) {
            const [method, target] = r.body.split(' ');
            const path = target?.replace(/^https?:\/\/[^/]*/i, '') ?? '';
            if (method === undefined || !sent.includes(`${method} `) || !sent.includes(path)) {
              throw new Error(`this client got the origin's answer to a request it did not send: ${JSON.stringify(r.body)}`);
            }
          }
          return { conversation, responses };
        } catch (err) {
          // Let the other connections of the batch finish, so the origin's view is complete too.
          await new Promise((resolve) => setTimeout(resolve, CONNECTION_DEADLINE_MS / 4));
          const originErrors = origin.stats.errors.length > 0 ? `\nthe origin's parser meanwhile rejected: ${origin.stats.errors.join('\n')}` : '';
          throw new Error(
            `${(err as Error).message}\nsent: ${JSON.stringify(bytes.toString('latin1'))}\nreceived: ${JSON.stringify(conversation?.received.toString('latin1').slice(0, 1500))}${originErrors}`,
          );
        }
      }),
    );
    let batchFromOrigin = 0;
    if (process.env['USHER_FUZZ_DEBUG'] === '1') {
      for (const [i, { responses }] of results.entries()) {
        console.error(JSON.stringify({ mutated: batch[i]!.mutations.length > 0, statuses: responses.map((r) => r.status), sent: bytesOf(batch[i]!).toString('latin1') }));
      }
    }
    for (const { conversation, responses } of results) {
      cases++;
      if (conversation.reset) resets++;
      longest = Math.max(longest, conversation.ms);
      answered += responses.length;
      for (const r of responses) {
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (r.fromOrigin) batchFromOrigin++;
      }
    }
    fromOrigin += batchFromOrigin;
    const completed = origin.stats.completed - completedBefore;
    if (origin.stats.errors.length > 0) throw new Error(`the origin's parser rejected what usher forwarded: ${origin.stats.errors.join('\n')}`);
    if (completed !== batchFromOrigin) {
      throw new Error(
        `the origin completed ${completed} requests but clients received ${batchFromOrigin} origin responses; batch: ${JSON.stringify(batch.map((c) => bytesOf(c).toString('latin1')))}`,
      );
    }
    if (usher.child.exitCode !== null) throw new Error(`usher exited (${usher.child.exitCode}): ${usher.stderr.slice(-2000)}`);
    if (/"level":"(error|fatal)"/.test(usher.stderr)) throw new Error(`usher logged an error: ${usher.stderr.slice(-2000)}`);
    await healthCheck(port);
    batches++;
  });

  const started = performance.now();
  const shrink = process.env['USHER_FUZZ_SHRINK'] === '1';
  try {
    await fc.assert(property, { seed: SEED, numRuns: BATCHES, endOnFailure: !shrink });
  } catch (err) {
    t.diagnostic(`fuzz failed with seed ${SEED}: rerun with USHER_FUZZ_SEED=${SEED}${shrink ? '' : ' USHER_FUZZ_SHRINK=1 to shrink'}`);
    throw err;
  }
  const elapsed = performance.now() - started;
  const peak = peakRssMiB(usher.child.pid!);
  t.diagnostic(
    `seed ${SEED}: ${cases} cases in ${batches} batches, ${(elapsed / 1000).toFixed(1)} s; ${answered} responses (${fromOrigin} from the origin, ` +
      `origin completed ${origin.stats.completed} incl. health, cut ${origin.stats.partial}), ${resets} resets, longest connection ${longest.toFixed(0)} ms`,
  );
  t.diagnostic(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
  t.diagnostic(`usher peak RSS ${peak.toFixed(1)} MiB (${baseline.toFixed(1)} MiB after start-up and one request)`);

  assert.equal(cases, BATCHES * CASES_PER_BATCH);
  assert.equal(origin.stats.errors.length, 0);
  assert.ok(fromOrigin > cases / 10, `enough cases reached the origin to mean something (${fromOrigin})`);
  assert.ok(statuses.size >= 5, `the mutations reached several of usher's answers (${[...statuses.keys()].join(', ')})`);
  assert.ok(peak - baseline < 100, `usher's peak RSS grew by ${(peak - baseline).toFixed(1)} MiB`);
  assert.equal(usher.child.exitCode, null, 'usher is still running');
});
