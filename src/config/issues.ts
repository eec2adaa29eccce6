/**
 * Config problems as data: where (file, line, column, key path) and what.
 * Printed as `file:line:col path: message`, the form editors and CI annotate.
 */

/** One config problem (error or warning). `line` and `column` are 1-based. */
export interface ConfigIssue {
  readonly file: string;
  readonly line?: number | undefined;
  readonly column?: number | undefined;
  /** Key path such as `pools.web.backends[1].address`; empty for the whole file. */
  readonly path: string;
  readonly message: string;
}

/** A key path: mapping keys and list indexes from the document root. */
export type KeyPath = readonly (string | number)[];

const BARE_KEY = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

/** Format a key path: `listeners[0].routes[2].match.headers["x.y"]`. */
export function formatPath(path: KeyPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (BARE_KEY.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}

/** Format an issue as `file:line:col path: message` (parts that are unknown are left out). */
export function formatIssue(issue: ConfigIssue): string {
  let where = issue.file;
  if (issue.line !== undefined) {
    where += `:${issue.line}`;
    if (issue.column !== undefined) where += `:${issue.column}`;
  }
  return issue.path === '' ? `${where}: ${issue.message}` : `${where} ${issue.path}: ${issue.message}`;
}

/** Sort by line, then column, then path; drop exact duplicates. Returns a new array. */
export function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  const unique = issues.filter((issue) => {
    const key = formatIssue(issue);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return unique.sort(
    (a, b) =>
      (a.line ?? 0) - (b.line ?? 0) ||
      (a.column ?? 0) - (b.column ?? 0) ||
      (a.path < b.path ? -1 : a.path > b.path ? 1 : 0),
  );
}

const MAX_SHOWN = 80;

/**
 * Describe a found value for a message: strings quoted, numbers as written,
 * mappings and lists by kind. Long strings are shortened.
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (typeof value === 'string') {
    const quoted = JSON.stringify(value);
    return quoted.length > MAX_SHOWN ? `${quoted.slice(0, MAX_SHOWN - 4)}..."` : quoted;
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}
