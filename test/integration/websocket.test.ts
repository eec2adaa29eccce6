import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { createAccessLog } from '../../src/observe/access-log.ts';
import { Usher } from '../../src/runtime/usher.ts';
import { until } from '../helpers/load.ts';
import { configFromYaml } from '../helpers/usher.ts';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

interface WsBackend {
  readonly name: string;
  readonly address: string;
  readonly server: Server;
  readonly upgrades: IncomingMessage[];
  readonly sockets: Set<Socket>;
  close(): Promise<void>;
}

/** An HTTP server that completes WebSocket handshakes and then echoes raw bytes prefixed with its name. */
async function startWsBackend(name: string, options: { refuse?: boolean } = {}): Promise<WsBackend> {
  const server = createServer((req, res) => {
    req.resume();
    res.end(`${name} plain`);
  });
  const upgrades: IncomingMessage[] = [];
  const sockets = new Set<Socket>();
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    upgrades.push(req);
    if (options.refuse) {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\n\r\nno');
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}${GUID}`).digest('base64');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\nx-backend: ${name}\r\n\r\n`,
    );
    socket.on('data', (chunk: Buffer) => socket.write(`${name}:${chunk.toString()}`));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  server.unref();
  const { port } = server.address() as AddressInfo;
  return {
    name,
    address: `127.0.0.1:${port}`,
    server,
    upgrades,
    sockets,
    async close() {
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface WsClient {
  readonly socket: Socket;
  readonly head: string;
  /** Sends `text` and resolves with the next chunk of text received. */
  echo(text: string): Promise<string>;
  readonly closed: Promise<void>;
}

/** A raw WebSocket client: sends the handshake, reads the 101 head; after that bytes are opaque. */
async function openWs(url: string, path = '/ws'): Promise<WsClient> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  await once(socket, 'connect');
  const key = Buffer.from('0123456789abcdef').toString('base64');
  socket.write(`GET ${path} HTTP/1.1\r\nhost: ws.example\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: ${key}\r\nsec-websocket-version: 13\r\n\r\n`);
  let buffered = '';
  const head = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString('latin1');
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      resolve(buffered.slice(0, end));
      buffered = buffered.slice(end + 4);
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`closed before a response head: ${buffered}`)));
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  return {
    socket,
    head,
    closed,
    echo(text) {
      return new Promise((resolve) => {
        socket.once('data', (chunk: Buffer) => resolve(chunk.toString()));
        socket.write(text);
      });
    },
  };
}

function yaml(backends: readonly WsBackend[], pool = '', listener = ''): string {
  return `listeners:
  - name: web
    bind: 127.0.0.1:0
${listener}    routes:
      - pool: main
pools:
  main:
    algorithm: round-robin
${pool}    backends:
${backends.map((b) => `      - address: ${b.address}\n`).join('')}`;
}

async function start(text: string): Promise<{ usher: Usher; setSource(next: string): void }> {
  let source = text;
  const usher = await Usher.start(configFromYaml(text), {
    accessLog: createAccessLog({ enabled: false }),
    configSource: () => parseConfig(source, 'test.yaml', {}),
  });
  return { usher, setSource: (next) => (source = next) };
}

