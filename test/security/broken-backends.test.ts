/**
 * Response smuggling and desync from the upstream side: a raw `net` backend
 * whose first connection answers with one malformed response, and whose later
 * connections answer correctly. Each row checks what the client gets, that
 * usher closes the broken upstream connection (it is never put back in the
 * pool, so its leftover bytes can never be read as the answer to another
 * request), and that the next request goes out on a fresh upstream connection
 * and succeeds.
 *
 * What usher does (src/proxy/exchange.ts):
 * - a response head that fails parseResponseHead (src/http1/response-head.ts)
 *   before anything reached the client → 502 `x-usher-error: bad_response`;
 * - the backend closes or resets before a complete head → 502 `upstream_reset`;
 *   either way the client connection stays usable (the next request uses it);
 * - the head already went to the client and the body then breaks (bad chunk,
 *   early close) → usher cannot send anything truthful, so it cuts the client
 *   connection after the last good body byte;
 * - bytes after a complete response → the response is delivered, the extra
 *   bytes never are, and the upstream connection is closed;
 * - a Transfer-Encoding other than exactly `chunked`, whatever the status →
 *   502 `bad_response` (nginx: "upstream sent unknown Transfer-Encoding");
 * - a 204 or 304 with Content-Length or Transfer-Encoding → relayed without
 *   them (RFC 9110 §8.6), any body bytes dropped, the upstream connection
 *   closed (the body might otherwise be read as the next response).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { simpleYaml, startUsher } from '../helpers/usher.ts';
import { RawClient, startScriptedBackend, type ScriptedConnection } from './helpers.ts';

const GOOD = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

/** The request head usher sends upstream for the client's `GET <path>` (request id written as ID). */
function upstreamGet(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: x\r\nx-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\nx-forwarded-host: x\r\nx-request-id: ID\r\n\r\n`;
}

type Outcome =
  /** usher answers 502 itself, with this `x-usher-error`. */
  | { readonly kind: 'error'; readonly error: 'bad_response' | 'upstream_reset' }
  /** The client gets a 200 head and exactly `body` bytes of its body, then the connection closes. */
  | { readonly kind: 'cut'; readonly body: string }
  /** The client gets the backend's 200 `ok`, and nothing else. */
  | { readonly kind: 'ok' }
  /** The client gets this status (204 or 304) without Content-Length, Transfer-Encoding or body bytes, on a kept connection. */
  | { readonly kind: 'repaired'; readonly status: 204 | 304 };

interface BrokenRow {
  readonly name: string;
  /**
   * What the first backend connection does once it has read the request
   * head. `step` resolves when the client has seen `stepAfter`, so a row can
   * break its response only after the client provably has the head.
   */
  readonly respond: (connection: ScriptedConnection, step: Promise<void>) => Promise<void> | void;
  readonly stepAfter?: string;
  readonly outcome: Outcome;
  /** The expected behaviour usher does not have yet: the row runs and reports but does not fail the suite. */
  readonly todo?: string;
}

const oversizedHead = `HTTP/1.1 200 OK\r\n${Array.from({ length: 6 }, (_, i) => `X-Pad-${i}: ${'p'.repeat(6000)}\r\n`).join('')}Content-Length: 2\r\n\r\nok`;

const rows: readonly BrokenRow[] = [
  // Content-Length values differ: no framing can be trusted → 502 bad_response (HTTP1_CONFLICTING_CONTENT_LENGTH).
  {
    name: 'duplicate Content-Length with different values',
    respond: (c) => void c.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!'),
    outcome: { kind: 'error', error: 'bad_response' },
  },
  // Content-Length and Transfer-Encoding together → 502 bad_response (HTTP1_CL_AND_TE), as nginx does for upstreams.
  {
    name: 'Content-Length and Transfer-Encoding together',
    respond: (c) => void c.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'),
    outcome: { kind: 'error', error: 'bad_response' },
  },
  // Status line without a status code → 502 bad_response (HTTP1_BAD_STATUS).
  {
    name: 'bad status line',
    respond: (c) => void c.socket.write('HTTP/1.1 OK\r\nContent-Length: 2\r\n\r\nok'),
    outcome: { kind: 'error', error: 'bad_response' },
  },
  // Status outside 100-599 → 502 bad_response (HTTP1_BAD_STATUS).
  {
    name: 'status 999',
    respond: (c) => void c.socket.write('HTTP/1.1 999 Weird\r\nContent-Length: 2\r\n\r\nok'),
    outcome: { kind: 'error', error: 'bad_response' },
  },
  // A 101 usher never asked for (no Upgrade sent): not relayed, the connection would become a blind tunnel → 502 bad_response.
  {
    name: 'unsolicited 101 Switching Protocols',
    respond: (c) => void c.socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n'),
    outcome: { kind: 'error', error: 'bad_response' },
  },
  // Head over 32 KiB: rejected as soon as the buffered bytes pass the limit → 502 bad_response (HTTP1_HEAD_TOO_LARGE).
  {
    name: 'response head over 32 KiB',
    respond: (c) => void c.socket.write(oversizedHead),
    outcome: { kind: 'error', error: 'bad_response' },
  },
  // LF-only line endings: rejected before the head completes → 502 bad_response (HTTP1_BARE_LF).
  {
    name: 'bare LF line endings in the head',
    respond: (c) => void c.socket.write('HTTP/1.1 200 OK\nContent-Length: 2\n\nok'),
    outcome: { kind: 'error', error: 'bad_response' },
  },
  // NUL in a header value (header injection towards the client) → 502 bad_response (HTTP1_BAD_FIELD_VALUE).
  {
    name: 'NUL in a header value',
    respond: (c) => void c.socket.write('HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok'),
    outcome: { kind: 'error', error: 'bad_response' },
  },
  // The head and a good chunk went to the client; the next chunk size is not hex. usher must forward nothing of the
  // bad line and cut the client connection (no terminating chunk, so the client knows the body is incomplete).
  // Today it cuts the connection, but only after relaying the whole buffer that failed, bad line, terminator and all.
  {
    name: 'invalid chunk size after the head was sent',
    respond: async (c, step) => {
      c.socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
      await step;
      c.socket.write('zz\r\nworld\r\n0\r\n\r\n');
    },
    stepAfter: 'hello\r\n',
    outcome: { kind: 'cut', body: '5\r\nhello\r\n' },
  },
  // Content-Length 100, 10 bytes, then FIN: usher cuts the client after the 10 bytes (it cannot send the missing 90).
  {
    name: 'truncated body (Content-Length 100, 10 bytes, then close)',
    respond: async (c, step) => {
      c.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789');
      await step;
      c.socket.end();
    },
    stepAfter: '0123456789',
    outcome: { kind: 'cut', body: '0123456789' },
  },
  // Bytes that are not HTTP but end like a head → 502 bad_response (HTTP1_BAD_STATUS_LINE).
  {
    name: 'garbage bytes ending in CRLFCRLF',
    respond: (c) => void c.socket.write('\x00\xff\x16garbage garbage\r\n\r\n'),
    outcome: { kind: 'error', error: 'bad_response' },
  },
  // Garbage that never completes a head, then FIN: nothing was sent to the client → 502 upstream_reset.
  {
    name: 'garbage bytes, then close',
    respond: (c) => void c.socket.end('\x00\xff\x16garbage'),
    outcome: { kind: 'error', error: 'upstream_reset' },
  },
  // FIN without a byte of response → 502 upstream_reset (no retry: simpleYaml configures none).
  {
    name: 'closes without answering',
    respond: (c) => void c.socket.end(),
    outcome: { kind: 'error', error: 'upstream_reset' },
  },
  // RST without a byte of response → 502 upstream_reset.
  {
    name: 'resets without answering',
    respond: (c) => void c.socket.resetAndDestroy(),
    outcome: { kind: 'error', error: 'upstream_reset' },
  },
  // A second response glued to the first in one write: the client gets the first only; usher sees bytes past the
  // end of the response and closes the upstream connection instead of pooling it.
  {
    name: 'extra bytes right after the response',
    respond: (c) => void c.socket.write(`${GOOD}HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsmuggle`),
    outcome: { kind: 'ok' },
  },
  // Extra bytes after the client has its response, while the connection sits idle in the pool: usher closes it.
  {
    name: 'extra bytes on the idle connection after the response',
    respond: async (c, step) => {
      c.socket.write(GOOD);
      await step;
      c.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsmuggle');
    },
    stepAfter: '\r\n\r\nok',
    outcome: { kind: 'ok' },
  },

  // ---- Transfer-Encoding other than exactly chunked → 502 bad_response, never relayed (RFC 9112 §6.1; nginx, Envoy) ----
  // gzip alone: RFC 9112 §6.3 item 4 would read until close and hand the client gzip bytes labelled as nothing.
  {
    name: 'Transfer-Encoding gzip (body until close)',
    respond: (c) => void c.socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b\x08\x00smuggle'),
    outcome: { kind: 'error', error: 'bad_response' },
  },
  // gzip before chunked: relaying the de-framed body as plain chunked would drop the gzip the body is in.
  {
    name: 'Transfer-Encoding gzip, chunked',
    respond: (c) => void c.socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n7\r\nsmuggle\r\n0\r\n\r\n'),
    outcome: { kind: 'error', error: 'bad_response' },
  },
  {
    name: 'Transfer-Encoding gzip, then Transfer-Encoding chunked (two fields)',
    respond: (c) => void c.socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nsmuggle\r\n0\r\n\r\n'),
    outcome: { kind: 'error', error: 'bad_response' },
  },
  // chunked not last: the length cannot be determined from the framing.
  {
    name: 'Transfer-Encoding chunked, gzip',
    respond: (c) => void c.socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n7\r\nsmuggle\r\n0\r\n\r\n'),
    outcome: { kind: 'error', error: 'bad_response' },
  },
  {
    name: 'Transfer-Encoding identity',
    respond: (c) => void c.socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nsmuggle'),
    outcome: { kind: 'error', error: 'bad_response' },
  },
  {
    name: 'Transfer-Encoding chunked in two fields',
    respond: (c) => void c.socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nsmuggle\r\n0\r\n\r\n'),
    outcome: { kind: 'error', error: 'bad_response' },
  },
  {
    name: 'Transfer-Encoding chunked with a parameter',
    respond: (c) => void c.socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;q=1\r\n\r\n7\r\nsmuggle\r\n0\r\n\r\n'),
    outcome: { kind: 'error', error: 'bad_response' },
  },
  // The Transfer-Encoding rule holds even when the status has no body.
  {
    name: '304 with Transfer-Encoding gzip',
    respond: (c) => void c.socket.write('HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: gzip\r\n\r\nsmuggle'),
    outcome: { kind: 'error', error: 'bad_response' },
  },

  // ---- 204 / 304 that say they have a body: repaired, body dropped, connection closed (RFC 9110 §8.6, §15.3.5, §15.4.5) ----
  {
    name: '204 with Content-Length and a body in the same write',
    respond: (c) => void c.socket.write('HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\nsmuggle'),
    outcome: { kind: 'repaired', status: 204 },
  },
  // The body comes once the client has the 204: usher closed the connection already, so it is never read as a response.
  {
    name: '204 with Content-Length, the body sent after the client has the 204',
    respond: async (c, step) => {
      c.socket.write('HTTP/1.1 204 No Content\r\nContent-Length: 44\r\n\r\n');
      await step;
      if (!c.socket.destroyed) c.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsmuggle');
    },
    stepAfter: '\r\n\r\n',
    outcome: { kind: 'repaired', status: 204 },
  },
  {
    name: '204 with Content-Length: 0',
    respond: (c) => void c.socket.write('HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n'),
    outcome: { kind: 'repaired', status: 204 },
  },
  {
    name: '204 with Transfer-Encoding chunked and a chunked body',
    respond: (c) => void c.socket.write('HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nsmuggle\r\n0\r\n\r\n'),
    outcome: { kind: 'repaired', status: 204 },
  },
  {
    name: '304 with Content-Length and a body in the same write',
    respond: (c) => void c.socket.write('HTTP/1.1 304 Not Modified\r\nETag: "e"\r\nContent-Length: 7\r\n\r\nsmuggle'),
    outcome: { kind: 'repaired', status: 304 },
  },
  {
    name: '304 with Transfer-Encoding chunked and a chunked body',
    respond: (c) => void c.socket.write('HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nsmuggle\r\n0\r\n\r\n'),
    outcome: { kind: 'repaired', status: 304 },
  },
];

for (const row of rows) {
  test(`broken backend: ${row.name}`, row.todo === undefined ? {} : { todo: row.todo }, async (t) => {
    let release!: () => void;
    const step = new Promise<void>((resolve) => (release = resolve));
    const laterHeads: string[] = [];
    const accepted: ScriptedConnection[] = [];
    const backend = await startScriptedBackend(async (connection) => {
      accepted.push(connection);
      const head = await connection.head();
      if (connection.index === 0) {
        await row.respond(connection, step);
        return;
      }
      laterHeads.push(head);
      connection.socket.write(GOOD);
    });
    const usher = await startUsher(simpleYaml([backend.address]));
    const port = usher.address('web').port;
    const clients: RawClient[] = [];
    t.after(async () => {
      release();
      for (const c of clients) c.destroy();
      await usher.stop({ timeoutMs: 500 });
      await backend.close();
    });

    const client = await RawClient.connect(port);
    clients.push(client);
    client.write('GET /first HTTP/1.1\r\nHost: x\r\n\r\n');
    if (row.stepAfter !== undefined) {
      assert.ok(await client.waitFor(row.stepAfter), `the client never saw ${JSON.stringify(row.stepAfter)}: ${JSON.stringify(client.data)}`);
      release();
    }

    let nextClient = client;
    const outcome = row.outcome;
    switch (outcome.kind) {
      case 'error': {
        const res = await client.readResponse();
        assert.ok(res, `expected a 502, the connection closed; received ${JSON.stringify(client.data)}`);
        assert.equal(res.status, 502);
        assert.equal(res.headers['x-usher-error'], outcome.error);
        assert.doesNotMatch(res.body, /ok|garbage|smuggle/, 'nothing of the broken response reaches the client');
        // The request was read completely, so the client connection stays in step and is kept.
        assert.doesNotMatch(res.headers['connection'] ?? '', /close/i);
        break;
      }
      case 'cut': {
        await client.waitClosed();
        assert.equal(await client.readResponse(100), undefined, `the body must be incomplete: ${JSON.stringify(client.data)}`);
        const headEnd = client.data.indexOf('\r\n\r\n');
        assert.match(client.data, /^HTTP\/1\.1 200 OK\r\n/);
        assert.equal(client.data.slice(headEnd + 4), outcome.body, 'the client gets the good bytes and nothing after them');
        nextClient = await RawClient.connect(port);
        clients.push(nextClient);
        break;
      }
      case 'ok': {
        const res = await client.readResponse();
        assert.equal(res?.status, 200);
        assert.equal(res.body, 'ok');
        break;
      }
      case 'repaired': {
        const res = await client.readResponse();
        assert.ok(res, `expected a ${outcome.status}, the connection closed; received ${JSON.stringify(client.data)}`);
        assert.equal(res.status, outcome.status);
        assert.equal(res.headers['x-usher-error'], undefined, 'relayed, not an usher error');
        assert.equal(res.headers['content-length'], undefined, `no Content-Length on a ${outcome.status} (RFC 9110 §8.6)`);
        assert.equal(res.headers['transfer-encoding'], undefined, `no Transfer-Encoding on a ${outcome.status}`);
        assert.doesNotMatch(res.head, /smuggle/);
        assert.doesNotMatch(res.headers['connection'] ?? '', /close/i, 'the client connection is kept');
        break;
      }
      default: {
        const never: never = outcome;
        throw new Error(`unknown outcome ${JSON.stringify(never)}`);
      }
    }

    // The broken upstream connection is closed (by usher, or by the backend itself), never pooled.
    await backend.closed(0);

    nextClient.write('GET /next HTTP/1.1\r\nHost: x\r\n\r\n');
    const next = await nextClient.readResponse();
    assert.equal(next?.status, 200, `next request; received ${JSON.stringify(nextClient.data)}`);
    assert.equal(next.body, 'ok');
    assert.equal(nextClient.unread, '', 'no leftover bytes of the broken connection reach the client');
    assert.equal(backend.accepted, 2, 'the next request went out on a fresh upstream connection');
    assert.equal(laterHeads.length, 1);
    assert.match(laterHeads[0]!, /^GET \/next HTTP\/1\.1\r\n/);
    // Byte for byte: each upstream connection carried exactly one request head as usher writes it, and nothing else.
    const received = await Promise.all(accepted.map(async (c) => (await c.head()).replace(/x-request-id: [0-9a-f]{32}/, 'x-request-id: ID')));
    assert.deepEqual(received, [upstreamGet('/first'), upstreamGet('/next')]);
  });
}
