/**
 * The asynchronous step of loading a config: import the modules it names and
 * check their options. `parseConfig` and `loadConfigFile` stay synchronous
 * (and enough for files that name no module); `usher check`, `usher start`
 * and reloads go through {@link loadConfig}, which adds this step.
 *
 * Each kind of module resolves in its own function over the whole config,
 * reporting through one {@link Reporter} so problems come out together,
 * sorted by position: balancers (`algorithm: { module }`), then filters
 * (`filters: [{ module }]`, filter-modules.ts).
 */
import { resolveBalancerModules } from '../balancer/module.ts';
import { hasFilterModules, loadFilterModules } from './filter-modules.ts';
import { sortIssues } from './issues.ts';
import { loadConfigFile, parseConfig, sourceOf, type ConfigResult } from './load.ts';
import { Reporter } from './report.ts';
import type { SourceTree } from './source.ts';
import type { UsherConfig } from './types.ts';

/** A tree without positions, for configs built in code: issues then carry only their key path. */
const NO_SOURCE: SourceTree = {
  value: undefined,
  positions: new Map(),
  templates: new Map(),
  unreadable: new Set(),
  syntaxErrors: [],
  errors: [],
  warnings: [],
};

/**
 * Loads every module a valid config names and checks its options; returns the
 * config with the modules in it, or every problem as `file:line:col path:
 * message` issues (positions come from the file `parseConfig` or
 * `loadConfigFile` read, see `sourceOf`). A failed result is returned as it is.
 *
 * For a config built in code, pass `{ ok: true, config, warnings: [] }`:
 * issues then have a key path but no position. `Usher.start` and
 * `Usher.reload` call this themselves for a config whose modules are not loaded.
 */
export async function resolveModules(result: ConfigResult): Promise<ConfigResult> {
  if (!result.ok) return result;
  const source = sourceOf(result.config);
  const fileName = source?.fileName ?? 'config';
  const reporter = new Reporter(fileName, source?.tree ?? NO_SOURCE);
  let config: UsherConfig | undefined = result.config;
  try {
    config = await resolveBalancerModules(config, reporter);
  } catch (error) {
    // A bug in usher, not in the module; still an answer rather than a crash.
    return { ok: false, errors: [{ file: fileName, path: '', message: `internal error while loading modules: ${error instanceof Error ? error.message : String(error)}` }] };
  }
  const errors = reporter.errors();
  if (config === undefined || errors.length > 0) return { ok: false, errors };
  const resolved: ConfigResult = { ...result, config, warnings: sortIssues([...result.warnings, ...reporter.warnings()]) };
  try {
    return await loadFilterModules(resolved, fileName, source?.tree ?? NO_SOURCE);
  } catch (error) {
    return { ok: false, errors: [{ file: fileName, path: '', message: `internal error while loading filter modules: ${error instanceof Error ? error.message : String(error)}` }] };
  }
}

/** {@link parseConfig}, then {@link resolveModules}: config text to a config whose modules are loaded. */
export async function parseConfigAsync(text: string, fileName: string, env: NodeJS.ProcessEnv = process.env): Promise<ConfigResult> {
  return resolveModules(parseConfig(text, fileName, env));
}

/**
 * Reads, validates and resolves a config file: {@link loadConfigFile}, then
 * {@link resolveModules}. What `usher check`, `usher start` and reloads use.
 */
export async function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): Promise<ConfigResult> {
  return resolveModules(loadConfigFile(path, env));
}

/** Whether `config` names a module that is not loaded yet. */
export function hasUnresolvedModules(config: UsherConfig): boolean {
  return Object.values(config.pools).some((pool) => typeof pool.algorithm !== 'string' && pool.algorithm.loaded === undefined) || hasUnloadedFilterModules(config);
}

function hasUnloadedFilterModules(config: UsherConfig): boolean {
  if (!hasFilterModules(config)) return false;
  return config.listeners.some((listener) => listener.routes.some((route) => route.filters?.some((filter) => filter.kind === 'module' && filter.loaded === undefined) ?? false));
}
