/**
 * usher's L4 data path end to end with real sockets: a `net.Server` in the
 * test hands accepted sockets to a TcpProxy, which tunnels them to real TCP
 * and TLS backends on 127.0.0.1.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { ListenerConfig, PoolConfig, RouteConfig } from '../../src/config/types.ts';
import { silentLogger } from '../../src/observe/logger.ts';
import { Pool } from '../../src/pool/pool.ts';
import { compileTcpPlan, TcpProxy } from '../../src/l4/tcp-proxy.ts';
import { encodeProxyV2, PROXY_V2_SIGNATURE } from '../../src/l4/proxy-protocol.ts';
import { generateCertificate, type TestCertificate } from '../helpers/tls.ts';
import { refusedAddress } from '../helpers/refused.ts';
import { waitFor } from '../helpers/wait.ts';

const HOST = '127.0.0.1';
const MiB = 1024 * 1024;

// ---- config builders -----------------------------------------------------------

function poolConfig(addresses: readonly string[], extra: Partial<PoolConfig> = {}): PoolConfig {
  return {
    protocol: 'http1',
    drainTimeoutMs: 30_000,
    algorithm: 'round-robin',
    hashKey: { kind: 'client-ip' },
    timeouts: { connectMs: 1000, responseMs: 60_000, idleMs: 60_000 },
    backends: addresses.map((address) => {
      const [host, port] = address.split(':');
      return { address: { host: host!, port: Number(port) }, weight: 1, backup: false, state: 'enabled' as const };
    }),
    queueSize: 128,
    queueTimeoutMs: 5000,
    unreachable: { backoffMs: 1000, maxBackoffMs: 10_000 },
    retry: { attempts: 2, on: ['connect-failure', 'reset'], budgetPercent: 20, minRetriesPerSecond: 3 },
    ...extra,
  };
}

function listenerConfig(protocol: 'tcp' | 'tls-passthrough', routes: readonly RouteConfig[], extra: Partial<ListenerConfig> = {}): ListenerConfig {
  return {
    name: 'l4',
    bind: { host: HOST, port: 0 },
    protocol,
    acceptProxyProtocol: false,
    trustedProxies: [],
    routes,
    limits: { maxHeaderBytes: 32768, maxHeaders: 100, maxUriBytes: 8192, maxBodyBytes: 0, maxRequestsPerConnection: 1000, maxConnections: 10000, maxConnectionsPerClient: 0 },
    timeouts: { headerMs: 10_000, bodyIdleMs: 60_000, keepAliveMs: 60_000, sendMs: 60_000, tunnelIdleMs: 60_000 },
    ...extra,
  };
}

// ---- usher under test ------------------------------------------------------------

interface Usher {
  readonly port: number;
  readonly proxy: TcpProxy;
  readonly pools: Record<string, Pool>;
  /** Client-side sockets usher accepted, in order. */
  readonly accepted: Socket[];
}

async function startUsher(
  t: TestContext,
  listener: ListenerConfig,
  pools: Record<string, PoolConfig>,
  options: { preludeTimeoutMs?: number } = {},
): Promise<Usher> {
  const live: Record<string, Pool> = {};
  for (const [name, config] of Object.entries(pools)) live[name] = new Pool(name, config, { logger: silentLogger() });
  const plan = compileTcpPlan(listener, (name) => live[name]?.runtime, silentLogger(), options);
  const proxy = new TcpProxy(plan);
  const accepted: Socket[] = [];
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    accepted.push(socket);
    proxy.handle(socket);
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  t.after(async () => {
    proxy.closeAll();
    for (const pool of Object.values(live)) pool.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, proxy, pools: live, accepted };
}

// ---- backends --------------------------------------------------------------------

interface Backend {
  readonly name: string;
  readonly address: string;
  readonly server: Server;
  /** Connections accepted so far. */
  connections: number;
  /** Bytes each connection received (when recording), in accept order; complete once that connection's `ended[i]` resolved. */
  readonly received: Buffer[][];
  readonly ended: Promise<void>[];
}

type Behaviour = (socket: Socket, backend: Backend, index: number) => void;

async function startBackend(t: TestContext, name: string, behaviour: Behaviour, record = behaviour === capture): Promise<Backend> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true, noDelay: true });
  const backend: Backend = { name, address: '', server, connections: 0, received: [], ended: [] };
  server.on('connection', (socket: Socket) => {
    const index = backend.connections++;
    const chunks: Buffer[] = [];
    backend.received.push(chunks);
    backend.ended.push(new Promise((resolve) => socket.on('close', () => resolve())));
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {
      // Resets from usher closing a tunnel are part of several tests.
    });
    // Only small tests record: keeping a bulk transfer's chunks would measure the test's memory, not usher's.
    if (record) socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    behaviour(socket, backend, index);
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  Object.assign(backend, { address: `${HOST}:${(server.address() as AddressInfo).port}` });
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return backend;
}

