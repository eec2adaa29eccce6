/**
 * The part of Structured Field Values (RFC 8941) the cache needs: parsing a
 * Dictionary (targeted cache-control fields, RFC 9213 §2.1) and serialising
 * a List member with parameters (Cache-Status, RFC 9211 §2).
 *
 * Byte sequences and inner lists are parsed only so that a field using them
 * is read to its end correctly; no cache directive takes them.
 */

export type BareItem = number | string | boolean | Token | Uint8Array;

/** An sf-token, kept apart from an sf-string because RFC 9213 directives tell them apart. */
export class Token {
  readonly value: string;
  constructor(value: string) {
    this.value = value;
  }
}

export interface DictMember {
  /** A bare item, or the items of an inner list. */
  readonly value: BareItem | readonly BareItem[];
  readonly params: ReadonlyMap<string, BareItem>;
}

/** A field value that is not valid Structured Field syntax; RFC 8941 §4.2 says the whole field then fails. */
export class StructuredFieldError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StructuredFieldError';
  }
}

/**
 * Parses field lines as an sf-dictionary (RFC 8941 §4.2.2). Lines are joined
 * with commas first, as §4.2 requires. A duplicate key keeps the last value
 * (§3.2: "the last instance wins"). Throws StructuredFieldError on any
 * syntax error: the caller ignores the whole field.
 */
export function parseDictionary(lines: readonly string[]): Map<string, DictMember> {
  const p = new Parser(lines.join(','));
  const out = new Map<string, DictMember>();
  p.skipSP();
  if (p.done()) return out;
  for (;;) {
    const key = p.key();
    let member: DictMember;
    if (p.peek() === '=') {
      p.i++;
      member = p.itemOrInnerList();
    } else {
      member = { value: true, params: p.params() };
    }
    out.delete(key);
    out.set(key, member);
    p.skipOWS();
    if (p.done()) return out;
    if (p.peek() !== ',') throw new StructuredFieldError(`expected ',' at ${p.i}`);
    p.i++;
    p.skipOWS();
    if (p.done()) throw new StructuredFieldError('trailing comma');
  }
}

