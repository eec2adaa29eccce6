/**
 * The outcome of reading one scalar value: the value, or a message saying what
 * was expected. Messages never quote the input, so the caller decides how (and
 * whether) to show it: a value interpolated from the environment may be a
 * secret and is shown as its `${VAR}` template instead.
 */
export type Parsed<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly message: string };

/** A successful {@link Parsed}. */
export function parsed<T>(value: T): Parsed<T> {
  return { ok: true, value };
}

/** A failed {@link Parsed}. */
export function failed<T>(message: string): Parsed<T> {
  return { ok: false, message };
}
