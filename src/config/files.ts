/**
 * Files a config names (TLS certificates and keys, CA bundles). Relative paths
 * are relative to the config file's directory, as in nginx and HAProxy, not to
 * wherever usher was started; the resolved config holds absolute paths. The
 * loader only checks that each file can be opened: reading and parsing the PEM
 * is the TLS layer's job, at start and on every reload.
 */
import { closeSync, fstatSync, openSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { UsherConfig } from './types.ts';

/**
 * The directory relative file paths in `fileName` are resolved against: the
 * file's own directory, or the working directory when that does not exist
 * (text given to `parseConfig` under a made-up name, quick mode).
 */
export function configDirectory(fileName: string): string {
  const directory = dirname(resolve(fileName));
  try {
    if (statSync(directory).isDirectory()) return directory;
  } catch {
    // Not a real directory: fall back to the working directory.
  }
  return process.cwd();
}

/** `path` as an absolute path, relative ones taken from `directory`. */
export function resolveConfigPath(directory: string, path: string): string {
  return isAbsolute(path) ? resolve(path) : resolve(directory, path);
}

/** Why `path` cannot be read (opened as a regular file), or undefined when it can. Never reads the content. */
export function unreadableReason(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    return describeFsError(error);
  }
  try {
    if (fstatSync(fd).isDirectory()) return describeFsError(Object.assign(new Error('is a directory'), { code: 'EISDIR' }));
    return undefined;
  } catch (error) {
    return describeFsError(error);
  } finally {
    closeSync(fd);
  }
}

/** A file system error in words, with its code: `no such file (ENOENT)`. */
export function describeFsError(error: unknown): string {
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
  switch (code) {
    case 'ENOENT':
      return 'no such file (ENOENT)';
    case 'EACCES':
    case 'EPERM':
      return `permission denied (${code})`;
    case 'EISDIR':
      return 'it is a directory (EISDIR)';
    case 'ENOTDIR':
      return 'a part of the path is not a directory (ENOTDIR)';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}

/** The config with every file path (listener certificates and keys, backend CA bundles, balancer and filter modules, Redis TLS files, the kubeconfig) made absolute against `directory`. */
export function resolveConfigFiles(config: UsherConfig, directory: string): UsherConfig {
  const file = (path: string): string => resolveConfigPath(directory, path);
  const redisTls = config.redis?.tls;
  return {
    ...config,
    ...(config.kubernetes === undefined || config.kubernetes.kubeconfig === 'in-cluster' ? {} : { kubernetes: { ...config.kubernetes, kubeconfig: file(config.kubernetes.kubeconfig) } }),
    ...(redisTls === undefined
      ? {}
      : {
          redis: {
            ...config.redis!,
            tls: {
              ...redisTls,
              ...(redisTls.ca === undefined ? {} : { ca: file(redisTls.ca) }),
              ...(redisTls.cert === undefined ? {} : { cert: file(redisTls.cert) }),
              ...(redisTls.key === undefined ? {} : { key: file(redisTls.key) }),
            },
          },
        }),
    listeners: config.listeners.map((listener) => {
      const withModules = { ...listener, routes: listener.routes.map((route) => (route.filters === undefined ? route : { ...route, filters: route.filters.map((filter) => (filter.kind === 'module' ? { ...filter, path: file(filter.module) } : filter)) })) };
      return listener.tls === undefined
        ? withModules
        : {
            ...withModules,
            tls: {
              ...listener.tls,
              certificates: listener.tls.certificates.map((c) => ({ certFile: file(c.certFile), keyFile: file(c.keyFile) })),
            },
          };
    }),
    pools: Object.fromEntries(
      Object.entries(config.pools).map(([name, pool]) => [
        name,
        {
          ...pool,
          ...(typeof pool.algorithm === 'string' ? {} : { algorithm: { ...pool.algorithm, module: file(pool.algorithm.module) } }),
          backends: pool.backends.map((backend) =>
            backend.tls?.caFile === undefined ? backend : { ...backend, tls: { ...backend.tls, caFile: file(backend.tls.caFile) } },
          ),
        },
      ]),
    ),
  };
}