class Parser {
  readonly s: string;
  i = 0;
  constructor(s: string) {
    this.s = s;
  }
  done(): boolean {
    return this.i >= this.s.length;
  }
  peek(): string | undefined {
    return this.s[this.i];
  }
  skipSP(): void {
    while (this.s[this.i] === ' ') this.i++;
  }
  skipOWS(): void {
    while (this.s[this.i] === ' ' || this.s[this.i] === '\t') this.i++;
  }
  key(): string {
    const m = /^[a-z*][a-z0-9_\-.*]*/.exec(this.s.slice(this.i));
    if (!m) throw new StructuredFieldError(`expected a key at ${this.i}`);
    this.i += m[0].length;
    return m[0];
  }
  itemOrInnerList(): DictMember {
    if (this.peek() === '(') {
      this.i++;
      const items: BareItem[] = [];
      for (;;) {
        this.skipSP();
        if (this.peek() === ')') {
          this.i++;
          return { value: items, params: this.params() };
        }
        items.push(this.bareItem());
        this.params();
        const c = this.peek();
        if (c !== ' ' && c !== ')') throw new StructuredFieldError(`bad inner list at ${this.i}`);
      }
    }
    const value = this.bareItem();
    return { value, params: this.params() };
  }
  params(): Map<string, BareItem> {
    const out = new Map<string, BareItem>();
    while (this.peek() === ';') {
      this.i++;
      this.skipSP();
      const key = this.key();
      let value: BareItem = true;
      if (this.peek() === '=') {
        this.i++;
        value = this.bareItem();
      }
      out.set(key, value);
    }
    return out;
  }
  bareItem(): BareItem {
    const rest = this.s.slice(this.i);
    const c = rest[0];
    if (c === undefined) throw new StructuredFieldError('expected an item');
    if (c === '-' || (c >= '0' && c <= '9')) {
      const m = /^-?[0-9]+(\.[0-9]*)?/.exec(rest);
      if (!m) throw new StructuredFieldError(`bad number at ${this.i}`);
      const [whole, frac] = [m[0].replace(/\..*$/, '').replace('-', ''), m[1]];
      if (frac === undefined ? whole.length > 15 : whole.length > 12 || frac.length < 2 || frac.length > 4) {
        throw new StructuredFieldError(`number out of range at ${this.i}`);
      }
      this.i += m[0].length;
      return Number(m[0]);
    }
    if (c === '"') {
      let out = '';
      for (let j = 1; j < rest.length; j++) {
        const ch = rest[j]!;
        if (ch === '\\') {
          const next = rest[j + 1];
          if (next !== '"' && next !== '\\') throw new StructuredFieldError(`bad escape at ${this.i + j}`);
          out += next;
          j++;
        } else if (ch === '"') {
          this.i += j + 1;
          return out;
        } else {
          const code = ch.charCodeAt(0);
          if (code < 0x20 || code > 0x7e) throw new StructuredFieldError(`bad string character at ${this.i + j}`);
          out += ch;
        }
      }
      throw new StructuredFieldError('unterminated string');
    }
    if (c === '*' || /[A-Za-z]/.test(c)) {
      const m = /^[A-Za-z*][!#$%&'*+.^_`|~0-9A-Za-z:/-]*/.exec(rest)!;
      this.i += m[0].length;
      return new Token(m[0]);
    }
    if (c === ':') {
      const end = rest.indexOf(':', 1);
      const b64 = end < 0 ? '' : rest.slice(1, end);
      if (end < 0 || !/^[A-Za-z0-9+/=]*$/.test(b64)) throw new StructuredFieldError(`bad byte sequence at ${this.i}`);
      this.i += end + 1;
      return new Uint8Array(Buffer.from(b64, 'base64'));
    }
    if (c === '?') {
      const b = rest[1];
      if (b !== '0' && b !== '1') throw new StructuredFieldError(`bad boolean at ${this.i}`);
      this.i += 2;
      return b === '1';
    }
    throw new StructuredFieldError(`unexpected '${c}' at ${this.i}`);
  }
}

/** A value that cannot be serialised as the Structured Field type asked for. */
export class SerializeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SerializeError';
  }
}

const SF_TOKEN = /^[A-Za-z*][!#$%&'*+.^_`|~0-9A-Za-z:/-]*$/;
const SF_KEY = /^[a-z*][a-z0-9_\-.*]*$/;

export function isSfToken(s: string): boolean {
  return SF_TOKEN.test(s);
}

/** Serialises a bare item (RFC 8941 §4.1.3); booleans true are for parameters and are written by `serializeParams`. */
export function serializeBareItem(v: BareItem): string {
  if (v instanceof Token) {
    if (!SF_TOKEN.test(v.value)) throw new SerializeError(`not an sf-token: ${JSON.stringify(v.value)}`);
    return v.value;
  }
  if (typeof v === 'boolean') return v ? '?1' : '?0';
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || Math.abs(v) > 999_999_999_999_999) throw new SerializeError(`not an sf-integer: ${v}`);
    return String(v);
  }
  if (typeof v === 'string') {
    if (!/^[\x20-\x7e]*$/.test(v)) throw new SerializeError('an sf-string holds only printable ASCII');
    return `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  }
  return `:${Buffer.from(v).toString('base64')}:`;
}

/** Serialises parameters (RFC 8941 §4.1.1.2): a true boolean is written as the bare key. */
export function serializeParams(params: Iterable<readonly [string, BareItem]>): string {
  let out = '';
  for (const [key, value] of params) {
    if (!SF_KEY.test(key)) throw new SerializeError(`not an sf-key: ${JSON.stringify(key)}`);
    out += value === true ? `;${key}` : `;${key}=${serializeBareItem(value)}`;
  }
  return out;
}
