import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, isIP, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

/** A throwaway self-signed certificate; never written anywhere but a temp dir that is removed at once. */
export interface TestCertificate {
  readonly cert: string;
  readonly key: string;
}

/**
 * Generates a self-signed P-256 certificate for `names` (first is the CN, all
 * are SANs: `IP:` for IP addresses, which clients such as Go's and Node's check
 * against an IP host, `DNS:` for the others) with the system `openssl`, valid for one day.
 */
export function generateCertificate(names: readonly string[]): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'usher-cert-'));
  try {
    const keyFile = join(dir, 'key.pem');
    const certFile = join(dir, 'cert.pem');
    const config = join(dir, 'openssl.cnf');
    writeFileSync(
      config,
      [
        '[req]',
        'distinguished_name = dn',
        'x509_extensions = ext',
        'prompt = no',
        '[dn]',
        `CN = ${names[0]}`,
        '[ext]',
        `subjectAltName = ${names.map((name) => (isIP(name) === 0 ? `DNS:${name}` : `IP:${name}`)).join(',')}`,
        'basicConstraints = critical,CA:TRUE',
        '',
      ].join('\n'),
    );
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-keyout', keyFile, '-out', certFile, '-config', config],
      { stdio: 'pipe' },
    );
    return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The first bytes a real Node TLS client sends (its ClientHello records),
 * captured by a plain TCP server that then hangs up. Reads whole records until
 * the handshake message they carry is complete.
 */
export async function captureClientHello(options: ConnectionOptions): Promise<Buffer> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  try {
    const captured = new Promise<Buffer>((resolve, reject) => {
      server.once('connection', (socket) => {
        let buffer = Buffer.alloc(0);
        socket.on('data', (chunk: Buffer) => {
          buffer = Buffer.concat([buffer, chunk]);
          if (helloComplete(buffer)) {
            socket.destroy();
            resolve(buffer);
          }
        });
        socket.on('error', reject);
      });
    });
    const client = tlsConnect({ host: '127.0.0.1', port, ...options });
    client.on('error', () => {
      // Expected: the capturing server hangs up mid-handshake.
    });
    const bytes = await captured;
    client.destroy();
    return bytes;
  } finally {
    server.close();
  }
}

/** Whether `buffer` holds whole TLS records carrying a complete first handshake message. */
function helloComplete(buffer: Buffer): boolean {
  let at = 0;
  let handshake = Buffer.alloc(0);
  while (buffer.length - at >= 5) {
    const length = buffer.readUInt16BE(at + 3);
    if (buffer.length - at - 5 < length) return false;
    handshake = Buffer.concat([handshake, buffer.subarray(at + 5, at + 5 + length)]);
    at += 5 + length;
    if (handshake.length >= 4 && handshake.length >= 4 + handshake.readUIntBE(1, 3)) return at === buffer.length;
  }
  return false;
}
