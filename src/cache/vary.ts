/**
 * The secondary cache key from `Vary` (RFC 9111 §4.1): which request fields
 * a stored response was selected on, and whether a new request presents the
 * same ones.
 *
 * §4.1 lets two field values match when one can be turned into the other by
 * whitespace changes, combining lines, and normalisation "known to have
 * identical semantics". usher normalises:
 * - every field: lines combined, OWS around list commas removed;
 * - list fields whose members are case-insensitive tokens (`Accept-Encoding`,
 *   `Accept-Language`, `Accept-Charset`): members lower-cased;
 * - `Accept-Encoding`: the *set* of acceptable codings, sorted, q-values
 *   dropped except that `q=0` removes the coding, `x-gzip` read as `gzip`
 *   (RFC 9110 §8.4.1.3). `gzip, br` and `br,gzip;q=0.8` then match, which is
 *   right for a cache that stores one coding per variant.
 * An absent field matches only an absent field (§4.1); an empty one is not absent.
 */
import { fieldLines, listMembers, splitList, type Fields } from './fields.ts';

/** The lower-case field names of a response's `Vary`, sorted and de-duplicated; `'*'` when `Vary: *`. */
export function varyNames(responseFields: Fields): readonly string[] | '*' {
  const names = listMembers(responseFields, 'vary').map((n) => n.toLowerCase());
  if (names.includes('*')) return '*';
  return [...new Set(names)].sort();
}

const CASE_INSENSITIVE_LISTS = new Set(['accept-encoding', 'accept-language', 'accept-charset']);

/** The normalised value of request field `name` (lower-case) for Vary matching; undefined when absent. */
export function normalizedFieldValue(fields: Fields, name: string): string | undefined {
  const lines = fieldLines(fields, name);
  if (lines.length === 0) return undefined;
  if (name === 'accept-encoding') return normalizeAcceptEncoding(lines);
  const members = lines.flatMap(splitList);
  if (CASE_INSENSITIVE_LISTS.has(name)) return members.map((m) => m.toLowerCase().replace(/\s*;\s*/g, ';')).join(',');
  return members.join(',');
}

/** `Accept-Encoding` as the sorted set of acceptable codings (see the module comment). */
export function normalizeAcceptEncoding(lines: readonly string[]): string {
  const codings = new Set<string>();
  for (const member of lines.flatMap(splitList)) {
    const [rawCoding, ...params] = member.split(';');
    let coding = rawCoding!.trim().toLowerCase();
    if (coding === 'x-gzip') coding = 'gzip';
    else if (coding === 'x-compress') coding = 'compress';
    const q = params.map((p) => p.trim().toLowerCase()).find((p) => p.startsWith('q='));
    if (q !== undefined && Number(q.slice(2)) === 0) continue;
    if (coding !== '') codings.add(coding);
  }
  return [...codings].sort().join(',');
}

/**
 * The secondary key of a request under `vary` (names from `varyNames`): a
 * string equal for two requests exactly when `varyMatches` holds. Absent
 * fields are written as `null`, which no present value can produce.
 */
export function secondaryKey(vary: readonly string[], requestFields: Fields): string {
  if (vary.length === 0) return '';
  return JSON.stringify(vary.map((name) => [name, normalizedFieldValue(requestFields, name) ?? null]));
}

/**
 * True when `newRequest` presents the same values as `storedRequest` for every
 * field in `vary` (§4.1). `Vary: *` never matches.
 */
export function varyMatches(storedRequest: Fields, vary: readonly string[] | '*', newRequest: Fields): boolean {
  if (vary === '*') return false;
  for (const name of vary) {
    if (normalizedFieldValue(storedRequest, name) !== normalizedFieldValue(newRequest, name)) return false;
  }
  return true;
}

/** Keeps only the request fields named in `vary`: all a stored variant needs of its request. */
export function varyingFields(vary: readonly string[], requestFields: Fields): Fields {
  const out: Record<string, readonly string[]> = {};
  for (const name of vary) {
    const lines = requestFields[name];
    if (lines !== undefined && Object.hasOwn(requestFields, name)) out[name] = lines;
  }
  return out;
}
