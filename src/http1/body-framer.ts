/**
 * Finds where a message body ends in raw bytes, so bodies can be passed
 * through unchanged (RFC 9112 §6.3, §7.1), and optionally yields the payload
 * of a chunked body (de-chunking for HTTP/1.0 clients). One instance per
 * connection direction, `reset()` per message; no allocation while scanning.
 *
 * Chunked framing is validated strictly, because a framer that disagrees with
 * the backend's about where a chunk ends is how request smuggling works:
 * chunk-size is 1-16 hex
 * digits and at most 2^53-1; chunk-ext is `*( BWS ";" BWS name [ BWS "=" BWS
 * ( token / quoted-string ) ] )`; every line ends in CRLF (a bare LF or CR is
 * an error); chunk data must be followed by CRLF; trailer fields follow the
 * header-field grammar (no obs-fold, no space before the colon), must not be
 * framing or routing fields (`FORBIDDEN_TRAILERS`, also spelt with `_`), and are passed through.
 * Size lines and trailers are bounded (`BodyFramerOptions`), since
 * unbounded chunk extensions are a cheap DoS (Node.js CVE-2024-22019).
 */
import { BACKSLASH, COLON, CR, DQUOTE, EQUALS, HEX, HT, LF, SEMI, SP, TOKEN, VALUE } from './chars.ts';
import { parseError } from './errors.ts';
import type { BodyFraming, Http1ParseError } from './types.ts';

/** Receives a range of payload bytes: `buf[start..end)`. Pass a bound method to avoid a closure per call. */
export type PayloadSink = (buf: Buffer, start: number, end: number) => void;

/** Bounds on chunked metadata. */
export interface BodyFramerOptions {
  /** Max bytes of one chunk-size line including extensions and CRLF (default 4096). */
  readonly maxChunkLineBytes?: number;
  /** Max bytes of the trailer section including the final CRLF (default 16384). */
  readonly maxTrailerBytes?: number;
  /** Status put in errors: 400 for request bodies (default), 502 for upstream responses. */
  readonly errorStatus?: number;
}

const DONE = 0;
const LENGTH = 1;
const UNTIL_CLOSE = 2;
const ERROR = 3;
const DATA = 4;
const SIZE_START = 5;
const SIZE = 6;
const SIZE_WS = 7; // BWS after size or extension, only ";" may follow
const EXT_NAME_START = 8;
const EXT_NAME = 9;
const EXT_NAME_WS = 10;
const EXT_VAL_START = 11;
const EXT_VAL_TOKEN = 12;
const EXT_QS = 13;
const EXT_QS_ESC = 14;
const EXT_AFTER_QS = 15;
const SIZE_LF = 16;
const DATA_CR = 17;
const DATA_LF = 18;
const TRAILER_START = 19;
const TRAILER_NAME = 20;
const TRAILER_VALUE = 21;
const TRAILER_LF = 22;
const END_LF = 23;

const MAX_SIZE = Number.MAX_SAFE_INTEGER;

/**
 * Fields a trailer must not carry (RFC 9110 §6.5.1): framing and routing
 * decided from the head cannot change after the body, and a backend that
 * merged trailers into headers could be told a different length or host.
 * `| 0x20` lowercases letters and leaves `-` and digits alone.
 */
const FORBIDDEN_TRAILERS: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'host', 'trailer', 'content-encoding', 'content-type', 'content-range']);
const MAX_FORBIDDEN_TRAILER = 17;

/**
 * A trailer name byte as compared with `FORBIDDEN_TRAILERS`: lowercased, and
 * `_` read as `-`, so `Content_Length` is refused like Content-Length (a
 * backend that folds names the CGI way would read it as one; see
 * proxy/headers.ts for the same rule on header fields).
 */
function fold(c: number): number {
  return c === 0x5f ? 0x2d : c | 0x20;
}

/** Tracks one message body's framing over raw bytes. */
export class BodyFramer {
  #state = DONE;
  #remaining = 0;
  #size = 0;
  #digits = 0;
  #lineBytes = 0;
  #trailerBytes = 0;
  /** Lowercased name of the trailer field being read (only its first bytes). */
  #trailerName = '';
  #error: Http1ParseError | undefined = undefined;
  readonly #maxLine: number;
  readonly #maxTrailer: number;
  readonly #status: number;

  constructor(options: BodyFramerOptions = {}) {
    this.#maxLine = options.maxChunkLineBytes ?? 4096;
    this.#maxTrailer = options.maxTrailerBytes ?? 16384;
    this.#status = options.errorStatus ?? 400;
  }

