/**
 * `${VAR}` interpolation in string values. `${VAR:-default}` uses the default
 * when VAR is unset or empty (POSIX shell semantics); `$${` writes a literal
 * `${`. Values are interpolated per YAML scalar, after parsing, so an
 * environment value can never change the document's structure.
 */
import { failed, parsed, type Parsed } from './parsed.ts';

const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s;

/** The interpolated text and whether any `${...}` was replaced. */
export interface Interpolation {
  readonly text: string;
  readonly interpolated: boolean;
}

/**
 * Replace every `${VAR}` and `${VAR:-default}` in `text` from `env`.
 * Fails on the first unset variable without a default, naming it.
 */
export function interpolate(text: string, env: NodeJS.ProcessEnv): Parsed<Interpolation> {
  if (!text.includes('${')) return parsed({ text, interpolated: false });
  let out = '';
  let interpolated = false;
  let i = 0;
  while (i < text.length) {
    const start = text.indexOf('${', i);
    if (start === -1) break;
    if (start > 0 && text[start - 1] === '$') {
      out += text.slice(i, start - 1) + '${';
      i = start + 2;
      continue;
    }
    const end = text.indexOf('}', start + 2);
    if (end === -1) return failed('unterminated "${" (write "$${" for a literal "${")');
    const reference = text.slice(start + 2, end);
    const match = REFERENCE.exec(reference);
    if (match === null) {
      return failed(`invalid reference "\${${reference}}"; expected \${NAME} or \${NAME:-default}`);
    }
    const name = match[1] ?? '';
    const fallback = match[2];
    const value = env[name];
    let replacement: string;
    if (value !== undefined && (fallback === undefined || value !== '')) replacement = value;
    else if (fallback !== undefined) replacement = fallback;
    else return failed(`environment variable ${name} is not set (referenced as \${${name}}; use \${${name}:-default} for a default)`);
    out += text.slice(i, start) + replacement;
    interpolated = true;
    i = end + 1;
  }
  out += text.slice(i);
  return parsed({ text: out, interpolated });
}