/** Greets with `name\n`, echoes, and on the client's FIN waits a little, says `bye name\n` and ends. */
const greetEcho: Behaviour = (socket, backend) => {
  socket.write(`${backend.name}\n`);
  socket.on('data', (chunk: Buffer) => socket.write(chunk));
  socket.on('end', () => setTimeout(() => socket.end(`bye ${backend.name}\n`), 50));
};

/** Reads silently; ends when the client does. */
const capture: Behaviour = (socket) => {
  socket.on('end', () => socket.end());
};

/** Counts bytes; on FIN answers with the count and ends. */
const sink: Behaviour = (socket) => {
  let count = 0;
  socket.on('data', (chunk: Buffer) => (count += chunk.length));
  socket.on('end', () => socket.end(`${count}\n`));
};

// ---- clients ---------------------------------------------------------------------

async function dial(port: number): Promise<Socket> {
  const socket = connect({ host: HOST, port, allowHalfOpen: true, noDelay: true });
  await once(socket, 'connect');
  return socket;
}

/**
 * Everything a socket receives until it closes, and whether it closed with an
 * error. Like most clients, it ends its own side when usher ends its (the
 * test sockets are half-open capable, so this does not happen by itself).
 */
function collect(socket: Socket): Promise<{ data: string; error: Error | undefined }> {
  const chunks: Buffer[] = [];
  let error: Error | undefined;
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('end', () => socket.end());
  socket.on('error', (e) => (error = e));
  return new Promise((resolve) => socket.on('close', () => resolve({ data: Buffer.concat(chunks).toString('latin1'), error })));
}

/** The first line a socket receives (the backend's greeting). */
function readLine(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      socket.off('data', onData);
      socket.pause();
      if (nl + 1 < text.length) socket.unshift(Buffer.from(text.slice(nl + 1), 'latin1'));
      resolve(text.slice(0, nl));
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`closed before a line; got ${JSON.stringify(text)}`)));
  });
}


/** Writes `total` bytes from one reused chunk, honouring backpressure. */
async function writeBytes(socket: Socket, total: number, chunk: Buffer): Promise<void> {
  let sent = 0;
  while (sent < total) {
    const n = Math.min(chunk.length, total - sent);
    sent += n;
    if (!socket.write(n === chunk.length ? chunk : chunk.subarray(0, n))) await once(socket, 'drain');
  }
}

function inFlight(pool: Pool): number[] {
  return pool.control.backends.map((backend) => backend.inFlight);
}

// ---- balancing -------------------------------------------------------------------

test('round-robin spreads connections over 3 echo backends, one connection at a time', async (t) => {
  const backends = await Promise.all(['b0', 'b1', 'b2'].map((name) => startBackend(t, name, greetEcho)));
  const usher = await startUsher(t, listenerConfig('tcp', [{ pool: 'p' }]), { p: poolConfig(backends.map((b) => b.address)) });
  const seen: string[] = [];
  for (let i = 0; i < 6; i++) {
    const socket = await dial(usher.port);
    const done = collect(socket);
    socket.end(`hello ${i}\n`);
    const { data, error } = await done;
    assert.equal(error, undefined);
    const name = data.split('\n')[0]!;
    assert.equal(data, `${name}\nhello ${i}\nbye ${name}\n`);
    seen.push(name);
  }
  assert.deepEqual(seen, ['b0', 'b1', 'b2', 'b0', 'b1', 'b2']);
  await waitFor(() => inFlight(usher.pools['p']!).every((n) => n === 0), 'attempts to end');
  assert.deepEqual(usher.pools['p']!.control.backends.map((b) => b.counters.requests), [2, 2, 2]);
});

