/**
 * The file's config plus the cluster's routes: what usher applies. The
 * file's routes come first on each listener, then the cluster's (so an
 * operator's explicit route wins, and a catch-all in the file hides the
 * cluster's routes on that listener); the file's certificates come first
 * (the first stays the default for clients without SNI); the cluster's pools
 * are named `k8s/<namespace>/<service>/<port>`, which no file pool can be.
 */
import { parseConfig } from '../config/index.ts';
import type { PoolConfig, UsherConfig } from '../config/types.ts';
import type { ClusterRoutes } from './translate.ts';

let template: PoolConfig | undefined;

/** A pool with every default, as the schema makes it (its discovery replaced per Service). */
function poolTemplate(): PoolConfig {
  if (template !== undefined) return template;
  const result = parseConfig('listeners: [{ name: t, bind: "127.0.0.1:0", routes: [{ pool: t }] }]\npools: { t: { discovery: { kubernetes: { namespace: t, service: t, port: t } } } }\n', 'kubernetes-pool-template.yaml', {});
  if (!result.ok) throw new Error(`internal: the Kubernetes pool template does not parse: ${result.errors.map((e) => e.message).join('; ')}`);
  template = result.config.pools['t']!;
  return template;
}

export function withClusterRoutes(file: UsherConfig, cluster: ClusterRoutes | undefined): UsherConfig {
  const section = file.kubernetes;
  const names = new Map(file.listeners.map((l) => [l.name, l]));
  const check = (name: string | undefined, key: string, https: boolean): void => {
    if (name === undefined) return;
    const listener = names.get(name);
    if (listener === undefined) throw new Error(`kubernetes.${key}: no listener named ${JSON.stringify(name)}`);
    if (https ? listener.protocol !== 'https' : listener.protocol !== 'http' && listener.protocol !== 'https') throw new Error(`kubernetes.${key}: listener ${name} is ${listener.protocol}, expected ${https ? 'https' : 'http or https'}`);
  };
  check(section?.ingress?.listener, 'ingress.listener', false);
  check(section?.ingress?.tlsListener, 'ingress.tlsListener', true);
  check(section?.gateway?.listener, 'gateway.listener', false);
  if (cluster === undefined) return file;
  const pools: Record<string, PoolConfig> = { ...file.pools };
  const base = poolTemplate();
  for (const [name, discovery] of cluster.pools) pools[name] = { ...base, discovery: { kubernetes: discovery } };
  const listeners = file.listeners.map((listener) => {
    const routes = cluster.routes.get(listener.name);
    const certificates = cluster.certificates.get(listener.name);
    if (routes === undefined && certificates === undefined) return listener;
    return {
      ...listener,
      routes: [...listener.routes, ...(routes ?? [])],
      ...(certificates === undefined || listener.tls === undefined ? {} : { tls: { ...listener.tls, certificates: [...listener.tls.certificates, ...certificates] } }),
    };
  });
  return { ...file, pools, listeners };
}
