/**
 * Maps zod's issues to usher's messages. Keys are reported one issue per
 * unknown key with a "did you mean"; missing keys are reported on the mapping
 * that lacks them; every other message says what was expected and then what
 * was found (`, got "localhost"`), through the {@link Reporter} so values from
 * the environment are never shown.
 */
import type { z } from 'zod';
import type { KeyPath } from './issues.ts';
import { knownKeysAt } from './json-schema.ts';
import type { Reporter } from './report.ts';
import { didYouMean } from './suggest.ts';

/**
 * Marks a message zod would have made itself. Passed as the per-parse error
 * map: schema-level messages (ours) take precedence, everything else gets this
 * and is worded by {@link genericMessage}.
 */
export const GENERIC = '\u0000generic';

type Issue = z.core.$ZodIssue;

/** Report every zod issue through `reporter`. */
export function reportZodIssues(issues: readonly Issue[], reporter: Reporter): void {
  for (const issue of issues) reportOne(issue, reporter);
}

function reportOne(issue: Issue, reporter: Reporter): void {
  const path = issue.path.map((part) => (typeof part === 'number' ? part : String(part)));
  switch (issue.code) {
    case 'unrecognized_keys':
      for (const key of issue.keys) reportUnknownKey([...path, key], reporter);
      return;
    case 'invalid_key': {
      const inner = issue.issues[0];
      const message = inner === undefined || inner.message === GENERIC ? 'invalid key' : inner.message;
      reporter.error(path, `${message}, got ${JSON.stringify(path.at(-1))}`, { target: 'key' });
      return;
    }
    case 'invalid_type':
      if (reporter.valueAt(path) === undefined && path.length > 0) {
        reporter.error(path.slice(0, -1), `missing required key ${JSON.stringify(path.at(-1))}`);
        return;
      }
      reporter.error(path, messageOf(issue), { got: true });
      return;
    case 'invalid_value': {
      const suggestion = reporter.isInterpolated(path) ? '' : suggestValue(reporter.valueAt(path), issue.values);
      reporter.error(path, messageOf(issue) + suggestion, { got: true });
      return;
    }
    case 'invalid_union': {
      // Unions are scalar alternatives (50 or "50%", 503 or "503"), or `true` or a
      // mapping (a backend's tls). When only one alternative had the right type (an
      // issue inside the value means it had), its own message is the precise one.
      const typed = issue.errors.filter((option) => option.some((inner) => inner.code !== 'invalid_type' || inner.path.length > 0));
      if (typed.length === 1) {
        for (const inner of typed[0] ?? []) reportOne({ ...inner, path: [...issue.path, ...inner.path] }, reporter);
        return;
      }
      // Otherwise say what was found, and suggest a near miss.
      const value = reporter.valueAt(path);
      const suggestion = reporter.isInterpolated(path) ? '' : suggestValue(value, optionValues(issue));
      reporter.error(path, messageOf(issue) + suggestion, { got: isScalar(value) });
      return;
    }
    case 'invalid_element':
      reporter.error(path, messageOf(issue));
      return;
    case 'too_big':
    case 'too_small':
    case 'invalid_format':
    case 'not_multiple_of':
      reporter.error(path, messageOf(issue), { got: isScalar(reporter.valueAt(path)) });
      return;
    case 'custom': {
      // A check may name the values it expects (`params.suggest`) for a "did you mean".
      const suggest: unknown = issue.params?.['suggest'];
      const suggestion = Array.isArray(suggest) && !reporter.isInterpolated(path) ? suggestValue(reporter.valueAt(path), suggest) : '';
      reporter.error(path, messageOf(issue) + suggestion, { got: isScalar(reporter.valueAt(path)) });
      return;
    }
    default: {
      const unexpected: never = issue;
      reporter.error(path, String((unexpected as { message?: unknown }).message));
    }
  }
}

function reportUnknownKey(path: KeyPath, reporter: Reporter): void {
  const key = String(path.at(-1));
  const known = knownKeysAt(path.slice(0, -1)).filter((k) => k !== '$schema');
  const hint = didYouMean(key, known) || (known.length > 0 ? `; expected one of: ${known.join(', ')}` : '');
  reporter.error(path, `unknown key "${key}"${hint}`, { target: 'key' });
}

function suggestValue(value: unknown, allowed: readonly unknown[]): string {
  return typeof value === 'string' ? didYouMean(value, allowed.filter((v): v is string => typeof v === 'string')) : '';
}

/**
 * The allowed values of the union's enum and literal options, for "did you
 * mean". Numbers are left out: any 3-digit status is a near miss of another.
 */
function optionValues(issue: z.core.$ZodIssueInvalidUnion): unknown[] {
  return issue.errors
    .flatMap((option) => option.flatMap((inner) => (inner.code === 'invalid_value' ? inner.values : [])))
    .filter((value) => typeof value === 'string' && !/^\d+$/.test(value));
}

function isScalar(value: unknown): boolean {
  return value === null || (typeof value !== 'object' && value !== undefined);
}

function messageOf(issue: Issue): string {
  return issue.message === GENERIC ? genericMessage(issue) : issue.message;
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
};

/** The message for an issue that has no schema-level message. */
export function genericMessage(issue: Issue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
      return bound(issue.origin, 'at least', issue.minimum);
    case 'too_big':
      return bound(issue.origin, 'at most', issue.maximum);
    case 'invalid_format':
      // A `.regex()` in a filter module's options schema: say which pattern.
      if (issue.format === 'regex' && 'pattern' in issue && typeof issue.pattern === 'string') return `expected text matching ${issue.pattern}`;
      return `expected ${issue.format} format`;
    case 'not_multiple_of':
      return `expected a multiple of ${String(issue.divisor)}`;
    case 'invalid_union':
      return 'does not match any allowed form';
    case 'invalid_element':
      return 'invalid element';
    case 'invalid_key':
      return 'invalid key';
    case 'unrecognized_keys':
      return `unknown keys ${issue.keys.join(', ')}`;
    case 'custom':
      return 'invalid value';
    default: {
      const unexpected: never = issue;
      return String((unexpected as { code?: unknown }).code);
    }
  }
}

function bound(origin: string, relation: string, limit: number | bigint): string {
  const n = Number(limit);
  if (origin === 'string') return n === 1 && relation === 'at least' ? 'must not be empty' : `must be ${relation} ${n} characters`;
  if (origin === 'array' || origin === 'set') return `expected ${relation} ${n} item${n === 1 ? '' : 's'}`;
  return `must be ${relation} ${n}`;
}