test('least-connections balances on open connections (one L4 connection is one attempt for its life)', async (t) => {
  const backends = await Promise.all(['b0', 'b1', 'b2'].map((name) => startBackend(t, name, greetEcho)));
  const usher = await startUsher(t, listenerConfig('tcp', [{ pool: 'p' }]), {
    p: poolConfig(backends.map((b) => b.address), { algorithm: 'least-connections' }),
  });
  const pool = usher.pools['p']!;
  const open = new Map<string, Socket[]>();
  const openOne = async (): Promise<string> => {
    const socket = await dial(usher.port);
    const name = await readLine(socket);
    socket.resume();
    open.set(name, [...(open.get(name) ?? []), socket]);
    return name;
  };
  const first = [await openOne(), await openOne(), await openOne()];
  assert.deepEqual([...first].sort(), ['b0', 'b1', 'b2'], 'three connections on three backends');
  assert.deepEqual(inFlight(pool), [1, 1, 1]);
  // Close the connection on b1: it now has the fewest open connections and takes the next two.
  const closing = open.get('b1')!.pop()!;
  const closed = collect(closing);
  closing.end();
  await closed;
  await waitFor(() => pool.control.backends[1]!.inFlight === 0, 'b1 to have no open connection');
  assert.deepEqual(inFlight(pool), [1, 0, 1]);
  assert.equal(await openOne(), 'b1');
  assert.deepEqual(inFlight(pool), [1, 1, 1]);
  // Two more from [1, 1, 1]: whichever backends take them, they must be two different ones.
  await openOne();
  await openOne();
  assert.deepEqual([...inFlight(pool)].sort(), [1, 2, 2], `open connections per backend: ${inFlight(pool)}`);
  for (const sockets of open.values()) for (const socket of sockets) socket.destroy();
  await waitFor(() => inFlight(pool).every((n) => n === 0), 'every attempt to end');
});

// ---- byte stream semantics ---------------------------------------------------------

test('half-close: the client ends its write side and still receives the backend\'s final bytes', async (t) => {
  const backend = await startBackend(t, 'b0', (socket) => {
    let got = '';
    socket.on('data', (chunk: Buffer) => (got += chunk.toString()));
    // Answer only after the client's FIN, and slowly, in several writes.
    socket.on('end', () => {
      setTimeout(() => socket.write(`got ${got.length} bytes;`), 50);
      setTimeout(() => socket.end(' final words'), 150);
    });
  });
  const usher = await startUsher(t, listenerConfig('tcp', [{ pool: 'p' }]), { p: poolConfig([backend.address]) });
  const socket = await dial(usher.port);
  const result = collect(socket);
  socket.write('x'.repeat(1000));
  socket.end();
  await once(socket, 'finish');
  const { data, error } = await result;
  assert.equal(error, undefined);
  assert.equal(data, 'got 1000 bytes; final words');
  await backend.ended[0];
  await waitFor(() => usher.pools['p']!.control.backends[0]!.inFlight === 0, 'the attempt to end');
  assert.equal(usher.pools['p']!.control.backends[0]!.counters.failures, 0);
});

test('backpressure: a slow reader of 200 MiB does not make usher buffer it', async (t) => {
  const TOTAL = 200 * MiB;
  const chunk = Buffer.alloc(256 * 1024, 0x61);
  const backend = await startBackend(t, 'source', (socket) => {
    void writeBytes(socket, TOTAL, chunk).then(() => socket.end(), () => socket.destroy());
  });
  const usher = await startUsher(t, listenerConfig('tcp', [{ pool: 'p' }]), { p: poolConfig([backend.address]) });
  const rssBefore = process.memoryUsage.rss();
  const socket = await dial(usher.port);
  const proxied = usher.accepted.at(-1)!;
  let received = 0;
  let maxWritable = 0;
  let maxRss = rssBefore;
  const sampler = setInterval(() => {
    maxWritable = Math.max(maxWritable, proxied.writableLength);
    maxRss = Math.max(maxRss, process.memoryUsage.rss());
  }, 5);
  const started = performance.now();
  let nextPause = 4 * MiB;
  socket.on('data', (data: Buffer) => {
    received += data.length;
    maxWritable = Math.max(maxWritable, proxied.writableLength);
    // A slow reader: stop for 10 ms after every 4 MiB.
    if (received >= nextPause) {
      nextPause += 4 * MiB;
      socket.pause();
      setTimeout(() => socket.resume(), 10);
    }
  });
  await once(socket, 'end');
  clearInterval(sampler);
  socket.end();
  const seconds = (performance.now() - started) / 1000;
  t.diagnostic(
    `200 MiB to a slow reader in ${seconds.toFixed(2)} s; max bytes queued on usher's client socket ${maxWritable}; RSS growth ${((maxRss - rssBefore) / MiB).toFixed(1)} MiB`,
  );
  assert.equal(received, TOTAL);
  assert.ok(maxWritable <= 1 * MiB, `usher queued ${maxWritable} bytes for the client`);
  // The direct proof is the queue above. RSS is a sanity bound: a fresh process grows by ~75-80 MiB on its
  // first bulk transfer (heap and buffer warm-up, the same for 200 MiB and 1 GiB), never in proportion to the bytes.
  assert.ok(maxRss - rssBefore < 128 * MiB, `RSS grew by ${((maxRss - rssBefore) / MiB).toFixed(1)} MiB`);
});

