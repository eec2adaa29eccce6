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
 *   bytes never are, and the upstream connection is closed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { simpleYaml, startUsher } from '../helpers/usher.ts';
import { RawClient, startScriptedBackend, type ScriptedConnection } from './helpers.ts';

const GOOD = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

type Outcome =
  /** usher answers 502 itself, with this `x-usher-error`. */
  | { readonly kind: 'error'; readonly error: 'bad_response' | 'upstream_reset' }
  /** The client gets a 200 head and exactly `body` bytes of its body, then the connection closes. */
  | { readonly kind: 'cut'; readonly body: string }
  /** The client gets the backend's 200 `ok`, and nothing else. */
  | { readonly kind: 'ok' };

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
];

for (const row of rows) {
  test(`broken backend: ${row.name}`, row.todo === undefined ? {} : { todo: row.todo }, async (t) => {
    let release!: () => void;
    const step = new Promise<void>((resolve) => (release = resolve));
    const laterHeads: string[] = [];
    const backend = await startScriptedBackend(async (connection) => {
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
  });
}
