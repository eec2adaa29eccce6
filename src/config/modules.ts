/**
 * TypeScript (or JavaScript) modules named by the config: `{ module: ./x.ts,
 * options: {…} }`. The generic half, shared by every kind of module the
 * config can name (balancers under `pools.*.algorithm`; filters next): import
 * the file, check what it exports, check its `options` with the schema it
 * brings, and report every failure as a config issue at the key that names it
 * (`file:line:col pools.api.algorithm.module: …`).
 *
 * The path is relative to the config file; `resolveConfigFiles` has made it
 * absolute by the time a module is loaded. Files are loaded with Node's own
 * `import()`: `.ts` files through Node 24's type stripping (erasable syntax
 * only: no `enum`, no `namespace`), `.js`/`.mjs` as they are.
 *
 * Loading is asynchronous (`import()` is), so it is a step after the
 * synchronous `parseConfig`: see `resolveModules` in `resolve-modules.ts`.
 */
import { statSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { describeFsError } from './files.ts';
import type { KeyPath } from './issues.ts';
import { failed, parsed, type Parsed } from './parsed.ts';
import type { Reporter } from './report.ts';

/** `{ module, options }` as the resolved config holds it: `module` is an absolute path. */
export interface ModuleReference {
  /** Absolute path of the module file (relative in the config file, to its directory). */
  readonly module: string;
  /** The options as written, before the module's schema checked them. */
  readonly options?: unknown;
}

/** A module's exports, by name (`default` for the default export). */
export type ModuleExports = Readonly<Record<string, unknown>>;

/**
 * A schema a module brings for its `options`: any validator implementing
 * Standard Schema v1 (https://standardschema.dev), which zod 4, valibot and
 * arktype all do, so a module needs no usher-specific validation library.
 * `Output` is what the module's code receives.
 */
export interface OptionsSchema<Output> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => OptionsResult<Output> | Promise<OptionsResult<Output>>;
    readonly types?: { readonly input: unknown; readonly output: Output } | undefined;
  };
}

/** What an {@link OptionsSchema} answers: the checked value, or the issues. */
export type OptionsResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: readonly OptionsIssue[] };

/** One problem an {@link OptionsSchema} found, at a path inside `options`. */
export interface OptionsIssue {
  readonly message: string;
  readonly path?: readonly (PropertyKey | { readonly key: PropertyKey })[] | undefined;
}

/**
 * Imports `file` and returns its exports, or why it could not be loaded, in
 * words that name the file: no such file, a syntax error (with its line when
 * Node gives one), a missing import, or an exception thrown while it ran.
 *
 * A file changed since it was last imported is imported afresh (the URL
 * carries its modification time), so `usher reload` picks up an edited
 * module; files *it* imports are cached by Node as usual.
 */
export async function importConfigModule(file: string): Promise<Parsed<ModuleExports>> {
  let version: string;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) return failed(`cannot load ${file}: it is not a file`);
    version = `${stat.mtimeMs}-${stat.size}`;
  } catch (error) {
    return failed(`cannot load ${file}: ${describeFsError(error)}`);
  }
  try {
    const exports = (await import(`${pathToFileURL(file).href}?v=${version}`)) as ModuleExports;
    return parsed(exports);
  } catch (error) {
    return failed(`cannot load ${file}: ${describeImportError(error, file)}`);
  }
}

/**
 * Loads the module `ref` names and checks its exports with `accept`, which
 * returns the part it needs or a message saying what was expected. Failures
 * are reported at `[...at, 'module']`; returns undefined after reporting one.
 *
 * @param at - key path of the mapping that holds `module:` (e.g. `['pools', 'api', 'algorithm']`).
 */