test('1 GiB through usher with bounded memory', async (t) => {
  const TOTAL = 1024 * MiB;
  const backend = await startBackend(t, 'sink', sink);
  const usher = await startUsher(t, listenerConfig('tcp', [{ pool: 'p' }]), { p: poolConfig([backend.address]) });
  const rssBefore = process.memoryUsage.rss();
  let maxRss = rssBefore;
  const sampler = setInterval(() => (maxRss = Math.max(maxRss, process.memoryUsage.rss())), 10);
  const started = performance.now();
  const socket = await dial(usher.port);
  const result = collect(socket);
  await writeBytes(socket, TOTAL, Buffer.alloc(256 * 1024, 0x62));
  socket.end();
  const { data, error } = await result;
  clearInterval(sampler);
  const seconds = (performance.now() - started) / 1000;
  const growth = (maxRss - rssBefore) / MiB;
  t.diagnostic(`1 GiB in ${seconds.toFixed(2)} s (${(1024 / seconds).toFixed(0)} MiB/s); RSS before ${(rssBefore / MiB).toFixed(0)} MiB, peak growth ${growth.toFixed(1)} MiB`);
  assert.equal(error, undefined);
  assert.equal(data, `${TOTAL}\n`);
  assert.ok(growth < 128, `RSS grew by ${growth.toFixed(1)} MiB`);
  assert.ok(seconds < 30, `took ${seconds.toFixed(1)} s`);
  await waitFor(() => usher.pools['p']!.control.backends[0]!.inFlight === 0, 'the attempt to end');
  assert.equal(usher.pools['p']!.control.backends[0]!.counters.bytesOut, TOTAL.toString().length + 1);
});

test('idle timeout: no byte either way for tunnelIdleMs closes both sides; traffic keeps it open', async (t) => {
  const backend = await startBackend(t, 'b0', greetEcho);
  const usher = await startUsher(t, listenerConfig('tcp', [{ pool: 'p' }], { timeouts: { ...listenerConfig('tcp', []).timeouts, tunnelIdleMs: 300 } }), {
    p: poolConfig([backend.address]),
  });
  const socket = await dial(usher.port);
  const result = collect(socket);
  // Keep talking every 100 ms for 900 ms: three idle periods pass without a close.
  for (let i = 0; i < 9; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(socket.destroyed, false, `closed while active (after ${(i + 1) * 100} ms)`);
    socket.write('.');
  }
  const quietSince = performance.now();
  await result;
  const closedAfter = performance.now() - quietSince;
  await backend.ended[0];
  t.diagnostic(`closed ${closedAfter.toFixed(0)} ms after the last byte`);
  assert.ok(closedAfter >= 250 && closedAfter < 1000, `closed after ${closedAfter.toFixed(0)} ms`);
  await waitFor(() => usher.pools['p']!.control.backends[0]!.inFlight === 0, 'the attempt to end');
});

// ---- PROXY protocol out ---------------------------------------------------------------

