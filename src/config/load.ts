/**
 * Loading: text → {@link SourceTree} (YAML/JSON with positions and `${VAR}`s)
 * → schema and cross-key checks → a resolved {@link UsherConfig} or every
 * problem at once, sorted by position. Never throws on any input.
 *
 * `parseConfig`/`loadConfigFile` are synchronous and leave the modules a
 * file names (custom balancers, user filters) unloaded; `loadConfig` and
 * `parseConfigAsync` add the step that imports them (resolve-modules.ts).
 *
 * File paths in the config (certificates, keys, CA bundles) are relative to
 * the config file's directory; the resolved config holds them absolute.
 */
import { readFileSync } from 'node:fs';
import { sortIssues, type ConfigIssue } from './issues.ts';
import { checkConfig } from './checks.ts';
import { configDirectory, describeFsError, resolveConfigFiles } from './files.ts';
import { scalarTypeAt } from './json-schema.ts';
import { Reporter } from './report.ts';
import { configSchema } from './schema.ts';
import { readSource, type SourceTree } from './source.ts';
import type { UsherConfig } from './types.ts';
import { GENERIC, reportZodIssues } from './zod-issues.ts';

/** A loaded config and its warnings, or every error found. */
export type ConfigResult =
  | { readonly ok: true; readonly config: UsherConfig; readonly warnings: readonly ConfigIssue[] }
  | { readonly ok: false; readonly errors: readonly ConfigIssue[] };

/** The file a config was read from, as read: values with their positions. */
export interface ConfigSource {
  /** The file name messages show. */
  readonly fileName: string;
  readonly tree: SourceTree;
}

/**
 * The source of each config this module produced, so a later step
 * (`resolveModules`, `usher explain`) can point at lines and read what the
 * file says beyond the schema. Weak: a config that is dropped takes its
 * source with it; a config built or copied in code has none.
 */
const sources = new WeakMap<UsherConfig, ConfigSource>();

/** The file `config` was read from, with positions, when the loader produced it. */
export function sourceOf(config: UsherConfig): ConfigSource | undefined {
  return sources.get(config);
}

/** Files larger than this are refused: a config is kilobytes, not megabytes. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

/**
 * Read and validate a config file. YAML, or JSON when the name ends in `.json`
 * or the content starts with `{`. An unreadable file is a {@link ConfigResult} error too.
 * Modules the file names (`algorithm: { module }`) are not loaded: use
 * `loadConfig`, or pass the result to `resolveModules`, to run it.
 */
export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): ConfigResult {
  const text = readConfigText(path);
  return typeof text === 'string' ? parseConfig(text, path, env) : text;
}

function readConfigText(path: string): string | ConfigResult {
  try {
    const bytes = readFileSync(path);
    if (bytes.length > MAX_FILE_BYTES) return failure(path, `the file is larger than ${MAX_FILE_BYTES / 1024 / 1024} MiB`);
    return bytes.toString('utf8');
  } catch (error) {
    return failure(path, `cannot read the config file: ${describeFsError(error)}`);
  }
}

/**
 * Validate config text; `fileName` is used in messages, to detect JSON and to
 * resolve relative file paths (against its directory, or the working directory
 * when that does not exist).
 */
export function parseConfig(text: string, fileName: string, env: NodeJS.ProcessEnv = process.env): ConfigResult {
  return parse(text, fileName, env).result;
}

function parse(text: string, fileName: string, env: NodeJS.ProcessEnv): { result: ConfigResult; tree: SourceTree | undefined } {
  try {
    const tree = readSource(text, { fileName, format: detectFormat(fileName, text), env, scalarTypeAt });
    if (tree.syntaxErrors.length > 0) return { result: { ok: false, errors: tree.syntaxErrors }, tree: undefined };
    return { result: validateTree(tree, fileName), tree };
  } catch (error) {
    // A bug in usher, not in the file; still an answer rather than a crash.
    return { result: failure(fileName, `internal error while reading the config: ${error instanceof Error ? error.message : String(error)}`), tree: undefined };
  }
}

/**
 * Run the schema and cross-key checks on an already-read tree. Relative file
 * paths are resolved against `directory` (default: see {@link configDirectory}).
 */
export function validateTree(tree: SourceTree, fileName: string, directory: string = configDirectory(fileName)): ConfigResult {
  if (tree.value === null || tree.value === undefined) {
    return failure(fileName, 'the file is empty; expected a mapping with "listeners" and "pools"', 1, 1);
  }
  const reporter = new Reporter(fileName, tree);
  const result = configSchema.safeParse(tree.value, { error: () => GENERIC });
  if (!result.success) reportZodIssues(result.error.issues, reporter);
  checkConfig(tree.value, reporter, directory);
  const errors = [...tree.errors, ...reporter.errors()];
  if (errors.length > 0 || !result.success) return { ok: false, errors: sortIssues(errors) };
  const config = resolveConfigFiles(result.data, directory);
  sources.set(config, { fileName, tree });
  return { ok: true, config, warnings: sortIssues([...tree.warnings, ...reporter.warnings()]) };
}

/** `json` for `.json` files or content starting with `{`, else `yaml`. */
export function detectFormat(fileName: string, text: string): 'yaml' | 'json' {
  if (/\.json$/i.test(fileName)) return 'json';
  if (/\.ya?ml$/i.test(fileName)) return 'yaml';
  return /^\uFEFF?\s*\{/.test(text) ? 'json' : 'yaml';
}

function failure(file: string, message: string, line?: number, column?: number): ConfigResult {
  return { ok: false, errors: [{ file, line, column, path: '', message }] };
}