export async function loadConfigModule<T>(
  ref: ModuleReference,
  at: KeyPath,
  reporter: Reporter,
  accept: (exports: ModuleExports) => Parsed<T>,
): Promise<T | undefined> {
  const loaded = await importConfigModule(ref.module);
  if (!loaded.ok) {
    reporter.error([...at, 'module'], loaded.message);
    return undefined;
  }
  let accepted: Parsed<T>;
  try {
    accepted = accept(loaded.value);
  } catch (error) {
    accepted = failed(errorText(error));
  }
  if (!accepted.ok) reporter.error([...at, 'module'], `${ref.module}: ${accepted.message}`);
  return accepted.ok ? accepted.value : undefined;
}

/**
 * Checks `ref.options` with the module's `schema`; each issue is reported at
 * `[...at, 'options', ...its path]`, so it points at the offending line.
 * A module without a schema takes no options: any given are an error.
 * Leaving `options` out is the same as `options: {}`, so an object schema's
 * defaults apply. Returns the checked options, or `{ ok: false }` after reporting.
 *
 * @param what - names the module in messages (`balancer "least-latency"`).
 */
export async function checkModuleOptions<T>(
  schema: OptionsSchema<T> | undefined,
  ref: ModuleReference,
  at: KeyPath,
  reporter: Reporter,
  what: string,
): Promise<{ readonly ok: true; readonly value: T | undefined } | { readonly ok: false }> {
  if (schema === undefined) {
    if (ref.options === undefined) return { ok: true, value: undefined };
    reporter.error([...at, 'options'], `${what} takes no options (its module exports no options schema); remove options`, { target: 'key' });
    return { ok: false };
  }
  let result: OptionsResult<T>;
  try {
    result = await schema['~standard'].validate(ref.options ?? {});
  } catch (error) {
    reporter.error([...at, 'options'], `${what}: its options schema threw: ${errorText(error)}`);
    return { ok: false };
  }
  if (result.issues === undefined) return { ok: true, value: result.value };
  for (const issue of result.issues) {
    const inner = (issue.path ?? []).map((part) => {
      const key = typeof part === 'object' ? part.key : part;
      return typeof key === 'number' ? key : String(key);
    });
    reporter.error([...at, 'options', ...inner], issue.message);
  }
  if (result.issues.length === 0) reporter.error([...at, 'options'], `${what}: invalid options`);
  return { ok: false };
}

/** Whether `value` looks like an {@link OptionsSchema} (has a Standard Schema `validate`). */
export function isOptionsSchema(value: unknown): value is OptionsSchema<unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const standard = (value as { '~standard'?: unknown })['~standard'];
  return typeof standard === 'object' && standard !== null && typeof (standard as { validate?: unknown }).validate === 'function';
}

/** An import failure in words: the first line of the message, plus the line in `file` when the stack names it. */
function describeImportError(error: unknown, file: string): string {
  if (!(error instanceof Error)) return `it threw ${String(error)}`;
  const code = (error as { code?: unknown }).code;
  const message = firstLine(error.message);
  const line = lineIn(error.stack ?? '', file);
  const at = line === undefined ? '' : ` (line ${line})`;
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') return `an import cannot be resolved: ${message}`;
  if (code === 'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX') return `unsupported TypeScript${at}: ${message} (Node runs .ts files by stripping types: use erasable syntax only)`;
  if (error instanceof SyntaxError) return `syntax error${at}: ${message}`;
  return `it threw while loading${at}: ${message}`;
}

/** The line of `file` a stack trace points at: `file:12` (syntax errors) or `(file:///…:12:3)` (frames). */
function lineIn(stack: string, file: string): number | undefined {
  const url = pathToFileURL(file).href;
  for (const text of stack.split('\n')) {
    for (const prefix of [`${file}:`, `${url}:`, `${url}?`]) {
      const start = text.indexOf(prefix);
      if (start === -1) continue;
      const match = /^[^:]*:(\d+)/.exec(text.slice(start + prefix.length - 1));
      if (match !== null) return Number(match[1]);
    }
  }
  return undefined;
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}

/** An exception's message, for a config issue. */
export function errorText(error: unknown): string {
  return error instanceof Error ? firstLine(error.message) : String(error);
}