test('PROXY v1 and v2 to backends, byte for byte', async (t) => {
  for (const version of ['v1', 'v2'] as const) {
    const backend = await startBackend(t, `b-${version}`, capture);
    const usher = await startUsher(t, listenerConfig('tcp', [{ pool: 'p' }]), { p: poolConfig([backend.address], { proxyProtocol: version }) });
    const socket = await dial(usher.port);
    const clientPort = socket.localPort!;
    const done = collect(socket);
    socket.end('payload');
    await done;
    await backend.ended[0];
    const bytes = Buffer.concat(backend.received[0]!);
    const expected =
      version === 'v1'
        ? Buffer.from(`PROXY TCP4 127.0.0.1 127.0.0.1 ${clientPort} ${usher.port}\r\npayload`, 'latin1')
        : Buffer.concat([
            PROXY_V2_SIGNATURE,
            Buffer.from([0x21, 0x11, 0x00, 0x0c, 127, 0, 0, 1, 127, 0, 0, 1, clientPort >> 8, clientPort & 0xff, usher.port >> 8, usher.port & 0xff]),
            Buffer.from('payload'),
          ]);
    assert.deepEqual(bytes, expected, version);
  }
});

// ---- PROXY protocol in -------------------------------------------------------------------

test('PROXY v1 and v2 from a trusted peer: the header\'s addresses are passed on and the payload follows', async (t) => {
  const backend = await startBackend(t, 'b0', capture);
  const usher = await startUsher(
    t,
    listenerConfig('tcp', [{ pool: 'p' }], { acceptProxyProtocol: true, trustedProxies: ['127.0.0.0/8'] }),
    { p: poolConfig([backend.address], { proxyProtocol: 'v1' }) },
  );
  const inputs = [
    Buffer.from('PROXY TCP4 192.0.2.1 198.51.100.1 5555 443\r\nhello v1', 'latin1'),
    Buffer.concat([encodeProxyV2({ address: '2001:db8::1', port: 6666 }, { address: '2001:db8::2', port: 8443 }), Buffer.from('hello v2')]),
  ];
  const expected = ['PROXY TCP4 192.0.2.1 198.51.100.1 5555 443\r\nhello v1', 'PROXY TCP6 2001:db8::1 2001:db8::2 6666 8443\r\nhello v2'];
  for (const [i, input] of inputs.entries()) {
    const socket = await dial(usher.port);
    const done = collect(socket);
    // Split the header across writes: the reader must reassemble it.
    socket.write(input.subarray(0, 9));
    await new Promise((resolve) => setTimeout(resolve, 20));
    socket.end(input.subarray(9));
    const { error } = await done;
    assert.equal(error, undefined);
    await backend.ended[i];
    assert.equal(Buffer.concat(backend.received[i]!).toString('latin1'), expected[i]);
  }
});

test('PROXY from a trusted peer: the header\'s source address is what a client-ip hash pool hashes', async (t) => {
  const backends = await Promise.all(['b0', 'b1', 'b2'].map((name) => startBackend(t, name, greetEcho)));
  const usher = await startUsher(t, listenerConfig('tcp', [{ pool: 'p' }], { acceptProxyProtocol: true, trustedProxies: ['127.0.0.1'] }), {
    p: poolConfig(backends.map((b) => b.address), { algorithm: 'hash' }),
  });
  const via = async (source: string): Promise<string> => {
    const socket = await dial(usher.port);
    socket.write(`PROXY TCP4 ${source} 198.51.100.1 ${1000 + Math.floor(Math.random() * 60000)} 443\r\n`);
    const name = await readLine(socket);
    socket.destroy();
    return name;
  };
  const chosen = new Map<string, string>();
  for (let i = 1; i <= 24; i++) chosen.set(`192.0.2.${i}`, await via(`192.0.2.${i}`));
  assert.ok(new Set(chosen.values()).size >= 2, 'different sources spread over backends (the real peer is always 127.0.0.1)');
  for (const source of ['192.0.2.1', '192.0.2.7', '192.0.2.19']) assert.equal(await via(source), chosen.get(source), `${source} sticks`);
});

