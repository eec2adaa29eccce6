import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest, createServer as createHttpsServer, type Agent } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { parseConfig } from '../../src/config/index.ts';
import { createAccessLog } from '../../src/observe/access-log.ts';
import { Usher } from '../../src/runtime/usher.ts';
import { startOrigin } from '../helpers/origin.ts';
import { generateCertificate, type TestCertificate } from '../helpers/tls.ts';
import { configFromYaml, simpleYaml, startUsher } from '../helpers/usher.ts';

const run = promisify(execFile);

interface Files {
  readonly dir: string;
  write(name: string, text: string): string;
}

function tempFiles(): Files {
  const dir = mkdtempSync(join(tmpdir(), 'usher-https-'));
  return {
    dir,
    write(name, text) {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    },
  };
}

function httpsYaml(certs: readonly { cert: string; key: string }[], backend: string, extra = ''): string {
  return `listeners:
  - name: secure
    bind: 127.0.0.1:0
    protocol: https
    tls:
      certificates:
${certs.map((c) => `        - { cert: ${c.cert}, key: ${c.key} }\n`).join('')}      alpn: [http/1.1]
    routes:
      - pool: main
pools:
  main:
    backends:
      - address: ${backend}
${extra}`;
}

/** GET over TLS with SNI `servername`, trusting only `ca`; resolves status, body and the served certificate's SANs. */
function get(port: number, servername: string, ca: string, path = '/', agent: Agent | false = false): Promise<{ status: number; body: string; san: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, servername, ca, agent, headers: { host: servername } }, (res) => {
      const san = (res.socket as unknown as { getPeerCertificate(): { subjectaltname?: string } }).getPeerCertificate().subjectaltname ?? '';
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, san, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('https listener: SNI picks the certificate (exact, wildcard, default), X-Forwarded-Proto is https, curl agrees', async (t) => {
  const files = tempFiles();
  const a = generateCertificate(['a.example']);
  const b = generateCertificate(['*.b.example']);
  const certs = [a, b].map((c: TestCertificate, i) => ({ cert: files.write(`c${i}.pem`, c.cert), key: files.write(`k${i}.pem`, c.key) }));
  const origin = await startOrigin('plain');
  const usher = await Usher.start(configFromYaml(httpsYaml(certs, origin.address)), { accessLog: createAccessLog({ enabled: false }) });
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
    rmSync(files.dir, { recursive: true, force: true });
  });
  const port = usher.address('secure').port;

  const exact = await get(port, 'a.example', a.cert);
  assert.equal(exact.status, 200);
  assert.equal(exact.body, 'plain');
  assert.match(exact.san, /DNS:a\.example/);
  const wildcard = await get(port, 'x.b.example', b.cert);
  assert.match(wildcard.san, /DNS:\*\.b\.example/);
  // A name no certificate covers gets the first (default) certificate.
  const fallback = await get(port, 'a.example', a.cert).then(() => get(port, 'c.example', a.cert).catch((err: Error) => err));
  assert.ok(!(fallback instanceof Error) || /altname|Hostname/i.test(fallback.message), 'default certificate served for an unknown name');
  // Two labels below the wildcard are not covered by it: the default certificate comes back.
  const deep = await new Promise<string>((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'x.y.b.example', rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().subjectaltname ?? '');
      socket.destroy();
    });
    socket.on('error', reject);
  });
  assert.match(deep, /DNS:a\.example/);

  const seen = origin.seen.find((request) => request.headers['host'] === 'x.b.example');
  assert.ok(seen, 'the backend saw the client\'s Host');
  assert.equal(seen.headers['x-forwarded-proto'], 'https');

  const caFile = files.write('ca.pem', b.cert);
  const { stdout } = await run('curl', ['-sS', '--http1.1', '--cacert', caFile, '--resolve', `www.b.example:${port}:127.0.0.1`, `https://www.b.example:${port}/curl`]);
  assert.equal(stdout, 'plain');
});

