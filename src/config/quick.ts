/**
 * Quick mode (`usher start --bind ADDR --backend ADDR ...`): builds the same
 * input a file would have and validates it the same way, so the flags get the
 * same checks and defaults. Problems name the flag: `--backend[1]: expected
 * host:port, got "localhost"`.
 */
import type { ConfigIssue } from './issues.ts';
import { validateTree, type ConfigResult } from './load.ts';

/** The command-line flags of quick mode. */
export interface QuickOptions {
  /** `host:port` to listen on. */
  readonly bind: string;
  /** Backend `host:port`s, in order. */
  readonly backends: readonly string[];
  /** Balancing algorithm; default `p2c`. */
  readonly algorithm?: string | undefined;
}

/** The file name quick-mode issues carry. */
export const QUICK_SOURCE = '<command line>';

const POOL = 'default';

/** Build and validate a one-listener, one-pool config from flags. */
export function quickConfig(options: QuickOptions): ConfigResult {
  if (options.backends.length === 0) {
    // A file may name an empty pool (backends come later, through the admin API); quick mode has no admin API.
    return { ok: false, errors: [{ file: QUICK_SOURCE, path: '--backend', message: 'give at least one --backend HOST:PORT' }] };
  }
  const input = {
    listeners: [{ name: POOL, bind: options.bind, routes: [{ pool: POOL }] }],
    pools: {
      [POOL]: {
        ...(options.algorithm === undefined ? {} : { algorithm: options.algorithm }),
        backends: options.backends.map((address) => ({ address })),
      },
    },
  };
  const result = validateTree(
    { value: input, positions: new Map(), templates: new Map(), unreadable: new Set(), syntaxErrors: [], errors: [], warnings: [] },
    QUICK_SOURCE,
  );
  return result.ok ? result : { ok: false, errors: result.errors.map(toFlag) };
}

const FLAGS: readonly (readonly [RegExp, (m: RegExpExecArray) => string])[] = [
  [/^listeners\[0\]\.bind$/, () => '--bind'],
  [/^pools\.default\.backends\[(\d+)\]\.address$/, (m) => `--backend[${m[1]}]`],
  [/^pools\.default\.backends$/, () => '--backend'],
  [/^pools\.default\.algorithm$/, () => '--algorithm'],
];

function toFlag(issue: ConfigIssue): ConfigIssue {
  for (const [pattern, flag] of FLAGS) {
    const match = pattern.exec(issue.path);
    if (match !== null) return { ...issue, path: flag(match), message: issue.message.replace(/\bbackends\[(\d+)\]/g, '--backend[$1]') };
  }
  return issue;
}
