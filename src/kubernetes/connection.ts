/**
 * Where the API server is and how usher proves who it is, from the top-level
 * `kubernetes` section: in-cluster (the pod's service account) or a subset of
 * the kubeconfig format. Loaded at start and at each reload that changes the
 * section; anything missing or unsupported is a {@link KubernetesConfigError}
 * saying what to fix, before anything starts.
 *
 * Credentials that rotate (the projected service-account token, a kubeconfig
 * `tokenFile`) are kept as a file path and read again for every request (see
 * client.ts): the kubelet replaces the token file well before it expires.
 */
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { KubernetesConfig } from '../config/types.ts';
import { KubernetesConfigError } from './errors.ts';

/** Where Kubernetes mounts a pod's service account. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export type KubeCredentials =
  | { readonly kind: 'token'; readonly token: string }
  /** Read again for every request: a rotated token is used at once. */
  | { readonly kind: 'tokenFile'; readonly path: string }
  | { readonly kind: 'clientCertificate'; readonly cert: Buffer; readonly key: Buffer }
  | { readonly kind: 'none' };

export interface KubeConnection {
  /** `https://host:port` (a path prefix, as behind a proxy, is kept). */
  readonly server: URL;
  /** PEM bundle to verify the server with; absent: the system's CAs. */
  readonly ca?: Buffer | undefined;
  readonly insecureSkipTlsVerify: boolean;
  /** SNI and name to check on the server's certificate, when not the server's host (kubeconfig `tls-server-name`). */
  readonly tlsServerName?: string | undefined;
  readonly credentials: KubeCredentials;
  /** The namespace pools without their own use: the service account's, or the kubeconfig context's, else `default`. */
  readonly namespace: string;
  /** For messages: `in-cluster` or `kubeconfig /path (context x)`. */
  readonly source: string;
}

/** What in-cluster loading reads; tests inject both. */
export interface ConnectionEnvironment {
  /** Default `process.env` (`KUBERNETES_SERVICE_HOST`, `KUBERNETES_SERVICE_PORT`). */
  readonly env?: NodeJS.ProcessEnv;
  /** Default {@link SERVICE_ACCOUNT_DIR}: `token`, `ca.crt`, `namespace`. */
  readonly serviceAccountDir?: string;
}

/** Loads the connection `config` describes; throws a {@link KubernetesConfigError} naming what to fix. */
export function loadConnection(config: KubernetesConfig | undefined, environment: ConnectionEnvironment = {}): KubeConnection {
  const kubeconfig = config?.kubeconfig ?? 'in-cluster';
  if (kubeconfig === 'in-cluster') return inCluster(environment);
  return fromKubeconfig(kubeconfig, config?.context);
}

function inCluster(environment: ConnectionEnvironment): KubeConnection {
  const env = environment.env ?? process.env;
  const dir = environment.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'];
  if (host === undefined || host === '' || port === undefined || port === '') {
    throw new KubernetesConfigError('kubernetes: in-cluster, but KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: usher is not running in a Kubernetes pod. Outside a cluster, set kubernetes.kubeconfig to a kubeconfig file');
  }
  const tokenPath = `${dir}/token`;
  // Read once now so a missing mount fails the start, not the first watch; used from the file afterwards.
  const token = readText(tokenPath, 'the service-account token', 'is automountServiceAccountToken false, or is the pod running without a service account?').trim();
  if (token === '') throw new KubernetesConfigError(`kubernetes: the service-account token ${tokenPath} is empty`);
  const ca = readBytes(`${dir}/ca.crt`, 'the cluster CA bundle', 'it is mounted with the token');
  let namespace = 'default';
  try {
    namespace = readFileSync(`${dir}/namespace`, 'utf8').trim() || 'default';
  } catch {
    // Optional: pools name their namespace, or get `default`.
  }
  const hostPart = isIPv6(host) ? `[${host}]` : host;
  return {
    server: new URL(`https://${hostPart}:${port}`),
    ca,
    insecureSkipTlsVerify: false,
    credentials: { kind: 'tokenFile', path: tokenPath },
    namespace,
    source: 'in-cluster',
  };
}

interface Named<T> {
  readonly name?: unknown;
  readonly cluster?: T;
  readonly user?: T;
  readonly context?: T;
}