test('https listener: replaced certificate files are served after a reload; open connections keep working', async (t) => {
  const files = tempFiles();
  const first = generateCertificate(['reload.example']);
  const second = generateCertificate(['reload.example']);
  const cert = files.write('cert.pem', first.cert);
  const key = files.write('key.pem', first.key);
  const origin = await startOrigin('o');
  const yaml = httpsYaml([{ cert, key }], origin.address);
  const usher = await Usher.start(configFromYaml(yaml), {
    accessLog: createAccessLog({ enabled: false }),
    configSource: () => parseConfig(yaml, join(files.dir, 'usher.yaml'), {}),
  });
  const { Agent: HttpsAgent } = await import('node:https');
  const keepAlive = new HttpsAgent({ keepAlive: true, maxSockets: 1 });
  t.after(async () => {
    keepAlive.destroy();
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
    rmSync(files.dir, { recursive: true, force: true });
  });
  const port = usher.address('secure').port;
  assert.equal((await get(port, 'reload.example', first.cert, '/1', keepAlive)).status, 200);
  const connectionsBefore = origin.connections;

  writeFileSync(cert, second.cert);
  writeFileSync(key, second.key);
  assert.deepEqual(await usher.reload(), { ok: true, warnings: [] });

  // The kept-alive connection negotiated with the old certificate still works.
  assert.equal((await get(port, 'reload.example', first.cert, '/2', keepAlive)).status, 200);
  // New connections get the new certificate (the old CA no longer verifies it).
  await assert.rejects(get(port, 'reload.example', first.cert), /self.signed|verify|certificate/i);
  assert.equal((await get(port, 'reload.example', second.cert)).status, 200);
  assert.ok(origin.connections >= connectionsBefore);

  // A broken certificate file fails the reload and the old certificates keep serving.
  writeFileSync(cert, 'not a certificate');
  const rejected = await usher.reload();
  assert.equal(rejected.ok, false);
  assert.equal((await get(port, 'reload.example', second.cert)).status, 200);
});