  /** Starts a new body. `none` (and length 0) is done at once; `until-close` never is. */
  reset(framing: BodyFraming): void {
    this.#error = undefined;
    this.#remaining = 0;
    switch (framing.kind) {
      case 'none':
        this.#state = DONE;
        return;
      case 'length':
        this.#remaining = framing.length;
        this.#state = framing.length > 0 ? LENGTH : DONE;
        return;
      case 'chunked':
        this.#state = SIZE_START;
        this.#size = 0;
        this.#digits = 0;
        this.#lineBytes = 0;
        this.#trailerBytes = 0;
        return;
      case 'until-close':
        this.#state = UNTIL_CLOSE;
        return;
      default: {
        const never: never = framing;
        throw new Error(`unknown framing ${String(never)}`);
      }
    }
  }

  /** Whether the whole body has been seen. */
  get done(): boolean {
    return this.#state === DONE;
  }

  /** Whether the body ends only when the connection closes (`until-close`). */
  get untilClose(): boolean {
    return this.#state === UNTIL_CLOSE;
  }

  /** Why the last `scan` returned -2. */
  get error(): Http1ParseError | undefined {
    return this.#error;
  }

  /**
   * Scans `buf[pos..]`: returns the offset just past the body's end, -1 when
   * all of `buf[pos..]` belongs to a body that continues, or -2 on malformed
   * framing (see `error`; the state stays failed until `reset`).
   */
  scan(buf: Buffer, pos: number): number {
    return this.#run(buf, pos, undefined);
  }

  /** Like `scan`, and also calls `onData` with each range of payload bytes (chunk data without framing, or the raw body). */
  scanPayload(buf: Buffer, pos: number, onData: PayloadSink): number {
    return this.#run(buf, pos, onData);
  }

