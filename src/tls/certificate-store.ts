import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { TlsListenerConfig } from '../config/types.ts';

/** One loaded certificate: the names it serves and its context. */
export interface LoadedCertificate {
  readonly certFile: string;
  /** DNS names from subjectAltName (or the CN when there is none), lowercased; may start with `*.`. */
  readonly names: readonly string[];
  readonly validTo: string;
  readonly context: SecureContext;
  /** The options the context was built from (a TLS server's default context needs them). */
  readonly options: SecureContextOptions;
}

/**
 * The certificates of one https listener, indexed by server name: exact names
 * first, then a wildcard covering exactly one label (`*.example.com` serves
 * `a.example.com`, not `example.com` or `a.b.example.com`, as RFC 6125 §6.4.3),
 * then the first certificate as the default.
 *
 * Built from the files at start and on every reload, so replaced certificate
 * files are picked up by a reload; connections already established keep the
 * context they negotiated.
 */
export class CertificateStore {
  readonly certificates: readonly LoadedCertificate[];
  readonly #exact = new Map<string, SecureContext>();
  readonly #wildcard = new Map<string, SecureContext>();
  readonly #default: SecureContext;
  /** Options of the default certificate: what a client without SNI gets. */
  readonly defaultOptions: SecureContextOptions;

  constructor(config: TlsListenerConfig) {
    this.certificates = config.certificates.map((entry) => loadCertificate(entry.certFile, entry.keyFile, config.minVersion, entry.pem));
    for (const certificate of this.certificates) {
      for (const name of certificate.names) {
        const map = name.startsWith('*.') ? this.#wildcard : this.#exact;
        const key = name.startsWith('*.') ? name.slice(2) : name;
        // The first certificate listed for a name wins, as the file order says.
        if (!map.has(key)) map.set(key, certificate.context);
      }
    }
    this.#default = this.certificates[0]!.context;
    this.defaultOptions = this.certificates[0]!.options;
  }

  /** The context for a ClientHello's server name (undefined: no SNI sent). */
  contextFor(serverName: string | undefined): SecureContext {
    if (serverName === undefined || serverName === '') return this.#default;
    const name = serverName.toLowerCase();
    const exact = this.#exact.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    if (dot !== -1) {
      const wildcard = this.#wildcard.get(name.slice(dot + 1));
      if (wildcard !== undefined) return wildcard;
    }
    return this.#default;
  }
}

/** Reads and checks a certificate and its key; errors name the file and what is wrong. */
export function loadCertificate(certFile: string, keyFile: string, minVersion: 'TLSv1.2' | 'TLSv1.3', pem?: { readonly cert: string; readonly key: string }): LoadedCertificate {
  let cert: Buffer = Buffer.from(pem?.cert ?? '');
  let key: Buffer = Buffer.from(pem?.key ?? '');
  if (pem === undefined) try {
    cert = readFileSync(certFile);
  } catch (err) {
    throw new Error(`cannot read certificate ${certFile}: ${(err as Error).message}`, { cause: err });
  }
  if (pem === undefined) try {
    key = readFileSync(keyFile);
  } catch (err) {
    throw new Error(`cannot read key ${keyFile}: ${(err as Error).message}`, { cause: err });
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`${certFile} is not a PEM certificate: ${(err as Error).message}`, { cause: err });
  }
  let context: SecureContext;
  const options: SecureContextOptions = { cert, key, minVersion };
  try {
    context = createSecureContext(options);
  } catch (err) {
    throw new Error(`${certFile} with ${keyFile}: ${(err as Error).message} (does the key belong to the certificate?)`, {
      cause: err,
    });
  }
  return { certFile, names: namesOf(x509), validTo: x509.validTo, context, options };
}

function namesOf(x509: X509Certificate): string[] {
  const san = x509.subjectAltName;
  if (san !== undefined && san !== '') {
    const names = san
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry.startsWith('DNS:'))
      .map((entry) => entry.slice(4).toLowerCase());
    if (names.length > 0) return names;
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject)?.[1];
  return cn === undefined ? [] : [cn.toLowerCase()];
}