test('PROXY refused: from an untrusted peer, malformed or missing from a trusted one, or too slow', async (t) => {
  const backend = await startBackend(t, 'b0', capture);
  const untrusted = await startUsher(t, listenerConfig('tcp', [{ pool: 'p' }], { acceptProxyProtocol: true, trustedProxies: ['10.0.0.0/8'] }), {
    p: poolConfig([backend.address]),
  });
  // An untrusted peer claiming an address, in v1 and v2: closed, and the backend never sees a byte.
  for (const header of [Buffer.from('PROXY TCP4 192.0.2.1 198.51.100.1 5555 443\r\nhello', 'latin1'), encodeProxyV2({ address: '192.0.2.1', port: 1 }, { address: '192.0.2.2', port: 2 })]) {
    const before = backend.connections;
    const socket = await dial(untrusted.port);
    const done = collect(socket);
    socket.write(header);
    const { data } = await done;
    assert.equal(data, '');
    await waitFor(() => backend.connections === before + 1, 'the backend connection');
    await backend.ended[before];
    assert.equal(Buffer.concat(backend.received[before]!).length, 0, 'no byte reached the backend');
  }
  // An untrusted peer without a header is served as is.
  {
    const before = backend.connections;
    const socket = await dial(untrusted.port);
    const done = collect(socket);
    socket.end('plain hello');
    await done;
    await backend.ended[before];
    assert.equal(Buffer.concat(backend.received[before]!).toString(), 'plain hello');
  }

  const trusted = await startUsher(
    t,
    listenerConfig('tcp', [{ pool: 'p' }], { acceptProxyProtocol: true, trustedProxies: ['127.0.0.0/8', '::1'] }),
    { p: poolConfig([backend.address]) },
    { preludeTimeoutMs: 300 },
  );
  const before = backend.connections;
  for (const bad of ['PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\nhello', 'GET / HTTP/1.1\r\n\r\n', 'PROXY TCP4 1.2.3.4\r\n']) {
    const socket = await dial(trusted.port);
    const done = collect(socket);
    socket.write(bad);
    const { data } = await done;
    assert.equal(data, '', JSON.stringify(bad));
  }
  // A trusted peer that sends nothing is cut at the prelude deadline.
  const silent = await dial(trusted.port);
  const started = performance.now();
  await collect(silent);
  const waited = performance.now() - started;
  assert.ok(waited >= 250 && waited < 2000, `cut after ${waited.toFixed(0)} ms`);
  assert.equal(backend.connections, before, 'no backend connection was made for a refused header');
  assert.deepEqual(inFlight(trusted.pools['p']!), [0]);
});

// ---- failures, queueing, drain -------------------------------------------------------------

test('connect failure on one backend: the connection goes to another; all down closes the client', async (t) => {
  const live = await startBackend(t, 'live', greetEcho);
  const deadA = await refusedAddress();
  const deadB = await refusedAddress();
  const usher = await startUsher(t, listenerConfig('tcp', [{ pool: 'p' }, ]), { p: poolConfig([deadA, live.address, deadB]) });
  const pool = usher.pools['p']!;
  for (let i = 0; i < 6; i++) {
    const socket = await dial(usher.port);
    const done = collect(socket);
    socket.end('x');
    const { data } = await done;
    assert.equal(data, 'live\nxbye live\n', `connection ${i}`);
  }
  assert.ok(pool.control.backends[0]!.counters.failures > 0 && pool.control.backends[2]!.counters.failures > 0, 'both dead backends were tried');
  assert.equal(live.connections, 6);
  await waitFor(() => inFlight(pool).every((n) => n === 0), 'attempts to end');

  const allDown = await startUsher(t, listenerConfig('tcp', [{ pool: 'p' }]), { p: poolConfig([await refusedAddress(), await refusedAddress(), await refusedAddress(), await refusedAddress()]) });
  const socket = await dial(allDown.port);
  const { data } = await collect(socket);
  assert.equal(data, '');
  const failures = allDown.pools['p']!.control.backends.map((b) => b.counters.failures);
  assert.equal(failures.reduce((a, b) => a + b, 0), 3, `three different backends tried: ${failures}`);
  assert.ok(failures.every((n) => n <= 1));
});

test('maxConnections: a connection waits in the queue for a slot, one past the queue is closed at once', async (t) => {
  const backend = await startBackend(t, 'b0', greetEcho);
  const usher = await startUsher(t, listenerConfig('tcp', [{ pool: 'p' }]), {
    p: poolConfig([backend.address], { maxConnections: 1, queueSize: 1, queueTimeoutMs: 5000 }),
  });
  const pool = usher.pools['p']!;
  const first = await dial(usher.port);
  assert.equal(await readLine(first), 'b0');
  const second = await dial(usher.port);
  const secondLine = readLine(second);
  await waitFor(() => pool.runtime.queueLength === 1, 'the second connection to queue');
  const third = await dial(usher.port);
  const started = performance.now();
  assert.equal((await collect(third)).data, '');
  assert.ok(performance.now() - started < 500, 'refused at once');
  first.destroy();
  assert.equal(await secondLine, 'b0');
  assert.equal(backend.connections, 2);
  second.destroy();
  await waitFor(() => inFlight(pool)[0] === 0, 'attempts to end');
});

