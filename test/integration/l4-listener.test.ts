import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { parseConfig } from '../../src/config/index.ts';
import { createAccessLog } from '../../src/observe/access-log.ts';
import { Usher } from '../../src/runtime/usher.ts';
import { until } from '../helpers/load.ts';
import { generateCertificate } from '../helpers/tls.ts';
import { configFromYaml } from '../helpers/usher.ts';

/** A TCP backend that records the first bytes of each connection and then echoes with its name. */
async function echoBackend(name: string): Promise<{ server: Server; address: string; prefixes: Buffer[] }> {
  const prefixes: Buffer[] = [];
  const server = createServer((socket: Socket) => {
    let first = true;
    socket.on('data', (chunk: Buffer) => {
      if (first) {
        prefixes.push(chunk);
        first = false;
      }
      socket.write(`${name}:${chunk.length}`);
    });
    socket.on('error', () => socket.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  server.unref();
  return { server, address: `127.0.0.1:${(server.address() as AddressInfo).port}`, prefixes };
}

async function roundTrip(port: number, payload: string): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  socket.write(payload);
  const [reply] = (await once(socket, 'data')) as [Buffer];
  socket.destroy();
  return reply.toString();
}

test('tcp listener from the config: connections are balanced round-robin, PROXY v2 announces the client, reload switches backends', async (t) => {
  const a = await echoBackend('a');
  const b = await echoBackend('b');
  const yaml = (backends: string[], extra = ''): string => `listeners:
  - name: db
    bind: 127.0.0.1:0
    protocol: tcp
    routes:
      - pool: db
pools:
  db:
    algorithm: round-robin
${extra}    backends:
${backends.map((address) => `      - address: ${address}\n`).join('')}`;
  let source = yaml([a.address, b.address], '    proxyProtocol: v2\n');
  const usher = await Usher.start(configFromYaml(source), {
    accessLog: createAccessLog({ enabled: false }),
    configSource: () => parseConfig(source, 'test.yaml', {}),
  });
  t.after(async () => {
    await usher.stop({ timeoutMs: 200 });
    a.server.close();
    b.server.close();
  });
  const port = usher.address('db').port;
  const replies = [await roundTrip(port, 'hello'), await roundTrip(port, 'hello'), await roundTrip(port, 'hello')];
  assert.deepEqual(replies.map((r) => r.split(':')[0]), ['a', 'b', 'a']);
  // The backend's first bytes: the 12-byte PROXY v2 signature, then the client's payload.
  const signature = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
  const first = a.prefixes[0]!;
  assert.deepEqual(first.subarray(0, 12), signature);
  assert.equal(first[12], 0x21, 'version 2, PROXY command');
  assert.equal(first[13], 0x11, 'TCP over IPv4');
  assert.deepEqual([...first.subarray(16, 20)], [127, 0, 0, 1], 'source address is the client');

  source = yaml([b.address]);
  assert.equal((await usher.reload()).ok, true);
  assert.deepEqual([await roundTrip(port, 'x'), await roundTrip(port, 'y')].map((r) => r.split(':')[0]), ['b', 'b']);
  assert.ok(b.prefixes.at(-1)!.equals(Buffer.from('y')), 'no PROXY header after the reload removed it');
});

test('tls-passthrough listener routes by SNI without terminating TLS', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'usher-sni-'));
  const certA = generateCertificate(['a.example']);
  const certB = generateCertificate(['b.example']);
  const servers = await Promise.all(
    [certA, certB].map(async (cert, i) => {
      const server = createTlsServer({ cert: cert.cert, key: cert.key }, (socket) => {
        socket.end(`tls-backend-${i === 0 ? 'a' : 'b'}`);
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      return server;
    }),
  );
  const addressOf = (server: Server): string => `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const usher = await Usher.start(
    configFromYaml(`listeners:
  - name: edge
    bind: 127.0.0.1:0
    protocol: tls-passthrough
    routes:
      - match: { sni: a.example }
        pool: a
      - pool: b
pools:
  a:
    backends:
      - address: ${addressOf(servers[0]!)}
  b:
    backends:
      - address: ${addressOf(servers[1]!)}
`),
    { accessLog: createAccessLog({ enabled: false }) },
  );
  t.after(async () => {
    await usher.stop({ timeoutMs: 200 });
    for (const server of servers) server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const port = usher.address('edge').port;
  const fetchOver = (servername: string, ca: string): Promise<string> =>
    new Promise((resolve, reject) => {
      let body = '';
      const socket = tlsConnect({ host: '127.0.0.1', port, servername, ca }, () => undefined);
      socket.on('data', (chunk: Buffer) => (body += chunk.toString()));
      socket.on('end', () => resolve(body));
      socket.on('error', reject);
    });
  // End-to-end TLS: each client verifies the backend's own certificate, which usher never holds.
  assert.equal(await fetchOver('a.example', certA.cert), 'tls-backend-a');
  assert.equal(await fetchOver('b.example', certB.cert), 'tls-backend-b');
  const pools = usher.snapshot.pools;
  await until(() => pools.get('a')!.control.backends[0]!.inFlight === 0 && pools.get('b')!.control.backends[0]!.inFlight === 0, 'tunnels to end');
  assert.equal(pools.get('a')!.control.backends[0]!.counters.requests, 1);
  assert.equal(pools.get('b')!.control.backends[0]!.counters.requests, 1);
});
