/**
 * An usher whose pools come from the fake API server: the fake, an in-cluster
 * service-account directory pointing at it, real pods on loopback, and a
 * captured log. Shared by the Kubernetes discovery tests.
 */
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import { pino, type Logger } from 'pino';
import type { ReflectorTiming } from '../../src/kubernetes/reflector.ts';
import type { PoolControl } from '../../src/pool/pool-control.ts';
import { Usher } from '../../src/runtime/usher.ts';
import { createAccessLog } from '../../src/observe/access-log.ts';
import { configFromYaml } from '../helpers/usher.ts';
import { tempDir, writeServiceAccount, type InCluster } from './files.ts';
import { FakeApiServer, type FakeApiServerOptions, type RbacRule } from './server.ts';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

/** Fast enough for tests: retries after 50 ms, at most 400 ms apart. */
export const FAST: ReflectorTiming & { minIntervalMs?: number } = { initialBackoffMs: 50, maxBackoffMs: 400, watchTimeoutSeconds: () => 60, stallGraceMs: 2000 };

/** The rules of the ClusterRole usher ships (deploy/kubernetes/rbac.yaml), for {@link FakeApiServer.enforceRules}. */
export function shippedRbacRules(): RbacRule[] {
  const text = readFileSync(fileURLToPath(new URL('../../deploy/kubernetes/rbac.yaml', import.meta.url)), 'utf8');
  const role = parseAllDocuments(text).map((d) => d.toJS() as { kind?: string; rules?: RbacRule[] }).find((d) => d?.kind === 'ClusterRole');
  if (role?.rules === undefined) throw new Error('deploy/kubernetes/rbac.yaml has no ClusterRole with rules');
  return role.rules;
}

export interface CapturedLog {
  readonly logger: Logger;
  readonly lines: Record<string, unknown>[];
}

export function captureLog(): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

export interface Cluster {
  readonly fake: FakeApiServer;
  readonly inCluster: InCluster;
  readonly usher: Usher;
  readonly log: CapturedLog;
  /** The control plane of pool `name` (default `api`). */
  pool(name?: string): PoolControl;
}

export interface ClusterOptions {
  readonly workers?: number;
  /** Extra YAML keys of the `api` pool (indented 4). */
  readonly pool?: string;
  /** Extra top-level YAML. */
  readonly top?: string;
  readonly fake?: FakeApiServerOptions;
  /** Objects in the fake before usher starts. */
  readonly before?: (fake: FakeApiServer) => void;
  readonly timing?: ReflectorTiming & { minIntervalMs?: number };
  /** The namespace of the service account (pools without one use it). */
  readonly namespace?: string;
}

/** The fake, then usher with pool `api` from Service `prod/api` port `http`; all stopped after the test. */
export async function startCluster(t: TestContext, options: ClusterOptions = {}): Promise<Cluster> {
  const fake = await FakeApiServer.start({ bookmarkIntervalMs: 60_000, ...options.fake });
  // Only what the shipped ClusterRole grants: a call usher makes beyond it fails the test with 403.
  fake.enforceRules(shippedRbacRules());
  const dir = tempDir();
  const inCluster = writeServiceAccount(fake, dir.path, { namespace: options.namespace ?? 'prod' });
  options.before?.(fake);
  const log = captureLog();
  const yaml = `runtime: { workers: ${options.workers ?? 0} }
accessLog: { enabled: false }
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: api
pools:
  api:
    discovery:
      kubernetes: { namespace: prod, service: api, port: http }
${options.pool ?? ''}
kubernetes: { kubeconfig: in-cluster }
${options.top ?? ''}
`;
  let usher: Usher;
  try {
    usher = await Usher.start(configFromYaml(yaml), {
      logger: log.logger,
      accessLog: createAccessLog({ enabled: false }),
      kubernetes: { environment: { serviceAccountDir: inCluster.dir, env: inCluster.env }, timing: { ...FAST, ...options.timing } },
    });
  } catch (error) {
    await fake.close();
    dir.remove();
    throw error;
  }
  t.after(async () => {
    await usher.stop({ timeoutMs: 1000 });
    await fake.close();
    dir.remove();
  });
  return {
    fake,
    inCluster,
    usher,
    log,
    pool: (name = 'api') => {
      const pool = usher.snapshot.pools.get(name);
      if (pool === undefined) throw new Error(`no pool ${name}`);
      return pool.control;
    },
  };
}

/** `ip:port` of every discovered member, `+draining` for terminating ones, sorted. */
export function members(control: PoolControl): string[] {
  return control.discovered.map((b) => `${b.key}${b.terminating ? '+draining' : ''}`).sort();
}
