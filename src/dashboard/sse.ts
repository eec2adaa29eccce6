/**
 * A server-sent events parser (the WHATWG "event stream interpretation"),
 * for reading /api/events with fetch(): EventSource cannot send the
 * Authorization header. Feed it decoded text as it arrives; it returns the
 * events each chunk completed. No DOM: unit-tested under Node.
 */

export interface SseEvent {
  /** `message` unless the event named another type. */
  readonly type: string;
  readonly data: string;
  readonly id: string;
}

export class SseParser {
  #buffer = '';
  #type = '';
  #data: string[] = [];
  #lastId = '';
  /** The last chunk ended with CR: a following LF belongs to the same line break. */
  #skipLf = false;

  /** Parses `chunk` (text; may end mid-line) and returns the events it completed. */
  push(chunk: string): SseEvent[] {
    const events: SseEvent[] = [];
    let text = chunk;
    if (this.#skipLf && text.startsWith('\n')) text = text.slice(1);
    this.#skipLf = false;
    this.#buffer += text;
    let start = 0;
    for (;;) {
      const cr = this.#buffer.indexOf('\r', start);
      const lf = this.#buffer.indexOf('\n', start);
      if (cr === -1 && lf === -1) break;
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      const line = this.#buffer.slice(start, end);
      start = end + 1;
      if (end === cr) {
        if (start === this.#buffer.length) this.#skipLf = true;
        else if (this.#buffer[start] === '\n') start++;
      }
      const event = this.#line(line);
      if (event !== undefined) events.push(event);
    }
    this.#buffer = this.#buffer.slice(start);
    return events;
  }

  #line(line: string): SseEvent | undefined {
    if (line === '') return this.#dispatch();
    if (line.startsWith(':')) return undefined; // a comment
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.#type = value;
    else if (field === 'data') this.#data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.#lastId = value;
    return undefined; // `retry` and unknown fields are ignored: the page reconnects on its own schedule
  }

  #dispatch(): SseEvent | undefined {
    const type = this.#type || 'message';
    const data = this.#data;
    this.#type = '';
    this.#data = [];
    if (data.length === 0) return undefined;
    return { type, data: data.join('\n'), id: this.#lastId };
  }
}
