import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/**
 * The embedded default: three demo backends as real child processes (so one
 * can be killed to watch failover) and the config that balances over them.
 */
export const demoBackendNames = ['alpha', 'bravo', 'charlie'] as const;

/** The demo's config, in the same YAML a user writes; ports come from the environment. */
export const demoConfigYaml = `# usher demo: one listener, one pool of three local backends, health-checked.
# Retries of refused connections and resets, and passive ejection of a backend that refuses, are on by default.
listeners:
  - name: web
    bind: \${USHER_DEMO_BIND}
    routes:
      - pool: demo
pools:
  demo:
    algorithm: round-robin
    timeouts: { connect: 2s, response: 30s, idle: 60s }
    healthCheck: { path: /health, interval: 1s, timeout: 500ms }
    outlier: { consecutiveFailures: 3, ejectionTime: 10s }
    slowStart: 5s
    backends:
      - address: 127.0.0.1:\${USHER_DEMO_PORT_1}
        name: alpha
      - address: 127.0.0.1:\${USHER_DEMO_PORT_2}
        name: bravo
      - address: 127.0.0.1:\${USHER_DEMO_PORT_3}
        name: charlie
admin:
  bind: \${USHER_DEMO_ADMIN}
`;

export interface DemoBackend {
  readonly name: string;
  readonly port: number;
  readonly process: ChildProcess;
}

/** Forks one demo backend per name on ephemeral ports and waits until each listens. */
export async function startDemoBackends(names: readonly string[] = demoBackendNames): Promise<DemoBackend[]> {
  // Running from source (tests, node's type stripping) the sibling is .ts; from dist it is .js.
  const script = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './backend.ts' : './backend.js', import.meta.url));
  return Promise.all(
    names.map(async (name) => {
      const child = fork(script, ['--name', name, '--port', '0'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const timeout = AbortSignal.timeout(10_000);
      const [message] = (await once(child, 'message', { signal: timeout })) as [{ ready: number }];
      return { name, port: message.ready, process: child };
    }),
  );
}

/** Stops demo backends started by {@link startDemoBackends}. */
export function stopDemoBackends(backends: readonly DemoBackend[]): void {
  for (const backend of backends) backend.process.kill('SIGTERM');
}

export function demoBanner(url: string, backends: readonly DemoBackend[], adminUrl?: string): string {
  const first = backends[0];
  const admin =
    adminUrl === undefined
      ? []
      : [
          `  curl -s ${adminUrl}/api/pools/demo | less             # backends, states, counters, recent checks`,
          `  curl -s -XPOST ${adminUrl}/api/pools/demo/backends/127.0.0.1:${first?.port ?? '<port>'}/drain   # drain ${first?.name ?? 'a backend'}`,
          `  curl -s -XPOST ${adminUrl}/api/pools/demo/backends/127.0.0.1:${first?.port ?? '<port>'}/enable  # and back`,
        ];
  const lines = [
    '',
    `usher demo is running on ${url}`,
    ...(adminUrl === undefined ? [] : [`  admin API: ${adminUrl}`, `  dashboard: ${adminUrl}/`]),
    `  backends: ${backends.map((b) => `${b.name} (127.0.0.1:${b.port})`).join(', ')}`,
    '',
    'Try:',
    `  for i in 1 2 3 4 5 6; do curl -s ${url}/; done     # round-robin: alpha, bravo, charlie, alpha, ...`,
    `  curl -si ${url}/hello | head -20                    # see the X-Backend header`,
    `  kill ${first?.process.pid ?? '<pid>'}   # stop ${first?.name ?? 'a backend'} gracefully: it fails /health, usher stops sending, in-flight requests finish`,
    `  kill -9 ${first?.process.pid ?? '<pid>'}   # or crash it: retries and passive ejection hide it, no request fails`,
    ...admin,
    '',
    'Ctrl-C stops usher and the demo backends.',
    '',
  ];
  return lines.join('\n');
}
