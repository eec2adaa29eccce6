/**
 * Turns findings into {@link ConfigIssue}s with positions: looks up the value
 * and source position for a key path, and describes found values, showing the
 * `${VAR}` template instead of any value that came from the environment, and
 * never the value of a secret (`sticky.secret`, `admin.token`) at all.
 */
import { describeValue, formatPath, sortIssues, type ConfigIssue, type KeyPath } from './issues.ts';
import { isSecretAt } from './json-schema.ts';
import type { Position, SourceTree } from './source.ts';

/** Which part of a mapping entry an issue points at. */
export type Target = 'key' | 'value';

/** Options for {@link Reporter.error} and {@link Reporter.warn}. */
export interface ReportOptions {
  /** Point at the key (unknown or duplicate keys) or the value (default). */
  readonly target?: Target;
  /** Append `, got <value>` describing the value at the path. */
  readonly got?: boolean;
}

/** Collects errors and warnings for one file. */
export class Reporter {
  readonly #file: string;
  readonly #tree: SourceTree;
  readonly #errors: ConfigIssue[] = [];
  readonly #warnings: ConfigIssue[] = [];

  constructor(file: string, tree: SourceTree) {
    this.#file = file;
    this.#tree = tree;
  }

  /** The value at `path` as read from the file (after interpolation), or undefined. */
  valueAt(path: KeyPath): unknown {
    let value: unknown = this.#tree.value;
    for (const part of path) {
      if (typeof value !== 'object' || value === null || !Object.hasOwn(value, part)) return undefined;
      value = (value as Record<string | number, unknown>)[part];
    }
    return value;
  }

  /** True when the value at `path` was built from `${VAR}`s. */
  isInterpolated(path: KeyPath): boolean {
    return this.#tree.templates.has(formatPath(path));
  }

  /**
   * The value at `path` for a message: quoted text, or its `${VAR}` template
   * when interpolated; for a secret written in the file, only its kind and length.
   */
  describe(path: KeyPath): string {
    const template = this.#tree.templates.get(formatPath(path));
    if (template !== undefined) return describeValue(template);
    const value = this.valueAt(path);
    return isSecretAt(path) ? describeSecret(value) : describeValue(value);
  }

  /** True when `path` or an ancestor could not be read (already reported). */
  isUnreadable(path: KeyPath): boolean {
    for (let i = path.length; i >= 0; i--) {
      if (this.#tree.unreadable.has(formatPath(path.slice(0, i)))) return true;
    }
    return false;
  }

  /** Record an error at `path`. */
  error(path: KeyPath, message: string, options: ReportOptions = {}): void {
    if (!this.isUnreadable(path)) this.#errors.push(this.#issue(path, message, options));
  }

  /** Record a warning at `path`. */
  warn(path: KeyPath, message: string, options: ReportOptions = {}): void {
    if (!this.isUnreadable(path)) this.#warnings.push(this.#issue(path, message, options));
  }

  /** Errors so far, sorted by position. */
  errors(): ConfigIssue[] {
    return sortIssues(this.#errors);
  }

  /** Warnings so far, sorted by position. */
  warnings(): ConfigIssue[] {
    return sortIssues(this.#warnings);
  }

  #issue(path: KeyPath, message: string, options: ReportOptions): ConfigIssue {
    const where = this.#position(path, options.target ?? 'value');
    const text = options.got === true ? `${message}, got ${this.describe(path)}` : message;
    return { file: this.#file, line: where?.line, column: where?.column, path: formatPath(path), message: text };
  }

  /** The recorded position of `path`, or of its nearest ancestor (for values filled by defaults). */
  #position(path: KeyPath, target: Target): Position | undefined {
    const exact = this.#tree.positions.get(formatPath(path));
    if (exact !== undefined) return target === 'key' ? (exact.key ?? exact.value) : exact.value;
    for (let i = path.length - 1; i >= 0; i--) {
      const found = this.#tree.positions.get(formatPath(path.slice(0, i)));
      if (found !== undefined) return found.value;
    }
    return undefined;
  }
}

/** A secret's kind (and length, which is what a "too short" message needs), never its text. */
function describeSecret(value: unknown): string {
  if (typeof value === 'string') return `${value.length} character${value.length === 1 ? '' : 's'} (not shown: it is a secret)`;
  if (typeof value === 'number' || typeof value === 'boolean') return `a ${typeof value} (not shown: it is a secret)`;
  return describeValue(value);
}
