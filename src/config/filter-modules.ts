/**
 * The asynchronous step of loading a config: user filter modules
 * (`filters: [{ module: ./filters/x.ts, options: {...} }]`). Everything else
 * is checked synchronously by `parseConfig`; this step imports each module
 * (Node 24 strips TypeScript types), checks that its default export is a
 * filter definition, and validates `options` against the module's zod schema,
 * reporting problems with the same `file:line:col path: message` as the rest
 * of the config. `usher check`, start and reload go through it.
 *
 * Each import carries the file's modification time in its URL, so a reload
 * after the module changed loads the new code (Node caches modules by URL;
 * each version loaded stays in memory).
 */
import type { FilterDefinition } from '../filter/filter.ts';
import { importConfigModule } from './modules.ts';
import { sortIssues } from './issues.ts';
import type { KeyPath } from './issues.ts';
import type { ConfigResult } from './load.ts';
import { Reporter } from './report.ts';
import type { SourceTree } from './source.ts';
import type { FilterConfig, ModuleFilterConfig, UsherConfig } from './types.ts';
import { GENERIC, reportZodIssues } from './zod-issues.ts';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** Whether a config names filter modules (and so needs {@link loadFilterModules}). */
export function hasFilterModules(config: UsherConfig): boolean {
  return config.listeners.some((listener) => listener.routes.some((route) => route.filters?.some((filter) => filter.kind === 'module') ?? false));
}

/**
 * Loads every filter module `result.config` names and validates its options;
 * returns the config with each module entry's `loaded` set, or every problem.
 * A result that is not ok, or has no modules, is returned as it is.
 */
export async function loadFilterModules(result: ConfigResult, fileName: string, tree: SourceTree): Promise<ConfigResult> {
  if (!result.ok || !hasFilterModules(result.config)) return result;
  const reporter = new Reporter(fileName, tree);
  const loaded = new Map<ModuleFilterConfig, ModuleFilterConfig>();
  const config = result.config;
  for (const [li, listener] of config.listeners.entries()) {
    for (const [ri, route] of listener.routes.entries()) {
      for (const [fi, filter] of (route.filters ?? []).entries()) {
        if (filter.kind !== 'module') continue;
        const at: KeyPath = ['listeners', li, 'routes', ri, 'filters', fi];
        const done = await loadOne(filter, at, reporter);
        if (done !== undefined) loaded.set(filter, done);
      }
    }
  }
  const errors = reporter.errors();
  if (errors.length > 0) return { ok: false, errors: sortIssues(errors) };
  const withModules: UsherConfig = {
    ...config,
    listeners: config.listeners.map((listener) => ({
      ...listener,
      routes: listener.routes.map((route) => (route.filters === undefined ? route : { ...route, filters: route.filters.map((filter): FilterConfig => (filter.kind === 'module' ? (loaded.get(filter) ?? filter) : filter)) })),
    })),
  };
  return { ok: true, config: withModules, warnings: result.warnings };
}

async function loadOne(filter: ModuleFilterConfig, at: KeyPath, reporter: Reporter): Promise<ModuleFilterConfig | undefined> {
  const modulePath = [...at, 'module'];
  // The same import as every module the config names (config/modules.ts): fresh after an edit, failures in words.
  const imported = await importConfigModule(filter.path);
  if (!imported.ok) {
    reporter.error(modulePath, imported.message);
    return undefined;
  }
  const exported = imported.value['default'];
  const definition = asDefinition(exported);
  if (typeof definition === 'string') {
    reporter.error(modulePath, `filter module ${JSON.stringify(filter.module)}: ${definition}`);
    return undefined;
  }
  const schema = definition.options;
  if (schema === undefined) {
    if (filter.options !== undefined) reporter.error([...at, 'options'], `filter ${definition.name} takes no options; remove "options"`, { target: 'key' });
    return { ...filter, loaded: { definition, options: undefined } };
  }
  const parsed = schema.safeParse(filter.options ?? {}, { error: () => GENERIC });
  if (!parsed.success) {
    const optionsPath = [...at, 'options'];
    if (filter.options === undefined) {
      reporter.error(at, `filter ${definition.name} needs "options": ${parsed.error.issues.map((issue) => issue.message === GENERIC ? issue.code : issue.message).join('; ')}`);
      return undefined;
    }
    reportZodIssues(parsed.error.issues.map((issue) => ({ ...issue, path: [...optionsPath, ...issue.path] })), reporter);
    return undefined;
  }
  return { ...filter, loaded: { definition, options: parsed.data } };
}

/** The module's default export as a definition, or what is wrong with it. */
function asDefinition(exported: unknown): FilterDefinition | string {
  if (typeof exported !== 'object' || exported === null) return 'its default export must be defineFilter({ name, options, create })';
  const candidate = exported as Partial<FilterDefinition>;
  if (typeof candidate.name !== 'string' || !NAME.test(candidate.name)) return 'its filter name must start with a letter or digit and contain only letters, digits, "_", "." and "-"';
  if (typeof candidate.create !== 'function') return `filter ${candidate.name} has no create() function`;
  if (candidate.options !== undefined && typeof (candidate.options as { safeParse?: unknown }).safeParse !== 'function') return `filter ${candidate.name}: options must be a zod schema`;
  if (candidate.timeoutMs !== undefined && !(Number.isInteger(candidate.timeoutMs) && candidate.timeoutMs > 0)) return `filter ${candidate.name}: timeoutMs must be a positive integer`;
  return candidate as FilterDefinition;
}