test('upstream TLS: verified with a CA file and servername, refused with the wrong CA, allowed with insecureSkipVerify', async (t) => {
  const files = tempFiles();
  const backendCert = generateCertificate(['backend.internal']);
  const other = generateCertificate(['other.internal']);
  const server = createHttpsServer({ cert: backendCert.cert, key: backendCert.key }, (req, res) => {
    req.resume();
    res.end(`tls backend saw ${req.headers['host']}`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const backend = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const goodCa = files.write('good.pem', backendCert.cert);
  const badCa = files.write('bad.pem', other.cert);
  const start = (tls: Record<string, unknown>): Promise<Usher> => startUsher(simpleYaml([{ address: backend, tls }]));
  const verified = await start({ servername: 'backend.internal', ca: goodCa });
  const wrongCa = await start({ servername: 'backend.internal', ca: badCa });
  const insecure = await start({ insecureSkipVerify: true });
  t.after(async () => {
    await Promise.all([verified, wrongCa, insecure].map((u) => u.stop({ timeoutMs: 500 })));
    server.close();
    server.closeAllConnections();
    rmSync(files.dir, { recursive: true, force: true });
  });
  const fetchText = async (usher: Usher): Promise<{ status: number; text: string; reason: string | null }> => {
    const res = await fetch(`${usher.url('web')}/x`);
    return { status: res.status, text: (await res.text()).replace(/127\.0\.0\.1:\d+/, 'HOST'), reason: res.headers.get('x-usher-error') };
  };
  assert.deepEqual(await fetchText(verified), { status: 200, text: 'tls backend saw HOST', reason: null });
  const refused = await fetchText(wrongCa);
  assert.equal(refused.status, 502);
  assert.equal(refused.reason, 'connect_failed');
  assert.equal((await fetchText(insecure)).status, 200);
});

test('https listener with default ALPN: curl --http2 speaks h2 to usher, the backend gets HTTP/1.1', async (t) => {
  const files = tempFiles();
  const cert = generateCertificate(['h2.example']);
  const certFile = files.write('cert.pem', cert.cert);
  const keyFile = files.write('key.pem', cert.key);
  const origin = await startOrigin('h1-backend');
  const yaml = httpsYaml([{ cert: certFile, key: keyFile }], origin.address).replace('      alpn: [http/1.1]\n', '');
  const usher = await Usher.start(configFromYaml(yaml), { accessLog: createAccessLog({ enabled: false }) });
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
    rmSync(files.dir, { recursive: true, force: true });
  });
  const port = usher.address('secure').port;
  const { stdout } = await run('curl', [
    '-sS', '--http2', '--cacert', certFile, '--resolve', `h2.example:${port}:127.0.0.1`,
    '-w', ' %{http_version}', `https://h2.example:${port}/over-h2`,
  ]);
  assert.equal(stdout, 'h1-backend 2');
  assert.equal(origin.seen.at(-1)!.url, '/over-h2');
  assert.equal(origin.seen.at(-1)!.headers['x-forwarded-proto'], 'https');
});

test('upstream TLS timeouts: the connect timeout covers the handshake (until secureConnect), then the response timeout runs', async (t) => {
  const backendCert = generateCertificate(['backend.internal']);
  // Completes the TLS handshake, then never answers.
  const silent = createHttpsServer({ cert: backendCert.cert, key: backendCert.key }, () => {});
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  // Accepts TCP and never speaks TLS: the handshake never ends.
  const { createServer: createTcpServer } = await import('node:net');
  const tcpSockets = new Set<import('node:net').Socket>();
  const stalled = createTcpServer((socket) => {
    tcpSockets.add(socket);
    socket.on('error', () => {});
  });
  stalled.listen(0, '127.0.0.1');
  await once(stalled, 'listening');
  const start = (port: number, timeouts: Record<string, string>): Promise<Usher> =>
    startUsher(simpleYaml([{ address: `127.0.0.1:${port}`, tls: { insecureSkipVerify: true } }], { retry: { attempts: 1 }, timeouts }));
  const responseTimeout = await start((silent.address() as AddressInfo).port, { connect: '5s', response: '300ms' });
  const connectTimeout = await start((stalled.address() as AddressInfo).port, { connect: '300ms', response: '5s' });
  t.after(async () => {
    await Promise.all([responseTimeout, connectTimeout].map((u) => u.stop({ timeoutMs: 500 })));
    for (const socket of tcpSockets) socket.destroy();
    silent.closeAllConnections();
    silent.close();
    stalled.close();
  });
  const timed = async (usher: Usher): Promise<{ status: number; reason: string | null; ms: number }> => {
    const started = performance.now();
    const res = await fetch(`${usher.url('web')}/x`);
    await res.text();
    return { status: res.status, reason: res.headers.get('x-usher-error'), ms: performance.now() - started };
  };
  const r = await timed(responseTimeout);
  t.diagnostic(`response timeout after ${r.ms.toFixed(0)} ms (response: 300ms)`);
  assert.equal(r.status, 504);
  assert.equal(r.reason, 'response_timeout');
  assert.ok(r.ms >= 250 && r.ms < 3000, `answered after ${r.ms.toFixed(0)} ms`);
  const c = await timed(connectTimeout);
  t.diagnostic(`connect timeout after ${c.ms.toFixed(0)} ms (connect: 300ms, handshake never done)`);
  assert.equal(c.status, 504);
  assert.equal(c.reason, 'connect_timeout');
  assert.ok(c.ms >= 250 && c.ms < 3000, `answered after ${c.ms.toFixed(0)} ms`);
});

test('HTTP/1.1 and HTTP/2 clients share one kept-alive backend connection (one HTTP/1.1 upstream client for both fronts); an h2 body of unknown length goes up chunked', async (t) => {
  const files = tempFiles();
  const cert = generateCertificate(['both.example']);
  const certFile = files.write('cert.pem', cert.cert);
  const keyFile = files.write('key.pem', cert.key);
  const bodies: string[] = [];
  const origin = await startOrigin('shared', (req, res) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      bodies.push(`${req.headers['transfer-encoding'] ?? '-'}:${body}`);
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-sum' });
      res.write(`${req.httpVersion} ${req.method} `);
      res.addTrailers({ 'x-sum': String(body.length) });
      res.end('done');
    });
  });
  const yaml = httpsYaml([{ cert: certFile, key: keyFile }], origin.address).replace('      alpn: [http/1.1]\n', '');
  const usher = await Usher.start(configFromYaml(yaml), { accessLog: createAccessLog({ enabled: false }) });
  const { connect: h2connect } = await import('node:http2');
  const session = h2connect(`https://127.0.0.1:${usher.address('secure').port}`, { ca: cert.cert, servername: 'both.example' });
  t.after(async () => {
    session.destroy();
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
    rmSync(files.dir, { recursive: true, force: true });
  });
  const port = usher.address('secure').port;

  const h1 = await get(port, 'both.example', cert.cert, '/one');
  assert.equal(h1.status, 200);
  assert.equal(h1.body, '1.1 GET done');

  // An HTTP/2 POST without content-length: usher must frame it as chunks for the HTTP/1.1 backend.
  const h2 = await new Promise<{ status: number; body: string; trailers: Record<string, unknown> }>((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': '/two', ':authority': 'both.example' });
    let status = 0;
    let body = '';
    let trailers: Record<string, unknown> = {};
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('trailers', (headers) => (trailers = headers));
    stream.setEncoding('latin1');
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('end', () => resolve({ status, body, trailers }));
    stream.on('error', reject);
    stream.write('abc');
    setImmediate(() => stream.end('defg'));
  });
  assert.equal(h2.status, 200);
  assert.equal(h2.body, '1.1 POST done');
  assert.equal(h2.trailers['x-sum'], '7', 'the chunked response trailers reach the HTTP/2 client');
  assert.deepEqual(bodies, ['-:', 'chunked:abcdefg']);

  const again = await get(port, 'both.example', cert.cert, '/three');
  assert.equal(again.body, '1.1 GET done');
  assert.equal(origin.connections, 1, 'all three requests, from both fronts, took the same kept-alive backend connection');
});

