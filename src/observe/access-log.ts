import { pino } from 'pino';
import type { AccessLogConfig, AccessLogFormat } from '../config/types.ts';

/** One line per request. Field names are a contract: log pipelines parse them. */
export interface AccessRecord {
  readonly client: string;
  readonly method: string;
  readonly path: string;
  /** `HTTP/1.1`, `HTTP/1.0` or `HTTP/2.0`; `-` for a request usher could not read. */
  readonly protocol: string;
  readonly status: number;
  readonly listener: string;
  readonly route: string | undefined;
  readonly pool: string | undefined;
  readonly backend: string | undefined;
  /** The backend's `name` from the config, when it has one (left out of the JSON line otherwise). */
  readonly backendName?: string | undefined;
  /** Time from sending upstream to the response head arriving; -1 when there was no upstream response. */
  readonly upstreamMs: number;
  readonly totalMs: number;
  /** Request head and body bytes read from the client. */
  readonly bytesIn: number;
  /** Response body bytes sent to the client, as on the wire (chunk framing included). */
  readonly bytesOut: number;
  /** Error code when usher answered or cut the response itself. */
  readonly error: string | undefined;
  /** The `x-request-id` sent to the backend and returned to the client. */
  readonly requestId: string;
  /** Referer and User-Agent: read only when {@link AccessLog.needsHeaders} (the combined format shows them). */
  readonly referer?: string | undefined;
  readonly userAgent?: string | undefined;
}

export interface AccessLog {
  readonly enabled: boolean;
  /** Whether lines show Referer and User-Agent, so callers read them (only then: it costs a header scan). Absent: no. */
  readonly needsHeaders?: boolean;
  write(record: AccessRecord): void;
  /** Writes out everything logged so far and closes the log; resolves once it is on disk (usher's stop). Lines after it are dropped. */
  close(): Promise<void>;
}

/** The access log that writes nothing. */
export const disabledAccessLog: AccessLog = { enabled: false, needsHeaders: false, write() {}, close: () => Promise.resolve() };

/**
 * The access log as configured: lines to stdout or a file, or nothing.
 * Lines go through pino's buffered asynchronous destination (sonic-boom), so a
 * slow disk never blocks the event loop; the record is plain data, so
 * JSON.stringify is the whole JSON serialiser.
 */
export function createAccessLog(config: Pick<AccessLogConfig, 'enabled' | 'path'> & { readonly format?: AccessLogFormat | undefined }): AccessLog {
  if (!config.enabled) return disabledAccessLog;
  const dest = config.path === undefined || config.path === '-' ? 1 : config.path;
  const stream = pino.destination({ dest, sync: false, mkdir: true });
  const combined = config.format === 'combined';
  let closed = false;
  return {
    enabled: true,
    needsHeaders: combined,
    write: combined
      ? (record) => {
          if (!closed) stream.write(combinedLine(record, Date.now()));
        }
      : (record) => {
          if (!closed) stream.write(`{"time":"${new Date().toISOString()}",${JSON.stringify(record).slice(1)}\n`);
        },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      // end() waits for a write in progress and the file to open, writes what is buffered, then closes it:
      // flushSync() could not wait for the asynchronous write in flight, so the last lines could be missing
      // when a caller read the file right after stop. Bounded: a stuck disk must not hold the stop forever.
      return new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2000);
        timer.unref();
        const done = (): void => {
          clearTimeout(timer);
          resolve();
        };
        stream.once('close', done);
        stream.once('error', done);
        try {
          stream.end();
        } catch {
          done(); // already closed or destroyed: nothing buffered to lose
        }
      });
    },
  };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** The last second formatted, so a busy log formats the time once a second, not once a line. */
let cachedSecond = -1;
let cachedTime = '';

/** `10/Oct/2000:13:55:36 +0000`: the combined format's time, in UTC (no local zone to guess). */
export function combinedTime(nowMs: number): string {
  const second = Math.floor(nowMs / 1000);
  if (second !== cachedSecond) {
    const d = new Date(second * 1000);
    cachedTime = `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
    cachedSecond = second;
  }
  return cachedTime;
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/**
 * One line of the Apache/nginx combined format with the request id appended:
 *
 *   client - - [time] "METHOD target PROTOCOL" status bytes "referer" "user-agent" "request-id"
 *
 * `bytes` is the response body sent (`-` for none), as `%b` / `$body_bytes_sent`.
 * Quoted fields escape `"`, `\` and bytes outside printable ASCII as `\xHH`
 * (nginx's escaping), so a client cannot forge a field or a line.
 */
export function combinedLine(record: AccessRecord, nowMs: number): string {
  const request = record.method === '-' ? '-' : `${record.method} ${record.path} ${record.protocol}`;
  const bytes = record.bytesOut > 0 ? `${record.bytesOut}` : '-';
  return (
    `${record.client || '-'} - - [${combinedTime(nowMs)}] "${escape(request)}" ${record.status} ${bytes} ` +
    `"${escape(record.referer ?? '-')}" "${escape(record.userAgent ?? '-')}" "${escape(record.requestId)}"\n`
  );
}

const NEEDS_ESCAPE = /["\\\x00-\x1f\x7f-\uffff]/;
const ESCAPED = /["\\\x00-\x1f\x7f-\uffff]/g;

function escape(text: string): string {
  if (!NEEDS_ESCAPE.test(text)) return text;
  return text.replace(ESCAPED, (char) => {
    const code = char.charCodeAt(0);
    // Header values are latin1 (one byte per character); anything wider cannot come from the wire.
    return code > 0xff ? `\\u${code.toString(16).padStart(4, '0')}` : `\\x${code.toString(16).padStart(2, '0')}`;
  });
}