test('WebSocket upgrades are balanced per request, relayed with their 101, then bytes flow both ways', async (t) => {
  const backends = await Promise.all(['a', 'b'].map((name) => startWsBackend(name)));
  const { usher } = await start(yaml(backends));
  t.after(async () => {
    await usher.stop({ timeoutMs: 200 });
    await Promise.all(backends.map((b) => b.close()));
  });
  const first = await openWs(usher.url('web'));
  const second = await openWs(usher.url('web'));
  t.after(() => {
    first.socket.destroy();
    second.socket.destroy();
  });
  for (const ws of [first, second]) {
    assert.match(ws.head, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.match(ws.head, /\r\nupgrade: websocket/i);
    assert.match(ws.head, /\r\nconnection: upgrade/i);
    assert.match(ws.head, /\r\nsec-websocket-accept: BACScCJPNqyz\+UBoqMH89VmURoA=/i);
  }
  const served = [/x-backend: (\w)/.exec(first.head)?.[1], /x-backend: (\w)/.exec(second.head)?.[1]].sort();
  assert.deepEqual(served, ['a', 'b'], 'round-robin per upgrade');
  assert.match(await first.echo('hello'), /^[ab]:hello$/);
  assert.match(await second.echo('x'.repeat(10)), /^[ab]:x{10}$/);

  const upgrade = backends[0]!.upgrades[0]!;
  assert.equal(upgrade.headers['upgrade'], 'websocket');
  assert.equal(upgrade.headers['x-forwarded-for'], '127.0.0.1');

  // An open WebSocket counts as in flight on its backend (least-connections sees it).
  const pool = usher.snapshot.pools.get('main')!;
  assert.deepEqual(pool.control.backends.map((b) => b.inFlight), [1, 1]);
  first.socket.end();
  await until(() => pool.control.backends.reduce((n, b) => n + b.inFlight, 0) === 1, 'the closed WebSocket to leave inFlight');
});

test('a backend that refuses the upgrade answers like any request; plain requests on the same listener still work', async (t) => {
  const backend = await startWsBackend('r', { refuse: true });
  const { usher } = await start(yaml([backend]));
  t.after(async () => {
    await usher.stop({ timeoutMs: 200 });
    await backend.close();
  });
  const ws = await openWs(usher.url('web'));
  assert.match(ws.head, /^HTTP\/1\.1 403 Forbidden/);
  ws.socket.destroy();
  const res = await fetch(`${usher.url('web')}/plain`);
  assert.equal(await res.text(), 'r plain');
});

test('an idle WebSocket is closed after tunnelIdle; a reload keeps open WebSockets', async (t) => {
  const backend = await startWsBackend('a');
  const { usher, setSource } = await start(yaml([backend], '', '    timeouts: { tunnelIdle: 400ms }\n'));
  t.after(async () => {
    await usher.stop({ timeoutMs: 200 });
    await backend.close();
  });
  const ws = await openWs(usher.url('web'));
  // A reload with the same route and backend: the WebSocket lives on.
  setSource(yaml([backend], '    retry: { attempts: 1 }\n', '    timeouts: { tunnelIdle: 400ms }\n'));
  assert.equal((await usher.reload()).ok, true);
  assert.equal(await ws.echo('after reload'), 'a:after reload');
  const openedAt = performance.now();
  await ws.closed;
  const idle = performance.now() - openedAt;
  assert.ok(idle >= 300 && idle < 2000, `closed after ${idle.toFixed(0)} ms idle`);
});

test('draining a backend closes its WebSockets after drainTimeout; graceful stop gives them the grace period', async (t) => {
  const backends = await Promise.all(['a', 'b'].map((name) => startWsBackend(name)));
  const { usher } = await start(yaml(backends, '    drainTimeout: 300ms\n'));
  t.after(async () => {
    await usher.stop({ timeoutMs: 200 });
    await Promise.all(backends.map((b) => b.close()));
  });
  const pool = usher.snapshot.pools.get('main')!;
  const onA = await openWs(usher.url('web'));
  const onB = await openWs(usher.url('web'));
  assert.match(onA.head, /x-backend: a/);
  pool.control.setAdminState(pool.control.backends[0]!, 'draining');
  const drainedAt = performance.now();
  assert.equal(await onA.echo('still here'), 'a:still here', 'a drained backend keeps its WebSockets until drainTimeout');
  const next = await openWs(usher.url('web'));
  assert.match(next.head, /x-backend: b/, 'new WebSockets go elsewhere');
  await onA.closed;
  const lived = performance.now() - drainedAt;
  assert.ok(lived >= 250 && lived < 2000, `closed ${lived.toFixed(0)} ms after the drain`);

  // Graceful stop: open WebSockets get the grace period, then are closed; stop resolves.
  const stopping = usher.stop({ timeoutMs: 300 });
  assert.equal(await onB.echo('during stop'), 'b:during stop');
  const stopStarted = performance.now();
  await Promise.all([stopping, onB.closed, next.closed]);
  assert.ok(performance.now() - stopStarted < 2000);
});

test('a WebSocket outlives short keep-alive, header and upstream response/idle timeouts: only tunnelIdle applies to it', async (t) => {
  const backend = await startWsBackend('a');
  const { usher } = await start(
    yaml([backend], '    timeouts: { connect: 1s, response: 150ms, idle: 150ms }\n', '    timeouts: { keepAlive: 150ms, header: 150ms, bodyIdle: 150ms, tunnelIdle: 5s }\n'),
  );
  t.after(async () => {
    await usher.stop({ timeoutMs: 200 });
    await backend.close();
  });
  const ws = await openWs(usher.url('web'));
  assert.match(ws.head, /^HTTP\/1\.1 101 /);
  let closed = false;
  void ws.closed.then(() => (closed = true));
  // Silent for several times every timeout but tunnelIdle (and several deadline sweeps).
  await new Promise((resolve) => setTimeout(resolve, 700));
  assert.equal(closed, false, 'the tunnel was not cut by a keep-alive, header, response or idle deadline');
  assert.equal(await ws.echo('still here'), 'a:still here');
  ws.socket.destroy();
});
