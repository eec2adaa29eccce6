import { parseConfig } from '../../src/config/index.ts';
import type { UsherConfig } from '../../src/config/types.ts';
import { createAccessLog } from '../../src/observe/access-log.ts';
import { Usher, type UsherOptions } from '../../src/runtime/usher.ts';

/** Parses YAML through the real config loader; fails the test with every problem when invalid. */
export function configFromYaml(yaml: string, env: NodeJS.ProcessEnv = {}): UsherConfig {
  const result = parseConfig(yaml, 'test.yaml', env);
  if (!result.ok) throw new Error(`invalid test config:\n${result.errors.map((e) => `${e.path}: ${e.message}`).join('\n')}`);
  return result.config;
}

/** Starts an in-process usher from YAML, access log off unless the YAML enables a file. */
export async function startUsher(yaml: string, options: UsherOptions = {}): Promise<Usher> {
  const config = configFromYaml(yaml);
  const accessLog = options.accessLog ?? (config.accessLog.path ? undefined : createAccessLog({ enabled: false }));
  return Usher.start(config, { ...options, ...(accessLog ? { accessLog } : {}) });
}

/** A backend of {@link simpleYaml}: its address, or its address with more keys (rendered as JSON, which YAML reads). */
export type SimpleBackend = string | ({ readonly address: string } & Record<string, unknown>);

function backendLine(backend: SimpleBackend): string {
  if (typeof backend === 'string') return `      - address: ${JSON.stringify(backend)}\n`;
  const { address, ...rest } = backend;
  const extra = Object.entries(rest).map(([key, value]) => `        ${key}: ${JSON.stringify(value)}\n`);
  return `      - address: ${JSON.stringify(address)}\n${extra.join('')}`;
}

/** A one-listener, one-pool YAML over the given backends; `pool` adds keys to the pool. */
export function simpleYaml(backends: readonly SimpleBackend[], pool: Record<string, unknown> = {}): string {
  const extra = Object.entries(pool)
    .map(([key, value]) => `    ${key}: ${JSON.stringify(value)}\n`)
    .join('');
  return `listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
pools:
  main:
${extra}    backends:
${backends.map(backendLine).join('')}`;
}