function fromKubeconfig(path: string, contextName: string | undefined): KubeConnection {
  const text = readText(path, 'the kubeconfig', 'set kubernetes.kubeconfig to a readable file, or in-cluster');
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new KubernetesConfigError(`kubernetes: the kubeconfig ${path} is not valid YAML: ${(error as Error).message}`);
  }
  const root = record(document);
  if (root === undefined) throw new KubernetesConfigError(`kubernetes: the kubeconfig ${path} is not a mapping`);
  const base = dirname(path);
  const wanted = contextName ?? stringOf(root['current-context']);
  const where = (what: string): string => `kubernetes: the kubeconfig ${path}${wanted === undefined ? '' : ` (context "${wanted}")`}: ${what}`;
  if (wanted === undefined || wanted === '') throw new KubernetesConfigError(where('has no current-context; set kubernetes.context'));
  const contexts = listOf<Named<Record<string, unknown>>>(root['contexts']);
  const context = contexts.find((c) => c.name === wanted)?.context;
  if (context === undefined) {
    const names = contexts.map((c) => String(c.name));
    throw new KubernetesConfigError(where(`no context "${wanted}"${names.length === 0 ? '' : ` (it has: ${names.join(', ')})`}`));
  }
  const clusterName = stringOf(context['cluster']);
  const cluster = listOf<Named<Record<string, unknown>>>(root['clusters']).find((c) => c.name === clusterName)?.cluster;
  if (cluster === undefined) throw new KubernetesConfigError(where(`the context names cluster "${clusterName ?? ''}", which the file does not define`));
  const userName = stringOf(context['user']);
  const user = userName === undefined ? {} : listOf<Named<Record<string, unknown>>>(root['users']).find((u) => u.name === userName)?.user;
  if (user === undefined) throw new KubernetesConfigError(where(`the context names user "${userName}", which the file does not define`));

  const serverText = stringOf(cluster['server']);
  if (serverText === undefined) throw new KubernetesConfigError(where(`cluster "${clusterName}" has no server`));
  let server: URL;
  try {
    server = new URL(serverText);
  } catch {
    throw new KubernetesConfigError(where(`cluster "${clusterName}" has server "${serverText}", which is not a URL (expected https://host:port)`));
  }
  if (server.protocol !== 'https:' && server.protocol !== 'http:') throw new KubernetesConfigError(where(`server "${serverText}" must be an https:// URL`));
  const file = (key: string): string => {
    const value = stringOf(cluster[key] ?? user[key])!;
    return isAbsolute(value) ? value : resolve(base, value);
  };
  const data = (value: unknown, key: string): Buffer => {
    if (typeof value !== 'string') throw new KubernetesConfigError(where(`${key} must be base64 text`));
    return Buffer.from(value, 'base64');
  };
  let ca: Buffer | undefined;
  if (cluster['certificate-authority-data'] !== undefined) ca = data(cluster['certificate-authority-data'], 'certificate-authority-data');
  else if (cluster['certificate-authority'] !== undefined) ca = readBytes(file('certificate-authority'), 'the certificate-authority file', `named by cluster "${clusterName}"`);

  for (const unsupported of ['exec', 'auth-provider'] as const) {
    if (user[unsupported] !== undefined) {
      throw new KubernetesConfigError(where(`user "${userName}" authenticates with an ${unsupported} plugin, which usher does not run; give it a token, tokenFile or client certificate (e.g. a service account's token)`));
    }
  }
  if (user['username'] !== undefined || user['password'] !== undefined) throw new KubernetesConfigError(where(`user "${userName}" uses basic authentication, which Kubernetes removed; use a token or client certificate`));
  let credentials: KubeCredentials = { kind: 'none' };
  if (user['token'] !== undefined) {
    const token = stringOf(user['token']);
    if (token === undefined || token === '') throw new KubernetesConfigError(where(`user "${userName}" has an empty token`));
    credentials = { kind: 'token', token };
  } else if (user['tokenFile'] !== undefined) {
    const tokenPath = file('tokenFile');
    readText(tokenPath, 'the tokenFile', `named by user "${userName}"`);
    credentials = { kind: 'tokenFile', path: tokenPath };
  } else if (user['client-certificate'] !== undefined || user['client-certificate-data'] !== undefined) {
    const cert = user['client-certificate-data'] !== undefined ? data(user['client-certificate-data'], 'client-certificate-data') : readBytes(file('client-certificate'), 'the client-certificate file', `named by user "${userName}"`);
    if (user['client-key'] === undefined && user['client-key-data'] === undefined) throw new KubernetesConfigError(where(`user "${userName}" has a client certificate but no client-key(-data)`));
    const key = user['client-key-data'] !== undefined ? data(user['client-key-data'], 'client-key-data') : readBytes(file('client-key'), 'the client-key file', `named by user "${userName}"`);
    credentials = { kind: 'clientCertificate', cert, key };
  }
  // A bearer token over plain http would go over the wire in the clear: only to a loopback address (a local proxy).
  if (server.protocol === 'http:' && credentials.kind !== 'none' && !isLoopbackHost(server.hostname)) {
    throw new KubernetesConfigError(where(`server "${serverText}" is plain http and user "${userName}" has credentials: use https://, or http only to a loopback address (kubectl proxy)`));
  }
  return {
    server,
    ca,
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
    tlsServerName: stringOf(cluster['tls-server-name']),
    credentials,
    namespace: stringOf(context['namespace']) ?? 'default',
    source: `kubeconfig ${path} (context "${wanted}")`,
  };
}

function readText(path: string, what: string, hint: string): string {
  return readBytes(path, what, hint).toString('utf8');
}

function readBytes(path: string, what: string, hint: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (EACCES)' : (error as Error).message;
    throw new KubernetesConfigError(`kubernetes: ${what} ${path} ${why}; ${hint}`);
  }
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function listOf<T>(value: unknown): T[] {
  return Array.isArray(value) ? (value.filter((v) => record(v) !== undefined) as T[]) : [];
}

function stringOf(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** 127.0.0.0/8, ::1 or localhost. */
function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
