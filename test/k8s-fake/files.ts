/**
 * Files a client needs to reach the fake: a kubeconfig (for kubectl and for
 * usher's `kubernetes.kubeconfig`), and an in-cluster service-account
 * directory (token, ca.crt, namespace) with the environment that goes with it.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FakeApiServer } from './server.ts';

/** A temporary directory, removed by the returned function. */
export function tempDir(prefix = 'usher-k8s-'): { readonly path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Writes a kubeconfig for the fake into `dir`; the CA inline (`certificate-authority-data`) unless `caFile` says otherwise. */
export function writeKubeconfig(fake: FakeApiServer, dir: string, options: { token?: string; namespace?: string; caFile?: boolean; context?: string } = {}): string {
  const context = options.context ?? 'fake';
  let ca: string;
  if (options.caFile === true) {
    writeFileSync(join(dir, 'ca.crt'), fake.ca);
    ca = `certificate-authority: ca.crt`;
  } else {
    ca = `certificate-authority-data: ${Buffer.from(fake.ca).toString('base64')}`;
  }
  const text = `apiVersion: v1
kind: Config
clusters:
  - name: fake
    cluster:
      server: ${fake.url}
      ${ca}
users:
  - name: usher
    user:
      token: ${options.token ?? fake.token}
contexts:
  - name: ${context}
    context:
      cluster: fake
      user: usher
      namespace: ${options.namespace ?? 'default'}
current-context: ${context}
`;
  const path = join(dir, 'kubeconfig');
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

/** What a pod sees: the service-account files and the two environment variables. */
export interface InCluster {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  /** Replaces the token file as the kubelet does (a new file renamed over the old one). */
  rotateToken(token: string): void;
}

export function writeServiceAccount(fake: FakeApiServer, dir: string, options: { token?: string; namespace?: string } = {}): InCluster {
  writeFileSync(join(dir, 'token'), options.token ?? fake.token);
  writeFileSync(join(dir, 'ca.crt'), fake.ca);
  writeFileSync(join(dir, 'namespace'), options.namespace ?? 'default');
  return {
    dir,
    env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(fake.port) },
    rotateToken(token: string) {
      const next = join(dir, `.token-${process.hrtime.bigint()}`);
      writeFileSync(next, token);
      renameSync(next, join(dir, 'token'));
    },
  };
}