  #run(buf: Buffer, pos: number, sink: PayloadSink | undefined): number {
    const n = buf.length;
    for (;;) {
      const state = this.#state;
      if (state === DONE) return pos;
      if (state === DATA || state === LENGTH) {
        const take = Math.min(this.#remaining, n - pos);
        if (take > 0 && sink !== undefined) sink(buf, pos, pos + take);
        pos += take;
        if ((this.#remaining -= take) > 0) return -1;
        this.#state = state === DATA ? DATA_CR : DONE;
        continue;
      }
      if (state === UNTIL_CLOSE) {
        if (pos < n && sink !== undefined) sink(buf, pos, n);
        return -1;
      }
      if (state === ERROR) return -2;
      if (pos >= n) return -1;
      this.#state = this.#step(buf[pos++] as number, state);
    }
  }

  /** One byte of chunk metadata (size line, extension, data CRLF, trailers). */
  #step(c: number, state: number): number {
    if (state >= TRAILER_START) {
      if (++this.#trailerBytes > this.#maxTrailer) return this.#fail('HTTP1_TRAILER_TOO_LARGE', `trailer section over ${this.#maxTrailer} bytes`);
    } else if (state < SIZE_LF && ++this.#lineBytes > this.#maxLine) {
      return this.#fail('HTTP1_CHUNK_LINE_TOO_LONG', `chunk-size line over ${this.#maxLine} bytes`);
    }
    switch (state) {
      case SIZE_START:
      case SIZE: {
        const d = HEX[c] as number;
        if (d !== 255) {
          this.#size = this.#size * 16 + d;
          if (++this.#digits > 16 || this.#size > MAX_SIZE) return this.#fail('HTTP1_CHUNK_SIZE_OVERFLOW', 'chunk size over 2^53-1 or 16 digits');
          return SIZE;
        }
        if (state === SIZE_START) return this.#fail('HTTP1_BAD_CHUNK_SIZE', 'chunk size is not hexadecimal');
        if (c === CR) return SIZE_LF;
        if (c === SEMI) return EXT_NAME_START;
        if (c === SP || c === HT) return SIZE_WS;
        return this.#lineEnd(c, 'HTTP1_BAD_CHUNK_SIZE', 'chunk size is not hexadecimal');
      }
      case SIZE_WS:
        if (c === SP || c === HT) return SIZE_WS;
        if (c === SEMI) return EXT_NAME_START;
        return this.#lineEnd(c, 'HTTP1_BAD_CHUNK_EXT', 'whitespace after chunk size not followed by an extension');
      case EXT_NAME_START:
        if (c === SP || c === HT) return EXT_NAME_START;
        if (TOKEN[c] === 1) return EXT_NAME;
        return this.#lineEnd(c, 'HTTP1_BAD_CHUNK_EXT', 'chunk extension name is not a token');
      case EXT_NAME:
        if (TOKEN[c] === 1) return EXT_NAME;
        if (c === CR) return SIZE_LF;
        if (c === SEMI) return EXT_NAME_START;
        if (c === EQUALS) return EXT_VAL_START;
        if (c === SP || c === HT) return EXT_NAME_WS;
        return this.#lineEnd(c, 'HTTP1_BAD_CHUNK_EXT', 'bad character in chunk extension');
      case EXT_NAME_WS:
        if (c === SP || c === HT) return EXT_NAME_WS;
        if (c === EQUALS) return EXT_VAL_START;
        if (c === SEMI) return EXT_NAME_START;
        return this.#lineEnd(c, 'HTTP1_BAD_CHUNK_EXT', 'bad character in chunk extension');
      case EXT_VAL_START:
        if (c === SP || c === HT) return EXT_VAL_START;
        if (c === DQUOTE) return EXT_QS;
        if (TOKEN[c] === 1) return EXT_VAL_TOKEN;
        return this.#lineEnd(c, 'HTTP1_BAD_CHUNK_EXT', 'chunk extension value is not a token or quoted-string');
      case EXT_VAL_TOKEN:
        if (TOKEN[c] === 1) return EXT_VAL_TOKEN;
        return this.#afterValue(c);
      case EXT_QS:
        if (c === DQUOTE) return EXT_AFTER_QS;
        if (c === BACKSLASH) return EXT_QS_ESC;
        if (VALUE[c] === 1) return EXT_QS;
        return this.#lineEnd(c, 'HTTP1_BAD_CHUNK_EXT', 'control character in quoted chunk extension');
      case EXT_QS_ESC:
        if (VALUE[c] === 1) return EXT_QS;
        return this.#lineEnd(c, 'HTTP1_BAD_CHUNK_EXT', 'control character in quoted chunk extension');
      case EXT_AFTER_QS:
        return this.#afterValue(c);
      case SIZE_LF:
        if (c !== LF) return this.#fail('HTTP1_BARE_CR', 'CR not followed by LF in chunk-size line');
        this.#lineBytes = 0;
        if (this.#size === 0) return TRAILER_START;
        this.#remaining = this.#size;
        return DATA;
      case DATA_CR:
        if (c === CR) return DATA_LF;
        return this.#fail('HTTP1_BAD_CHUNK_DATA_END', 'chunk data not followed by CRLF');
      case DATA_LF:
        if (c !== LF) return this.#fail('HTTP1_BAD_CHUNK_DATA_END', 'chunk data not followed by CRLF');
        this.#size = 0;
        this.#digits = 0;
        return SIZE_START;
      case TRAILER_START:
        if (c === CR) return END_LF;
        if (TOKEN[c] === 1) {
          this.#trailerName = String.fromCharCode(fold(c));
          return TRAILER_NAME;
        }
        if (c === SP || c === HT) return this.#fail('HTTP1_OBS_FOLD', 'trailer line starts with whitespace');
        return this.#lineEnd(c, 'HTTP1_BAD_TRAILER', 'trailer field name is not a token');
      case TRAILER_NAME:
        if (TOKEN[c] === 1) {
          // Only short names can be forbidden ones: stop collecting past the longest.
          if (this.#trailerName.length <= MAX_FORBIDDEN_TRAILER) this.#trailerName += String.fromCharCode(fold(c));
          return TRAILER_NAME;
        }
        if (c === COLON) {
          if (FORBIDDEN_TRAILERS.has(this.#trailerName)) {
            return this.#fail('HTTP1_FORBIDDEN_TRAILER', `${this.#trailerName} (in any case, or spelt with _) is not allowed in a trailer section (RFC 9110 §6.5.1)`);
          }
          return TRAILER_VALUE;
        }
        return this.#lineEnd(c, 'HTTP1_BAD_TRAILER', 'bad character in trailer field name');
      case TRAILER_VALUE:
        if (VALUE[c] === 1) return TRAILER_VALUE;
        if (c === CR) return TRAILER_LF;
        return this.#lineEnd(c, 'HTTP1_BAD_TRAILER', 'control character in trailer field value');
      case TRAILER_LF:
      case END_LF:
        if (c !== LF) return this.#fail('HTTP1_BARE_CR', 'CR not followed by LF in trailer section');
        return state === END_LF ? DONE : TRAILER_START;
      default:
        return this.#fail('HTTP1_FRAMER_STATE', `unexpected framer state ${state}`);
    }
  }

  /** After an extension value: another extension, BWS, or the end of the size line. */
  #afterValue(c: number): number {
    if (c === CR) return SIZE_LF;
    if (c === SEMI) return EXT_NAME_START;
    if (c === SP || c === HT) return SIZE_WS;
    return this.#lineEnd(c, 'HTTP1_BAD_CHUNK_EXT', 'bad character after chunk extension value');
  }

  /** Reports a stray LF as a bare-LF error, anything else with `code`. */
  #lineEnd(c: number, code: string, message: string): number {
    if (c === LF) return this.#fail('HTTP1_BARE_LF', 'bare LF line ending in chunked framing');
    return this.#fail(code, message);
  }

  #fail(code: string, message: string): number {
    this.#error = parseError(code, this.#status, message);
    return ERROR;
  }
}