test('closeBackend and a drain close a backend\'s tunnels after the delay; closeAll closes everything', async (t) => {
  const backends = await Promise.all(['b0', 'b1'].map((name) => startBackend(t, name, greetEcho)));
  const usher = await startUsher(t, listenerConfig('tcp', [{ pool: 'p' }]), { p: poolConfig(backends.map((b) => b.address), { drainTimeoutMs: 200 }) });
  const pool = usher.pools['p']!;
  const a = await dial(usher.port);
  assert.equal(await readLine(a), 'b0');
  const b = await dial(usher.port);
  assert.equal(await readLine(b), 'b1');
  const aClosed = collect(a);
  const started = performance.now();
  usher.proxy.closeBackend(pool.runtime.backends[0]!, 200);
  await aClosed;
  const after = performance.now() - started;
  assert.ok(after >= 180 && after < 1500, `closed after ${after.toFixed(0)} ms`);
  assert.equal(b.destroyed, false, 'the other backend\'s tunnel stays');
  await waitFor(() => usher.proxy.connections === 1, 'the drained tunnel to end');
  // A drain needs no call: the pool closes the backend's tunnels drainTimeout later.
  const c = await dial(usher.port);
  assert.equal(await readLine(c), 'b0');
  const cClosed = collect(c);
  const drainedAt = performance.now();
  pool.control.setAdminState(pool.control.backends[0]!, 'draining');
  await cClosed;
  const drainedAfter = performance.now() - drainedAt;
  assert.ok(drainedAfter >= 180 && drainedAfter < 1500, `drained tunnel closed after ${drainedAfter.toFixed(0)} ms`);
  assert.equal(b.destroyed, false);
  const bClosed = collect(b);
  usher.proxy.closeAll();
  await bClosed;
  await waitFor(() => inFlight(pool).every((n) => n === 0), 'attempts to end');
  assert.equal(usher.proxy.connections, 0);
});

// ---- tls-passthrough ------------------------------------------------------------------------

