/**
 * Header edits made by filters, kept as two lists that the single-pass header
 * builders (`proxy/headers.ts`, `h2/headers.ts`) read while they copy the
 * received fields: names whose received fields are dropped, and fields added
 * at the end. Nothing is copied into an object per request; a route without
 * filters never creates one of these.
 *
 * Which names a filter may touch is decided here, once for config values
 * (`headerNameProblem` at load time) and per call for code (a throw, which the
 * filter run turns into 500 `filter_error`).
 */
import { isFieldValue, isToken } from '../http1/chars.ts';
import { hopByHop, isUnderscoreLookalike } from '../proxy/headers.ts';

const EMPTY: readonly string[] = Object.freeze([]);

/** Request fields usher frames or writes itself: a filter cannot set them (Host has `setHost`). */
const REQUEST_OWNED: ReadonlySet<string> = new Set([...hopByHop, 'content-length', 'host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id']);

/** Response fields usher frames or writes itself. */
const RESPONSE_OWNED: ReadonlySet<string> = new Set([...hopByHop, 'content-length', 'x-request-id']);

/** Which side a header edit is for. */
export type EditSide = 'request' | 'response';

/**
 * Why `name` cannot be edited on `side`, or undefined when it can: not a
 * token, a framing or hop-by-hop field, one usher writes itself, or (requests)
 * an underscore look-alike of one (`X_Forwarded_For`).
 */
export function headerNameProblem(name: string, side: EditSide): string | undefined {
  if (!isToken(name)) return `${JSON.stringify(name)} is not a valid header name`;
  const lower = name.toLowerCase();
  if (side === 'request') {
    if (lower === 'host') return 'Host is set with rewrite.host (setHost), not as a header';
    if (REQUEST_OWNED.has(lower)) return `${name} is a framing or hop-by-hop field, or one usher sets itself, and cannot be edited`;
    if (isUnderscoreLookalike(name)) return `${name} reads as a field usher sets itself once "_" is read as "-", and cannot be edited`;
    return undefined;
  }
  if (RESPONSE_OWNED.has(lower)) return `${name} is a framing or hop-by-hop field, or one usher sets itself, and cannot be edited`;
  return undefined;
}

/** Why `value` cannot be a header value (a control character, or a character above U+00FF), or undefined. */
export function headerValueProblem(value: string): string | undefined {
  return typeof value === 'string' && isFieldValue(value) ? undefined : 'header values must be text without control characters (no CR, LF or NUL)';
}

/**
 * The edits of one message's header block. Starts empty without allocating;
 * the lists are created on the first edit.
 */
export class HeaderEdits {
  #removed: string[] | undefined;
  #added: string[] | undefined;
  readonly #side: EditSide;

  constructor(side: EditSide) {
    this.#side = side;
  }

  /** Lowercase names whose received fields are dropped. */
  get removed(): readonly string[] {
    return this.#removed ?? EMPTY;
  }

  /** Fields added after the received ones: `[name, value, ...]`. */
  get added(): readonly string[] {
    return this.#added ?? EMPTY;
  }

  /** Whether any edit was made. */
  get any(): boolean {
    return this.#removed !== undefined || this.#added !== undefined;
  }

  /** Whether the received field named `name` (any case) is dropped. Only called when {@link removed} is not empty. */
  drops(name: string): boolean {
    const removed = this.#removed;
    if (removed === undefined) return false;
    for (let i = 0; i < removed.length; i++) {
      const r = removed[i]!;
      if (r.length === name.length && r === name.toLowerCase()) return true;
    }
    return false;
  }

  set(name: string, value: string): void {
    this.#check(name, value);
    this.#remove(name.toLowerCase());
    (this.#added ??= []).push(name, value);
  }

  add(name: string, value: string): void {
    this.#check(name, value);
    (this.#added ??= []).push(name, value);
  }

  remove(name: string): void {
    const problem = headerNameProblem(name, this.#side);
    if (problem !== undefined) throw new TypeError(problem);
    this.#remove(name.toLowerCase());
  }

  /**
   * Applies edits a config already validated (the `headers` filter): no
   * per-request checks. `lowerSet[i]` is `set[2i]` lowercased.
   */
  applyTrusted(set: readonly string[], lowerSet: readonly string[], add: readonly string[], remove: readonly string[]): void {
    for (let i = 0; i < set.length; i += 2) {
      this.#remove(lowerSet[i >> 1]!);
      (this.#added ??= []).push(set[i]!, set[i + 1]!);
    }
    for (let i = 0; i < add.length; i++) (this.#added ??= []).push(add[i]!);
    for (let i = 0; i < remove.length; i++) this.#remove(remove[i]!);
  }

  /** Every value of `name` in `raw` (received fields) after these edits. */
  values(raw: readonly string[], name: string): string[] {
    const lower = name.toLowerCase();
    const out: string[] = [];
    if (this.#removed === undefined || !this.#removed.includes(lower)) {
      for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === lower.length && raw[i]!.toLowerCase() === lower) out.push(raw[i + 1]!);
    }
    const added = this.added;
    for (let i = 0; i < added.length; i += 2) if (added[i]!.toLowerCase() === lower) out.push(added[i + 1]!);
    return out;
  }

  /** `raw` with these edits applied, as a new flat list (response heads, which the exchanges take whole). */
  apply(raw: readonly string[]): string[] {
    const out: string[] = [];
    const check = this.#removed !== undefined;
    for (let i = 0; i < raw.length; i += 2) {
      if (check && this.drops(raw[i]!)) continue;
      out.push(raw[i]!, raw[i + 1]!);
    }
    const added = this.added;
    for (let i = 0; i < added.length; i++) out.push(added[i]!);
    return out;
  }

  #remove(lower: string): void {
    const removed = (this.#removed ??= []);
    if (!removed.includes(lower)) removed.push(lower);
    const added = this.#added;
    if (added === undefined) return;
    let w = 0;
    for (let i = 0; i < added.length; i += 2) {
      if (added[i]!.toLowerCase() === lower) continue;
      added[w++] = added[i]!;
      added[w++] = added[i + 1]!;
    }
    added.length = w;
  }

  #check(name: string, value: string): void {
    const problem = headerNameProblem(name, this.#side) ?? headerValueProblem(value);
    if (problem !== undefined) throw new TypeError(problem);
  }
}
