/**
 * Config: schema, loading, validation, JSON Schema. See docs/config.md.
 */
export type * from './types.ts';
export { loadConfigFile, parseConfig, detectFormat, sourceOf, type ConfigResult, type ConfigSource } from './load.ts';
export { loadConfig, parseConfigAsync, resolveModules, hasUnresolvedModules } from './resolve-modules.ts';
export { importConfigModule, loadConfigModule, checkModuleOptions, type ModuleReference, type ModuleExports, type OptionsSchema, type OptionsResult, type OptionsIssue } from './modules.ts';
export { formatIssue, formatPath, type ConfigIssue } from './issues.ts';
export { configJsonSchema } from './json-schema.ts';
export { parseDuration, formatDuration, MAX_DURATION_MS } from './duration.ts';
export { parseByteSize, formatByteSize, MAX_BYTES } from './byte-size.ts';
export { parseHostPort, formatHostPort, type HostPortOptions } from './hostport.ts';
export type { Parsed } from './parsed.ts';
export { quickConfig, QUICK_SOURCE, type QuickOptions } from './quick.ts';
export { configSchema, ADMIN_STATES, DEFAULTS, HEALTH_CHECK_TYPES, RETRY_CONDITIONS, type ConfigInput } from './schema.ts';
