/**
 * Checks for the kit's options. A wrong option is a programming error found
 * at start-up, so it throws a TypeError naming the option, the value and what
 * is expected; nothing here runs per request.
 */

/** A duration in milliseconds: a finite number ≥ `min`, or `fallback` when undefined. */
export function milliseconds(name: string, value: number | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new TypeError(`usher/backend: ${name} must be a number of milliseconds ≥ ${min}, got ${describeValue(value)}`);
  }
  return value;
}

/** A whole count ≥ `min`, or `fallback` when undefined. */
export function count(name: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new TypeError(`usher/backend: ${name} must be an integer ≥ ${min}, got ${describeValue(value)}`);
  }
  return value;
}

/** URL paths the health endpoints answer on: each starts with `/` and has no query. */
export function paths(name: string, value: readonly string[] | undefined, fallback: readonly string[]): readonly string[] {
  if (value === undefined) return fallback;
  if (!Array.isArray(value)) throw new TypeError(`usher/backend: ${name} must be an array of paths like "/health", got ${describeValue(value)}`);
  for (const path of value) {
    if (typeof path !== 'string' || !path.startsWith('/') || path.includes('?')) {
      throw new TypeError(`usher/backend: ${name} must hold paths starting with "/" and without a query, got ${describeValue(path)}`);
    }
  }
  return Object.freeze([...value]);
}

/** A short, safe rendering of any value for an error message. */
export function describeValue(value: unknown): string {
  try {
    if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
    if (typeof value === 'function') return 'a function';
    if (typeof value === 'bigint') return `${value}n`;
    if (typeof value === 'number') return String(value); // NaN and Infinity, which JSON shows as null
    const text = JSON.stringify(value);
    if (text === undefined) return String(value);
    return text.length > 80 ? `${text.slice(0, 80)}…` : text;
  } catch {
    return Object.prototype.toString.call(value);
  }
}