async function startTlsBackend(t: TestContext, name: string, certificate: TestCertificate): Promise<{ address: string; handshakes: () => number }> {
  let handshakes = 0;
  const server = createTlsServer({ key: certificate.key, cert: certificate.cert }, (socket) => {
    handshakes++;
    socket.end(`${name} ${socket.servername || '-'}\n`);
  });
  server.on('tlsClientError', () => {
    // A refused or cut handshake is what some tests provoke.
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { address: `${HOST}:${(server.address() as AddressInfo).port}`, handshakes: () => handshakes };
}

async function tlsGet(port: number, options: ConnectionOptions): Promise<{ text: string; authorized: boolean; protocol: string | null }> {
  const socket: TLSSocket = tlsConnect({ host: HOST, port, ...options });
  await once(socket, 'secureConnect');
  const protocol = socket.getProtocol();
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  await once(socket, 'end');
  socket.destroy();
  return { text: Buffer.concat(chunks).toString(), authorized: socket.authorized, protocol };
}

test('tls-passthrough: SNI routes real TLS clients to two pools of real TLS servers, handshake end to end', async (t) => {
  const certificate = generateCertificate(['a.example', 'b.example', 'c.example']);
  const a0 = await startTlsBackend(t, 'a0', certificate);
  const a1 = await startTlsBackend(t, 'a1', certificate);
  const b0 = await startTlsBackend(t, 'b0', certificate);
  const c0 = await startTlsBackend(t, 'c0', certificate);
  const usher = await startUsher(
    t,
    listenerConfig('tls-passthrough', [
      { name: 'a', match: { sni: 'a.example' }, pool: 'a' },
      { name: 'b', match: { sni: 'b.example' }, pool: 'b' },
      { name: 'rest', pool: 'c' },
    ]),
    { a: poolConfig([a0.address, a1.address]), b: poolConfig([b0.address]), c: poolConfig([c0.address]) },
  );
  const ca = certificate.cert;
  const seenA: string[] = [];
  for (let i = 0; i < 4; i++) {
    const reply = await tlsGet(usher.port, { servername: 'a.example', ca });
    assert.equal(reply.authorized, true, 'the client verified the backend\'s certificate: TLS went end to end');
    seenA.push(reply.text);
  }
  assert.deepEqual(seenA, ['a0 a.example\n', 'a1 a.example\n', 'a0 a.example\n', 'a1 a.example\n']);
  const b = await tlsGet(usher.port, { servername: 'b.example', ca, maxVersion: 'TLSv1.2' });
  assert.deepEqual([b.text, b.authorized, b.protocol], ['b0 b.example\n', true, 'TLSv1.2']);
  const b13 = await tlsGet(usher.port, { servername: 'B.Example', ca });
  // Routing compares names case-insensitively; the bytes (and so the name the backend sees) pass through untouched.
  assert.deepEqual([b13.text, b13.protocol], ['b0 B.Example\n', 'TLSv1.3']);
  // No SNI (an IP host with servername '') and an unknown name reach the catch-all.
  const noSni = await tlsGet(usher.port, { servername: '', ca, checkServerIdentity: () => undefined });
  assert.equal(noSni.text, 'c0 -\n');
  const other = await tlsGet(usher.port, { servername: 'c.example', ca });
  assert.equal(other.text, 'c0 c.example\n');
  assert.equal(a0.handshakes() + a1.handshakes() + b0.handshakes() + c0.handshakes(), 8);
});

test('tls-passthrough behind a trusted proxy: PROXY header first, then the ClientHello, routed by SNI', async (t) => {
  const certificate = generateCertificate(['a.example', 'b.example']);
  const a0 = await startTlsBackend(t, 'a0', certificate);
  const b0 = await startTlsBackend(t, 'b0', certificate);
  const usher = await startUsher(
    t,
    listenerConfig(
      'tls-passthrough',
      [
        { match: { sni: 'a.example' }, pool: 'a' },
        { match: { sni: 'b.example' }, pool: 'b' },
      ],
      { acceptProxyProtocol: true, trustedProxies: ['127.0.0.1/32'] },
    ),
    { a: poolConfig([a0.address]), b: poolConfig([b0.address]) },
  );
  for (const [servername, want] of [['b.example', 'b0 b.example\n'], ['a.example', 'a0 a.example\n']] as const) {
    const raw = await dial(usher.port);
    raw.write(encodeProxyV2({ address: '192.0.2.9', port: 4242 }, { address: '198.51.100.1', port: 443 }));
    // The TLS handshake runs over the same connection, right after the header.
    const reply = await tlsGet(0, { socket: raw, servername, ca: certificate.cert });
    assert.deepEqual([reply.text, reply.authorized], [want, true]);
  }
});

test('tls-passthrough: no matching route, garbage or a slow ClientHello closes the connection', async (t) => {
  const certificate = generateCertificate(['a.example']);
  const a0 = await startTlsBackend(t, 'a0', certificate);
  const usher = await startUsher(
    t,
    listenerConfig('tls-passthrough', [{ match: { sni: '*.example' }, pool: 'a' }]),
    { a: poolConfig([a0.address]) },
    { preludeTimeoutMs: 300 },
  );
  assert.equal((await tlsGet(usher.port, { servername: 'a.example', ca: certificate.cert })).text, 'a0 a.example\n');
  for (const servername of ['', 'a.example.org']) {
    const socket = tlsConnect({ host: HOST, port: usher.port, servername, ca: certificate.cert });
    const [error] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
    assert.match(error.code ?? error.message, /ECONNRESET|socket disconnected/i, `servername ${JSON.stringify(servername)}`);
  }
  const garbage = await dial(usher.port);
  const garbageDone = collect(garbage);
  garbage.write('GET / HTTP/1.1\r\nHost: a.example\r\n\r\n');
  assert.equal((await garbageDone).data, '');
  const slow = await dial(usher.port);
  const started = performance.now();
  slow.write(Buffer.from([22, 3, 1]));
  await collect(slow);
  const waited = performance.now() - started;
  assert.ok(waited >= 250 && waited < 2000, `cut after ${waited.toFixed(0)} ms`);
  assert.equal(a0.handshakes(), 1);
  assert.deepEqual(inFlight(usher.pools['a']!), [0]);
});