test('https listener on the main thread: sessions resume, and a ticket-key rotation ends resumption of older tickets', async (t) => {
  const files = tempFiles();
  const cert = generateCertificate(['rotate.example']);
  const certs = [{ cert: files.write('c.pem', cert.cert), key: files.write('k.pem', cert.key) }];
  const origin = await startOrigin('plain');
  const usher = await Usher.start(configFromYaml(httpsYaml(certs, origin.address)), { accessLog: createAccessLog({ enabled: false }) });
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
    rmSync(files.dir, { recursive: true, force: true });
  });
  const port = usher.address('secure').port;
  const reconnect = async (session?: Buffer): Promise<{ resumed: boolean; ticket: Buffer | undefined }> => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'rotate.example', ca: cert.cert, ...(session ? { session } : {}) });
    let ticket: Buffer | undefined;
    socket.on('session', (given: Buffer) => (ticket = given));
    await once(socket, 'secureConnect');
    const resumed = socket.isSessionReused();
    socket.end('GET / HTTP/1.1\r\nhost: rotate.example\r\nconnection: close\r\n\r\n');
    socket.resume();
    await once(socket, 'close');
    return { resumed, ticket };
  };
  const first = await reconnect();
  assert.ok(first.ticket !== undefined);
  assert.equal((await reconnect(first.ticket)).resumed, true, 'the ticket resumes before the rotation');
  await usher.rotateTicketKeys();
  assert.equal((await reconnect(first.ticket)).resumed, false, 'after the rotation the old ticket is refused');
  const fresh = await reconnect();
  assert.equal((await reconnect(fresh.ticket)).resumed, true, 'a ticket made under the new keys resumes');
});
